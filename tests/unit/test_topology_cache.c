/* Unit tests: the topology cache (lib/topology_cache.c).
 *
 * The key is computed over a fake sysfs tree built in a temporary
 * directory, so the tests can change what the "kernel" says and see the
 * key follow; the real /sys must give a key too.
 */
#include <config.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/topology/topology_cache.h"
#include "unit.h"

static char dir[64];

static void put(const char *rel, const char *text)
{
    char path[512], cmd[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

/* A 2-cpu, 1-node machine. */
static void setup(void)
{
    strcpy(dir, "/tmp/isthmus-cache-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    put("devices/system/cpu/possible", "0-1\n");
    put("devices/system/cpu/online", "0-1\n");
    put("devices/system/node/possible", "0\n");
    put("devices/system/node/online", "0\n");
    put("devices/system/node/node0/cpulist", "0-1\n");
    for (int c = 0; c < 2; c++) {
        char rel[128], v[8];
        snprintf(v, sizeof(v), "%d\n", c);
        snprintf(rel, sizeof(rel), "devices/system/cpu/cpu%d/topology/core_id", c);
        put(rel, v);
        snprintf(rel, sizeof(rel), "devices/system/cpu/cpu%d/topology/physical_package_id", c);
        put(rel, "0\n");
        snprintf(rel, sizeof(rel), "devices/system/cpu/cpu%d/topology/thread_siblings_list", c);
        put(rel, v);
    }
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void key_of(char *key)
{
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_msg(ism_topo_cache_key(dir, key, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(strlen(key), ISM_TOPO_CACHE_KEY_LEN);
}

/* Each change the kernel can report gives another key; rereading gives the same. */
static const struct { const char *rel, *text; } changes[] = {
    { "devices/system/cpu/online", "0\n" },
    { "devices/system/cpu/possible", "0-3\n" },
    { "devices/system/cpu/cpu1/topology/core_id", "0\n" },
    { "devices/system/cpu/cpu1/topology/physical_package_id", "1\n" },
    { "devices/system/cpu/cpu0/topology/thread_siblings_list", "0-1\n" },
    { "devices/system/node/online", "0-1\n" },
    { "devices/system/node/node0/cpulist", "0\n" },
};

START_TEST(key_follows_the_machine)
{
    char before[ISM_TOPO_CACHE_KEY_LEN + 1], again[ISM_TOPO_CACHE_KEY_LEN + 1];
    char after[ISM_TOPO_CACHE_KEY_LEN + 1];

    key_of(before);
    key_of(again);
    ck_assert_str_eq(before, again);
    put(changes[_i].rel, changes[_i].text);
    key_of(after);
    ck_assert_msg(strcmp(before, after) != 0, "%s changed, key did not", changes[_i].rel);
}
END_TEST

START_TEST(key_errors)
{
    char key[ISM_TOPO_CACHE_KEY_LEN + 1];
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_int_eq(ism_topo_cache_key("/nonexistent", key, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "devices/system/cpu/online"));
    put("devices/system/cpu/online", "0-x\n");
    ism_error_clear(&err);
    ck_assert_int_eq(ism_topo_cache_key(dir, key, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, dir));
    /* The machine where the tests run has a key. */
    ck_assert_int_eq(ism_topo_cache_key("/sys", key, NULL), 0);
}
END_TEST

static char *cache_path(void)
{
    static char path[256];

    snprintf(path, sizeof(path), "%s/cache/sub/topology.json", dir);
    return path;
}

START_TEST(write_then_read)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *topo = ism_topo_from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2", &err), *back;
    char key[ISM_TOPO_CACHE_KEY_LEN + 1];
    struct stat st;

    ck_assert_ptr_nonnull(topo);
    key_of(key);
    /* The parent directory cache/ does not exist: only the last level is made. */
    ck_assert_int_eq(ism_topo_cache_write(cache_path(), key, topo, &err), -1);
    ck_assert_int_eq(errno, ENOENT);
    put("cache/.keep", "");
    ck_assert_msg(ism_topo_cache_write(cache_path(), key, topo, &err) == 0, "%s", err.text);
    ck_assert_int_eq(stat(cache_path(), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    ck_assert_msg((back = ism_topo_cache_read(cache_path(), key, &err)) != NULL, "%s", err.text);
    ck_assert(ism_topo_equal(topo, back));
    ism_topo_destroy(back);
    /* Another key: stale. */
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_topo_cache_read(cache_path(), "0123456789abcdef", &err));
    ck_assert_int_eq(errno, ESTALE);
    ck_assert_ptr_nonnull(strstr(err.text, "stale"));
    ism_topo_destroy(topo);
}
END_TEST

/* Corrupt files: every one is refused with EINVAL and a reason. */
static const struct { const char *text, *error; } corrupt[] = {
    { "", "bad first line" },
    { "garbage\n", "bad first line" },
    { "isthmus-topology-cache 1 \n{}", "bad first line" },
    { "isthmus-topology-cache 2 0123456789abcdef\n{}", "bad first line" },
    { "isthmus-topology-cache 1 0123456789ABCDEF\n{}", "bad first line" },
    { "isthmus-topology-cache 1 0123456789abcdef", "bad first line" },
    { "isthmus-topology-cache 1 0123456789abcdef\n{\"version\":1", "topology.json" },
    { "isthmus-topology-cache 1 0123456789abcdef\n[]", "topology.json" },
};

START_TEST(corrupt_files)
{
    ism_error_t err = ISM_ERROR_INIT;
    char path[256];

    put("topology.json", corrupt[_i].text);
    snprintf(path, sizeof(path), "%s/topology.json", dir);
    ck_assert_ptr_null(ism_topo_cache_read(path, "0123456789abcdef", &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, corrupt[_i].error), "'%s': %s", corrupt[_i].text, err.text);
}
END_TEST

START_TEST(missing_and_huge)
{
    ism_error_t err = ISM_ERROR_INIT;
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/none.json", dir);
    ck_assert_ptr_null(ism_topo_cache_read(path, "0123456789abcdef", &err));
    ck_assert_int_eq(errno, ENOENT);
    snprintf(path, sizeof(path), "%s/huge.json", dir);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    ck_assert_int_eq(fseek(f, ISM_TOPO_CACHE_MAX_BYTES + 1, SEEK_SET), 0);
    fputc('x', f);
    fclose(f);
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_topo_cache_read(path, "0123456789abcdef", &err));
    ck_assert_int_eq(errno, EFBIG);
    ck_assert_ptr_nonnull(strstr(err.text, "larger than 16777216 bytes"));
    /* A directory in its place is not read. */
    put("dir.json/.keep", "");
    snprintf(path, sizeof(path), "%s/dir.json", dir);
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_topo_cache_read(path, "0123456789abcdef", &err));
    ck_assert_int_eq(errno, EISDIR);
    ck_assert_ptr_nonnull(strstr(err.text, "not a regular file"));
}
END_TEST

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Regression (gcc -fanalyzer): when fprintf failed, the FILE of the
 * temporary file was dropped without fclose, leaking its memory and its
 * descriptor.  A file size limit makes the write fail inside fprintf (the
 * encoding is larger than the stdio buffer); the write then fails cleanly:
 * -1, the reason, no descriptor left open, no temporary file left behind,
 * path unchanged.  Under valgrind the lost FILE was also a definite leak. */
START_TEST(write_failure_closes)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *topo = ism_topo_from_synthetic("pack:8 numa:2 core:32 pu:2", &err);
    char key[ISM_TOPO_CACHE_KEY_LEN + 1], sub[300], *json;
    struct rlimit saved, small;
    void (*old)(int);
    int before, rc, write_errno;
    DIR *d;
    struct dirent *e;

    ck_assert_ptr_nonnull(topo);
    ck_assert_ptr_nonnull(json = ism_topo_encode(topo, NULL));
    ck_assert_uint_gt(strlen(json), 2 * BUFSIZ); /* fprintf itself must write */
    free(json);
    key_of(key);
    put("cache/.keep", "");
    before = count_fds();
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 64;
    old = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    rc = ism_topo_cache_write(cache_path(), key, topo, &err);
    write_errno = errno;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(count_fds(), before);
    ck_assert_int_eq(write_errno, EFBIG);
    ck_assert_msg(strstr(err.text, "write failed: File too large"), "%s", err.text);
    ck_assert_int_eq(access(cache_path(), F_OK), -1);
    snprintf(sub, sizeof(sub), "%s/cache/sub", dir);
    ck_assert_ptr_nonnull(d = opendir(sub));
    while ((e = readdir(d)))
        ck_assert_msg(e->d_name[0] == '.', "left behind: %s", e->d_name);
    closedir(d);
    ism_topo_destroy(topo);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("topology_cache");
    TCase *tc = tcase_create("cache");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, key_follows_the_machine, 0, ARRAY_SIZE(changes));
    tcase_add_test(tc, key_errors);
    tcase_add_test(tc, write_then_read);
    tcase_add_loop_test(tc, corrupt_files, 0, ARRAY_SIZE(corrupt));
    tcase_add_test(tc, missing_and_huge);
    tcase_add_test(tc, write_failure_closes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
