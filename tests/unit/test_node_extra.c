/* Unit tests: merging the topology into a node's Extra text, and the
 * reference form (lib/topology/node_extra.c), and the table of a cluster's
 * published topologies (lib/topology/extra_table.c).  The real Slurm round
 * trip is in tests/slurm/test_publish.c. */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/topology/extra_table.h"
#include "lib/topology/node_extra.h"
#include "unit.h"

#define TOPO "{\"version\":1,\"cores\":[]}"

static const struct {
    const char *extra;
    bool force;
    int rc;        /* ism_extra_merge's result */
    int errnum;    /* when rc is -1 */
    const char *merged; /* when rc is 1 */
} merges[] = {
    { NULL, false, 1, 0, "{\"isthmus\":" TOPO "}" },
    { "", false, 1, 0, "{\"isthmus\":" TOPO "}" },
    { " \n", false, 1, 0, "{\"isthmus\":" TOPO "}" },
    { "{}", false, 1, 0, "{\"isthmus\":" TOPO "}" },
    { "{\"rack\": \"r7\", \"pos\": 3}", false, 1, 0, "{\"rack\":\"r7\",\"pos\":3,\"isthmus\":" TOPO "}" },
    { "{\"isthmus\":\"old\",\"z\":[1,{\"a\":null}]}", false, 1, 0,
      "{\"isthmus\":" TOPO ",\"z\":[1,{\"a\":null}]}" },
    { "{\"a\":1,\"isthmus\":{\"cores\":[],\"version\":1}}", false, 0, 0, NULL },
    { "hello world", false, -1, EEXIST, NULL },
    { "hello world", true, 1, 0, "{\"isthmus\":" TOPO "}" },
    { "[1,2]", false, -1, EEXIST, NULL },
    { "42", false, -1, EEXIST, NULL },
    { "{\"a\":1", false, -1, EEXIST, NULL },
    { "{\"a\":1,\"a\":2}", false, -1, EEXIST, NULL },
    { "{\"a\":1,\"a\":2}", true, 1, 0, "{\"isthmus\":" TOPO "}" },
};

START_TEST(merge_table)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *merged = (char *)"sentinel";
    int rc = ism_extra_merge(merges[_i].extra, TOPO, merges[_i].force, &merged, &err);

    ck_assert_int_eq(rc, merges[_i].rc);
    if (rc < 0) {
        ck_assert_int_eq(errno, merges[_i].errnum);
        ck_assert_msg(strstr(err.text, "--force") && strstr(err.text, "extra=''"), "%s", err.text);
    }
    if (rc == 1)
        ck_assert_str_eq(merged, merges[_i].merged);
    else
        ck_assert_ptr_null(merged);
    free(merged);
}
END_TEST

START_TEST(merge_bad_arguments)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *merged;

    ck_assert_int_eq(ism_extra_merge("", TOPO, false, NULL, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(ism_extra_merge("", NULL, false, &merged, &err), -1);
    ck_assert_ptr_null(merged);
    ism_error_clear(&err);
    ck_assert_int_eq(ism_extra_merge("", "[1]", false, &merged, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, "topology"), "%s", err.text);
}
END_TEST

static const struct {
    const char *extra;
    const char *value; /* NULL: fails */
    int errnum;
} gets[] = {
    { "{\"isthmus\":{\"version\":1}}", "{\"version\":1}", 0 },
    { "{\"a\":1, \"isthmus\": [ 1 , 2 ]}", "[1,2]", 0 },
    { NULL, NULL, ENOENT },
    { "", NULL, ENOENT },
    { "{\"a\":1}", NULL, ENOENT },
    { "text", NULL, EINVAL },
    { "[]", NULL, EINVAL },
};

START_TEST(get_table)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *value = ism_extra_get(gets[_i].extra, &err);

    if (gets[_i].value) {
        ck_assert_msg(value, "%s", err.text);
        ck_assert_str_eq(value, gets[_i].value);
    } else {
        ck_assert_ptr_null(value);
        ck_assert_int_eq(errno, gets[_i].errnum);
        ck_assert(err.text[0]);
    }
    free(value);
}
END_TEST

START_TEST(too_large)
{
    size_t n = ISM_EXTRA_MAX_BYTES + 2;
    char *big = malloc(n + 1), *merged;
    ism_error_t err = ISM_ERROR_INIT;

    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    ck_assert_int_eq(ism_extra_merge(big, TOPO, true, &merged, &err), -1);
    ck_assert_int_eq(errno, E2BIG);
    ck_assert_ptr_null(ism_extra_get(big, NULL));
    ck_assert_int_eq(errno, E2BIG);
    free(big);
}
END_TEST

/* ---- references ---- */

static const struct {
    const char *value;
    int rc;
    const char *digest;
} refs[] = {
    { "\"@0123456789ab\"", 1, "0123456789ab" },
    { "\"@ffffffffffff\"", 1, "ffffffffffff" },
    { "{\"version\":1}", 0, NULL },
    { "[1]", 0, NULL },
    { "17", 0, NULL },
    { "\"@0123456789AB\"", -1, NULL },  /* upper case */
    { "\"@0123456789a\"", -1, NULL },   /* short */
    { "\"@0123456789abc\"", -1, NULL }, /* long */
    { "\"@n1/0123456789ab\"", -1, NULL },
    { "\"ref2:0123456789ab\"", -1, NULL }, /* another mark: another version */
    { "\"0123456789ab\"", -1, NULL },
    { "\"@0123456789a\\u0000\"", -1, NULL },
    { "\"old\"", -1, NULL },
    { "", -1, NULL },
    { NULL, -1, NULL },
};

START_TEST(ref_parse_table)
{
    ism_error_t err = ISM_ERROR_INIT;
    char digest[ISM_EXTRA_DIGEST_LEN + 1] = "x";
    int rc = ism_extra_ref_parse(refs[_i].value, digest, &err);

    ck_assert_int_eq(rc, refs[_i].rc);
    if (rc == 1)
        ck_assert_str_eq(digest, refs[_i].digest);
    else if (rc < 0) {
        ck_assert_int_eq(errno, EINVAL);
        ck_assert(err.text[0]);
    }
}
END_TEST

START_TEST(ref_format_round_trip)
{
    ism_error_t err = ISM_ERROR_INIT;
    char digest[ISM_EXTRA_DIGEST_LEN + 1], *text, *merged;

    text = ism_extra_ref_format("00ff00ff00ff", &err);
    ck_assert_str_eq(text, "\"@00ff00ff00ff\"");
    ck_assert_int_eq(ism_extra_ref_parse(text, digest, &err), 1);
    ck_assert_str_eq(digest, "00ff00ff00ff");
    /* A reference merges like a full value, and is short. */
    ck_assert_int_eq(ism_extra_merge("{\"rack\":1}", text, false, &merged, &err), 1);
    ck_assert_str_eq(merged, "{\"rack\":1,\"isthmus\":\"@00ff00ff00ff\"}");
    free(merged);
    ck_assert_int_eq(ism_extra_merge("", text, false, &merged, &err), 1);
    ck_assert_int_eq((int)strlen(merged), 27);
    free(merged);
    free(text);
    ck_assert_ptr_null(ism_extra_ref_format("00ff", &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(ism_extra_ref_format("00FF00FF00FF", &err));
    ck_assert_ptr_null(ism_extra_ref_format(NULL, &err));
    /* A string that is no reference does not merge. */
    ck_assert_int_eq(ism_extra_merge("", "\"hello\"", false, &merged, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(digest_is_stable)
{
    char a[ISM_EXTRA_DIGEST_LEN + 1], b[ISM_EXTRA_DIGEST_LEN + 1];

    ism_extra_digest(TOPO, a);
    ism_extra_digest(TOPO, b);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq((int)strlen(a), ISM_EXTRA_DIGEST_LEN);
    /* FNV-1a 64 of the empty string is cbf29ce484222325; its top 48 bits. */
    ism_extra_digest("", a);
    ck_assert_str_eq(a, "cbf29ce48422");
    ism_extra_digest("{\"version\":1,\"cores\":[ ]}", b);
    ism_extra_digest(TOPO, a);
    ck_assert_str_ne(a, b);
}
END_TEST

/* ---- the table ---- */

/* Two canonical encodings (isthmus-topology json --synthetic 'pack:1 core:2
 * pu:1', and 'pack:2 core:1 pu:2'). */
#define SLURM_HW(c, s, k, t) \
    "{\"cpus\":" #c ",\"boards\":1,\"sockets_per_board\":" #s ",\"cores_per_socket\":" #k \
    ",\"threads_per_core\":" #t ",\"real_memory\":1024}"
static const char topo_a[] =
    "{\"version\":1,\"sockets\":1,\"l3_caches\":0,\"memory\":1073741824,\"offline\":\"\","
    "\"disallowed\":\"\",\"slurm\":" SLURM_HW(2, 1, 2, 1) ",\"slurm_numa\":" SLURM_HW(2, 1, 2, 1)
    ",\"numa\":[[0,1073741824,\"0-1\"]],\"cores\":[[0,0,0,0,-1,\"0\",\"standard\"],"
    "[1,1,0,0,-1,\"1\",\"standard\"]]}";
static const char topo_b[] =
    "{\"version\":1,\"sockets\":2,\"l3_caches\":0,\"memory\":1073741824,\"offline\":\"\","
    "\"disallowed\":\"\",\"slurm\":" SLURM_HW(4, 2, 1, 2) ",\"slurm_numa\":" SLURM_HW(4, 1, 2, 2)
    ",\"numa\":[[0,1073741824,\"0-3\"]],\"cores\":[[0,0,0,0,-1,\"0-1\",\"standard\"],"
    "[1,1,1,0,-1,\"2-3\",\"standard\"]]}";

/* A canonical encoding, checked to be one. */
static char *encoding(const char *json)
{
    ism_topo_t *t = ism_topo_decode(json, NULL);
    char *again = t ? ism_topo_encode(t, NULL) : NULL;

    ck_assert_ptr_nonnull(again);
    ck_assert_str_eq(again, json);
    ism_topo_destroy(t);
    return again;
}

static char *full_extra(const char *json)
{
    char *merged = NULL;
    ck_assert_int_eq(ism_extra_merge("", json, false, &merged, NULL), 1);
    return merged;
}

static char *ref_extra(const char *json)
{
    char digest[ISM_EXTRA_DIGEST_LEN + 1], *ref, *merged = NULL;

    ism_extra_digest(json, digest);
    ref = ism_extra_ref_format(digest, NULL);
    ck_assert_int_eq(ism_extra_merge("", ref, false, &merged, NULL), 1);
    free(ref);
    return merged;
}

static void update(ism_extra_table_t *t, int n, const char *const *names,
                   const char *const *extras, struct ism_topo_share **shares)
{
    ck_assert_int_eq(ism_extra_table_update(t, n, names, extras, shares), 0);
    for (int i = 0; i < n; i++)
        ck_assert_ptr_nonnull(shares[i]);
}

static void put(struct ism_topo_share **shares, int n)
{
    for (int i = 0; i < n; i++)
        ism_topo_share_put(shares[i]);
}

START_TEST(table_resolves_and_shares)
{
    char *a = encoding(topo_a), *b = encoding(topo_b);
    char *fa = full_extra(a), *fb = full_extra(b), *ra = ref_extra(a);
    char *rb = ref_extra(b), *bad = strdup("{\"isthmus\":{\"version\":99}}");
    const char *names[] = { "h1", "n2", "n3", "h2", "n5", "n6", "n7", "n8" };
    const char *extras[] = { fa, ra, ra, fb, fa, "", "{\"rack\":1}", bad };
    struct ism_topo_share *s1[8], *s2[8];
    ism_extra_table_t *t = ism_extra_table_create();
    ism_topo_t *want = ism_topo_decode(a, NULL);

    update(t, 8, names, extras, s1);
    /* References and a second full copy share the holder's topology. */
    ck_assert(s1[0]->topo && ism_topo_equal(s1[0]->topo, want));
    ck_assert_ptr_eq(s1[1]->topo, s1[0]->topo);
    ck_assert_ptr_eq(s1[2]->topo, s1[0]->topo);
    ck_assert_ptr_eq(s1[4]->topo, s1[0]->topo);
    ck_assert(s1[3]->topo && s1[3]->topo != s1[0]->topo);
    /* Nothing published, no key, a bad encoding: no topology; only the
     * last is an error. */
    ck_assert(!s1[5]->topo && !s1[5]->error[0]);
    ck_assert(!s1[6]->topo && !s1[6]->error[0]);
    ck_assert_msg(!s1[7]->topo && strstr(s1[7]->error, "version"), "%s", s1[7]->error);

    /* The holder goes away: a node whose Extra did not change keeps its
     * topology; a reference new to the table finds none. */
    extras[0] = "";
    extras[4] = "";
    extras[5] = rb;     /* names b, which h2 holds */
    extras[6] = ra;     /* new here, and no node holds a any more */
    update(t, 8, names, extras, s2);
    ck_assert(!s2[0]->topo);
    ck_assert_ptr_eq(s2[1]->topo, s1[0]->topo);
    ck_assert_ptr_eq(s2[5]->topo, s1[3]->topo);
    /* ...but the last update's topologies count: n7 resolves too. */
    ck_assert_ptr_eq(s2[6]->topo, s1[0]->topo);
    put(s1, 8);
    put(s2, 8);

    /* A table that never saw a: the reference says what to do. */
    ism_extra_table_destroy(t);
    t = ism_extra_table_create();
    update(t, 8, names, extras, s1);
    ck_assert_msg(!s1[1]->topo && strstr(s1[1]->error, "no node holds") &&
                      strstr(s1[1]->error, "publish"),
                  "%s", s1[1]->error);
    /* Then a holder appears: the unresolved reference is tried again. */
    extras[4] = fa;
    update(t, 8, names, extras, s2);
    ck_assert(s2[1]->topo && ism_topo_equal(s2[1]->topo, want));
    put(s1, 8);
    put(s2, 8);

    ck_assert_int_eq(ism_extra_table_update(t, 1, NULL, extras, s1), -1);
    ck_assert_int_eq(errno, EINVAL);
    ism_extra_table_destroy(t);
    ism_extra_table_destroy(NULL);
    ism_topo_destroy(want);
    free(a);
    free(b);
    free(fa);
    free(fb);
    free(ra);
    free(rb);
    free(bad);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("node_extra");
    TCase *tc = tcase_create("extra");

    tcase_add_loop_test(tc, merge_table, 0, ARRAY_SIZE(merges));
    tcase_add_test(tc, merge_bad_arguments);
    tcase_add_loop_test(tc, get_table, 0, ARRAY_SIZE(gets));
    tcase_add_test(tc, too_large);
    tcase_add_loop_test(tc, ref_parse_table, 0, ARRAY_SIZE(refs));
    tcase_add_test(tc, ref_format_round_trip);
    tcase_add_test(tc, digest_is_stable);
    tcase_add_test(tc, table_resolves_and_shares);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
