/* slurm_adapter.h - the one place where isthmus speaks libslurm.
 *
 * These are plain synchronous calls, each one or a few RPCs to slurmctld.
 * libslurm makes no promise about threads, so a process calls them from
 * one thread only: tools (isthmus-topology) call them directly, isthmusd
 * through the owner thread of slurm_agent.h.  A handle keeps what makes the
 * reads incremental (the last messages and their update times).
 *
 * This library (libisthmus_slurm) links libslurm; libisthmus does not, so
 * the SPANK plugin never loads it.
 *
 * Errors follow error.h.  When Slurm refused or could not be reached, errno
 * is Slurm's error number (slurm_errno.h, or a system errno) and err holds
 * slurm_strerror's text; ism_slurm_error_is_transient() tells whether a
 * retry may succeed.  Builds against Slurm 22.05 up to 26.05: calls that
 * moved between releases are guarded on SLURM_VERSION_NUMBER, and the table
 * "Slurm releases" in lib/README.md lists each difference and its release.
 */
#ifndef ISTHMUS_SLURM_ADAPTER_H
#define ISTHMUS_SLURM_ADAPTER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lib/util/bitmap.h"
#include "lib/util/error.h"
#include "lib/topology/node_extra.h"
#include "lib/topology/topology.h"

typedef struct ism_slurm ism_slurm_t;

/* Initialise libslurm once per process with slurm.conf at conf (NULL:
 * SLURM_CONF, then the default place) and return a handle (caller
 * destroys).  Reads nothing from slurmctld yet.  Fails at once, never in
 * libslurm's fatal(), when ism_slurm_conf_check() (slurm_conf.h) finds the
 * file missing or unusable. */
ism_slurm_t *ism_slurm_create(const char *conf, ism_error_t *err);
void ism_slurm_destroy(ism_slurm_t *s); /* NULL ok, keeps errno */

/* True for errors that may go away on retry: slurmctld unreachable, timed
 * out, busy.  errnum is an errno set by a function of this header. */
bool ism_slurm_error_is_transient(int errnum);

/* ---- node Extra and the published topology ---- */

/* The node's Extra field (caller frees; "" when empty). */
char *ism_slurm_node_extra(ism_slurm_t *s, const char *node, ism_error_t *err);
/* Replace the node's Extra field ("" clears it).  Needs SlurmUser or root. */
int ism_slurm_node_set_extra(ism_slurm_t *s, const char *node, const char *extra,
                             ism_error_t *err);

/* Longest node name publish reports as a holder. */
#define ISM_SLURM_NODE_NAME_MAX 64

/* How to publish a topology, and what happened. */
struct ism_publish {
    /* in */
    const char *const *holders; /* NULL-terminated nodes to try first as holder, or NULL */
    bool full;                  /* store the full encoding, never a reference */
    bool force;                 /* replace an Extra that is not a JSON object */
    /* out */
    bool changed;               /* an update RPC was sent */
    char holder[ISM_SLURM_NODE_NAME_MAX + 1]; /* a node found holding the encoding
                                                 when a reference is stored; "" when
                                                 the full encoding is */
};

/* Store topo_json (ism_topo_encode's canonical text) under the key "isthmus"
 * of the node's Extra, keeping other keys (see ism_extra_merge for force
 * and the refusals): as a reference (node_extra.h) when another node
 * already holds the same encoding in full, else in full.  The nodes tried,
 * each with one single-node read: p->holders, then the first node of each
 * partition holding the node (so a homogeneous partition converges on one
 * holder, even when its nodes first published all at once); when none
 * holds it and the node published it before, the whole table once: a node
 * naming it keeps any holder, one holding it gives way to a holder before
 * it in slurmctld's order.  No RPC updates the node when the stored value
 * is already the one to store. */
int ism_slurm_publish_topology(ism_slurm_t *s, const char *node, const char *topo_json,
                               struct ism_publish *p, ism_error_t *err);
/* The topology JSON text published for node (caller frees), following a
 * reference to the first node of one of its partitions, or else to any
 * node holding that digest (one read of the whole node table).  NULL with
 * ENOENT when none was published or the reference leads nowhere. */
char *ism_slurm_fetch_topology(ism_slurm_t *s, const char *node, ism_error_t *err);

/* ---- nodes ---- */

struct ism_slurm_node {
    char *name;
    uint32_t state;         /* Slurm's node_state: base | flags */
    const char *state_name; /* base state, lower case: "idle", "mixed", ... */
    char **partitions;      /* the partitions holding the node */
    int npartitions;
    char *features;         /* active features, comma separated, "" when none */
    char *extra;            /* the whole Extra field, "" when empty */
    const ism_topo_t *topo; /* the published topology, NULL if none or bad;
                               lives as long as the snapshot */
    char topo_error[sizeof(((ism_error_t *)0)->text)]; /* why topo is NULL ("" if none) */
    uint16_t sockets;       /* per node, as Slurm counts */
    uint16_t cores_per_socket;
    uint16_t threads_per_core;
    uint32_t cpus;
    uint64_t real_memory;   /* MiB */
    uint32_t alloc_cpus;
    uint64_t alloc_memory;  /* MiB */
    struct ism_topo_share *topo_share; /* the adapter's: topo, shared with every
                                          node of the same machine and with later
                                          snapshots while Extra is unchanged */
};

/* A partition's limits, as slurmctld has them. */
struct ism_slurm_partition {
    char *name;
    uint32_t max_time;     /* minutes; ISM_SLURM_UNLIMITED: none */
    uint32_t default_time; /* minutes; ISM_SLURM_UNLIMITED: none (max_time applies) */
    bool is_default;       /* Default=YES: jobs naming no partition go here */
};
#define ISM_SLURM_UNLIMITED UINT32_MAX

typedef struct {
    time_t updated;          /* slurmctld's time of this node table */
    int count;
    struct ism_slurm_node *nodes; /* in slurmctld's order */
    int npartitions;
    struct ism_slurm_partition *partitions; /* in slurmctld's order */
    struct ism_slurm_name_index *by_name; /* the adapter's: for ism_slurm_nodes_find */
} ism_slurm_nodes_t;

/* Read the nodes (and their partitions) if anything changed since the last
 * call on this handle.  Returns 1 with *nodes a new snapshot the caller
 * destroys, 0 with *nodes NULL when nothing changed (one RPC for the nodes
 * and one for the partitions, each answered "no change"), -1 with err.
 * slurmctld compares whole seconds and errs towards "changed": polls made
 * in the second of a change return 1 again, with equal content.  A node
 * whose Extra is unchanged shares its decoded topology with the previous
 * snapshot, so such a poll costs Slurm's RPC and little more; nodes of the
 * same machine share one topology (equal topo pointers), and a reference
 * in Extra (node_extra.h) resolves to it (lib/topology/extra_table.h). */
int ism_slurm_nodes_poll(ism_slurm_t *s, ism_slurm_nodes_t **nodes, ism_error_t *err);
void ism_slurm_nodes_destroy(ism_slurm_nodes_t *nodes); /* NULL ok */
/* The node called name in the snapshot, or NULL (a binary search). */
const struct ism_slurm_node *ism_slurm_nodes_find(const ism_slurm_nodes_t *nodes,
                                                  const char *name);
/* Forget the update times: the next poll reads everything. */
void ism_slurm_reset(ism_slurm_t *s);

/* ---- jobs ---- */

struct ism_slurm_job_node {
    char *name;
    ism_bitmap_t *cores; /* Slurm abstract core indices (device core-<N>) */
    uint32_t cpus;       /* cpus Slurm counts as allocated on the node */
    uint64_t memory;     /* MiB allocated on the node */
};

struct ism_slurm_job {
    uint32_t id;
    uint32_t state;         /* job_state: base | flags */
    const char *state_name; /* base state, upper case like squeue: "RUNNING" */
    uint32_t user_id;
    char *name, *comment, *admin_comment, *partition;
    char *reason;           /* why it waits or ended, as squeue shows it
                               ("Resources", "Priority"), "" for none */
    const char *hopeless;   /* a pending job that can never start as asked:
                               what it asks beyond the configuration
                               (static text), else NULL */
    char *nodes;            /* hostlist expression, "" while pending */
    int nnodes;
    struct ism_slurm_job_node *node; /* one per node while it holds resources */
};

typedef struct {
    time_t updated;
    int count;
    struct ism_slurm_job *jobs; /* every job not yet finished */
    int nended;
    struct ism_slurm_job *ended; /* finished jobs slurmctld still lists
                                    (MinJobAge): no nodes, no cores */
} ism_slurm_jobs_t;

/* Same contract as ism_slurm_nodes_poll, for jobs.  Lists pending,
 * running, suspended and completing jobs; finished ones are left out.
 * Reads with SHOW_DETAIL, which brings each job's core bitmaps.  Slurm
 * 24.11 removed the calls that read those bitmaps: built against 24.11 or
 * 25.05, the adapter reads them itself and checks them (job_resrcs.h); a
 * job whose record does not check out fails the poll with EPROTO naming
 * it.  From 25.11 the cores come from one more RPC per running job, and a
 * suspended or completing job has no nodes (lib/README.md, "Slurm
 * releases"). */
int ism_slurm_jobs_poll(ism_slurm_t *s, ism_slurm_jobs_t **jobs, ism_error_t *err);
void ism_slurm_jobs_destroy(ism_slurm_jobs_t *jobs); /* NULL ok */
const struct ism_slurm_job *ism_slurm_jobs_find(const ism_slurm_jobs_t *jobs, uint32_t id);

/* ---- cores and the topology model ---- */

/* The OS cpus of a set of abstract cores on a node of topology topo (new
 * bitmap, caller destroys); NULL with EINVAL naming the first core that
 * the topology does not have. */
ism_bitmap_t *ism_slurm_cores_to_cpus(const ism_topo_t *topo, const ism_bitmap_t *cores,
                                      ism_error_t *err);
/* "core-<N>" device names of cores, comma separated (caller frees). */
char *ism_slurm_core_devices(const ism_bitmap_t *cores);

/* ---- allocations without a script ---- */

struct ism_slurm_alloc_req {
    const char *name, *partition, *account, *qos, *comment, *admin_comment;
    uint32_t min_nodes, max_nodes; /* 0: Slurm's default */
    uint32_t num_tasks;            /* 0: one per node */
    uint32_t cpus_per_task;        /* 0: 1 */
    uint32_t ntasks_per_node;      /* 0: not set */
    uint64_t mem_per_cpu;          /* MiB, 0: DefMemPerCPU */
    uint32_t time_limit;           /* minutes, 0: the partition's */
    bool immediate;                /* grant now or fail, never queue */
    bool exclusive;                /* whole nodes (sbatch --exclusive) */
    bool as_user;                  /* run as uid:gid below, not the caller
                                      (the caller must be root or SlurmUser) */
    uint32_t uid, gid;
};

struct ism_slurm_alloc {
    uint32_t job_id;
    bool granted; /* false: the job is pending; poll jobs to see it start */
    char nodes[1024]; /* hostlist when granted, possibly truncated */
};

/* Ask for an allocation (for the calling user unless req->as_user): no script, no listening
 * port, so nothing waits for slurmctld's answer and nothing runs on the
 * nodes.  It lives until ism_slurm_complete, a cancel or its time limit.
 * A request slurmctld refuses (unknown partition, invalid account with
 * accounting enforced) fails at once with Slurm's error; one that slurmctld
 * queued although it can never start (more nodes or cpus than the
 * partition has) is cancelled and fails with EINVAL saying why.  A failed
 * call is not retried here: a lost answer could mean a granted job, which
 * the caller finds again by its name. */
int ism_slurm_allocate(ism_slurm_t *s, const struct ism_slurm_alloc_req *req,
                       struct ism_slurm_alloc *alloc, ism_error_t *err);
/* End an allocation as done (like salloc's exit), with exit code rc. */
int ism_slurm_complete(ism_slurm_t *s, uint32_t job_id, int rc, ism_error_t *err);
/* Cancel a job, pending or running. */
int ism_slurm_cancel(ism_slurm_t *s, uint32_t job_id, ism_error_t *err);
/* Send sig to every step of a job. */
int ism_slurm_signal(ism_slurm_t *s, uint32_t job_id, int sig, ism_error_t *err);

#endif
