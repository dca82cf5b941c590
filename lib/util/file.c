/* file.c - see file.h */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util/file.h"

#define FIRST_CHUNK 65536

/* Read fd into a buffer grown as needed up to max + 1 bytes; hint is the
 * expected size (0: unknown). */
static char *read_bounded(int fd, const char *name, size_t max, size_t hint, size_t *len,
                          ism_error_t *err)
{
    size_t size, n = 0;
    char *buf, *bigger;
    ssize_t r;

    if (max > SIZE_MAX / 2)
        max = SIZE_MAX / 2; /* max + 1 and the NUL must not wrap */
    /* Room for max + 1 bytes of content (one past the bound shows the
     * input is too large) plus the NUL, never more. */
    size = hint ? hint + 1 : FIRST_CHUNK;
    if (size > max)
        size = max + 1;
    if (!(buf = malloc(size + 1))) {
        ism_err(err, ENOMEM, "%s: out of memory", name);
        return NULL;
    }
    for (;;) {
        if (n == size) {
            if (size > max)
                break; /* read max + 1 bytes: too large */
            size = size > (max + 1) / 2 ? max + 1 : size * 2;
            if (!(bigger = realloc(buf, size + 1))) {
                ism_err(err, ENOMEM, "%s: out of memory", name);
                goto error;
            }
            buf = bigger;
        }
        r = read(fd, buf + n, size - n);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            ism_err(err, errno, "%s: read error: %s", name, strerror(errno));
            goto error;
        }
        n += (size_t)r;
    }
    if (n > max) {
        ism_err(err, EFBIG, "%s: larger than %zu bytes", name, max);
        goto error;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
error:
    free(buf);
    return NULL;
}

char *ism_file_read_fd(int fd, const char *name, size_t max, size_t *len, ism_error_t *err)
{
    if (!name)
        name = "input";
    if (fd < 0) {
        ism_err(err, EINVAL, "%s: not an open file", name);
        return NULL;
    }
    return read_bounded(fd, name, max, 0, len, err);
}

char *ism_file_read(const char *path, size_t max, size_t *len, ism_error_t *err)
{
    struct stat st;
    char *buf = NULL;
    int fd, saved;

    if (!path) {
        ism_err(err, EINVAL, "no file name");
        return NULL;
    }
    /* O_NONBLOCK: opening a FIFO without a writer would wait for one. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
        ism_err(err, errno, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0)
        ism_err(err, errno, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        ism_err(err, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, "%s: not a regular file", path);
    else if (st.st_size < 0 || (unsigned long long)st.st_size > max)
        ism_err(err, EFBIG, "%s: larger than %zu bytes", path, max);
    else
        buf = read_bounded(fd, path, max, (size_t)st.st_size, len, err);
    saved = errno;
    close(fd);
    errno = saved;
    return buf;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int ism_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          bool durable, ism_error_t *err)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    int fd, dfd, e;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp) ||
        snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return ism_err(err, ENAMETOOLONG, "%s: path too long", path);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return ism_err(err, errno, "%s: cannot create a temporary file: %s", path,
                       strerror(errno));
    if (write_all(fd, data, len) < 0 || fchmod(fd, mode) < 0 || (durable && fsync(fd) < 0)) {
        e = errno;
        close(fd);
        unlink(tmp);
        return ism_err(err, e, "%s: %s", tmp, strerror(e));
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        return ism_err(err, e, "%s: %s", path, strerror(e));
    }
    /* The rename is durable once the directory is. */
    if (durable && (dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}
