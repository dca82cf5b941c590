/* Unit tests: lib/util/backoff.c (the one backoff) and lib/util/random.c. */
#include <config.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "lib/util/backoff.h"
#include "lib/util/random.h"
#include "unit.h"

/* Ceilings: base * 2^(failures - 1), capped, never overflowing. */
static const struct {
    int64_t base, cap;
    int failures;
    int64_t ceiling;
} ceilings[] = {
    { 100, 5000, 0, 0 },         { 100, 5000, -3, 0 },       { 100, 5000, 1, 100 },
    { 100, 5000, 2, 200 },       { 100, 5000, 6, 3200 },     { 100, 5000, 7, 5000 },
    { 100, 5000, 1000, 5000 },   { 1, 1, 5, 1 },             { 7, 7, 1, 7 },
    { 1, INT64_MAX, 63, INT64_C(1) << 62 },                  { 1, INT64_MAX, 64, INT64_MAX },
    { 3, INT64_MAX, 2147483647, INT64_MAX },                 { 1000, 300000, 9, 256000 },
    { 1000, 300000, 10, 300000 },
    /* invalid policies: no wait rather than a wild one */
    { 0, 100, 1, 0 },            { 100, 50, 1, 0 },          { -5, 100, 3, 0 },
};

START_TEST(ceiling_table)
{
    ism_backoff_t b = { ceilings[_i].base, ceilings[_i].cap };

    ck_assert_int_eq(ism_backoff_ceiling(&b, ceilings[_i].failures), ceilings[_i].ceiling);
}
END_TEST

/* Equal jitter: r = 0 gives the floor, r = span - 1 the ceiling, and r
 * wraps modulo the span. */
START_TEST(equal_jitter)
{
    ism_backoff_t b = { 100, 5000 };

    ck_assert_int_eq(ism_backoff_delay_r(&b, 1, 0), 50);
    ck_assert_int_eq(ism_backoff_delay_r(&b, 1, 50), 100);
    ck_assert_int_eq(ism_backoff_delay_r(&b, 1, 51), 50);
    ck_assert_int_eq(ism_backoff_delay_r(&b, 3, 0), 200);
    ck_assert_int_eq(ism_backoff_delay_r(&b, 3, 200), 400);
    ck_assert_int_eq(ism_backoff_delay_r(&b, 100, UINT64_MAX), 2500 + (int64_t)(UINT64_MAX % 2501));
    ck_assert_int_eq(ism_backoff_delay_r(&b, 0, 12345), 0);
    ck_assert_int_eq(ism_backoff_delay_r(NULL, 3, 12345), 0);
    b.base_ms = b.cap_ms = 1;
    ck_assert_int_eq(ism_backoff_delay_r(&b, 9, 0), 0);
    ck_assert_int_eq(ism_backoff_delay_r(&b, 9, 1), 1);
    b.base_ms = 1;
    b.cap_ms = INT64_MAX;
    ck_assert_int_eq(ism_backoff_delay_r(&b, 64, UINT64_MAX), INT64_MAX / 2 + (int64_t)(UINT64_MAX % ((uint64_t)INT64_MAX - INT64_MAX / 2 + 1)));
}
END_TEST

/* Drawn delays stay within [ceiling/2, ceiling] and reach both halves. */
START_TEST(drawn_within_bounds)
{
    ism_backoff_t b = { 100, 5000 };

    for (int failures = 1; failures <= 10; failures++) {
        int64_t c = ism_backoff_ceiling(&b, failures), lo = c, hi = 0;

        for (int i = 0; i < 2000; i++) {
            int64_t d = ism_backoff_delay(&b, failures);
            ck_assert_int_ge(d, c / 2);
            ck_assert_int_le(d, c);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        ck_assert_int_lt(lo, c / 2 + c / 8);
        ck_assert_int_gt(hi, c - c / 8);
    }
}
END_TEST

START_TEST(check_policy)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_backoff_t good = { 1, 1 }, bad = { 10, 5 };

    ck_assert_int_eq(ism_backoff_check(&good, "x", &err), 0);
    ck_assert_int_eq(ism_backoff_check(&bad, "slurm agent backoff", &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err.text, "slurm agent backoff: needs 1 <= first delay <= cap (ms)");
    ism_error_clear(&err);
    ck_assert_int_eq(ism_backoff_check(NULL, NULL, &err), -1);
    ck_assert_str_eq(err.text, "backoff: needs 1 <= first delay <= cap (ms)");
}
END_TEST

START_TEST(random_below_range)
{
    int seen[7] = { 0 };

    ck_assert_int_eq(ism_random_below(0), 0);
    ck_assert_int_eq(ism_random_below(1), 0);
    ck_assert_int_eq(ism_random_below(-9), 0);
    for (int i = 0; i < 7000; i++) {
        int64_t r = ism_random_below(7);
        ck_assert_int_ge(r, 0);
        ck_assert_int_lt(r, 7);
        seen[r]++;
    }
    /* Uniform: each value about 1000 times; 700 is > 9 standard deviations off. */
    for (int v = 0; v < 7; v++)
        ck_assert_int_gt(seen[v], 700);
    for (int i = 0; i < 1000; i++) {
        int64_t r = ism_random_below(INT64_MAX);
        ck_assert_int_ge(r, 0);
    }
}
END_TEST

static void *draw(void *arg)
{
    uint64_t *out = arg;

    for (int i = 0; i < 4; i++)
        out[i] = ism_random_u64();
    return NULL;
}

/* Each thread has its own seed: two threads do not draw the same numbers
 * (and, under the sanitizers and helgrind-free valgrind, share no state). */
START_TEST(random_threads_differ)
{
    uint64_t a[4], b[4];
    pthread_t ta, tb;

    ck_assert_int_eq(pthread_create(&ta, NULL, draw, a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, draw, b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    ck_assert(a[0] != a[1] || a[1] != a[2]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("backoff");

    tcase_add_loop_test(tc, ceiling_table, 0, ARRAY_SIZE(ceilings));
    tcase_add_test(tc, equal_jitter);
    tcase_add_test(tc, drawn_within_bounds);
    tcase_add_test(tc, check_policy);
    tcase_add_test(tc, random_below_range);
    tcase_add_test(tc, random_threads_differ);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
