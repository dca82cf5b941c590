/* Unit tests: lib/util/file.c (the one whole-file reader and writer). */
#include <config.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util/file.h"
#include "unit.h"

static char dir[PATH_MAX];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "%s/isthmus-test-file.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *put(const char *name, const char *text, size_t len)
{
    static char path[PATH_MAX + 64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* Sizes around the bound (max 10) and the first growth step. */
static const struct {
    size_t len, max;
    int ok;
} sizes[] = {
    { 0, 10, 1 },     { 1, 10, 1 },          { 10, 10, 1 },         { 11, 10, 0 },
    { 5000, 10, 0 },  { 0, 0, 1 },           { 1, 0, 0 },           { 65535, 65536, 1 },
    { 65536, 65536, 1 },                     { 65537, 65536, 0 },   { 200000, 1 << 20, 1 },
    { 200000, 199999, 0 },                   { 100, SIZE_MAX, 1 },
};

START_TEST(path_sizes)
{
    ism_error_t err = ISM_ERROR_INIT;
    size_t len = 12345, n = sizes[_i].len;
    char *text = malloc(n + 1), *got;
    const char *path;

    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    make_dir();
    path = put("f", text, n);
    got = ism_file_read(path, sizes[_i].max, &len, &err);
    if (sizes[_i].ok) {
        ck_assert_msg(got != NULL, "%s", err.text);
        ck_assert_uint_eq(len, n);
        ck_assert(memcmp(got, text, n) == 0);
        ck_assert_int_eq(got[n], '\0');
    } else {
        char want[PATH_MAX + 128];

        ck_assert_ptr_null(got);
        ck_assert_int_eq(errno, EFBIG);
        ck_assert_uint_eq(len, 12345);
        snprintf(want, sizeof(want), "%s: larger than %zu bytes", path, sizes[_i].max);
        ck_assert_str_eq(err.text, want);
    }
    free(got);
    free(text);
    remove_dir();
}
END_TEST

/* Content with NUL bytes keeps its length; len may be NULL. */
START_TEST(path_binary_and_null_len)
{
    ism_error_t err = ISM_ERROR_INIT;
    size_t len = 0;
    char *got;
    const char *path;

    make_dir();
    path = put("bin", "a\0b\0", 4);
    ck_assert_ptr_nonnull(got = ism_file_read(path, 100, &len, &err));
    ck_assert_uint_eq(len, 4);
    ck_assert(memcmp(got, "a\0b\0", 5) == 0);
    free(got);
    ck_assert_ptr_nonnull(got = ism_file_read(path, 100, NULL, &err));
    free(got);
    remove_dir();
}
END_TEST

START_TEST(path_errors)
{
    ism_error_t err = ISM_ERROR_INIT;
    char path[PATH_MAX + 64], want[PATH_MAX + 128];

    make_dir();
    snprintf(path, sizeof(path), "%s/missing", dir);
    ck_assert_ptr_null(ism_file_read(path, 100, NULL, &err));
    ck_assert_int_eq(errno, ENOENT);
    snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
    ck_assert_str_eq(err.text, want);

    ism_error_clear(&err);
    ck_assert_ptr_null(ism_file_read(dir, 100, NULL, &err));
    ck_assert_int_eq(errno, EISDIR);
    snprintf(want, sizeof(want), "%s: not a regular file", dir);
    ck_assert_str_eq(err.text, want);

    /* A FIFO without a writer neither hangs nor is read. */
    ism_error_clear(&err);
    snprintf(path, sizeof(path), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_ptr_null(ism_file_read(path, 100, NULL, &err));
    ck_assert_int_eq(errno, EINVAL);
    snprintf(want, sizeof(want), "%s: not a regular file", path);
    ck_assert_str_eq(err.text, want);

    /* A device: endless zeroes are not a regular file. */
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_file_read("/dev/zero", 100, NULL, &err));
    ck_assert_str_eq(err.text, "/dev/zero: not a regular file");

    ism_error_clear(&err);
    ck_assert_ptr_null(ism_file_read(NULL, 100, NULL, &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err.text, "no file name");
    remove_dir();
}
END_TEST

/* A read error is reported with the path: a directory descriptor read as
 * a stream gives EISDIR from read(2). */
START_TEST(fd_read_error)
{
    ism_error_t err = ISM_ERROR_INIT;
    int fd = open("/", O_RDONLY | O_DIRECTORY);

    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_null(ism_file_read_fd(fd, "root", 100, NULL, &err));
    ck_assert_int_eq(errno, EISDIR);
    ck_assert_str_eq(err.text, "root: read error: Is a directory");
    close(fd);
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_file_read_fd(-1, "stdin", 100, NULL, &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err.text, "stdin: not an open file");
}
END_TEST

struct writer {
    int fd;
    size_t total;
};

/* Writes total bytes (or, with total 0, until the reader closes). */
static void *write_pipe(void *arg)
{
    struct writer *w = arg;
    char chunk[4096];
    size_t sent = 0;

    memset(chunk, 'x', sizeof(chunk));
    while (w->total == 0 || sent < w->total) {
        size_t n = w->total && w->total - sent < sizeof(chunk) ? w->total - sent : sizeof(chunk);
        ssize_t r = write(w->fd, chunk, n);
        if (r <= 0)
            break;
        sent += (size_t)r;
    }
    close(w->fd);
    return NULL;
}

static const struct {
    size_t total, max;
    int ok;
} pipes[] = {
    { 0, 1 << 20, 0 }, /* endless: stops at the bound */
    { 300000, 1 << 20, 1 },
    { 300000, 300000, 1 },
    { 300001, 300000, 0 },
    { 1, 1, 1 },
};

START_TEST(fd_pipe_bound)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct writer w = { -1, pipes[_i].total };
    pthread_t t;
    size_t len = 0;
    int fds[2];
    char *got;

    ck_assert_int_eq(pipe(fds), 0);
    w.fd = fds[1];
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(pthread_create(&t, NULL, write_pipe, &w), 0);
    got = ism_file_read_fd(fds[0], "stdin", pipes[_i].max, &len, &err);
    close(fds[0]); /* an endless writer now fails with EPIPE */
    pthread_join(t, NULL);
    if (pipes[_i].ok) {
        ck_assert_msg(got != NULL, "%s", err.text);
        ck_assert_uint_eq(len, pipes[_i].total);
        ck_assert_uint_eq(strlen(got), len);
    } else {
        char want[128];

        ck_assert_ptr_null(got);
        ck_assert_int_eq(errno, EFBIG);
        snprintf(want, sizeof(want), "stdin: larger than %zu bytes", pipes[_i].max);
        ck_assert_str_eq(err.text, want);
    }
    free(got);
}
END_TEST

/* Files in dir (the temporary ones show as a leak). */
static int entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

START_TEST(write_atomic)
{
    ism_error_t err = ISM_ERROR_INIT;
    char path[PATH_MAX + 64], long_path[PATH_MAX + 16], *got;
    struct stat st;
    size_t len;

    make_dir();
    snprintf(path, sizeof(path), "%s/spec.json", dir);
    for (int durable = 0; durable < 2; durable++) {
        ck_assert_int_eq(ism_file_write_atomic(path, "first", 5, 0644, durable, &err), 0);
        ck_assert_int_eq(ism_file_write_atomic(path, "a\0b", 3, 0600, durable, &err), 0);
        ck_assert_ptr_nonnull(got = ism_file_read(path, 100, &len, &err));
        ck_assert_uint_eq(len, 3);
        ck_assert(memcmp(got, "a\0b", 3) == 0);
        free(got);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(entries(), 1);
    }

    /* A directory that is not there: nothing written, the path named. */
    snprintf(path, sizeof(path), "%s/missing/spec.json", dir);
    ck_assert_int_eq(ism_file_write_atomic(path, "x", 1, 0644, true, &err), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(strstr(err.text, path) == err.text, "%s", err.text);

    /* The target is a directory: the rename fails, the temporary goes. */
    ism_error_clear(&err);
    snprintf(path, sizeof(path), "%s/sub", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(ism_file_write_atomic(path, "x", 1, 0644, false, &err), -1);
    ck_assert_int_eq(errno, EISDIR);
    ck_assert_int_eq(entries(), 2);

    ism_error_clear(&err);
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    ck_assert_int_eq(ism_file_write_atomic(long_path, "x", 1, 0644, false, &err), -1);
    ck_assert_int_eq(errno, ENAMETOOLONG);
    remove_dir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("file");
    TCase *tc = tcase_create("file");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, path_sizes, 0, ARRAY_SIZE(sizes));
    tcase_add_test(tc, path_binary_and_null_len);
    tcase_add_test(tc, path_errors);
    tcase_add_test(tc, fd_read_error);
    tcase_add_loop_test(tc, fd_pipe_bound, 0, ARRAY_SIZE(pipes));
    tcase_add_test(tc, write_atomic);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
