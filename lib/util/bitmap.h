/* bitmap.h - growable bit sets, and the Linux cpu-list text form.
 *
 * An ism_bitmap_t holds bit numbers 0 .. ISM_BITMAP_MAX_BITS-1 (cpu ids,
 * core indices, NUMA node ids).  It grows as bits are set.  The text form
 * is the kernel's cpu list, e.g. "0-3,8,10-11" (as in cpuset.cpus and
 * /sys/devices/system/cpu/online); the empty set is "".
 *
 * Ownership: functions named create, dup, parse and format return memory
 * the caller owns (ism_bitmap_destroy, free).  Nothing keeps a reference to
 * its arguments.  A bitmap is not locked: one thread at a time.
 */
#ifndef ISTHMUS_BITMAP_H
#define ISTHMUS_BITMAP_H

#include <stdbool.h>
#include "lib/util/error.h"

/* Larger than any kernel's NR_CPUS (8192); bounds what hostile input can
 * make us allocate. */
#define ISM_BITMAP_MAX_BITS 65536

typedef struct ism_bitmap ism_bitmap_t;

ism_bitmap_t *ism_bitmap_create(void);
void ism_bitmap_destroy(ism_bitmap_t *b);      /* NULL ok, keeps errno */
ism_bitmap_t *ism_bitmap_dup(const ism_bitmap_t *b);

/* -1 with EINVAL for bit >= ISM_BITMAP_MAX_BITS, ENOMEM when growing fails. */
int ism_bitmap_set(ism_bitmap_t *b, int bit);
int ism_bitmap_set_range(ism_bitmap_t *b, int first, int last);
void ism_bitmap_clear(ism_bitmap_t *b, int bit);
void ism_bitmap_zero(ism_bitmap_t *b);

bool ism_bitmap_test(const ism_bitmap_t *b, int bit);
int ism_bitmap_count(const ism_bitmap_t *b);
bool ism_bitmap_empty(const ism_bitmap_t *b);
/* Lowest set bit, or the next one after prev; -1 when there is none. */
int ism_bitmap_first(const ism_bitmap_t *b);
int ism_bitmap_next(const ism_bitmap_t *b, int prev);
int ism_bitmap_last(const ism_bitmap_t *b);

#define ism_bitmap_foreach(bit, b) \
    for ((bit) = ism_bitmap_first(b); (bit) >= 0; (bit) = ism_bitmap_next((b), (bit)))

/* dst = dst | src, dst & src, dst & ~src.  -1 with ENOMEM only for or. */
int ism_bitmap_or(ism_bitmap_t *dst, const ism_bitmap_t *src);
void ism_bitmap_and(ism_bitmap_t *dst, const ism_bitmap_t *src);
void ism_bitmap_andnot(ism_bitmap_t *dst, const ism_bitmap_t *src);

bool ism_bitmap_equal(const ism_bitmap_t *a, const ism_bitmap_t *b);
bool ism_bitmap_intersects(const ism_bitmap_t *a, const ism_bitmap_t *b);
bool ism_bitmap_is_subset(const ism_bitmap_t *sub, const ism_bitmap_t *super);

/* Parse a cpu list.  Accepts what the kernel writes ("0-3,8"), "" for the
 * empty set, and a trailing newline.  Rejects anything else (spaces, signs,
 * reversed ranges, ids >= ISM_BITMAP_MAX_BITS) with EINVAL and a message
 * naming the offending text. */
ism_bitmap_t *ism_bitmap_parse_list(const char *s, ism_error_t *err);

/* Canonical cpu list: ascending, maximal ranges, "" when empty. */
char *ism_bitmap_format_list(const ism_bitmap_t *b);

#endif
