/* kube_leader.h - leader election on a coordination.k8s.io/v1 Lease, with
 * client-go's rules, so that of several replicas only one writes.
 *
 * Every retry period each candidate reads the Lease (asynchronously: the
 * elector never blocks the loop; each request is one try bounded by half
 * the renew deadline).  A lease held by
 * another is respected for lease_ms after this candidate last saw it
 * change (its own clock, never the holder's timestamps, so clock skew
 * between machines does not matter); after that it is taken over with an
 * update carrying the resourceVersion read, so of two candidates only one
 * wins.  The leader renews every retry period.
 *
 * Safety: the elector installs itself as the client's write guard
 * (kube.h).  The leader may write only until renew_deadline_ms after the
 * start of its last successful renewal; a successor waits at least lease_ms
 * after it saw that renewal.  With renew_deadline_ms < lease_ms the old
 * leader has stopped writing before anyone else can start, even when it is
 * frozen (SIGSTOP, a long GC-like stall) rather than dead.
 *
 * Ownership: the elector belongs to the client's thread and must be
 * destroyed before the client.
 */
#ifndef ISTHMUS_KUBE_LEADER_H
#define ISTHMUS_KUBE_LEADER_H

#include "lib/kube/kube.h"

typedef struct ism_kube_leader ism_kube_leader_t;

typedef struct {
    const char *ns;          /* namespace of the Lease */
    const char *name;        /* the Lease's name */
    const char *identity;    /* this candidate, unique (e.g. host_pid) */
    int lease_ms;            /* client-go default 15000 */
    int renew_deadline_ms;   /* 10000; must be < lease_ms */
    int retry_ms;            /* 2000; must be < renew_deadline_ms */
    void (*started)(void *arg);  /* became the leader */
    void (*stopped)(void *arg);  /* is no longer the leader */
    void *arg;
} ism_kube_leader_options_t;

/* Start campaigning (first attempt on the next ism_kube_run) and install
 * the write guard.  Strings are copied. */
ism_kube_leader_t *ism_kube_leader_create(ism_kube_t *k, const ism_kube_leader_options_t *o,
                                          ism_error_t *err);

/* True while this process may write (see Safety above). */
bool ism_kube_leader_is_leader(const ism_kube_leader_t *le);

/* Lease writes this elector has tried (creates, renewals, the release),
 * so a daemon can tell its own object writes from the election's in the
 * client's counters. */
uint64_t ism_kube_leader_writes(const ism_kube_leader_t *le);

/* Give the lease up (holder cleared) so a successor need not wait for it
 * to expire; used on a clean shutdown.  Stops writing and campaigning at
 * once, then reads and writes the Lease from the loop: drive ism_kube_run
 * while ism_kube_leader_releasing() (bounded) before destroying.  Returns
 * -1 only when the read could not even be queued. */
int ism_kube_leader_release(ism_kube_leader_t *le, ism_error_t *err);
bool ism_kube_leader_releasing(const ism_kube_leader_t *le);

/* Stop campaigning and remove the write guard (without releasing the
 * lease).  NULL is fine. */
void ism_kube_leader_destroy(ism_kube_leader_t *le);

#endif
