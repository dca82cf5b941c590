/* kube.h - a Kubernetes API client for daemons that run for months.
 *
 * One ism_kube_t per process and per API server: it owns a libcurl multi
 * handle, so every request and every watch of the process shares its
 * connections (HTTP/2, multiplexed over one TLS connection when the server
 * offers it), a client-side rate limiter (QPS and burst, as client-go's) and
 * the retry policy.
 *
 * Requests are asynchronous: ism_kube_request_async() and the typed *_async
 * helpers queue a call and return at once; the call is sent, retried after
 * a backoff and rate limited by the client's loop, and its callback runs
 * from ism_kube_run() -- never from inside the function that submitted it.
 * Any number of calls may be in flight at once, multiplexed on the one
 * connection.
 *
 * The synchronous functions (ism_kube_request, ism_kube_get, ...) are the
 * same calls followed by ism_kube_wait(): they drive the client until that
 * one call is over, so they block their caller for as long as the server
 * takes (retries included).  They are for command-line tools and tests; a
 * daemon's event loop must never call them.  While one waits, other calls
 * progress but their callbacks, watch events and timers wait for the next
 * ism_kube_run.
 *
 * Errors follow error.h.  A request that reached the server and failed
 * also fills the optional ism_kube_status_t with the server's Status (reason,
 * HTTP code, message, Retry-After).  errno is set from the reason:
 *   NotFound ENOENT, AlreadyExists EEXIST, Conflict EBUSY, Invalid and
 *   BadRequest EINVAL, Unauthorized and Forbidden EACCES, Gone ESTALE,
 *   TooManyRequests EAGAIN, Timeout ETIMEDOUT, other server errors EIO,
 *   transport failures ECONNREFUSED or ETIMEDOUT, a body that is not what
 *   the API promises EBADMSG, a write refused locally because this process
 *   is not the leader EPERM, a call cancelled ECANCELED.
 *
 * Retries: 429 and 5xx answers and connection failures are retried with
 * the capped exponential backoff of lib/util/backoff.h (Retry-After
 * respected), up to the client's retry limit, on timers: nothing waits.
 * 4xx answers other than 429 are never retried.  A write whose request may
 * have reached the server (the connection broke after sending) is not
 * retried, since it may have taken effect.
 *
 * Threading: an ism_kube_t and everything made from it belong to one thread.
 */
#ifndef ISTHMUS_KUBE_H
#define ISTHMUS_KUBE_H

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/util/error.h"
#include "lib/kube/kube_config.h"

typedef struct ism_kube ism_kube_t;

/* ---------------------------------------------------------------- client */

typedef struct {
    double qps;            /* sustained requests per second; <= 0: no limit */
    int burst;             /* bucket size (>= 1) */
    int max_retries;       /* retries after the first try (429, 5xx, network) */
    int backoff_base_ms;   /* first retry waits up to this, doubling */
    int backoff_cap_ms;    /* never more than this */
    int timeout_ms;        /* each try (retries not included) */
    const char *user_agent;
} ism_kube_options_t;

/* client-go's defaults: 5 QPS, burst 10; 10 retries, 100 ms to 30 s; 30 s. */
#define ISM_KUBE_OPTIONS_DEFAULT \
    { 5.0, 10, 10, 100, 30000, 30000, NULL }

/* Create a client.  cfg is copied (the caller keeps ownership of it); opts
 * NULL means ISM_KUBE_OPTIONS_DEFAULT. */
ism_kube_t *ism_kube_create(const ism_kube_config_t *cfg, const ism_kube_options_t *opts,
                            ism_error_t *err);

/* Stop every watch, free everything.  NULL is fine; errno is kept. */
void ism_kube_destroy(ism_kube_t *k);

/* The namespace of the config's context (or the service account's). */
const char *ism_kube_namespace(const ism_kube_t *k);

/* Counters since the client was created (for /metrics, and for tests that
 * a quiet controller writes nothing). */
typedef struct {
    uint64_t requests;     /* tries sent, retries included, streams included */
    uint64_t writes;       /* of which not GET */
    uint64_t retries;      /* tries after a failed one */
    uint64_t failures;     /* requests that failed in the end */
    uint64_t connections;  /* new connections made (TLS handshakes) */
    uint64_t http2;        /* answers that came over HTTP/2 */
} ism_kube_stats_t;

void ism_kube_stats(const ism_kube_t *k, ism_kube_stats_t *out);

/* ---------------------------------------------------------------- requests */

typedef enum {
    ISM_KUBE_OK = 0,
    ISM_KUBE_NOT_FOUND,
    ISM_KUBE_ALREADY_EXISTS,
    ISM_KUBE_CONFLICT,
    ISM_KUBE_INVALID,
    ISM_KUBE_BAD_REQUEST,
    ISM_KUBE_UNAUTHORIZED,
    ISM_KUBE_FORBIDDEN,
    ISM_KUBE_GONE,              /* 410: resourceVersion too old */
    ISM_KUBE_TOO_MANY_REQUESTS,
    ISM_KUBE_TIMEOUT,           /* 504, or the server's Timeout reason */
    ISM_KUBE_SERVER_ERROR,      /* other 5xx */
    ISM_KUBE_OTHER,             /* any other non-2xx */
    ISM_KUBE_TRANSPORT,         /* never got an HTTP answer */
    ISM_KUBE_BAD_RESPONSE,      /* an answer that is not the API's JSON */
    ISM_KUBE_NOT_LEADER,        /* refused locally: see ism_kube_set_write_guard */
} ism_kube_reason_t;

typedef struct {
    ism_kube_reason_t reason;
    long http_code;            /* 0 when there was no answer */
    int retry_after;           /* seconds the server asked for, or 0 */
    int attempts;              /* tries made, retries included */
    char message[512];         /* the server's Status message, if any */
} ism_kube_status_t;

/* Name of a reason ("NotFound", ...), as the API spells it. */
const char *ism_kube_reason_name(ism_kube_reason_t reason);

/* Make one request.  method is "GET", "POST", "PUT", "PATCH" or "DELETE";
 * path starts with "/" and may carry a query ("?labelSelector=...": escape
 * with ism_kube_escape); body may be NULL; content_type NULL means
 * "application/json" (give the patch type for PATCH).  On success *out (if
 * out is non-NULL) receives the decoded JSON answer, a new reference the
 * caller must json_decref.  Answers over 64 MiB are refused. */
int ism_kube_request(ism_kube_t *k, const char *method, const char *path, const json_t *body,
                     const char *content_type, json_t **out, ism_kube_status_t *st,
                     ism_error_t *err);

/* ---------------------------------------------------------------- async calls */

/* A call in flight.  The handle is valid until its callback returns (the
 * client frees it then) or until ism_kube_cancel / ism_kube_wait. */
typedef struct ism_kube_call ism_kube_call_t;

/* The outcome of a call, from ism_kube_run only: rc 0 or -1 (errno is set
 * as for the synchronous functions); st the server's status (attempts
 * included); answer the decoded JSON object on success (NULL on failure or
 * when there was no body to decode), BORROWED for the duration of the call:
 * json_incref what you keep; err the message on failure. */
typedef void (*ism_kube_call_f)(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                                json_t *answer, const ism_error_t *err);

/* Queue a request (arguments as ism_kube_request; body is copied, the
 * caller keeps it).  done(k, arg, ...) is called once, from ism_kube_run.
 * done may be NULL: then nothing is called and the caller must collect the
 * call with ism_kube_wait (the synchronous helpers do that).  Returns the
 * call, or NULL with errno and err when it could not even be queued (bad
 * arguments, out of memory); then done is never called. */
ism_kube_call_t *ism_kube_request_async(ism_kube_t *k, const char *method, const char *path,
                                        const json_t *body, const char *content_type,
                                        ism_kube_call_f done, void *arg, ism_error_t *err);

/* ism_kube_request_async with a body that is already JSON text (copied):
 * for a caller that splices text it keeps between calls, e.g. the same
 * device list in thousands of ResourceSlices, instead of encoding a tree
 * each time.  text may be NULL (no body). */
ism_kube_call_t *ism_kube_request_text_async(ism_kube_t *k, const char *method, const char *path,
                                             const char *text, const char *content_type,
                                             ism_kube_call_f done, void *arg, ism_error_t *err);

/* The Accept header of call c (copied; NULL: application/json), only right
 * after it was queued.  With ISM_KUBE_ACCEPT_METADATA the server answers
 * an object, a write included, with its metadata alone (kind
 * PartialObjectMetadata: no spec, no status); a list needs
 * ISM_KUBE_ACCEPT_METADATA_LIST.  Each ends in a plain application/json
 * fallback, so a server that cannot do it sends whole objects.  -1 with
 * errno (EINVAL: no call, ENOMEM). */
#define ISM_KUBE_ACCEPT_METADATA \
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#define ISM_KUBE_ACCEPT_METADATA_LIST \
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
int ism_kube_call_accept(ism_kube_call_t *c, const char *accept);

/* The rate limiter's lanes.  NORMAL calls share the client's bucket (qps,
 * burst).  EVENTS have a bucket of their own, of the same size, so that
 * Events never delay the writes they tell of.  URGENT calls take the
 * normal bucket ahead of NORMAL ones and may borrow up to one burst below
 * empty, which later calls pay back at the sustained rate: a short burst
 * of writes that is one decision (a gang's commit) is not spread over
 * seconds, while the client's long-run rate stays what it was. */
typedef enum { ISM_KUBE_LANE_NORMAL, ISM_KUBE_LANE_EVENTS, ISM_KUBE_LANE_URGENT,
               ISM_KUBE_LANES } ism_kube_lane_t;

/* Put call c in lane (NORMAL unless set), only right after it was queued.
 * NULL c or an unknown lane does nothing. */
void ism_kube_call_lane(ism_kube_call_t *c, ism_kube_lane_t lane);

/* Drop a call: its callback is never called, and a try under way is
 * aborted (a write may or may not have reached the server).  NULL is fine. */
void ism_kube_cancel(ism_kube_t *k, ism_kube_call_t *c);

/* Drive the client until call c (queued with done NULL) is over, then
 * free it.  Returns its rc; *out (if out is non-NULL) receives the answer,
 * a new reference.  Blocks: not for a daemon's loop (see above).  c NULL
 * (the call could not be queued) returns -1 and leaves err as it is. */
int ism_kube_wait(ism_kube_t *k, ism_kube_call_t *c, json_t **out, ism_kube_status_t *st,
                  ism_error_t *err);

/* How long (ms) the server has been failing: since the first of the tries
 * in a row that got no answer (transport failure, timeout) or a 5xx; 0
 * once any try got an answer.  For readiness probes. */
int64_t ism_kube_failing_ms(const ism_kube_t *k);

/* Calls queued or in flight (callbacks not run yet). */
size_t ism_kube_calls(const ism_kube_t *k);

/* Percent-encode s for a query value or a path segment.  Returns a string
 * the caller frees, or NULL with errno set. */
char *ism_kube_escape(const char *s);

/* Where a resource lives, e.g. {"", "v1", "configmaps", true} or
 * {"resource.k8s.io", "v1", "resourceslices", false}. */
typedef struct {
    const char *group;       /* "" for the core group */
    const char *version;
    const char *resource;    /* plural, lower case */
    bool namespaced;
} ism_kube_resource_t;

/* The path of a collection or object: ns NULL for cluster-scoped resources
 * (or for all namespaces), name NULL for the collection, sub NULL or a
 * subresource ("status", "binding", "eviction").  Returns a string the
 * caller frees, or NULL (EINVAL when a name is not a valid path segment). */
char *ism_kube_path(const ism_kube_resource_t *r, const char *ns, const char *name,
                    const char *sub);

/* Typed helpers over ism_kube_request for one object.  out as above. */
int ism_kube_get(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                 const char *name, json_t **out, ism_kube_status_t *st, ism_error_t *err);
int ism_kube_create_object(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                           const json_t *obj, json_t **out, ism_kube_status_t *st,
                           ism_error_t *err);
/* POST obj to a subresource of an object: "binding" or "eviction" of a
 * pod, for instance.  out as above (NULL is fine: some answer a Status). */
int ism_kube_create_subresource(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                                const char *name, const char *sub, const json_t *obj,
                                json_t **out, ism_kube_status_t *st, ism_error_t *err);

/* PUT obj (which carries metadata.resourceVersion for optimistic locking)
 * to the object or to its subresource sub (NULL for none). */
int ism_kube_update(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                    const json_t *obj, const char *sub, json_t **out, ism_kube_status_t *st,
                    ism_error_t *err);

typedef enum {
    ISM_KUBE_PATCH_MERGE,       /* application/merge-patch+json */
    ISM_KUBE_PATCH_JSON,        /* application/json-patch+json */
    ISM_KUBE_PATCH_STRATEGIC,   /* application/strategic-merge-patch+json */
    ISM_KUBE_PATCH_APPLY,       /* server-side apply (needs a field manager) */
} ism_kube_patch_t;

/* PATCH the object (or its subresource).  field_manager is required for
 * ISM_KUBE_PATCH_APPLY (applied with force=true: isthmus owns what it
 * applies) and optional otherwise. */
int ism_kube_patch(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                   const char *name, const char *sub, ism_kube_patch_t type,
                   const json_t *patch, const char *field_manager, json_t **out,
                   ism_kube_status_t *st, ism_error_t *err);

/* DELETE, with optional preconditions (uid and/or resourceVersion, NULL
 * for none).  Deleting an object that is not there fails with NotFound. */
int ism_kube_delete(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                    const char *name, const char *uid, const char *resource_version,
                    ism_kube_status_t *st, ism_error_t *err);

/* List every object of a collection, page by page (limit per page, 0 for
 * 500), following "continue".  On success *items is a new array of the
 * objects (each with kind and apiVersion filled in as the server leaves
 * them empty in lists) and *resource_version (if non-NULL) the list's
 * resourceVersion, a string the caller frees.  A 410 while paging (the
 * continue token expired) fails with ESTALE; the caller lists again.
 * selectors may be NULL. */
int ism_kube_list(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                  const char *label_selector, const char *field_selector, int limit,
                  json_t **items, char **resource_version, ism_kube_status_t *st,
                  ism_error_t *err);

/* The same helpers, asynchronous: the same arguments, the outcome handed
 * to done from ism_kube_run (see ism_kube_request_async; done NULL for
 * ism_kube_wait).  ism_kube_list_async's answer is one List object of every
 * page: {"kind", "apiVersion", "metadata": {"resourceVersion"}, "items"}. */
ism_kube_call_t *ism_kube_get_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                    const char *ns, const char *name, ism_kube_call_f done,
                                    void *arg, ism_error_t *err);
ism_kube_call_t *ism_kube_create_object_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                              const char *ns, const json_t *obj,
                                              ism_kube_call_f done, void *arg,
                                              ism_error_t *err);
ism_kube_call_t *ism_kube_create_subresource_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                                   const char *ns, const char *name,
                                                   const char *sub, const json_t *obj,
                                                   ism_kube_call_f done, void *arg,
                                                   ism_error_t *err);
ism_kube_call_t *ism_kube_update_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                       const char *ns, const json_t *obj, const char *sub,
                                       ism_kube_call_f done, void *arg, ism_error_t *err);
ism_kube_call_t *ism_kube_patch_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                      const char *ns, const char *name, const char *sub,
                                      ism_kube_patch_t type, const json_t *patch,
                                      const char *field_manager, ism_kube_call_f done,
                                      void *arg, ism_error_t *err);
ism_kube_call_t *ism_kube_delete_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                       const char *ns, const char *name, const char *uid,
                                       const char *resource_version, ism_kube_call_f done,
                                       void *arg, ism_error_t *err);
ism_kube_call_t *ism_kube_list_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                     const char *ns, const char *label_selector,
                                     const char *field_selector, int limit,
                                     ism_kube_call_f done, void *arg, ism_error_t *err);

/* ---------------------------------------------------------------- write guard */

/* A write guard is asked before every try of a non-GET request how long
 * this process may still write, in ms.  When it answers 0 or less the
 * request fails at once with ISM_KUBE_NOT_LEADER (EPERM) and nothing is
 * sent (asked again before each retry, not only before the first try).  Otherwise the try must be over by then: its timeout is cut to the
 * answer, and an answer that arrives later is reported as ISM_KUBE_TIMEOUT
 * (the write may or may not have been applied; it is not retried).  So no
 * write of a leader frozen mid-request can reach the server after its
 * lease let it write.  The leader elector installs itself as the guard. */
typedef int64_t (*ism_kube_guard_f)(void *arg);
void ism_kube_set_write_guard(ism_kube_t *k, ism_kube_guard_f guard, void *arg);

/* ---------------------------------------------------------------- event loop */

/* Run the client's event loop once: wait up to timeout_ms (-1: until
 * something happens) for network activity, a timer, or one of the caller's
 * extra descriptors (their revents are filled in), then hand queued watch
 * events to their handlers and run due timers.  Returns 0, or -1 when
 * polling itself failed.  A daemon calls it in its main loop. */
int ism_kube_run(ism_kube_t *k, struct pollfd *extra, unsigned n_extra, int timeout_ms,
                 ism_error_t *err);

/* Timers on the loop (leader election renewals, event flushes, backoff).
 * The caller embeds the timer in its own struct, so arming one cannot fail:
 * a timer never silently stops an informer, the elector or a poll. */
typedef struct ism_kube_timer ism_kube_timer_t;
typedef void (*ism_kube_timer_f)(ism_kube_t *k, void *arg);
struct ism_kube_timer {       /* members are the client's */
    int64_t due;
    ism_kube_timer_f fn;
    void *arg;
    bool armed;
    uint64_t gen;
    struct ism_kube_timer *next;
};

/* Set fn and arg of an unarmed timer. */
void ism_kube_timer_init(ism_kube_timer_t *t, ism_kube_timer_f fn, void *arg);
/* Call fn(k, arg) once from ism_kube_run after delay_ms (<= 0: on the next
 * turn); an armed timer is moved to the new time.  The timer is disarmed
 * before fn runs, so fn may arm it again.  Cannot fail. */
void ism_kube_timer_arm(ism_kube_t *k, ism_kube_timer_t *t, int64_t delay_ms);
/* Disarm (an unarmed timer, or k or t NULL, is fine).  Disarm a timer
 * before freeing the struct that holds it. */
void ism_kube_timer_disarm(ism_kube_t *k, ism_kube_timer_t *t);
bool ism_kube_timer_armed(const ism_kube_timer_t *t);

/* Milliseconds on a monotonic clock (the one timers use). */
int64_t ism_kube_now_ms(void);

#endif
