/* Unit tests: merging the topology into a node's Extra text (lib/node_extra.c).
 * The real Slurm round trip is in tests/slurm/test_publish.c. */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    Suite *s = suite_create("node_extra");
    TCase *tc = tcase_create("extra");

    tcase_add_loop_test(tc, merge_table, 0, ARRAY_SIZE(merges));
    tcase_add_test(tc, merge_bad_arguments);
    tcase_add_loop_test(tc, get_table, 0, ARRAY_SIZE(gets));
    tcase_add_test(tc, too_large);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
