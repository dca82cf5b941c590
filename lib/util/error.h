/* error.h - the one error contract of isthmus.
 *
 * A function that can fail returns 0 (or a pointer) on success and -1 (or
 * NULL) on failure with errno set.  It takes an optional, caller-owned
 * ism_error_t where it writes one line saying what went wrong.  The first
 * message written wins: it is the root cause, and callers add context in
 * front of it with ism_errprefix() instead of overwriting it.  A failing
 * function has no other side effects.
 *
 * Initialise an ism_error_t with ISM_ERROR_INIT (or ism_error_clear) before
 * each call whose message you want to read.
 */
#ifndef ISTHMUS_ERROR_H
#define ISTHMUS_ERROR_H

#include <stddef.h>

typedef struct {
    char text[512];
} ism_error_t;

#define ISM_ERROR_INIT { { 0 } }

/* Empty err (NULL is accepted). */
void ism_error_clear(ism_error_t *err);

/* Set errno to errnum and, if err is non-NULL and still empty, format the
 * message into it.  Always returns -1, so an error path is one line:
 *     return ism_err(err, EINVAL, "bad cpu id '%s'", s);
 */
int ism_err(ism_error_t *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Put "<context>: " in front of the message already in err.  errno is kept.
 * Returns -1.  Does nothing to an empty err. */
int ism_errprefix(ism_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
