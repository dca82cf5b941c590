/* dra_file.h - bounded reads and atomic writes for the node side.
 *
 * The kubelet plugin and the OCI hook read small files the kernel or
 * another program wrote (sysfs lists, /proc/<pid>/cgroup, mountinfo, our
 * checkpoint) and write files others read (CDI specs, the checkpoint).
 * Reads are bounded, so a hostile or corrupt file cannot make us allocate
 * without limit, and work on files whose size stat() does not tell
 * (sysfs, procfs).  Writes of whole files are atomic: readers see the old
 * content or the new one, never a part.
 *
 * TODO(merge): the read half belongs in lib/util/file.h once that lands;
 * this file then keeps only the atomic write.
 */
#ifndef ISTHMUS_DRA_FILE_H
#define ISTHMUS_DRA_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/util/error.h"

/* Read all of path, at most max bytes.  Returns a NUL-terminated buffer
 * the caller frees, its length in *len when len is non-NULL; NULL with
 * errno and err set when the file cannot be read (ENOENT, EACCES...) or is
 * larger than max (EFBIG).  The message names the path. */
char *ism_dra_read_file(const char *path, size_t max, size_t *len, ism_error_t *err);

/* Read all of fd (a pipe: stdin) the same way; name is for messages. */
char *ism_dra_read_fd(int fd, const char *name, size_t max, size_t *len, ism_error_t *err);

/* Write len bytes of data to path atomically: a temporary file in the same
 * directory, written, given mode, then renamed over path.  With durable,
 * the file is fsync'ed before the rename and the directory after it, so
 * the new content survives a power loss; without, a crash may lose the
 * new file but never leaves a torn one.  On failure path is unchanged and
 * the temporary file is removed.  -1 with err naming the path. */
int ism_dra_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         bool durable, ism_error_t *err);

#endif
