/* Unit tests: lib/conffile.c (strict Key=Value reader) and lib/settings.c. */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util/conffile.h"
#include "lib/util/settings.h"
#include "unit.h"

static const char *const colours[] = { "red", "Green", NULL };

static const struct ism_config_key schema[] = {
    { .name = "Name", .type = ISM_CONFIG_STRING },
    { .name = "Count", .type = ISM_CONFIG_INT, .default_value = "3", .min = 1, .max = 100 },
    { .name = "Enabled", .type = ISM_CONFIG_BOOL, .default_value = "no" },
    { .name = "Colour", .type = ISM_CONFIG_CHOICE, .choices = colours },
    { .name = "Rule", .type = ISM_CONFIG_LIST },
    { .name = NULL },
};

static char dir[] = "/tmp/isthmus-config-XXXXXX";

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    strcpy(dir, "/tmp/isthmus-config-XXXXXX");
}

static char *write_file(const char *name, const char *text, size_t len)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

/* Files that load, and what Name/Count/Enabled/Colour then read. */
static const struct {
    const char *text;
    const char *name;
    long long count;
    int enabled;
    const char *colour;
} good[] = {
    { "", NULL, 3, 0, NULL },
    { "# only a comment\n\n   \n", NULL, 3, 0, NULL },
    { "Name=node1\nCount=7\nEnabled=yes\nColour=red\n", "node1", 7, 1, "red" },
    { "  name = spaced value  # trailing comment\n", "spaced value", 3, 0, NULL },
    { "NAME=\"quoted # not a comment\"\n", "quoted # not a comment", 3, 0, NULL },
    { "Name=a\\#b\n", "a#b", 3, 0, NULL },
    { "colour=GREEN\nenabled=TRUE\n", NULL, 3, 1, "Green" },
    { "Count=100\r\n", NULL, 100, 0, NULL },
    { "Enabled=0", NULL, 3, 0, NULL },
};

/* Files that must be refused: the message names line and problem. */
static const struct {
    const char *text;
    const char *message;
} bad[] = {
    { "Nmae=x\n", ":1: unknown key 'Nmae'" },
    { "\n\nCount=0\n", ":3: Count=0: expected an integer from 1 to 100" },
    { "Count=12abc\n", ":1: Count=12abc: expected an integer" },
    { "Count=99999999999999999999999\n", "expected an integer" },
    { "Enabled=maybe\n", ":1: Enabled=maybe: expected yes or no" },
    { "Colour=blue\n", ":1: Colour=blue: not one of the accepted values" },
    { "Name=a\nName=b\n", ":2: Name is set twice (first at " },
    { "just words\n", ":1: expected Key=Value, got 'just words'" },
    { "=value\n", ":1: '' is not a key name" },
    { "9lives=1\n", ":1: '9lives' is not a key name" },
    { "Name=\n", ":1: Name has an empty value" },
    { "Name=\"\"\n", ":1: Name has an empty value" },
    { "Include\n", ":1: expected Key=Value" },
    { "Include missing.conf\n", "missing.conf: No such file or directory" },
    { "Include self.conf\n", "more than 8 levels" },
};

START_TEST(load_good)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *path = write_file("good.conf", good[_i].text, strlen(good[_i].text));
    ism_config_t *cfg = ism_config_load(path, schema, &err);

    ck_assert_msg(cfg != NULL, "%s", err.text);
    if (good[_i].name)
        ck_assert_str_eq(ism_config_get(cfg, "Name"), good[_i].name);
    else
        ck_assert_ptr_null(ism_config_get(cfg, "Name"));
    ck_assert_int_eq(ism_config_get_int(cfg, "count"), good[_i].count);
    ck_assert_int_eq(ism_config_get_bool(cfg, "Enabled"), good[_i].enabled);
    if (good[_i].colour)
        ck_assert_str_eq(ism_config_get(cfg, "Colour"), good[_i].colour);
    ism_config_destroy(cfg);
}
END_TEST

START_TEST(load_bad)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *path;

    write_file("self.conf", "Include self.conf\n", 18);
    path = write_file("bad.conf", bad[_i].text, strlen(bad[_i].text));
    ck_assert_ptr_null(ism_config_load(path, schema, &err));
    ck_assert_msg(strstr(err.text, bad[_i].message) != NULL, "message '%s' lacks '%s'", err.text,
                  bad[_i].message);
    ck_assert_msg(strstr(err.text, "bad.conf") != NULL, "message '%s' lacks the file", err.text);
}
END_TEST

START_TEST(include_relative)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_config_t *cfg;
    char *path;
    char sub[256];

    snprintf(sub, sizeof(sub), "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    write_file("sub/part.conf", "Count=9\nInclude deeper.conf\n", 28);
    write_file("sub/deeper.conf", "Colour=red\n", 11);
    path = write_file("main.conf", "Name=x\nInclude sub/part.conf\nEnabled=on\n", 40);
    cfg = ism_config_load(path, schema, &err);
    ck_assert_msg(cfg != NULL, "%s", err.text);
    ck_assert_int_eq(ism_config_get_int(cfg, "Count"), 9);
    ck_assert_str_eq(ism_config_get(cfg, "Colour"), "red");
    ck_assert(ism_config_get_bool(cfg, "Enabled"));
    ck_assert_ptr_nonnull(strstr(ism_config_origin(cfg, "Colour"), "sub/deeper.conf:1"));
    ck_assert_str_eq(ism_config_origin(cfg, "Name") + strlen(dir), "/main.conf:1");
    ism_config_destroy(cfg);
}
END_TEST

START_TEST(include_error_names_both_files)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *path;

    write_file("inner.conf", "\nBogus=1\n", 9);
    path = write_file("outer.conf", "Include inner.conf\n", 19);
    ck_assert_ptr_null(ism_config_load(path, schema, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "outer.conf:1: "));
    ck_assert_ptr_nonnull(strstr(err.text, "inner.conf:2: unknown key 'Bogus'"));
}
END_TEST

/* A list key collects its lines in file order, Includes in place, each
 * with its origin; other keys stay single. */
START_TEST(list_key)
{
    ism_error_t err = ISM_ERROR_INIT;
    const char *origin = NULL;
    ism_config_t *cfg;
    char *path;

    write_file("more.conf", "Rule=second x\n", 14);
    path = write_file("list.conf", "Rule=first\nInclude more.conf\nName=n\nrule = third\n", 48);
    cfg = ism_config_load(path, schema, &err);
    ck_assert_msg(cfg != NULL, "%s", err.text);
    ck_assert_int_eq(ism_config_count(cfg, "Rule"), 3);
    ck_assert_str_eq(ism_config_get_list(cfg, "Rule", 0, &origin), "first");
    ck_assert_ptr_nonnull(strstr(origin, "list.conf:1"));
    ck_assert_str_eq(ism_config_get_list(cfg, "rule", 1, &origin), "second x");
    ck_assert_ptr_nonnull(strstr(origin, "more.conf:1"));
    ck_assert_str_eq(ism_config_get_list(cfg, "Rule", 2, NULL), "third");
    ck_assert_ptr_null(ism_config_get_list(cfg, "Rule", 3, NULL));
    ck_assert_ptr_null(ism_config_get_list(cfg, "Rule", -1, NULL));
    ck_assert_str_eq(ism_config_get(cfg, "Rule"), "first");
    ck_assert_int_eq(ism_config_count(cfg, "Name"), 1);
    ck_assert_int_eq(ism_config_count(cfg, "Count"), 0);
    ck_assert_int_eq(ism_config_count(NULL, "Rule"), 0);
    ism_config_destroy(cfg);
    path = write_file("empty.conf", "Rule=a\nRule=\n", 13);
    ck_assert_ptr_null(ism_config_load(path, schema, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "empty.conf:2: Rule has an empty value"));
}
END_TEST

START_TEST(hostile_lines)
{
    ism_error_t err = ISM_ERROR_INIT;
    static char longline[ISM_CONFIG_MAX_LINE + 100];
    char *path;

    path = write_file("nul.conf", "Name=a\0b\n", 9);
    ck_assert_ptr_null(ism_config_load(path, schema, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "nul.conf:1: NUL byte"));
    ism_error_clear(&err);
    memset(longline, 'x', sizeof(longline) - 1);
    memcpy(longline, "Name=", 5);
    path = write_file("long.conf", longline, strlen(longline));
    ck_assert_ptr_null(ism_config_load(path, schema, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "line longer than"));
}
END_TEST

START_TEST(null_and_missing)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_config_t *cfg;

    ck_assert_ptr_null(ism_config_load(NULL, schema, &err));
    ck_assert_int_eq(errno, EINVAL);
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_config_load("/nonexistent/isthmus.conf", schema, &err));
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_str_eq(err.text, "/nonexistent/isthmus.conf: No such file or directory");
    ck_assert_ptr_null(ism_config_load("/tmp", NULL, NULL));
    ck_assert_ptr_null(ism_config_get(NULL, "Name"));
    ck_assert_int_eq(ism_config_get_int(NULL, "Count"), 0);
    ck_assert(!ism_config_get_bool(NULL, "Enabled"));
    ism_config_destroy(NULL);
    cfg = ism_config_defaults(schema, &err);
    ck_assert_int_eq(ism_config_get_int(cfg, "Count"), 3);
    ck_assert_ptr_null(ism_config_get(cfg, "NotInSchema"));
    ck_assert_str_eq(ism_config_origin(cfg, "Count"), "default");
    ism_config_destroy(cfg);
}
END_TEST

/* The example shipped in contrib/ must load against the real schema. */
START_TEST(example_file_loads)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_config_t *cfg = ism_settings_load(SRCDIR "/../../contrib/isthmus.conf.example", &err);

    ck_assert_msg(cfg != NULL, "%s", err.text);
    ck_assert_str_eq(ism_config_get(cfg, "LogLevel"), "info");
    ism_config_destroy(cfg);
    setenv("ISTHMUS_CONF", "/nonexistent/x.conf", 1);
    ck_assert_ptr_null(ism_settings_load(NULL, NULL));
    unsetenv("ISTHMUS_CONF");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, load_good, 0, ARRAY_SIZE(good));
    tcase_add_loop_test(tc, load_bad, 0, ARRAY_SIZE(bad));
    tcase_add_test(tc, include_relative);
    tcase_add_test(tc, include_error_names_both_files);
    tcase_add_test(tc, list_key);
    tcase_add_test(tc, hostile_lines);
    tcase_add_test(tc, null_and_missing);
    tcase_add_test(tc, example_file_loads);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
