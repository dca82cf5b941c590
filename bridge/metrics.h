/* metrics.h - Prometheus text exposition format, version 0.0.4.
 *
 * A growing text buffer the daemon fills on each scrape:
 *
 *     ism_metrics_reset(m);
 *     rc |= ism_metric(m, "isthmus_leader", "gauge", "1 on the leader.", NULL, 1);
 *     rc |= ism_metric(m, "isthmus_kube_requests_total", "counter",
 *                      "Requests sent.", "verb=\"GET\"", 12);
 *     rc |= ism_metric(m, "isthmus_kube_requests_total", "counter",
 *                      "Requests sent.", "verb=\"PUT\"", 3);
 *
 * gives
 *
 *     # HELP isthmus_leader 1 on the leader.
 *     # TYPE isthmus_leader gauge
 *     isthmus_leader 1
 *     # HELP isthmus_kube_requests_total Requests sent.
 *     # TYPE isthmus_kube_requests_total counter
 *     isthmus_kube_requests_total{verb="GET"} 12
 *     isthmus_kube_requests_total{verb="PUT"} 3
 *
 * Samples of one metric must be written one after the other: the format
 * allows one HELP/TYPE block per name, so a name that comes back after
 * another metric is refused.
 *
 * Ownership: m owns its text; ism_metrics_text() lends it until the next
 * call on m.  Not thread-safe: one writer at a time.
 */
#ifndef ISTHMUS_BRIDGE_METRICS_H
#define ISTHMUS_BRIDGE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

typedef struct ism_metrics ism_metrics_t;

ism_metrics_t *ism_metrics_create(ism_error_t *err);

/* Free m.  NULL is fine; errno is kept. */
void ism_metrics_destroy(ism_metrics_t *m);

/* Forget every sample (keeps the memory for the next scrape). */
void ism_metrics_reset(ism_metrics_t *m);

/* Add one sample.  name: [a-zA-Z_:][a-zA-Z0-9_:]*; type: "counter" or
 * "gauge"; help: any text (backslashes and newlines are escaped), NULL or
 * "" to leave the optional # HELP line out; labels: NULL or "" for none,
 * else the inside of the braces, already formatted, its values escaped
 * with ism_metrics_label_escape().  Integral values below 2^63 are
 * printed exactly, without exponent; others in the shortest form that
 * reads back to the same double; NaN and infinities as Prometheus spells
 * them.
 *
 * The first sample of a name writes its # HELP and # TYPE lines; the help
 * of later samples of that name is ignored and their type must be the
 * same.  -1 with EINVAL for a bad name or type, a type other than that of
 * the previous sample of the same name, or a name already closed by
 * another metric; ENOMEM.  On failure the text is unchanged, so calls can
 * be or-ed together and checked once. */
int ism_metric(ism_metrics_t *m, const char *name, const char *type, const char *help,
               const char *labels, double value);

/* A histogram: its # HELP/# TYPE block, one _bucket sample per bound
 * (counts cumulative, bounds increasing), the +Inf bucket (count), _sum and
 * _count.  Same errors as ism_metric. */
int ism_metric_histogram(ism_metrics_t *m, const char *name, const char *help,
                         const double *bounds, const uint64_t *counts, int n, double sum,
                         uint64_t count);
/* The text so far (NUL-terminated, "" when empty) and its length. */
const char *ism_metrics_text(const ism_metrics_t *m);
size_t ism_metrics_len(const ism_metrics_t *m);

/* value with backslash, double quote and newline escaped for use between
 * the quotes of a label value.  The caller frees the result; NULL with
 * ENOMEM (or EINVAL for a NULL value). */
char *ism_metrics_label_escape(const char *value);

#endif
