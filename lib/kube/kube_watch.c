/* kube_watch.c - informers: list + watch into a local cache.  See
 * kube_watch.h for the behaviour; this file is the state machine:
 *
 *   list --ok--> watch --ends normally--> watch (from the last version)
 *     ^            |----fails-----------> backoff --> watch
 *     |            '----410 / lost data--> list
 *     '--fails-- backoff
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kube/kube_internal.h"
#include "lib/kube/kube_watch.h"
#include "lib/util/backoff.h"
#include "lib/util/log.h"
#include "lib/util/random.h"

#define MAX_LINE (16u << 20)      /* one watch event; etcd objects are <= 1.5 MiB */
#define WATCH_SECONDS 300         /* server-side watch timeout, plus jitter up to 2x */
static const ism_backoff_t BACKOFF = { 200, 30000 };

struct ism_kube_informer {
    ism_kube_t *k;
    char *path;                  /* the collection's path */
    char *selectors;             /* "&labelSelector=..&fieldSelector=.." or "" */
    char *label, *field;
    ism_kube_handlers_t h;
    void *arg;
    json_t *cache;               /* key -> object */
    char *rv;
    bool synced;
    int page;                    /* list page size, 0 for the default */
    bool metadata_only;          /* ask for PartialObjectMetadata */
    ism_kube_stream_t *stream;
    ism_kube_call_t *list;       /* the list in flight */
    ism_kube_timer_t timer;      /* the next list or watch */
    int64_t failing_since;       /* monotonic ms of the first failure in a row, 0 */
    char *buf;                   /* the watch stream's partial line */
    size_t len, cap;
    json_t *queue;               /* decoded events not yet applied */
    bool relist;                 /* the stream said 410, or lost data */
    int failures;                /* consecutive, for the backoff */
    ism_kube_informer_stats_t stats;
};

static void list_now(ism_kube_t *k, void *arg);
static void watch_now(ism_kube_t *k, void *arg);

int ism_kube_object_key(const json_t *obj, char *buf, size_t size)
{
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    int n;

    if (!name || !*name || !buf) {
        errno = EINVAL;
        return -1;
    }
    n = ns && *ns ? snprintf(buf, size, "%s/%s", ns, name) : snprintf(buf, size, "%s", name);
    if (n < 0 || (size_t)n >= size) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static const char *object_rv(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

static void set_rv(ism_kube_informer_t *inf, const char *rv)
{
    char *copy;
    if (!rv || !*rv || (inf->rv && strcmp(inf->rv, rv) == 0) || !(copy = strdup(rv)))
        return;
    free(inf->rv);
    inf->rv = copy;
}

/* What goes into the cache: no managedFields, then the owner's transform. */
static void strip(ism_kube_informer_t *inf, json_t *obj)
{
    json_object_del(json_object_get(obj, "metadata"), "managedFields");
    if (inf->h.transform)
        inf->h.transform(inf->arg, obj);
}

static void strip_item(void *arg, json_t *item)
{
    strip(arg, item);
}

/* A list or watch failed: note since when, for readiness. */
static void failed(ism_kube_informer_t *inf)
{
    inf->stats.errors++;
    if (!inf->failing_since)
        inf->failing_since = ism_kube_now_ms();
}

/* Run fn next, after a backoff that grows with consecutive failures. */
static void backoff(ism_kube_informer_t *inf, ism_kube_timer_f fn)
{
    inf->failures++;
    inf->timer.fn = fn;
    ism_kube_timer_arm(inf->k, &inf->timer, ism_backoff_delay(&BACKOFF, inf->failures));
}

/* Run fn on the next turn of the loop. */
static void soon(ism_kube_informer_t *inf, ism_kube_timer_f fn)
{
    inf->timer.fn = fn;
    ism_kube_timer_arm(inf->k, &inf->timer, 0);
}

/* ------------------------------------------------------------------ list */

/* Make cache hold exactly items; tell the handlers what changed. */
static bool replace_cache(ism_kube_informer_t *inf, json_t *items)
{
    json_t *old = inf->cache, *fresh = json_object(), *item, *prev;
    const char *key;
    char kbuf[600];
    size_t i;

    if (!fresh)
        return false;
    json_array_foreach(items, i, item) {
        if (ism_kube_object_key(item, kbuf, sizeof(kbuf)) == 0 &&
            json_object_set(fresh, kbuf, item) < 0) {
            /* Out of memory: keep the old cache and list again later. */
            json_decref(fresh);
            return false;
        }
    }
    inf->cache = fresh;
    json_object_foreach(fresh, key, item) {
        prev = json_object_get(old, key);
        if (!prev) {
            if (inf->h.add)
                inf->h.add(inf->arg, key, item);
        } else if (!object_rv(prev) || !object_rv(item) ||
                   strcmp(object_rv(prev), object_rv(item)) != 0) {
            if (inf->h.update)
                inf->h.update(inf->arg, key, prev, item);
        }
    }
    json_object_foreach(old, key, prev) {
        if (!json_object_get(fresh, key) && inf->h.del)
            inf->h.del(inf->arg, key, prev);
    }
    json_decref(old);
    return true;
}

static void list_done(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                      json_t *answer, const ism_error_t *err)
{
    ism_kube_informer_t *inf = arg;
    const char *rv = json_string_value(
        json_object_get(json_object_get(answer, "metadata"), "resourceVersion"));
    char *copy = rv ? strdup(rv) : NULL;
    (void)st;

    inf->list = NULL;
    if (rc < 0 || !copy || !replace_cache(inf, json_object_get(answer, "items"))) {
        free(copy);
        failed(inf);
        ism_log_warn("list %s: %s", inf->path, rc < 0 ? err->text : "out of memory");
        backoff(inf, list_now);
        return;
    }
    free(inf->rv);
    inf->rv = copy;
    inf->synced = true;
    inf->failures = 0;
    inf->failing_since = 0;
    if (inf->h.synced)
        inf->h.synced(inf->arg);
    watch_now(k, inf);
}

static void list_now(ism_kube_t *k, void *arg)
{
    ism_kube_informer_t *inf = arg;
    ism_error_t err = ISM_ERROR_INIT;

    inf->relist = false;
    inf->stats.lists++;
    inf->list = ism_kube_list_path_async(k, inf->path, inf->label, inf->field, inf->page,
                                         strip_item, inf, list_done, inf, &err);
    if (inf->list && inf->metadata_only &&
        ism_kube_call_accept(inf->list, ISM_KUBE_ACCEPT_METADATA_LIST) < 0) {
        ism_kube_cancel(k, inf->list);
        inf->list = NULL;
        ism_err(&err, ENOMEM, "out of memory");
    }
    if (!inf->list) {
        failed(inf);
        ism_log_warn("list %s: %s", inf->path, err.text);
        backoff(inf, list_now);
    }
}

/* ------------------------------------------------------------------ watch */

/* Decode one line of the stream into the queue.  False: the stream is
 * not what the API promises; stop it and relist. */
static bool queue_line(ism_kube_informer_t *inf, const char *line, size_t len)
{
    json_t *ev;

    if (len == 0)
        return true;
    ev = json_loadb(line, len, 0, NULL);
    if (!json_is_object(ev) || !json_is_string(json_object_get(ev, "type")) ||
        !json_is_object(json_object_get(ev, "object"))) {
        json_decref(ev);
        return false;
    }
    /* json_array_append_new takes ev even when it fails: never free it here. */
    return json_array_append_new(inf->queue, ev) == 0;
}

/* From inside curl: split the stream into lines and queue them. */
static size_t on_data(const char *data, size_t len, void *arg)
{
    ism_kube_informer_t *inf = arg;
    size_t start = 0;

    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n')
            continue;
        if (inf->len) {
            if (inf->len + (i - start) > MAX_LINE)
                goto lost;
            char *joined = malloc(inf->len + (i - start));
            if (!joined)
                goto lost;
            memcpy(joined, inf->buf, inf->len);
            memcpy(joined + inf->len, data + start, i - start);
            bool ok = queue_line(inf, joined, inf->len + (i - start));
            free(joined);
            inf->len = 0;
            if (!ok)
                goto lost;
        } else if (!queue_line(inf, data + start, i - start)) {
            goto lost;
        }
        start = i + 1;
    }
    if (start < len) {
        size_t rest = len - start;
        if (inf->len + rest > MAX_LINE)
            goto lost;
        if (inf->len + rest > inf->cap) {
            size_t cap = inf->cap ? inf->cap : 65536;
            while (cap < inf->len + rest)
                cap *= 2;
            char *p = realloc(inf->buf, cap);
            if (!p)
                goto lost;
            inf->buf = p;
            inf->cap = cap;
        }
        memcpy(inf->buf + inf->len, data + start, rest);
        inf->len += rest;
    }
    return len;
lost:
    /* An event we could not read may be lost: only a relist repairs that. */
    inf->relist = true;
    inf->len = 0;
    return 0;
}

/* Apply one event to the cache and tell the handlers. */
static void apply_event(ism_kube_informer_t *inf, json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object"), *old;
    char key[600];

    if (strcmp(type, "BOOKMARK") == 0) {
        inf->stats.bookmarks++;
        set_rv(inf, object_rv(obj));
        return;
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        if (code == 410) {
            inf->stats.gone++;
        } else {
            inf->stats.errors++;
            ism_log_warn("watch %s: error event %lld: %s", inf->path, (long long)code,
                         json_string_value(json_object_get(obj, "message")));
        }
        inf->relist = true; /* the server ends the stream after an error */
        return;
    }
    if (ism_kube_object_key(obj, key, sizeof(key)) < 0) {
        ism_log_warn("watch %s: %s event for an object without a name, ignored", inf->path, type);
        return;
    }
    ism_log_debug("watch %s: %s %s", inf->path, type, key);
    strip(inf, obj);
    old = json_incref(json_object_get(inf->cache, key));
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        json_object_set(inf->cache, key, obj);
        if (old && inf->h.update)
            inf->h.update(inf->arg, key, old, obj);
        else if (!old && inf->h.add)
            inf->h.add(inf->arg, key, obj);
    } else if (strcmp(type, "DELETED") == 0) {
        json_object_del(inf->cache, key);
        if (old && inf->h.del)
            inf->h.del(inf->arg, key, old);
    } else {
        ism_log_warn("watch %s: unknown event type %s, ignored", inf->path, type);
    }
    json_decref(old);
    inf->stats.events++;
    set_rv(inf, object_rv(obj));
}

/* From ism_kube_run: apply what the stream queued. */
static void dispatch(ism_kube_t *k, void *arg)
{
    ism_kube_informer_t *inf = arg;
    json_t *q = inf->queue;
    size_t i;
    json_t *ev;
    (void)k;

    if (json_array_size(q) == 0)
        return;
    if (!(inf->queue = json_array())) {
        inf->queue = q; /* try again next time */
        return;
    }
    json_array_foreach(q, i, ev) {
        if (!inf->relist)
            apply_event(inf, ev);
    }
    json_decref(q);
}

static void on_done(ism_kube_t *k, const ism_kube_status_t *st, const char *text, void *arg)
{
    ism_kube_informer_t *inf = arg;
    (void)k;

    if (ism_kube_stream_open(inf->stream)) {
        /* It ran: a failure now is the first of a new series. */
        inf->failures = 0;
        inf->failing_since = 0;
    }
    ism_log_debug("watch %s: ended (%s)", inf->path, ism_kube_reason_name(st->reason));
    inf->stream = NULL;
    inf->len = 0;
    if (inf->relist || st->reason == ISM_KUBE_GONE) {
        if (st->reason == ISM_KUBE_GONE)
            inf->stats.gone++;
        ism_log_info("watch %s: resourceVersion %s is gone, listing again", inf->path,
                     inf->rv ? inf->rv : "?");
        /* The cache may have missed changes: not synced until the list. */
        inf->synced = false;
        soon(inf, list_now);
    } else if (st->reason == ISM_KUBE_OK) {
        inf->failures = 0;
        inf->failing_since = 0;
        soon(inf, watch_now);
    } else {
        failed(inf);
        ism_log_warn("watch %s: %s%s%s", inf->path, ism_kube_reason_name(st->reason),
                     text && *text ? ": " : "", text ? text : "");
        backoff(inf, watch_now);
    }
}

static void watch_now(ism_kube_t *k, void *arg)
{
    ism_kube_informer_t *inf = arg;
    ism_error_t err = ISM_ERROR_INIT;
    char *rv = ism_kube_escape(inf->rv ? inf->rv : "0"), *url = NULL;
    int seconds = WATCH_SECONDS + (int)ism_random_below(WATCH_SECONDS);

    if (rv && asprintf(&url, "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s"
                       "&timeoutSeconds=%d%s", inf->path, rv, seconds, inf->selectors) < 0)
        url = NULL;
    inf->stats.watches++;
    ism_log_debug("watch %s: from resourceVersion %s", inf->path, rv ? rv : "?");
    free(rv);
    if (url)
        inf->stream = ism_kube_stream_start(k, url,
                                            inf->metadata_only ? ISM_KUBE_ACCEPT_METADATA : NULL,
                                            (seconds + 60) * 1000L, on_data, on_done, inf, &err);
    free(url);
    if (!inf->stream) {
        failed(inf);
        ism_log_warn("watch %s: %s", inf->path, err.text[0] ? err.text : "out of memory");
        backoff(inf, watch_now);
    }
}

/* ------------------------------------------------------------------ life cycle */

ism_kube_informer_t *ism_kube_informer_create(ism_kube_t *k, const ism_kube_resource_t *r,
                                              const char *ns, const char *label_selector,
                                              const char *field_selector,
                                              const ism_kube_handlers_t *handlers, void *arg,
                                              ism_error_t *err)
{
    ism_kube_informer_t *inf;

    if (!k || !r) {
        ism_err(err, EINVAL, "informer: bad arguments");
        return NULL;
    }
    if (!(inf = calloc(1, sizeof(*inf)))) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    inf->k = k;
    if (handlers)
        inf->h = *handlers;
    inf->arg = arg;
    if (!(inf->path = ism_kube_path(r, ns, NULL, NULL))) {
        ism_err(err, EINVAL, "informer: bad resource or namespace");
        goto error;
    }
    if (!(inf->selectors = ism_kube_selector_query(label_selector, field_selector)) ||
        (label_selector && !(inf->label = strdup(label_selector))) ||
        (field_selector && !(inf->field = strdup(field_selector))) ||
        !(inf->cache = json_object()) || !(inf->queue = json_array()) ||
        ism_kube_add_dispatcher(k, dispatch, inf) < 0) {
        ism_err(err, errno ? errno : ENOMEM, "informer %s: cannot start", inf->path);
        goto error;
    }
    ism_kube_timer_init(&inf->timer, list_now, inf);
    ism_kube_timer_arm(k, &inf->timer, 0);
    return inf;
error:
    ism_kube_informer_destroy(inf);
    return NULL;
}

void ism_kube_informer_destroy(ism_kube_informer_t *inf)
{
    int saved = errno;

    if (!inf)
        return;
    ism_kube_remove_dispatcher(inf->k, dispatch, inf);
    ism_kube_timer_disarm(inf->k, &inf->timer);
    ism_kube_cancel(inf->k, inf->list);
    ism_kube_stream_cancel(inf->k, inf->stream);
    json_decref(inf->cache);
    json_decref(inf->queue);
    free(inf->buf);
    free(inf->rv);
    free(inf->path);
    free(inf->selectors);
    free(inf->label);
    free(inf->field);
    free(inf);
    errno = saved;
}

void ism_kube_informer_set_page_size(ism_kube_informer_t *inf, int limit)
{
    if (inf && limit >= 0)
        inf->page = limit;
}

void ism_kube_informer_set_metadata_only(ism_kube_informer_t *inf, bool metadata_only)
{
    if (inf)
        inf->metadata_only = metadata_only;
}

bool ism_kube_informer_synced(const ism_kube_informer_t *inf)
{
    return inf && inf->synced;
}

int64_t ism_kube_informer_failing_ms(const ism_kube_informer_t *inf)
{
    /* A watch the server has answered is a success, even before its
     * first event: an idle watch may stay silent for minutes. */
    if (!inf || !inf->failing_since || ism_kube_stream_open(inf->stream))
        return 0;
    int64_t ms = ism_kube_now_ms() - inf->failing_since;
    return ms > 0 ? ms : 1;
}

json_t *ism_kube_informer_get(const ism_kube_informer_t *inf, const char *key)
{
    return inf && key ? json_object_get(inf->cache, key) : NULL;
}

json_t *ism_kube_informer_cache(const ism_kube_informer_t *inf)
{
    return inf ? inf->cache : NULL;
}

const char *ism_kube_informer_resource_version(const ism_kube_informer_t *inf)
{
    return inf ? inf->rv : NULL;
}

void ism_kube_informer_stats(const ism_kube_informer_t *inf, ism_kube_informer_stats_t *out)
{
    if (inf && out)
        *out = inf->stats;
}
