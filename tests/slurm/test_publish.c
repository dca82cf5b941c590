/* Slurm integration: publishing topologies into node Extra fields.
 *
 * On every node of the test cluster: publish the node's topology (the JSON
 * tests/world/slurm/start saved from its XML), read it back through the
 * adapter and through `scontrol show node` (the oracle), keep an admin's
 * other keys, refuse text that is not a JSON object unless forced, and send
 * no update when nothing changed.  Nodes of the same machine store a short
 * reference to one holder of the full encoding; every reader resolves it.
 */
#include <config.h>
#include <jansson.h>

#include "lib/topology/node_extra.h"
#include "slurm_test.h"

static char *nodes[64];
static int nnodes;
static ism_slurm_t *slurm;

static void setup(void)
{
    ism_error_t err = ISM_ERROR_INIT;

    nnodes = world_node_names(nodes, 64);
    slurm = ism_slurm_create(NULL, &err);
    ck_assert_msg(slurm, "%s", err.text);
}

static void teardown(void)
{
    for (int i = 0; i < nnodes; i++)
        free(nodes[i]);
    nnodes = 0;
    ism_slurm_destroy(slurm);
    slurm = NULL;
}

static char *node_json(const char *node)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/topology/%s.json", world_dir(), node);
    return slurp(path);
}

/* Publish as isthmus-topology publish does, without --holder. */
static int publish(const char *node, const char *json, bool force, bool *changed,
                   ism_error_t *err)
{
    struct ism_publish p = { .force = force };
    int rc = ism_slurm_publish_topology(slurm, node, json, &p, err);

    if (changed)
        *changed = p.changed;
    return rc;
}

static void set_extra(const char *node, const char *text)
{
    char *out = sh("scontrol update nodename=%s extra='%s' 2>&1", node, text);
    ck_assert_msg(out && !*out, "scontrol update extra: %s", out ? out : "");
    free(out);
}

/* The Extra field as scontrol shows it (the oracle), parsed as JSON. */
static json_t *oracle_extra(const char *node)
{
    char *extra = sh("scontrol show node %s | sed -n 's/^ *Extra=//p'", node);
    json_t *j = json_loads(extra ? extra : "", 0, NULL);

    ck_assert_msg(j, "Extra of %s is not JSON: %s", node, extra ? extra : "");
    free(extra);
    return j;
}

START_TEST(publish_then_fetch)
{
    const char *node = nodes[_i % nnodes];
    ism_error_t err = ISM_ERROR_INIT;
    char *json = node_json(node), *back;
    ism_topo_t *want = ism_topo_decode(json, NULL), *got;
    json_t *extra, *topo_oracle;
    bool changed = false;

    ck_assert_ptr_nonnull(want);
    set_extra(node, "");
    ck_assert_msg(publish(node, json, false, &changed, &err) == 0,
                  "%s", err.text);
    ck_assert(changed);
    back = ism_slurm_fetch_topology(slurm, node, &err);
    ck_assert_msg(back, "%s", err.text);
    got = ism_topo_decode(back, NULL);
    ck_assert_msg(got && ism_topo_equal(want, got), "%s: fetched topology differs", node);
    /* The oracle: scontrol shows the same value under our key. */
    extra = oracle_extra(node);
    topo_oracle = json_loads(json, 0, NULL);
    ck_assert(json_equal(json_object_get(extra, ISM_EXTRA_KEY), topo_oracle));
    ck_assert_int_eq((int)json_object_size(extra), 1);
    /* Publishing the same again sends nothing. */
    ck_assert(publish(node, json, false, &changed, &err) == 0);
    ck_assert(!changed);
    json_decref(topo_oracle);
    json_decref(extra);
    ism_topo_destroy(got);
    ism_topo_destroy(want);
    free(back);
    free(json);
}
END_TEST

START_TEST(keeps_other_keys)
{
    const char *node = nodes[_i % nnodes];
    ism_error_t err = ISM_ERROR_INIT;
    char *json = node_json(node);
    bool changed;
    json_t *extra;

    set_extra(node, "{\"rack\":\"r7\",\"pos\":3,\"owner\":{\"team\":\"hpc\"}}");
    ck_assert_msg(publish(node, json, false, &changed, &err) == 0,
                  "%s", err.text);
    ck_assert(changed);
    extra = oracle_extra(node);
    ck_assert_str_eq(json_string_value(json_object_get(extra, "rack")), "r7");
    ck_assert_int_eq(json_integer_value(json_object_get(extra, "pos")), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(extra, "owner"), "team")),
                     "hpc");
    ck_assert(json_is_object(json_object_get(extra, ISM_EXTRA_KEY)));
    ck_assert_int_eq((int)json_object_size(extra), 4);
    json_decref(extra);
    free(json);
}
END_TEST

/* Extra text that is not a JSON object: refused, left as it was. */
static const char *const foreign[] = { "hello world", "[1,2,3]", "42", "{\"a\":1", "{\"a\":1,\"a\":2}" };

START_TEST(refuses_foreign_extra)
{
    const char *node = nodes[0], *text = foreign[_i];
    ism_error_t err = ISM_ERROR_INIT;
    char *json = node_json(node), *now;
    bool changed = true;

    set_extra(node, text);
    ck_assert_int_eq(publish(node, json, false, &changed, &err), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert(!changed);
    ck_assert_msg(strstr(err.text, node) && strstr(err.text, "--force") &&
                      strstr(err.text, "extra=''"),
                  "message does not say how to proceed: %s", err.text);
    now = sh("scontrol show node %s | sed -n 's/^ *Extra=//p'", node);
    ck_assert_str_eq(now, text);
    free(now);
    /* --force replaces it with an object holding only our key. */
    ck_assert(publish(node, json, true, &changed, &err) == 0);
    ck_assert(changed);
    {
        json_t *extra = oracle_extra(node);
        ck_assert_int_eq((int)json_object_size(extra), 1);
        ck_assert(json_is_object(json_object_get(extra, ISM_EXTRA_KEY)));
        json_decref(extra);
    }
    free(json);
}
END_TEST

START_TEST(fetch_errors)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *json;

    set_extra(nodes[1], "");
    json = ism_slurm_fetch_topology(slurm, nodes[1], &err);
    ck_assert_ptr_null(json);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(strstr(err.text, nodes[1]) && strstr(err.text, "no topology"), "%s", err.text);
    ism_error_clear(&err);
    set_extra(nodes[1], "{\"rack\":\"r1\"}");
    ck_assert_ptr_null(ism_slurm_fetch_topology(slurm, nodes[1], &err));
    ck_assert_int_eq(errno, ENOENT);
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_slurm_fetch_topology(slurm, "no-such-node", &err));
    ck_assert_msg(strstr(err.text, "no-such-node"), "%s", err.text);
    ism_error_clear(&err);
    ck_assert_int_eq(publish(nodes[1], "{\"version\":", false, NULL,
                                                &err),
                     -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* The node poll sees every published topology, and costs nothing more
 * when nothing changed. */
START_TEST(poll_sees_topologies)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_nodes_t *snap = NULL;
    bool changed;

    for (int i = 0; i < nnodes; i++) {
        char *json = node_json(nodes[i]);
        set_extra(nodes[i], "");
        ck_assert(publish(nodes[i], json, false, &changed, &err) == 0);
        free(json);
    }
    ck_assert_int_eq(ism_slurm_nodes_poll(slurm, &snap, &err), 1);
    ck_assert_int_eq(snap->count, nnodes);
    for (int i = 0; i < nnodes; i++) {
        const struct ism_slurm_node *n = ism_slurm_nodes_find(snap, nodes[i]);
        char *json = node_json(nodes[i]);
        ism_topo_t *want = ism_topo_decode(json, NULL);
        ck_assert_ptr_nonnull(n);
        ck_assert_msg(n->topo && ism_topo_equal(n->topo, want), "%s: %s", nodes[i],
                      n->topo_error);
        ism_topo_destroy(want);
        free(json);
    }
    ism_slurm_nodes_destroy(snap);
    /* Unchanged: no snapshot. */
    settle(slurm);
    ck_assert_int_eq(ism_slurm_nodes_poll(slurm, &snap, &err), 0);
    ck_assert_ptr_null(snap);
    /* Republishing equal topologies changes nothing either. */
    for (int i = 0; i < nnodes; i++) {
        char *json = node_json(nodes[i]);
        ck_assert(publish(nodes[i], json, false, &changed, &err) == 0);
        ck_assert(!changed);
        free(json);
    }
    settle(slurm);
    ck_assert_int_eq(ism_slurm_nodes_poll(slurm, &snap, &err), 0);
    /* A bad topology on one node: reported on that node only. */
    set_extra(nodes[2], "{\"isthmus\":{\"version\":99}}");
    ck_assert_int_eq(ism_slurm_nodes_poll(slurm, &snap, &err), 1);
    ck_assert_ptr_null(ism_slurm_nodes_find(snap, nodes[2])->topo);
    ck_assert_msg(strstr(ism_slurm_nodes_find(snap, nodes[2])->topo_error, "version"), "%s",
                  ism_slurm_nodes_find(snap, nodes[2])->topo_error);
    ck_assert_ptr_nonnull(ism_slurm_nodes_find(snap, nodes[0])->topo);
    ism_slurm_nodes_destroy(snap);
    /* Leave a good topology for the tests that follow. */
    {
        char *json = node_json(nodes[2]);
        ck_assert(publish(nodes[2], json, false, &changed, &err) == 0);
        ck_assert(changed);
        free(json);
    }
}
END_TEST

/* The Extra text of node as scontrol shows it (the oracle), raw. */
static char *oracle_text(const char *node)
{
    return sh("scontrol show node %s | sed -n 's/^ *Extra=//p'", node);
}

static char *digest_of(const char *json)
{
    static char d[ISM_EXTRA_DIGEST_LEN + 1];
    ism_extra_digest(json, d);
    return d;
}

/* Publish json on node with options; check what was stored. */
static bool publish_expect(const char *node, const char *json, const char *const *holders,
                           bool full, const char *holder)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_publish p = { .holders = holders, .full = full };
    char want[256], *now;

    ck_assert_msg(ism_slurm_publish_topology(slurm, node, json, &p, &err) == 0, "%s", err.text);
    ck_assert_msg(strcmp(p.holder, holder ? holder : "") == 0, "%s: holder '%s', want '%s'",
                  node, p.holder, holder ? holder : "");
    now = oracle_text(node);
    if (holder) {
        snprintf(want, sizeof(want), "{\"isthmus\":\"@%s\"}", digest_of(json));
        ck_assert_str_eq(now, want);
    } else {
        json_t *extra = oracle_extra(node), *topo = json_loads(json, 0, NULL);
        ck_assert(json_equal(json_object_get(extra, ISM_EXTRA_KEY), topo));
        json_decref(topo);
        json_decref(extra);
    }
    free(now);
    return p.changed;
}

static ism_slurm_nodes_t *poll_now(ism_slurm_t *s)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_nodes_t *snap = NULL;

    ck_assert_msg(ism_slurm_nodes_poll(s, &snap, &err) == 1, "%s", err.text);
    return snap;
}

/* Several nodes of one machine: one holds the encoding, the others name it. */
START_TEST(references)
{
    char *json0 = node_json(nodes[0]), *json2 = node_json(nodes[2]), *back;
    const char *first = nodes[0]; /* the first node of the test partition */
    const char *via1[] = { nodes[1], NULL };
    ism_topo_t *want0 = ism_topo_decode(json0, NULL), *got;
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_nodes_t *snap;
    ism_slurm_t *fresh;

    ck_assert_ptr_nonnull(want0);
    for (int i = 0; i < nnodes; i++)
        set_extra(nodes[i], "");
    publish_expect(nodes[0], json0, NULL, false, NULL);  /* the first holds it */
    publish_expect(nodes[1], json0, NULL, false, first); /* the same machine names it */
    publish_expect(nodes[2], json0, via1, false, first); /* nodes[1] holds only a reference */
    publish_expect(nodes[3], json0, NULL, true, NULL);   /* --full */
    /* fetch follows the reference. */
    back = ism_slurm_fetch_topology(slurm, nodes[1], &err);
    ck_assert_msg(back, "%s", err.text);
    got = ism_topo_decode(back, NULL);
    ck_assert(got && ism_topo_equal(got, want0));
    ism_topo_destroy(got);
    free(back);
    /* The poll resolves it, and nodes of one machine share one topology. */
    snap = poll_now(slurm);
    for (int i = 0; i < 4; i++) {
        const struct ism_slurm_node *n = ism_slurm_nodes_find(snap, nodes[i]);
        ck_assert_msg(n->topo && ism_topo_equal(n->topo, want0), "%s: %s", nodes[i],
                      n->topo_error);
        ck_assert_ptr_eq(n->topo, ism_slurm_nodes_find(snap, nodes[0])->topo);
    }
    ism_slurm_nodes_destroy(snap);
    /* --full on a node that holds a reference: it becomes a holder too, and
     * publishing again without --full turns it back into a reference. */
    publish_expect(nodes[1], json0, NULL, true, NULL);
    publish_expect(nodes[1], json0, NULL, false, first);

    /* The holder's machine changes.  A running reader keeps what it had
     * (the digest is the identity); fetch and a new reader find nothing. */
    publish_expect(nodes[3], json0, NULL, false, first);
    publish_expect(nodes[0], json2, NULL, false, NULL);
    snap = poll_now(slurm);
    ck_assert_msg(ism_slurm_nodes_find(snap, nodes[1])->topo, "%s",
                  ism_slurm_nodes_find(snap, nodes[1])->topo_error);
    ism_slurm_nodes_destroy(snap);
    ck_assert_ptr_null(ism_slurm_fetch_topology(slurm, nodes[1], &err));
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(strstr(err.text, "publish on") && strstr(err.text, nodes[1]), "%s", err.text);
    fresh = ism_slurm_create(NULL, &err);
    snap = poll_now(fresh);
    {
        const struct ism_slurm_node *n = ism_slurm_nodes_find(snap, nodes[1]);
        ck_assert_ptr_null(n->topo);
        ck_assert_msg(strstr(n->topo_error, "no node holds") && strstr(n->topo_error, "publish"),
                      "%s", n->topo_error);
    }
    ism_slurm_nodes_destroy(snap);
    /* Publishing again on a node that names it: it holds it in full now,
     * and the others resolve to it, with no holder named. */
    publish_expect(nodes[1], json0, NULL, false, NULL);
    snap = poll_now(fresh);
    ck_assert_ptr_nonnull(ism_slurm_nodes_find(snap, nodes[3])->topo);
    ck_assert_ptr_eq(ism_slurm_nodes_find(snap, nodes[3])->topo,
                     ism_slurm_nodes_find(snap, nodes[1])->topo);
    ism_slurm_nodes_destroy(snap);
    ism_slurm_destroy(fresh);
    /* A holder found through --holder stays good without it: the node
     * names the digest, and one read of the table finds the holder. */
    set_extra(nodes[2], "");
    ck_assert(publish_expect(nodes[2], json0, via1, false, nodes[1]));
    ck_assert(!publish_expect(nodes[2], json0, NULL, false, nodes[1]));

    /* Bad references: reported on their node only. */
    set_extra(nodes[2], "{\"isthmus\":\"@n1\"}");
    set_extra(nodes[3], "{\"isthmus\":\"@000000000000\"}");
    snap = poll_now(slurm);
    ck_assert_msg(strstr(ism_slurm_nodes_find(snap, nodes[2])->topo_error, "not a topology "
                                                                            "reference"),
                  "%s", ism_slurm_nodes_find(snap, nodes[2])->topo_error);
    ck_assert_msg(strstr(ism_slurm_nodes_find(snap, nodes[3])->topo_error, "000000000000"), "%s",
                  ism_slurm_nodes_find(snap, nodes[3])->topo_error);
    ck_assert_ptr_nonnull(ism_slurm_nodes_find(snap, nodes[1])->topo);
    ism_slurm_nodes_destroy(snap);

    /* Two full copies of a machine no partition starts with: at their next
     * publish the later one (in slurmctld's order) names the earlier. */
    {
        char *json3 = node_json(nodes[3]);
        set_extra(nodes[2], "");
        set_extra(nodes[3], "");
        publish_expect(nodes[2], json3, NULL, true, NULL);
        publish_expect(nodes[3], json3, NULL, true, NULL);
        ck_assert(publish_expect(nodes[3], json3, NULL, false, nodes[2]));
        ck_assert(!publish_expect(nodes[2], json3, NULL, false, NULL));
        free(json3);
    }

    /* Leave every node its own topology, in full, for the tests after. */
    for (int i = 0; i < nnodes; i++) {
        char *own = node_json(nodes[i]);
        set_extra(nodes[i], "");
        publish_expect(nodes[i], own, NULL, true, NULL);
        free(own);
    }
    ism_topo_destroy(want0);
    free(json0);
    free(json2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slurm publish");
    TCase *tc = tcase_create("publish");

    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, publish_then_fetch, 0, 4);
    tcase_add_loop_test(tc, keeps_other_keys, 0, 4);
    tcase_add_loop_test(tc, refuses_foreign_extra, 0, ARRAY_SIZE(foreign));
    tcase_add_test(tc, fetch_errors);
    tcase_add_test(tc, poll_sees_topologies);
    tcase_add_test(tc, references);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
