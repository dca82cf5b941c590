/* bitmap.c - see bitmap.h */
#include <config.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/bitmap.h"

#define WORD_BITS 64

struct ism_bitmap {
    uint64_t *words;
    int nwords;
};

ism_bitmap_t *ism_bitmap_create(void)
{
    return calloc(1, sizeof(ism_bitmap_t));
}

void ism_bitmap_destroy(ism_bitmap_t *b)
{
    if (b) {
        int saved_errno = errno;
        free(b->words);
        free(b);
        errno = saved_errno;
    }
}

static int grow(ism_bitmap_t *b, int nwords)
{
    uint64_t *words;

    if (nwords <= b->nwords)
        return 0;
    if (!(words = realloc(b->words, (size_t)nwords * sizeof(*words))))
        return -1;
    memset(words + b->nwords, 0, (size_t)(nwords - b->nwords) * sizeof(*words));
    b->words = words;
    b->nwords = nwords;
    return 0;
}

ism_bitmap_t *ism_bitmap_dup(const ism_bitmap_t *b)
{
    ism_bitmap_t *copy;

    if (!b) {
        errno = EINVAL;
        return NULL;
    }
    if (!(copy = ism_bitmap_create()) || grow(copy, b->nwords) < 0) {
        ism_bitmap_destroy(copy);
        return NULL;
    }
    if (b->nwords)
        memcpy(copy->words, b->words, (size_t)b->nwords * sizeof(*b->words));
    return copy;
}

int ism_bitmap_set(ism_bitmap_t *b, int bit)
{
    return ism_bitmap_set_range(b, bit, bit);
}

int ism_bitmap_set_range(ism_bitmap_t *b, int first, int last)
{
    if (!b || first < 0 || last < first || last >= ISM_BITMAP_MAX_BITS) {
        errno = EINVAL;
        return -1;
    }
    if (grow(b, last / WORD_BITS + 1) < 0)
        return -1;
    for (int bit = first; bit <= last; bit++)
        b->words[bit / WORD_BITS] |= UINT64_C(1) << (bit % WORD_BITS);
    return 0;
}

void ism_bitmap_clear(ism_bitmap_t *b, int bit)
{
    if (b && bit >= 0 && bit / WORD_BITS < b->nwords)
        b->words[bit / WORD_BITS] &= ~(UINT64_C(1) << (bit % WORD_BITS));
}

void ism_bitmap_zero(ism_bitmap_t *b)
{
    if (b && b->nwords)
        memset(b->words, 0, (size_t)b->nwords * sizeof(*b->words));
}

bool ism_bitmap_test(const ism_bitmap_t *b, int bit)
{
    if (!b || bit < 0 || bit / WORD_BITS >= b->nwords)
        return false;
    return b->words[bit / WORD_BITS] & (UINT64_C(1) << (bit % WORD_BITS));
}

int ism_bitmap_count(const ism_bitmap_t *b)
{
    int n = 0;

    for (int i = 0; b && i < b->nwords; i++)
        n += __builtin_popcountll(b->words[i]);
    return n;
}

bool ism_bitmap_empty(const ism_bitmap_t *b)
{
    return ism_bitmap_first(b) < 0;
}

int ism_bitmap_next(const ism_bitmap_t *b, int prev)
{
    int bit = prev + 1;

    if (!b || bit < 0)
        return -1;
    for (int i = bit / WORD_BITS; i < b->nwords; i++) {
        uint64_t w = b->words[i];
        if (i == bit / WORD_BITS)
            w &= ~UINT64_C(0) << (bit % WORD_BITS);
        if (w)
            return i * WORD_BITS + __builtin_ctzll(w);
    }
    return -1;
}

int ism_bitmap_first(const ism_bitmap_t *b)
{
    return ism_bitmap_next(b, -1);
}

int ism_bitmap_last(const ism_bitmap_t *b)
{
    for (int i = b ? b->nwords - 1 : -1; i >= 0; i--) {
        if (b->words[i])
            return i * WORD_BITS + 63 - __builtin_clzll(b->words[i]);
    }
    return -1;
}

int ism_bitmap_or(ism_bitmap_t *dst, const ism_bitmap_t *src)
{
    if (!dst || !src) {
        errno = EINVAL;
        return -1;
    }
    if (grow(dst, src->nwords) < 0)
        return -1;
    for (int i = 0; i < src->nwords; i++)
        dst->words[i] |= src->words[i];
    return 0;
}

void ism_bitmap_and(ism_bitmap_t *dst, const ism_bitmap_t *src)
{
    for (int i = 0; dst && i < dst->nwords; i++)
        dst->words[i] &= (src && i < src->nwords) ? src->words[i] : 0;
}

void ism_bitmap_andnot(ism_bitmap_t *dst, const ism_bitmap_t *src)
{
    for (int i = 0; dst && src && i < dst->nwords && i < src->nwords; i++)
        dst->words[i] &= ~src->words[i];
}

static uint64_t word_at(const ism_bitmap_t *b, int i)
{
    return (b && i < b->nwords) ? b->words[i] : 0;
}

static int max_words(const ism_bitmap_t *a, const ism_bitmap_t *b)
{
    int na = a ? a->nwords : 0, nb = b ? b->nwords : 0;
    return na > nb ? na : nb;
}

bool ism_bitmap_equal(const ism_bitmap_t *a, const ism_bitmap_t *b)
{
    for (int i = 0; i < max_words(a, b); i++) {
        if (word_at(a, i) != word_at(b, i))
            return false;
    }
    return true;
}

bool ism_bitmap_intersects(const ism_bitmap_t *a, const ism_bitmap_t *b)
{
    for (int i = 0; i < max_words(a, b); i++) {
        if (word_at(a, i) & word_at(b, i))
            return true;
    }
    return false;
}

bool ism_bitmap_is_subset(const ism_bitmap_t *sub, const ism_bitmap_t *super)
{
    for (int i = 0; i < max_words(sub, super); i++) {
        if (word_at(sub, i) & ~word_at(super, i))
            return false;
    }
    return true;
}

/* Read a decimal cpu id at *p; advance *p past it. */
static int parse_id(const char **p, const char *list, ism_error_t *err)
{
    const char *start = *p;
    long v = 0;

    if (!isdigit((unsigned char)*start))
        return ism_err(err, EINVAL, "cpu list '%s': expected a number at '%s'", list, start);
    while (isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        if (v >= ISM_BITMAP_MAX_BITS)
            return ism_err(err, EINVAL, "cpu list '%s': id at '%s' exceeds %d", list, start,
                           ISM_BITMAP_MAX_BITS - 1);
        (*p)++;
    }
    return (int)v;
}

ism_bitmap_t *ism_bitmap_parse_list(const char *s, ism_error_t *err)
{
    ism_bitmap_t *b;
    const char *p = s;

    if (!s) {
        ism_err(err, EINVAL, "cpu list: missing argument");
        return NULL;
    }
    if (!(b = ism_bitmap_create())) {
        ism_err(err, ENOMEM, "cpu list: out of memory");
        return NULL;
    }
    if (*p == '\n' && p[1] == '\0')
        p++;
    while (*p) {
        int first, last;

        if ((first = parse_id(&p, s, err)) < 0)
            goto error;
        last = first;
        if (*p == '-') {
            p++;
            if ((last = parse_id(&p, s, err)) < 0)
                goto error;
            if (last < first) {
                ism_err(err, EINVAL, "cpu list '%s': range %d-%d is reversed", s, first, last);
                goto error;
            }
        }
        if (ism_bitmap_set_range(b, first, last) < 0) {
            ism_err(err, errno, "cpu list '%s': out of memory", s);
            goto error;
        }
        if (*p == ',' && p[1] != '\0' && p[1] != '\n')
            p++;
        else if (*p == '\n' && p[1] == '\0')
            p++;
        else if (*p != '\0') {
            ism_err(err, EINVAL, "cpu list '%s': unexpected '%c'", s, *p);
            goto error;
        }
    }
    return b;
error:
    ism_bitmap_destroy(b);
    return NULL;
}

char *ism_bitmap_format_list(const ism_bitmap_t *b)
{
    size_t len = 0, size = 64;
    char *out = malloc(size);
    int bit;

    if (!out)
        return NULL;
    out[0] = '\0';
    for (bit = ism_bitmap_first(b); bit >= 0;) {
        int last = bit, next;
        char item[32];
        int n;

        while ((next = ism_bitmap_next(b, last)) == last + 1)
            last = next;
        if (last == bit)
            n = snprintf(item, sizeof(item), "%s%d", len ? "," : "", bit);
        else
            n = snprintf(item, sizeof(item), "%s%d-%d", len ? "," : "", bit, last);
        if (len + (size_t)n + 1 > size) {
            char *bigger;
            size = (len + (size_t)n + 1) * 2;
            if (!(bigger = realloc(out, size))) {
                free(out);
                return NULL;
            }
            out = bigger;
        }
        memcpy(out + len, item, (size_t)n + 1);
        len += (size_t)n;
        bit = next;
    }
    return out;
}
