/* http.h - isthmusd's health and metrics endpoints, on libmicrohttpd,
 * without threads.
 *
 * The server runs inside the daemon's one poll() loop: it hands out one
 * file descriptor (an epoll set holding the listening socket and every
 * connection) to poll for POLLIN, and a timeout; after poll() returns,
 * for whatever reason, the loop calls ism_http_run(), which does what is
 * ready and never blocks.  So the handlers below run on the loop's thread,
 * between its other work, and may read the daemon's state without locks.
 *
 *     for (;;) {
 *         struct pollfd p = { .fd = ism_http_fd(h), .events = POLLIN };
 *         poll(&p, 1, ism_http_timeout_ms(h));   (merged with the loop's own)
 *         ism_http_run(h);
 *     }
 *
 * Routes, for GET and HEAD (any other method: 405 with Allow: GET, HEAD):
 *   /healthz  200 "ok\n", or 503 with healthy()'s reason and a newline
 *   /readyz   the same with ready()
 *   /metrics  200, text/plain; version=0.0.4; charset=utf-8, what
 *             metrics() wrote; 500 when it returns -1
 *   anything else 404.
 * A NULL handler counts as "healthy", "ready", "no metrics".
 *
 * A slow or hostile client cannot hold the daemon: at most
 * ISM_HTTP_MAX_CONNECTIONS connections at once, each closed after
 * ISM_HTTP_TIMEOUT_S seconds of inactivity, and the server only ever
 * does non-blocking I/O.
 */
#ifndef ISTHMUS_BRIDGE_HTTP_H
#define ISTHMUS_BRIDGE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/util/error.h"
#include "metrics.h"

#define ISM_HTTP_MAX_CONNECTIONS 64
#define ISM_HTTP_TIMEOUT_S 10

typedef struct {
    /* true when healthy; otherwise write a one-line reason into why (n
     * bytes, NUL-terminated) */
    bool (*healthy)(void *arg, char *why, size_t n);
    bool (*ready)(void *arg, char *why, size_t n);
    /* add samples to m (already reset); 0, or -1 for a 500 */
    int (*metrics)(void *arg, ism_metrics_t *m);
    void *arg;
} ism_http_handlers_t;

typedef struct ism_http ism_http_t;

/* Listen on "HOST:PORT": HOST an IPv4 address, or "" or "*" for every
 * address; PORT 0-65535, 0 for a free one the kernel picks (see
 * ism_http_port).  The handlers are copied; arg stays the caller's and
 * must outlive the server.  NULL with EINVAL for a malformed listen
 * string, or the bind error (EADDRINUSE, EACCES...) with the address in
 * the message. */
ism_http_t *ism_http_create(const char *listen, const ism_http_handlers_t *h,
                            ism_error_t *err);

/* Close every connection and the socket.  NULL is fine; errno is kept. */
void ism_http_destroy(ism_http_t *s);

/* The descriptor to poll for POLLIN.  Owned by s. */
int ism_http_fd(const ism_http_t *s);

/* The longest the loop may wait before calling ism_http_run() even when
 * the descriptor stays quiet, in ms; -1 when there is no such limit. */
int ism_http_timeout_ms(ism_http_t *s);

/* Accept, read, answer and time out what is ready now.  Never blocks.
 * 0, or -1 (EIO) when libmicrohttpd reports a failure (logged). */
int ism_http_run(ism_http_t *s);

/* The port bound (the one picked when PORT was 0). */
int ism_http_port(const ism_http_t *s);

#endif
