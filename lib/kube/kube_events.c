/* kube_events.c - the event recorder.  See kube_events.h. */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kube/kube_events.h"
#include "lib/kube/kube_internal.h"
#include "lib/util/log.h"
#include "lib/util/random.h"

#define MAX_TRACKED 4096     /* series and buckets kept; the oldest go first */
#define MAX_NOTE 1024

static const ism_kube_resource_t EVENTS = { "events.k8s.io", "v1", "events", true };

/* One Event and the repeats folded into it. */
typedef struct series {
    char *key;               /* object + type + reason + action + note */
    char *ns, *name;         /* of the Event object */
    json_t *event;           /* the body to create */
    uint64_t count, written; /* observed, and as the API has it */
    int64_t last_seen, last_write;
    json_t *last_time;       /* MicroTime of the last observation */
    struct ism_kube_recorder *r;
    ism_kube_call_t *call;   /* its write in flight */
    uint64_t writing;        /* the count that write carries */
    bool created;
    struct series *next;
} series_t;

/* The per-object token bucket. */
typedef struct bucket {
    char *object;
    double tokens;
    int64_t at;
    struct bucket *next;
} bucket_t;

struct ism_kube_recorder {
    ism_kube_t *k;
    char *controller, *instance;
    series_t *series;
    bucket_t *buckets;
    ism_kube_timer_t timer;
    size_t in_flight;        /* writes sent, not answered yet */
    ism_kube_recorder_stats_t stats;
};

static void flush_cb(ism_kube_t *k, void *arg);

static void series_free(series_t *s)
{
    if (!s)
        return;
    if (s->call) {
        ism_kube_cancel(s->r->k, s->call);
        s->r->in_flight--;
    }
    free(s->key);
    free(s->ns);
    free(s->name);
    json_decref(s->event);
    json_decref(s->last_time);
    free(s);
}

/* Keep at most MAX_TRACKED entries of a list (drop the tail: the list
 * is kept newest first). */
#define TRIM(head, type, freefn)                                      \
    do {                                                              \
        int n_ = 0;                                                   \
        for (type **pp_ = &(head); *pp_; pp_ = &(*pp_)->next)         \
            if (++n_ == MAX_TRACKED) {                                \
                type *rest_ = (*pp_)->next;                           \
                (*pp_)->next = NULL;                                  \
                while (rest_) {                                       \
                    type *t_ = rest_;                                 \
                    rest_ = t_->next;                                 \
                    freefn(t_);                                       \
                }                                                     \
                break;                                                \
            }                                                         \
    } while (0)

static void bucket_free(bucket_t *b)
{
    free(b->object);
    free(b);
}

/* Take a token for a new Event about object; false when it has none. */
static bool take_token(ism_kube_recorder_t *r, const char *object)
{
    int64_t now = ism_kube_now_ms();
    bucket_t *b, **pp;

    for (pp = &r->buckets; *pp && strcmp((*pp)->object, object) != 0; pp = &(*pp)->next)
        ;
    if ((b = *pp)) {
        *pp = b->next; /* move to the front */
    } else {
        if (!(b = calloc(1, sizeof(*b))) || !(b->object = strdup(object))) {
            free(b);
            return false;
        }
        b->tokens = ISM_KUBE_EVENT_BURST;
        b->at = now;
    }
    b->next = r->buckets;
    r->buckets = b;
    TRIM(r->buckets, bucket_t, bucket_free);
    b->tokens += (double)(now - b->at) / ISM_KUBE_EVENT_REFILL_MS;
    if (b->tokens > ISM_KUBE_EVENT_BURST)
        b->tokens = ISM_KUBE_EVENT_BURST;
    b->at = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

/* Run the flush after delay_ms, unless one is due sooner. */
static void schedule(ism_kube_recorder_t *r, int64_t delay_ms)
{
    int64_t due = ism_kube_now_ms() + delay_ms;
    if (ism_kube_timer_armed(&r->timer) && r->timer.due <= due)
        return;
    ism_kube_timer_arm(r->k, &r->timer, delay_ms);
}

/* The Event to create for a first observation. */
static json_t *new_event(ism_kube_recorder_t *r, const json_t *regarding, const char *ns,
                         const char *name, const char *type, const char *reason,
                         const char *action, const char *note, json_t *now)
{
    json_t *meta = json_object_get(regarding, "metadata");
    json_t *ref = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "apiVersion",
                            json_object_get(regarding, "apiVersion"), "kind",
                            json_object_get(regarding, "kind"), "name",
                            json_object_get(meta, "name"), "namespace",
                            json_object_get(meta, "namespace"), "uid",
                            json_object_get(meta, "uid"));
    if (!ref)
        return NULL;
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:O, s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
                     "apiVersion", "events.k8s.io/v1", "kind", "Event", "metadata", "name", name,
                     "namespace", ns, "eventTime", now, "reportingController", r->controller,
                     "reportingInstance", r->instance, "type", type, "reason", reason, "action",
                     action, "note", note, "regarding", ref);
}

/* A fresh series for a first observation. */
static series_t *start_series(ism_kube_recorder_t *r, const char *key, const json_t *regarding,
                              const char *type, const char *reason, const char *action,
                              const char *note, json_t *now)
{
    json_t *meta = json_object_get(regarding, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *obj = json_string_value(json_object_get(meta, "name"));
    series_t *s = calloc(1, sizeof(*s));
    char name[300];

    if (!s)
        return NULL;
    /* Unique and deterministic enough: the object's name, a random tail. */
    snprintf(name, sizeof(name), "%.200s.%08llx%08llx", obj,
             (unsigned long long)(ism_random_u64() >> 32),
             (unsigned long long)(ism_random_u64() >> 32));
    if (!(s->key = strdup(key)) || !(s->ns = strdup(ns && *ns ? ns : "default")) ||
        !(s->name = strdup(name)) ||
        !(s->event = new_event(r, regarding, s->ns, s->name, type, reason, action, note, now))) {
        series_free(s);
        return NULL;
    }
    s->r = r;
    s->count = 1;
    s->last_time = json_incref(now);
    s->last_seen = ism_kube_now_ms();
    return s;
}

static bool valid_args(const json_t *regarding, const char *type, const char *reason,
                       const char *action)
{
    json_t *meta = json_object_get(regarding, "metadata");
    return json_is_string(json_object_get(meta, "name")) &&
           json_is_string(json_object_get(regarding, "kind")) && type &&
           (strcmp(type, "Normal") == 0 || strcmp(type, "Warning") == 0) && reason && *reason &&
           strlen(reason) <= 128 && action && *action && strlen(action) <= 128;
}

int ism_kube_event(ism_kube_recorder_t *r, const json_t *regarding, const char *type,
                   const char *reason, const char *action, const char *fmt, ...)
{
    char note[MAX_NOTE + 1], *key = NULL, object[600];
    json_t *meta = json_object_get(regarding, "metadata");
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    series_t *s, **pp;
    va_list ap;

    if (!r || !fmt || !valid_args(regarding, type, reason, action)) {
        errno = EINVAL;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(note, sizeof(note), fmt, ap);
    va_end(ap);
    r->stats.recorded++;
    snprintf(object, sizeof(object), "%s/%s/%s/%s",
             json_string_value(json_object_get(regarding, "kind")),
             json_is_string(json_object_get(meta, "namespace"))
                 ? json_string_value(json_object_get(meta, "namespace")) : "",
             json_string_value(json_object_get(meta, "name")), uid ? uid : "");
    if (asprintf(&key, "%s\n%s\n%s\n%s\n%s", object, type, reason, action, note) < 0)
        return 0; /* out of memory: an advisory event is lost */
    json_t *now = ism_kube_micro_time_now();
    for (pp = &r->series; *pp && strcmp((*pp)->key, key) != 0; pp = &(*pp)->next)
        ;
    if ((s = *pp) && ism_kube_now_ms() - s->last_seen <= ISM_KUBE_EVENT_SERIES_MS) {
        *pp = s->next;
        s->count++;
        s->last_seen = ism_kube_now_ms();
        json_decref(s->last_time);
        s->last_time = json_incref(now);
        schedule(r, s->created ? ISM_KUBE_EVENT_FLUSH_MS : 0);
    } else {
        if (s) { /* an old series: a new Event starts */
            *pp = s->next;
            series_free(s);
        }
        s = NULL;
        if (!take_token(r, object))
            r->stats.dropped++;
        else if ((s = start_series(r, key, regarding, type, reason, action, note, now)))
            schedule(r, 0);
    }
    if (s) {
        s->next = r->series;
        r->series = s;
        TRIM(r->series, series_t, series_free);
    }
    json_decref(now);
    free(key);
    return 0;
}

static void written(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                    json_t *answer, const ism_error_t *err)
{
    series_t *s = arg;
    ism_kube_recorder_t *r = s->r;
    (void)k, (void)st, (void)answer;

    s->call = NULL;
    r->in_flight--;
    if (rc == 0 && !s->created)
        r->stats.created++;
    else if (rc == 0)
        r->stats.series++;
    if (rc < 0) {
        r->stats.failed++;
        ism_log_warn("event %s/%s: %s", s->ns, s->name, err->text);
    }
    /* Written or given up: either way it is not pending any more. */
    s->created = true;
    s->written = s->writing;
}

/* Create the Event, or write its series, from the loop; errors are
 * logged and dropped. */
static void write_series(ism_kube_recorder_t *r, series_t *s)
{
    ism_error_t err = ISM_ERROR_INIT;
    json_t *series = NULL, *patch = NULL;

    if (s->call)
        return; /* one write at a time per Event: the next flush sends the rest */
    if (s->count >= 2 &&
        !(series = json_pack("{s:I, s:O}", "count", (json_int_t)s->count, "lastObservedTime",
                             s->last_time)))
        goto fail;
    if (!s->created) {
        if (series && json_object_set(s->event, "series", series) < 0)
            goto fail;
        s->call = ism_kube_create_object_async(r->k, &EVENTS, s->ns, s->event, written, s,
                                               &err);
    } else {
        if (!(patch = json_pack("{s:O}", "series", series)))
            goto fail;
        s->call = ism_kube_patch_async(r->k, &EVENTS, s->ns, s->name, NULL,
                                       ISM_KUBE_PATCH_MERGE, patch, NULL, written, s, &err);
    }
    if (!s->call)
        goto fail;
    ism_kube_call_lane(s->call, ISM_KUBE_LANE_EVENTS);
    r->in_flight++;
    s->writing = s->count;
    s->last_write = ism_kube_now_ms();
    json_decref(series);
    json_decref(patch);
    return;
fail:
    r->stats.failed++;
    ism_log_warn("event %s/%s: %s", s->ns, s->name, err.text[0] ? err.text : "out of memory");
    s->created = true;
    s->written = s->count;
    s->last_write = ism_kube_now_ms();
    json_decref(series);
    json_decref(patch);
}

static void flush(ism_kube_recorder_t *r, bool all)
{
    int64_t now = ism_kube_now_ms();
    bool pending = false;

    for (series_t **pp = &r->series; *pp;) {
        series_t *s = *pp;
        if (!s->created ||
            (s->count > s->written && (all || now - s->last_write >= ISM_KUBE_EVENT_FLUSH_MS)))
            write_series(r, s);
        if (now - s->last_seen > ISM_KUBE_EVENT_SERIES_MS && s->written == s->count &&
            !s->call) {
            *pp = s->next;
            series_free(s);
            continue;
        }
        pending = pending || s->count > s->written || s->call;
        pp = &s->next;
    }
    if (pending)
        schedule(r, ISM_KUBE_EVENT_FLUSH_MS);
}

static void flush_cb(ism_kube_t *k, void *arg)
{
    ism_kube_recorder_t *r = arg;
    (void)k;
    flush(r, false);
}

void ism_kube_recorder_flush(ism_kube_recorder_t *r)
{
    if (r)
        flush(r, true);
}

ism_kube_recorder_t *ism_kube_recorder_create(ism_kube_t *k, const char *controller,
                                              const char *instance, ism_error_t *err)
{
    ism_kube_recorder_t *r;

    if (!k || !controller || !instance) {
        ism_err(err, EINVAL, "event recorder: bad arguments");
        return NULL;
    }
    if (!(r = calloc(1, sizeof(*r))) || !(r->controller = strdup(controller)) ||
        !(r->instance = strdup(instance))) {
        ism_err(err, ENOMEM, "out of memory");
        ism_kube_recorder_destroy(r);
        return NULL;
    }
    r->k = k;
    ism_kube_timer_init(&r->timer, flush_cb, r);
    return r;
}

void ism_kube_recorder_destroy(ism_kube_recorder_t *r)
{
    int saved = errno;

    if (!r)
        return;
    if (r->k)
        ism_kube_timer_disarm(r->k, &r->timer);
    while (r->series) {
        series_t *s = r->series;
        r->series = s->next;
        series_free(s);
    }
    while (r->buckets) {
        bucket_t *b = r->buckets;
        r->buckets = b->next;
        bucket_free(b);
    }
    free(r->controller);
    free(r->instance);
    free(r);
    errno = saved;
}

size_t ism_kube_recorder_pending(const ism_kube_recorder_t *r)
{
    size_t n = 0;

    if (!r)
        return 0;
    for (const series_t *s = r->series; s; s = s->next)
        n += s->call || !s->created || s->count > s->written;
    return n;
}

void ism_kube_recorder_stats(const ism_kube_recorder_t *r, ism_kube_recorder_stats_t *out)
{
    if (r && out)
        *out = r->stats;
}
