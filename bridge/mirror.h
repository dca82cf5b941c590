/* mirror.h - Slurm's own jobs as allocated ResourceClaims, so every DRA
 * allocator (kube-scheduler included) sees their cores as taken.
 *
 * For each job that holds cores and was not started by isthmus, the
 * namespace isthmus-system holds claims slurm-<job>-<pool>-<i> (model.h),
 * at most 32 devices each, allocated to exactly the job's cores.  A claim
 * is created without status, then its allocation is written (the API
 * ignores status on create).  Claims carry isthmusd's own finalizer and
 * never the built-in one, so kube-controller-manager never deallocates
 * them; when the job is gone, isthmusd deletes the claim and then drops
 * its finalizer.
 *
 * The decisions are pure (mirror_want, mirror_plan, mirror_plan_status);
 * the reconciler hands the writes to the applier (apply.h), and after a
 * create succeeds writes the allocation onto the object the server
 * answered.  Per wanted claim, against the cache:
 *   absent                      -> create (no status)
 *   being deleted               -> nothing (made again once gone)
 *   no allocation               -> update-status with the allocation
 *   another allocation (edited, or a reused job id) -> delete (uid)
 *   our finalizer missing       -> update with it put back
 * per cached claim no job wants:
 *   not being deleted           -> delete (uid)
 *   being deleted, our finalizer -> update without it
 * A claim with a write in flight gets no other.  A delete the server answers
 * with the claim held by our finalizer is followed at once by the update
 * that drops it, without waiting for the watch to bring the change.
 *
 * Threads: everything here runs on the client's loop thread.
 */
#ifndef ISTHMUS_BRIDGE_MIRROR_H
#define ISTHMUS_BRIDGE_MIRROR_H

#include <stdbool.h>
#include <stdint.h>

#include "bridge/apply.h"
#include "bridge/poolmap.h"
#include "lib/kube/kube_watch.h"
#include "lib/slurm/slurm_adapter.h"


extern const ism_kube_resource_t mirror_resource; /* resource.k8s.io/v1 resourceclaims */

/* ------------------------------------------------------------ the plan */

/* Every claim the jobs need: a new object claim name -> wanted claim (with
 * status), and *mirrored the jobs it mirrors.  NULL with ENOMEM.  A job
 * whose claims cannot be built is logged and left out. */
json_t *mirror_want(const ism_slurm_jobs_t *jobs, const struct poolmap *pools, const char *ns,
                    uint64_t *mirrored);

struct mirror_input {
    const char *ns;
    const json_t *want;      /* mirror_want's */
    const json_t *have;      /* the cache: "ns/name" -> claim */
    const json_t *in_flight; /* claim name -> anything, NULL for none */
};

/* Append the writes that bring the cache to want to out.  -1 (ENOMEM). */
int mirror_plan(const struct mirror_input *in, struct writes *out);
/* The allocation write after a create: answer (the created claim,
 * carrying its resourceVersion) with wanted's status.  -1 (ENOMEM). */
int mirror_plan_status(const char *ns, const json_t *answer, const json_t *wanted,
                       struct writes *out);

/* ------------------------------------------------------------ the reconciler */

struct mirror_ctx {
    ism_kube_t *kube;            /* to watch the claims (its own cache) */
    struct applier *apply;       /* its writes, all of them */
    const struct poolmap *pools; /* Slurm node -> pool */
    const char *ns;              /* where the claims live */
    bool (*may_write)(void *arg); /* asked before a write the loop did not plan */
    void *arg;
    uint64_t *errors;            /* counts failed reconciles (may be NULL) */
};

struct mirror;

struct mirror *mirror_create(const struct mirror_ctx *ctx, ism_error_t *err);
void mirror_destroy(struct mirror *m); /* NULL is fine; before the client */
/* Its informer (for readiness and /metrics), or NULL; borrowed. */
ism_kube_informer_t *mirror_informer(const struct mirror *x);
bool mirror_synced(const struct mirror *m);
/* A new job snapshot (borrowed until the next call or destroy). */
void mirror_jobs_changed(struct mirror *m, const ism_slurm_jobs_t *jobs);
/* Jobs or the Node map changed: recompute the wanted claims. */
void mirror_mark(struct mirror *m);
int mirror_reconcile(struct mirror *m, int budget, bool *more);
int64_t mirror_wake_ms(const struct mirror *m);
void mirror_stats(const struct mirror *m, uint64_t *jobs, uint64_t *claims);

#endif
