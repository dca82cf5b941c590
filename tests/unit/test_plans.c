/* Unit tests: the reconcilers' plans (bridge/slices.c, bridge/mirror.c),
 * driven without an API server.  Each row builds what the cache holds from
 * what isthmusd itself would write (model.c), changes it the way the
 * cluster might (a slice deleted or edited, a topology changed, a job
 * gone, a claim edited), plans, and checks every write: its kind, name,
 * generation or precondition.
 */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bridge/mirror.h"
#include "bridge/model.h"
#include "bridge/slices.h"
#include "unit.h"

#define POOL "node-1"
#define UID "8d3c1c1e-2f11-4d0c-9a6e-0c8f2f4f1a01"
#define NS "isthmus-system"

static json_t *devices(int n, const char *tag)
{
    json_t *a = json_array();

    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s+, s:{s:{s:s}}}", "name", "core-", tag ? tag : "",
                                           "attributes", "cpu.isthmus.io/cpus", "string", "0"));
    for (size_t i = 0; i < json_array_size(a); i++) {
        char name[32];
        snprintf(name, sizeof(name), "core-%zu%s", i, tag ? tag : "");
        json_object_set_new(json_array_get(a, i), "name", json_string(name));
    }
    return a;
}

/* The slice parts of n devices (tagged as devices() does). */
static json_t *parts(int n, const char *tag)
{
    ism_error_t err = ISM_ERROR_INIT;
    json_t *dev = devices(n, tag), *p = ism_slice_parts_build(dev, &err);

    ck_assert_msg(p != NULL, "%s", err.text);
    json_decref(dev);
    return p;
}

/* What the cache holds after isthmusd wrote the pool at generation gen
 * with ndev devices: name -> shrunk slice with uid and resourceVersion. */
static json_t *cache_of(int ndev, json_int_t gen, const char *tag)
{
    ism_error_t err = ISM_ERROR_INIT;
    json_t *dev = devices(ndev, tag);
    json_t *list = ism_slices_build(POOL, UID, POOL, dev, gen, &err), *have = json_object(), *s;
    size_t i;

    ck_assert_msg(list != NULL, "%s", err.text);
    json_array_foreach(list, i, s) {
        json_t *meta = json_object_get(s, "metadata");
        const char *name = json_string_value(json_object_get(meta, "name"));
        char uid[300];
        snprintf(uid, sizeof(uid), "uid-%s", name);
        json_object_set_new(meta, "uid", json_string(uid));
        json_object_set_new(meta, "resourceVersion", json_string("41"));
        slices_shrink(NULL, s);
        json_object_set(have, name, s);
    }
    json_decref(list);
    json_decref(dev);
    return have;
}

static char *slice_name(int i)
{
    char *n = ism_slice_name(POOL, i);
    ck_assert_ptr_nonnull(n);
    return n;
}

enum edit { NONE, DROP0, EDIT1, RETAG, EXTRA };

static const struct slices_case {
    const char *what;
    int have_dev;       /* devices of what was written (-1: nothing) */
    json_int_t have_gen;
    enum edit edit;     /* what the cluster did to it */
    int want_dev;       /* devices wanted now (-1: none: no topology) */
    const char *uid;    /* the Node's uid (NULL: the Node is gone) */
    const char *in_flight; /* a slice with a write in flight, by index, or NULL */
    int rc;
    const char *writes; /* "C0 U1 D2": kind and slice index, in order */
    json_int_t gen;     /* the generation of what is written */
    bool rewrite, busy;
} slice_cases[] = {
    { "a quiet pool writes nothing", 200, 3, NONE, 200, UID, NULL, 0, "", 3, false, false },
    { "a new pool is created at generation 1", -1, 0, NONE, 200, UID, NULL, 0, "C0 C1", 1,
      false, false },
    { "a deleted slice is recreated at the same generation, nothing else", 300, 4, DROP0, 300,
      UID, NULL, 0, "C0", 4, false, false },
    { "an edited slice rewrites the whole pool at generation + 1", 200, 2, EDIT1, 200, UID, NULL,
      0, "U0 U1", 3, true, false },
    { "a changed topology rewrites the pool at generation + 1", 200, 5, RETAG, 200, UID, NULL, 0,
      "U0 U1", 6, true, false },
    { "fewer cores: the stale slice is deleted, the rest rewritten", 200, 1, NONE, 100, UID,
      NULL, 0, "U0 D1", 2, true, false },
    { "a stray slice of the pool is deleted", 100, 1, EXTRA, 100, UID, NULL, 0, "U0 D5", 2, true,
      false },
    { "no topology any more: the pool is deleted", 200, 1, NONE, -1, UID, NULL, 0, "D0 D1", 0,
      false, false },
    { "the Node is gone: the pool is deleted", 200, 1, NONE, 200, NULL, NULL, 0, "D0 D1", 0,
      false, false },
    /* The defect: a failure to build the wanted slices deleted the pool. */
    { "building the wanted slices fails: no write at all", 200, 1, NONE, 200, "", NULL, -1, "",
      1, false, false },
    { "a write in flight for a slice of the pool: nothing planned", 200, 1, DROP0, 200, UID, "1",
      0, "", 1, false, true },
    { "a create in flight for a missing slice: nothing planned", 200, 1, DROP0, 200, UID, "0", 0,
      "", 1, false, true },
};

START_TEST(slices_plan_table)
{
    const struct slices_case *c = &slice_cases[_i];
    json_t *have = c->have_dev >= 0 ? cache_of(c->have_dev, c->have_gen, NULL) : json_object();
    json_t *want_dev = c->want_dev >= 0 ? parts(c->want_dev, NULL) : NULL, *in_flight = NULL;
    struct slices_plan p;
    ism_error_t err = ISM_ERROR_INIT;
    char got[256] = "";
    char *n0 = slice_name(0), *n1 = slice_name(1);
    int rc;

    if (c->edit == DROP0) {
        json_object_del(have, n0);
    } else if (c->edit == EDIT1) {
        /* someone changed a label: the digest of slice 1 no longer matches */
        json_object_set_new(json_object_get(have, n1), SLICES_DIGEST_KEY, json_string("edited"));
    } else if (c->edit == RETAG) {
        json_decref(have);
        have = cache_of(c->have_dev, c->have_gen, "x");
    } else if (c->edit == EXTRA) {
        json_t *more = cache_of(700, c->have_gen, NULL);
        char *n5 = slice_name(5);
        json_object_set(have, n5, json_object_get(more, n5));
        free(n5);
        json_decref(more);
    }
    if (c->in_flight) {
        char *n = slice_name(atoi(c->in_flight));
        in_flight = json_pack("{s:s}", n, POOL);
        free(n);
    }
    struct slices_input in = { .pool = POOL, .node_uid = c->uid, .slurm_node = POOL,
                               .parts = want_dev, .have = have, .in_flight = in_flight };
    rc = slices_plan(&in, &p, &err);
    ck_assert_msg(rc == c->rc, "%s: rc %d (%s)", c->what, rc, err.text);
    if (rc < 0)
        ck_assert_msg(strstr(err.text, POOL) != NULL, "%s: error does not name the pool: %s",
                      c->what, err.text);
    for (size_t i = 0; i < p.writes.n; i++) {
        const struct write *w = &p.writes.v[i];
        char *expect_name = NULL;
        int idx = -1;
        for (int j = 0; j < 8 && idx < 0; j++) {
            char *n = slice_name(j);
            if (strcmp(n, w->name) == 0)
                idx = j;
            free(n);
        }
        ck_assert_msg(idx >= 0, "%s: unexpected slice %s", c->what, w->name);
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%c%d", i ? " " : "",
                 w->op == WRITE_CREATE ? 'C' : w->op == WRITE_UPDATE ? 'U'
                 : w->op == WRITE_DELETE ? 'D' : 'S', idx);
        ck_assert_ptr_eq(w->res, &slices_resource);
        ck_assert_ptr_null(w->ns);
        if (w->op == WRITE_DELETE) {
            char uid[300];
            snprintf(uid, sizeof(uid), "uid-%s", w->name);
            ck_assert_msg(w->uid && strcmp(w->uid, uid) == 0, "%s: delete %s without its uid",
                          c->what, w->name);
            ck_assert_ptr_null(w->obj);
            continue;
        }
        ck_assert_int_eq(json_integer_value(json_object_get(
                             json_object_get(json_object_get(w->obj, "spec"), "pool"),
                             "generation")),
                         c->gen);
        /* the body sent is the whole slice: the skeleton and its devices */
        json_t *body = json_loads(w->text, 0, NULL);
        ck_assert_msg(body != NULL, "%s: the body is not JSON", c->what);
        ck_assert_ptr_nonnull(json_object_get(json_object_get(body, "spec"), "devices"));
        ck_assert_int_eq(json_integer_value(json_object_get(
                             json_object_get(json_object_get(body, "spec"), "pool"), "generation")),
                         c->gen);
        ck_assert(w->metadata);
        if (w->op == WRITE_UPDATE)
            ck_assert_str_eq(json_string_value(json_object_get(
                                 json_object_get(body, "metadata"), "resourceVersion")),
                             "41");
        json_decref(body);
        free(expect_name);
    }
    ck_assert_msg(strcmp(got, c->writes) == 0, "%s: wrote \"%s\", not \"%s\"", c->what, got,
                  c->writes);
    if (rc == 0 && !c->busy)
        ck_assert_int_eq(p.generation, c->gen);
    ck_assert_int_eq(p.rewrite, c->rewrite);
    ck_assert_int_eq(p.busy, c->busy);
    slices_plan_clear(&p);
    free(n0);
    free(n1);
    json_decref(in_flight);
    json_decref(want_dev);
    json_decref(have);
}
END_TEST

/* A plan of the plan's own writes, applied to the cache, is quiet. */
START_TEST(slices_plan_converges)
{
    json_t *have = cache_of(200, 7, "x"), *dev = parts(300, NULL);
    struct slices_input in = { .pool = POOL, .node_uid = UID, .slurm_node = POOL,
                               .parts = dev, .have = have };
    struct slices_plan p;
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_int_eq(slices_plan(&in, &p, &err), 0);
    ck_assert_int_eq(p.generation, 8);
    for (size_t i = 0; i < p.writes.n; i++) {
        const struct write *w = &p.writes.v[i];
        json_t *obj = json_loads(w->text, 0, NULL);
        ck_assert(w->op != WRITE_DELETE);
        json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string("42"));
        slices_shrink(NULL, obj);
        json_object_set_new(have, w->name, obj);
    }
    slices_plan_clear(&p);
    ck_assert_int_eq(slices_plan(&in, &p, &err), 0);
    ck_assert_uint_eq(p.writes.n, 0);
    ck_assert_int_eq(p.generation, 8);
    slices_plan_clear(&p);
    json_decref(dev);
    json_decref(have);
}
END_TEST

/* What a metadata-only watch shows of a body we sent (PartialObjectMetadata),
 * at metadata.generation gen, shrunk as the informer keeps it. */
static json_t *meta_seen(const char *text, json_int_t gen, const char *rv)
{
    json_t *body = json_loads(text, 0, NULL), *meta;

    ck_assert_ptr_nonnull(body);
    meta = json_incref(json_object_get(body, "metadata"));
    json_decref(body);
    json_object_set_new(meta, "generation", json_integer(gen));
    json_object_set_new(meta, "resourceVersion", json_string(rv));
    json_object_set_new(meta, "uid", json_string("uid-x"));
    body = json_pack("{s:s, s:s, s:o}", "apiVersion", "meta.k8s.io/v1", "kind",
                     "PartialObjectMetadata", "metadata", meta);
    slices_shrink(NULL, body);
    return body;
}

/* The metadata.generation our annotation on write w predicts. */
static json_int_t predicted(const struct write *w)
{
    const char *v = json_string_value(json_object_get(
        json_object_get(json_object_get(w->obj, "metadata"), "annotations"), SLICES_ANNOTATION));
    json_int_t m = 0, g = 0;
    char spec[ISM_DIGEST_LEN];
    const char *pool = NULL;

    ck_assert_int_eq(slices_annotation_parse(v, &m, &g, spec, &pool), 0);
    ck_assert_str_eq(pool, POOL);
    return m;
}

/* Plan in, apply its writes as a metadata-only watch shows them, with
 * metadata.generation bumped by extra[i] beyond what the API server does. */
static void apply_meta(struct slices_input *in, json_t *have, const int *extra,
                       struct slices_plan *p)
{
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_int_eq(slices_plan(in, p, &err), 0);
    for (size_t i = 0; i < p->writes.n; i++) {
        const struct write *w = &p->writes.v[i];
        ck_assert(w->op != WRITE_DELETE && w->metadata);
        json_object_set_new(have, w->name,
                            meta_seen(w->text, predicted(w) + (extra ? extra[i] : 0), "50"));
    }
}

/* Read by its metadata alone, a pool we wrote is quiet; someone's change
 * of spec (metadata.generation bumped) or of our label rewrites the pool
 * at the next generation, predicting the metadata.generation it gets. */
START_TEST(slices_plan_metadata_only)
{
    json_t *have = json_object(), *dev = parts(200, NULL);
    struct slices_input in = { .pool = POOL, .node_uid = UID, .slurm_node = POOL,
                               .parts = dev, .have = have };
    struct slices_plan p;
    ism_error_t err = ISM_ERROR_INIT;
    const int edited[] = { 0, 1 };

    apply_meta(&in, have, NULL, &p); /* created */
    ck_assert_uint_eq(p.writes.n, 2);
    ck_assert_int_eq(predicted(&p.writes.v[0]), 1);
    slices_plan_clear(&p);
    ck_assert_int_eq(slices_plan(&in, &p, &err), 0);
    ck_assert_uint_eq(p.writes.n, 0); /* quiet */
    slices_plan_clear(&p);

    /* someone edits slice 1's spec: metadata.generation 2 */
    char *n1 = slice_name(1);
    json_t *m1 = json_object_get(json_object_get(have, n1), "metadata");
    json_object_set_new(m1, "generation", json_integer(2));
    json_object_del(json_object_get(have, n1), SLICES_SPEC_KEY);
    json_object_set_new(json_object_get(have, n1), SLICES_DIGEST_KEY, json_string(""));
    ck_assert_int_eq(slices_plan(&in, &p, &err), 0);
    ck_assert_uint_eq(p.writes.n, 2);
    ck_assert(p.rewrite);
    ck_assert_int_eq(p.generation, 2);
    ck_assert_int_eq(predicted(&p.writes.v[0]), 2); /* our spec changes: bumped */
    ck_assert_int_eq(predicted(&p.writes.v[1]), 3); /* unknown spec: bumped */
    slices_plan_clear(&p);

    /* the rewrite lands as predicted: quiet again */
    apply_meta(&in, have, NULL, &p);
    slices_plan_clear(&p);
    ck_assert_int_eq(slices_plan(&in, &p, &err), 0);
    ck_assert_uint_eq(p.writes.n, 0);
    slices_plan_clear(&p);

    /* a generation we did not predict: the slice no longer counts as ours */
    json_decref(have);
    have = json_object();
    in.have = have;
    apply_meta(&in, have, edited, &p);
    slices_plan_clear(&p);
    ck_assert_int_eq(slices_plan(&in, &p, &err), 0);
    ck_assert(p.rewrite);
    slices_plan_clear(&p);
    free(n1);
    json_decref(dev);
    json_decref(have);
}
END_TEST

/* Hostile annotations are not ours; the pool then comes from the owner,
 * or from our own name pattern. */
static const struct {
    const char *value;
    int rc;
} annotations[] = {
    { "1/1/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" "/p", 0 },
    { "3/0/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" "/", 0 },
    { "0/1/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" "/p", -1 },
    { "1/-1/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" "/p", -1 },
    { "1/1/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde" "/p", -1 },
    { "1/1/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF" "/p", -1 },
    { "1/1/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", -1 },
    { "1/1/" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0/p", -1 },
    { "", -1 },
    { "x", -1 },
    { "1/1//p", -1 },
    { NULL, -1 },
};

START_TEST(slices_annotation_table)
{
    json_int_t m, g;
    char spec[ISM_DIGEST_LEN];
    const char *pool = NULL;

    ck_assert_int_eq(slices_annotation_parse(annotations[_i].value, &m, &g, spec, &pool),
                     annotations[_i].rc);
    if (annotations[_i].rc == 0) {
        ck_assert_uint_eq(strlen(spec), ISM_DIGEST_LEN - 1);
        ck_assert_ptr_nonnull(pool);
    }
}
END_TEST

START_TEST(slices_shrink_pool_of_strangers)
{
    json_t *owned = json_pack("{s:{s:s, s:s, s:[{s:s, s:s, s:b}]}}", "metadata", "name", "a",
                              "resourceVersion", "1", "ownerReferences", "kind", "Node", "name",
                              "node-a", "controller", 1);
    json_t *named = json_pack("{s:{s:s, s:s, s:{s:s}}}", "metadata", "name",
                              "node-b-cpu.isthmus.io-3", "resourceVersion", "1", "annotations",
                              SLICES_ANNOTATION, "garbage");
    json_t *stray = json_pack("{s:{s:s, s:s}}", "metadata", "name", "stray", "resourceVersion", "1");
    const char *pool;

    slices_shrink(NULL, owned);
    slices_shrink(NULL, named);
    slices_shrink(NULL, stray);
    pool = json_string_value(json_object_get(json_object_get(json_object_get(owned, "spec"), "pool"),
                                             "name"));
    ck_assert_str_eq(pool, "node-a");
    pool = json_string_value(json_object_get(json_object_get(json_object_get(named, "spec"), "pool"),
                                             "name"));
    ck_assert_str_eq(pool, "node-b");
    ck_assert_ptr_null(json_string_value(json_object_get(
        json_object_get(json_object_get(stray, "spec"), "pool"), "name")));
    ck_assert_str_eq(json_string_value(json_object_get(owned, SLICES_DIGEST_KEY)), "");
    json_decref(owned);
    json_decref(named);
    json_decref(stray);
}
END_TEST

/* ------------------------------------------------------------ the mirror */

enum claim_state {
    ABSENT,     /* not in the cache */
    CREATED,    /* created, no status yet */
    ALLOCATED,  /* as isthmusd leaves it */
    NO_FINAL,   /* someone took our finalizer off */
    EDITED,     /* someone changed the allocation */
    DELETING,   /* being deleted, our finalizer still on */
    DELETING_BARE, /* being deleted, finalizer gone */
};

static const struct mirror_case {
    const char *what;
    const char *admin_comment; /* of job 7 */
    bool job_running;          /* job 7 still holds its cores */
    enum claim_state state;
    bool in_flight;
    const char *writes;        /* "C", "S", "U+", "U-", "D", "" */
} mirror_cases[] = {
    { "a new job: its claim is created without status", NULL, true, ABSENT, false, "C" },
    { "created: the allocation is written", NULL, true, CREATED, false, "S" },
    { "allocated: nothing to write", NULL, true, ALLOCATED, false, "" },
    { "our finalizer taken off: restored", NULL, true, NO_FINAL, false, "U+" },
    { "allocation edited by someone: deleted (then made again)", NULL, true, EDITED, false, "D" },
    { "being deleted while wanted: wait", NULL, true, DELETING, false, "" },
    { "job gone: the claim is deleted", NULL, false, ALLOCATED, false, "D" },
    { "job gone, claim deleting: the finalizer is removed", NULL, false, DELETING, false, "U-" },
    { "job gone, claim deleting without finalizer: nothing", NULL, false, DELETING_BARE, false,
      "" },
    { "a job isthmus submitted is left alone", BRIDGE_JOB_TAG "gang=a", true, ABSENT, false, "" },
    { "a write in flight: nothing planned for the claim", NULL, true, CREATED, true, "" },
    { "a write in flight for an unwanted claim: nothing", NULL, false, ALLOCATED, true, "" },
};

static const char *claim_name(void)
{
    static char name[64];
    char *n = ism_claim_name(7, POOL, 0);
    snprintf(name, sizeof(name), "%s", n);
    free(n);
    return name;
}

START_TEST(mirror_plan_table)
{
    const struct mirror_case *c = &mirror_cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    struct poolmap *pm = poolmap_create(&err);
    json_t *nodes = json_pack("{s:{s:{s:s}}}", POOL, "metadata", "name", POOL);
    ism_bitmap_t *cores = ism_bitmap_create();
    struct ism_slurm_job_node jn = { .name = POOL, .cores = cores };
    struct ism_slurm_job job = { .id = 7, .name = "sim", .nnodes = 1, .node = &jn,
                                 .admin_comment = (char *)c->admin_comment };
    ism_slurm_jobs_t jobs = { .count = c->job_running ? 1 : 0, .jobs = &job };
    json_t *want, *have = json_object(), *in_flight = NULL, *obj = NULL;
    struct writes out = { 0 };
    uint64_t mirrored = 99;
    char key[300], got[64] = "";
    const char *name = claim_name();

    ck_assert_int_eq(poolmap_rebuild(pm, nodes, NULL, NULL, &err), 0);
    ck_assert_int_eq(ism_bitmap_set_range(cores, 0, 3), 0);
    want = mirror_want(&jobs, pm, NS, &mirrored);
    ck_assert_ptr_nonnull(want);
    if (c->job_running && !c->admin_comment) {
        ck_assert_uint_eq(mirrored, 1);
        ck_assert_uint_eq(json_object_size(want), 1);
    } else {
        ck_assert_uint_eq(mirrored, 0);
        ck_assert_uint_eq(json_object_size(want), 0);
    }
    if (c->state != ABSENT) {
        /* What isthmusd wrote for the job, then what happened to it. */
        ism_slurm_jobs_t running = { .count = 1, .jobs = &job };
        json_t *wrote = mirror_want(&running, pm, NS, NULL);
        obj = json_deep_copy(json_object_get(wrote, name));
        json_decref(wrote);
        ck_assert_ptr_nonnull(obj);
        json_object_set_new(json_object_get(obj, "metadata"), "uid", json_string("claim-uid"));
        json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string("9"));
        if (c->state == CREATED)
            json_object_del(obj, "status");
        if (c->state == NO_FINAL || c->state == DELETING_BARE)
            json_object_set_new(json_object_get(obj, "metadata"), "finalizers", json_array());
        if (c->state == EDITED) {
            json_t *alloc = json_object_get(json_object_get(obj, "status"), "allocation");
            json_t *results = json_object_get(json_object_get(alloc, "devices"), "results");
            json_object_set_new(json_array_get(results, 0), "device", json_string("core-99"));
        }
        if (c->state == DELETING || c->state == DELETING_BARE)
            json_object_set_new(json_object_get(obj, "metadata"), "deletionTimestamp",
                                json_string("2026-01-01T00:00:00Z"));
        snprintf(key, sizeof(key), "%s/%s", NS, name);
        json_object_set_new(have, key, obj);
    }
    if (c->in_flight)
        in_flight = json_pack("{s:b}", name, 1);
    struct mirror_input in = { .ns = NS, .want = want, .have = have, .in_flight = in_flight };
    ck_assert_int_eq(mirror_plan(&in, &out), 0);
    for (size_t i = 0; i < out.n; i++) {
        const struct write *w = &out.v[i];
        json_t *fin = json_object_get(json_object_get(w->obj, "metadata"), "finalizers");
        bool has_fin = json_array_size(fin) == 1 &&
                       strcmp(json_string_value(json_array_get(fin, 0)), ISM_FINALIZER) == 0;
        ck_assert_str_eq(w->name, name);
        ck_assert_str_eq(w->ns, NS);
        ck_assert_ptr_eq(w->res, &mirror_resource);
        switch (w->op) {
        case WRITE_CREATE:
            strcat(got, "C");
            ck_assert_ptr_null(json_object_get(w->obj, "status"));
            ck_assert(has_fin);
            break;
        case WRITE_UPDATE_STATUS:
            strcat(got, "S");
            ck_assert(ism_claim_allocation_equal(w->obj, json_object_get(want, name)));
            ck_assert_str_eq(json_string_value(json_object_get(json_object_get(w->obj, "metadata"),
                                                               "resourceVersion")),
                             "9");
            break;
        case WRITE_UPDATE:
            strcat(got, has_fin ? "U+" : "U-");
            ck_assert_str_eq(json_string_value(json_object_get(json_object_get(w->obj, "metadata"),
                                                               "resourceVersion")),
                             "9");
            break;
        case WRITE_DELETE:
            strcat(got, "D");
            ck_assert_str_eq(w->uid, "claim-uid");
            break;
        case WRITE_BIND:
            ck_abort_msg("%s: the mirror binds no pod", c->what);
        }
    }
    ck_assert_msg(strcmp(got, c->writes) == 0, "%s: wrote \"%s\", not \"%s\"", c->what, got,
                  c->writes);
    writes_clear(&out);
    json_decref(in_flight);
    json_decref(have);
    json_decref(want);
    json_decref(nodes);
    ism_bitmap_destroy(cores);
    poolmap_destroy(pm);
}
END_TEST

/* After a create, the allocation goes onto the server's answer. */
START_TEST(mirror_status_after_create)
{
    json_t *answer = json_pack("{s:{s:s, s:s, s:s, s:s}}", "metadata", "name", "slurm-7-n-0",
                               "namespace", NS, "resourceVersion", "77", "uid", "u");
    json_t *wanted = json_pack("{s:{s:{s:{s:[{s:s, s:s, s:s, s:s}]}}}}", "status", "allocation",
                               "devices", "results", "request", "cores", "driver", ISM_DRIVER,
                               "pool", POOL, "device", "core-0");
    struct writes out = { 0 };

    ck_assert_int_eq(mirror_plan_status(NS, answer, wanted, &out), 0);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_int_eq(out.v[0].op, WRITE_UPDATE_STATUS);
    ck_assert_str_eq(out.v[0].name, "slurm-7-n-0");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(out.v[0].obj, "metadata"),
                                                       "resourceVersion")),
                     "77");
    ck_assert(ism_claim_allocation_equal(out.v[0].obj, wanted));
    writes_clear(&out);
    json_decref(answer);
    json_decref(wanted);
}
END_TEST

START_TEST(plans_bad_args)
{
    struct slices_plan p;
    struct writes out = { 0 };
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_int_eq(slices_plan(NULL, &p, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(mirror_plan(NULL, &out), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(writes_add(&out, WRITE_CREATE, &slices_resource, NULL, "x", NULL, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_uint_eq(out.n, 0);
    writes_clear(&out);
    writes_clear(NULL);
    slices_plan_clear(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plans");
    TCase *sl = tcase_create("slices");
    TCase *mi = tcase_create("mirror");

    tcase_add_loop_test(sl, slices_plan_table, 0, ARRAY_SIZE(slice_cases));
    tcase_add_test(sl, slices_plan_converges);
    tcase_add_test(sl, slices_plan_metadata_only);
    tcase_add_loop_test(sl, slices_annotation_table, 0, ARRAY_SIZE(annotations));
    tcase_add_test(sl, slices_shrink_pool_of_strangers);
    tcase_add_test(sl, plans_bad_args);
    tcase_add_loop_test(mi, mirror_plan_table, 0, ARRAY_SIZE(mirror_cases));
    tcase_add_test(mi, mirror_status_after_create);
    suite_add_tcase(s, sl);
    suite_add_tcase(s, mi);
    return run_suite(s);
}
