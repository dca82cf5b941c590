/* kube_internal.h - what kube.c shares with the other kube_*.c files.
 * Not installed, not for components: they use kube.h and kube_watch.h.
 */
#ifndef ISTHMUS_KUBE_INTERNAL_H
#define ISTHMUS_KUBE_INTERNAL_H

#include <curl/curl.h>

#include "lib/kube/kube.h"

/* A stream: a long-running GET (a watch) whose body arrives in pieces.
 * on_data gets every piece as it arrives, from inside curl (possibly while
 * a synchronous caller waits in ism_kube_wait): it may only buffer, never call back
 * into the client.  on_done is called from ism_kube_run with the outcome,
 * after which the stream is freed by the client. */
typedef struct ism_kube_stream ism_kube_stream_t;
typedef size_t (*ism_kube_data_f)(const char *data, size_t len, void *arg);
typedef void (*ism_kube_done_f)(ism_kube_t *k, const ism_kube_status_t *st, const char *text,
                                void *arg);

/* Start a streaming GET of path (with its query), asking for accept (NULL:
 * application/json).  timeout_ms bounds the whole stream (0: none).
 * Returns NULL with errno set and err filled. */
ism_kube_stream_t *ism_kube_stream_start(ism_kube_t *k, const char *path, const char *accept,
                                         long timeout_ms, ism_kube_data_f on_data,
                                         ism_kube_done_f on_done, void *arg, ism_error_t *err);

/* Whether the server has answered the stream with 2xx headers: it is
 * established, even if no data has come yet (an idle watch sends none for
 * minutes).  Valid until on_done returns. */
bool ism_kube_stream_open(const ism_kube_stream_t *s);

/* Stop a stream now; on_done is not called.  NULL is fine. */
void ism_kube_stream_cancel(ism_kube_t *k, ism_kube_stream_t *s);

/* Register a function ism_kube_run calls after network activity, to hand
 * buffered watch events to handlers (at most 8 per client). */
typedef void (*ism_kube_dispatch_f)(ism_kube_t *k, void *arg);
int ism_kube_add_dispatcher(ism_kube_t *k, ism_kube_dispatch_f fn, void *arg);
void ism_kube_remove_dispatcher(ism_kube_t *k, ism_kube_dispatch_f fn, void *arg);

/* Decode an API answer: reason from the Status body when there is one,
 * else from the HTTP code; message copied into st.  body may be NULL.  A
 * 2xx body is not read (it is the answer itself; the reason is OK). */
void ism_kube_status_decode(long http_code, const char *body, size_t len,
                            ism_kube_status_t *st);

/* errno value for a reason (see kube.h). */
int ism_kube_reason_errno(ism_kube_reason_t reason);

/* "&labelSelector=L&fieldSelector=F" (escaped; each part only when given,
 * "" for neither), for a query string.  The caller frees it; NULL when out
 * of memory. */
char *ism_kube_selector_query(const char *label, const char *field);

/* ism_kube_list_async for a collection given by its path.  each (may be
 * NULL) is called on every item as its page arrives, before it is kept, so
 * an informer can shrink objects without ever holding the whole list in
 * its full size.  each runs from the client's loop while the list is under
 * way (possibly inside another caller's ism_kube_wait): it may change the
 * item, nothing else. */
typedef void (*ism_kube_item_f)(void *arg, json_t *item);
ism_kube_call_t *ism_kube_list_path_async(ism_kube_t *k, const char *path,
                                          const char *label_selector,
                                          const char *field_selector, int limit,
                                          ism_kube_item_f each, void *each_arg,
                                          ism_kube_call_f done, void *arg, ism_error_t *err);

/* A call of several requests (a paged list): page is called with each 2xx
 * answer (borrowed) and either sets *next to the path of the next request
 * (malloc'd; the call goes on with it, retries counted afresh) or *final to
 * the call's answer (a new reference), or fails (-1, err).  free_fn(state)
 * runs when the call is freed.  Only right after the call was queued. */
typedef int (*ism_kube_page_f)(void *state, json_t *answer, char **next, json_t **final,
                               ism_error_t *err);
void ism_kube_call_pages(ism_kube_call_t *c, ism_kube_page_f page, void (*free_fn)(void *),
                         void *state);

/* Per-call policy, only right after the call was queued: max_retries (-1
 * keeps the client's), timeout_ms of each try (0 keeps the client's), and
 * unguarded: the write guard is not asked and the rate limiter not waited
 * for (the elector's own Lease requests: optimistic locking protects their
 * writes, and renewals must not queue behind a busy leader's writes). */
void ism_kube_call_tune(ism_kube_call_t *c, int max_retries, long timeout_ms, bool unguarded);

/* The time now as an API MicroTime ("2026-11-23T16:40:00.123456Z"), a new
 * reference, or NULL when out of memory. */
json_t *ism_kube_micro_time_now(void);

#endif
