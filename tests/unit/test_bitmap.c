/* Unit tests: lib/bitmap.c (bit sets and Linux cpu lists). */
#include <config.h>
#include <errno.h>
#include <string.h>

#include "lib/util/bitmap.h"
#include "unit.h"

/* Lists that parse, and their canonical form. */
static const struct {
    const char *in;
    const char *canonical;
    int count;
} good[] = {
    { "", "", 0 },
    { "\n", "", 0 },
    { "0", "0", 1 },
    { "0-3", "0-3", 4 },
    { "0-3,8,10-11", "0-3,8,10-11", 7 },
    { "0-3,8,10-11\n", "0-3,8,10-11", 7 },
    { "3,2,1,0", "0-3", 4 },
    { "0-1,1-2", "0-2", 3 },
    { "5-5", "5", 1 },
    { "63,64", "63-64", 2 },
    { "0,48", "0,48", 2 },
    { "65535", "65535", 1 },
    { "007", "7", 1 },
};

/* Lists that must be refused, and a word the message must contain. */
static const struct {
    const char *in;
    const char *reason;
} bad[] = {
    { "-1", "expected a number" },
    { "a", "expected a number" },
    { "1-", "expected a number" },
    { "3-1", "reversed" },
    { "1,,2", "expected a number" },
    { "1,", "unexpected" },
    { ",1", "expected a number" },
    { " 1", "expected a number" },
    { "1 ", "unexpected" },
    { "1-2-3", "unexpected" },
    { "65536", "exceeds" },
    { "0-99999999999999999999", "exceeds" },
    { "1\n\n", "unexpected" },
    { "+1", "expected a number" },
    { "0x3", "unexpected" },
};

START_TEST(parse_good)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_bitmap_t *b = ism_bitmap_parse_list(good[_i].in, &err);
    char *s;

    ck_assert_msg(b != NULL, "'%s': %s", good[_i].in, err.text);
    ck_assert_int_eq(ism_bitmap_count(b), good[_i].count);
    s = ism_bitmap_format_list(b);
    ck_assert_str_eq(s, good[_i].canonical);
    free(s);
    ism_bitmap_destroy(b);
}
END_TEST

START_TEST(parse_bad)
{
    ism_error_t err = ISM_ERROR_INIT;

    errno = 0;
    ck_assert_ptr_null(ism_bitmap_parse_list(bad[_i].in, &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, bad[_i].reason) != NULL, "'%s': message '%s' lacks '%s'",
                  bad[_i].in, err.text, bad[_i].reason);
}
END_TEST

START_TEST(null_arguments)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *s;

    ck_assert_ptr_null(ism_bitmap_parse_list(NULL, &err));
    ck_assert_ptr_null(ism_bitmap_parse_list("x", NULL)); /* no error struct: still fails */
    ck_assert_int_eq(ism_bitmap_set(NULL, 1), -1);
    ck_assert_int_eq(ism_bitmap_set_range(NULL, 1, 2), -1);
    ck_assert(!ism_bitmap_test(NULL, 0));
    ck_assert_int_eq(ism_bitmap_count(NULL), 0);
    ck_assert_int_eq(ism_bitmap_first(NULL), -1);
    ck_assert_int_eq(ism_bitmap_last(NULL), -1);
    ck_assert_ptr_null(ism_bitmap_dup(NULL));
    ck_assert_int_eq(ism_bitmap_or(NULL, NULL), -1);
    ism_bitmap_and(NULL, NULL);
    ism_bitmap_andnot(NULL, NULL);
    ism_bitmap_clear(NULL, 3);
    ism_bitmap_zero(NULL);
    ism_bitmap_destroy(NULL);
    ck_assert(ism_bitmap_equal(NULL, NULL));
    s = ism_bitmap_format_list(NULL);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

START_TEST(bounds)
{
    ism_bitmap_t *b = ism_bitmap_create();

    ck_assert_int_eq(ism_bitmap_set(b, -1), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(ism_bitmap_set(b, ISM_BITMAP_MAX_BITS), -1);
    ck_assert_int_eq(ism_bitmap_set_range(b, 5, 4), -1);
    ck_assert_int_eq(ism_bitmap_set(b, ISM_BITMAP_MAX_BITS - 1), 0);
    ck_assert_int_eq(ism_bitmap_last(b), ISM_BITMAP_MAX_BITS - 1);
    ck_assert(!ism_bitmap_test(b, -5));
    ck_assert(!ism_bitmap_test(b, ISM_BITMAP_MAX_BITS * 2));
    ism_bitmap_clear(b, ISM_BITMAP_MAX_BITS * 2); /* beyond: no effect, no crash */
    ism_bitmap_destroy(b);
}
END_TEST

static ism_bitmap_t *list(const char *s)
{
    ism_bitmap_t *b = ism_bitmap_parse_list(s, NULL);
    ck_assert_ptr_nonnull(b);
    return b;
}

START_TEST(set_operations)
{
    ism_bitmap_t *a = list("0-7"), *b = list("4-11,200"), *c;
    char *s;
    int bit, n = 0;

    ck_assert(ism_bitmap_intersects(a, b));
    ck_assert(!ism_bitmap_is_subset(a, b));
    c = ism_bitmap_dup(a);
    ism_bitmap_and(c, b);
    s = ism_bitmap_format_list(c);
    ck_assert_str_eq(s, "4-7");
    free(s);
    ck_assert(ism_bitmap_is_subset(c, a) && ism_bitmap_is_subset(c, b));
    ck_assert_int_eq(ism_bitmap_or(c, b), 0);
    ck_assert(ism_bitmap_equal(c, b));
    ism_bitmap_andnot(c, a);
    s = ism_bitmap_format_list(c);
    ck_assert_str_eq(s, "8-11,200");
    free(s);
    ism_bitmap_foreach(bit, c) n += bit;
    ck_assert_int_eq(n, 8 + 9 + 10 + 11 + 200);
    ism_bitmap_clear(c, 200);
    ck_assert_int_eq(ism_bitmap_last(c), 11);
    /* Equality ignores how much room each set has grown to. */
    ism_bitmap_zero(c);
    ck_assert(ism_bitmap_empty(c));
    {
        ism_bitmap_t *e = ism_bitmap_create();
        ck_assert(ism_bitmap_equal(c, e));
        ck_assert(ism_bitmap_is_subset(e, a));
        ck_assert(!ism_bitmap_intersects(e, a));
        ism_bitmap_destroy(e);
    }
    ism_bitmap_destroy(a);
    ism_bitmap_destroy(b);
    ism_bitmap_destroy(c);
}
END_TEST

/* A long, fragmented list exercises the formatter's buffer growth. */
START_TEST(format_long)
{
    ism_bitmap_t *b = ism_bitmap_create(), *back;
    char *s;

    for (int i = 0; i < 20000; i += 2)
        ck_assert_int_eq(ism_bitmap_set(b, i), 0);
    s = ism_bitmap_format_list(b);
    ck_assert_ptr_nonnull(s);
    back = ism_bitmap_parse_list(s, NULL);
    ck_assert(ism_bitmap_equal(b, back));
    ck_assert_int_eq(ism_bitmap_count(back), 10000);
    free(s);
    ism_bitmap_destroy(b);
    ism_bitmap_destroy(back);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bitmap");
    TCase *tc = tcase_create("bitmap");

    tcase_add_loop_test(tc, parse_good, 0, ARRAY_SIZE(good));
    tcase_add_loop_test(tc, parse_bad, 0, ARRAY_SIZE(bad));
    tcase_add_test(tc, null_arguments);
    tcase_add_test(tc, bounds);
    tcase_add_test(tc, set_operations);
    tcase_add_test(tc, format_long);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
