/* apply.h - the one place the reconcilers' writes reach the API server.
 *
 * A reconciler plans (slices.h, mirror.h: pure functions) a list of
 * writes, then hands each to apply_submit with a callback that receives
 * the outcome.  Writes are asynchronous (kube.h): apply_submit queues the
 * write and returns; the callback runs later, from ism_kube_run, never
 * before apply_submit returned.  Many writes are in flight at once (the
 * bridge bounds them: BRIDGE_WRITES_PER_TURN), so callers mark the object
 * in flight before submitting and never plan a second write for it until
 * its callback ran.
 *
 * Threads: the applier belongs to the client's loop thread.
 */
#ifndef ISTHMUS_BRIDGE_APPLY_H
#define ISTHMUS_BRIDGE_APPLY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/kube/kube.h"

typedef enum {
    WRITE_CREATE,        /* POST obj */
    WRITE_UPDATE,        /* PUT obj (carries metadata.resourceVersion) */
    WRITE_UPDATE_STATUS, /* PUT obj to its status subresource */
    WRITE_DELETE,        /* DELETE name, precondition uid if set */
    WRITE_BIND,          /* POST obj (a Binding) to name's binding subresource */
} write_op_t;

/* One write.  Every member is owned by the write (writes_clear frees). */
struct write {
    write_op_t op;
    const ism_kube_resource_t *res; /* static */
    char *ns;                       /* NULL for cluster-scoped objects */
    char *name;
    char *uid;                      /* DELETE precondition, or NULL */
    json_t *obj;                    /* body (not for DELETE), owned */
    char *text;                     /* or NULL; owned: the body as JSON text,
                                       sent instead of obj, which then only
                                       tells what it holds (CREATE, UPDATE);
                                       the callback's copy has none */
    bool metadata;                  /* the answer as metadata alone
                                       (ISM_KUBE_ACCEPT_METADATA) */
    bool urgent;                    /* one step of a decision waiting on it
                                       (a gang's commit): ISM_KUBE_LANE_URGENT */
};

/* A growing list of writes: a plan. */
struct writes {
    struct write *v;
    size_t n, cap;
};

/* Append a write; strings are copied, obj is STOLEN (even on failure;
 * NULL for DELETE).  -1 with ENOMEM. */
int writes_add(struct writes *w, write_op_t op, const ism_kube_resource_t *res, const char *ns,
               const char *name, const char *uid, json_t *obj);
/* writes_add for a body sent as text (stolen, even on failure): obj
 * describes it (its metadata.name and resourceVersion are the write's). */
int writes_add_text(struct writes *w, write_op_t op, const ism_kube_resource_t *res,
                    const char *ns, const char *name, json_t *obj, char *text);
/* Free every write and the list's storage; the list is empty after. */
void writes_clear(struct writes *w);
/* "create", "update", "update-status", "delete", "bind". */
const char *write_op_name(write_op_t op);

/* The outcome of a write: rc 0 or -1; st the API's status; answer what
 * the server returned, borrowed for the call: the object (for a DELETE
 * that finalizers hold, the object being deleted; for one that removed it,
 * the object or a Status), NULL on failure or when the object was already
 * gone; err the message on failure.  A DELETE of an object already gone
 * counts as success. */
typedef void (*apply_done_f)(void *arg, const struct write *w, int rc,
                             const ism_kube_status_t *st, json_t *answer, const ism_error_t *err);

struct applier;

struct applier *applier_create(ism_kube_t *k, ism_error_t *err);
/* NULL is fine; keeps errno.  Writes in flight are cancelled and get their
 * callback first (rc -1, ECANCELED): destroy the applier before the
 * reconcilers whose callbacks those are. */
void applier_destroy(struct applier *a);

/* Write w (borrowed: the applier copies it; the callback gets the copy)
 * and report to done(arg, ...) from the loop.  Returns 0, or -1 with errno
 * when the write could not even be queued (then done is not called). */
int apply_submit(struct applier *a, const struct write *w, apply_done_f done, void *arg);

/* Writes submitted whose callback has not run yet. */
size_t apply_in_flight(const struct applier *a);
/* Writes submitted, and those that failed, since create. */
void apply_stats(const struct applier *a, uint64_t *writes, uint64_t *failures);

#endif
