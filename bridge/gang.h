/* gang.h - the gang scheduler: pods with spec.schedulerName "isthmus" run
 * as atomic Slurm allocations.
 *
 * The third reconciler beside slices.h and mirror.h, with a narrow context
 * of its own.  Its decisions are the pure functions of gang_plan.h; this
 * file drives them from the caches and hands the writes to the applier
 * and the Slurm requests to the agent.  A pod goes, in five files:
 * the watch (here: gang_pods informer) -> its gang and demand
 * (gang_plan.c) -> the Slurm request (gang_plan.c, slurm_agent.h) -> the
 * split and commit plan (gang_plan.c) -> the writes (apply.c).
 *
 * Per gang, level-based: each pass looks at what the caches and the last
 * Slurm job snapshot hold and takes the next step, so a restart (or the
 * standby taking over) carries on from wherever the last one stopped.
 *
 *   waiting     fewer members than the gang's minimum: an Event says how
 *               many are missing; after GangWaitTimeout a Warning says so,
 *               and the pods stay pending
 *   submitting  every member's claims parse: one allocation is asked of
 *               Slurm, named k8s:NS/NAME, admin comment isthmus.io/gang=KEY
 *               (how a restart finds it again: a gang with a job never asks
 *               twice)
 *   pending     Slurm queued it: an Event gives Slurm's reason
 *   committing  Slurm granted cores: gang_split places the pods, then
 *               gang_commit_plan writes finalizers, allocations and
 *               reservations, and only then the bindings
 *   bound       every pod bound; when all of them have finished the
 *               allocation is completed
 *   undoing     a commit that cannot finish (a claim or pod taken, a pod
 *               deleted, a grant that cannot be split aligned): written
 *               claims are released, pods already bound are deleted (a
 *               gang is bound whole or not at all), the job is cancelled;
 *               then the gang waits again (a whole-node shape next, for a
 *               grant that could not be aligned)
 *   failed      Slurm refused the request or the pods ask for what
 *               isthmus does not serve: Events say why; tried again after
 *               a backoff, or at once when a member changes
 * and whenever Slurm ends a gang's job (scancel, time limit, node
 * failure) its pods are deleted with an Event naming the cause.
 *
 * Claims isthmus allocated carry the finalizer isthmus.io/gang; one whose
 * reserved pods are all gone or finished is released (allocation cleared,
 * finalizer dropped) by the same pass, gang or no gang.
 *
 * Threads: everything here runs on the client's loop thread; the agent's
 * callbacks come through ism_slurm_agent_dispatch on that thread.
 */
#ifndef ISTHMUS_BRIDGE_GANG_H
#define ISTHMUS_BRIDGE_GANG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bridge/apply.h"
#include "bridge/gang_plan.h"
#include "bridge/policy.h"
#include "bridge/poolmap.h"
#include "lib/kube/kube_events.h"
#include "lib/kube/kube_watch.h"
#include "lib/slurm/slurm_agent.h"

struct gangs_ctx {
    ism_kube_t *kube;             /* its own caches: pods, claims, PodGroups */
    struct applier *apply;        /* every write */
    ism_slurm_agent_t *slurm;     /* allocate, complete, cancel */
    ism_kube_recorder_t *events;  /* what the pods' owners read */
    const struct poolmap *pools;  /* Slurm node <-> pool */
    bool (*may_write)(void *arg); /* asked before a write the pass did not plan */
    void (*poll_now)(void *arg);  /* read Slurm's jobs again soon (a grant) */
    void *arg;
    uint64_t *errors;             /* failed passes (may be NULL) */
    struct gang_defaults defaults; /* isthmus.conf's partition, account, ... */
    const struct policy *policy;   /* GangPolicy lines (policy.h); outlives the gangs */
    uid_t uid;                    /* the Slurm user gang jobs run as */
    gid_t gid;
    int wait_timeout_s;           /* GangWaitTimeout */
};

/* Counters for /metrics. */
#define GANG_LATENCY_BUCKETS 12
struct gangs_stats {
    uint64_t waiting, pending, committing, bound, failed; /* gangs now */
    uint64_t bound_total, failed_total, submitted_total, ended_total;
    uint64_t refused_total; /* gangs the GangPolicy or a partition's MaxTime refused */
    /* seconds from the last member's creation to the last binding */
    uint64_t latency_counts[GANG_LATENCY_BUCKETS]; /* cumulative, per bound below */
    double latency_sum;
    uint64_t latency_count;
};
extern const double gang_latency_bounds[GANG_LATENCY_BUCKETS];

struct gangs;

struct gangs *gangs_create(const struct gangs_ctx *ctx, ism_error_t *err);
void gangs_destroy(struct gangs *g); /* NULL ok; after the agent and the applier */
bool gangs_synced(const struct gangs *g);
int64_t gangs_failing_ms(const struct gangs *g);
/* A job poll answered: the snapshots in force, borrowed until the next
 * call; changed when the jobs (or nodes) are a new snapshot.  seq numbers
 * the poll; a gang's job counts as ended only in a snapshot from a poll
 * that started after its allocation. */
void gangs_slurm_seen(struct gangs *g, const ism_slurm_nodes_t *nodes,
                      const ism_slurm_jobs_t *jobs, uint64_t seq, bool changed);
/* The number the next poll will carry. */
void gangs_poll_started(struct gangs *g, uint64_t seq);
void gangs_mark(struct gangs *g);
/* One pass: at most budget writes; *more when work was left. */
int gangs_reconcile(struct gangs *g, int budget, bool *more);
int64_t gangs_wake_ms(const struct gangs *g);
/* Whether a gang needs Slurm's job table read soon (a job pending,
 * committing or bound: its end must be seen within a poll). */
bool gangs_active(const struct gangs *g);
/* Whether a gang's granted job waits for a node the last node snapshot
 * lacked, or its topology: read the nodes at the next poll. */
bool gangs_want_nodes(const struct gangs *g);
void gangs_stats(const struct gangs *g, struct gangs_stats *out);

#endif
