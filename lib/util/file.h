/* file.h - the one whole-file reader of isthmus, with a size bound, and
 * the one whole-file writer, atomic.
 *
 * Everything read whole (a kubeconfig, a topology cache, a JSON encoding on
 * stdin) comes from outside and may be anything: huge, a FIFO, a device, a
 * directory, a file that grows while it is read.  These functions read at
 * most max bytes and fail with a message naming the file and the problem.
 *
 * Both return a new NUL-terminated buffer the caller frees, and store its
 * length (without the NUL) in *len when len is non-NULL; the content may
 * itself hold NUL bytes.  On failure they return NULL with errno and err
 * (the message starts with the path or name):
 *   errno of open(2)    the file cannot be opened (ENOENT is left for the
 *                       caller to skip quietly: the message still says it)
 *   EISDIR, EINVAL      ism_file_read: not a regular file (a directory,
 *                       FIFO, device or socket)
 *   EFBIG               more than max bytes ("larger than N bytes")
 *   errno of read(2)    an I/O error
 *   ENOMEM              out of memory
 *   EINVAL              a NULL argument
 * Any thread may call them.
 */
#ifndef ISTHMUS_FILE_H
#define ISTHMUS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/util/error.h"

/* Read the regular file at path.  It is opened without blocking (a FIFO
 * cannot hang the caller) and must be a regular file; a file that grows
 * past max while being read fails with EFBIG. */
char *ism_file_read(const char *path, size_t max, size_t *len, ism_error_t *err);

/* Read the open descriptor fd (stdin, a pipe, a file) to end of file; name
 * is what the messages call it ("stdin").  fd is left open, at the point
 * where reading stopped.  Reading stops, with EFBIG, at max + 1 bytes:
 * endless input (a writer that never stops) cannot exhaust memory. */
char *ism_file_read_fd(int fd, const char *name, size_t max, size_t *len, ism_error_t *err);

/* Write len bytes of data to path atomically, so that readers (the
 * kubelet's CDI cache, a restarted plugin) see the old content or the new,
 * never a part: a temporary file in the same directory, written, given
 * mode, then renamed over path.  With durable, the file is fsync'ed before
 * the rename and the directory after it, so the new content survives a
 * power loss; without, a crash may lose the new file but never leaves a
 * torn one.  On failure path is unchanged, the temporary file is removed,
 * and -1 returns with errno and err naming the path. */
int ism_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          bool durable, ism_error_t *err);

#endif
