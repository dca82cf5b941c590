/* hash.h - FNV-1a, 64 bits: a fast hash of text for change detection and
 * content addressing between parties that trust each other (a cache file
 * in a root-owned directory, Extra fields only Slurm admins write).  Not a
 * defence against forgery. */
#ifndef ISTHMUS_HASH_H
#define ISTHMUS_HASH_H

#include <stddef.h>
#include <stdint.h>

#define ISM_FNV1A_INIT 14695981039346656037ULL

/* Fold n bytes of s into the running hash *h (start from ISM_FNV1A_INIT). */
void ism_fnv1a_add(uint64_t *h, const void *s, size_t n);
/* The hash of a NUL-terminated string ("" for NULL). */
uint64_t ism_fnv1a_str(const char *s);

#endif
