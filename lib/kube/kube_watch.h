/* kube_watch.h - a local cache of one kind of object, kept current by
 * list + watch (an informer, in client-go's words).
 *
 * It lists the collection (paged), then watches from the list's
 * resourceVersion with bookmarks on, and:
 *  - when a watch ends (the server's timeout, a dropped connection, an API
 *    server restart) watches again from the last resourceVersion it saw,
 *    after the backoff of lib/util/backoff.h when it failed;
 *  - when the server answers 410 Gone (that resourceVersion is too old, e.g.
 *    after etcd compaction), lists again and hands the handlers the
 *    difference between the cache and the new list, so no change is lost:
 *    a missed update arrives as an update, a missed delete as a delete.
 * Every informer of a client runs on the client's event loop (kube.h): no
 * thread per watch.  Handlers are called from ism_kube_run only.
 *
 * Objects are stored whole except metadata.managedFields (dropped: it is
 * often half of an object and no controller here reads it).  Keys are
 * "namespace/name", or "name" for cluster-scoped objects.
 *
 * Ownership: the informer owns its cache.  Handlers get borrowed
 * references, valid during the call; json_incref what you keep.
 */
#ifndef ISTHMUS_KUBE_WATCH_H
#define ISTHMUS_KUBE_WATCH_H

#include "lib/kube/kube.h"

typedef struct ism_kube_informer ism_kube_informer_t;

typedef struct {
    /* an object appeared (also for each object of the first list) */
    void (*add)(void *arg, const char *key, json_t *obj);
    /* an object changed: old is the cached copy, obj the new one */
    void (*update)(void *arg, const char *key, json_t *old, json_t *obj);
    /* an object went away: old is its last cached copy */
    void (*del)(void *arg, const char *key, json_t *old);
    /* the cache holds a whole list again (after the first list, each relist) */
    void (*synced)(void *arg);
    /* optional, called first on every object received (each item of a list
     * as its page arrives, each watched object): change obj in place to
     * keep less of it in the cache, e.g. replace a large field by its
     * digest.  Keep metadata.name, namespace and resourceVersion. */
    void (*transform)(void *arg, json_t *obj);
} ism_kube_handlers_t;

typedef struct {
    uint64_t lists;        /* lists done, the first included */
    uint64_t watches;      /* watch requests started */
    uint64_t events;       /* ADDED, MODIFIED, DELETED events applied */
    uint64_t bookmarks;
    uint64_t gone;         /* 410 answers that forced a relist */
    uint64_t errors;       /* failed lists and watches */
} ism_kube_informer_stats_t;

/* Start an informer for resource r in namespace ns (NULL: all namespaces,
 * or a cluster-scoped resource), with optional selectors.  handlers may be
 * NULL (a plain cache); the struct is copied.  The first list happens on
 * the next ism_kube_run. */
ism_kube_informer_t *ism_kube_informer_create(ism_kube_t *k, const ism_kube_resource_t *r,
                                              const char *ns, const char *label_selector,
                                              const char *field_selector,
                                              const ism_kube_handlers_t *handlers, void *arg,
                                              ism_error_t *err);

/* Objects per list page (default 500).  Smaller pages bound the memory a
 * list of large objects takes before transform() shrinks them.  Takes
 * effect at the next list. */
void ism_kube_informer_set_page_size(ism_kube_informer_t *inf, int limit);

/* Ask for metadata alone (PartialObjectMetadata: name, uid,
 * resourceVersion, generation, labels, annotations, ownerReferences; no
 * spec, no status) in lists and watches, from the next list or watch on:
 * for an owner that needs no spec, it saves the server sending, and this
 * process decoding, whole objects.  A server that cannot do it sends whole
 * objects (the transform still sees every object).  Call right after
 * create to have it from the first list. */
void ism_kube_informer_set_metadata_only(ism_kube_informer_t *inf, bool metadata_only);

/* Stop watching and free the cache.  NULL is fine.  Not from a handler of
 * the same informer. */
void ism_kube_informer_destroy(ism_kube_informer_t *inf);

/* True while the cache holds a whole list: from the first list on, except
 * while a relist (after 410 Gone or lost data) is under way. */
bool ism_kube_informer_synced(const ism_kube_informer_t *inf);

/* How long (ms) its lists or watches have been failing without a success
 * in between; 0 when the last one worked or a watch is established (the
 * server answered it).  For readiness probes. */
int64_t ism_kube_informer_failing_ms(const ism_kube_informer_t *inf);

/* The cached object for key, or NULL; borrowed. */
json_t *ism_kube_informer_get(const ism_kube_informer_t *inf, const char *key);

/* The whole cache, an object from key to object; borrowed, do not modify. */
json_t *ism_kube_informer_cache(const ism_kube_informer_t *inf);

/* The last resourceVersion seen (list, event or bookmark); borrowed. */
const char *ism_kube_informer_resource_version(const ism_kube_informer_t *inf);

void ism_kube_informer_stats(const ism_kube_informer_t *inf, ism_kube_informer_stats_t *out);

/* The cache key of obj ("ns/name" or "name") into buf; -1 (EINVAL) when
 * obj has no name. */
int ism_kube_object_key(const json_t *obj, char *buf, size_t size);

#endif
