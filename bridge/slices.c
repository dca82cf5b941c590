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
#define SPEC_KEY SLICES_SPEC_KEY
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
    json_t *devices;  /* Slurm node -> slice parts of its topology (model.h) */
    json_t *shared;   /* ism_devices_key -> its slice parts, shared */
    json_t *known;    /* slice name -> {rv, spec}: what our last write of it
                         made (resourceVersion, spec digest) */
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

/* The pool of a slice seen by its metadata alone: our annotation's, else
 * the Node owning it, else its name's when it is one of ours. */
static json_t *meta_pool(const json_t *meta, const char *annotated)
{
    const char *name = json_string_value(json_object_get(meta, "name"));
    static const char tail[] = "-" ISM_DRIVER "-";
    json_t *ref;
    const char *cut;
    size_t i;

    if (annotated && *annotated)
        return json_string(annotated);
    json_array_foreach(json_object_get(meta, "ownerReferences"), i, ref) {
        const char *kind = json_string_value(json_object_get(ref, "kind"));
        json_t *owner = json_object_get(ref, "name");
        if (kind && strcmp(kind, "Node") == 0 && json_is_true(json_object_get(ref, "controller")) &&
            json_is_string(owner))
            return json_incref(owner);
    }
    if (name && (cut = strstr(name, tail)) && cut > name)
        return json_stringn(name, (size_t)(cut - name));
    return NULL;
}

int slices_annotation_parse(const char *v, json_int_t *meta_gen, json_int_t *pool_gen,
                            char spec[ISM_DIGEST_LEN], const char **pool)
{
    long long m, g;
    int used = 0;

    if (!v || sscanf(v, "%lld/%lld/%64[0-9a-f]/%n", &m, &g, spec, &used) != 3 || used == 0 ||
        strlen(spec) != ISM_DIGEST_LEN - 1 || m < 1 || g < 0) {
        errno = EINVAL;
        return -1;
    }
    *meta_gen = m;
    *pool_gen = g;
    *pool = v + used;
    return 0;
}

/* What a slice's metadata alone tells (PartialObjectMetadata): the pool,
 * its generation and our spec digest from our annotation, trusted while
 * metadata.generation is the one the annotation expects (the API server
 * bumps it on every change of spec).  The spec digest is left out when
 * unknown, and the slice then matches nothing we want. */
static void shrink_meta(json_t *obj, char spec[ISM_DIGEST_LEN], json_t **pool, json_int_t *gen)
{
    json_t *meta = json_object_get(obj, "metadata");
    const char *v = json_string_value(
        json_object_get(json_object_get(meta, "annotations"), SLICES_ANNOTATION));
    json_int_t want_meta = 0, have_meta = json_integer_value(json_object_get(meta, "generation"));
    const char *annotated = NULL;

    spec[0] = '\0';
    *gen = 0;
    if (slices_annotation_parse(v, &want_meta, gen, spec, &annotated) < 0)
        spec[0] = '\0';
    else if (want_meta != have_meta)
        spec[0] = '\0'; /* someone changed the spec since we wrote it */
    *pool = meta_pool(meta, annotated);
}

/* Keep the digest of what we own instead of the devices. */
void slices_shrink(void *arg, json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    json_t *pool = NULL, *keep;
    char dev[ISM_DIGEST_LEN], sp[ISM_DIGEST_LEN] = "", digest[ISM_DIGEST_LEN] = "";
    json_int_t gen = 0;
    (void)arg;

    if (json_is_object(spec)) {
        /* a whole object: hash what is there */
        json_t *p = json_object_get(spec, "pool"), *name = json_object_get(p, "name");
        pool = json_is_string(name) ? json_incref(name) : NULL;
        gen = json_integer_value(json_object_get(p, "generation"));
        if (ism_slice_digest_devices(json_object_get(spec, "devices"), dev) < 0 ||
            ism_slice_spec_digest(spec, dev, sp) < 0)
            sp[0] = '\0';
    } else {
        shrink_meta(obj, sp, &pool, &gen);
    }
    if (sp[0] && ism_slice_meta_digest(obj, sp, digest) < 0)
        digest[0] = sp[0] = '\0';
    keep = json_pack("{s:O?, s:O?, s:O?, s:O?}", "name", json_object_get(meta, "name"), "uid",
                     json_object_get(meta, "uid"), "resourceVersion",
                     json_object_get(meta, "resourceVersion"), "generation",
                     json_object_get(meta, "generation"));
    json_object_clear(obj);
    json_object_set_new(obj, "metadata", keep ? keep : json_object());
    json_object_set_new(obj, "spec", json_pack("{s:{s:o?, s:I}}", "pool", "name", pool, "generation", gen));
    json_object_set_new(obj, DIGEST_KEY, json_string(digest));
    if (sp[0])
        json_object_set_new(obj, SPEC_KEY, json_string(sp));
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
    struct slices *s = arg;

    json_object_del(s->known, key);
    index_del(s, old);
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

/* The slice parts of topo (a new reference).  Nodes of the same hardware
 * share them: the device lists are built, dumped and hashed once, and
 * 10,000 nodes of 128 cores do not hold 10,000 equal copies. */
static json_t *shared_parts(struct slices *s, const ism_topo_t *topo, ism_error_t *err)
{
    char *key = ism_devices_key(topo);
    json_t *parts = key ? json_object_get(s->shared, key) : NULL, *devices = NULL;

    if (!key) {
        ism_err(err, errno, "devices: %s", strerror(errno));
        return NULL;
    }
    if (parts) {
        json_incref(parts);
    } else if ((devices = ism_devices_build(topo, err)) &&
               (parts = ism_slice_parts_build(devices, err))) {
        json_object_set(s->shared, key, parts);
    }
    json_decref(devices);
    free(key);
    return parts;
}

/* Forget slice parts no node uses any more. */
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

/* The slice parts of the Slurm node mapped to pool, or NULL when it gets
 * none (borrowed from the cache). */
static const json_t *wanted_parts(struct slices *s, const char *pool, const char **slurm_name)
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
    if (!(devices = shared_parts(s, n->topo, &err))) {
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

/* One wanted slice of the pool at generation gen: its skeleton (model.h)
 * under want, and {"d": digest, "s": spec digest, "i": index} under
 * digests.  -1 with err. */
static int want_one(const struct slices_input *in, size_t i, json_int_t gen, json_t *want,
                    json_t *digests, ism_error_t *err)
{
    json_t *sk = ism_slice_skeleton(in->pool, in->node_uid, in->slurm_node, in->parts, i, gen, err);
    char spec[ISM_DIGEST_LEN], digest[ISM_DIGEST_LEN];
    const char *name = name_of(sk);

    if (!sk)
        return -1;
    if (ism_slice_spec_digest(json_object_get(sk, "spec"), ism_slice_parts_digest(in->parts, i),
                              spec) < 0 ||
        ism_slice_meta_digest(sk, spec, digest) < 0 || json_object_set(want, name, sk) < 0 ||
        json_object_set_new(digests, name,
                            json_pack("{s:s, s:s, s:I}", "d", digest, "s", spec, "i",
                                      (json_int_t)i)) < 0) {
        json_decref(sk);
        return ism_err(err, ENOMEM, "slices of pool %s: out of memory", in->pool);
    }
    json_decref(sk);
    return 0;
}

/* The pool's slices at generation gen, by name (insertion order is core
 * order), and their digests into digests. */
static json_t *want_at(const struct slices_input *in, json_int_t gen, json_t *digests,
                       ism_error_t *err)
{
    json_t *want = json_object();
    size_t n = ism_slice_parts_count(in->parts);

    json_object_clear(digests);
    if (!want) {
        ism_err(err, ENOMEM, "slices of pool %s: out of memory", in->pool);
        return NULL;
    }
    if (n == 0)
        ism_err(err, EINVAL, "slices of pool %s: no slice parts", in->pool);
    for (size_t i = 0; i < n; i++) {
        if (want_one(in, i, gen, want, digests, err) < 0)
            n = 0;
    }
    if (n == 0) {
        json_decref(want);
        return NULL;
    }
    return want;
}

/* What digests says of slice name: "d" its digest, "s" its spec digest. */
static const char *wanted(const json_t *digests, const char *name, const char *what)
{
    return json_string_value(json_object_get(json_object_get(digests, name), what));
}

/* True when every existing slice of the pool is wanted, as it is. */
static bool pool_matches(const json_t *have, const json_t *digests)
{
    const char *name;
    json_t *v;

    json_object_foreach((json_t *)have, name, v) {
        const char *d = wanted(digests, name, "d");
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

/* What metadata.generation a slice will have once we write spec digest
 * spec over have (NULL: a create): the API server starts it at 1 and bumps
 * it on each change of spec, which we know when have's spec digest is. */
static json_int_t next_meta_generation(const json_t *have, const char *spec)
{
    const char *now = json_string_value(json_object_get(have, SPEC_KEY));
    json_int_t g = json_integer_value(json_object_get(json_object_get(have, "metadata"),
                                                      "generation"));

    if (!have)
        return 1;
    return now && strcmp(now, spec) == 0 ? g : g + 1;
}

/* Add the create (have NULL) or update of wanted slice w: its skeleton
 * annotated with what a metadata-only reader needs, sent as text with the
 * shared device list spliced in.  -1 with ENOMEM. */
static int add_write(const struct slices_input *in, struct writes *writes, json_t *w,
                     const json_t *have, const json_t *d)
{
    const char *spec = json_string_value(json_object_get(d, "s"));
    json_t *sk = json_deep_copy(w), *meta = json_object_get(sk, "metadata");
    char *text = NULL, *note = NULL;
    json_t *pool = json_object_get(json_object_get(sk, "spec"), "pool");

    if (!meta ||
        asprintf(&note, "%lld/%lld/%s/%s", (long long)next_meta_generation(have, spec),
                 (long long)json_integer_value(json_object_get(pool, "generation")), spec,
                 in->pool) < 0) {
        json_decref(sk);
        return -1;
    }
    if (json_object_set_new(meta, "annotations", json_pack("{s:s}", SLICES_ANNOTATION, note)) < 0 ||
        (have && json_object_set(meta, "resourceVersion",
                                 json_object_get(json_object_get(have, "metadata"),
                                                 "resourceVersion")) < 0) ||
        !(text = ism_slice_text(sk, in->parts,
                                (size_t)json_integer_value(json_object_get(d, "i"))))) {
        free(note);
        json_decref(sk);
        return -1;
    }
    free(note);
    if (writes_add_text(writes, have ? WRITE_UPDATE : WRITE_CREATE, &slices_resource, NULL,
                        name_of(sk), sk, text) < 0)
        return -1;
    writes->v[writes->n - 1].metadata = true;
    return 0;
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
    if (in->parts && in->node_uid) {
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
        if (have && strcmp(wanted(digests, name, "d"), digest_of(have)) == 0)
            continue;
        if (add_write(in, &out->writes, w, have, json_object_get(digests, name)) < 0)
            goto nomem;
    }
    json_object_foreach((json_t *)in->have, name, w) {
        const char *uid;
        if (json_object_get(want, name))
            continue;
        uid = json_string_value(json_object_get(json_object_get(w, "metadata"), "uid"));
        if (writes_add(&out->writes, WRITE_DELETE, &slices_resource, NULL, name, uid, NULL) < 0)
            goto nomem;
        out->writes.v[out->writes.n - 1].metadata = true;
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

/* What our write w of a slice made of it (answer NULL: nothing known):
 * the spec digest of its resourceVersion, for have_of. */
static void remember(struct slices *s, const struct write *w, const json_t *answer)
{
    const char *v = json_string_value(json_object_get(
        json_object_get(json_object_get(w->obj, "metadata"), "annotations"), SLICES_ANNOTATION));
    const char *rv = json_string_value(
        json_object_get(json_object_get(answer, "metadata"), "resourceVersion"));
    char spec[ISM_DIGEST_LEN];
    json_int_t m, g;
    const char *pool;

    if (w->op == WRITE_DELETE || !rv || slices_annotation_parse(v, &m, &g, spec, &pool) < 0)
        json_object_del(s->known, w->name);
    else
        json_object_set_new(s->known, w->name, json_pack("{s:s, s:s}", "rv", rv, "spec", spec));
}

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
    remember(s, w, rc == 0 ? answer : NULL);
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

/* The cached slices of pool, by name (a new object of borrowed entries).
 * A slice whose annotation lost track of its spec (its generation is not
 * the one we expected) but whose resourceVersion is our own write's gets
 * our spec digest back, so the rewrite that fixes the annotation knows
 * the generation it will have. */
static json_t *have_of(struct slices *s, const char *pool)
{
    json_t *have = json_object(), *v;
    const char *name;

    json_object_foreach(json_object_get(s->by_pool, pool), name, v) {
        json_t *obj = ism_kube_informer_get(s->cache, name), *mine = json_object_get(s->known, name);
        const char *rv = json_string_value(
            json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        const char *known = json_string_value(json_object_get(mine, "rv"));

        if (!obj || !have)
            continue;
        if (!json_object_get(obj, SPEC_KEY) && rv && known && strcmp(rv, known) == 0) {
            json_t *copy = json_copy(obj);
            if (copy)
                json_object_set(copy, SPEC_KEY, json_object_get(mine, "spec"));
            json_object_set_new(have, name, copy ? copy : json_incref(obj));
        } else {
            json_object_set(have, name, obj);
        }
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
        .parts = node ? wanted_parts(s, pool, &slurm_name) : NULL,
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
        !(s->pool_busy = json_object()) || !(s->parked = json_object()) ||
        !(s->known = json_object())) {
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
    /* The reconciler needs no spec (slices_shrink): the server sends, and
     * isthmusd decodes, about 1 KB a slice instead of 30-50 KB. */
    ism_kube_informer_set_metadata_only(s->cache, true);
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
    json_decref(s->known);
    free(s);
    errno = saved;
}
