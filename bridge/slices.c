/* slices.c - ResourceSlices per pool: the plan and the reconciler
 * (slices.h). */
#include <config.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/backoff.h"
#include "bridge/model.h"
#include "bridge/slices.h"
#include "lib/util/log.h"

#define DIGEST_KEY SLICES_DIGEST_KEY
#define POOLS_PER_TURN 256             /* pools examined per turn, at most */
static const ism_backoff_t RETRY = { 500, 60000 }; /* after a failed write */

static void prune_shared(struct slices *s);
static void retry_later(struct slices *s, const char *pool);

const ism_kube_resource_t slices_resource = { "resource.k8s.io", "v1", "resourceslices", false };

struct slices {
    struct slices_ctx c;
    ism_kube_informer_t *cache;
    const ism_slurm_nodes_t *snodes; /* borrowed: the bridge's last snapshot */
    json_t *in_flight; /* slice name -> pool, a write submitted, no answer yet */
    json_t *pool_busy; /* pool -> writes in flight */
    json_t *parked;    /* pool -> true: dirty while busy, planned once not */
    json_t *dirty;    /* pool -> true */
    json_t *by_pool;  /* pool -> {slice name: true}, from the cache */
    json_t *devices;  /* Slurm node -> devices array of its topology */
    json_t *shared;   /* encoded topology -> its devices array, shared */
    json_t *failures; /* pool -> consecutive failed reconciles */
    json_t *waiting;  /* pool -> monotonic ms of its next try, after a failure */
    json_t *told;     /* Slurm node -> the problem last logged / evented */
};

/* ------------------------------------------------------------ the cache */

static const char *slice_pool(const json_t *slice)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(slice, "spec"), "pool"), "name"));
}

static json_int_t slice_generation(const json_t *slice)
{
    return json_integer_value(json_object_get(
        json_object_get(json_object_get(slice, "spec"), "pool"), "generation"));
}

/* Keep the digest of what we own instead of the devices. */
void slices_shrink(void *arg, json_t *obj)
{
    char digest[ISM_DIGEST_LEN];
    (void)arg;
    if (ism_slice_digest(obj, digest) < 0)
        digest[0] = '\0';
    json_object_del(json_object_get(obj, "spec"), "devices");
    json_object_set_new(obj, DIGEST_KEY, json_string(digest));
}

static void index_add(struct slices *s, const json_t *obj)
{
    const char *pool = slice_pool(obj);
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    json_t *set;

    if (!pool || !name)
        return;
    if (!(set = json_object_get(s->by_pool, pool))) {
        set = json_object();
        if (json_object_set_new(s->by_pool, pool, set) < 0)
            return;
    }
    json_object_set_new(set, name, json_true());
    slices_mark(s, pool);
}

static void index_del(struct slices *s, const json_t *obj)
{
    const char *pool = slice_pool(obj);
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    json_t *set = pool ? json_object_get(s->by_pool, pool) : NULL;

    if (!set || !name)
        return;
    json_object_del(set, name);
    if (json_object_size(set) == 0)
        json_object_del(s->by_pool, pool);
    slices_mark(s, pool);
}

static void on_add(void *arg, const char *key, json_t *obj)
{
    (void)key;
    index_add(arg, obj);
}

static void on_update(void *arg, const char *key, json_t *old, json_t *obj)
{
    (void)key;
    index_del(arg, old);
    index_add(arg, obj);
}

static void on_del(void *arg, const char *key, json_t *old)
{
    (void)key;
    index_del(arg, old);
}

static void on_synced(void *arg)
{
    slices_mark_all(arg);
}

static const ism_kube_handlers_t handlers = {
    .add = on_add, .update = on_update, .del = on_del, .synced = on_synced, .transform = slices_shrink,
};

/* ------------------------------------------------------------ marking */

void slices_mark(struct slices *s, const char *pool)
{
    if (s && pool && *pool)
        json_object_set_new(s->dirty, pool, json_true());
}

void slices_mark_all(struct slices *s)
{
    const char *key;
    json_t *v;
    const ism_slurm_nodes_t *n = s ? s->snodes : NULL;

    if (!s)
        return;
    json_object_foreach(s->by_pool, key, v) {
        slices_mark(s, key);
    }
    for (int i = 0; n && i < n->count; i++)
        slices_mark(s, poolmap_pool_of(s->c.pools, n->nodes[i].name));
}

static bool same_topology(const struct ism_slurm_node *a, const struct ism_slurm_node *b)
{
    if (a->topo != b->topo)
        return false;
    return strcmp(a->topo_error, b->topo_error) == 0;
}

void slices_slurm_changed(struct slices *s, const ism_slurm_nodes_t *old,
                          const ism_slurm_nodes_t *cur)
{
    for (int i = 0; cur && i < cur->count; i++) {
        const struct ism_slurm_node *n = &cur->nodes[i];
        const struct ism_slurm_node *o = old ? ism_slurm_nodes_find(old, n->name) : NULL;
        if (o && same_topology(o, n))
            continue;
        /* Both snapshots are alive here, so equal topology pointers mean
         * the same decoded topology: the devices built from it stay. */
        json_object_del(s->devices, n->name);
        slices_mark(s, poolmap_pool_of(s->c.pools, n->name));
    }
    for (int i = 0; old && i < old->count; i++) {
        const struct ism_slurm_node *o = &old->nodes[i];
        if (cur && ism_slurm_nodes_find(cur, o->name))
            continue;
        json_object_del(s->devices, o->name);
        json_object_del(s->told, o->name);
        slices_mark(s, poolmap_pool_of(s->c.pools, o->name));
    }
    s->snodes = cur;
    prune_shared(s);
}

/* ------------------------------------------------------------ wanted state */

/* Say once per problem, in the log and (when leading) as an Event on the
 * Node, why a Slurm node gets no slices. */
static void tell(struct slices *s, const char *slurm_node, const char *pool, const char *reason,
                 const char *why)
{
    const char *last = json_string_value(json_object_get(s->told, slurm_node));
    json_t *node = pool ? ism_kube_informer_get(s->c.nodes, pool) : NULL;

    if (last && strcmp(last, why) == 0)
        return;
    ism_log_warn("node %s: %s: no ResourceSlices", slurm_node, why);
    if (node && s->c.leading(s->c.arg))
        ism_kube_event(s->c.events, node, "Warning", reason, "Publish",
                       "Slurm node %s: %s; isthmusd publishes no cores for it", slurm_node, why);
    json_object_set_new(s->told, slurm_node, json_string(why));
}

/* The devices of topo (a new reference).  Nodes of the same hardware
 * share one array: 10,000 nodes of 128 cores would otherwise hold
 * gigabytes of equal jansson trees. */
static json_t *shared_devices(struct slices *s, const ism_topo_t *topo, ism_error_t *err)
{
    char *key = ism_topo_encode(topo, err);
    json_t *devices = key ? json_object_get(s->shared, key) : NULL;

    if (!key)
        return NULL;
    if (devices) {
        json_incref(devices);
    } else if ((devices = ism_devices_build(topo, err))) {
        json_object_set(s->shared, key, devices);
    }
    free(key);
    return devices;
}

/* Forget device arrays no node uses any more. */
static void prune_shared(struct slices *s)
{
    const char *key;
    json_t *devices;
    void *tmp;

    json_object_foreach_safe(s->shared, tmp, key, devices) {
        if (devices->refcount == 1)
            json_object_del(s->shared, key);
    }
}

/* The devices of the Slurm node mapped to pool, or NULL when it gets none
 * (borrowed from the cache). */
static const json_t *wanted_devices(struct slices *s, const char *pool, const char **slurm_name)
{
    const char *name = poolmap_slurm_of(s->c.pools, pool);
    const struct ism_slurm_node *n = name && s->snodes ? ism_slurm_nodes_find(s->snodes, name) : NULL;
    json_t *devices;
    ism_error_t err = ISM_ERROR_INIT;

    *slurm_name = name;
    if (!n)
        return NULL;
    if (!n->topo) {
        const char *why = n->topo_error[0] ? n->topo_error
                                           : "no topology in its Extra field (run isthmus-topology publish there)";
        tell(s, name, pool, n->topo_error[0] ? "BadTopology" : "NoTopology", why);
        return NULL;
    }
    if ((devices = json_object_get(s->devices, name)))
        return devices;
    if (!(devices = shared_devices(s, n->topo, &err))) {
        tell(s, name, pool, "BadTopology", err.text);
        return NULL;
    }
    json_object_set_new(s->devices, name, devices);
    if (json_object_get(s->told, name)) {
        ism_log_notice("node %s: topology found, publishing its cores", name);
        json_object_del(s->told, name);
    }
    return devices;
}

/* ------------------------------------------------------------ the plan */

static const char *name_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
}

/* The digest a cached slice carries ("" if none). */
static const char *digest_of(const json_t *cached)
{
    const char *d = json_string_value(json_object_get(cached, DIGEST_KEY));
    return d ? d : "";
}

/* The pool's slices at generation gen, by name (insertion order is core
 * order), and their digests into digests. */
static json_t *want_at(const struct slices_input *in, json_int_t gen, json_t *digests,
                       ism_error_t *err)
{
    json_t *list = ism_slices_build(in->pool, in->node_uid, in->slurm_node, in->devices, gen, err);
    json_t *want = list ? json_object() : NULL, *w;
    char digest[ISM_DIGEST_LEN];
    size_t i;

    if (list && !want)
        ism_err(err, ENOMEM, "out of memory");
    json_object_clear(digests);
    json_array_foreach(list, i, w) {
        const char *name = name_of(w);
        if (ism_slice_digest(w, digest) < 0)
            digest[0] = '\0';
        if (!want || !name || json_object_set(want, name, w) < 0 ||
            json_object_set_new(digests, name, json_string(digest)) < 0) {
            json_decref(want);
            want = NULL;
            ism_err(err, ENOMEM, "out of memory");
            break;
        }
    }
    json_decref(list);
    return want;
}

/* True when every existing slice of the pool is wanted, as it is. */
static bool pool_matches(const json_t *have, const json_t *digests)
{
    const char *name;
    json_t *v;

    json_object_foreach((json_t *)have, name, v) {
        const char *d = json_string_value(json_object_get(digests, name));
        if (!d || strcmp(d, digest_of(v)) != 0)
            return false;
    }
    return true;
}

static json_int_t pool_generation(const json_t *have)
{
    const char *name;
    json_t *v;
    json_int_t g = 0;

    json_object_foreach((json_t *)have, name, v) {
        json_int_t sg = slice_generation(v);
        if (sg > g)
            g = sg;
    }
    return g;
}

static bool any_in_flight(const json_t *names, const json_t *in_flight)
{
    const char *name;
    json_t *v;

    json_object_foreach((json_t *)names, name, v) {
        if (json_object_get(in_flight, name))
            return true;
    }
    return false;
}

void slices_plan_clear(struct slices_plan *p)
{
    if (p) {
        writes_clear(&p->writes);
        memset(p, 0, sizeof(*p));
    }
}

int slices_plan(const struct slices_input *in, struct slices_plan *out, ism_error_t *err)
{
    json_t *want = NULL, *digests = NULL, *w;
    json_int_t gen;
    const char *name;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!in || !in->pool)
        return ism_err(err, EINVAL, "slices plan: no pool");
    gen = pool_generation(in->have);
    if (in->in_flight && any_in_flight(in->have, in->in_flight)) {
        out->busy = true;
        return 0;
    }
    if (!(digests = json_object()))
        return ism_err(err, ENOMEM, "out of memory");
    if (in->devices && in->node_uid) {
        want = want_at(in, gen ? gen : 1, digests, err);
        out->generation = gen ? gen : 1;
        if (want && gen && !pool_matches(in->have, digests)) {
            json_decref(want);
            want = want_at(in, gen + 1, digests, err);
            out->generation = gen + 1;
            out->rewrite = true;
        }
        if (!want) {
            /* Never delete the pool for a failure of ours: try again. */
            out->generation = gen;
            out->rewrite = false;
            goto done;
        }
        if (in->in_flight && any_in_flight(want, in->in_flight)) {
            out->busy = true;
            out->generation = gen;
            out->rewrite = false;
            rc = 0;
            goto done;
        }
    }
    json_object_foreach(want, name, w) {
        json_t *have = json_object_get(in->have, name);
        if (have && strcmp(json_string_value(json_object_get(digests, name)), digest_of(have)) == 0)
            continue;
        if (have)
            json_object_set(json_object_get(w, "metadata"), "resourceVersion",
                            json_object_get(json_object_get(have, "metadata"), "resourceVersion"));
        if (writes_add(&out->writes, have ? WRITE_UPDATE : WRITE_CREATE, &slices_resource, NULL,
                       name, NULL, json_incref(w)) < 0)
            goto nomem;
    }
    json_object_foreach((json_t *)in->have, name, w) {
        const char *uid;
        if (json_object_get(want, name))
            continue;
        uid = json_string_value(json_object_get(json_object_get(w, "metadata"), "uid"));
        if (writes_add(&out->writes, WRITE_DELETE, &slices_resource, NULL, name, uid, NULL) < 0)
            goto nomem;
    }
    rc = 0;
    goto done;
nomem:
    slices_plan_clear(out);
    ism_err(err, ENOMEM, "out of memory");
done:
    json_decref(digests);
    json_decref(want);
    return rc;
}

/* ------------------------------------------------------------ reconcile */

/* One write of a pool answered. */
static void write_done(void *arg, const struct write *w, int rc, const ism_kube_status_t *st,
                       json_t *answer, const ism_error_t *err)
{
    struct slices *s = arg;
    json_t *pool_v = json_incref(json_object_get(s->in_flight, w->name));
    const char *pool = json_string_value(pool_v);
    json_int_t left = json_integer_value(json_object_get(s->pool_busy, pool ? pool : "")) - 1;
    (void)st, (void)answer;

    json_object_del(s->in_flight, w->name);
    if (rc < 0)
        ism_log_warn("ResourceSlice %s: %s failed: %s", w->name, write_op_name(w->op), err->text);
    else
        ism_log_info("ResourceSlice %s %s", w->name,
                     w->op == WRITE_CREATE ? "created" : w->op == WRITE_DELETE ? "deleted" : "updated");
    if (pool && rc < 0 && !json_object_get(s->waiting, pool))
        retry_later(s, pool);
    if (pool && left > 0) {
        json_object_set_new(s->pool_busy, pool, json_integer(left));
    } else if (pool) {
        json_object_del(s->pool_busy, pool);
        /* A pool skipped while busy is planned again now. */
        if (json_object_get(s->parked, pool)) {
            json_object_del(s->parked, pool);
            slices_mark(s, pool);
        }
    }
    json_decref(pool_v);
}

/* The cached slices of pool, by name (a new object of borrowed entries). */
static json_t *have_of(struct slices *s, const char *pool)
{
    json_t *have = json_object(), *v;
    const char *name;

    json_object_foreach(json_object_get(s->by_pool, pool), name, v) {
        json_t *obj = ism_kube_informer_get(s->cache, name);
        if (obj && have)
            json_object_set(have, name, obj);
    }
    return have;
}

/* Plan one pool and submit its writes.  -1 when the plan or a submission
 * failed, 1 when the pool is busy (parked until its writes answer), 0. */
static int reconcile_pool(struct slices *s, const char *pool, int *writes)
{
    json_t *node = ism_kube_informer_get(s->c.nodes, pool), *have = have_of(s, pool);
    const char *slurm_name = NULL;
    struct slices_input in = {
        .pool = pool,
        .node_uid = json_string_value(json_object_get(json_object_get(node, "metadata"), "uid")),
        .devices = node ? wanted_devices(s, pool, &slurm_name) : NULL,
        .have = have,
        .in_flight = s->in_flight,
    };
    struct slices_plan p;
    ism_error_t err = ISM_ERROR_INIT;
    int rc = 0;

    in.slurm_node = slurm_name;
    if (!have) {
        ism_log_error("pool %s: out of memory", pool);
        return -1;
    }
    if (slices_plan(&in, &p, &err) < 0) {
        ism_log_error("%s (trying again later)", err.text);
        json_decref(have);
        return -1;
    }
    if (p.busy) {
        json_object_set_new(s->parked, pool, json_true());
        rc = 1;
    }
    for (size_t i = 0; i < p.writes.n; i++) {
        const struct write *w = &p.writes.v[i];
        json_int_t busy = json_integer_value(json_object_get(s->pool_busy, pool));
        if (json_object_set_new(s->in_flight, w->name, json_string(pool)) < 0 ||
            json_object_set_new(s->pool_busy, pool, json_integer(busy + 1)) < 0) {
            json_object_del(s->in_flight, w->name);
            rc = -1;
            break;
        }
        (*writes)++;
        if (apply_submit(s->c.apply, w, write_done, s) < 0) {
            ism_log_warn("ResourceSlice %s: %s not started", w->name, write_op_name(w->op));
            json_object_del(s->in_flight, w->name);
            if (busy > 0)
                json_object_set_new(s->pool_busy, pool, json_integer(busy));
            else
                json_object_del(s->pool_busy, pool);
            rc = -1;
        }
    }
    slices_plan_clear(&p);
    json_decref(have);
    return rc;
}

/* After a failed write: try the pool again later, backing off. */
static void retry_later(struct slices *s, const char *pool)
{
    json_int_t n = json_integer_value(json_object_get(s->failures, pool));
    int64_t delay = ism_backoff_delay(&RETRY, n < 64 ? (int)n + 1 : 64);

    json_object_set_new(s->failures, pool, json_integer(n + 1));
    json_object_set_new(s->waiting, pool, json_integer(ism_kube_now_ms() + delay));
    if (s->c.errors)
        (*s->c.errors)++;
}

/* Pools whose retry time has come are dirty again. */
static void wake_due(struct slices *s)
{
    int64_t now = ism_kube_now_ms();
    const char *pool;
    json_t *due;
    void *tmp;

    json_object_foreach_safe(s->waiting, tmp, pool, due) {
        if (json_integer_value(due) <= now) {
            slices_mark(s, pool);
            json_object_del(s->waiting, pool);
        }
    }
}

int64_t slices_wake_ms(const struct slices *s)
{
    int64_t first = -1, now = ism_kube_now_ms();
    const char *pool;
    json_t *due;

    json_object_foreach(s->waiting, pool, due) {
        int64_t left = json_integer_value(due) - now;
        if (left < 0)
            left = 0;
        if (first < 0 || left < first)
            first = left;
    }
    return first;
}

int slices_reconcile(struct slices *s, int budget, bool *more)
{
    const char *pool;
    json_t *v, *batch = json_array();
    size_t i;
    int writes = 0, rc;

    *more = false;
    if (!batch)
        return 0;
    wake_due(s);
    json_object_foreach(s->dirty, pool, v) {
        if (json_array_size(batch) >= POOLS_PER_TURN)
            break;
        json_array_append_new(batch, json_string(pool));
    }
    json_array_foreach(batch, i, v) {
        pool = json_string_value(v);
        if (writes >= budget)
            break;
        json_object_del(s->dirty, pool);
        json_object_del(s->waiting, pool);
        rc = reconcile_pool(s, pool, &writes);
        if (rc < 0 && !json_object_get(s->waiting, pool))
            retry_later(s, pool);
        else if (rc == 0 && !json_object_get(s->waiting, pool))
            json_object_del(s->failures, pool);
    }
    json_decref(batch);
    *more = json_object_size(s->dirty) > 0;
    return writes;
}

void slices_forget_told(struct slices *s)
{
    if (s)
        json_object_clear(s->told);
}

void slices_stats(const struct slices *s, uint64_t *pools, uint64_t *no_topology)
{
    const ism_slurm_nodes_t *n = s ? s->snodes : NULL;

    *pools = s ? json_object_size(s->by_pool) : 0;
    *no_topology = 0;
    for (int i = 0; n && i < n->count; i++)
        *no_topology += n->nodes[i].topo == NULL;
}

/* ------------------------------------------------------------ lifetime */

struct slices *slices_create(const struct slices_ctx *ctx, ism_error_t *err)
{
    struct slices *s = calloc(1, sizeof(*s));

    if (!ctx || !ctx->kube || !ctx->apply || !ctx->nodes || !ctx->pools || !ctx->leading) {
        free(s);
        ism_err(err, EINVAL, "slices: incomplete context");
        return NULL;
    }
    if (!s || !(s->dirty = json_object()) || !(s->by_pool = json_object()) ||
        !(s->devices = json_object()) || !(s->shared = json_object()) ||
        !(s->failures = json_object()) || !(s->waiting = json_object()) ||
        !(s->told = json_object()) || !(s->in_flight = json_object()) ||
        !(s->pool_busy = json_object()) || !(s->parked = json_object())) {
        slices_destroy(s);
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    s->c = *ctx;
    s->cache = ism_kube_informer_create(ctx->kube, &slices_resource, NULL, NULL,
                                        "spec.driver=" ISM_DRIVER, &handlers, s, err);
    if (!s->cache) {
        slices_destroy(s);
        return NULL;
    }
    /* 128 devices make a slice about 30 KB of JSON: list in small pages. */
    ism_kube_informer_set_page_size(s->cache, 50);
    return s;
}

ism_kube_informer_t *slices_informer(const struct slices *x)
{
    return x ? x->cache : NULL;
}

bool slices_synced(const struct slices *s)
{
    return s && ism_kube_informer_synced(s->cache);
}

void slices_destroy(struct slices *s)
{
    int saved = errno;

    if (!s)
        return;
    ism_kube_informer_destroy(s->cache);
    json_decref(s->dirty);
    json_decref(s->by_pool);
    json_decref(s->devices);
    json_decref(s->shared);
    json_decref(s->failures);
    json_decref(s->waiting);
    json_decref(s->told);
    json_decref(s->in_flight);
    json_decref(s->pool_busy);
    json_decref(s->parked);
    free(s);
    errno = saved;
}
