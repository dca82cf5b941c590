/* backoff.c - see backoff.h */
#include <config.h>
#include <errno.h>

#include "lib/util/backoff.h"
#include "lib/util/random.h"

static int valid(const ism_backoff_t *b)
{
    return b && b->base_ms >= 1 && b->cap_ms >= b->base_ms;
}

int ism_backoff_check(const ism_backoff_t *b, const char *what, ism_error_t *err)
{
    if (!valid(b))
        return ism_err(err, EINVAL, "%s: needs 1 <= first delay <= cap (ms)",
                       what ? what : "backoff");
    return 0;
}

int64_t ism_backoff_ceiling(const ism_backoff_t *b, int failures)
{
    int64_t c;

    if (!valid(b) || failures <= 0)
        return 0;
    c = b->base_ms;
    /* Double until the cap: at most 63 steps, never past INT64_MAX. */
    for (int i = 1; i < failures && c < b->cap_ms; i++)
        c = c > b->cap_ms / 2 ? b->cap_ms : c * 2;
    return c < b->cap_ms ? c : b->cap_ms;
}

int64_t ism_backoff_delay_r(const ism_backoff_t *b, int failures, uint64_t r)
{
    int64_t c = ism_backoff_ceiling(b, failures), low = c / 2;

    if (c == 0)
        return 0;
    return low + (int64_t)(r % (uint64_t)(c - low + 1));
}

int64_t ism_backoff_delay(const ism_backoff_t *b, int failures)
{
    return ism_backoff_delay_r(b, failures, ism_random_u64());
}
