/* random.c - see random.h */
#include <config.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/random.h"

static _Thread_local uint64_t state;
static _Thread_local int seeded;

static void seed(void)
{
    uint64_t s = 0;

    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        s ^= (uint64_t)getpid() << 32;
        s ^= (uint64_t)syscall(SYS_gettid) << 16;
        s ^= (uint64_t)(uintptr_t)&state;
    }
    state = s;
    seeded = 1;
}

uint64_t ism_random_u64(void)
{
    uint64_t z;

    if (!seeded)
        seed();
    /* splitmix64: a Weyl sequence through a bijective mixer. */
    z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t ism_random_below(int64_t n)
{
    uint64_t bound, limit, r;

    if (n <= 1)
        return 0;
    bound = (uint64_t)n;
    /* Reject the top partial range so every value is equally likely. */
    limit = UINT64_MAX - UINT64_MAX % bound;
    do
        r = ism_random_u64();
    while (r >= limit);
    return (int64_t)(r % bound);
}
