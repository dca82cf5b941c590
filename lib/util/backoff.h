/* backoff.h - the one capped exponential backoff of isthmus.
 *
 * After `failures` consecutive failures (1 for the first retry), the
 * ceiling is base_ms * 2^(failures - 1), capped at cap_ms, and the delay is
 * drawn with EQUAL JITTER: uniformly in [ceiling/2, ceiling].
 *
 * Why equal jitter rather than full jitter ([0, ceiling]): half of the wait
 * still grows exponentially, so a failing peer (an API server that answers
 * 429, a slurmctld that is restarting) never sees a retry sooner than half
 * the ceiling, even from a client that drew a small number, while the other
 * half still spreads a herd of clients that failed together.  Callers that
 * must honour a server's Retry-After take the larger of the two.
 *
 * ism_backoff_delay_r is a pure function of the policy, the failure count
 * and one random number, so tests can check it exactly; ism_backoff_delay
 * draws the number from random.h.  No state, no lock: any thread may call
 * them; the caller counts its failures (and resets the count on success).
 */
#ifndef ISTHMUS_BACKOFF_H
#define ISTHMUS_BACKOFF_H

#include <stdint.h>
#include "lib/util/error.h"

typedef struct {
    int64_t base_ms; /* the ceiling of the first retry, >= 1 */
    int64_t cap_ms;  /* the largest ceiling, >= base_ms */
} ism_backoff_t;

/* 0 when 1 <= base_ms <= cap_ms; else -1, EINVAL and err.  what names the
 * policy in the message ("slurm agent backoff"). */
int ism_backoff_check(const ism_backoff_t *b, const char *what, ism_error_t *err);

/* The ceiling after `failures` failures: 0 for failures <= 0 (no wait), else
 * min(cap_ms, base_ms * 2^(failures - 1)), without overflow.  An invalid
 * policy (NULL, base < 1, cap < base) gives 0. */
int64_t ism_backoff_ceiling(const ism_backoff_t *b, int failures);

/* The delay in ms after `failures` failures for the random number r:
 * ceiling/2 + r mod (ceiling - ceiling/2 + 1), i.e. in [ceiling/2, ceiling]. */
int64_t ism_backoff_delay_r(const ism_backoff_t *b, int failures, uint64_t r);

/* ism_backoff_delay_r with r from ism_random_u64(). */
int64_t ism_backoff_delay(const ism_backoff_t *b, int failures);

#endif
