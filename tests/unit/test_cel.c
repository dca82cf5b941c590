/* Unit tests: the CEL subset of device selectors (bridge/cel.c).
 *
 * Each row of the evaluation table is an expression and its result over
 * one core of ours (socket 1, NUMA node 2, ...); the results are those of
 * the reference (tests/cel/ checks the same differentially at random).
 * The refusal table names every kind of refusal with its errno and a word
 * the message must hold.
 */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/cel.h"
#include "unit.h"

#define DRIVER "cpu.isthmus.io"

static const char *const core_json =
    "{\"resource.kubernetes.io/numaNode\": {\"int\": 2},"
    " \"cpu.isthmus.io/socket\": {\"int\": 1},"
    " \"l3cache\": {\"int\": 5},"
    " \"core\": {\"int\": 100},"
    " \"cpus\": {\"string\": \"100,292\"},"
    " \"threads\": {\"int\": 2},"
    " \"coreType\": {\"string\": \"performance\"},"
    " \"smt\": {\"bool\": true},"
    " \"other.example.com/fw\": {\"version\": \"1.2.3-rc.1+b5\"},"
    " \"other.example.com/fw2\": {\"version\": \"1.2.3-rc.1\"},"
    " \"other.example.com/ids\": {\"ints\": [1, 2]}}";

/* R_TRUE, R_FALSE, or the errno of a runtime error. */
enum { R_TRUE = -1, R_FALSE = -2 };

static const struct eval_case {
    const char *expr;
    int want;
} evals[] = {
    { "device.driver == \"cpu.isthmus.io\"", R_TRUE },
    { "device.driver != 'cpu.isthmus.io'", R_FALSE },
    { "device.attributes[\"cpu.isthmus.io\"].socket == 1", R_TRUE },
    { "device.attributes[\"cpu.isthmus.io\"][\"socket\"] == 1", R_TRUE },
    { "device.attributes[\"resource.kubernetes.io\"].numaNode in [0, 2]", R_TRUE },
    { "device.attributes[\"cpu.isthmus.io\"].l3cache >= 5 && "
      "device.attributes[\"cpu.isthmus.io\"].l3cache < 6",
      R_TRUE },
    { "device.attributes[\"cpu.isthmus.io\"].coreType in [\"big\", \"little\"]", R_FALSE },
    { "device.attributes[\"cpu.isthmus.io\"].cpus > \"100\"", R_TRUE },
    { "device.attributes[\"cpu.isthmus.io\"].smt", R_TRUE },
    { "!device.attributes[\"cpu.isthmus.io\"].smt", R_FALSE },
    { "\"socket\" in device.attributes[\"cpu.isthmus.io\"]", R_TRUE },
    { "\"numaNode\" in device.attributes[\"cpu.isthmus.io\"]", R_FALSE },
    { "\"socket\" in device.attributes[\"no.such.domain\"]", R_FALSE },
    /* Missing attributes are errors, which && and || absorb. */
    { "device.attributes[\"cpu.isthmus.io\"].gone == 1", ENOENT },
    { "device.attributes[\"no.such.domain\"].x == 1", ENOENT },
    { "device.attributes[\"cpu.isthmus.io\"].gone == 1 && false", R_FALSE },
    { "false && device.attributes[\"cpu.isthmus.io\"].gone == 1", R_FALSE },
    { "device.attributes[\"cpu.isthmus.io\"].gone == 1 || true", R_TRUE },
    { "device.attributes[\"cpu.isthmus.io\"].gone == 1 || false", ENOENT },
    { "true && device.attributes[\"cpu.isthmus.io\"].gone == 1", ENOENT },
    { "!(device.attributes[\"cpu.isthmus.io\"].gone == 1)", ENOENT },
    { "device.attributes[\"cpu.isthmus.io\"].gone in []", R_FALSE },
    /* Runtime typing: == across types is false, ordering is an error. */
    { "device.attributes[\"cpu.isthmus.io\"].socket == \"1\"", R_FALSE },
    { "device.attributes[\"cpu.isthmus.io\"].socket != \"1\"", R_TRUE },
    { "device.attributes[\"cpu.isthmus.io\"].socket < \"1\"", EINVAL },
    { "device.attributes[\"cpu.isthmus.io\"].socket in [\"1\"]", R_FALSE },
    { "device.attributes[\"cpu.isthmus.io\"].socket && true", EINVAL },
    { "device.attributes[\"cpu.isthmus.io\"].socket && false", R_FALSE },
    { "device.attributes[\"cpu.isthmus.io\"].socket", EINVAL },
    { "!device.attributes[\"cpu.isthmus.io\"].socket", EINVAL },
    { "!!device.attributes[\"cpu.isthmus.io\"].socket == 1", R_TRUE },
    /* Versions: equal without build metadata, == with another type is
     * an error, != is true, a list lookup fails everything. */
    { "device.attributes[\"other.example.com\"].fw == device.attributes[\"other.example.com\"].fw2",
      R_TRUE },
    { "device.attributes[\"other.example.com\"].fw == \"1.2.3-rc.1\"", EINVAL },
    { "\"1.2.3-rc.1\" == device.attributes[\"other.example.com\"].fw", R_FALSE },
    { "device.attributes[\"other.example.com\"].fw != \"1.2.3\"", R_TRUE },
    { "device.attributes[\"other.example.com\"].fw < device.attributes[\"other.example.com\"].fw2",
      EINVAL },
    { "device.attributes[\"other.example.com\"].fw in [\"x\"] || true", EINVAL },
    { "true || device.attributes[\"other.example.com\"].fw in [\"x\"]", R_TRUE },
    /* Lists (alpha list-type attributes). */
    { "device.attributes[\"other.example.com\"].ids == 1", R_FALSE },
    { "device.attributes[\"other.example.com\"].ids == device.attributes[\"other.example.com\"].ids",
      R_TRUE },
    { "device.attributes[\"other.example.com\"].ids in [1, 2]", R_FALSE },
    /* Literals. */
    { "-9223372036854775808 < 9223372036854775807", R_TRUE },
    { "0x1f == 31 && 007 == 7", R_TRUE },
    { "false < true && \"a\" < \"b\" && \"\" < \"a\" && \"ab\" > \"a\"", R_TRUE },
    { "\"a\\\"b\\\\c\\n\\t\\r'\" == 'a\"b\\\\c\\n\\t\\r\\''", R_TRUE },
    { "\"\xc3\xa9\" > \"z\"", R_TRUE },
    { "!!1 == 1", R_TRUE },
    { "1 in [1, 2,] // a comment\n", R_TRUE },
    { "(((true)))", R_TRUE },
    { "true == (1 < 2) && !false", R_TRUE },
};

static json_t *core(void)
{
    json_t *j = json_loads(core_json, 0, NULL);

    ck_assert_ptr_nonnull(j);
    return j;
}

START_TEST(eval_table)
{
    const struct eval_case *c = &evals[_i];
    ism_error_t err = ISM_ERROR_INIT;
    json_t *attrs = core();
    ism_cel_t *sel = ism_cel_compile(c->expr, &err);
    bool match = false;
    int rc;

    ck_assert_msg(sel != NULL, "%s: %s", c->expr, err.text);
    ck_assert_str_eq(ism_cel_expression(sel), c->expr);
    errno = 0;
    rc = ism_cel_eval(sel, DRIVER, attrs, &match, &err);
    if (c->want < 0) {
        ck_assert_msg(rc == 0, "%s: %s", c->expr, err.text);
        ck_assert_msg(match == (c->want == R_TRUE), "%s: %s", c->expr,
                      match ? "true" : "false");
    } else {
        ck_assert_msg(rc == -1, "%s: no error", c->expr);
        ck_assert_msg(errno == c->want, "%s: errno %d, not %d (%s)", c->expr, errno, c->want,
                      err.text);
        ck_assert_msg(strstr(err.text, "CEL selector \"") == err.text, "%s: %s", c->expr,
                      err.text);
    }
    ism_cel_destroy(sel);
    json_decref(attrs);
}
END_TEST

static const struct refusal {
    const char *expr;
    int errnum;
    const char *says;
} refusals[] = {
    /* Syntax errors. */
    { "", EINVAL, "syntax error" },
    { "(true", EINVAL, "syntax error" },
    { "true)", EINVAL, "syntax error" },
    { "1 = 1", EINVAL, "unexpected character" },
    { "true # false", EINVAL, "unexpected character" },
    { "\"open", EINVAL, "unterminated" },
    { "'a\nb'", EINVAL, "unterminated" },
    { "\"\\q\"", EINVAL, "invalid escape" },
    { "[1,,2]", EINVAL, "syntax error" },
    { "9223372036854775808 > 0", EINVAL, "invalid int literal" },
    { "-9223372036854775809 < 0", EINVAL, "invalid int literal" },
    { "device.", EINVAL, "syntax error" },
    /* Type errors CEL reports. */
    { "1 == \"1\"", EINVAL, "(int, string)" },
    { "device.driver < 1", EINVAL, "(string, int)" },
    { "!1", EINVAL, "'!' applied to int" },
    { "1 && true", EINVAL, "'&&' applied to int" },
    { "true || 'a'", EINVAL, "'||' applied to string" },
    { "1 in [1, \"a\"]", EINVAL, "list element of type string" },
    { "\"a\" in [1]", EINVAL, "(string, list(int))" },
    { "1 in device.attributes[\"d\"]", EINVAL, "(int, map)" },
    { "device.driver", EINVAL, "must evaluate to bool, not string" },
    { "1", EINVAL, "not int" },
    { "device.foo == 1", EINVAL, "undefined field 'foo'" },
    /* Outside the subset. */
    { "has(device.attributes[\"d\"].x)", ENOTSUP, "macros (has())" },
    { "size(device.driver) > 1", ENOTSUP, "function calls" },
    { "device.driver.startsWith(\"cpu\")", ENOTSUP, "field selection or method call" },
    { "device.driver(1)", ENOTSUP, "method calls (driver())" },
    { "device.attributes[\"d\"].x + 1 == 2", ENOTSUP, "arithmetic" },
    { "-device.attributes[\"d\"].x == 1", ENOTSUP, "arithmetic negation" },
    { "- 1 == -1", ENOTSUP, "arithmetic negation" },
    { "true ? true : false", ENOTSUP, "conditional operator" },
    { "1.5 > 1", ENOTSUP, "double" },
    { "1e3 > 1", ENOTSUP, "double" },
    { ".5 > 0", ENOTSUP, "double" },
    { "1u == 1u", ENOTSUP, "unsigned" },
    { "r\"raw\" == \"raw\"", ENOTSUP, "raw and bytes" },
    { "b'x' == b'x'", ENOTSUP, "raw and bytes" },
    { "\"\"\"x\"\"\" == \"x\"", ENOTSUP, "triple-quoted" },
    { "\"\\x41\" == \"A\"", ENOTSUP, "escape \\x" },
    { "\"\\u00e9\" == \"x\"", ENOTSUP, "escape \\u" },
    { "\"\xff\" == \"x\"", ENOTSUP, "UTF-8" },
    { "{\"a\": 1}[\"a\"] == 1", ENOTSUP, "map and message literals" },
    { "[1] == [1]", ENOTSUP, "only supported right of 'in'" },
    { "device.attributes[\"d\"]", ENOTSUP, "only supported right of 'in'" },
    { "device.capacity[\"d\"].x > 0", ENOTSUP, "device.capacity" },
    { "device.allowMultipleAllocations", ENOTSUP, "device.allowMultipleAllocations" },
    { "device == device", ENOTSUP, "'device' alone" },
    { "device.attributes.d.x == 1", ENOTSUP, "indexed by a domain" },
    { "device.attributes[device.driver].x == 1", ENOTSUP, "string literal" },
    { "device.attributes[\"d\"].?x == 1", ENOTSUP, "optional field" },
    { "device.attributes[\"d\"][?\"x\"] == 1", ENOTSUP, "optional indexing" },
    { "device.attributes[\"d\"].x.y == 1", ENOTSUP, "field selection" },
    { "device.attributes[\"d\"].if == 1", ENOTSUP, "reserved word 'if'" },
    { "device.attributes[\"d\"].`x` == 1", ENOTSUP, "quoted identifiers" },
    { "device.attributes[\"d\"].x in device.attributes[\"d\"]", ENOTSUP, "string literal" },
    { "1 in [device.attributes[\"d\"].x]", ENOTSUP, "literals" },
    { "1 in [[1]]", ENOTSUP, "literals" },
    { "1 in [?1]", ENOTSUP, "optional list elements" },
    { "1 in device.driver", ENOTSUP, "'in' is only supported" },
    { "[1, 2][0] == 1", ENOTSUP, "indexing" },
    { "(device).driver == \"x\"", ENOTSUP, "'device' alone" },
    { "null == null", ENOTSUP, "the name 'null'" },
    { ".device.driver == \"x\"", ENOTSUP, "leading '.'" },
    { "cel.bind(d, 1, d == 1)", ENOTSUP, "the name 'cel'" },
    { "int == int", ENOTSUP, "the name 'int'" },
    /* Bounds. */
    { "((((((((((((((((((((((((((((((((true))))))))))))))))))))))))))))))))", E2BIG,
      "nested deeper than 32" },
};

START_TEST(refusal_table)
{
    const struct refusal *c = &refusals[_i];
    ism_error_t err = ISM_ERROR_INIT;

    errno = 0;
    ck_assert_ptr_null(ism_cel_compile(c->expr, &err));
    ck_assert_msg(errno == c->errnum, "%s: errno %d, not %d (%s)", c->expr, errno, c->errnum,
                  err.text);
    ck_assert_msg(strstr(err.text, c->says) != NULL, "%s: \"%s\" does not say \"%s\"", c->expr,
                  err.text, c->says);
    ck_assert_msg(strstr(err.text, "column ") != NULL, "%s: no column in \"%s\"", c->expr,
                  err.text);
}
END_TEST

/* A text of `n` bytes: `head`, then `fill` repeated, then `tail`. */
static char *build(const char *head, const char *fill, const char *tail, size_t n)
{
    size_t h = strlen(head), f = strlen(fill), t = strlen(tail), at = h;
    char *s = malloc(n + 1);

    ck_assert_ptr_nonnull(s);
    memcpy(s, head, h);
    while (at + f <= n - t) {
        memcpy(s + at, fill, f);
        at += f;
    }
    memset(s + at, ' ', n - t - at);
    memcpy(s + n - t, tail, t + 1);
    return s;
}

START_TEST(limits)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *s, list[4096];
    ism_cel_t *c;
    bool match;
    size_t at;

    /* The API server's limit, exactly. */
    s = build("", "false || ", "true", ISM_CEL_MAX_LENGTH);
    c = ism_cel_compile(s, &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    ck_assert_int_eq(ism_cel_eval(c, DRIVER, NULL, &match, &err), 0);
    ck_assert(match);
    ism_cel_destroy(c);
    free(s);
    s = build("", "false || ", "true", ISM_CEL_MAX_LENGTH + 1);
    errno = 0;
    ck_assert_ptr_null(ism_cel_compile(s, &err));
    ck_assert_int_eq(errno, E2BIG);
    ck_assert(strstr(err.text, "longer than 10240 bytes"));
    free(s);

    /* Nesting: 31 parentheses are fine, and a long chain of relations is
     * as deep as it is long. */
    ism_error_clear(&err);
    c = ism_cel_compile("(((((((((((((((((((((((((((((((true)))))))))))))))))))))))))))))))", &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    ism_cel_destroy(c);
    s = build("true", " == true", "", 8 * 40 + 4);
    errno = 0;
    ck_assert_ptr_null(ism_cel_compile(s, &err));
    ck_assert_int_eq(errno, E2BIG);
    free(s);

    /* Lists: ISM_CEL_MAX_LIST elements, not one more. */
    for (int n = ISM_CEL_MAX_LIST; n <= ISM_CEL_MAX_LIST + 1; n++) {
        at = (size_t)snprintf(list, sizeof(list), "%d in [", n - 1);
        for (int i = 0; i < n; i++)
            at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%d", i ? "," : "", i);
        snprintf(list + at, sizeof(list) - at, "]");
        ism_error_clear(&err);
        errno = 0;
        c = ism_cel_compile(list, &err);
        if (n == ISM_CEL_MAX_LIST) {
            ck_assert_msg(c != NULL, "%s", err.text);
            ck_assert_int_eq(ism_cel_eval(c, DRIVER, NULL, &match, &err), 0);
            ck_assert(match);
        } else {
            ck_assert_ptr_null(c);
            ck_assert_int_eq(errno, E2BIG);
        }
        ism_cel_destroy(c);
    }
}
END_TEST

/* Unqualified names are the driver's; every attribute is loaded first. */
START_TEST(attributes)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_cel_t *c = ism_cel_compile("device.attributes[\"gpu.example.com\"].socket == 1", &err);
    json_t *attrs = core(), *bad;
    bool match = false;

    ck_assert_ptr_nonnull(c);
    /* Another driver: "l3cache" is now gpu.example.com's, and
     * cpu.isthmus.io/socket is not. */
    ck_assert_int_eq(ism_cel_eval(c, "gpu.example.com", attrs, &match, &err), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert(strstr(err.text, "no such key: socket"));
    ism_cel_destroy(c);
    c = ism_cel_compile("device.attributes[\"gpu.example.com\"].l3cache == 5", NULL);
    ck_assert_int_eq(ism_cel_eval(c, "gpu.example.com", attrs, &match, NULL), 0);
    ck_assert(match);
    ism_cel_destroy(c);

    /* A bad version, or an attribute with no value, fails every
     * expression, as the reference loads all attributes up front. */
    c = ism_cel_compile("true", NULL);
    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < 4; i++) {
        static const char *const bads[] = {
            "{\"x\": {\"version\": \"01.2.3\"}}",
            "{\"x\": {\"version\": \"1.2\"}}",
            "{\"x\": {}}",
            "{\"x\": {\"int\": \"1\"}}",
        };
        bad = json_loads(bads[i], 0, NULL);
        ism_error_clear(&err);
        match = false;
        ck_assert_int_eq(ism_cel_eval(c, DRIVER, bad, &match, &err), -1);
        ck_assert_int_eq(errno, EINVAL);
        ck_assert(strstr(err.text, "attribute x"));
        ck_assert(!match);
        json_decref(bad);
    }
    ism_cel_destroy(c);
    json_decref(attrs);
}
END_TEST

START_TEST(null_args)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_cel_t *c = ism_cel_compile("true", &err);
    json_t *list = json_array();
    bool match = false;

    errno = 0;
    ck_assert_ptr_null(ism_cel_compile(NULL, &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(ism_cel_compile("(", NULL));
    ck_assert_int_eq(ism_cel_eval(NULL, DRIVER, NULL, &match, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(ism_cel_eval(c, NULL, NULL, &match, NULL), -1);
    ck_assert_int_eq(ism_cel_eval(c, DRIVER, NULL, NULL, NULL), -1);
    ck_assert_int_eq(ism_cel_eval(c, DRIVER, list, &match, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert(!match);
    ck_assert_int_eq(ism_cel_eval(c, DRIVER, NULL, &match, NULL), 0);
    ck_assert(match);
    ck_assert_ptr_null(ism_cel_expression(NULL));
    errno = EBADF;
    ism_cel_destroy(NULL);
    ism_cel_destroy(c);
    ck_assert_int_eq(errno, EBADF);
    json_decref(list);
}
END_TEST

/* A message names a long expression by its start, cut on a character. */
START_TEST(messages)
{
    ism_error_t err = ISM_ERROR_INIT;
    const char *e = "device.attributes[\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"].x + 1";

    json_t *j;

    ck_assert_ptr_null(ism_cel_compile(e, &err));
    ck_assert_msg((j = json_string(err.text)) != NULL, "not UTF-8: %s", err.text);
    ck_assert_msg(strstr(err.text, "...\": column 69: arithmetic"), "%s", err.text);
    json_decref(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cel");
    TCase *tc = tcase_create("cel");

    tcase_add_loop_test(tc, eval_table, 0, ARRAY_SIZE(evals));
    tcase_add_loop_test(tc, refusal_table, 0, ARRAY_SIZE(refusals));
    tcase_add_test(tc, limits);
    tcase_add_test(tc, attributes);
    tcase_add_test(tc, null_args);
    tcase_add_test(tc, messages);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
