/* rpc.h - unary gRPC services on unix sockets, on the gRPC C core.
 *
 * The kubelet talks to its plugins with plain gRPC (HTTP/2 without TLS
 * over a unix socket): a registration service on one socket, the DRA
 * service on another.  This is the least of gRPC those need: unary
 * methods whose request and response are opaque bytes (the protobuf
 * messages, encoded and decoded by the caller with protobuf-c), served
 * from one completion queue by the thread that calls ism_rpc_run.
 * A call to a method no socket registered gets UNIMPLEMENTED.
 *
 * Why the C core (libgrpc): it is the gRPC implementation the kubelet's
 * own gRPC (grpc-go) is tested against, it handles HTTP/2 flow control,
 * keepalive, deadlines and cancellation, and it links without OpenSSL
 * (grpc_unsecure).  See dra/README.md.
 *
 * One thread at a time: create, listen, start, run and destroy are all
 * called by the plugin's main thread.
 */
#ifndef ISTHMUS_DRA_RPC_H
#define ISTHMUS_DRA_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

/* gRPC status codes we answer with. */
enum {
    ISM_RPC_OK = 0,
    ISM_RPC_INVALID_ARGUMENT = 3,
    ISM_RPC_UNIMPLEMENTED = 12,
    ISM_RPC_INTERNAL = 13,
};

/* A method's handler: req/len is the request message (len may be 0).
 * Returns a gRPC status; on ISM_RPC_OK *resp is a malloc'ed response the
 * server frees (NULL with *resp_len 0 for an empty message), otherwise
 * msg holds the status message. */
typedef int (*ism_rpc_handler_f)(void *arg, const uint8_t *req, size_t len, uint8_t **resp,
                                 size_t *resp_len, char *msg, size_t msg_size);

struct ism_rpc_method {
    const char *path; /* "/package.Service/Method" */
    ism_rpc_handler_f fn;
    void *arg;
};

typedef struct ism_rpc ism_rpc_t;

ism_rpc_t *ism_rpc_create(ism_error_t *err);
/* Stop serving (calls in progress are cancelled), remove the sockets.
 * NULL ok, keeps errno. */
void ism_rpc_destroy(ism_rpc_t *r);

/* Serve methods (the array and its strings must outlive r) on the unix
 * socket path, replacing a stale socket file.  Before ism_rpc_start. */
int ism_rpc_listen(ism_rpc_t *r, const char *path, const struct ism_rpc_method *methods, int n,
                   ism_error_t *err);
int ism_rpc_start(ism_rpc_t *r, ism_error_t *err);

/* Serve calls for up to timeout_ms (0: only what is ready).  Returns the
 * number of calls answered, or -1 with err. */
int ism_rpc_run(ism_rpc_t *r, int timeout_ms, ism_error_t *err);

/* Calls answered so far. */
unsigned long ism_rpc_calls(const ism_rpc_t *r);

#endif
