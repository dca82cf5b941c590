/* Integration tests of the Kubernetes client (lib/kube*.c) against the
 * real kube-apiserver of the test world (tests/world/k8s).  Run by
 * tests/kube/run, which starts the world and sets ISTHMUS_K8S_DIR.
 */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/kube/kube.h"
#include "lib/kube/kube_config.h"
#include "lib/kube/kube_events.h"
#include "lib/kube/kube_watch.h"
#include "tests/kube/world.h"
#include "tests/unit/unit.h"

#define WAIT_MS 60000 /* bound for eventual states; nothing asserts speed */

static const ism_kube_resource_t CONFIGMAPS = { "", "v1", "configmaps", true };
static const ism_kube_resource_t NAMESPACES = { "", "v1", "namespaces", false };
static const ism_kube_resource_t SECRETS = { "", "v1", "secrets", true };
static const ism_kube_resource_t DEVICECLASSES = { "resource.k8s.io", "v1", "deviceclasses", false };
static const ism_kube_resource_t SLICES = { "resource.k8s.io", "v1", "resourceslices", false };

static const char *world;  /* ISTHMUS_K8S_DIR */
static char ns[64];        /* this run's namespace */
static ism_kube_t *admin;

static ism_kube_t *client(const char *user, double qps)
{
    ism_kube_options_t o = ISM_KUBE_OPTIONS_DEFAULT;
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_t *k;

    o.qps = qps;
    o.max_retries = 3;
    ism_kube_config_t *cfg = world_config(user);
    ck_assert_ptr_nonnull(cfg);
    k = ism_kube_create(cfg, &o, &err);
    ck_assert_msg(k != NULL, "%s", err.text);
    return k;
}

static json_t *configmap(const char *name, const char *key, const char *value)
{
    return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
                     "ConfigMap", "metadata", "name", name, "labels", "isthmus.io/test", "kube",
                     "data", key, value);
}

static void setup(void)
{
    ism_error_t err = ISM_ERROR_INIT;
    json_t *obj;

    world = getenv("ISTHMUS_K8S_DIR");
    ck_assert_msg(world != NULL, "ISTHMUS_K8S_DIR is not set: run tests/kube/run");
    admin = client("admin", 0);
    snprintf(ns, sizeof(ns), "kube-test-%d-%ld", (int)getpid(), (long)(ism_kube_now_ms() % 100000));
    obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
                    "name", ns);
    ck_assert_msg(ism_kube_create_object(admin, &NAMESPACES, NULL, obj, NULL, NULL, &err) == 0,
                  "%s", err.text);
    json_decref(obj);
    /* kube-controller-manager adds kube-root-ca.crt to every new
     * namespace, in its own time: wait for it (bounded), so that no test
     * counting objects sees it arrive in the middle. */
    int64_t until = ism_kube_now_ms() + WAIT_MS;
    while (ism_kube_get(admin, &CONFIGMAPS, ns, "kube-root-ca.crt", NULL, NULL, NULL) < 0) {
        ck_assert_msg(ism_kube_now_ms() < until, "no kube-root-ca.crt in %s", ns);
        usleep(100000);
    }
}

static void teardown(void)
{
    ism_kube_delete(admin, &NAMESPACES, NULL, ns, NULL, NULL, NULL, NULL);
    ism_kube_destroy(admin);
    admin = NULL;
}

static const char *rv_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

/* ------------------------------------------------------------------ requests */

START_TEST(configmap_round_trip)
{
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    json_t *cm = configmap("round-trip", "a", "1"), *got = NULL, *out = NULL;

    ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm, &out, &st, &err), 0);
    ck_assert_ptr_nonnull(rv_of(out));
    json_decref(out);

    /* The same name again: AlreadyExists, the server's message kept. */
    ism_error_clear(&err);
    ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm, NULL, &st, &err), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(st.reason, ISM_KUBE_ALREADY_EXISTS);
    ck_assert_int_eq(st.http_code, 409);
    ck_assert_ptr_nonnull(strstr(st.message, "already exists"));
    ck_assert_ptr_nonnull(strstr(err.text, "AlreadyExists"));

    ck_assert_int_eq(ism_kube_get(admin, &CONFIGMAPS, ns, "round-trip", &got, &st, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(got, "data"), "a")), "1");
    json_decref(got);
    json_decref(cm);
}
END_TEST

START_TEST(update_conflict_then_retry)
{
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    json_t *cm = configmap("conflict", "n", "0"), *mine = NULL, *theirs = NULL, *fresh = NULL;

    ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm, &mine, &st, &err), 0);
    theirs = json_deep_copy(mine);
    /* Someone else updates first... */
    json_object_set_new(json_object_get(theirs, "data"), "n", json_string("theirs"));
    ck_assert_int_eq(ism_kube_update(admin, &CONFIGMAPS, ns, theirs, NULL, NULL, &st, &err), 0);
    /* ...so our update, from the older resourceVersion, conflicts. */
    json_object_set_new(json_object_get(mine, "data"), "n", json_string("mine"));
    ck_assert_int_eq(ism_kube_update(admin, &CONFIGMAPS, ns, mine, NULL, NULL, &st, &err), -1);
    ck_assert_int_eq(errno, EBUSY);
    ck_assert_int_eq(st.reason, ISM_KUBE_CONFLICT);
    ck_assert_int_eq(st.attempts, 1); /* a conflict is never retried by the client */
    /* The caller's retry: read again, change again, write again. */
    ck_assert_int_eq(ism_kube_get(admin, &CONFIGMAPS, ns, "conflict", &fresh, &st, &err), 0);
    json_object_set_new(json_object_get(fresh, "data"), "n", json_string("mine"));
    ism_error_clear(&err);
    ck_assert_msg(ism_kube_update(admin, &CONFIGMAPS, ns, fresh, NULL, NULL, &st, &err) == 0,
                  "%s", err.text);
    json_decref(cm);
    json_decref(mine);
    json_decref(theirs);
    json_decref(fresh);
}
END_TEST

START_TEST(patches)
{
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    json_t *cm = configmap("patched", "a", "1"), *out = NULL;
    json_t *merge = json_pack("{s:{s:s}}", "data", "b", "2");
    json_t *jp = json_pack("[{s:s, s:s, s:s}]", "op", "replace", "path", "/data/a", "value", "x");
    json_t *apply = json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind",
                              "ConfigMap", "metadata", "name", "patched", "data", "c", "3");

    ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm, NULL, &st, &err), 0);
    ck_assert_msg(ism_kube_patch(admin, &CONFIGMAPS, ns, "patched", NULL, ISM_KUBE_PATCH_MERGE,
                                 merge, NULL, NULL, &st, &err) == 0, "%s", err.text);
    ck_assert_msg(ism_kube_patch(admin, &CONFIGMAPS, ns, "patched", NULL, ISM_KUBE_PATCH_JSON,
                                 jp, NULL, NULL, &st, &err) == 0, "%s", err.text);
    ck_assert_msg(ism_kube_patch(admin, &CONFIGMAPS, ns, "patched", NULL, ISM_KUBE_PATCH_APPLY,
                                 apply, "isthmus-test", &out, &st, &err) == 0, "%s", err.text);
    json_t *data = json_object_get(out, "data");
    ck_assert_str_eq(json_string_value(json_object_get(data, "a")), "x");
    ck_assert_str_eq(json_string_value(json_object_get(data, "b")), "2");
    ck_assert_str_eq(json_string_value(json_object_get(data, "c")), "3");
    /* Server-side apply records us as a field manager. */
    char *managers = json_dumps(json_object_get(json_object_get(out, "metadata"), "managedFields"),
                                JSON_ENCODE_ANY);
    ck_assert_ptr_nonnull(managers);
    ck_assert_ptr_nonnull(strstr(managers, "isthmus-test"));
    free(managers);
    /* An apply patch without a field manager is refused before sending. */
    ck_assert_int_eq(ism_kube_patch(admin, &CONFIGMAPS, ns, "patched", NULL,
                                    ISM_KUBE_PATCH_APPLY, apply, NULL, NULL, NULL, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    json_decref(out);
    json_decref(cm);
    json_decref(merge);
    json_decref(jp);
    json_decref(apply);
}
END_TEST

START_TEST(delete_with_preconditions)
{
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    json_t *cm = configmap("doomed", "a", "1"), *out = NULL;

    ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm, &out, &st, &err), 0);
    const char *uid = json_string_value(json_object_get(json_object_get(out, "metadata"), "uid"));
    ck_assert_int_eq(ism_kube_delete(admin, &CONFIGMAPS, ns, "doomed",
                                     "00000000-0000-0000-0000-000000000000", NULL, &st, &err), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_CONFLICT);
    ck_assert_int_eq(ism_kube_delete(admin, &CONFIGMAPS, ns, "doomed", NULL, "1", &st, &err), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_CONFLICT);
    ism_error_clear(&err);
    ck_assert_msg(ism_kube_delete(admin, &CONFIGMAPS, ns, "doomed", uid, rv_of(out), &st, &err) == 0,
                  "%s", err.text);
    ck_assert_int_eq(ism_kube_get(admin, &CONFIGMAPS, ns, "doomed", NULL, &st, NULL), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(st.reason, ISM_KUBE_NOT_FOUND);
    ck_assert_int_eq(ism_kube_delete(admin, &CONFIGMAPS, ns, "doomed", NULL, NULL, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_NOT_FOUND);
    json_decref(out);
    json_decref(cm);
}
END_TEST

START_TEST(resource_v1_round_trip)
{
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    char driver[96], cls[96], slice[128], sel[160], cel[160];
    json_t *out = NULL, *items = NULL;

    snprintf(driver, sizeof(driver), "%s.kube.isthmus.test", ns);
    snprintf(cls, sizeof(cls), "%s", driver);
    snprintf(slice, sizeof(slice), "node-a-%s", driver);
    snprintf(cel, sizeof(cel), "device.driver == \"%s\"", driver);
    json_t *dc = json_pack("{s:s, s:s, s:{s:s}, s:{s:[{s:{s:s}}]}}", "apiVersion",
                           "resource.k8s.io/v1", "kind", "DeviceClass", "metadata", "name", cls,
                           "spec", "selectors", "cel", "expression", cel);
    json_t *rs = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:{s:s, s:i, s:i}, s:[{s:s, "
                           "s:{s:{s:i}}}]}}",
                           "apiVersion", "resource.k8s.io/v1", "kind", "ResourceSlice",
                           "metadata", "name", slice, "spec", "driver", driver, "nodeName",
                           "node-a", "pool", "name", "node-a", "generation", 1,
                           "resourceSliceCount", 1, "devices", "name", "core-0", "attributes",
                           "socket", "int", 0);
    ck_assert_ptr_nonnull(dc);
    ck_assert_ptr_nonnull(rs);
    ck_assert_msg(ism_kube_create_object(admin, &DEVICECLASSES, NULL, dc, NULL, &st, &err) == 0,
                  "%s", err.text);
    ck_assert_msg(ism_kube_create_object(admin, &SLICES, NULL, rs, &out, &st, &err) == 0, "%s",
                  err.text);
    /* Add a device and bump the generation, optimistic locking included. */
    json_t *spec = json_object_get(out, "spec");
    json_object_set_new(json_object_get(spec, "pool"), "generation", json_integer(2));
    json_array_append_new(json_object_get(spec, "devices"),
                          json_pack("{s:s, s:{s:{s:i}}}", "name", "core-1", "attributes",
                                    "socket", "int", 1));
    ck_assert_msg(ism_kube_update(admin, &SLICES, NULL, out, NULL, NULL, &st, &err) == 0, "%s",
                  err.text);
    snprintf(sel, sizeof(sel), "spec.driver=%s", driver);
    ck_assert_msg(ism_kube_list(admin, &SLICES, NULL, NULL, sel, 0, &items, NULL, &st, &err) == 0,
                  "%s", err.text);
    ck_assert_int_eq(json_array_size(items), 1);
    json_t *devices = json_object_get(json_object_get(json_array_get(items, 0), "spec"), "devices");
    ck_assert_int_eq(json_array_size(devices), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "kind")),
                     "ResourceSlice");
    ck_assert_int_eq(ism_kube_delete(admin, &SLICES, NULL, slice, NULL, NULL, &st, &err), 0);
    ck_assert_int_eq(ism_kube_delete(admin, &DEVICECLASSES, NULL, cls, NULL, NULL, &st, &err), 0);
    json_decref(items);
    json_decref(out);
    json_decref(dc);
    json_decref(rs);
}
END_TEST

START_TEST(list_pages)
{
    ism_error_t err = ISM_ERROR_INIT;
    json_t *items = NULL;
    char *rv = NULL;

    for (int i = 0; i < 23; i++) {
        char name[32];
        snprintf(name, sizeof(name), "page-%02d", i);
        json_t *cm = configmap(name, "i", name);
        json_object_set_new(json_object_get(json_object_get(cm, "metadata"), "labels"), "paged",
                            json_string("yes"));
        ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm, NULL, NULL, &err), 0);
        json_decref(cm);
    }
    ck_assert_msg(ism_kube_list(admin, &CONFIGMAPS, ns, "paged=yes", NULL, 5, &items, &rv, NULL,
                                &err) == 0, "%s", err.text);
    ck_assert_int_eq(json_array_size(items), 23);
    ck_assert_ptr_nonnull(rv);
    for (size_t i = 0; i < 23; i++) {
        char name[32];
        snprintf(name, sizeof(name), "page-%02zu", i);
        json_t *meta = json_object_get(json_array_get(items, i), "metadata");
        ck_assert_str_eq(json_string_value(json_object_get(meta, "name")), name);
    }
    json_decref(items);
    free(rv);
}
END_TEST

START_TEST(one_http2_connection)
{
    ism_kube_t *k = client("admin", 0);
    ism_kube_informer_t *inf = ism_kube_informer_create(k, &CONFIGMAPS, ns, NULL, NULL, NULL,
                                                        NULL, NULL);
    ism_kube_stats_t ks;

    /* Requests and a watch at the same time, all over one connection. */
    while (!ism_kube_informer_synced(inf))
        ck_assert_int_eq(ism_kube_run(k, NULL, 0, 100, NULL), 0);
    for (int i = 0; i < 20; i++) {
        json_t *cm = configmap("h2", "i", "x");
        if (i == 0)
            ck_assert_int_eq(ism_kube_create_object(k, &CONFIGMAPS, ns, cm, NULL, NULL, NULL), 0);
        ck_assert_int_eq(ism_kube_get(k, &CONFIGMAPS, ns, "h2", NULL, NULL, NULL), 0);
        json_decref(cm);
    }
    ism_kube_stats(k, &ks);
    ck_assert_int_eq(ks.requests, 1 + 1 + 21); /* list, watch, create + 20 gets */
    ck_assert_int_eq(ks.writes, 1);
    ck_assert_int_eq(ks.retries, 0);
    ck_assert_int_eq(ks.connections, 1);
    ck_assert_int_eq(ks.http2, 22); /* the watch is still open */
    ism_kube_informer_destroy(inf);
    ism_kube_destroy(k);
}
END_TEST

/* A service-account token (TokenRequest, via kubectl) into path. */
static void write_token(const char *path, const char *sa)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' --kubeconfig='%s/admin.kubeconfig' -n %s create token %s "
             "--duration=10m >'%s.new' && mv '%s.new' '%s'", getenv("ISTHMUS_KUBECTL"), world,
             ns, sa, path, path, path);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(token_file_is_reread)
{
    ism_kube_config_t cfg = *world_config("admin");
    ism_kube_status_t st;
    char path[256], cmd[512];
    ism_kube_t *k;
    json_t *sa = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ServiceAccount",
                           "metadata", "name", "reader");
    static const ism_kube_resource_t SAS = { "", "v1", "serviceaccounts", true };

    ck_assert_ptr_nonnull(getenv("ISTHMUS_KUBECTL"));
    ck_assert_int_eq(ism_kube_create_object(admin, &SAS, ns, sa, NULL, NULL, NULL), 0);
    snprintf(path, sizeof(path), "/tmp/isthmus-token-%d", (int)getpid());
    /* Bearer token only: no client certificate. */
    cfg.cert_file = cfg.key_file = cfg.cert_data = cfg.key_data = NULL;
    cfg.token_file = path;
    ck_assert_ptr_nonnull(k = ism_kube_create(&cfg, NULL, NULL));
    /* A token the server does not know: Unauthorized, not retried. */
    snprintf(cmd, sizeof(cmd), "echo not-a-token >'%s'", path);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(ism_kube_get(k, &SAS, ns, "reader", NULL, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_UNAUTHORIZED);
    ck_assert_int_eq(st.attempts, 1);
    /* The file is replaced by a real token: the next request uses it.  A
     * service account may not read service accounts: Forbidden proves the
     * server knew who we are. */
    write_token(path, "reader");
    ck_assert_int_eq(ism_kube_get(k, &SAS, ns, "reader", NULL, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_FORBIDDEN);
    ck_assert_ptr_nonnull(strstr(st.message, "system:serviceaccount:"));
    ck_assert_ptr_nonnull(strstr(st.message, ":reader"));
    unlink(path);
    ism_kube_destroy(k);
    json_decref(sa);
}
END_TEST

START_TEST(rate_limit)
{
    ism_kube_options_t o = ISM_KUBE_OPTIONS_DEFAULT;
    ism_kube_t *k;

    o.qps = 5;
    o.burst = 2;
    ck_assert_ptr_nonnull(k = ism_kube_create(world_config("admin"), &o, NULL));
    int64_t t0 = ism_kube_now_ms();
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(ism_kube_get(k, &NAMESPACES, NULL, ns, NULL, NULL, NULL), 0);
    /* A bucket of 2 filled at 5 per second: the last 5 requests each
     * waited for a token, so 7 requests take at least 1 s.  A lower bound
     * the token bucket guarantees, not a speed measurement. */
    ck_assert_int_ge(ism_kube_now_ms() - t0, 1000 - 5);
    ism_kube_destroy(k);
}
END_TEST

static void counted(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                    json_t *answer, const ism_error_t *err)
{
    (void)k, (void)st, (void)answer, (void)err;
    ck_assert_int_eq(rc, 0);
    (*(int *)arg)++;
}

/* The lanes: urgent calls go ahead of normal ones queued before them and
 * may borrow up to a burst; Events have a bucket of their own.  At 0.1 QPS
 * with a burst of 2, three urgent GETs (tokens 2 -> -1) and two Event-lane
 * GETs all run at once, while the two normal GETs queued first wait for
 * the debt to be paid (20 s): they have not run when the others are done.
 * Without lanes the normal calls would take both tokens first. */
START_TEST(rate_limit_lanes)
{
    ism_kube_options_t o = ISM_KUBE_OPTIONS_DEFAULT;
    ism_error_t err = ISM_ERROR_INIT;
    int done[ISM_KUBE_LANES] = { 0 };
    ism_kube_call_t *normal[2], *c;
    ism_kube_t *k;

    o.qps = 0.1;
    o.burst = 2;
    ck_assert_ptr_nonnull(k = ism_kube_create(world_config("admin"), &o, NULL));
    for (int i = 0; i < 2; i++)
        ck_assert_ptr_nonnull(normal[i] = ism_kube_get_async(k, &NAMESPACES, NULL, ns, counted,
                                                             &done[ISM_KUBE_LANE_NORMAL], &err));
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(c = ism_kube_get_async(k, &NAMESPACES, NULL, ns, counted,
                                                     &done[ISM_KUBE_LANE_URGENT], &err));
        ism_kube_call_lane(c, ISM_KUBE_LANE_URGENT);
    }
    for (int i = 0; i < 2; i++) {
        ck_assert_ptr_nonnull(c = ism_kube_get_async(k, &NAMESPACES, NULL, ns, counted,
                                                     &done[ISM_KUBE_LANE_EVENTS], &err));
        ism_kube_call_lane(c, ISM_KUBE_LANE_EVENTS);
    }
    int64_t until = ism_kube_now_ms() + WAIT_MS;
    while ((done[ISM_KUBE_LANE_URGENT] < 3 || done[ISM_KUBE_LANE_EVENTS] < 2) &&
           ism_kube_now_ms() < until)
        ck_assert_int_eq(ism_kube_run(k, NULL, 0, 100, NULL), 0);
    ck_assert_int_eq(done[ISM_KUBE_LANE_URGENT], 3);
    ck_assert_int_eq(done[ISM_KUBE_LANE_EVENTS], 2);
    ck_assert_int_eq(done[ISM_KUBE_LANE_NORMAL], 0);
    ck_assert_int_eq(ism_kube_calls(k), 2);
    for (int i = 0; i < 2; i++)
        ism_kube_cancel(k, normal[i]);
    ism_kube_destroy(k);
}
END_TEST

/* Who the API server says we are (authentication.k8s.io/v1
 * SelfSubjectReview), with a client made from cfg. */
static char *whoami(const ism_kube_config_t *cfg)
{
    static const ism_kube_resource_t REVIEWS = { "authentication.k8s.io", "v1",
                                                 "selfsubjectreviews", false };
    ism_error_t err = ISM_ERROR_INIT;
    json_t *review = json_pack("{s:s, s:s}", "apiVersion", "authentication.k8s.io/v1", "kind",
                               "SelfSubjectReview"), *out = NULL;
    ism_kube_t *k = ism_kube_create(cfg, NULL, &err);
    char *user;

    ck_assert_msg(k != NULL, "%s", err.text);
    ck_assert_msg(ism_kube_create_object(k, &REVIEWS, NULL, review, &out, NULL, &err) == 0, "%s",
                  err.text);
    user = strdup(json_string_value(json_object_get(
        json_object_get(json_object_get(out, "status"), "userInfo"), "username")));
    json_decref(review);
    json_decref(out);
    ism_kube_destroy(k);
    return user;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Every way to authenticate, each read from its own source, against the
 * real API server: client certificate data in a kubeconfig (the world's),
 * a bearer token inline and from tokenFile, two files merged through a
 * colon list, and the in-cluster service-account files. */
START_TEST(kubeconfig_auth_modes)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_config_t *cfg;
    char path[1024], dir[200], text[4096], token[2048] = "", *user;
    json_t *sa = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ServiceAccount",
                           "metadata", "name", "robot");
    static const ism_kube_resource_t SAS = { "", "v1", "serviceaccounts", true };
    const char *server = world_config("admin")->server;
    FILE *f;

    for (int i = 0; i < 2; i++) {
        const char *who = i ? "isthmusd" : "admin";
        snprintf(path, sizeof(path), "%s/%s.kubeconfig", world, who);
        cfg = ism_kube_config_load(path, NULL, &err);
        ck_assert_msg(cfg != NULL, "%s", err.text);
        user = whoami(cfg);
        ck_assert_str_eq(user, i ? "isthmusd" : "isthmus-admin");
        free(user);
        ism_kube_config_destroy(cfg);
    }

    ck_assert_int_eq(ism_kube_create_object(admin, &SAS, ns, sa, NULL, NULL, NULL), 0);
    snprintf(dir, sizeof(dir), "/tmp/isthmus-auth-%d", (int)getpid());
    snprintf(text, sizeof(text), "mkdir -p %s && cp %s/pki/ca.crt %s/ca.crt", dir, world, dir);
    ck_assert_int_eq(system(text), 0);
    snprintf(path, sizeof(path), "%s/token", dir);
    write_token(path, "robot");
    ck_assert_ptr_nonnull(f = fopen(path, "r"));
    ck_assert_ptr_nonnull(fgets(token, sizeof(token), f));
    fclose(f);
    token[strcspn(token, "\n")] = '\0';

    /* A token inline, in a second file that only has the user; the first
     * file has the cluster and the context (relative CA path). */
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\ncurrent-context: robot\nclusters:\n- name: w\n"
             "  cluster: {server: \"%s\", certificate-authority: ca.crt}\ncontexts:\n"
             "- name: robot\n  context: {cluster: w, user: robot, namespace: %s}\n", server, ns);
    snprintf(path, sizeof(path), "%s/a.yaml", dir);
    write_file(path, text);
    snprintf(text, sizeof(text), "users:\n- name: robot\n  user:\n    token: %s\n", token);
    snprintf(path, sizeof(path), "%s/b.yaml", dir);
    write_file(path, text);
    snprintf(path, sizeof(path), "%s/missing.yaml:%s/a.yaml:%s/b.yaml", dir, dir, dir);
    ck_assert_msg((cfg = ism_kube_config_load(path, NULL, &err)) != NULL, "%s", err.text);
    ck_assert_str_eq(cfg->namespace_, ns);
    user = whoami(cfg);
    ck_assert_ptr_nonnull(strstr(user, ":robot"));
    free(user);
    ism_kube_config_destroy(cfg);

    /* tokenFile. */
    snprintf(text, sizeof(text), "users:\n- name: robot\n  user: {tokenFile: token}\n");
    snprintf(path, sizeof(path), "%s/b.yaml", dir);
    write_file(path, text);
    snprintf(path, sizeof(path), "%s/a.yaml:%s/b.yaml", dir, dir);
    ck_assert_msg((cfg = ism_kube_config_load(path, NULL, &err)) != NULL, "%s", err.text);
    user = whoami(cfg);
    ck_assert_ptr_nonnull(strstr(user, ":robot"));
    free(user);
    ism_kube_config_destroy(cfg);

    /* In a pod: the service-account directory and the service address. */
    char port[16];
    snprintf(port, sizeof(port), "%s", strrchr(server, ':') + 1);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    snprintf(path, sizeof(path), "%s/namespace", dir);
    write_file(path, ns);
    ck_assert_msg((cfg = ism_kube_config_in_cluster(dir, &err)) != NULL, "%s", err.text);
    ck_assert_str_eq(cfg->namespace_, ns);
    user = whoami(cfg);
    ck_assert_ptr_nonnull(strstr(user, ":robot"));
    free(user);
    ism_kube_config_destroy(cfg);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");

    snprintf(text, sizeof(text), "rm -rf %s", dir);
    ck_assert_int_eq(system(text), 0);
    json_decref(sa);
}
END_TEST

static const ism_kube_resource_t PODS = { "", "v1", "pods", true };
static const ism_kube_resource_t NODES = { "", "v1", "nodes", false };

/* A pod no scheduler picks up (schedulerName nobody serves). */
static json_t *pod(const char *name)
{
    return json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:s, s:s}]}}", "apiVersion", "v1", "kind",
                     "Pod", "metadata", "name", name, "spec", "schedulerName", "nobody",
                     "containers", "name", "c", "image", "busybox");
}

/* The subresources a scheduler and a controller use: a Node's status,
 * a pod's binding, a pod's eviction. */
START_TEST(subresources)
{
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    char node[96];
    json_t *n, *p = pod("bound"), *q = pod("evicted"), *out = NULL;

    snprintf(node, sizeof(node), "%s-node", ns);
    n = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Node", "metadata", "name",
                  node);
    ck_assert_msg(ism_kube_create_object(admin, &NODES, NULL, n, NULL, &st, &err) == 0, "%s",
                  err.text);
    json_t *status = json_pack("{s:{s:{s:s, s:s}}}", "status", "capacity", "cpu", "96", "memory",
                               "64Gi");
    ck_assert_msg(ism_kube_patch(admin, &NODES, NULL, node, "status", ISM_KUBE_PATCH_MERGE,
                                 status, NULL, &out, &st, &err) == 0, "%s", err.text);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(out, "status"), "capacity"), "cpu")),
                     "96");
    json_decref(out);

    ck_assert_int_eq(ism_kube_create_object(admin, &PODS, ns, p, NULL, &st, &err), 0);
    json_t *binding = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
                                "Binding", "metadata", "name", "bound", "target", "kind", "Node",
                                "name", node);
    ck_assert_msg(ism_kube_create_subresource(admin, &PODS, ns, "bound", "binding", binding,
                                              NULL, &st, &err) == 0, "%s", err.text);
    ck_assert_int_eq(ism_kube_get(admin, &PODS, ns, "bound", &out, &st, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "spec"), "nodeName")),
                     node);
    json_decref(out);
    /* A second binding of the same pod is refused: Conflict. */
    ck_assert_int_eq(ism_kube_create_subresource(admin, &PODS, ns, "bound", "binding", binding,
                                                 NULL, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_CONFLICT);

    ck_assert_int_eq(ism_kube_create_object(admin, &PODS, ns, q, NULL, &st, &err), 0);
    json_t *eviction = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "policy/v1", "kind",
                                 "Eviction", "metadata", "name", "evicted", "namespace", ns);
    ck_assert_msg(ism_kube_create_subresource(admin, &PODS, ns, "evicted", "eviction", eviction,
                                              NULL, &st, &err) == 0, "%s", err.text);
    /* Not bound to a node, so the pod goes at once. */
    ck_assert_int_eq(ism_kube_get(admin, &PODS, ns, "evicted", NULL, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_NOT_FOUND);

    ism_kube_delete(admin, &NODES, NULL, node, NULL, NULL, NULL, NULL);
    json_decref(n);
    json_decref(status);
    json_decref(binding);
    json_decref(eviction);
    json_decref(p);
    json_decref(q);
}
END_TEST

START_TEST(typed_errors)
{
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_t *weak = client("isthmusd", 0);
    json_t *items = NULL, *bad = configmap("Not_A_Name", "a", "1");

    ck_assert_int_eq(ism_kube_list(weak, &SECRETS, ns, NULL, NULL, 0, &items, NULL, &st, &err), -1);
    ck_assert_int_eq(errno, EACCES);
    ck_assert_int_eq(st.reason, ISM_KUBE_FORBIDDEN);
    ck_assert_int_eq(st.http_code, 403);
    ck_assert_ptr_nonnull(strstr(st.message, "forbidden"));
    ck_assert_int_eq(st.attempts, 1);

    ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, bad, NULL, &st, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(st.reason, ISM_KUBE_INVALID);
    ck_assert_int_eq(st.http_code, 422);

    ck_assert_int_eq(ism_kube_request(admin, "GET", "/apis/no.such.group/v1/things", NULL, NULL,
                                      NULL, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_NOT_FOUND);
    json_decref(bad);
    ism_kube_destroy(weak);
}
END_TEST

static int64_t refuse(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

START_TEST(write_guard)
{
    ism_kube_status_t st;
    json_t *cm = configmap("guarded", "a", "1");
    int asked = 0;

    ism_kube_set_write_guard(admin, refuse, &asked);
    ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm, NULL, &st, NULL), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(st.reason, ISM_KUBE_NOT_LEADER);
    ck_assert_int_eq(asked, 1);
    /* Reads are not guarded; and nothing was written. */
    ck_assert_int_eq(ism_kube_get(admin, &CONFIGMAPS, ns, "guarded", NULL, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_NOT_FOUND);
    ism_kube_set_write_guard(admin, NULL, NULL);
    json_decref(cm);
}
END_TEST

/* ------------------------------------------------------------------ async */

struct outcome {
    int calls, ok, created_in_submit;
    bool submitting;
};

static void async_done(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                       json_t *answer, const ism_error_t *err)
{
    struct outcome *o = arg;
    (void)k, (void)st;

    o->calls++;
    o->created_in_submit += o->submitting; /* must never happen */
    if (rc == 0 && json_is_object(answer))
        o->ok++;
    else
        fprintf(stderr, "# async call failed: %s\n", err->text);
}

static void never_called(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                         json_t *answer, const ism_error_t *err)
{
    (void)k, (void)rc, (void)st, (void)answer, (void)err;
    (*(int *)arg)++;
}

/* 64 creates in flight at once, on one connection; callbacks only from
 * ism_kube_run; a cancelled call never calls back. */
START_TEST(many_calls_in_flight)
{
    ism_kube_t *k = client("admin", 0);
    ism_kube_stats_t s;
    struct outcome o = { 0 };
    int cancelled_calls = 0;
    size_t most = 0;
    ism_error_t err = ISM_ERROR_INIT;

    /* One request first, so the connection (and HTTP/2) is up. */
    ck_assert_int_eq(ism_kube_get(k, &NAMESPACES, NULL, "default", NULL, NULL, NULL), 0);
    o.submitting = true;
    for (int i = 0; i < 64; i++) {
        char name[32];
        snprintf(name, sizeof(name), "many-%d", i);
        json_t *cm = configmap(name, "i", "x");
        ck_assert_ptr_nonnull(ism_kube_create_object_async(k, &CONFIGMAPS, ns, cm, async_done, &o,
                                                          &err));
        json_decref(cm);
    }
    json_t *cm = configmap("cancelled", "a", "1");
    ism_kube_call_t *c = ism_kube_create_object_async(k, &CONFIGMAPS, ns, cm, never_called,
                                                      &cancelled_calls, &err);
    json_decref(cm);
    ck_assert_ptr_nonnull(c);
    o.submitting = false;
    ck_assert_int_eq(o.calls, 0); /* nothing before the loop runs */
    ck_assert_int_eq(ism_kube_calls(k), 65);
    ism_kube_cancel(k, c);
    ck_assert_int_eq(ism_kube_calls(k), 64);
    int64_t until = ism_kube_now_ms() + WAIT_MS;
    while (o.calls < 64 && ism_kube_now_ms() < until) {
        size_t n = ism_kube_calls(k);
        most = n > most ? n : most;
        ck_assert_int_eq(ism_kube_run(k, NULL, 0, 100, NULL), 0);
    }
    ck_assert_int_eq(o.calls, 64);
    ck_assert_int_eq(o.ok, 64);
    ck_assert_int_eq(o.created_in_submit, 0);
    ck_assert_int_eq(cancelled_calls, 0);
    ck_assert_int_eq(ism_kube_calls(k), 0);
    ism_kube_stats(k, &s);
    printf("# 64 creates: %llu connection(s), %llu over HTTP/2, at most %zu calls in flight\n",
           (unsigned long long)s.connections, (unsigned long long)s.http2, most);
    ck_assert_int_eq(s.connections, 1);
    ck_assert_int_ge(s.http2, 65);
    /* The cancelled create never reached the server. */
    ck_assert_int_eq(ism_kube_get(admin, &CONFIGMAPS, ns, "cancelled", NULL, NULL, NULL), -1);
    ck_assert_int_eq(errno, ENOENT);
    /* An async list sees them all, in one List answer. */
    struct outcome lo = { 0 };
    ck_assert_ptr_nonnull(ism_kube_list_async(k, &CONFIGMAPS, ns, "isthmus.io/test=kube", NULL, 10,
                                              async_done, &lo, &err));
    until = ism_kube_now_ms() + WAIT_MS;
    while (lo.calls == 0 && ism_kube_now_ms() < until)
        ck_assert_int_eq(ism_kube_run(k, NULL, 0, 100, NULL), 0);
    ck_assert_int_eq(lo.ok, 1);
    ism_kube_destroy(k);
}
END_TEST

/* ------------------------------------------------------------------ events */

static const ism_kube_resource_t EVENTS = { "events.k8s.io", "v1", "events", true };

/* The Events of this run's namespace reported by controller. */
static json_t *events_of(const char *controller)
{
    json_t *items = NULL, *mine = json_array(), *ev;
    size_t i;

    ck_assert_int_eq(ism_kube_list(admin, &EVENTS, ns, NULL, NULL, 0, &items, NULL, NULL, NULL), 0);
    json_array_foreach(items, i, ev) {
        const char *c = json_string_value(json_object_get(ev, "reportingController"));
        if (c && strcmp(c, controller) == 0)
            json_array_append(mine, ev);
    }
    json_decref(items);
    return mine;
}

/* Drive the loop until the recorder has nothing in flight (bounded). */
static void drain_events(ism_kube_recorder_t *r)
{
    int64_t until = ism_kube_now_ms() + WAIT_MS;
    while (ism_kube_recorder_pending(r) > 0) {
        ck_assert_msg(ism_kube_now_ms() < until, "Events still pending");
        ck_assert_int_eq(ism_kube_run(admin, NULL, 0, 100, NULL), 0);
    }
}

START_TEST(events_aggregate_and_rate_limit)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_recorder_t *r = ism_kube_recorder_create(admin, "isthmus.io/test", "replica-1", &err);
    json_t *cm = configmap("noisy", "a", "1"), *noisy = NULL, *cm2 = configmap("chatty", "a", "1");
    json_t *chatty = NULL, *evs;
    ism_kube_recorder_stats_t stats;

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm, &noisy, NULL, NULL), 0);
    ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm2, &chatty, NULL, NULL), 0);
    /* The same warning fifty times: one Event with a series of 50. */
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(ism_kube_event(r, noisy, "Warning", "NoTopology", "Publish",
                                        "node %s has no topology in Slurm", "n1"), 0);
    /* Thirty different notes about one object: the first 25 only. */
    for (int i = 0; i < 30; i++)
        ck_assert_int_eq(ism_kube_event(r, chatty, "Normal", "Changed", "Sync", "change %d", i), 0);
    ck_assert_int_eq(ism_kube_event(r, chatty, "Bad", "Changed", "Sync", "x"), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(ism_kube_run(admin, NULL, 0, 0, NULL), 0); /* the loop writes them */
    ism_kube_recorder_flush(r);
    drain_events(r);
    ism_kube_recorder_stats(r, &stats);
    ck_assert_int_eq(stats.recorded, 80);
    ck_assert_int_eq(stats.created, 26);
    ck_assert_int_eq(stats.dropped, 5);

    ck_assert_int_eq(stats.failed, 0);
    /* Three more repeats later: the existing Event's series is updated. */
    for (int i = 0; i < 3; i++)
        ism_kube_event(r, noisy, "Warning", "NoTopology", "Publish", "node %s has no topology in Slurm",
                       "n1");
    ism_kube_recorder_flush(r);
    drain_events(r);
    ism_kube_recorder_stats(r, &stats);
    ck_assert_int_eq(stats.created, 26);
    ck_assert_int_eq(stats.series, 1);

    evs = events_of("isthmus.io/test");
    ck_assert_int_eq(json_array_size(evs), 26);
    size_t i;
    json_t *ev;
    int found = 0;
    json_array_foreach(evs, i, ev) {
        if (strcmp(json_string_value(json_object_get(ev, "reason")), "NoTopology") != 0)
            continue;
        found++;
        ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), "Warning");
        ck_assert_str_eq(json_string_value(json_object_get(ev, "note")), "node n1 has no topology in Slurm");
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(ev, "series"), "count")), 53);
        json_t *reg = json_object_get(ev, "regarding");
        ck_assert_str_eq(json_string_value(json_object_get(reg, "name")), "noisy");
        ck_assert_str_eq(json_string_value(json_object_get(reg, "uid")),
                         json_string_value(json_object_get(json_object_get(noisy, "metadata"), "uid")));
    }
    ck_assert_int_eq(found, 1);
    json_decref(evs);
    ism_kube_recorder_destroy(r);
    json_decref(cm);
    json_decref(cm2);
    json_decref(noisy);
    json_decref(chatty);
}
END_TEST

/* ------------------------------------------------------------------ informers */

struct seen {
    int adds, updates, dels, syncs;
};

static void on_add(void *arg, const char *key, json_t *obj)
{
    (void)key, (void)obj;
    ((struct seen *)arg)->adds++;
}
static void on_update(void *arg, const char *key, json_t *old, json_t *obj)
{
    (void)key, (void)old, (void)obj;
    ((struct seen *)arg)->updates++;
}
static void on_del(void *arg, const char *key, json_t *old)
{
    (void)key, (void)old;
    ((struct seen *)arg)->dels++;
}
static void on_synced(void *arg)
{
    ((struct seen *)arg)->syncs++;
}
static const ism_kube_handlers_t handlers = {
    .add = on_add, .update = on_update, .del = on_del, .synced = on_synced,
};

/* Does the informer's cache hold exactly what a fresh list holds, same
 * resourceVersions? */
static bool cache_matches_list(ism_kube_t *k, ism_kube_informer_t *inf)
{
    json_t *items = NULL, *item;
    size_t i;
    bool same;

    if (ism_kube_list(k, &CONFIGMAPS, ns, NULL, NULL, 0, &items, NULL, NULL, NULL) < 0)
        return false;
    same = json_array_size(items) == json_object_size(ism_kube_informer_cache(inf));
    json_array_foreach(items, i, item) {
        char key[300];
        json_t *cached;
        if (ism_kube_object_key(item, key, sizeof(key)) < 0 ||
            !(cached = ism_kube_informer_get(inf, key)) ||
            !rv_of(cached) || !rv_of(item) || strcmp(rv_of(cached), rv_of(item)) != 0)
            same = false;
    }
    json_decref(items);
    return same;
}

/* Drive the loop until the cache matches a fresh list (bounded). */
static bool converge(ism_kube_t *k, ism_kube_informer_t *inf)
{
    int64_t until = ism_kube_now_ms() + WAIT_MS;
    while (ism_kube_now_ms() < until) {
        ck_assert_int_eq(ism_kube_run(k, NULL, 0, 200, NULL), 0);
        if (ism_kube_informer_synced(inf) && cache_matches_list(admin, inf))
            return true;
    }
    return false;
}

/* Creates, updates and deletes that a watcher must all see. */
static void churn(const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s-%d", prefix, i);
        json_t *cm = configmap(name, "v", "0"), *patch = json_pack("{s:{s:s}}", "data", "v", "1");
        ck_assert_int_eq(ism_kube_create_object(admin, &CONFIGMAPS, ns, cm, NULL, NULL, NULL), 0);
        if (i % 2 == 0)
            ck_assert_int_eq(ism_kube_patch(admin, &CONFIGMAPS, ns, name, NULL,
                                            ISM_KUBE_PATCH_MERGE, patch, NULL, NULL, NULL, NULL), 0);
        if (i % 3 == 0)
            ck_assert_int_eq(ism_kube_delete(admin, &CONFIGMAPS, ns, name, NULL, NULL, NULL, NULL), 0);
        json_decref(cm);
        json_decref(patch);
    }
}

START_TEST(informer_follows_changes)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct seen seen = { 0 };
    ism_kube_t *k = client("admin", 0);
    ism_kube_informer_t *inf;

    churn("before", 4);
    inf = ism_kube_informer_create(k, &CONFIGMAPS, ns, NULL, NULL, &handlers, &seen, &err);
    ck_assert_msg(inf != NULL, "%s", err.text);
    ck_assert(converge(k, inf));
    ck_assert_int_eq(seen.syncs, 1);
    int first = seen.adds;
    churn("after", 6); /* 6 adds, 3 updates, 2 deletes */
    ck_assert(converge(k, inf));
    ck_assert_int_eq(seen.adds - first, 6);
    ck_assert_int_ge(seen.updates, 3);
    ck_assert_int_eq(seen.dels, 2);
    ism_kube_informer_stats_t s;
    ism_kube_informer_stats(inf, &s);
    ck_assert_int_eq(s.lists, 1);

    /* A label selector: only our ConfigMaps, not the namespace's
     * kube-root-ca.crt, on the same loop as the first informer. */
    ism_kube_informer_t *sel = ism_kube_informer_create(k, &CONFIGMAPS, ns, "isthmus.io/test=kube",
                                                        NULL, NULL, NULL, &err);
    ck_assert_ptr_nonnull(sel);
    while (!ism_kube_informer_synced(sel))
        ck_assert_int_eq(ism_kube_run(k, NULL, 0, 100, NULL), 0);
    char key[128];
    snprintf(key, sizeof(key), "%s/kube-root-ca.crt", ns);
    ck_assert_ptr_nonnull(ism_kube_informer_get(inf, key));
    ck_assert_ptr_null(ism_kube_informer_get(sel, key));
    ck_assert_int_eq(json_object_size(ism_kube_informer_cache(sel)),
                     json_object_size(ism_kube_informer_cache(inf)) - 1);
    ism_kube_informer_destroy(sel);
    ism_kube_informer_destroy(inf);
    ism_kube_destroy(k);
}
END_TEST

/* Every cached object is metadata alone: no data, kind PartialObjectMetadata. */
static bool all_metadata_only(ism_kube_informer_t *inf)
{
    const char *key;
    json_t *obj;

    json_object_foreach(ism_kube_informer_cache(inf), key, obj) {
        const char *kind = json_string_value(json_object_get(obj, "kind"));
        if (json_object_get(obj, "data") || !kind || strcmp(kind, "PartialObjectMetadata") != 0)
            return false;
    }
    return true;
}

/* A metadata-only informer follows creates, updates and deletes like a
 * whole one, keeping no data; a write sent as text can be answered with
 * its metadata alone. */
START_TEST(informer_metadata_only)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct seen seen = { 0 };
    ism_kube_t *k = client("admin", 0);
    ism_kube_informer_t *inf;
    char path[160], text[256];
    json_t *answer = NULL, *whole = NULL;

    churn("meta-before", 3);
    inf = ism_kube_informer_create(k, &CONFIGMAPS, ns, NULL, NULL, &handlers, &seen, &err);
    ck_assert_msg(inf != NULL, "%s", err.text);
    ism_kube_informer_set_metadata_only(inf, true);
    ck_assert(converge(k, inf));
    ck_assert(all_metadata_only(inf));
    int first = seen.adds;
    churn("meta-after", 6); /* 6 adds, 3 updates, 2 deletes */
    ck_assert(converge(k, inf));
    ck_assert(all_metadata_only(inf));
    ck_assert_int_eq(seen.adds - first, 6);
    ck_assert_int_ge(seen.updates, 3);
    ck_assert_int_eq(seen.dels, 2);

    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"as-text\"},"
             "\"data\":{\"k\":\"%s\"}}", ns);
    ism_kube_call_t *c = ism_kube_request_text_async(k, "POST", path, text, NULL, NULL, NULL, &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    ck_assert_int_eq(ism_kube_call_accept(c, ISM_KUBE_ACCEPT_METADATA), 0);
    ck_assert_msg(ism_kube_wait(k, c, &answer, NULL, &err) == 0, "%s", err.text);
    ck_assert_str_eq(json_string_value(json_object_get(answer, "kind")), "PartialObjectMetadata");
    ck_assert_ptr_null(json_object_get(answer, "data"));
    ck_assert_int_eq(ism_kube_get(k, &CONFIGMAPS, ns, "as-text", &whole, NULL, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(whole, "data"), "k")), ns);
    ck_assert_int_eq(ism_kube_call_accept(NULL, ISM_KUBE_ACCEPT_METADATA), -1);
    json_decref(whole);
    json_decref(answer);
    ism_kube_informer_destroy(inf);
    ism_kube_destroy(k);
}
END_TEST

static void restart_apiserver(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s/tests/world/k8s/restart' '%s' kube-apiserver >&2",
             TOP_SRCDIR, world);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(informer_survives_apiserver_restart)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct seen seen = { 0 };
    ism_kube_t *k = client("admin", 0);
    ism_kube_informer_t *inf;
    ism_kube_informer_stats_t s;

    churn("pre", 3);
    inf = ism_kube_informer_create(k, &CONFIGMAPS, ns, NULL, NULL, &handlers, &seen, &err);
    ck_assert(converge(k, inf));
    restart_apiserver();
    /* Changes right after the restart, before the informer noticed. */
    churn("post", 5);
    ck_assert(converge(k, inf));
    ism_kube_informer_stats(inf, &s);
    ck_assert_int_ge(s.watches, 2);
    ism_kube_informer_destroy(inf);
    ism_kube_destroy(k);
}
END_TEST

/* ------------------------------------------------------------------ hostile answers
 *
 * Faults the real kube-apiserver cannot be made to produce (a proxy's HTML
 * error page, a body cut short, an answer of 70 MiB) come from a FAKE:
 * openssl s_server -HTTP, which answers each path with the bytes of the file
 * of that name, using the world's serving certificate.  Everything else in
 * this file talks to the real API server.
 */
static char fake_dir[256];
static pid_t fake_pid;
static int fake_port;

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Write the answer for name (a file of the fake's tree). */
static void fake_answer(const char *name, const char *head, const char *body, size_t body_repeat)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/api/v1/namespaces/h/configmaps/%s", fake_dir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs(head, f);
    for (size_t i = 0; i < body_repeat; i++)
        fputs(body, f);
    fclose(f);
}

static void fake_start(void)
{
    char dir[512], cert[512], key[512], accept[64];

    world = getenv("ISTHMUS_K8S_DIR");
    ck_assert_ptr_nonnull(world);
    snprintf(fake_dir, sizeof(fake_dir), "/tmp/isthmus-fake-%d", (int)getpid());
    snprintf(dir, sizeof(dir), "mkdir -p %s/api/v1/namespaces/h/configmaps", fake_dir);
    ck_assert_int_eq(system(dir), 0);
    fake_answer("html", "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/html\r\n\r\n",
                "<html><body>upstream\nconnect error</body></html>\n", 1);
    fake_answer("cut", "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n",
                "{\"kind\":\"ConfigMap\",\"metadata\":{\"na", 1);
    fake_answer("huge", "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n",
                "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29],", 
                70u * 1024 * 1024 / 80);
    fake_answer("busy", "HTTP/1.0 429 Too Many Requests\r\nRetry-After: 1\r\n"
                "Content-Type: application/json\r\n\r\n",
                "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"code\":429}", 1);
    fake_answer("absent", "HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\n\r\n",
                "{\"kind\":\"Status\",\"reason\":\"NotFound\",\"code\":404}", 1);
    fake_answer("array", "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n", "[]", 1);
    fake_port = free_port();
    snprintf(cert, sizeof(cert), "%s/pki/apiserver.crt", world);
    snprintf(key, sizeof(key), "%s/pki/apiserver.key", world);
    snprintf(accept, sizeof(accept), "127.0.0.1:%d", fake_port);
    fake_pid = fork();
    ck_assert_int_ge(fake_pid, 0);
    if (fake_pid == 0) {
        if (chdir(fake_dir) < 0 || !freopen("/dev/null", "w", stdout))
            _exit(127);
        execlp("openssl", "openssl", "s_server", "-HTTP", "-quiet", "-accept", accept, "-cert",
               cert, "-key", key, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) { /* until it accepts (bounded) */
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)fake_port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (rc == 0)
            return;
        usleep(100000);
    }
    ck_abort_msg("openssl s_server did not start");
}

static void fake_stop(void)
{
    char cmd[512];
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fake_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fake_dir);
}

static ism_kube_t *fake_client(void)
{
    static char server[64];
    ism_kube_options_t o = ISM_KUBE_OPTIONS_DEFAULT;
    ism_kube_config_t cfg = *world_config("admin");
    ism_kube_t *k;

    snprintf(server, sizeof(server), "https://127.0.0.1:%d", fake_port);
    cfg.server = server;
    cfg.cert_file = cfg.key_file = cfg.cert_data = cfg.key_data = NULL;
    o.qps = 0;
    o.max_retries = 2;
    o.backoff_base_ms = 10;
    o.backoff_cap_ms = 50;
    k = ism_kube_create(&cfg, &o, NULL);
    ck_assert_ptr_nonnull(k);
    return k;
}

static const ism_kube_resource_t FAKE_CM = { "", "v1", "configmaps", true };

START_TEST(html_error_page)
{
    ism_kube_t *k = fake_client();
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    json_t *out = NULL;

    ck_assert_int_eq(ism_kube_get(k, &FAKE_CM, "h", "html", &out, &st, &err), -1);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(errno, EIO);
    ck_assert_int_eq(st.reason, ISM_KUBE_SERVER_ERROR);
    ck_assert_int_eq(st.http_code, 503);
    ck_assert_int_eq(st.attempts, 3); /* a 5xx is retried */
    /* The page's first line is the message, nothing past a newline. */
    ck_assert_str_eq(st.message, "<html><body>upstream");
    ck_assert_ptr_nonnull(strstr(err.text, "HTTP 503"));
    ism_kube_destroy(k);
}
END_TEST

START_TEST(truncated_json)
{
    ism_kube_t *k = fake_client();
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    json_t *out = NULL;

    ck_assert_int_eq(ism_kube_get(k, &FAKE_CM, "h", "cut", &out, &st, &err), -1);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(errno, EBADMSG);
    ck_assert_int_eq(st.reason, ISM_KUBE_BAD_RESPONSE);
    ck_assert_ptr_nonnull(strstr(err.text, "not a JSON object"));
    ck_assert_int_eq(ism_kube_get(k, &FAKE_CM, "h", "array", &out, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_BAD_RESPONSE);
    ism_kube_destroy(k);
}
END_TEST

START_TEST(huge_answer)
{
    ism_kube_t *k = fake_client();
    ism_kube_status_t st;
    ism_error_t err = ISM_ERROR_INIT;
    json_t *out = NULL;

    ck_assert_int_eq(ism_kube_get(k, &FAKE_CM, "h", "huge", &out, &st, &err), -1);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(st.reason, ISM_KUBE_BAD_RESPONSE);
    ck_assert_int_eq(st.attempts, 1);
    ck_assert_ptr_nonnull(strstr(err.text, "larger than 64 MiB"));
    ism_kube_destroy(k);
}
END_TEST

START_TEST(too_many_requests)
{
    ism_kube_t *k = fake_client();
    ism_kube_status_t st;

    ck_assert_int_eq(ism_kube_get(k, &FAKE_CM, "h", "busy", NULL, &st, NULL), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(st.reason, ISM_KUBE_TOO_MANY_REQUESTS);
    ck_assert_int_eq(st.retry_after, 1);
    ck_assert_int_eq(st.attempts, 3);
    /* A 404 is not retried. */
    ck_assert_int_eq(ism_kube_get(k, &FAKE_CM, "h", "absent", NULL, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_NOT_FOUND);
    ck_assert_int_eq(st.attempts, 1);
    ism_kube_destroy(k);
}
END_TEST

START_TEST(tls_is_verified)
{
    ism_kube_options_t o = ISM_KUBE_OPTIONS_DEFAULT;
    ism_kube_config_t cfg = *world_config("admin");
    char wrong_ca[512];
    ism_kube_status_t st;
    ism_kube_t *k;

    /* The real API server, checked against a CA that did not sign it. */
    world = getenv("ISTHMUS_K8S_DIR");
    snprintf(wrong_ca, sizeof(wrong_ca), "%s/pki/front-proxy-ca.crt", world);
    cfg.ca_file = wrong_ca;
    cfg.ca_data = NULL;
    o.max_retries = 0;
    ck_assert_ptr_nonnull(k = ism_kube_create(&cfg, &o, NULL));
    ck_assert_int_eq(ism_kube_get(k, &NAMESPACES, NULL, "default", NULL, &st, NULL), -1);
    ck_assert_int_eq(st.reason, ISM_KUBE_TRANSPORT);
    ck_assert_int_eq(st.http_code, 0);
    ism_kube_destroy(k);
    /* insecure-skip-tls-verify, and only that, lets it through. */
    cfg.insecure = true;
    ck_assert_ptr_nonnull(k = ism_kube_create(&cfg, &o, NULL));
    ck_assert_int_eq(ism_kube_get(k, &NAMESPACES, NULL, "default", NULL, &st, NULL), 0);
    ism_kube_destroy(k);
}
END_TEST

START_TEST(connection_refused)
{
    ism_kube_options_t o = ISM_KUBE_OPTIONS_DEFAULT;
    ism_kube_config_t cfg = *world_config("admin");
    char server[64];
    ism_kube_status_t st;
    ism_kube_t *k;
    json_t *cm = configmap("never", "a", "1");

    snprintf(server, sizeof(server), "https://127.0.0.1:%d", free_port());
    cfg.server = server;
    o.max_retries = 2;
    o.backoff_base_ms = 10;
    o.backoff_cap_ms = 20;
    ck_assert_ptr_nonnull(k = ism_kube_create(&cfg, &o, NULL));
    ck_assert_int_eq(ism_kube_get(k, &CONFIGMAPS, "x", "y", NULL, &st, NULL), -1);
    ck_assert_int_eq(errno, ECONNREFUSED);
    ck_assert_int_eq(st.reason, ISM_KUBE_TRANSPORT);
    ck_assert_int_eq(st.attempts, 3);
    /* A write that never left is retried too. */
    ck_assert_int_eq(ism_kube_create_object(k, &CONFIGMAPS, "x", cm, NULL, &st, NULL), -1);
    ck_assert_int_eq(st.attempts, 3);
    json_decref(cm);
    ism_kube_destroy(k);
}
END_TEST

START_TEST(informer_relists_after_compaction)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct seen seen = { 0 };
    ism_kube_t *k = client("admin", 0);
    ism_kube_informer_t *inf;
    ism_kube_informer_stats_t s;
    char cmd[1024];

    churn("old", 4);
    inf = ism_kube_informer_create(k, &CONFIGMAPS, ns, NULL, NULL, &handlers, &seen, &err);
    ck_assert(converge(k, inf));
    int dels = seen.dels;
    /* While the informer is not looking: changes, then etcd forgets every
     * older revision, then the API server restarts (and with it the
     * informer's watch).  Its resourceVersion is gone: only a relist can
     * bring it back, and the relist must hand over what it missed. */
    churn("missed", 6);
    ck_assert_int_eq(ism_kube_delete(admin, &CONFIGMAPS, ns, "old-1", NULL, NULL, NULL, NULL), 0);
    ck_assert_int_eq(ism_kube_delete(admin, &CONFIGMAPS, ns, "old-2", NULL, NULL, NULL, NULL), 0);
    snprintf(cmd, sizeof(cmd), "'%s/tests/world/k8s/compact' '%s' >&2", TOP_SRCDIR, world);
    ck_assert_int_eq(system(cmd), 0);
    restart_apiserver();
    ck_assert(converge(k, inf));
    ism_kube_informer_stats(inf, &s);
    ck_assert_int_ge(s.gone, 1);
    ck_assert_int_ge(s.lists, 2);
    ck_assert_int_eq(seen.syncs, (int)s.lists);
    /* The two deletes of objects it had are told, whether from events
     * already in the socket when the server went down or from the relist's
     * difference (objects born and gone meanwhile may be told or not). */
    ck_assert_int_ge(seen.dels - dels, 2);
    char key[128];
    snprintf(key, sizeof(key), "%s/old-1", ns);
    ck_assert_ptr_null(ism_kube_informer_get(inf, key));
    snprintf(key, sizeof(key), "%s/missed-1", ns);
    ck_assert_ptr_nonnull(ism_kube_informer_get(inf, key));
    ism_kube_informer_destroy(inf);
    ism_kube_destroy(k);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kube");
    TCase *tc = tcase_create("requests");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, configmap_round_trip);
    tcase_add_test(tc, update_conflict_then_retry);
    tcase_add_test(tc, patches);
    tcase_add_test(tc, delete_with_preconditions);
    tcase_add_test(tc, resource_v1_round_trip);
    tcase_add_test(tc, list_pages);
    tcase_add_test(tc, typed_errors);
    tcase_add_test(tc, write_guard);
    tcase_add_test(tc, one_http2_connection);
    tcase_add_test(tc, token_file_is_reread);
    tcase_add_test(tc, rate_limit);
    tcase_add_test(tc, rate_limit_lanes);
    tcase_add_test(tc, kubeconfig_auth_modes);
    tcase_add_test(tc, subresources);
    tcase_add_test(tc, events_aggregate_and_rate_limit);
    tcase_add_test(tc, many_calls_in_flight);
    suite_add_tcase(s, tc);
    tc = tcase_create("informers");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, informer_follows_changes);
    tcase_add_test(tc, informer_metadata_only);
    tcase_add_test(tc, informer_survives_apiserver_restart);
    tcase_add_test(tc, informer_relists_after_compaction);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_unchecked_fixture(tc, fake_start, fake_stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, html_error_page);
    tcase_add_test(tc, truncated_json);
    tcase_add_test(tc, huge_answer);
    tcase_add_test(tc, too_many_requests);
    tcase_add_test(tc, tls_is_verified);
    tcase_add_test(tc, connection_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
