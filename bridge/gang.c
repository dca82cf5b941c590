/* gang.c - the gang scheduler's reconciler (gang.h). */
#include <config.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/gang.h"
#include "bridge/model.h"
#include "lib/util/backoff.h"
#include "lib/util/hash.h"
#include "lib/util/log.h"

static const ism_backoff_t RETRY = { 1000, 300000 }; /* a refused or failed gang */
static const ism_backoff_t WRITE_RETRY = { 200, 30000 }; /* passes after a failed write */

const double gang_latency_bounds[GANG_LATENCY_BUCKETS] = {
    0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30, 60, 300,
};

static const ism_kube_resource_t WORKLOAD_GROUPS = { "scheduling.k8s.io", "v1beta1", "podgroups",
                                                     true };
static const ism_kube_resource_t COSCHEDULING_GROUPS = { "scheduling.x-k8s.io", "v1alpha1",
                                                         "podgroups", true };

/* How long a gang's first member waits before its pods hear that it is
 * waiting for the others (an Event each). */
#define GANG_NOTICE_MS 2000

enum phase { WAITING, SUBMITTING, PENDING, COMMITTING, BOUND, UNDOING, FAILED };

/* Slurm's job comment on gang jobs: how many pods the job was asked for
 * and in which shape, so a restart places the same pods. */
#define JOB_COMMENT_FMT "isthmus.io/pods=%d,shape=%d"
enum shape { SHAPE_TASKS, SHAPE_WHOLE_NODES, SHAPES };

struct gang {
    struct gangs *gs;     /* its reconciler: the agent's callbacks get the gang */
    struct gang_id id;
    enum phase phase;
    json_t *members;      /* pod keys of this pass, sorted */
    int min;              /* members to wait for; -1: its group is not known */
    uint32_t job_id;      /* 0: none */
    uint64_t job_seq;     /* polls up to this one may not show the job yet */
    int asked;            /* pods the job was asked for */
    enum shape shape;
    bool submitting;      /* an allocation with the agent */
    bool job_request;     /* a complete or cancel with the agent */
    bool cancel_sent, completed;
    struct ism_slurm_request alloc_call, job_call; /* the agent's until done */
    struct gang_alloc alloc;
    char comment[64];
    /* the commit: placed pods, the nodes of the grant, where each goes */
    struct gang_pod *pods;
    int npods;
    struct gang_node *nodes;
    json_t **devices;
    int nnodes;
    struct gang_place *places;
    uint32_t places_job;
    char undo_why[512];   /* why a commit is being undone ("" when not) */
    bool undo_reshape;    /* then ask for whole nodes */
    char told[600];       /* the last reason and note told the pods */
    int64_t not_before;   /* monotonic ms: no submission before (backoff) */
    int failures;
    char failed_sig[65];  /* the members when it failed: a change retries */
    json_t *evict;        /* uids of the pods to delete: their job ended */
    json_t *held;         /* "NS/NAME" of the claims of its last submission */
};

/* What an informer's handlers are given: the kind of object they see
 * (a pod, its claim and its PodGroup may share a name). */
struct watched {
    struct gangs *gs;
    const ism_kube_resource_t *res;
};

/* The discovery of one PodGroup kind: watched only when served (the
 * Workload API is off by default; scheduler-plugins' is a CRD). */
struct discovery {
    struct gangs *gs;
    const ism_kube_resource_t *res;
    struct watched watched; /* its informer's */
    ism_kube_informer_t **slot;
    ism_kube_call_t *call; /* in flight, or NULL */
};

struct gangs {
    struct gangs_ctx c;
    ism_kube_informer_t *pods, *claims, *workload_groups, *cosched_groups;
    struct watched watch_pods, watch_claims;
    struct discovery discovery[2];
    bool discovered;             /* both first discoveries answered */
    int64_t rediscover_at;       /* monotonic ms: ask again for kinds not served */
    const ism_slurm_nodes_t *snodes;
    const ism_slurm_jobs_t *sjobs;
    bool want_nodes;             /* a grant waits for a node snapshot lacks */
    uint64_t jobs_seq, polls_started;
    struct gang **v;
    int n, cap;
    json_t *in_flight; /* gang_flight_key of objects with a write under way */
    json_t *fresh;     /* gang_flight_key -> object a write answered, newer than the cache */
    json_t *seen_ms;   /* pod key -> monotonic ms it was first seen */
    json_t *told_bad;  /* pod uid -> true: its bad gang labels were told */
    json_t *told_pod;  /* pod key -> the last reason it was told */
    bool dirty;
    int64_t wake;      /* monotonic ms of the next timed step, 0: none */
    int write_failures; /* writes failed in a row: passes back off */
    int64_t retry_at;  /* monotonic ms: no pass before, after a failed write */
    json_t *refused;   /* gang_flight_key -> why the API refused a write for good */
    struct gangs_stats st;
    /* ISTHMUSD_CRASH_AT (tests only, isthmusd(8)): die by SIGKILL right
     * after the Nth answered step of one kind, as a crash there would. */
    char crash_what[16];
    int crash_after, crash_count;
};

/* A step answered: the crash the tests ask for, if this is it. */
static void crash_point(struct gangs *gs, const char *what)
{
    if (gs->crash_after > 0 && strcmp(gs->crash_what, what) == 0 &&
        ++gs->crash_count == gs->crash_after) {
        ism_log_warn("ISTHMUSD_CRASH_AT=%s=%d: dying now", what, gs->crash_after);
        raise(SIGKILL);
    }
}

/* A timed step is due at (monotonic ms): the pass after it runs then. */
static void wake_at(struct gangs *gs, int64_t at)
{
    if (!gs->wake || at < gs->wake)
        gs->wake = at;
}

/* ------------------------------------------------------------ JSON helpers */

static const char *str2(const json_t *o, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(o, a), b));
}

static const char *meta(const json_t *o, const char *field)
{
    return str2(o, "metadata", field);
}

static bool pod_finished(const json_t *pod)
{
    const char *phase = str2(pod, "status", "phase");
    return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

static bool deleting(const json_t *o)
{
    return json_object_get(json_object_get(o, "metadata"), "deletionTimestamp") != NULL;
}

static const char *node_of(const json_t *pod)
{
    const char *n = str2(pod, "spec", "nodeName");
    return n && *n ? n : NULL;
}

/* Keep what the decisions read: managedFields are most of an object. */
static void shrink(void *arg, json_t *obj)
{
    (void)arg;
    json_object_del(json_object_get(obj, "metadata"), "managedFields");
}

/* The cached pod or claim "NS/NAME", or the newer one a write answered. */
static json_t *view(const struct gangs *gs, ism_kube_informer_t *inf, const char *key)
{
    char fk[GANG_KEY_MAX];

    gang_flight_key(inf == gs->pods ? &gang_pod_resource : &gang_claim_resource, key, fk,
                    sizeof(fk));
    json_t *f = json_object_get(gs->fresh, fk);
    return f ? f : ism_kube_informer_get(inf, key);
}

/* Whether the pod or claim "NS/NAME" has a write in flight, or an answer
 * newer than the cache. */
static bool in_flight(const struct gangs *gs, const ism_kube_resource_t *res, const char *key,
                      bool or_fresh)
{
    char fk[GANG_KEY_MAX];

    gang_flight_key(res, key, fk, sizeof(fk));
    return json_object_get(gs->in_flight, fk) || (or_fresh && json_object_get(gs->fresh, fk));
}

static unsigned long long rv_of(const json_t *o)
{
    const char *rv = meta(o, "resourceVersion");
    return rv ? strtoull(rv, NULL, 10) : 0;
}

/* Whether obj (from a watch) is as new as a write's answer ans. */
static bool caught_up(const json_t *obj, const json_t *ans)
{
    return obj && (rv_of(obj) >= rv_of(ans) || (node_of(obj) && node_of(ans)));
}

/* The cache caught up with a write's answer: forget the answer. */
static void cache_moved(struct gangs *gs, const char *fk, const json_t *obj)
{
    json_t *f = json_object_get(gs->fresh, fk);

    if (f && (!obj || caught_up(obj, f)))
        json_object_del(gs->fresh, fk);
    gs->dirty = true;
}

/* ------------------------------------------------------------ informers */

/* When a pod was first seen, on the monotonic clock: now for a pod the
 * watch brings; for the first list (a restart), its creationTimestamp. */
static int64_t first_seen(const json_t *pod)
{
    const char *ts = meta(pod, "creationTimestamp");
    struct tm tm;
    int64_t now = ism_kube_now_ms();
    time_t created;

    memset(&tm, 0, sizeof(tm));
    if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm) || (created = timegm(&tm)) < 0)
        return now;
    int64_t ago = ((int64_t)time(NULL) - (int64_t)created) * 1000;
    return ago > 0 ? now - ago : now;
}

static void on_add(void *arg, const char *key, json_t *obj)
{
    struct watched *w = arg;
    struct gangs *gs = w->gs;
    char fk[GANG_KEY_MAX];

    if (w->res == &gang_pod_resource && !json_object_get(gs->seen_ms, key))
        json_object_set_new(gs->seen_ms, key,
                            json_integer(ism_kube_informer_synced(gs->pods) ? ism_kube_now_ms()
                                                                            : first_seen(obj)));
    gang_flight_key(w->res, key, fk, sizeof(fk));
    cache_moved(gs, fk, obj);
}

static void on_update(void *arg, const char *key, json_t *old, json_t *obj)
{
    struct watched *w = arg;
    char fk[GANG_KEY_MAX];
    (void)old;

    gang_flight_key(w->res, key, fk, sizeof(fk));
    cache_moved(w->gs, fk, obj);
}

static void on_del(void *arg, const char *key, json_t *old)
{
    struct watched *w = arg;
    struct gangs *gs = w->gs;
    char fk[GANG_KEY_MAX];
    (void)old;

    if (w->res == &gang_pod_resource) {
        json_object_del(gs->seen_ms, key);
        json_object_del(gs->told_pod, key);
    }
    gang_flight_key(w->res, key, fk, sizeof(fk));
    json_object_del(gs->refused, fk);
    cache_moved(gs, fk, NULL);
}

static void on_synced(void *arg)
{
    ((struct watched *)arg)->gs->dirty = true;
}

static const ism_kube_handlers_t handlers = {
    .add = on_add, .update = on_update, .del = on_del, .synced = on_synced, .transform = shrink,
};

static int discover(struct gangs *gs, struct discovery *d, const ism_kube_resource_t *res,
                    ism_kube_informer_t **slot, ism_error_t *err);

static void discovered(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                       json_t *answer, const ism_error_t *err)
{
    struct discovery *d = arg;
    struct gangs *gs = d->gs;
    ism_error_t e = ISM_ERROR_INIT;
    const json_t *r;
    size_t i;
    bool served = false;
    (void)k;

    d->call = NULL;
    json_array_foreach(json_object_get(answer, "resources"), i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        served = served || (name && strcmp(name, d->res->resource) == 0);
    }
    if (rc < 0 && st->reason != ISM_KUBE_NOT_FOUND) {
        ism_error_t again = ISM_ERROR_INIT;
        ism_log_warn("discovering %s/%s: %s (asking again)", d->res->group, d->res->version,
                     err->text);
        if (discover(gs, d, d->res, d->slot, &again) == 0)
            return;
        ism_log_error("discovering %s/%s: %s", d->res->group, d->res->version, again.text);
    }
    if (served && !(*d->slot = ism_kube_informer_create(gs->c.kube, d->res, NULL, NULL, NULL,
                                                          &handlers, &d->watched, &e)))
        ism_log_error("watching %s: %s", d->res->group, e.text);
    if (served)
        ism_log_info("gangs: %s/%s podgroups are served", d->res->group, d->res->version);
    if (!gs->discovery[0].call && !gs->discovery[1].call)
        gs->discovered = true;
    gs->dirty = true;
}

static bool discovered_all(const struct gangs *gs)
{
    return gs->discovered || (!gs->discovery[0].call && !gs->discovery[1].call);
}

/* A gang names a PodGroup of a kind not served when isthmusd started (a CRD
 * installed since): ask again, at most every 10 s. */
static void rediscover(struct gangs *gs, struct discovery *d)
{
    ism_error_t err = ISM_ERROR_INIT;
    int64_t now = ism_kube_now_ms();

    if (d->call || *d->slot || now < gs->rediscover_at) {
        if (!*d->slot)
            wake_at(gs, gs->rediscover_at);
        return;
    }
    gs->rediscover_at = now + 10000;
    if (discover(gs, d, d->res, d->slot, &err) < 0)
        ism_log_error("discovering %s/%s: %s", d->res->group, d->res->version, err.text);
}

static int discover(struct gangs *gs, struct discovery *d, const ism_kube_resource_t *res,
                    ism_kube_informer_t **slot, ism_error_t *err)
{
    char path[200];

    *d = (struct discovery){ .gs = gs, .res = res, .watched = { gs, res }, .slot = slot };
    snprintf(path, sizeof(path), "/apis/%s/%s", res->group, res->version);
    d->call = ism_kube_request_async(gs->c.kube, "GET", path, NULL, NULL, discovered, d, err);
    return d->call ? 0 : -1;
}

/* ------------------------------------------------------------ the gangs */

static void gang_free_commit(struct gang *g)
{
    gang_places_destroy(g->places, g->npods);
    g->places = NULL;
    for (int i = 0; i < g->npods; i++)
        gang_pod_clear(&g->pods[i]);
    free(g->pods);
    g->pods = NULL;
    g->npods = 0;
    for (int i = 0; i < g->nnodes; i++)
        json_decref(g->devices[i]);
    free(g->devices);
    free(g->nodes);
    g->devices = NULL;
    g->nodes = NULL;
    g->nnodes = 0;
    g->places_job = 0;
}

static void gang_free(struct gang *g)
{
    if (!g)
        return;
    gang_free_commit(g);
    json_decref(g->members);
    json_decref(g->evict);
    json_decref(g->held);
    free(g);
}

static struct gang *find(struct gangs *gs, const char *key)
{
    for (int i = 0; i < gs->n; i++)
        if (strcmp(gs->v[i]->id.key, key) == 0)
            return gs->v[i];
    return NULL;
}

static struct gang *find_or_add(struct gangs *gs, const struct gang_id *id)
{
    struct gang *g = find(gs, id->key);

    if (g)
        return g;
    if (gs->n == gs->cap) {
        int cap = gs->cap ? gs->cap * 2 : 16;
        struct gang **v = realloc(gs->v, sizeof(*v) * (size_t)cap);
        if (!v)
            return NULL;
        gs->v = v;
        gs->cap = cap;
    }
    if (!(g = calloc(1, sizeof(*g))) || !(g->members = json_array())) {
        free(g);
        return NULL;
    }
    g->gs = gs;
    g->id = *id;
    g->min = id->min;
    gs->v[gs->n++] = g;
    return g;
}

/* The gang id a job's admin comment names ("isthmus.io/gang=SOURCE:NS/NAME"). */
static bool id_of_job(const struct ism_slurm_job *j, struct gang_id *id)
{
    static const char tag[] = BRIDGE_JOB_TAG "gang=";
    const char *key, *colon, *slash;

    if (!j->admin_comment || strncmp(j->admin_comment, tag, sizeof(tag) - 1) != 0)
        return false;
    key = j->admin_comment + sizeof(tag) - 1;
    if (!(colon = strchr(key, ':')) || !(slash = strchr(colon, '/')) ||
        strlen(key) >= sizeof(id->key) || (size_t)(slash - colon - 1) >= sizeof(id->ns) ||
        strlen(slash + 1) >= sizeof(id->name))
        return false;
    memset(id, 0, sizeof(*id));
    snprintf(id->key, sizeof(id->key), "%s", key);
    snprintf(id->ns, sizeof(id->ns), "%.*s", (int)(slash - colon - 1), colon + 1);
    snprintf(id->name, sizeof(id->name), "%s", slash + 1);
    id->source = GANG_ALONE;
    for (int s = GANG_WORKLOAD; s <= GANG_ALONE; s++)
        if (strncmp(key, gang_source_name(s), (size_t)(colon - key)) == 0 &&
            strlen(gang_source_name(s)) == (size_t)(colon - key))
            id->source = s;
    return true;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static int sort_members(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = n ? malloc(sizeof(*v) * n) : NULL;

    if (n && !v)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), cmp_keys);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
    return 0;
}

/* ------------------------------------------------------------ telling */

static json_t *regarding(const json_t *pod)
{
    return json_pack("{s:s,s:s,s:{s:s?,s:s?,s:s?}}", "apiVersion", "v1", "kind", "Pod",
                     "metadata", "name", meta(pod, "name"), "namespace", meta(pod, "namespace"),
                     "uid", meta(pod, "uid"));
}

static void submit_write(struct gangs *gs, const struct write *w);

/* The status write that sets obj's condition type to status, reason and
 * message (the others kept), or NULL when obj already says so (or out of
 * memory).  A new reference. */
static json_t *with_condition(const json_t *obj, const char *type, const char *status,
                              const char *reason, const char *message)
{
    json_t *body, *st, *conds, *c;
    char now[32];
    time_t t = time(NULL);
    size_t i;

    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, c) {
        const char *ty = json_string_value(json_object_get(c, "type"));
        const char *sv = json_string_value(json_object_get(c, "status"));
        const char *msg = json_string_value(json_object_get(c, "message"));
        if (ty && !strcmp(ty, type) && sv && !strcmp(sv, status) && msg && !strcmp(msg, message))
            return NULL;
    }
    if (!(body = json_deep_copy(obj)) || !(conds = json_array())) {
        json_decref(body);
        return NULL;
    }
    if (!(st = json_object_get(body, "status")))
        json_object_set_new(body, "status", st = json_object());
    json_array_foreach(json_object_get(st, "conditions"), i, c) {
        const char *ty = json_string_value(json_object_get(c, "type"));
        if (!ty || strcmp(ty, type) != 0)
            json_array_append(conds, c);
    }
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    json_array_append_new(conds, json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", type, "status",
                                           status, "reason", reason, "message", message,
                                           "lastTransitionTime", now));
    json_object_set_new(st, "conditions", conds);
    return body;
}

/* Write a condition of obj (a pod, or a PodGroup), "NS/NAME" key. */
static void write_condition(struct gangs *gs, const ism_kube_resource_t *res, const char *key,
                            const json_t *obj, const char *type, bool ok, const char *reason,
                            const char *why)
{
    struct writes w = { 0 };
    json_t *body;

    if (in_flight(gs, res, key, false) || !gs->c.may_write(gs->c.arg) ||
        !(body = with_condition(obj, type, ok ? "True" : "False", reason, why)))
        return;
    if (writes_add(&w, WRITE_UPDATE_STATUS, res, meta(obj, "namespace"), meta(obj, "name"), NULL,
                   body) == 0)
        submit_write(gs, &w.v[0]);
    writes_clear(&w);
}

/* The pod's PodScheduled condition says why it waits (as kube-scheduler
 * writes it). */
static void set_condition(struct gangs *gs, const char *key, const json_t *pod, const char *why)
{
    if (!node_of(pod))
        write_condition(gs, &gang_pod_resource, key, pod, "PodScheduled", false, "Unschedulable",
                        why);
}

/* A Workload API gang's progress in its PodGroup's condition, as
 * kube-scheduler reports it (PodGroupInitiallyScheduled in 1.37). */
static void group_condition(struct gangs *gs, const struct gang *g, bool done, const char *reason,
                            const char *why)
{
    char key[400];
    const json_t *grp;

    if (g->id.source != GANG_WORKLOAD || !gs->workload_groups)
        return;
    snprintf(key, sizeof(key), "%s/%s", g->id.ns, g->id.name);
    if ((grp = ism_kube_informer_get(gs->workload_groups, key)))
        write_condition(gs, &WORKLOAD_GROUPS, key, grp, "PodGroupInitiallyScheduled", done,
                        reason, why);
}

/* Tell every member pod: an Event, and with TELL_CONDITION the pod's
 * PodScheduled condition.  A gang tells the same reason and note once;
 * with TELL_ONCE a pod hears a reason once (however the note changes), so
 * a gang of 64 filling up does not send 64 x 64 Events. */
enum { TELL_CONDITION = 1, TELL_ONCE = 2 };

static void tell(struct gangs *gs, struct gang *g, int flags, const char *type, const char *reason,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void tell(struct gangs *gs, struct gang *g, int flags, const char *type, const char *reason,
                 const char *fmt, ...)
{
    char note[512], sig[sizeof(g->told)];
    va_list ap;
    size_t i;
    json_t *k;

    va_start(ap, fmt);
    vsnprintf(note, sizeof(note), fmt, ap);
    va_end(ap);
    snprintf(sig, sizeof(sig), "%s %s", reason, note);
    if (strcmp(sig, g->told) == 0)
        return;
    snprintf(g->told, sizeof(g->told), "%s", sig);
    ism_log_info("gang %s: %s: %s", g->id.key, reason, note);
    if (flags & TELL_CONDITION)
        group_condition(gs, g, false, reason, note);
    json_array_foreach(g->members, i, k) {
        const char *key = json_string_value(k);
        const json_t *pod = view(gs, gs->pods, key);
        const char *last = json_string_value(json_object_get(gs->told_pod, key));
        json_t *r;
        if (!pod || pod_finished(pod) || ((flags & TELL_ONCE) && last && !strcmp(last, reason)))
            continue;
        json_object_set_new(gs->told_pod, key, json_string(reason));
        if ((r = regarding(pod)))
            ism_kube_event(gs->c.events, r, type, reason, "Schedule", "%s", note);
        json_decref(r);
        if (flags & TELL_CONDITION)
            set_condition(gs, key, pod, note);
    }
}

/* ------------------------------------------------------------ writes */

/* The in-flight key of a write (gang_flight_key), and its "NS/NAME". */
static void write_key(const struct write *w, char *key, size_t size, char *nsname, size_t nsize)
{
    snprintf(nsname, nsize, "%s/%s", w->ns, w->name);
    gang_flight_key(w->res, nsname, key, size);
}

static void write_done(void *arg, const struct write *w, int rc, const ism_kube_status_t *st,
                       json_t *answer, const ism_error_t *err)
{
    struct gangs *gs = arg;
    char key[GANG_KEY_MAX], nsname[400];
    const json_t *cur;
    (void)st;

    write_key(w, key, sizeof(key), nsname, sizeof(nsname));
    json_object_del(gs->in_flight, key);
    gs->dirty = true;
    if (rc < 0) {
        ism_log_warn("%s %s: %s failed: %s", w->res->resource, nsname, write_op_name(w->op),
                     err->text);
        if (gs->c.errors)
            (*gs->c.errors)++;
        /* The next passes back off; a write the API refuses as invalid
         * will never pass: its gang is undone with the API's answer. */
        gs->write_failures++;
        gs->retry_at = ism_kube_now_ms() + ism_backoff_delay(&WRITE_RETRY, gs->write_failures);
        if (st && (st->reason == ISM_KUBE_INVALID || st->reason == ISM_KUBE_BAD_REQUEST))
            json_object_set_new(gs->refused, key, json_string(err->text));
        return;
    }
    gs->write_failures = 0;
    ism_log_debug("%s %s: %s done", w->res->resource, nsname, write_op_name(w->op));
    if (w->op == WRITE_BIND)
        crash_point(gs, "bindings");
    else if (w->op == WRITE_UPDATE_STATUS && w->res == &gang_claim_resource)
        crash_point(gs, "claims");
    /* The watch may bring the written object before the write's answer
     * comes: then the answer is old news, and kept it would hide every
     * later change until the object changed again. */
    cur = ism_kube_informer_get(w->res == &gang_claim_resource ? gs->claims : gs->pods, nsname);
    if (w->op == WRITE_BIND) {
        /* The answer is a Status: what the pod is now, for the next pass. */
        json_t *pod = json_deep_copy(ism_kube_informer_get(gs->pods, nsname));
        json_t *spec = json_object_get(pod, "spec");
        if (spec && !node_of(cur) &&
            json_object_set_new(spec, "nodeName", json_string(str2(w->obj, "target", "name"))) == 0)
            json_object_set(gs->fresh, key, pod);
        json_decref(pod);
    } else if (answer && meta(answer, "name") && w->res != &WORKLOAD_GROUPS &&
               (w->op != WRITE_DELETE || deleting(answer)) &&
               !((w->res == &gang_claim_resource || w->res == &gang_pod_resource) &&
                 caught_up(cur, answer))) {
        /* (a DELETE answered with the object: it is being deleted, which
         * the next pass must see before the watch says so) */
        json_object_set(gs->fresh, key, answer);
    }
}

static void submit_write(struct gangs *gs, const struct write *w)
{
    char key[GANG_KEY_MAX], nsname[400];

    write_key(w, key, sizeof(key), nsname, sizeof(nsname));
    if (json_object_set_new(gs->in_flight, key, json_true()) < 0)
        return;
    if (apply_submit(gs->c.apply, w, write_done, gs) < 0) {
        ism_log_warn("%s %s: %s not started", w->res->resource, key, write_op_name(w->op));
        json_object_del(gs->in_flight, key);
    }
}

/* Submit a plan's writes, at most *budget of them. */
static void submit_plan(struct gangs *gs, struct writes *plan, int *budget)
{
    for (size_t i = 0; i < plan->n && *budget > 0; i++, (*budget)--)
        submit_write(gs, &plan->v[i]);
    if (plan->n)
        gs->dirty = true; /* the answers bring the next step */
}

/* Delete a pod (uid precondition): all or nothing, or its job ended. */
static void delete_pod(struct gangs *gs, const char *key, const json_t *pod, int *budget)
{
    struct writes w = { 0 };

    if (*budget <= 0 || deleting(pod) || in_flight(gs, &gang_pod_resource, key, false))
        return;
    if (writes_add(&w, WRITE_DELETE, &gang_pod_resource, meta(pod, "namespace"),
                   meta(pod, "name"), meta(pod, "uid"), NULL) == 0) {
        submit_write(gs, &w.v[0]);
        (*budget)--;
    }
    writes_clear(&w);
}

/* ------------------------------------------------------------ Slurm */

static void job_call_done(struct ism_slurm_request *r, void *arg)
{
    struct gang *g = arg;

    g->job_request = false;
    g->gs->dirty = true;
    if (r->rc < 0)
        ism_log_warn("gang %s: %s of job %u failed: %s", g->id.key,
                     r->op == ISM_SLURM_CANCEL ? "cancel" : "complete", r->job_id, r->err.text);
}

/* Complete (rc >= 0) or cancel (rc < 0) the gang's job, once. */
static void end_job(struct gangs *gs, struct gang *g, int rc)
{
    ism_error_t err = ISM_ERROR_INIT;

    if (!g->job_id || g->job_request || (rc < 0 ? g->cancel_sent : g->completed))
        return;
    memset(&g->job_call, 0, sizeof(g->job_call));
    g->job_call.op = rc < 0 ? ISM_SLURM_CANCEL : ISM_SLURM_COMPLETE;
    g->job_call.job_id = g->job_id;
    g->job_call.value = rc < 0 ? 0 : rc;
    if (ism_slurm_agent_submit(gs->c.slurm, &g->job_call, job_call_done, g, &err) < 0) {
        ism_log_error("gang %s: %s", g->id.key, err.text);
        return;
    }
    g->job_request = true;
    if (rc < 0)
        g->cancel_sent = true;
    else
        g->completed = true;
    ism_log_info("gang %s: %s job %u", g->id.key, rc < 0 ? "cancelling" : "completing", g->job_id);
}

/* A second job for one gang (two replicas racing, say): cancelled, with
 * request memory of its own (the request is the argument). */
static void stray_done(struct ism_slurm_request *r, void *arg)
{
    if (r->rc < 0)
        ism_log_warn("cancelling job %u: %s", r->job_id, r->err.text);
    free(arg);
}

static void cancel_stray(struct gangs *gs, uint32_t job_id)
{
    struct ism_slurm_request *r = calloc(1, sizeof(*r));
    ism_error_t err = ISM_ERROR_INIT;

    if (!r)
        return;
    r->op = ISM_SLURM_CANCEL;
    r->job_id = job_id;
    if (ism_slurm_agent_submit(gs->c.slurm, r, stray_done, r, &err) < 0) {
        ism_log_error("cancelling job %u: %s", job_id, err.text);
        free(r);
    }
}

static void failed(struct gangs *gs, struct gang *g);
static void members_sig(const struct gangs *gs, const struct gang *g, char out[65]);

static void allocated(struct ism_slurm_request *r, void *arg)
{
    struct gang *g = arg;
    struct gangs *gs = g->gs;

    g->submitting = false;
    gs->dirty = true;
    if (gs->c.poll_now)
        gs->c.poll_now(gs->c.arg); /* the cores, or the job a lost answer hid */
    if (r->rc < 0) {
        /* A lost answer may hide a granted job: job_seq (set at submission)
         * makes the next try wait for a poll that would show it. */
        tell(gs, g, TELL_CONDITION, "Warning", "SlurmRefused",
             "Slurm refused the allocation for gang %s: %s",
             g->id.name, r->err.text);
        g->phase = FAILED;
        members_sig(gs, g, g->failed_sig);
        failed(gs, g);
        return;
    }
    g->job_id = r->alloc.job_id;
    gs->st.submitted_total++;
    crash_point(gs, "submitted");
    ism_log_notice("gang %s: Slurm job %u %s", g->id.key, g->job_id,
                   r->alloc.granted ? "granted" : "queued");
}

/* Ask Slurm for the gang's allocation (the caller checked everything). */
static void submit_job(struct gangs *gs, struct gang *g, const struct gang_pod *pods, int npods,
                       const json_t *first_pod, int threads)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct gang_defaults defs;

    policy_defaults(gs->c.policy, g->id.ns, &gs->c.defaults, &defs);
    if (gang_alloc_request(&g->id, pods, npods, first_pod, &defs, threads, &g->alloc, &err) < 0) {
        tell(gs, g, TELL_CONDITION, "Warning", "GangUnsupported", "%s", err.text);
        g->phase = FAILED;
        failed(gs, g);
        return;
    }
    /* Which partitions, accounts, qos and time limits the namespace may
     * use: a refused gang never reaches Slurm. */
    if (policy_check(gs->c.policy, g->id.ns, &defs, gs->snodes ? gs->snodes->partitions : NULL,
                     gs->snodes ? gs->snodes->npartitions : 0, &g->alloc.req, &err) < 0) {
        tell(gs, g, TELL_CONDITION, "Warning", "PolicyRefused",
             "gang %s: %s; nothing was submitted to Slurm and the pods stay pending",
             g->id.name, err.text);
        g->phase = FAILED;
        gs->st.refused_total++;
        failed(gs, g);
        return;
    }
    snprintf(g->comment, sizeof(g->comment), JOB_COMMENT_FMT, npods, (int)g->shape);
    memset(&g->alloc_call, 0, sizeof(g->alloc_call));
    g->alloc_call.op = ISM_SLURM_ALLOCATE;
    g->alloc_call.alloc_req = g->alloc.req;
    g->alloc_call.alloc_req.comment = g->comment;
    g->alloc_call.alloc_req.as_user = true;
    g->alloc_call.alloc_req.uid = (uint32_t)gs->c.uid;
    g->alloc_call.alloc_req.gid = (uint32_t)gs->c.gid;
    if (g->shape == SHAPE_WHOLE_NODES)
        g->alloc_call.alloc_req.exclusive = true;
    g->alloc_call.max_attempts = 1;
    if (ism_slurm_agent_submit(gs->c.slurm, &g->alloc_call, allocated, g, &err) < 0) {
        ism_log_error("gang %s: %s", g->id.key, err.text);
        return;
    }
    g->submitting = true;
    g->job_seq = gs->polls_started; /* later polls show the job */
    g->asked = npods;
    g->phase = SUBMITTING;
    g->cancel_sent = g->completed = false;
    ism_log_info("gang %s: asking Slurm for %u tasks of %u cpus%s for %d pods as %s", g->id.key,
                 g->alloc_call.alloc_req.num_tasks, g->alloc_call.alloc_req.cpus_per_task,
                 g->shape == SHAPE_WHOLE_NODES ? " on whole nodes" : "", npods, g->alloc.name);
}

/* ------------------------------------------------------------ a gang's pass */

static void failed(struct gangs *gs, struct gang *g)
{
    g->failures++;
    g->not_before = ism_kube_now_ms() + ism_backoff_delay(&RETRY, g->failures);
    gs->st.failed_total++;
}

/* A digest of the members (names and uids; not their versions, which our
 * own status writes change): a new member or a new pod retries a failed
 * gang at once. */
static void members_sig(const struct gangs *gs, const struct gang *g, char out[65])
{
    uint64_t h = ISM_FNV1A_INIT;
    size_t i;
    json_t *k;

    json_array_foreach(g->members, i, k) {
        const json_t *pod = ism_kube_informer_get(gs->pods, json_string_value(k));
        const char *key = json_string_value(k), *uid = meta(pod, "uid");
        ism_fnv1a_add(&h, key, strlen(key));
        ism_fnv1a_add(&h, uid ? uid : "", uid ? strlen(uid) : 0);
    }
    snprintf(out, 65, "%016" PRIx64, h);
}

/* Threads per core on the cluster's nodes (the most any node has). */
static int threads_per_core(const struct gangs *gs)
{
    int t = 1;
    for (int i = 0; gs->snodes && i < gs->snodes->count; i++)
        if (gs->snodes->nodes[i].threads_per_core > t)
            t = gs->snodes->nodes[i].threads_per_core;
    return t;
}

/* Parse the first n members (bound ones first) into pods.  0, or -1 with
 * errno (EAGAIN: not yet) and err; *bad the member the error is about. */
static int parse_members(struct gangs *gs, struct gang *g, int n, struct gang_pod **out,
                         const char **bad, ism_error_t *err)
{
    json_t *claims = ism_kube_informer_cache(gs->claims);
    json_t *order = json_array();
    struct gang_pod *pods = calloc((size_t)n, sizeof(*pods));
    size_t i;
    json_t *k;
    int got = 0, rc = 0;

    if (!order || !pods) {
        json_decref(order);
        free(pods);
        return ism_err(err, ENOMEM, "out of memory");
    }
    for (int pass = 0; pass < 2; pass++)
        json_array_foreach(g->members, i, k) {
            const json_t *pod = view(gs, gs->pods, json_string_value(k));
            if (pod && !pod_finished(pod) && !deleting(pod) &&
                (node_of(pod) != NULL) == (pass == 0))
                json_array_append(order, k);
        }
    json_array_foreach(order, i, k) {
        const json_t *pod = view(gs, gs->pods, json_string_value(k));
        if (got == n)
            break;
        *bad = json_string_value(k);
        if (gang_pod_parse(pod, claims, &pods[got], err) < 0) {
            rc = -1;
            break;
        }
        got++;
    }
    json_decref(order);
    if (rc == 0 && got < n)
        rc = ism_err(err, EAGAIN, "gang %s has %d of %d pods", g->id.name, got, n);
    if (rc < 0) {
        for (int p = 0; p < got; p++)
            gang_pod_clear(&pods[p]);
        free(pods);
        return -1;
    }
    *out = pods;
    return 0;
}

/* Live members: not finished, not being deleted. */
static int live_members(const struct gangs *gs, const struct gang *g, int *bound)
{
    size_t i;
    json_t *k;
    int n = 0;

    *bound = 0;
    json_array_foreach(g->members, i, k) {
        const json_t *pod = view(gs, gs->pods, json_string_value(k));
        if (!pod || pod_finished(pod) || deleting(pod))
            continue;
        n++;
        if (node_of(pod))
            (*bound)++;
    }
    return n;
}

/* Our finalizer on the claims of a gang Slurm is deciding on, so that the
 * commit after the grant is one status write per claim and one binding
 * per pod (gang_hold_plan). */
static void hold(struct gangs *gs, struct gang *g, int *budget)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct writes plan = { 0 };
    json_t *claims = json_object();
    const char *key;
    json_t *v, *o;

    if (!g->held || !claims) {
        json_decref(claims);
        return;
    }
    json_object_foreach(g->held, key, v)
        if ((o = view(gs, gs->claims, key)))
            json_object_set(claims, key, o);
    if (gang_hold_plan(g->held, claims, gs->in_flight, &plan, &err) < 0)
        ism_log_error("gang %s: %s", g->id.key, err.text);
    submit_plan(gs, &plan, budget);
    writes_clear(&plan);
    json_decref(claims);
}

/* While a gang waits for its members, it holds the claims of those it has,
 * so that the last member's arrival leaves few writes to the commit.  A
 * member gone takes its claims out of the hold, and release_claims drops
 * the finalizer from them. */
static void hold_members(struct gangs *gs, struct gang *g, int *budget)
{
    json_t *claims = ism_kube_informer_cache(gs->claims), *held = json_object(), *k;
    size_t i;

    if (!held)
        return;
    json_array_foreach(g->members, i, k) {
        const json_t *pod = view(gs, gs->pods, json_string_value(k));
        if (pod && !pod_finished(pod) && !deleting(pod) &&
            gang_pod_claim_keys(pod, claims, held) < 0)
            ism_log_error("gang %s: out of memory", g->id.key);
    }
    json_decref(g->held);
    g->held = held;
    hold(gs, g, budget);
}

/* Remember the claims of the pods a submission asks for (hold). */
static void remember_claims(struct gang *g, const struct gang_pod *pods, int npods)
{
    char key[400];

    json_decref(g->held);
    if (!(g->held = json_object()))
        return;
    for (int i = 0; i < npods; i++)
        for (int c = 0; c < pods[i].nclaims; c++) {
            snprintf(key, sizeof(key), "%s/%s", pods[i].ns, pods[i].claims[c].name);
            json_object_set_new(g->held, key, json_true());
        }
}

static void step_waiting(struct gangs *gs, struct gang *g, int *budget)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct gang_pod *pods = NULL;
    const char *bad = NULL;
    int bound, live = live_members(gs, g, &bound), e;
    const json_t *first;
    char sig[65];

    if (g->submitting)
        return;
    /* After a submission: wait for a poll that would show its job (an
     * answer lost on the way may hide a granted one; group() adopts it). */
    if (g->job_seq) {
        if (g->job_seq >= gs->jobs_seq)
            return;
        g->job_seq = 0;
    }
    if (live == 0) {
        json_decref(g->held); /* nothing left to hold for */
        g->held = NULL;
        return;
    }
    if (g->phase == FAILED) {
        members_sig(gs, g, sig);
        if (strcmp(sig, g->failed_sig) == 0 && ism_kube_now_ms() < g->not_before) {
            wake_at(gs, g->not_before);
            return;
        }
    }
    if (g->min < 0) {
        tell(gs, g, TELL_ONCE, "Normal", "GangWaiting", "waiting for PodGroup %s/%s (%s)",
             g->id.ns, g->id.name,
             g->id.source == GANG_WORKLOAD ? WORKLOAD_GROUPS.group : COSCHEDULING_GROUPS.group);
        g->phase = WAITING;
        hold_members(gs, g, budget);
        return;
    }
    if (live < g->min) {
        int64_t oldest = -1;
        size_t i;
        json_t *k;
        json_array_foreach(g->members, i, k) {
            json_t *t = json_object_get(gs->seen_ms, json_string_value(k));
            if (t && (oldest < 0 || json_integer_value(t) < oldest))
                oldest = json_integer_value(t);
        }
        g->phase = WAITING;
        hold_members(gs, g, budget);
        if (oldest >= 0 && gs->c.wait_timeout_s > 0 &&
            ism_kube_now_ms() - oldest >= (int64_t)gs->c.wait_timeout_s * 1000) {
            tell(gs, g, TELL_CONDITION, "Warning", "GangTimeout",
                 "gang %s waited %d s for its members: %d of %d; its pods stay pending",
                 g->id.name, gs->c.wait_timeout_s, live, g->min);
        } else if (oldest >= 0 && ism_kube_now_ms() - oldest < GANG_NOTICE_MS) {
            /* Members made together arrive within moments: 64 Events
             * saying so would only slow the commit that follows. */
            wake_at(gs, oldest + GANG_NOTICE_MS);
        } else {
            tell(gs, g, TELL_ONCE, "Normal", "GangWaiting",
                 "waiting for %d more member%s of gang %s (%d of %d)",
                 g->min - live, g->min - live == 1 ? "" : "s", g->id.name, live, g->min);
            if (oldest >= 0 && gs->c.wait_timeout_s > 0) {
                int64_t at = oldest + (int64_t)gs->c.wait_timeout_s * 1000;
                wake_at(gs, at);
            }
        }
        return;
    }
    if (!gs->snodes || !gs->sjobs)
        return; /* a first Slurm answer, to find this gang's job if it has one */
    /* every live member goes into this job */
    if (parse_members(gs, g, live, &pods, &bad, &err) < 0) {
        if ((e = errno) == EAGAIN)
            return; /* kube-controller-manager has not made the claims yet */
        members_sig(gs, g, g->failed_sig);
        g->phase = FAILED;
        failed(gs, g);
        tell(gs, g, TELL_CONDITION, "Warning", e == EXDEV ? "NotOurDriver" : "GangUnsupported",
             "pod %s: %s; the gang stays pending", bad ? bad : "?", err.text);
        return;
    }
    first = view(gs, gs->pods, json_string_value(json_array_get(g->members, 0)));
    submit_job(gs, g, pods, live, first, threads_per_core(gs));
    if (g->phase == FAILED)
        members_sig(gs, g, g->failed_sig);
    if (g->submitting) {
        remember_claims(g, pods, live);
        hold(gs, g, budget);
    }
    for (int i = 0; i < live; i++)
        gang_pod_clear(&pods[i]);
    free(pods);
}

/* The grant's nodes, the placed pods and the split.  0, or -1 with errno
 * (EAGAIN: wait; ENOSPC: no aligned split of this grant) and err. */
static int place(struct gangs *gs, struct gang *g, const struct ism_slurm_job *job,
                 ism_error_t *err)
{
    const char *bad = NULL;

    if (g->places && g->places_job == job->id)
        return 0;
    gang_free_commit(g);
    if (!(g->nodes = calloc((size_t)job->nnodes, sizeof(*g->nodes))) ||
        !(g->devices = calloc((size_t)job->nnodes, sizeof(*g->devices))))
        return ism_err(err, ENOMEM, "out of memory");
    for (int i = 0; i < job->nnodes; i++) {
        const struct ism_slurm_job_node *jn = &job->node[i];
        const struct ism_slurm_node *sn = ism_slurm_nodes_find(gs->snodes, jn->name);
        const char *pool = poolmap_pool_of(gs->c.pools, jn->name);
        if (!sn || !sn->topo || !pool) {
            gs->want_nodes = gs->want_nodes || !sn || !sn->topo;
            return ism_err(err, EAGAIN, "node %s of job %u has no %s", jn->name, job->id,
                           !pool ? "Kubernetes Node" : "published topology");
        }
        if (!(g->devices[i] = ism_devices_build(sn->topo, err)))
            return -1;
        g->nodes[i] = (struct gang_node){ pool, sn->topo, g->devices[i], jn->cores };
        g->nnodes++;
    }
    if (parse_members(gs, g, g->asked, &g->pods, &bad, err) < 0)
        return -1;
    g->npods = g->asked;
    if (!(g->places = gang_split(g->pods, g->npods, g->nodes, g->nnodes, err)))
        return -1;
    g->places_job = job->id;
    return 0;
}

/* The claims and pods of the placed gang, as the planner sees them: the
 * cache, or what a write answered when that is newer. */
static void views(struct gangs *gs, struct gang *g, json_t *claims, json_t *pods)
{
    char key[400];

    for (int i = 0; i < g->npods; i++) {
        const struct gang_pod *p = &g->pods[i];
        json_t *o;
        snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
        if ((o = view(gs, gs->pods, key)))
            json_object_set(pods, key, o);
        for (int c = 0; c < p->nclaims; c++) {
            snprintf(key, sizeof(key), "%s/%s", p->ns, p->claims[c].name);
            if ((o = view(gs, gs->claims, key)))
                json_object_set(claims, key, o);
        }
    }
}

/* Undo a commit: release claims, delete bound pods, cancel the job. */
static void undo(struct gangs *gs, struct gang *g, bool reshape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void undo(struct gangs *gs, struct gang *g, bool reshape, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(g->undo_why, sizeof(g->undo_why), fmt, ap);
    va_end(ap);
    g->undo_reshape = reshape;
    g->phase = UNDOING;
    tell(gs, g, TELL_CONDITION, "Warning", "GangUndone", "%s; nothing of gang %s stays bound",
         g->undo_why,
         g->id.name);
}

static void record_bound(struct gangs *gs, struct gang *g)
{
    int64_t last = -1, now = ism_kube_now_ms();
    char where[400] = "";
    size_t len = 0;

    for (int i = 0; i < g->npods; i++) {
        char key[400];
        json_t *t;
        snprintf(key, sizeof(key), "%s/%s", g->pods[i].ns, g->pods[i].name);
        if ((t = json_object_get(gs->seen_ms, key)) && json_integer_value(t) > last)
            last = json_integer_value(t);
    }
    for (int n = 0; n < g->nnodes && len < sizeof(where) - 1; n++)
        len += (size_t)snprintf(where + len, sizeof(where) - len, "%s%s", n ? ", " : "",
                                g->nodes[n].pool);
    if (last >= 0) {
        double s = (double)(now - last) / 1000.0;
        gs->st.latency_sum += s;
        gs->st.latency_count++;
        for (int b = 0; b < GANG_LATENCY_BUCKETS; b++)
            if (s <= gang_latency_bounds[b])
                gs->st.latency_counts[b]++;
        ism_log_notice("gang %s: %d pods bound on %s, %.3f s after its last member", g->id.key,
                       g->npods, where, s);
    }
    gs->st.bound_total++;
    g->failures = 0;
    snprintf(g->told, sizeof(g->told), "GangBound");
    {
        char why[512];
        snprintf(why, sizeof(why), "all %d pods bound (Slurm job %u on %s)", g->npods, g->job_id,
                 where);
        group_condition(gs, g, true, "Scheduled", why);
    }
    /* Each pod is told its own cores and NUMA nodes. */
    for (int i = 0; i < g->npods; i++) {
        const struct gang_place *pl = &g->places[i];
        const ism_topo_t *topo = g->nodes[pl->node].topo;
        char *devs = ism_slurm_core_devices(pl->cores);
        char numa[128] = "";
        size_t nl = 0;
        int last_numa = -1;
        char key[400];
        for (int c = 0; c < topo->ncores; c++) {
            if (!ism_bitmap_test(pl->cores, c) || topo->cores[c].numa == last_numa)
                continue;
            last_numa = topo->cores[c].numa;
            nl += (size_t)snprintf(numa + nl, sizeof(numa) - nl, "%s%d", nl ? "," : "", last_numa);
            if (nl >= sizeof(numa))
                break;
        }
        snprintf(key, sizeof(key), "%s/%s", g->pods[i].ns, g->pods[i].name);
        json_t *pod = view(gs, gs->pods, key), *r = pod ? regarding(pod) : NULL;
        if (r)
            ism_kube_event(gs->c.events, r, "Normal", "Scheduled", "Bind",
                           "bound to %s with cores %s (NUMA node %s) of Slurm job %u",
                           g->nodes[pl->node].pool, devs ? devs : "?", numa, g->job_id);
        json_decref(r);
        free(devs);
    }
}

/* Whether the API refused a write of the gang's for good (and err why);
 * the refusal is forgotten, so a new commit may try again. */
static bool refused_write(struct gangs *gs, const struct gang *g, ism_error_t *err)
{
    char nsname[400], key[GANG_KEY_MAX];
    const char *why;

    for (int i = 0; i < g->npods; i++)
        for (int c = -1; c < g->pods[i].nclaims; c++) {
            snprintf(nsname, sizeof(nsname), "%s/%s", g->pods[i].ns,
                     c < 0 ? g->pods[i].name : g->pods[i].claims[c].name);
            gang_flight_key(c < 0 ? &gang_pod_resource : &gang_claim_resource, nsname, key,
                            sizeof(key));
            if ((why = json_string_value(json_object_get(gs->refused, key)))) {
                ism_err(err, EINVAL, "the API refused a write: %s", why);
                json_object_del(gs->refused, key);
                return true;
            }
        }
    return false;
}

static void step_commit(struct gangs *gs, struct gang *g, const struct ism_slurm_job *job,
                        int *budget)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct writes plan = { 0 };
    json_t *claims = json_object(), *pods = json_object();
    int rc;

    if (place(gs, g, job, &err) < 0) {
        if (errno == ENOSPC && g->shape + 1 < SHAPES)
            undo(gs, g, true, "Slurm job %u's cores cannot be split as the claims ask (%s)",
                 job->id, err.text);
        else if (errno == EAGAIN)
            tell(gs, g, 0, "Normal", "GangGranted", "Slurm granted job %u; waiting: %s", job->id,
                 err.text);
        else
            undo(gs, g, false, "Slurm job %u cannot be used: %s", job->id, err.text);
        goto out;
    }
    views(gs, g, claims, pods);
    if (refused_write(gs, g, &err)) {
        undo(gs, g, false, "%s", err.text);
        goto out;
    }
    rc = gang_commit_plan(g->pods, g->npods, g->places, g->nodes, claims, pods, gs->in_flight,
                          &plan, &err);
    if (rc < 0) {
        undo(gs, g, false, "%s", err.text);
    } else if (rc == 1) {
        if (g->phase != BOUND)
            record_bound(gs, g);
        g->phase = BOUND;
    } else {
        if (g->phase != COMMITTING)
            ism_log_info("gang %s: committing job %u (%d pods on %d nodes)", g->id.key, job->id,
                         g->npods, g->nnodes);
        g->phase = COMMITTING;
        submit_plan(gs, &plan, budget);
    }
out:
    writes_clear(&plan);
    json_decref(claims);
    json_decref(pods);
}

/* An undo: claims first, then bound pods, then the job. */
static void step_undo(struct gangs *gs, struct gang *g, const struct ism_slurm_job *job,
                      int *budget)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct writes plan = { 0 };
    json_t *claims = json_object(), *pods = json_object();
    int rc = 1, left = 0;

    if (g->pods) {
        views(gs, g, claims, pods);
        rc = gang_rollback_plan(g->pods, g->npods, claims, gs->in_flight, &plan, &err);
        if (rc < 0)
            ism_log_error("gang %s: %s", g->id.key, err.text);
        submit_plan(gs, &plan, budget);
        for (int i = 0; i < g->npods; i++) {
            char key[400];
            snprintf(key, sizeof(key), "%s/%s", g->pods[i].ns, g->pods[i].name);
            const json_t *pod = view(gs, gs->pods, key);
            /* a pod being deleted is gone as far as the gang is concerned:
             * its kubelet finishes the deletion */
            if (pod && node_of(pod) && !deleting(pod) &&
                strcmp(meta(pod, "uid"), g->pods[i].uid) == 0) {
                left++;
                delete_pod(gs, key, pod, budget);
            }
        }
    }
    writes_clear(&plan);
    json_decref(claims);
    json_decref(pods);
    if (rc != 1 || left)
        return;
    if (job) {
        end_job(gs, g, -1);
        return; /* gone in a later poll */
    }
    /* Released: wait again, in the next shape when that was the cause. */
    gang_free_commit(g);
    if (g->undo_reshape && g->shape + 1 < SHAPES)
        g->shape++;
    else {
        g->phase = FAILED;
        members_sig(gs, g, g->failed_sig);
        failed(gs, g);
    }
    if (g->phase != FAILED)
        g->phase = WAITING;
    g->undo_why[0] = '\0';
    g->job_id = 0;
}

/* Delete the pods whose job ended (those still there, not finished, not
 * already being deleted).  True while any is left: the gang waits, so
 * the same pods never make a new job. */
static bool evict(struct gangs *gs, struct gang *g, int *budget)
{
    size_t i;
    json_t *k;
    bool left = false;

    if (!g->evict || json_object_size(g->evict) == 0)
        return false;
    json_array_foreach(g->members, i, k) {
        const json_t *pod = view(gs, gs->pods, json_string_value(k));
        const char *uid = meta(pod, "uid");
        if (!pod || !uid || !json_object_get(g->evict, uid) || pod_finished(pod) || deleting(pod))
            continue;
        left = true;
        delete_pod(gs, json_string_value(k), pod, budget);
    }
    if (!left)
        json_object_clear(g->evict);
    return left;
}

/* Slurm ended the job: the placed pods go, with the cause. */
static void job_ended(struct gangs *gs, struct gang *g, int *budget)
{
    const struct ism_slurm_job *e = NULL;
    size_t i;
    json_t *k;

    for (int j = 0; gs->sjobs && j < gs->sjobs->nended; j++)
        if (gs->sjobs->ended[j].id == g->job_id)
            e = &gs->sjobs->ended[j];
    if (g->completed || g->cancel_sent) { /* its end is ours */
        ism_log_info("gang %s: job %u is over", g->id.key, g->job_id);
    } else {
        gs->st.ended_total++;
        tell(gs, g, 0, "Warning", "SlurmJobEnded",
             "Slurm job %u of gang %s ended (%s%s%s): its pods are deleted", g->job_id,
             g->id.name, e ? e->state_name : "gone", e && *e->reason ? ", " : "",
             e ? e->reason : "");
        json_decref(g->evict);
        g->evict = json_object();
        json_array_foreach(g->members, i, k) {
            const json_t *pod = view(gs, gs->pods, json_string_value(k));
            if (pod && !pod_finished(pod) && meta(pod, "uid"))
                json_object_set_new(g->evict, meta(pod, "uid"), json_true());
        }
        evict(gs, g, budget);
    }
    if (g->phase == UNDOING && !g->completed) {
        g->job_id = 0; /* step_undo finishes (next pass) */
        return;
    }
    gang_free_commit(g);
    g->job_id = 0;
    g->phase = g->completed ? BOUND : WAITING;
    g->shape = SHAPE_TASKS;
}

/* All placed pods finished: the allocation is completed. */
static void step_bound(struct gangs *gs, struct gang *g)
{
    bool all_done = true, all_ok = true;

    for (int i = 0; i < g->npods; i++) {
        char key[400];
        snprintf(key, sizeof(key), "%s/%s", g->pods[i].ns, g->pods[i].name);
        const json_t *pod = view(gs, gs->pods, key);
        if (pod && strcmp(meta(pod, "uid"), g->pods[i].uid) == 0 && !pod_finished(pod)) {
            all_done = false;
            break;
        }
        if (pod && strcmp(str2(pod, "status", "phase") ? str2(pod, "status", "phase") : "",
                          "Succeeded") != 0)
            all_ok = false;
    }
    if (all_done)
        end_job(gs, g, all_ok ? 0 : 1);
}

/* The gang's job is queued: say why, or give it back when nothing will
 * use it or it can never start. */
static void step_pending(struct gangs *gs, struct gang *g, const struct ism_slurm_job *job,
                         int *budget)
{
    if (live_members(gs, g, &(int){ 0 }) == 0) {
        if (!g->cancel_sent)
            ism_log_notice("gang %s: pending job %u has no pods left", g->id.key, job->id);
        end_job(gs, g, -1);
    } else if (job->hopeless) {
        /* The submission cancels such a job at once; one found again
         * after a crash between the two is given back here. */
        undo(gs, g, false, "Slurm job %u asks for %s: it could never start", job->id,
             job->hopeless);
    } else {
        g->phase = PENDING;
        hold(gs, g, budget);
        tell(gs, g, TELL_CONDITION, "Normal", "SlurmPending",
             "gang %s is pending in Slurm as job %u: %s", g->id.name, job->id,
             *job->reason ? job->reason : job->state_name);
    }
}

static void step(struct gangs *gs, struct gang *g, int *budget)
{
    const struct ism_slurm_job *job = g->job_id ? ism_slurm_jobs_find(gs->sjobs, g->job_id) : NULL;

    if (g->submitting) {
        hold(gs, g, budget); /* while Slurm decides */
        return;
    }
    if (evict(gs, g, budget))
        return;
    if (g->job_id && !job) {
        if (gs->jobs_seq > g->job_seq)
            job_ended(gs, g, budget);
        return; /* not in a snapshot yet; or the next pass sees the deletes */
    }
    if (g->phase == UNDOING) {
        step_undo(gs, g, job, budget);
        return;
    }
    if (!g->job_id) {
        if (g->phase != BOUND || live_members(gs, g, &(int){ 0 }) > 0) {
            if (g->phase == BOUND)
                g->phase = WAITING;
            step_waiting(gs, g, budget);
        }
        return;
    }
    if (!job->nnodes) {
        step_pending(gs, g, job, budget);
        return;
    }
    if (g->completed)
        return;
    if (!g->asked) /* found again after a restart: read what was asked */
        sscanf(job->comment, JOB_COMMENT_FMT, &g->asked, (int *)&g->shape);
    if (g->asked < 1) {
        undo(gs, g, false, "Slurm job %u does not say how many pods it holds", job->id);
        return;
    }
    if (g->phase == BOUND && g->places) {
        step_bound(gs, g);
        return;
    }
    if (live_members(gs, g, &(int){ 0 }) == 0) {
        /* Every pod finished or went before (or while) isthmusd placed
         * them, a restart in between say: nothing will use the cores. */
        ism_log_notice("gang %s: job %u has no pods left", g->id.key, job->id);
        end_job(gs, g, 0);
        return;
    }
    step_commit(gs, g, job, budget);
    if (g->phase == BOUND)
        step_bound(gs, g);
}

/* ------------------------------------------------------------ grouping */

/* The group object's minimum, -1 when it is not there (yet). */
static int group_min(struct gangs *gs, const struct gang_id *id)
{
    struct discovery *d = &gs->discovery[id->source == GANG_WORKLOAD ? 0 : 1];
    ism_kube_informer_t *inf = *d->slot;
    ism_error_t err = ISM_ERROR_INIT;
    char key[400];
    const json_t *grp;
    int min;

    snprintf(key, sizeof(key), "%s/%s", id->ns, id->name);
    if (!inf)
        rediscover(gs, d);
    if (!inf || !(grp = ism_kube_informer_get(inf, key)))
        return -1;
    if (gang_min_of_group(id->source, grp, &min, &err) < 0) {
        ism_log_warn("gang %s: %s", id->key, err.text);
        return -1;
    }
    return min;
}

/* Members of this pass, from the pods cache; jobs of ours with no pod. */
static void group(struct gangs *gs)
{
    const char *key;
    json_t *pod, *bad_now = json_object();
    ism_error_t err = ISM_ERROR_INIT;

    for (int i = 0; i < gs->n; i++)
        json_array_clear(gs->v[i]->members);
    json_object_foreach(ism_kube_informer_cache(gs->pods), key, pod) {
        struct gang_id id;
        struct gang *g;
        if (gang_id_of_pod(pod, &id, &err) < 0) {
            const char *uid = meta(pod, "uid");
            if (uid && !json_object_get(gs->told_bad, uid)) {
                json_t *r = regarding(pod);
                ism_log_warn("pod %s: %s", key, err.text);
                ism_kube_event(gs->c.events, r, "Warning", "GangInvalid", "Schedule", "%s",
                               err.text);
                json_decref(r);
            }
            if (uid && bad_now)
                json_object_set_new(bad_now, uid, json_true());
            continue;
        }
        if (!(g = find_or_add(gs, &id)))
            continue;
        if (id.min == 0)
            g->min = group_min(gs, &id);
        json_array_append_new(g->members, json_string(key));
    }
    for (int j = 0; gs->sjobs && j < gs->sjobs->count; j++) {
        const struct ism_slurm_job *job = &gs->sjobs->jobs[j];
        struct gang_id id;
        struct gang *g;
        if (!id_of_job(job, &id) || !(g = find_or_add(gs, &id)))
            continue;
        if (!g->job_id && !g->submitting) {
            g->job_id = job->id; /* found again: a restart, or the standby */
            g->job_seq = 0;
            ism_log_notice("gang %s: carrying on with Slurm job %u", g->id.key, job->id);
        } else if (g->job_id != job->id && !g->submitting) {
            ism_log_warn("gang %s: a second job %u (keeping %u); cancelling it", g->id.key,
                         job->id, g->job_id);
            cancel_stray(gs, job->id);
        }
    }
    for (int i = 0; i < gs->n; i++)
        sort_members(gs->v[i]->members);
    if (bad_now) { /* forget the pods that went */
        json_decref(gs->told_bad);
        gs->told_bad = bad_now;
    }
}

/* Claims isthmus allocated whose reserved pods are all gone or finished:
 * allocation cleared, then the finalizer dropped. */
static void release_claims(struct gangs *gs, const json_t *busy_claims, int *budget)
{
    const char *key;
    json_t *claim;
    struct writes plan = { 0 };

    json_object_foreach(ism_kube_informer_cache(gs->claims), key, claim) {
        const json_t *st = json_object_get(claim, "status"), *r;
        bool live = false;
        size_t i;
        json_t *body;
        if (*budget <= 0)
            break;
        if (!ism_has_finalizer(claim, ISM_GANG_FINALIZER) ||
            in_flight(gs, &gang_claim_resource, key, true))
            continue;
        /* A claim being deleted that holds nothing is let go even when a
         * gang counts on it: our finalizer must not keep it. */
        if (json_object_get(busy_claims, key) &&
            !(deleting(claim) && !json_object_get(st, "allocation") &&
              !json_array_size(json_object_get(st, "reservedFor"))))
            continue;
        json_array_foreach(json_object_get(st, "reservedFor"), i, r) {
            char pk[400];
            snprintf(pk, sizeof(pk), "%s/%s", meta(claim, "namespace"),
                     json_string_value(json_object_get(r, "name")));
            const json_t *pod = view(gs, gs->pods, pk);
            const char *uid = json_string_value(json_object_get(r, "uid"));
            if (pod && uid && strcmp(uid, meta(pod, "uid")) == 0 && !pod_finished(pod))
                live = true;
        }
        if (live)
            continue;
        if (json_object_get(st, "allocation") ||
            json_array_size(json_object_get(st, "reservedFor"))) {
            body = json_deep_copy(claim);
            if (body)
                json_object_set_new(body, "status", json_object());
            if (writes_add(&plan, WRITE_UPDATE_STATUS, &gang_claim_resource,
                           meta(claim, "namespace"), meta(claim, "name"), NULL, body) < 0)
                break;
        } else if (writes_add(&plan, WRITE_UPDATE, &gang_claim_resource, meta(claim, "namespace"),
                              meta(claim, "name"), NULL,
                              ism_with_finalizer(claim, ISM_GANG_FINALIZER, false)) < 0) {
            break;
        }
        ism_log_info("ResourceClaim %s: its pods are done; releasing it", key);
        submit_plan(gs, &plan, budget);
        writes_clear(&plan);
    }
    writes_clear(&plan);
}

/* Claims of gangs between a submission and their binding, or undoing:
 * the release above leaves those to their gang. */
static json_t *busy_claims(const struct gangs *gs)
{
    json_t *busy = json_object();
    char key[400];

    for (int i = 0; busy && i < gs->n; i++) {
        const struct gang *g = gs->v[i];
        if (g->held && (g->submitting || g->job_id || g->phase == WAITING))
            json_object_update(busy, g->held); /* held for the members, or while Slurm decides */
        if (g->phase != COMMITTING && g->phase != UNDOING && g->phase != BOUND)
            continue;
        for (int p = 0; p < g->npods; p++)
            for (int c = 0; c < g->pods[p].nclaims; c++) {
                snprintf(key, sizeof(key), "%s/%s", g->pods[p].ns, g->pods[p].claims[c].name);
                json_object_set_new(busy, key, json_true());
            }
    }
    return busy;
}

/* Drop gangs with nothing left: no member, no job, nothing in flight. */
static void sweep(struct gangs *gs)
{
    int k = 0;

    for (int i = 0; i < gs->n; i++) {
        struct gang *g = gs->v[i];
        if (json_array_size(g->members) == 0 && !g->job_id && !g->submitting && !g->job_request &&
            g->phase != UNDOING) {
            gang_free(g);
            continue;
        }
        gs->v[k++] = g;
    }
    gs->n = k;
}

int gangs_reconcile(struct gangs *gs, int budget, bool *more)
{
    int start = budget;
    json_t *busy;

    *more = false;
    if (!gs || !gangs_synced(gs))
        return 0;
    if (!gs->dirty && (!gs->wake || ism_kube_now_ms() < gs->wake))
        return 0; /* nothing changed, nothing timed is due */
    if (gs->write_failures && ism_kube_now_ms() < gs->retry_at) {
        wake_at(gs, gs->retry_at);
        return 0;
    }
    gs->dirty = false;
    gs->wake = 0;
    group(gs);
    for (int i = 0; i < gs->n && budget > 0; i++)
        step(gs, gs->v[i], &budget);
    if ((busy = busy_claims(gs))) {
        release_claims(gs, busy, &budget);
        json_decref(busy);
    }
    sweep(gs);
    if (budget <= 0)
        gs->dirty = *more = true;
    return start - budget;
}

/* ------------------------------------------------------------ the rest */

/* Whether a gang waits for a poll newer than its submission: its job is
 * not in the snapshot yet (or has ended), or a lost answer is looked for. */
static bool awaits_poll(const struct gangs *gs)
{
    for (int i = 0; i < gs->n; i++) {
        const struct gang *g = gs->v[i];
        if (g->job_id ? !ism_slurm_jobs_find(gs->sjobs, g->job_id) : g->job_seq != 0)
            return true;
    }
    return false;
}

void gangs_slurm_seen(struct gangs *gs, const ism_slurm_nodes_t *nodes,
                      const ism_slurm_jobs_t *jobs, uint64_t seq, bool changed)
{
    if (!gs)
        return;
    if (nodes != gs->snodes)
        gs->want_nodes = false; /* the next pass says again if still so */
    gs->snodes = nodes;
    gs->sjobs = jobs;
    gs->jobs_seq = seq;
    /* An unchanged table changes no decision, unless a gang waits for
     * a newer poll: no pass then, every second. */
    if (changed || awaits_poll(gs))
        gs->dirty = true;
}

void gangs_poll_started(struct gangs *gs, uint64_t seq)
{
    if (gs)
        gs->polls_started = seq;
}

void gangs_mark(struct gangs *gs)
{
    if (gs)
        gs->dirty = true;
}

int64_t gangs_wake_ms(const struct gangs *gs)
{
    int64_t left;

    if (!gs || !gs->wake)
        return -1;
    left = gs->wake - ism_kube_now_ms();
    return left > 0 ? left : 0;
}

bool gangs_want_nodes(const struct gangs *gs)
{
    return gs && gs->want_nodes;
}

bool gangs_active(const struct gangs *gs)
{
    for (int i = 0; gs && i < gs->n; i++)
        if (gs->v[i]->job_id || gs->v[i]->submitting)
            return true;
    return false;
}

void gangs_stats(const struct gangs *gs, struct gangs_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!gs)
        return;
    *out = gs->st;
    out->waiting = out->pending = out->committing = out->bound = out->failed = 0;
    for (int i = 0; i < gs->n; i++) {
        switch (gs->v[i]->phase) {
        case WAITING:
            out->waiting++;
            break;
        case SUBMITTING:
        case PENDING:
            out->pending++;
            break;
        case COMMITTING:
        case UNDOING:
            out->committing++;
            break;
        case BOUND:
            out->bound++;
            break;
        case FAILED:
            out->failed++;
            break;
        }
    }
}

bool gangs_synced(const struct gangs *gs)
{
    return gs && discovered_all(gs) && ism_kube_informer_synced(gs->pods) &&
           ism_kube_informer_synced(gs->claims) &&
           (!gs->workload_groups || ism_kube_informer_synced(gs->workload_groups)) &&
           (!gs->cosched_groups || ism_kube_informer_synced(gs->cosched_groups));
}

int64_t gangs_failing_ms(const struct gangs *gs)
{
    ism_kube_informer_t *all[4];
    int64_t ms = 0, v;

    if (!gs)
        return 0;
    all[0] = gs->pods, all[1] = gs->claims, all[2] = gs->workload_groups,
    all[3] = gs->cosched_groups;
    for (int i = 0; i < 4; i++)
        if (all[i] && (v = ism_kube_informer_failing_ms(all[i])) > ms)
            ms = v;
    return ms;
}

struct gangs *gangs_create(const struct gangs_ctx *ctx, ism_error_t *err)
{
    struct gangs *gs;
    char fields[64];

    if (!ctx || !ctx->kube || !ctx->apply || !ctx->slurm || !ctx->events || !ctx->pools ||
        !ctx->may_write) {
        ism_err(err, EINVAL, "gangs: incomplete context");
        return NULL;
    }
    if (!(gs = calloc(1, sizeof(*gs))) || !(gs->in_flight = json_object()) ||
        !(gs->fresh = json_object()) || !(gs->seen_ms = json_object()) ||
        !(gs->told_bad = json_object()) || !(gs->told_pod = json_object()) ||
        !(gs->refused = json_object())) {
        gangs_destroy(gs);
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    gs->c = *ctx;
    gs->dirty = true;
    const char *crash = getenv("ISTHMUSD_CRASH_AT");
    if (crash && sscanf(crash, "%15[a-z]=%d", gs->crash_what, &gs->crash_after) != 2)
        gs->crash_after = 0;
    snprintf(fields, sizeof(fields), "spec.schedulerName=%s", ISM_SCHEDULER_NAME);
    gs->watch_pods = (struct watched){ gs, &gang_pod_resource };
    gs->watch_claims = (struct watched){ gs, &gang_claim_resource };
    if (!(gs->pods = ism_kube_informer_create(ctx->kube, &gang_pod_resource, NULL, NULL, fields,
                                              &handlers, &gs->watch_pods, err)) ||
        !(gs->claims = ism_kube_informer_create(ctx->kube, &gang_claim_resource, NULL, NULL, NULL,
                                                &handlers, &gs->watch_claims, err)) ||
        discover(gs, &gs->discovery[0], &WORKLOAD_GROUPS, &gs->workload_groups, err) < 0 ||
        discover(gs, &gs->discovery[1], &COSCHEDULING_GROUPS, &gs->cosched_groups, err) < 0) {
        gangs_destroy(gs);
        return NULL;
    }
    return gs;
}

void gangs_destroy(struct gangs *gs)
{
    int saved = errno;

    if (!gs)
        return;
    for (int i = 0; i < 2; i++)
        ism_kube_cancel(gs->c.kube, gs->discovery[i].call);
    ism_kube_informer_destroy(gs->pods);
    ism_kube_informer_destroy(gs->claims);
    ism_kube_informer_destroy(gs->workload_groups);
    ism_kube_informer_destroy(gs->cosched_groups);
    for (int i = 0; i < gs->n; i++)
        gang_free(gs->v[i]);
    free(gs->v);
    json_decref(gs->in_flight);
    json_decref(gs->fresh);
    json_decref(gs->seen_ms);
    json_decref(gs->told_bad);
    json_decref(gs->told_pod);
    json_decref(gs->refused);
    free(gs);
    errno = saved;
}
