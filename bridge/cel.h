/* cel.h - the subset of CEL that isthmusd evaluates in device selectors.
 *
 * A ResourceClaim request for DeviceClass cpu.isthmus.io may carry CEL
 * selectors.  isthmusd allocates those devices itself, so it evaluates
 * them itself, but only over a small, documented subset of CEL (see
 * doc/isthmusd.8, "Selectors"):
 *
 *   device.driver
 *   device.attributes["DOMAIN"].NAME      device.attributes["DOMAIN"]["NAME"]
 *   "NAME" in device.attributes["DOMAIN"]          (presence)
 *   int, string and bool literals
 *   == != < <= > >=     x in [literal, ...]     && || !     ( )
 *
 * with CEL's own typing and runtime semantics, as the DRA allocator
 * (k8s.io/dynamic-resource-allocation/cel on cel-go) evaluates them.
 * Anything else is refused when compiled, never guessed at.
 */
#ifndef ISTHMUS_BRIDGE_CEL_H
#define ISTHMUS_BRIDGE_CEL_H

#include <stdbool.h>
#include <jansson.h>

#include "lib/util/error.h"

/* Bounds on an expression.  The length is the API server's own limit on a
 * selector (CELSelectorExpressionMaxLength, in bytes); the others keep
 * compilation and evaluation small and their recursion shallow. */
#define ISM_CEL_MAX_LENGTH 10240
#define ISM_CEL_MAX_DEPTH 32
#define ISM_CEL_MAX_LIST 256

typedef struct ism_cel ism_cel_t;

/* Parse and type-check expr.  Returns a compiled selector the caller
 * destroys, or NULL with errno set and a message in err that names the
 * expression and the position (1-based column) of the fault:
 *   EINVAL   not valid CEL, or a type error CEL itself reports
 *            (e.g. 1 == "a", !1, an expression that is not a bool)
 *   ENOTSUP  valid CEL, perhaps, but outside the subset (a function call,
 *            macro, arithmetic, ternary, double, map, capacity, ...)
 *   E2BIG    longer than ISM_CEL_MAX_LENGTH, nested deeper than
 *            ISM_CEL_MAX_DEPTH or a list longer than ISM_CEL_MAX_LIST
 * expr is copied; the caller keeps it. */
ism_cel_t *ism_cel_compile(const char *expr, ism_error_t *err);

/* Evaluate c over one device of a ResourceSlice: driver is the slice's
 * spec.driver, attributes the device's "attributes" object as in the API
 * (NULL for none); unqualified names belong to driver's domain.  Borrows
 * both.  On success sets *match and returns 0.  A runtime error, which the
 * DRA allocator treats as a failure of the whole allocation (not as a
 * device that does not match), returns -1 with errno set:
 *   ENOENT   an attribute the expression reads is not there ("no such key")
 *   EINVAL   an operation on the wrong types at run time ("no such
 *            overload"), a result that is not a bool, or an attribute the
 *            reference would not load (no value, a bad version), whether
 *            or not the expression reads it
 * and a message in err.  *match is untouched on failure. */
int ism_cel_eval(const ism_cel_t *c, const char *driver, const json_t *attributes, bool *match,
                 ism_error_t *err);

/* The expression c was compiled from (owned by c), or NULL. */
const char *ism_cel_expression(const ism_cel_t *c);

/* Free c (NULL is accepted); errno is kept. */
void ism_cel_destroy(ism_cel_t *c);

#endif
