/* Unit tests: lib/error.c (the error contract) and lib/log.c. */
#include <config.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/error.h"
#include "lib/util/log.h"
#include "unit.h"

START_TEST(first_message_wins)
{
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_int_eq(ism_err(&err, ENOENT, "root cause %d", 1), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(ism_err(&err, EINVAL, "later"), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err.text, "root cause 1");
    ism_error_clear(&err);
    ck_assert_str_eq(err.text, "");
}
END_TEST

START_TEST(prefix_keeps_errno)
{
    ism_error_t err = ISM_ERROR_INIT;

    ism_errprefix(&err, "nothing to prefix");
    ck_assert_str_eq(err.text, "");
    ism_err(&err, EPROTO, "bad field");
    errno = EPROTO;
    ck_assert_int_eq(ism_errprefix(&err, "%s:%d", "file", 3), -1);
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_str_eq(err.text, "file:3: bad field");
}
END_TEST

START_TEST(null_and_truncation)
{
    ism_error_t err = ISM_ERROR_INIT;
    char big[2000];

    ck_assert_int_eq(ism_err(NULL, EIO, "x"), -1);
    ck_assert_int_eq(errno, EIO);
    ism_errprefix(NULL, "x");
    ism_error_clear(NULL);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ism_err(&err, E2BIG, "%s", big);
    ck_assert_uint_eq(strlen(err.text), sizeof(err.text) - 1);
    ism_errprefix(&err, "context");
    ck_assert(strncmp(err.text, "context: aaa", 12) == 0);
}
END_TEST

static const struct {
    const char *name;
    int ok;
    enum ism_log_level level;
} levels[] = {
    { "error", 1, ISM_LOG_ERR },   { "WARNING", 1, ISM_LOG_WARNING }, { "notice", 1, ISM_LOG_NOTICE },
    { "Info", 1, ISM_LOG_INFO },   { "debug", 1, ISM_LOG_DEBUG },     { "verbose", 0, 0 },
    { "", 0, 0 },                  { "debug2", 0, 0 },
};

START_TEST(level_parse)
{
    ism_error_t err = ISM_ERROR_INIT;
    enum ism_log_level l = ISM_LOG_NOTICE;
    int rc = ism_log_level_parse(levels[_i].name, &l, &err);

    if (levels[_i].ok) {
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(l, levels[_i].level);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_ptr_nonnull(strstr(err.text, "unknown log level"));
    }
}
END_TEST

struct captured {
    int count;
    enum ism_log_level level;
    char line[256];
};

static void capture(enum ism_log_level level, const char *line, void *arg)
{
    struct captured *c = arg;
    c->count++;
    c->level = level;
    snprintf(c->line, sizeof(c->line), "%s", line);
}

START_TEST(threshold_and_sink)
{
    struct captured c = { 0 };

    ism_log_open("test", ISM_LOG_INFO, ISM_LOG_STDERR);
    ism_log_set_sink(capture, &c);
    errno = EAGAIN;
    ism_log_info("kept %d", 42);
    ck_assert_int_eq(errno, EAGAIN); /* logging never changes errno */
    ism_log_debug("dropped");
    ck_assert_int_eq(c.count, 1);
    ck_assert_int_eq(c.level, ISM_LOG_INFO);
    ck_assert_str_eq(c.line, "kept 42");
    ism_log(99, "invalid level dropped");
    ck_assert_int_eq(c.count, 1);
    ism_log_set_level(ISM_LOG_DEBUG);
    ck_assert_int_eq(ism_log_get_level(), ISM_LOG_DEBUG);
    ism_log_debug("now kept");
    ck_assert_int_eq(c.count, 2);
    ck_assert_str_eq(ism_log_level_name(ISM_LOG_WARNING), "warning");
    ck_assert_str_eq(ism_log_level_name(0), "unknown");
    ism_log_set_sink(NULL, NULL);
    ism_log_close();
}
END_TEST

struct racer {
    int lines;
    int kept; /* lines that reached the sink, counted under the log lock */
};

static void count_line(enum ism_log_level level, const char *line, void *arg)
{
    struct racer *r = arg;
    (void)level;
    (void)line;
    r->kept++;
}

static void *log_lines(void *arg)
{
    struct racer *r = arg;

    for (int i = 0; i < r->lines; i++)
        ism_log_info("line %d", i);
    return NULL;
}

/* Regression: the level was read by ism_log and written by
 * ism_log_set_level without the lock or an atomic access, a data race
 * when a daemon changes its level (a config reload) while another thread
 * logs.  Here one thread logs while this one switches the level; the
 * lines kept are counted and the level ends as set.  The race itself is
 * what ThreadSanitizer reports on the old code; valgrind (helgrind) and
 * the ASan tree run this too. */
START_TEST(level_set_while_logging)
{
    struct racer r = { 2000, 0 };
    pthread_t t;

    ism_log_open("test", ISM_LOG_INFO, ISM_LOG_STDERR);
    ism_log_set_sink(count_line, &r);
    ck_assert_int_eq(pthread_create(&t, NULL, log_lines, &r), 0);
    for (int i = 0; i < 2000; i++)
        ism_log_set_level(i % 2 ? ISM_LOG_INFO : ISM_LOG_ERR);
    ck_assert_int_eq(ism_log_get_level(), ISM_LOG_INFO);
    pthread_join(t, NULL);
    ck_assert_int_le(r.kept, r.lines);
    r.kept = 0;
    ism_log_info("after");
    ck_assert_int_eq(r.kept, 1);
    ism_log_set_level(ISM_LOG_ERR);
    ism_log_info("dropped");
    ck_assert_int_eq(r.kept, 1);
    ism_log_set_sink(NULL, NULL);
    ism_log_close();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error_log");
    TCase *tc = tcase_create("error_log");

    tcase_add_test(tc, first_message_wins);
    tcase_add_test(tc, prefix_keeps_errno);
    tcase_add_test(tc, null_and_truncation);
    tcase_add_loop_test(tc, level_parse, 0, ARRAY_SIZE(levels));
    tcase_add_test(tc, threshold_and_sink);
    tcase_add_test(tc, level_set_while_logging);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
