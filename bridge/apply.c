/* apply.c - writes of the reconcilers (apply.h), synchronous for now. */
#include <config.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/apply.h"

struct applier {
    ism_kube_t *k;
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

void writes_clear(struct writes *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->v[i].ns);
        free(w->v[i].name);
        free(w->v[i].uid);
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
    }
    return "?";
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

    free(a);
    errno = saved;
}

int apply_submit(struct applier *a, const struct write *w, apply_done_f done, void *arg)
{
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    json_t *answer = NULL;
    int rc;

    if (!a || !w || !done) {
        errno = EINVAL;
        return -1;
    }
    memset(&st, 0, sizeof(st));
    a->writes++;
    a->in_flight++;
    switch (w->op) {
    case WRITE_CREATE:
        rc = ism_kube_create_object(a->k, w->res, w->ns, w->obj, &answer, &st, &err);
        break;
    case WRITE_UPDATE:
    case WRITE_UPDATE_STATUS:
        rc = ism_kube_update(a->k, w->res, w->ns, w->obj,
                             w->op == WRITE_UPDATE_STATUS ? "status" : NULL, &answer, &st, &err);
        break;
    case WRITE_DELETE:
        rc = ism_kube_delete(a->k, w->res, w->ns, w->name, w->uid, NULL, &st, &err);
        if (rc < 0 && st.reason == ISM_KUBE_NOT_FOUND)
            rc = 0;
        break;
    default:
        rc = ism_err(&err, EINVAL, "unknown write %d", (int)w->op);
    }
    if (rc < 0)
        a->failures++;
    a->in_flight--;
    done(arg, w, rc, &st, rc == 0 ? answer : NULL, &err);
    json_decref(answer);
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
