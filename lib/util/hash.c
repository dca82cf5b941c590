/* hash.c - see hash.h */
#include <config.h>
#include <string.h>

#include "lib/util/hash.h"

void ism_fnv1a_add(uint64_t *h, const void *s, size_t n)
{
    const unsigned char *p = s;

    for (size_t i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= 1099511628211ULL;
    }
}

uint64_t ism_fnv1a_str(const char *s)
{
    uint64_t h = ISM_FNV1A_INIT;

    if (s)
        ism_fnv1a_add(&h, s, strlen(s));
    return h;
}
