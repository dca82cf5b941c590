/* slices.c - one pool of ResourceSlices per Slurm node that has a
 * Kubernetes Node, kept equal to the node's published topology.
 *
 * Level-based: a pool is marked dirty when something it depends on
 * changes (the Slurm node's topology, the Node, a slice of the pool), and
 * reconciling it compares what should exist with the informer's cache:
 *  - the pool's generation is the highest one its slices carry;
 *  - when every existing slice matches what we would write at that
 *    generation, only missing slices are created (someone deleted one) and
 *    nothing else is written: a restart or a quiet cluster costs no write;
 *  - otherwise the content changed (new topology, or someone edited a
 *    slice) and every slice is written again at generation + 1, so
 *    consumers never mix slices of two contents.
 * The cache keeps slices shrunk to their metadata, pool and a digest of
 * what we own (model.h), so 10,000 nodes of 128 cores fit in little memory.
 */
#include <config.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "lib/util/log.h"
#include "model.h"

#define DIGEST_KEY "isthmus.io/digest" /* added to cached slices only */
#define POOLS_PER_TURN 256             /* pools examined per turn, at most */
#define RETRY_BASE_MS 500
#define RETRY_CAP_MS 60000

static void prune_shared(struct slices *s);

struct slices {
    struct bridge *b;
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
static void shrink(void *arg, json_t *obj)
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
    struct bridge *b = arg;
    (void)key;
    index_add(b->slices, obj);
}

static void on_update(void *arg, const char *key, json_t *old, json_t *obj)
{
    struct bridge *b = arg;
    (void)key;
    index_del(b->slices, old);
    index_add(b->slices, obj);
}

static void on_del(void *arg, const char *key, json_t *old)
{
    struct bridge *b = arg;
    (void)key;
    index_del(b->slices, old);
}

static void on_synced(void *arg)
{
    struct bridge *b = arg;
    slices_mark_all(b->slices);
}

const ism_kube_handlers_t slices_handlers = {
    .add = on_add, .update = on_update, .del = on_del, .synced = on_synced, .transform = shrink,
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
    const ism_slurm_nodes_t *n = s ? s->b->snodes : NULL;

    if (!s)
        return;
    json_object_foreach(s->by_pool, key, v) {
        slices_mark(s, key);
    }
    for (int i = 0; n && i < n->count; i++)
        slices_mark(s, bridge_pool_of(s->b, n->nodes[i].name));
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
        slices_mark(s, bridge_pool_of(s->b, n->name));
    }
    for (int i = 0; old && i < old->count; i++) {
        const struct ism_slurm_node *o = &old->nodes[i];
        if (cur && ism_slurm_nodes_find(cur, o->name))
            continue;
        json_object_del(s->devices, o->name);
        json_object_del(s->told, o->name);
        slices_mark(s, bridge_pool_of(s->b, o->name));
    }
    prune_shared(s);
}

/* ------------------------------------------------------------ wanted state */

/* Say once per problem, in the log and (when leading) as an Event on the
 * Node, why a Slurm node gets no slices. */
static void tell(struct slices *s, const char *slurm_node, const char *pool, const char *reason,
                 const char *why)
{
    struct bridge *b = s->b;
    const char *last = json_string_value(json_object_get(s->told, slurm_node));
    json_t *node = pool ? bridge_node(b, pool) : NULL;

    if (last && strcmp(last, why) == 0)
        return;
    ism_log_warn("node %s: %s: no ResourceSlices", slurm_node, why);
    if (node && bridge_leading(b))
        ism_kube_event(b->events, node, "Warning", reason, "Publish",
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
    struct bridge *b = s->b;
    const char *name = bridge_slurm_of(b, pool);
    const struct ism_slurm_node *n = name ? ism_slurm_nodes_find(b->snodes, name) : NULL;
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

/* ------------------------------------------------------------ writes */

static int write_slice(struct slices *s, json_t *want, const json_t *have, int *writes)
{
    ism_kube_t *k = s->b->kube;
    ism_error_t err = ISM_ERROR_INIT;
    const char *name = json_string_value(json_object_get(json_object_get(want, "metadata"), "name"));
    int rc;

    if (!have) {
        rc = ism_kube_create_object(k, &bridge_slices, NULL, want, NULL, NULL, &err);
    } else {
        json_t *rv = json_object_get(json_object_get(have, "metadata"), "resourceVersion");
        json_object_set(json_object_get(want, "metadata"), "resourceVersion", rv);
        rc = ism_kube_update(k, &bridge_slices, NULL, want, NULL, NULL, NULL, &err);
    }
    (*writes)++;
    if (rc < 0)
        ism_log_warn("ResourceSlice %s: %s failed: %s", name, have ? "update" : "create", err.text);
    else
        ism_log_info("ResourceSlice %s %s", name, have ? "updated" : "created");
    return rc;
}

static int delete_slice(struct slices *s, const json_t *have, int *writes)
{
    json_t *meta = json_object_get(have, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    ism_error_t err = ISM_ERROR_INIT;

    (*writes)++;
    if (ism_kube_delete(s->b->kube, &bridge_slices, NULL, name, uid, NULL, NULL, &err) < 0 &&
        errno != ENOENT) {
        ism_log_warn("ResourceSlice %s: delete failed: %s", name, err.text);
        return -1;
    }
    ism_log_info("ResourceSlice %s deleted", name);
    return 0;
}

/* ------------------------------------------------------------ reconcile */

static json_t *cached(struct slices *s, const char *name)
{
    return ism_kube_informer_get(s->b->slice_inf, name);
}

/* The digest the cached slice called name carries ("" if none). */
static const char *have_digest(struct slices *s, const char *name)
{
    const char *d = json_string_value(json_object_get(cached(s, name), DIGEST_KEY));
    return d ? d : "";
}

/* The pool's slices at generation gen, by name (insertion order is core
 * order), and their digests into digests. */
static json_t *want_at(const char *pool, const char *uid, const char *slurm_name,
                       const json_t *devices, json_int_t gen, json_t *digests, ism_error_t *err)
{
    json_t *list = ism_slices_build(pool, uid, slurm_name, devices, gen, err);
    json_t *want = list ? json_object() : NULL, *w;
    char digest[ISM_DIGEST_LEN];
    size_t i;

    json_object_clear(digests);
    json_array_foreach(list, i, w) {
        const char *name = json_string_value(json_object_get(json_object_get(w, "metadata"), "name"));
        if (ism_slice_digest(w, digest) < 0)
            digest[0] = '\0';
        json_object_set(want, name, w);
        json_object_set_new(digests, name, json_string(digest));
    }
    json_decref(list);
    return want;
}

/* True when every existing slice of the pool is wanted, as it is. */
static bool pool_matches(struct slices *s, const json_t *have_set, const json_t *digests)
{
    const char *name;
    json_t *v;

    json_object_foreach((json_t *)have_set, name, v) {
        const char *d = json_string_value(json_object_get(digests, name));
        if (!d || strcmp(d, have_digest(s, name)) != 0)
            return false;
    }
    return true;
}

static json_int_t pool_generation(struct slices *s, const json_t *have_set)
{
    const char *name;
    json_t *v;
    json_int_t g = 0;

    json_object_foreach((json_t *)have_set, name, v) {
        json_int_t sg = slice_generation(cached(s, name));
        if (sg > g)
            g = sg;
    }
    return g;
}

/* Bring one pool to what it should be.  -1 when a write failed. */
static int reconcile_pool(struct slices *s, const char *pool, int *writes)
{
    const json_t *have_set = json_object_get(s->by_pool, pool);
    json_t *node = bridge_node(s->b, pool), *want = NULL, *digests = json_object(), *w;
    const char *slurm_name = NULL, *name;
    const json_t *devices = node ? wanted_devices(s, pool, &slurm_name) : NULL;
    const char *uid = json_string_value(json_object_get(json_object_get(node, "metadata"), "uid"));
    json_int_t gen = pool_generation(s, have_set);
    ism_error_t err = ISM_ERROR_INIT;
    int rc = 0;

    if (devices && uid && digests) {
        want = want_at(pool, uid, slurm_name, devices, gen ? gen : 1, digests, &err);
        if (want && gen && !pool_matches(s, have_set, digests)) {
            json_decref(want);
            want = want_at(pool, uid, slurm_name, devices, gen + 1, digests, &err);
        }
        if (!want) {
            ism_log_error("pool %s: %s", pool, err.text);
            s->b->reconcile_errors++;
        }
    }
    json_object_foreach(want, name, w) {
        json_t *have = cached(s, name);
        if (have && strcmp(json_string_value(json_object_get(digests, name)), have_digest(s, name)) == 0)
            continue;
        if (write_slice(s, w, have, writes) < 0)
            rc = -1;
    }
    json_object_foreach((json_t *)have_set, name, w) {
        if (!json_object_get(want, name) && delete_slice(s, cached(s, name), writes) < 0)
            rc = -1;
    }
    json_decref(digests);
    json_decref(want);
    return rc;
}

/* After a failed write: try the pool again later, backing off. */
static void retry_later(struct slices *s, const char *pool)
{
    json_int_t n = json_integer_value(json_object_get(s->failures, pool));
    int64_t delay = (int64_t)RETRY_BASE_MS << (n < 7 ? n : 7);

    if (delay > RETRY_CAP_MS)
        delay = RETRY_CAP_MS;
    json_object_set_new(s->failures, pool, json_integer(n + 1));
    json_object_set_new(s->waiting, pool, json_integer(ism_kube_now_ms() + delay));
    s->b->reconcile_errors++;
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
    int writes = 0;

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
        if (reconcile_pool(s, pool, &writes) < 0)
            retry_later(s, pool);
        else
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
    const ism_slurm_nodes_t *n = s ? s->b->snodes : NULL;

    *pools = s ? json_object_size(s->by_pool) : 0;
    *no_topology = 0;
    for (int i = 0; n && i < n->count; i++)
        *no_topology += n->nodes[i].topo == NULL;
}

/* ------------------------------------------------------------ lifetime */

struct slices *slices_create(struct bridge *b, ism_error_t *err)
{
    struct slices *s = calloc(1, sizeof(*s));

    if (!s || !(s->dirty = json_object()) || !(s->by_pool = json_object()) ||
        !(s->devices = json_object()) || !(s->shared = json_object()) || !(s->failures = json_object()) || !(s->waiting = json_object()) ||
        !(s->told = json_object())) {
        slices_destroy(s);
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    s->b = b;
    return s;
}

void slices_destroy(struct slices *s)
{
    int saved = errno;

    if (!s)
        return;
    json_decref(s->dirty);
    json_decref(s->by_pool);
    json_decref(s->devices);
    json_decref(s->shared);
    json_decref(s->failures);
    json_decref(s->waiting);
    json_decref(s->told);
    free(s);
    errno = saved;
}
