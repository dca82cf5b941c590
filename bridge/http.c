/* http.c - see http.h */
#include <config.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"
#include "lib/util/log.h"

/* libmicrohttpd 0.9.71 made the callbacks' int an enum. */
#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result_t;
#else
typedef int mhd_result_t;
#endif

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define PROMETHEUS_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define WHY_MAX 256

struct ism_http {
    struct MHD_Daemon *d;
    ism_http_handlers_t h;
    ism_metrics_t *m;       /* reused by every scrape */
    int fd;
    int port;
    bool starting;          /* MHD messages go to start_error, not the log */
    char start_error[256];
};

/* "HOST:PORT" into sa; see ism_http_create. */
static int parse_listen(const char *listen, struct sockaddr_in *sa, ism_error_t *err)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    char host[INET_ADDRSTRLEN];
    size_t hostlen;
    long port = 0;

    if (!listen)
        return ism_err(err, EINVAL, "no listen address");
    if (!colon)
        return ism_err(err, EINVAL, "listen address '%s': expected HOST:PORT", listen);
    if (colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5 || (port = strtol(colon + 1, NULL, 10)) > 65535)
        return ism_err(err, EINVAL, "listen address '%s': port '%s' is not a number 0-65535",
                       listen, colon + 1);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    hostlen = (size_t)(colon - listen);
    if (hostlen == 0 || (hostlen == 1 && listen[0] == '*')) {
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (hostlen >= sizeof(host))
        return ism_err(err, EINVAL, "listen address '%s': host is not an IPv4 address", listen);
    memcpy(host, listen, hostlen);
    host[hostlen] = '\0';
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return ism_err(err, EINVAL, "listen address '%s': '%s' is not an IPv4 address", listen,
                       host);
    return 0;
}

/* libmicrohttpd's messages: while starting, the first one explains a
 * failure to the caller; later ones (a client over the connection limit,
 * a reset connection) are of interest only when debugging. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt,
                                                          va_list ap)
{
    ism_http_t *s = cls;
    char line[256];
    size_t n;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '.'))
        line[--n] = '\0';
    if (!s->starting)
        ism_log_info("http: %s", line);
    else if (!s->start_error[0])
        snprintf(s->start_error, sizeof(s->start_error), "%s", line);
}

static mhd_result_t reply(struct MHD_Connection *c, unsigned int status, const char *type,
                          const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    mhd_result_t rc = MHD_NO;

    if (!r)
        return MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
        (status != MHD_HTTP_METHOD_NOT_ALLOWED ||
         MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_YES))
        rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static mhd_result_t reply_text(struct MHD_Connection *c, unsigned int status, const char *body)
{
    return reply(c, status, TEXT_PLAIN, body, strlen(body));
}

/* 200 "ok", or 503 with the check's reason on one line. */
static mhd_result_t reply_check(ism_http_t *s, struct MHD_Connection *c,
                                bool (*check)(void *, char *, size_t), const char *fallback)
{
    char why[WHY_MAX] = "";
    char body[WHY_MAX + 1];

    if (!check || check(s->h.arg, why, sizeof(why)))
        return reply_text(c, MHD_HTTP_OK, "ok\n");
    why[sizeof(why) - 1] = '\0';
    why[strcspn(why, "\n")] = '\0';
    snprintf(body, sizeof(body), "%s\n", why[0] ? why : fallback);
    return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static mhd_result_t reply_metrics(ism_http_t *s, struct MHD_Connection *c)
{
    ism_metrics_reset(s->m);
    if (s->h.metrics && s->h.metrics(s->h.arg, s->m) < 0) {
        ism_log_warn("http: /metrics: the daemon could not write its metrics");
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n");
    }
    return reply(c, MHD_HTTP_OK, PROMETHEUS_TEXT, ism_metrics_text(s->m), ism_metrics_len(s->m));
}

/* Every route answers from the headers alone, so the first call (before
 * any body) queues the response; a body a client sends anyway is not
 * read, and libmicrohttpd closes that connection after answering. */
static mhd_result_t answer(void *cls, struct MHD_Connection *c, const char *url,
                           const char *method, const char *version, const char *upload_data,
                           size_t *upload_data_size, void **con_cls)
{
    ism_http_t *s = cls;

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/healthz") == 0)
        return reply_check(s, c, s->h.healthy, "not healthy");
    if (strcmp(url, "/readyz") == 0)
        return reply_check(s, c, s->h.ready, "not ready");
    if (strcmp(url, "/metrics") == 0)
        return reply_metrics(s, c);
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* Why binding sa fails, found by binding it again: libmicrohttpd 0.9 left
 * the bind's errno (EADDRINUSE for a taken port), 1.0 closes its socket
 * first and leaves EBADF, which says nothing.  0 when the bind works now. */
static int bind_errno(const struct sockaddr_in *sa)
{
    int one = 1, e = 0, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return errno;
    /* as libmicrohttpd does, so that only a listening socket is in the way */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
        e = errno;
    close(fd);
    return e;
}

static int start(ism_http_t *s, const char *listen, struct sockaddr_in *sa, ism_error_t *err)
{
    const union MHD_DaemonInfo *info;
    int e;

    s->starting = true;
    errno = 0;
    /* The logger first: libmicrohttpd prints to stderr until it has it. */
    s->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)ISM_HTTP_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)ISM_HTTP_TIMEOUT_S,
                            MHD_OPTION_END);
    e = errno;
    s->starting = false;
    if (!s->d && e == EBADF)
        e = bind_errno(sa);
    /* errno says it best (libmicrohttpd's own message names "port 0" when
     * the address came with SOCK_ADDR); its message when errno is not set. */
    if (!s->d)
        return ism_err(err, e ? e : EIO, "cannot listen on %s: %s", listen,
                       e || !s->start_error[0] ? strerror(e ? e : EIO) : s->start_error);
    if (!(info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD)))
        return ism_err(err, EIO, "listen on %s: no epoll descriptor", listen);
    s->fd = info->epoll_fd;
    if (!(info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)))
        return ism_err(err, EIO, "listen on %s: no bound port", listen);
    s->port = info->port;
    return 0;
}

ism_http_t *ism_http_create(const char *listen, const ism_http_handlers_t *h, ism_error_t *err)
{
    struct sockaddr_in sa;
    ism_http_t *s;

    if (parse_listen(listen, &sa, err) < 0)
        return NULL;
    if (!(s = calloc(1, sizeof(*s)))) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    s->fd = -1;
    if (h)
        s->h = *h;
    if (!(s->m = ism_metrics_create(err)) || start(s, listen, &sa, err) < 0) {
        ism_http_destroy(s);
        return NULL;
    }
    return s;
}

void ism_http_destroy(ism_http_t *s)
{
    int saved = errno;

    if (s) {
        if (s->d)
            MHD_stop_daemon(s->d);
        ism_metrics_destroy(s->m);
        free(s);
    }
    errno = saved;
}

int ism_http_fd(const ism_http_t *s)
{
    return s ? s->fd : -1;
}

int ism_http_timeout_ms(ism_http_t *s)
{
    MHD_UNSIGNED_LONG_LONG ms;

    if (!s || MHD_get_timeout(s->d, &ms) != MHD_YES)
        return -1;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int ism_http_run(ism_http_t *s)
{
    if (!s) {
        errno = EINVAL;
        return -1;
    }
    if (MHD_run(s->d) != MHD_YES) {
        ism_log_warn("http: libmicrohttpd failed to run");
        errno = EIO;
        return -1;
    }
    return 0;
}

int ism_http_port(const ism_http_t *s)
{
    return s ? s->port : -1;
}
