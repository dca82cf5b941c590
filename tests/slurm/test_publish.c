/* Slurm integration: publishing topologies into node Extra fields.
 *
 * On every node of the test cluster: publish the node's topology (the JSON
 * tests/world/slurm/start saved from its XML), read it back through the
 * adapter and through `scontrol show node` (the oracle), keep an admin's
 * other keys, refuse text that is not a JSON object unless forced, and send
 * no update when nothing changed.
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
    ck_assert_msg(ism_slurm_publish_topology(slurm, node, json, false, &changed, &err) == 0,
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
    ck_assert(ism_slurm_publish_topology(slurm, node, json, false, &changed, &err) == 0);
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
    ck_assert_msg(ism_slurm_publish_topology(slurm, node, json, false, &changed, &err) == 0,
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
    ck_assert_int_eq(ism_slurm_publish_topology(slurm, node, json, false, &changed, &err), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert(!changed);
    ck_assert_msg(strstr(err.text, node) && strstr(err.text, "--force") &&
                      strstr(err.text, "extra=''"),
                  "message does not say how to proceed: %s", err.text);
    now = sh("scontrol show node %s | sed -n 's/^ *Extra=//p'", node);
    ck_assert_str_eq(now, text);
    free(now);
    /* --force replaces it with an object holding only our key. */
    ck_assert(ism_slurm_publish_topology(slurm, node, json, true, &changed, &err) == 0);
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
    ck_assert_int_eq(ism_slurm_publish_topology(slurm, nodes[1], "{\"version\":", false, NULL,
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
        ck_assert(ism_slurm_publish_topology(slurm, nodes[i], json, false, &changed, &err) == 0);
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
        ck_assert(ism_slurm_publish_topology(slurm, nodes[i], json, false, &changed, &err) == 0);
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
        ck_assert(ism_slurm_publish_topology(slurm, nodes[2], json, false, &changed, &err) == 0);
        ck_assert(changed);
        free(json);
    }
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
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
