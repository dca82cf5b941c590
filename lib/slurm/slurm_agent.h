/* slurm_agent.h - one owner thread for every libslurm call of a process.
 *
 * libslurm promises nothing about threads, so isthmusd gives all its Slurm
 * work to one thread: the event loop submits requests, the agent's thread
 * runs them one at a time with the synchronous calls of slurm_adapter.h,
 * and the loop learns of finished requests through a file descriptor it
 * polls (ism_slurm_agent_fd) and then runs their callbacks in its own
 * thread (ism_slurm_agent_dispatch).
 *
 * Transient errors (slurmctld down, timed out, busy: see
 * ism_slurm_error_is_transient) are retried with capped exponential
 * backoff (lib/util/backoff.h: equal jitter; waits on the monotonic
 * clock, so setting the wall clock neither stretches nor skips them): polls, completes, cancels and signals until they succeed, fail
 * for good, reach max_attempts, or the agent is destroyed.  Allocations are
 * never retried: a lost answer may hide a granted job, and only the caller
 * can look for it (by its name) before asking again.
 */
#ifndef ISTHMUS_SLURM_AGENT_H
#define ISTHMUS_SLURM_AGENT_H

#include "lib/slurm/slurm_adapter.h"

typedef struct ism_slurm_agent ism_slurm_agent_t;

enum ism_slurm_op {
    ISM_SLURM_POLL_NODES, /* out: rc 1 and nodes, or rc 0 (unchanged) */
    ISM_SLURM_POLL_JOBS,  /* out: rc 1 and jobs, or rc 0 */
    ISM_SLURM_ALLOCATE,   /* in: alloc_req; out: alloc */
    ISM_SLURM_COMPLETE,   /* in: job_id, value = exit code */
    ISM_SLURM_CANCEL,     /* in: job_id */
    ISM_SLURM_SIGNAL,     /* in: job_id, value = signal */
};

struct ism_slurm_request;
typedef void (*ism_slurm_done_f)(struct ism_slurm_request *req, void *arg);

/* A request is the caller's memory (and so are the strings of alloc_req)
 * from submit until its callback has run; the agent only fills the out
 * fields.  The nodes and jobs snapshots it returns are the caller's. */
struct ism_slurm_request {
    /* in */
    enum ism_slurm_op op;
    uint32_t job_id;
    int value;
    struct ism_slurm_alloc_req alloc_req;
    int max_attempts; /* 0: retry transient errors without limit */
    /* out */
    int rc;           /* the synchronous call's result, -1 on error */
    int errnum;       /* errno of the last failure */
    ism_error_t err;  /* its message */
    int attempts;     /* calls made */
    ism_slurm_nodes_t *nodes;
    ism_slurm_jobs_t *jobs;
    struct ism_slurm_alloc alloc;
    /* the agent's */
    ism_slurm_done_f done;
    void *arg;
    struct ism_slurm_request *next;
};

/* Start the owner thread, with libslurm initialised from conf (see
 * ism_slurm_create).  Backoff starts at 100 ms and is capped at 5 s. */
ism_slurm_agent_t *ism_slurm_agent_create(const char *conf, ism_error_t *err);

/* Change the backoff (milliseconds, 1 <= first <= cap). */
int ism_slurm_agent_set_backoff(ism_slurm_agent_t *a, int first_ms, int cap_ms,
                                ism_error_t *err);

/* Readable when finished requests wait for ism_slurm_agent_dispatch. */
int ism_slurm_agent_fd(const ism_slurm_agent_t *a);

/* Queue req; done(req, arg) will run in the thread that dispatches. */
int ism_slurm_agent_submit(ism_slurm_agent_t *a, struct ism_slurm_request *req,
                           ism_slurm_done_f done, void *arg, ism_error_t *err);

/* Run the callbacks of finished requests, oldest first; returns how many. */
int ism_slurm_agent_dispatch(ism_slurm_agent_t *a);

/* Stop the thread (a request under way finishes its current call, a
 * retry waiting stops), then run every callback still owed: requests never
 * started end with rc -1 and errnum ECANCELED.  NULL ok, keeps errno. */
void ism_slurm_agent_destroy(ism_slurm_agent_t *a);

#endif
