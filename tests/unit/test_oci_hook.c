/* Unit tests of isthmus-oci-hook's library (dra/hook.h): the OCI state
 * parser, finding the cgroup on a fake /proc + cgroupfs tree, checking the
 * lists against a fake sysfs, and the writes with their order and rollback. */
#include <config.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dra/hook.h"
#include "unit.h"

/* ---- a fake root -------------------------------------------------------- */

static char root[256];

static void put(const char *rel, const char *text)
{
    char path[PATH_MAX * 2], *slash;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    ck_assert_msg((f = fopen(path, "w")) != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static char *get(const char *rel)
{
    static char buf[256];
    char path[PATH_MAX * 2];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    ck_assert_msg((f = fopen(path, "r")) != NULL, "%s: %s", path, strerror(errno));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(root, sizeof(root), "%s/test_oci_hook.XXXXXX", tmp ? tmp : "/tmp");
    ck_assert(mkdtemp(root) != NULL);
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}

static ism_bitmap_t *list(const char *s)
{
    ism_bitmap_t *b = ism_bitmap_parse_list(s, NULL);

    ck_assert_msg(b != NULL, "bad list in test: %s", s);
    return b;
}

/* ---- the OCI state ------------------------------------------------------ */

static const struct state_case {
    const char *json;
    int rc;
    const char *msg; /* substring of the error, or the id on success */
    long pid;
} state_cases[] = {
    { "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"status\":\"creating\",\"pid\":42,"
      "\"bundle\":\"/b\",\"annotations\":{\"a\":\"b\"}}", 0, "c1", 42 },
    { "{\"ociVersion\":\"1.1.0\",\"id\":\"c2\",\"pid\":7}", 0, "c2", 7 },
    { "{\"ociVersion\":\"1.1.0\",\"id\":\"c3\",\"status\":\"created\",\"pid\":7,"
      "\"future\":[1,{\"x\":null}]}", 0, "c3", 7 },
    { "{\"ociVersion\":\"1.1.0\",\"id\":\"c4\",\"status\":null,\"pid\":1}", 0, "c4", 1 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\",\"status\":\"running\",\"pid\":7}", -1, "status", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\",\"status\":\"stopped\"}", -1, "status", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\"}", -1, "pid: missing", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\",\"pid\":0}", -1, "not a process id", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\",\"pid\":-5}", -1, "not a process id", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\",\"pid\":99999999999}", -1, "not a process id", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\",\"pid\":\"42\"}", -1, "pid: not an integer", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\",\"pid\":4.2}", -1, "pid: not an integer", 0 },
    { "{\"id\":\"c\",\"pid\":42}", -1, "ociVersion: missing", 0 },
    { "{\"ociVersion\":1,\"id\":\"c\",\"pid\":42}", -1, "ociVersion: not a string", 0 },
    { "{\"ociVersion\":\"1\",\"pid\":42}", -1, "id: missing", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"\",\"pid\":42}", -1, "id: not a non-empty", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"a b\",\"pid\":42}", -1, "not printable", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"a\\u0000b\",\"pid\":42}", -1, "not JSON", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\",\"pid\":42,\"pid\":43}", -1, "not JSON", 0 },
    { "[1,2]", -1, "not a JSON object", 0 },
    { "garbage", -1, "not JSON", 0 },
    { "", -1, "not JSON", 0 },
    { "{\"ociVersion\":\"1\",\"id\":\"c\",\"pid\":42", -1, "not JSON", 0 },
};

START_TEST(test_state_parse)
{
    const struct state_case *c = &state_cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_oci_state st = { .pid = -1 };
    int rc = ism_oci_state_parse(c->json, strlen(c->json), &st, &err);

    ck_assert_msg(rc == c->rc, "%s: rc %d (%s)", c->json, rc, err.text);
    if (rc == 0) {
        ck_assert_str_eq(st.id, c->msg);
        ck_assert_int_eq(st.pid, c->pid);
    } else {
        ck_assert_msg(strstr(err.text, c->msg), "%s: message '%s' lacks '%s'", c->json,
                      err.text, c->msg);
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_int_eq(st.pid, -1); /* untouched on failure */
    }
}
END_TEST

START_TEST(test_state_bounds)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_oci_state st;
    const char ok[] = "{\"ociVersion\":\"1\",\"id\":\"c\",\"pid\":42}trailing";

    /* Not NUL-terminated input: only len bytes are read. */
    ck_assert_int_eq(ism_oci_state_parse(ok, strlen(ok) - 8, &st, &err), 0);
    ck_assert_int_eq(ism_oci_state_parse(ok, ISM_OCI_STATE_MAX_BYTES + 1, &st, &err), -1);
    ck_assert_msg(strstr(err.text, "more than"), "%s", err.text);
    ism_error_clear(&err);
    ck_assert_int_eq(ism_oci_state_parse(NULL, 0, &st, &err), -1);
    ck_assert_int_eq(ism_oci_state_parse(ok, 3, NULL, NULL), -1);
}
END_TEST

/* ---- finding the cgroup ------------------------------------------------- */

#define MI_V1 "30 25 0:26 / /sys/fs/cgroup/cpuset rw,nosuid shared:9 - cgroup cgroup rw,cpuset\n"
#define MI_V1_CPU "29 25 0:25 / /sys/fs/cgroup/cpu rw shared:8 - cgroup cgroup rw,cpu,cpuacct\n"
#define MI_V2 "35 25 0:30 / /sys/fs/cgroup/unified rw shared:14 - cgroup2 cgroup2 rw\n"
#define MI_V2_ONLY "35 25 0:30 / /sys/fs/cgroup rw shared:14 - cgroup2 cgroup2 rw,nsdelegate\n"
#define MI_ROOT "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"

static const struct find_case {
    const char *name;
    const char *proc_cgroup;
    const char *mountinfo;
    const char *make_dir; /* where cpuset.cpus exists, relative to root; NULL: none */
    int rc;
    int version;
    const char *dir_or_msg; /* relative dir on success, message substring on failure */
} find_cases[] = {
    { "v1", "5:cpu,cpuacct:/k/p1\n3:cpuset:/k/p1\n0::/\n", MI_ROOT MI_V1_CPU MI_V1,
      "sys/fs/cgroup/cpuset/k/p1", 0, 1, "/sys/fs/cgroup/cpuset/k/p1" },
    { "v1 with shared hierarchy", "3:cpu,cpuset:/k/p2\n", MI_ROOT
      "30 25 0:26 / /sys/fs/cgroup/cpu,cpuset rw - cgroup cgroup rw,cpu,cpuset\n",
      "sys/fs/cgroup/cpu,cpuset/k/p2", 0, 1, "/sys/fs/cgroup/cpu,cpuset/k/p2" },
    { "v2", "0::/kubepods/pod1/c1\n", MI_ROOT MI_V2_ONLY, "sys/fs/cgroup/kubepods/pod1/c1", 0, 2,
      "/sys/fs/cgroup/kubepods/pod1/c1" },
    { "hybrid: v1 cpuset wins", "3:cpuset:/c3\n0::/other\n", MI_ROOT MI_V1 MI_V2,
      "sys/fs/cgroup/cpuset/c3", 0, 1, "/sys/fs/cgroup/cpuset/c3" },
    { "v1 root cgroup", "3:cpuset:/\n", MI_ROOT MI_V1, "sys/fs/cgroup/cpuset", 0, 1,
      "/sys/fs/cgroup/cpuset" },
    { "v1 mounted from a sub-cgroup", "3:cpuset:/outer/c4\n", MI_ROOT
      "30 25 0:26 /outer /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n",
      "sys/fs/cgroup/cpuset/c4", 0, 1, "/sys/fs/cgroup/cpuset/c4" },
    { "v1 cgroup outside the mounted part", "3:cpuset:/elsewhere/c5\n", MI_ROOT
      "30 25 0:26 /outer /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n", NULL, -1, 0,
      "outside the part of the hierarchy" },
    { "v1 prefix is not a parent", "3:cpuset:/outer2/c\n", MI_ROOT
      "30 25 0:26 /outer /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n", NULL, -1, 0,
      "outside the part" },
    { "escaped mount point", "3:cpuset:/c6\n", MI_ROOT
      "30 25 0:26 / /mnt/my\\040cgroups rw - cgroup cgroup rw,cpuset\n", "mnt/my cgroups/c6", 0,
      1, "/mnt/my cgroups/c6" },
    { "optional fields in mountinfo", "0::/c7\n", MI_ROOT
      "35 25 0:30 / /sys/fs/cgroup rw shared:14 master:3 unbindable - cgroup2 cgroup2 rw\n",
      "sys/fs/cgroup/c7", 0, 2, "/sys/fs/cgroup/c7" },
    { "v2 without the cpuset controller", "0::/c8\n", MI_ROOT MI_V2_ONLY, NULL, -1, 0,
      "cpuset controller is not enabled" },
    { "v1 cpuset not mounted", "3:cpuset:/c9\n", MI_ROOT MI_V1_CPU, NULL, -1, 0,
      "no cgroup v1 hierarchy with the cpuset controller" },
    { "no cpuset line", "5:cpu,cpuacct:/x\n", MI_ROOT MI_V1_CPU, NULL, -1, 0,
      "in no cpuset cgroup" },
    { "dot-dot in path", "3:cpuset:/a/../b\n", MI_ROOT MI_V1, NULL, -1, 0, "has . or .." },
    { "relative path", "0::c\n", MI_ROOT MI_V2_ONLY, NULL, -1, 0, "not absolute" },
    { "garbage lines", "junk\n::\n\n3:cpuset:/c10\nmore junk", MI_ROOT "junk\n- -\n" MI_V1,
      "sys/fs/cgroup/cpuset/c10", 0, 1, "/sys/fs/cgroup/cpuset/c10" },
    { "empty files", "", "", NULL, -1, 0, "in no cpuset cgroup" },
};

START_TEST(test_cgroup_find)
{
    const struct find_case *c = &find_cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_cgroup cg;
    char want[PATH_MAX], rel[PATH_MAX];
    int rc;

    put("proc/4242/cgroup", c->proc_cgroup);
    put("proc/self/mountinfo", c->mountinfo);
    if (c->make_dir) {
        snprintf(rel, sizeof(rel), "%s/cpuset.cpus", c->make_dir);
        put(rel, "0-3\n");
    }
    rc = ism_cgroup_find(root, 4242, &cg, &err);
    ck_assert_msg(rc == c->rc, "%s: rc %d (%s)", c->name, rc, err.text);
    if (rc == 0) {
        snprintf(want, sizeof(want), "%s%s", root, c->dir_or_msg);
        ck_assert_str_eq(cg.dir, want);
        ck_assert_int_eq(cg.version, c->version);
    } else {
        ck_assert_msg(strstr(err.text, c->dir_or_msg), "%s: message '%s' lacks '%s'", c->name,
                      err.text, c->dir_or_msg);
    }
}
END_TEST

START_TEST(test_cgroup_find_no_process)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_cgroup cg;

    ck_assert_int_eq(ism_cgroup_find(root, 77, &cg, &err), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(strstr(err.text, "init process 77"), "%s", err.text);
    ck_assert_int_eq(ism_cgroup_find(NULL, 77, &cg, NULL), -1);
    ck_assert_int_eq(ism_cgroup_find(root, 0, &cg, NULL), -1);
}
END_TEST

/* ---- checking against the node ------------------------------------------ */

static const struct check_case {
    const char *cpus_online, *node_online; /* NULL: file absent */
    const char *cpus, *mems;
    int rc;
    const char *msg;
} check_cases[] = {
    { "0-7\n", "0-1\n", "0-3", "0", 0, NULL },
    { "0-7\n", "0-1\n", "4-7", "0-1", 0, NULL },
    { "0-7\n", "0-1\n", "6-9", "0", -1, "cpus 8-9 not online on this node (cpus online: 0-7)" },
    { "0-3,6-7\n", "0\n", "4", "0", -1, "cpus 4 not online" },
    { "0-7\n", "0-1\n", "0", "1-3", -1, "memory nodes 2-3 not online on this node (nodes online: 0-1)" },
    { "0-7\n", "0\n", "", "0", -1, "cpus: the list is empty" },
    { "0-7\n", "0\n", "0", "", -1, "memory nodes: the list is empty" },
    { "0-7\n", NULL, "0", "0", 0, NULL },
    { "0-7\n", NULL, "0", "1", -1, "memory nodes 1 not online" },
    { NULL, "0\n", "0", "0", -1, "cpu/online" },
    { "garbage\n", "0\n", "0", "0", -1, "cpu/online" },
    { "0-7\n", "x\n", "0", "0", -1, "node/online" },
};

START_TEST(test_cpuset_check)
{
    const struct check_case *c = &check_cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    ism_bitmap_t *cpus = list(c->cpus), *mems = list(c->mems);
    int rc;

    if (c->cpus_online)
        put("sys/devices/system/cpu/online", c->cpus_online);
    if (c->node_online)
        put("sys/devices/system/node/online", c->node_online);
    rc = ism_cpuset_check(root, cpus, mems, &err);
    ck_assert_msg(rc == c->rc, "case %d: rc %d (%s)", _i, rc, err.text);
    if (rc < 0)
        ck_assert_msg(strstr(err.text, c->msg), "case %d: message '%s' lacks '%s'", _i,
                      err.text, c->msg);
    ism_bitmap_destroy(cpus);
    ism_bitmap_destroy(mems);
}
END_TEST

/* ---- writing ------------------------------------------------------------ */

static void fake_cgroup(struct ism_cgroup *cg)
{
    put("cg/cpuset.cpus", "0-7\n");
    put("cg/cpuset.mems", "0-1\n");
    cg->version = ISM_CGROUP_V1;
    snprintf(cg->dir, sizeof(cg->dir), "%s/cg", root);
}

START_TEST(test_apply)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_cgroup cg;
    ism_bitmap_t *cpus = list("6,2-3,1"), *mems = list("1");

    fake_cgroup(&cg);
    ck_assert_msg(ism_cpuset_apply(&cg, cpus, mems, &err) == 0, "%s", err.text);
    ck_assert_str_eq(get("cg/cpuset.cpus"), "1-3,6");
    ck_assert_str_eq(get("cg/cpuset.mems"), "1");
    ck_assert_int_eq(ism_cpuset_apply(NULL, cpus, mems, NULL), -1);
    ism_bitmap_destroy(cpus);
    ism_bitmap_destroy(mems);
}
END_TEST

/* Writes that fail: the file that fails is named, what was written before
 * it is put back, what comes after it is untouched. */
static const struct fail_case {
    const char *file;   /* replaced by ... */
    const char *target; /* a symlink to this, or a directory when NULL */
    const char *msg;
    const char *cpus_after, *mems_after;
} fail_cases[] = {
    /* cpus cannot be opened: mems, written first, is put back. */
    { "cpuset.cpus", NULL, "writing \"2\" to", NULL, "0-1" },
    /* mems cannot be written (a readable list root cannot write): cpus,
     * which comes second, is untouched. */
    { "cpuset.mems", "/sys/devices/system/cpu/online", "writing \"1\" to", "0-7\n", NULL },
    /* cpus is a device, not a cgroup file: the write goes nowhere, and
     * reading it back is refused. */
    { "cpuset.cpus", "/dev/null", "not a regular file", NULL, "0-1" },
};

START_TEST(test_apply_fails)
{
    const struct fail_case *c = &fail_cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_cgroup cg;
    ism_bitmap_t *cpus = list("2"), *mems = list("1");
    char path[PATH_MAX];

    fake_cgroup(&cg);
    snprintf(path, sizeof(path), "%s/cg/%s", root, c->file);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(c->target ? symlink(c->target, path) : mkdir(path, 0755), 0);
    ck_assert_int_eq(ism_cpuset_apply(&cg, cpus, mems, &err), -1);
    ck_assert_msg(strstr(err.text, c->msg) && strstr(err.text, c->file), "case %d: %s", _i,
                  err.text);
    if (c->cpus_after)
        ck_assert_str_eq(get("cg/cpuset.cpus"), c->cpus_after);
    if (c->mems_after)
        ck_assert_str_eq(get("cg/cpuset.mems"), c->mems_after);
    ism_bitmap_destroy(cpus);
    ism_bitmap_destroy(mems);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oci_hook");
    TCase *tc = tcase_create("oci_hook");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_state_parse, 0, ARRAY_SIZE(state_cases));
    tcase_add_test(tc, test_state_bounds);
    tcase_add_loop_test(tc, test_cgroup_find, 0, ARRAY_SIZE(find_cases));
    tcase_add_test(tc, test_cgroup_find_no_process);
    tcase_add_loop_test(tc, test_cpuset_check, 0, ARRAY_SIZE(check_cases));
    tcase_add_test(tc, test_apply);
    tcase_add_loop_test(tc, test_apply_fails, 0, ARRAY_SIZE(fail_cases));
    suite_add_tcase(s, tc);
    return run_suite(s);
}
