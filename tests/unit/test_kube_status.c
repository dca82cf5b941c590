/* Unit tests: lib/kube_status.c (what API answers mean; paths and escaping). */
#include <config.h>
#include <errno.h>
#include <string.h>

#include "lib/kube/kube_internal.h"
#include "unit.h"

/* Answers and what they must decode to. */
static const struct {
    long code;
    const char *body;
    ism_kube_reason_t reason;
    int retry_after;
    const char *message; /* a part the message must contain ("" = empty) */
} answers[] = {
    { 200, "{\"kind\":\"ConfigMap\"}", ISM_KUBE_OK, 0, "" },
    { 201, NULL, ISM_KUBE_OK, 0, "" },
    { 404, "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"configmaps \\\"x\\\" not found\","
           "\"reason\":\"NotFound\",\"code\":404}", ISM_KUBE_NOT_FOUND, 0, "not found" },
    /* 409 means two things: the body tells which. */
    { 409, "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\",\"message\":\"exists\"}",
      ISM_KUBE_ALREADY_EXISTS, 0, "exists" },
    { 409, "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"message\":\"modified\"}",
      ISM_KUBE_CONFLICT, 0, "modified" },
    { 409, "not json", ISM_KUBE_CONFLICT, 0, "not json" },
    { 422, "{\"kind\":\"Status\",\"reason\":\"Invalid\",\"message\":\"bad name\"}", ISM_KUBE_INVALID,
      0, "bad name" },
    { 403, "{\"kind\":\"Status\",\"reason\":\"Forbidden\",\"message\":\"no\"}", ISM_KUBE_FORBIDDEN, 0,
      "no" },
    { 401, "", ISM_KUBE_UNAUTHORIZED, 0, "" },
    { 410, "{\"kind\":\"Status\",\"reason\":\"Expired\",\"message\":\"too old\"}", ISM_KUBE_GONE, 0,
      "too old" },
    { 429, "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":3}}",
      ISM_KUBE_TOO_MANY_REQUESTS, 3, "" },
    { 429, "{\"kind\":\"Status\",\"details\":{\"retryAfterSeconds\":999999999}}",
      ISM_KUBE_TOO_MANY_REQUESTS, 0, "" },
    { 504, "{\"kind\":\"Status\",\"reason\":\"Timeout\"}", ISM_KUBE_TIMEOUT, 0, "" },
    { 500, "{\"kind\":\"Status\",\"message\":\"etcd", ISM_KUBE_SERVER_ERROR, 0, "etcd" },
    { 503, "<html>down</html>", ISM_KUBE_SERVER_ERROR, 0, "<html>down</html>" },
    { 418, "{\"kind\":\"Status\",\"reason\":\"Teapot\"}", ISM_KUBE_OTHER, 0, "" },
    /* A message cannot forge log lines: control characters are replaced,
     * the first line only is kept. */
    { 400, "{\"kind\":\"Status\",\"message\":\"a\\u0007b\\nfake: line\"}", ISM_KUBE_BAD_REQUEST, 0,
      "a?b" },
    /* A Status in a 2xx answer is not an error. */
    { 200, "{\"kind\":\"Status\",\"status\":\"Success\",\"reason\":\"NotFound\"}", ISM_KUBE_OK, 0, "" },
};

START_TEST(decode)
{
    ism_kube_status_t st;
    const char *b = answers[_i].body;

    memset(&st, 0x55, sizeof(st));
    ism_kube_status_decode(answers[_i].code, b, b ? strlen(b) : 0, &st);
    ck_assert_int_eq(st.reason, answers[_i].reason);
    ck_assert_int_eq(st.http_code, answers[_i].code);
    ck_assert_int_eq(st.retry_after, answers[_i].retry_after);
    if (answers[_i].message[0])
        ck_assert_ptr_nonnull(strstr(st.message, answers[_i].message));
    else
        ck_assert_msg(answers[_i].reason != ISM_KUBE_OK || st.message[0] == '\0', "'%s'", st.message);
    ck_assert_ptr_null(strchr(st.message, '\n'));
}
END_TEST

START_TEST(reasons)
{
    ck_assert_str_eq(ism_kube_reason_name(ISM_KUBE_CONFLICT), "Conflict");
    ck_assert_str_eq(ism_kube_reason_name((ism_kube_reason_t)999), "Unknown");
    ck_assert_int_eq(ism_kube_reason_errno(ISM_KUBE_NOT_FOUND), ENOENT);
    ck_assert_int_eq(ism_kube_reason_errno(ISM_KUBE_ALREADY_EXISTS), EEXIST);
    ck_assert_int_eq(ism_kube_reason_errno(ISM_KUBE_CONFLICT), EBUSY);
    ck_assert_int_eq(ism_kube_reason_errno(ISM_KUBE_GONE), ESTALE);
    ck_assert_int_eq(ism_kube_reason_errno(ISM_KUBE_NOT_LEADER), EPERM);
}
END_TEST

static const ism_kube_resource_t CM = { "", "v1", "configmaps", true };
static const ism_kube_resource_t RS = { "resource.k8s.io", "v1", "resourceslices", false };

static const struct {
    const ism_kube_resource_t *r;
    const char *ns, *name, *sub;
    const char *path; /* NULL: refused with EINVAL */
} paths[] = {
    { &CM, NULL, NULL, NULL, "/api/v1/configmaps" },
    { &CM, "default", NULL, NULL, "/api/v1/namespaces/default/configmaps" },
    { &CM, "default", "a.b", NULL, "/api/v1/namespaces/default/configmaps/a.b" },
    { &CM, "ns", "pod", "status", "/api/v1/namespaces/ns/configmaps/pod/status" },
    { &RS, NULL, "n1-cpu", NULL, "/apis/resource.k8s.io/v1/resourceslices/n1-cpu" },
    { &RS, "default", NULL, NULL, NULL },  /* cluster-scoped */
    { &CM, "ns", NULL, "status", NULL },   /* a subresource needs a name */
    { &CM, "ns", "a/b", NULL, NULL },
    { &CM, "ns", "..", NULL, NULL },
    { &CM, "ns", "", NULL, NULL },
    { &CM, "n s", "a", NULL, NULL },
    { &CM, "ns", "a?b", NULL, NULL },
    { &CM, "ns", "a%2f", NULL, NULL },
    { NULL, NULL, NULL, NULL, NULL },
};

START_TEST(path)
{
    char *p;

    errno = 0;
    p = ism_kube_path(paths[_i].r, paths[_i].ns, paths[_i].name, paths[_i].sub);
    if (paths[_i].path) {
        ck_assert_ptr_nonnull(p);
        ck_assert_str_eq(p, paths[_i].path);
    } else {
        ck_assert_ptr_null(p);
        ck_assert_int_eq(errno, EINVAL);
    }
    free(p);
}
END_TEST

START_TEST(escape)
{
    char *s = ism_kube_escape("app in (a,b), tier!=x/y~_.-");
    ck_assert_str_eq(s, "app%20in%20%28a%2Cb%29%2C%20tier%21%3Dx%2Fy~_.-");
    free(s);
    errno = 0;
    ck_assert_ptr_null(ism_kube_escape(NULL));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kube_status");
    TCase *tc = tcase_create("kube_status");
    tcase_add_loop_test(tc, decode, 0, ARRAY_SIZE(answers));
    tcase_add_test(tc, reasons);
    tcase_add_loop_test(tc, path, 0, ARRAY_SIZE(paths));
    tcase_add_test(tc, escape);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
