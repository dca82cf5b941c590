/* names.h - the one validator of Kubernetes names.
 *
 * The API server refuses an object whose name, namespace or labels break
 * these rules, so whatever isthmus builds a name from (a Slurm node name, a
 * pool, a namespace from a file) is checked here first, with the same rules
 * as the API server's validation:
 *
 *   ISM_NAME_DNS_LABEL      RFC 1123 label: 1-63 of [a-z0-9-], starting and
 *                           ending with [a-z0-9].  Namespaces, Service names.
 *   ISM_NAME_DNS_SUBDOMAIN  RFC 1123 subdomain: 1-253 characters, labels of
 *                           [a-z0-9-] (each starting and ending with
 *                           [a-z0-9]) joined by '.'.  Most object names
 *                           (Nodes, ResourceSlices, ResourceClaims).
 *   ISM_NAME_LABEL_VALUE    a label value: empty, or 1-63 of [A-Za-z0-9_.-]
 *                           starting and ending with [A-Za-z0-9].
 *   ISM_NAME_QUALIFIED      a label key or attribute name: [prefix/]name,
 *                           prefix a DNS subdomain, name 1-63 of
 *                           [A-Za-z0-9_.-] starting and ending with
 *                           [A-Za-z0-9].
 *
 * Pure functions of their arguments (no libcurl, no allocation): any thread
 * may call them, and the bridge's pure model links them.
 */
#ifndef ISTHMUS_NAMES_H
#define ISTHMUS_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include "lib/util/error.h"

enum ism_name_kind {
    ISM_NAME_DNS_LABEL,
    ISM_NAME_DNS_SUBDOMAIN,
    ISM_NAME_LABEL_VALUE,
    ISM_NAME_QUALIFIED,
};

/* True when the len bytes at s are a valid name of that kind (s need not
 * be NUL-terminated; a NUL byte inside is invalid).  NULL is invalid. */
bool ism_name_valid_n(enum ism_name_kind kind, const char *s, size_t len);

/* ism_name_valid_n over the string s (NULL is invalid). */
bool ism_name_valid(enum ism_name_kind kind, const char *s);

/* Why s is not a name of that kind ("is empty", "is longer than 63
 * characters", "contains 'X'", ...), or NULL when it is valid.  A static
 * string or one in buf (size at least 64). */
const char *ism_name_why(enum ism_name_kind kind, const char *s, char *buf, size_t size);

/* 0 when s is valid; else -1, EINVAL and err:
 *     <what> '<s, cut at 100 bytes>' is not a <kind>: <why>
 * e.g. "namespace 'Foo' is not a DNS-1123 label: contains 'F'". */
int ism_name_check(enum ism_name_kind kind, const char *s, const char *what, ism_error_t *err);

/* "DNS-1123 label", "DNS-1123 subdomain", "label value", "qualified name". */
const char *ism_name_kind_text(enum ism_name_kind kind);

#endif
