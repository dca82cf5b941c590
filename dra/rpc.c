/* rpc.c - see rpc.h */
#include <config.h>
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "dra/rpc.h"

#define MAX_SOCKETS 4
#define MAX_METHODS 8

struct sock {
    grpc_server *server;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const struct ism_rpc_method *methods;
    int n;
    void *handles[MAX_METHODS];
};

/* One call in flight: first the request we posted, then the answer. */
struct call {
    enum { WAITING, ANSWERING, SHUTDOWN } stage;
    struct sock *sock;
    int method; /* index in sock->methods, -1 for an unregistered one */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *reply;
    grpc_slice status_details;
    int cancelled;
};

struct ism_rpc {
    grpc_completion_queue *cq;
    struct sock socks[MAX_SOCKETS];
    int nsocks;
    bool started;
    int outstanding; /* struct call objects the queue still owns */
    unsigned long calls;
};

ism_rpc_t *ism_rpc_create(ism_error_t *err)
{
    ism_rpc_t *r = calloc(1, sizeof(*r));

    if (!r)
        return ism_err(err, ENOMEM, "out of memory"), NULL;
    grpc_init();
    if (!(r->cq = grpc_completion_queue_create_for_next(NULL))) {
        grpc_shutdown();
        free(r);
        return ism_err(err, ENOMEM, "gRPC: cannot create a completion queue"), NULL;
    }
    return r;
}

static void call_free(struct call *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    grpc_slice_unref(c->status_details);
    free(c);
}

/* Post a request for the next call of method m (-1: any unregistered). */
static int post(ism_rpc_t *r, struct sock *s, int m, ism_error_t *err)
{
    struct call *c = calloc(1, sizeof(*c));
    grpc_call_error e;

    if (!c)
        return ism_err(err, ENOMEM, "out of memory");
    c->stage = WAITING;
    c->sock = s;
    c->method = m;
    c->status_details = grpc_empty_slice();
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    if (m >= 0)
        e = grpc_server_request_registered_call(s->server, s->handles[m], &c->call, &c->deadline,
                                                &c->md, &c->payload, r->cq, r->cq, c);
    else
        e = grpc_server_request_call(s->server, &c->call, &c->details, &c->md, r->cq, r->cq, c);
    if (e != GRPC_CALL_OK) {
        call_free(c);
        return ism_err(err, EIO, "gRPC: cannot wait for calls on %s (error %d)", s->path, (int)e);
    }
    r->outstanding++;
    return 0;
}

int ism_rpc_listen(ism_rpc_t *r, const char *path, const struct ism_rpc_method *methods, int n,
                   ism_error_t *err)
{
    grpc_server_credentials *creds;
    struct sock *s;
    char addr[sizeof(s->path) + 8];
    int i, port;

    if (!r || !path || !methods || n < 1 || n > MAX_METHODS || r->started)
        return ism_err(err, EINVAL, "gRPC listen: invalid argument");
    if (r->nsocks == MAX_SOCKETS)
        return ism_err(err, ENOSPC, "gRPC: more than %d sockets", MAX_SOCKETS);
    s = &r->socks[r->nsocks];
    if (path[0] != '/' || strlen(path) >= sizeof(s->path))
        return ism_err(err, ENAMETOOLONG,
                       "socket %s: not an absolute path of at most %zu bytes", path,
                       sizeof(s->path) - 1);
    memset(s, 0, sizeof(*s));
    snprintf(s->path, sizeof(s->path), "%s", path);
    s->methods = methods;
    s->n = n;
    if (unlink(path) < 0 && errno != ENOENT)
        return ism_err(err, errno, "socket %s: cannot remove the old one: %s", path,
                       strerror(errno));
    if (!(s->server = grpc_server_create(NULL, NULL)))
        return ism_err(err, ENOMEM, "gRPC: cannot create a server");
    grpc_server_register_completion_queue(s->server, r->cq, NULL);
    for (i = 0; i < n; i++)
        if (!(s->handles[i] = grpc_server_register_method(
                  s->server, methods[i].path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0))) {
            grpc_server_destroy(s->server);
            return ism_err(err, EINVAL, "gRPC: cannot register %s", methods[i].path);
        }
    snprintf(addr, sizeof(addr), "unix:%s", path);
    creds = grpc_insecure_server_credentials_create();
    port = grpc_server_add_http2_port(s->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (port == 0) {
        grpc_server_destroy(s->server);
        return ism_err(err, EADDRNOTAVAIL, "gRPC: cannot listen on %s (see gRPC's log above)", path);
    }
    r->nsocks++;
    return 0;
}

int ism_rpc_start(ism_rpc_t *r, ism_error_t *err)
{
    int i, m;

    if (!r || r->started || r->nsocks == 0)
        return ism_err(err, EINVAL, "gRPC start: invalid argument");
    for (i = 0; i < r->nsocks; i++)
        grpc_server_start(r->socks[i].server);
    r->started = true;
    for (i = 0; i < r->nsocks; i++)
        for (m = -1; m < r->socks[i].n; m++)
            if (post(r, &r->socks[i], m, err) < 0)
                return -1;
    return 0;
}

/* The request of a call as one buffer: *data is malloc'ed (NULL for an
 * empty message). */
static int payload_bytes(grpc_byte_buffer *bb, uint8_t **data, size_t *len)
{
    grpc_byte_buffer_reader reader;
    grpc_slice all;

    *data = NULL;
    *len = 0;
    if (!bb)
        return 0;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return -1;
    all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    *len = GRPC_SLICE_LENGTH(all);
    if (*len > 0) {
        if (!(*data = malloc(*len))) {
            grpc_slice_unref(all);
            return -1;
        }
        memcpy(*data, GRPC_SLICE_START_PTR(all), *len);
    }
    grpc_slice_unref(all);
    return 0;
}

/* A call arrived: run its handler and send the answer. */
static int answer(ism_rpc_t *r, struct call *c, ism_error_t *err)
{
    char msg[512] = "";
    uint8_t *req = NULL, *resp = NULL;
    size_t len = 0, resp_len = 0;
    int status;
    grpc_op ops[4];
    size_t nops = 0;

    if (c->method < 0) {
        status = ISM_RPC_UNIMPLEMENTED;
        snprintf(msg, sizeof(msg), "no such method");
    } else if (payload_bytes(c->payload, &req, &len) < 0) {
        status = ISM_RPC_INTERNAL;
        snprintf(msg, sizeof(msg), "cannot read the request");
    } else {
        const struct ism_rpc_method *m = &c->sock->methods[c->method];

        status = m->fn(m->arg, req, len, &resp, &resp_len, msg, sizeof(msg));
    }
    free(req);
    memset(ops, 0, sizeof(ops));
    ops[nops].op = GRPC_OP_SEND_INITIAL_METADATA;
    nops++;
    if (status == ISM_RPC_OK) {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)resp, resp_len);

        c->reply = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        ops[nops].op = GRPC_OP_SEND_MESSAGE;
        ops[nops].data.send_message.send_message = c->reply;
        nops++;
    }
    free(resp);
    grpc_slice_unref(c->status_details);
    c->status_details = grpc_slice_from_copied_string(status == ISM_RPC_OK ? "" : msg);
    ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[nops].data.send_status_from_server.status = (grpc_status_code)status;
    ops[nops].data.send_status_from_server.status_details = &c->status_details;
    nops++;
    ops[nops].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[nops].data.recv_close_on_server.cancelled = &c->cancelled;
    nops++;
    c->stage = ANSWERING;
    if (grpc_call_start_batch(c->call, ops, nops, c, NULL) != GRPC_CALL_OK) {
        r->outstanding--;
        call_free(c);
        return ism_err(err, EIO, "gRPC: cannot answer a call");
    }
    r->calls++;
    return 0;
}

int ism_rpc_run(ism_rpc_t *r, int timeout_ms, ism_error_t *err)
{
    int answered = 0;
    gpr_timespec until;

    if (!r || !r->started)
        return ism_err(err, EINVAL, "gRPC run: not started");
    until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                         gpr_time_from_millis(timeout_ms < 0 ? 0 : timeout_ms, GPR_TIMESPAN));
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(r->cq, until, NULL);
        struct call *c = ev.tag;

        if (ev.type != GRPC_OP_COMPLETE)
            return answered; /* timeout */
        if (c->stage == WAITING) {
            /* Wait for the next call first: a failing answer must not
             * leave the method without a waiter. */
            if (!ev.success) {
                r->outstanding--;
                call_free(c);
                continue;
            }
            if (post(r, c->sock, c->method, err) < 0) {
                r->outstanding--;
                call_free(c);
                return -1;
            }
            if (answer(r, c, err) < 0)
                return -1;
            answered++;
        } else {
            r->outstanding--;
            call_free(c);
        }
        /* After the first event, take only what is ready. */
        until = gpr_now(GPR_CLOCK_MONOTONIC);
    }
}

unsigned long ism_rpc_calls(const ism_rpc_t *r)
{
    return r ? r->calls : 0;
}

void ism_rpc_destroy(ism_rpc_t *r)
{
    int e = errno, i, pending;
    struct call done = { .stage = SHUTDOWN };

    if (!r)
        return;
    pending = 0;
    for (i = 0; i < r->nsocks; i++) {
        grpc_server_shutdown_and_notify(r->socks[i].server, r->cq, &done);
        pending++;
        grpc_server_cancel_all_calls(r->socks[i].server);
    }
    /* Drain: the shutdown notices, and every call the queue still owns. */
    while (pending > 0 || r->outstanding > 0) {
        grpc_event ev = grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);

        if (ev.type != GRPC_OP_COMPLETE)
            break;
        if (ev.tag == &done) {
            pending--;
        } else {
            r->outstanding--;
            call_free(ev.tag);
        }
    }
    for (i = 0; i < r->nsocks; i++) {
        grpc_server_destroy(r->socks[i].server);
        unlink(r->socks[i].path);
    }
    grpc_completion_queue_shutdown(r->cq);
    while (grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(r->cq);
    grpc_shutdown();
    free(r);
    errno = e;
}
