/* bridge.h - isthmusd's state, on its one event loop.
 *
 * isthmusd has two threads: the event loop (Kubernetes requests, watches,
 * timers, the HTTP endpoints, every reconcile) and the Slurm agent's owner
 * thread (slurm_agent.h).  Everything here belongs to the loop's thread.
 *
 * The bridge owns the client, the Node informer, the Node <-> Slurm node
 * map (poolmap.h), the last Slurm snapshots, leader election, the applier
 * (apply.h) and three reconcilers, each given a narrow context at create:
 * slices.h (ResourceSlices per pool), mirror.h (claims mirroring Slurm
 * jobs) and gang.h (isthmus pods as Slurm allocations).  The arrows go one
 * way: bridge -> slices, mirror, gang, poolmap, apply;
 * the reconcilers never see struct bridge.
 *
 * Reconcile is level-based: a change marks what it touches dirty (a pool,
 * the mirror), and the loop recomputes what should exist for it and writes
 * the difference, a bounded number of writes per turn so timers (the
 * Lease) and the HTTP endpoints keep going.  Only the leader writes; a
 * standby keeps its caches warm.
 */
#ifndef ISTHMUS_BRIDGE_H
#define ISTHMUS_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/util/conffile.h"
#include "lib/kube/kube.h"
#include "lib/kube/kube_events.h"
#include "lib/kube/kube_leader.h"
#include "lib/kube/kube_watch.h"
#include "lib/slurm/slurm_agent.h"
#include "bridge/apply.h"
#include "bridge/gang.h"
#include "bridge/mirror.h"
#include "bridge/poolmap.h"
#include "bridge/slices.h"
#include "bridge/taint.h"

/* Writes the reconcilers may have in flight, submitted in one turn of the
 * loop or still unanswered, before the loop yields. */
#define BRIDGE_WRITES_PER_TURN 32

struct bridge {
    const ism_config_t *cfg;
    const char *ns;               /* Namespace: claims, the Lease */
    ism_kube_t *kube;
    ism_kube_leader_t *leader;    /* NULL with LeaderElection=no */
    ism_kube_recorder_t *events;
    ism_slurm_agent_t *slurm;

    ism_kube_informer_t *nodes;   /* every Node, shrunk to name, uid, our label */
    struct applier *apply;        /* every write of the reconcilers */

    ism_slurm_nodes_t *snodes;    /* last Slurm node snapshot, NULL before one */
    ism_slurm_jobs_t *sjobs;      /* last job snapshot, NULL before one */

    struct poolmap *pools;        /* Slurm node <-> Kubernetes Node (pool) */
    bool pool_map_stale;          /* Nodes changed labels or membership */

    struct slices *slices;
    struct mirror *mirror;
    struct gangs *gangs;          /* NULL with Gangs=no */
    struct policy policy;         /* GangPolicy lines (empty: none) */

    bool stopping;

    /* Slurm polling: jobs every SlurmPollInterval, nodes (before them)
     * every SlurmNodePollInterval or when the gangs wait for one */
    struct ism_slurm_request nodes_req, jobs_req;
    int64_t nodes_due_ms;         /* monotonic ms: read the nodes again from then */
    ism_kube_timer_t poll_timer;
    bool poll_busy;               /* requests with the agent */
    bool poll_soon;               /* poll again as soon as this one ends */
    bool nodes_changed;           /* a new node snapshot since the gangs saw one */
    uint64_t polls_started;       /* numbers the polls, for the gangs */
    bool slurm_down;              /* the last poll failed (logged once) */

    /* TaintBridgedNodes (taint.h) */
    bool taint;
    bool taints_dirty;            /* a Node, the map or the Slurm nodes changed */
    json_t *taint_calls;          /* Node name -> resourceVersion patched: in flight */
    char *taint_cursor;           /* the Node the last pass ran out of budget at */
    json_t *taint_done;           /* Node name -> resourceVersion a patch of
                                     ours succeeded on, until the informer
                                     shows a newer one */
    int64_t taint_retry_ms;       /* after a failed patch, not before */
    int taint_failures;

    /* counters for /metrics */
    uint64_t slurm_polls, slurm_poll_errors, reconcile_errors;
};

/* Start everything from the config: the Kubernetes client, informers,
 * leader election, the Slurm agent and the first poll.  On failure err
 * says what; call bridge_destroy either way. */
int bridge_create(struct bridge *b, const ism_config_t *cfg, ism_error_t *err);
/* Give the Lease up (when leading) and free everything. */
void bridge_destroy(struct bridge *b);
/* After each ism_kube_run: take Slurm's answers, refresh the Node map,
 * reconcile.  Returns how long the loop may sleep (ms; 0 when work is
 * left, -1 for no limit). */
int bridge_work(struct bridge *b);
/* Every informer holds a whole list (its first, or the last relist). */
bool bridge_synced(const struct bridge *b);
/* How long (ms) the API server has been failing: the longest of the
 * informers' failing times and the client's (kube.h); 0 when all is well. */
int64_t bridge_failing_ms(const struct bridge *b);

/* True while this replica holds the Lease (always without election). */
bool bridge_leading(const struct bridge *b);
/* True when the loop may write now: leading, and every cache synced. */
bool bridge_may_write(const struct bridge *b);

/* Stop writing: flush pending Events while still leading, wait for their
 * writes (bounded), then give the Lease up.  bridge_destroy calls it. */
void bridge_stop(struct bridge *b);

#endif
