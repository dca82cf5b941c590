/* apply.c - writes of the reconcilers (apply.h), asynchronous on the
 * client's loop: each submit copies its write and queues one call. */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/apply.h"

/* A write in flight: our copy of it, its call, the caller's callback. */
struct pending {
    struct applier *a;
    struct write w;
    ism_kube_call_t *call;
    apply_done_f done;
    void *arg;
    struct pending *prev, *next;
};

struct applier {
    ism_kube_t *k;
    struct pending *pending;    /* in flight */
    size_t in_flight;
    uint64_t writes, failures;
};

static char *dup_or_null(const char *s, bool *failed)
{
    char *d = s ? strdup(s) : NULL;

    if (s && !d)
        *failed = true;
    return d;
}

int writes_add(struct writes *w, write_op_t op, const ism_kube_resource_t *res, const char *ns,
               const char *name, const char *uid, json_t *obj)
{
    struct write *x;
    bool failed = false;

    if (!w || !res || !name || (op != WRITE_DELETE && !obj)) {
        json_decref(obj);
        errno = EINVAL;
        return -1;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 8;
        struct write *v = realloc(w->v, cap * sizeof(*v));
        if (!v) {
            json_decref(obj);
            errno = ENOMEM;
            return -1;
        }
        w->v = v;
        w->cap = cap;
    }
    x = &w->v[w->n];
    memset(x, 0, sizeof(*x));
    x->op = op;
    x->res = res;
    x->ns = dup_or_null(ns, &failed);
    x->name = dup_or_null(name, &failed);
    x->uid = dup_or_null(uid, &failed);
    x->obj = obj;
    if (failed) {
        free(x->ns);
        free(x->name);
        free(x->uid);
        json_decref(obj);
        errno = ENOMEM;
        return -1;
    }
    w->n++;
    return 0;
}

int writes_add_text(struct writes *w, write_op_t op, const ism_kube_resource_t *res,
                    const char *ns, const char *name, json_t *obj, char *text)
{
    if ((op != WRITE_CREATE && op != WRITE_UPDATE) || !text) {
        free(text);
        json_decref(obj);
        errno = EINVAL;
        return -1;
    }
    if (writes_add(w, op, res, ns, name, NULL, obj) < 0) {
        free(text);
        return -1;
    }
    w->v[w->n - 1].text = text;
    return 0;
}

void writes_clear(struct writes *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->v[i].ns);
        free(w->v[i].name);
        free(w->v[i].uid);
        free(w->v[i].text);
        json_decref(w->v[i].obj);
    }
    free(w->v);
    memset(w, 0, sizeof(*w));
}

const char *write_op_name(write_op_t op)
{
    switch (op) {
    case WRITE_CREATE:
        return "create";
    case WRITE_UPDATE:
        return "update";
    case WRITE_UPDATE_STATUS:
        return "update-status";
    case WRITE_DELETE:
        return "delete";
    case WRITE_BIND:
        return "bind";
    }
    return "?";
}

static void write_free(struct write *w)
{
    free(w->ns);
    free(w->name);
    free(w->uid);
    json_decref(w->obj);
}

static void pending_unlink(struct applier *a, struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        a->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    a->in_flight--;
}

/* Tell the caller, then forget the write. */
static void finish(struct pending *p, int rc, const ism_kube_status_t *st, json_t *answer,
                   const ism_error_t *err)
{
    struct applier *a = p->a;

    pending_unlink(a, p);
    if (rc < 0)
        a->failures++;
    p->done(p->arg, &p->w, rc, st, rc == 0 ? answer : NULL, err);
    write_free(&p->w);
    free(p);
}

static void answered(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                     json_t *answer, const ism_error_t *err)
{
    struct pending *p = arg;
    (void)k;

    p->call = NULL;
    if (rc < 0 && p->w.op == WRITE_DELETE && st->reason == ISM_KUBE_NOT_FOUND)
        rc = 0; /* already gone: what the delete wanted */
    finish(p, rc, st, answer, err);
}

struct applier *applier_create(ism_kube_t *k, ism_error_t *err)
{
    struct applier *a;

    if (!k) {
        ism_err(err, EINVAL, "applier: no client");
        return NULL;
    }
    if (!(a = calloc(1, sizeof(*a)))) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    a->k = k;
    return a;
}

void applier_destroy(struct applier *a)
{
    int saved = errno;
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;

    if (!a)
        return;
    memset(&st, 0, sizeof(st));
    st.reason = ISM_KUBE_TRANSPORT;
    snprintf(st.message, sizeof(st.message), "cancelled: isthmusd is stopping");
    ism_err(&err, ECANCELED, "cancelled: isthmusd is stopping");
    while (a->pending) {
        struct pending *p = a->pending;
        ism_kube_cancel(a->k, p->call);
        p->call = NULL;
        finish(p, -1, &st, NULL, &err);
    }
    free(a);
    errno = saved;
}

/* A CREATE or UPDATE whose body is w->text: POST to the collection or PUT
 * to the object named by w->obj. */
static ism_kube_call_t *submit_text(struct applier *a, const struct write *w, struct pending *p,
                                    ism_error_t *err)
{
    bool create = w->op == WRITE_CREATE;
    char *path = ism_kube_path(w->res, w->ns, create ? NULL : w->name, NULL);
    ism_kube_call_t *c = NULL;

    if (!path || (!create && w->op != WRITE_UPDATE))
        ism_err(err, EINVAL, "%s %s: bad resource, name or operation", write_op_name(w->op),
                w->name);
    else
        c = ism_kube_request_text_async(a->k, create ? "POST" : "PUT", path, w->text, NULL,
                                        answered, p, err);
    free(path);
    return c;
}

int apply_submit(struct applier *a, const struct write *w, apply_done_f done, void *arg)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct pending *p;
    bool failed = false;

    if (!a || !w || !done || !w->res || !w->name || (w->op != WRITE_DELETE && !w->obj)) {
        errno = EINVAL;
        return -1;
    }
    if (!(p = calloc(1, sizeof(*p))))
        return -1;
    p->a = a;
    p->done = done;
    p->arg = arg;
    p->w.op = w->op;
    p->w.res = w->res;
    p->w.ns = dup_or_null(w->ns, &failed);
    p->w.name = dup_or_null(w->name, &failed);
    p->w.uid = dup_or_null(w->uid, &failed);
    p->w.obj = json_incref(w->obj);
    p->w.urgent = w->urgent;
    p->w.metadata = w->metadata;
    if (failed) {
        write_free(&p->w);
        free(p);
        errno = ENOMEM;
        return -1;
    }
    if (w->text)
        p->call = submit_text(a, w, p, &err);
    else switch (w->op) {
    case WRITE_CREATE:
        p->call = ism_kube_create_object_async(a->k, w->res, w->ns, p->w.obj, answered, p, &err);
        break;
    case WRITE_UPDATE:
    case WRITE_UPDATE_STATUS:
        p->call = ism_kube_update_async(a->k, w->res, w->ns, p->w.obj,
                                        w->op == WRITE_UPDATE_STATUS ? "status" : NULL,
                                        answered, p, &err);
        break;
    case WRITE_DELETE:
        p->call = ism_kube_delete_async(a->k, w->res, w->ns, w->name, w->uid, NULL, answered,
                                        p, &err);
        break;
    case WRITE_BIND:
        p->call = ism_kube_create_subresource_async(a->k, w->res, w->ns, w->name, "binding",
                                                    p->w.obj, answered, p, &err);
        break;
    default:
        ism_err(&err, EINVAL, "unknown write %d", (int)w->op);
    }
    if (p->call && w->urgent)
        ism_kube_call_lane(p->call, ISM_KUBE_LANE_URGENT);
    if (p->call && w->metadata && ism_kube_call_accept(p->call, ISM_KUBE_ACCEPT_METADATA) < 0) {
        ism_kube_cancel(a->k, p->call);
        p->call = NULL;
    }
    if (!p->call) {
        int errnum = errno;
        write_free(&p->w);
        free(p);
        errno = errnum;
        return -1;
    }
    a->writes++;
    a->in_flight++;
    p->next = a->pending;
    if (p->next)
        p->next->prev = p;
    a->pending = p;
    return 0;
}

size_t apply_in_flight(const struct applier *a)
{
    return a ? a->in_flight : 0;
}

void apply_stats(const struct applier *a, uint64_t *writes, uint64_t *failures)
{
    *writes = a ? a->writes : 0;
    *failures = a ? a->failures : 0;
}
