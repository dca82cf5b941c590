/* error.c - see error.h */
#include <config.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/error.h"

void ism_error_clear(ism_error_t *err)
{
    if (err)
        err->text[0] = '\0';
}

int ism_err(ism_error_t *err, int errnum, const char *fmt, ...)
{
    if (err && err->text[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof(err->text), fmt, ap);
        va_end(ap);
    }
    errno = errnum;
    return -1;
}

int ism_errprefix(ism_error_t *err, const char *fmt, ...)
{
    int saved_errno = errno;

    if (err && err->text[0] != '\0') {
        char prefix[sizeof(err->text)];
        char joined[sizeof(err->text)];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        /* Truncation keeps the front, which holds the context. */
        if (snprintf(joined, sizeof(joined), "%s: %s", prefix, err->text) < 0)
            joined[0] = '\0';
        memcpy(err->text, joined, sizeof(err->text));
    }
    errno = saved_errno;
    return -1;
}
