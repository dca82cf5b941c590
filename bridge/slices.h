/* slices.h - one pool of ResourceSlices per Slurm node that has a
 * Kubernetes Node, kept equal to the node's published topology.
 *
 * The decisions are a pure plan (slices_plan) over what should exist and
 * what the cache holds:
 *  - the pool's generation is the highest one its slices carry;
 *  - when every existing slice matches what we would write at that
 *    generation, only missing slices are created (someone deleted one) and
 *    nothing else is written: a restart or a quiet cluster costs no write;
 *  - otherwise the content changed (new topology, or someone edited a
 *    slice) and every slice is written again at generation + 1, so
 *    consumers never mix slices of two contents;
 *  - slices no longer wanted (or of a Node that is gone) are deleted, with
 *    their uid as precondition;
 *  - when the wanted slices cannot be built, nothing at all is written and
 *    the reconciler tries again later (never a delete of the pool);
 *  - while a write of the pool is in flight nothing is planned for it.
 * The reconciler (slices_reconcile) marks pools dirty, plans them and
 * hands the writes to the applier (apply.h), backing off after failures.
 *
 * The cache keeps slices shrunk to their metadata, pool and a digest of
 * what we own (model.h), so 10,000 nodes of 128 cores fit in little memory.
 *
 * Threads: everything here runs on the client's loop thread.
 */
#ifndef ISTHMUS_BRIDGE_SLICES_H
#define ISTHMUS_BRIDGE_SLICES_H

#include <stdbool.h>
#include <stdint.h>

#include "bridge/apply.h"
#include "bridge/model.h"
#include "bridge/poolmap.h"
#include "lib/kube/kube_events.h"
#include "lib/kube/kube_watch.h"
#include "lib/slurm/slurm_adapter.h"

#define SLICES_DIGEST_KEY "isthmus.io/digest" /* added to cached slices only */
#define SLICES_SPEC_KEY "isthmus.io/spec"     /* cached slices: our spec digest, when known */
/* On every slice isthmusd writes, for readers of its metadata alone:
 * "<metadata.generation it will have>/<pool generation>/<spec digest>/<pool>". */
#define SLICES_ANNOTATION "isthmus.io/slice"

extern const ism_kube_resource_t slices_resource; /* resource.k8s.io/v1 resourceslices */

/* ------------------------------------------------------------ the plan */

struct slices_input {
    const char *pool;        /* the Node's name */
    const char *node_uid;    /* the Node's uid; NULL when the Node is gone */
    const char *slurm_node;  /* the Slurm node mapped to pool */
    const json_t *parts;     /* ism_slice_parts_build's, NULL: no slices */
    const json_t *have;      /* slice name -> cached (shrunk) slice of the
                                pool, NULL for none */
    const json_t *in_flight; /* slice name -> anything, NULL for none */
};

struct slices_plan {
    struct writes writes;    /* what to write, in order */
    int64_t generation;      /* the pool's generation once written (0: no slices) */
    bool rewrite;            /* every slice again at a new generation */
    bool busy;               /* a write of the pool is in flight: nothing planned */
};

/* Plan one pool into out (zeroed first; slices_plan_clear it).  -1 with
 * err when the wanted slices cannot be built: out has no writes.  All
 * inputs are borrowed. */
int slices_plan(const struct slices_input *in, struct slices_plan *out, ism_error_t *err);
void slices_plan_clear(struct slices_plan *p);

/* The informer transform: keep metadata.name, uid, resourceVersion and
 * generation, spec.pool {name, generation}, and SLICES_DIGEST_KEY, the
 * digest of what isthmusd owns ("" when unknown), with SLICES_SPEC_KEY
 * its spec digest when known (so tests make cache entries with it).  A
 * whole slice is hashed as it is; a slice's metadata alone
 * (PartialObjectMetadata) is read through SLICES_ANNOTATION, trusted while
 * metadata.generation is the one it names: someone else's change of spec
 * bumps it, a change of our labels or owner shows in the metadata. */
void slices_shrink(void *arg, json_t *slice);
/* SLICES_ANNOTATION's value v: 0, or -1 (EINVAL) when it is not one;
 * *pool borrowed from v. */
int slices_annotation_parse(const char *v, json_int_t *meta_gen, json_int_t *pool_gen,
                            char spec[ISM_DIGEST_LEN], const char **pool);

/* ------------------------------------------------------------ the reconciler */

/* What the reconciler may use; everything borrowed, outliving it. */
struct slices_ctx {
    ism_kube_t *kube;              /* to watch the slices (its own cache) */
    struct applier *apply;         /* its writes, all of them */
    ism_kube_informer_t *nodes;    /* Nodes: their uid, Events about them */
    const struct poolmap *pools;   /* Slurm node <-> pool */
    ism_kube_recorder_t *events;   /* why a node gets no slices */
    bool (*leading)(void *arg);    /* may send Events */
    void *arg;
    uint64_t *errors;              /* counts failed reconciles (may be NULL) */
};

struct slices;

/* Starts the ResourceSlice informer.  NULL with err. */
struct slices *slices_create(const struct slices_ctx *ctx, ism_error_t *err);
/* NULL is fine; keeps errno.  Before the client. */
void slices_destroy(struct slices *s);
/* The reconciler's cache has its first list. */
/* Its informer (for readiness and /metrics), or NULL; borrowed. */
ism_kube_informer_t *slices_informer(const struct slices *x);
bool slices_synced(const struct slices *s);

/* Mark one pool, or every known pool, for a reconcile. */
void slices_mark(struct slices *s, const char *pool);
void slices_mark_all(struct slices *s);
/* A new Slurm node snapshot cur replaced old (NULL at the first); cur is
 * borrowed until the next call or slices_destroy. */
void slices_slurm_changed(struct slices *s, const ism_slurm_nodes_t *old,
                          const ism_slurm_nodes_t *cur);
/* Reconcile dirty pools, submitting about budget writes at most (a pool's
 * writes go together); returns writes submitted, and sets *more when
 * dirty pools remain that could be planned now. */
int slices_reconcile(struct slices *s, int budget, bool *more);
/* Milliseconds until a pool waiting after a failure is due, -1 if none. */
int64_t slices_wake_ms(const struct slices *s);
/* A new leader tells every topology problem again (as Events). */
void slices_forget_told(struct slices *s);
void slices_stats(const struct slices *s, uint64_t *pools, uint64_t *no_topology);

#endif
