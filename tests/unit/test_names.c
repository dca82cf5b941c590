/* Unit tests: lib/util/names.c (the one Kubernetes name validator), with
 * the API server's rules as the oracle. */
#include <config.h>
#include <errno.h>
#include <string.h>

#include "lib/util/names.h"
#include "unit.h"

#define L ISM_NAME_DNS_LABEL
#define S ISM_NAME_DNS_SUBDOMAIN
#define V ISM_NAME_LABEL_VALUE
#define Q ISM_NAME_QUALIFIED

#define C63 "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyza"
#define C64 C63 "b"
#define C61 "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy"

static const struct {
    enum ism_name_kind kind;
    const char *s;
    const char *why; /* NULL: valid */
} names[] = {
    /* DNS-1123 label */
    { L, "a", NULL },
    { L, "0", NULL },
    { L, "node-01", NULL },
    { L, C63, NULL },
    { L, C64, "is longer than 63 characters" },
    { L, "", "is empty" },
    { L, NULL, "is missing" },
    { L, "-a", "must start and end with a lowercase letter or digit" },
    { L, "a-", "must start and end with a lowercase letter or digit" },
    { L, "Node", "contains 'N'" },
    { L, "a.b", "contains '.'" },
    { L, "a_b", "contains '_'" },
    { L, "a b", "contains the byte 0x20" },
    { L, "a'b", "contains the byte 0x27" },
    { L, "\xc3\xa9", "contains the byte 0xc3" },
    /* DNS-1123 subdomain */
    { S, "a", NULL },
    { S, "node1.example.com", NULL },
    { S, "a-b.c-d", NULL },
    { S, C64 "." C64, NULL }, /* no per-label limit, as the API server */
    { S, "", "is empty" },
    { S, ".a", "has an empty part between dots" },
    { S, "a.", "has an empty part between dots" },
    { S, "a..b", "has an empty part between dots" },
    { S, "a.-b", "must start and end with a lowercase letter or digit" },
    { S, "a-.b", "must start and end with a lowercase letter or digit" },
    { S, "A.b", "contains 'A'" },
    { S, "a/b", "contains '/'" },
    { S, C63 "." C63 "." C63 "." C63, "is longer than 253 characters" }, /* 255 */
    { S, C63 "." C63 "." C63 "." C61, NULL },                           /* 253 */
    /* label value */
    { V, "", NULL },
    { V, "Node_01.a-B", NULL },
    { V, C63, NULL },
    { V, C64, "is longer than 63 characters" },
    { V, "_a", "must start and end with a letter or digit" },
    { V, "a.", "must start and end with a letter or digit" },
    { V, "a/b", "contains '/'" },
    { V, "a:b", "contains ':'" },
    { V, NULL, "is missing" },
    /* qualified name */
    { Q, "numaNode", NULL },
    { Q, "resource.kubernetes.io/numaNode", NULL },
    { Q, "isthmus.io/core_Type.x", NULL },
    { Q, "", "is empty" },
    { Q, "/a", "has an empty prefix before '/'" },
    { Q, "a/", "has an empty name after '/'" },
    { Q, "a/b/c", "has more than one '/'" },
    { Q, "Example.com/a", "its prefix contains 'E'" },
    { Q, "a..b/c", "its prefix has an empty part between dots" },
    { Q, "a/-b", "must start and end with a letter or digit" },
    { Q, "a/" C64, "is longer than 63 characters" },
};

START_TEST(table)
{
    char buf[64];
    const char *why = ism_name_why(names[_i].kind, names[_i].s, buf, sizeof(buf));
    size_t len = names[_i].s ? strlen(names[_i].s) : 0;

    if (names[_i].why) {
        ck_assert_msg(why != NULL, "'%s' passed", names[_i].s);
        ck_assert_str_eq(why, names[_i].why);
        ck_assert(!ism_name_valid(names[_i].kind, names[_i].s));
        ck_assert(!ism_name_valid_n(names[_i].kind, names[_i].s, len));
    } else {
        ck_assert_msg(why == NULL, "'%s': %s", names[_i].s, why);
        ck_assert(ism_name_valid(names[_i].kind, names[_i].s));
        ck_assert(ism_name_valid_n(names[_i].kind, names[_i].s, len));
    }
}
END_TEST

/* The length form reads only len bytes and rejects an inner NUL. */
START_TEST(length_form)
{
    ck_assert(ism_name_valid_n(L, "default\n", 7));
    ck_assert(!ism_name_valid_n(L, "default\n", 8));
    ck_assert(!ism_name_valid_n(L, "ab\0cd", 5));
    ck_assert(!ism_name_valid_n(V, "ab\0cd", 5));
    ck_assert(!ism_name_valid_n(S, "a.b", 0));
    ck_assert(ism_name_valid_n(V, "a.b", 0));
    ck_assert(!ism_name_valid_n(L, NULL, 3));
}
END_TEST

START_TEST(check_message)
{
    ism_error_t err = ISM_ERROR_INIT;
    char longname[300];

    ck_assert_int_eq(ism_name_check(L, "default", "namespace", &err), 0);
    ck_assert_str_eq(err.text, "");
    ck_assert_int_eq(ism_name_check(L, "Foo", "namespace", &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err.text, "namespace 'Foo' is not a DNS-1123 label: contains 'F'");
    ism_error_clear(&err);
    ck_assert_int_eq(ism_name_check(S, NULL, NULL, &err), -1);
    ck_assert_str_eq(err.text, "name '(null)' is not a DNS-1123 subdomain: is missing");
    ism_error_clear(&err);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(ism_name_check(S, longname, "pool", &err), -1);
    ck_assert_uint_eq(strlen(err.text), strlen("pool '' is not a DNS-1123 subdomain: is longer "
                                               "than 253 characters") + 100);
    ck_assert_str_eq(ism_name_kind_text(V), "label value");
    ck_assert_str_eq(ism_name_kind_text(Q), "qualified name");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("names");

    tcase_add_loop_test(tc, table, 0, ARRAY_SIZE(names));
    tcase_add_test(tc, length_form);
    tcase_add_test(tc, check_message);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
