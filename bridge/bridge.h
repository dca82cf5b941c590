/* bridge.h - the state isthmusd's parts share, on its one event loop.
 *
 * isthmusd has two threads: the event loop (Kubernetes requests, watches,
 * timers, the HTTP endpoints, every reconcile) and the Slurm agent's owner
 * thread (slurm_agent.h).  Everything here belongs to the loop's thread.
 *
 * The loop keeps three informers (Nodes, our ResourceSlices, our claims)
 * and the last Slurm snapshots, and reconciles level-based: a change marks
 * what it touches dirty (a pool, the mirror), and the loop recomputes what
 * should exist for it and writes the difference, a bounded number of
 * writes per turn so timers (the Lease) and the HTTP endpoints keep going.
 * Only the leader writes; a standby keeps its caches warm.
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
#include "poolmap.h"

/* Jobs isthmus itself submits (gangs of pods, isthmusd part 2) carry an
 * admin comment starting with this; the mirror leaves them alone, since
 * their pods' own claims already hold their cores. */
#define BRIDGE_JOB_TAG "isthmus.io/"

/* Writes a reconcile may make in one turn of the loop before it yields. */
#define BRIDGE_WRITES_PER_TURN 32

/* The collections isthmusd writes (resource.k8s.io/v1). */
extern const ism_kube_resource_t bridge_slices;
extern const ism_kube_resource_t bridge_claims;

struct slices; /* slices.c: ResourceSlices per pool */
struct mirror; /* mirror.c: claims mirroring Slurm jobs */

struct bridge {
    const ism_config_t *cfg;
    const char *ns;               /* Namespace: claims, the Lease */
    ism_kube_t *kube;
    ism_kube_leader_t *leader;    /* NULL with LeaderElection=no */
    ism_kube_recorder_t *events;
    ism_slurm_agent_t *slurm;

    ism_kube_informer_t *nodes;   /* every Node, shrunk to name, uid, our label */
    ism_kube_informer_t *slice_inf; /* ResourceSlices of driver cpu.isthmus.io */
    ism_kube_informer_t *claim_inf; /* claims isthmusd manages in ns */

    ism_slurm_nodes_t *snodes;    /* last Slurm node snapshot, NULL before one */
    ism_slurm_jobs_t *sjobs;      /* last job snapshot, NULL before one */
    bool jobs_unsupported;        /* this Slurm cannot tell job cores */

    struct poolmap *pools;        /* Slurm node <-> Kubernetes Node (pool) */
    bool pool_map_stale;          /* Nodes changed labels or membership */

    struct slices *slices;
    struct mirror *mirror;

    bool stopping;

    /* Slurm polling: nodes then jobs, every SlurmPollInterval */
    struct ism_slurm_request nodes_req, jobs_req;
    ism_kube_timer_t *poll_timer;
    bool poll_busy;               /* requests with the agent */
    bool slurm_down;              /* the last poll failed (logged once) */

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
/* Every informer has its first list. */
bool bridge_synced(const struct bridge *b);

/* The Kubernetes Node (pool) of Slurm node name, or NULL: the Node with
 * label isthmus.io/slurm-node=name, else the Node called name unless it is
 * labelled for another Slurm node.  Borrowed. */
const char *bridge_pool_of(struct bridge *b, const char *slurm_node);
/* The Slurm node whose pool is the Kubernetes Node pool, or NULL. */
const char *bridge_slurm_of(struct bridge *b, const char *pool);
/* The cached Node object called name, or NULL.  Borrowed. */
json_t *bridge_node(struct bridge *b, const char *name);

/* True while this replica holds the Lease (always without election). */
bool bridge_leading(const struct bridge *b);
/* True when the loop may write now: leading, and every cache synced. */
bool bridge_may_write(const struct bridge *b);

/* slices.c */
struct slices *slices_create(struct bridge *b, ism_error_t *err);
void slices_destroy(struct slices *s);
/* Informer handlers for the ResourceSlice informer. */
extern const ism_kube_handlers_t slices_handlers;
/* Mark one pool, or every known pool, for a reconcile. */
void slices_mark(struct slices *s, const char *pool);
void slices_mark_all(struct slices *s);
/* A new Slurm node snapshot replaced old (NULL at the first). */
void slices_slurm_changed(struct slices *s, const ism_slurm_nodes_t *old,
                          const ism_slurm_nodes_t *cur);
/* Reconcile dirty pools, at most budget writes; returns writes made, and
 * sets *more when dirty pools remain. */
int slices_reconcile(struct slices *s, int budget, bool *more);
/* Milliseconds until a pool waiting after a failure is due, -1 if none. */
int64_t slices_wake_ms(const struct slices *s);
/* A new leader tells every topology problem again (as Events). */
void slices_forget_told(struct slices *s);
void slices_stats(const struct slices *s, uint64_t *pools, uint64_t *no_topology);

/* mirror.c */
struct mirror *mirror_create(struct bridge *b, ism_error_t *err);
void mirror_destroy(struct mirror *m);
extern const ism_kube_handlers_t mirror_handlers;
/* Jobs or the Node map changed: recompute the wanted claims. */
void mirror_mark(struct mirror *m);
int mirror_reconcile(struct mirror *m, int budget, bool *more);
int64_t mirror_wake_ms(const struct mirror *m);
void mirror_stats(const struct mirror *m, uint64_t *jobs, uint64_t *claims);

#endif
