/* random.h - a fast, thread-safe random source for jitter and unique
 * suffixes.  Not for secrets: it is a statistical generator (splitmix64),
 * seeded once per thread from getrandom(2), falling back to the clock, the
 * process and thread ids when the kernel has no entropy to give yet.
 *
 * Any thread may call these; each thread has its own state, so there is no
 * lock and no shared seed.
 */
#ifndef ISTHMUS_RANDOM_H
#define ISTHMUS_RANDOM_H

#include <stdint.h>

/* 64 random bits. */
uint64_t ism_random_u64(void);

/* A random number in [0, n), without modulo bias; 0 when n <= 1. */
int64_t ism_random_below(int64_t n);

#endif
