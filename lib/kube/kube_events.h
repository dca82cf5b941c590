/* kube_events.h - Events (events.k8s.io/v1) about objects, the way users
 * see them in `kubectl describe` and `kubectl events`.
 *
 * A recorder never blocks its caller on the API: ism_kube_event() queues,
 * and the writes happen on the client's loop (kube.h).  It also protects
 * the API server from a controller stuck in a loop:
 *  - repeats (same object, type, reason, action and note) within
 *    ISM_KUBE_EVENT_SERIES_MS of the last one become one Event with a
 *    series {count, lastObservedTime}, updated at most every
 *    ISM_KUBE_EVENT_FLUSH_MS;
 *  - each object gets a token bucket of ISM_KUBE_EVENT_BURST new Events,
 *    refilled by one every ISM_KUBE_EVENT_REFILL_MS (client-go's spam
 *    filter: 25, one per 5 minutes); what exceeds it is dropped and counted.
 * A failed write is logged and dropped: events are advisory.  Writes are
 * asynchronous (kube.h): at most one per Event in flight.
 *
 * Ownership: the recorder belongs to the client's thread; destroy it
 * before the client.  Destroying drops what is still pending: to keep it,
 * ism_kube_recorder_flush, then drive ism_kube_run while
 * ism_kube_recorder_pending() (bounded), then destroy.
 */
#ifndef ISTHMUS_KUBE_EVENTS_H
#define ISTHMUS_KUBE_EVENTS_H

#include "lib/kube/kube.h"

#define ISM_KUBE_EVENT_SERIES_MS (6 * 60 * 1000)
#define ISM_KUBE_EVENT_FLUSH_MS 30000
#define ISM_KUBE_EVENT_BURST 25
#define ISM_KUBE_EVENT_REFILL_MS (5 * 60 * 1000)

typedef struct ism_kube_recorder ism_kube_recorder_t;

typedef struct {
    uint64_t recorded;   /* calls to ism_kube_event */
    uint64_t created;    /* Event objects created */
    uint64_t series;     /* series updates written */
    uint64_t dropped;    /* refused by the per-object limit */
    uint64_t failed;     /* writes the API refused */
} ism_kube_recorder_stats_t;

/* controller: reportingController ("isthmus.io/isthmusd"); instance:
 * reportingInstance (this replica, e.g. the host name).  Copied. */
ism_kube_recorder_t *ism_kube_recorder_create(ism_kube_t *k, const char *controller,
                                              const char *instance, ism_error_t *err);

/* Free; writes in flight are cancelled, pending ones dropped.  NULL is
 * fine. */
void ism_kube_recorder_destroy(ism_kube_recorder_t *r);

/* Record an event about regarding (an API object: apiVersion, kind,
 * metadata.name and, if it has them, namespace and uid; the event goes to
 * its namespace, or "default" for cluster-scoped objects).  type is
 * "Normal" or "Warning"; reason is CamelCase ("NoTopology"); action says
 * what isthmus did or tried ("Publish").  The note is cut at 1 KiB.
 * Returns -1 (EINVAL) only for bad arguments. */
int ism_kube_event(ism_kube_recorder_t *r, const json_t *regarding, const char *type,
                   const char *reason, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Send everything pending now (tests, shutdown); the writes complete on
 * the loop. */
void ism_kube_recorder_flush(ism_kube_recorder_t *r);

/* Events with a write in flight or still to write. */
size_t ism_kube_recorder_pending(const ism_kube_recorder_t *r);

void ism_kube_recorder_stats(const ism_kube_recorder_t *r, ism_kube_recorder_stats_t *out);

#endif
