/* dra_file.c - see dra_file.h */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dra/dra_file.h"

char *ism_dra_read_fd(int fd, const char *name, size_t max, size_t *len, ism_error_t *err)
{
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);

    if (!buf)
        return ism_err(err, ENOMEM, "%s: out of memory", name), NULL;
    for (;;) {
        ssize_t n;

        if (used + 1 >= cap) {
            char *bigger;

            if (!(bigger = realloc(buf, cap * 2))) {
                free(buf);
                return ism_err(err, ENOMEM, "%s: out of memory", name), NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        n = read(fd, buf + used, cap - used - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;

            free(buf);
            return ism_err(err, e, "%s: %s", name, strerror(e)), NULL;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            free(buf);
            return ism_err(err, EFBIG, "%s: larger than %zu bytes", name, max), NULL;
        }
    }
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
}

char *ism_dra_read_file(const char *path, size_t max, size_t *len, ism_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    char *buf;
    int e;

    if (fd < 0)
        return ism_err(err, errno, "%s: %s", path, strerror(errno)), NULL;
    buf = ism_dra_read_fd(fd, path, max, len, err);
    e = errno;
    close(fd);
    errno = e;
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

int ism_dra_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
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
