/* metrics.c - see metrics.h */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

struct ism_metrics {
    char *buf;  /* NUL-terminated text, or NULL before the first sample */
    size_t len;
    size_t cap;
    char *last_name; /* the metric whose samples are being written */
    char *last_type;
};

ism_metrics_t *ism_metrics_create(ism_error_t *err)
{
    ism_metrics_t *m = calloc(1, sizeof(*m));

    if (!m)
        ism_err(err, ENOMEM, "out of memory");
    return m;
}

void ism_metrics_destroy(ism_metrics_t *m)
{
    int saved = errno;

    if (m) {
        free(m->buf);
        free(m->last_name);
        free(m->last_type);
        free(m);
    }
    errno = saved;
}

void ism_metrics_reset(ism_metrics_t *m)
{
    if (!m)
        return;
    m->len = 0;
    if (m->buf)
        m->buf[0] = '\0';
    free(m->last_name);
    free(m->last_type);
    m->last_name = m->last_type = NULL;
}

const char *ism_metrics_text(const ism_metrics_t *m)
{
    return m && m->buf ? m->buf : "";
}

size_t ism_metrics_len(const ism_metrics_t *m)
{
    return m ? m->len : 0;
}

static int reserve(ism_metrics_t *m, size_t more)
{
    size_t want = m->len + more + 1;
    size_t cap = m->cap ? m->cap : 1024;
    char *p;

    if (want <= m->cap)
        return 0;
    while (cap < want)
        cap *= 2;
    if (!(p = realloc(m->buf, cap)))
        return -1;
    m->buf = p;
    m->cap = cap;
    return 0;
}

static int append(ism_metrics_t *m, const char *s, size_t n)
{
    if (reserve(m, n) < 0)
        return -1;
    memcpy(m->buf + m->len, s, n);
    m->len += n;
    m->buf[m->len] = '\0';
    return 0;
}

static int append_str(ism_metrics_t *m, const char *s)
{
    return append(m, s, strlen(s));
}

/* Append s with each character of specials replaced by a backslash and
 * the matching character of replacements ("\n" becomes "\\n"). */
static int append_escaped(ism_metrics_t *m, const char *s, const char *specials,
                          const char *replacements)
{
    for (; *s; s++) {
        const char *hit = strchr(specials, *s);
        char esc[2] = { '\\', hit ? replacements[hit - specials] : *s };

        if (hit ? append(m, esc, 2) < 0 : append(m, s, 1) < 0)
            return -1;
    }
    return 0;
}

/* The sample value as Prometheus reads it: integers exactly (a %g format
 * would turn 2^53 into 9.007199254740992e+15), other numbers in the
 * shortest form that reads back the same. */
static void format_value(double v, char *out, size_t n)
{
    if (isnan(v)) {
        snprintf(out, n, "NaN");
    } else if (isinf(v)) {
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        snprintf(out, n, "0"); /* and not "-0" */
    } else if (v == trunc(v) && fabs(v) < 0x1p63) {
        snprintf(out, n, "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, n, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

static bool valid_name(const char *s)
{
    if (!s || !*s || strchr("0123456789", *s))
        return false;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:", *s))
            return false;
    return true;
}

/* True when name already had its block, earlier in the text. */
static bool name_closed(const ism_metrics_t *m, const char *name)
{
    const char *p = ism_metrics_text(m);
    size_t n = strlen(name);

    while ((p = strstr(p, "# TYPE "))) {
        p += strlen("# TYPE ");
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return true;
    }
    return false;
}

/* HELP is optional in the format: left out when there is no text. */
static int write_header(ism_metrics_t *m, const char *name, const char *type, const char *help)
{
    if (help && *help &&
        (append_str(m, "# HELP ") < 0 || append_str(m, name) < 0 || append_str(m, " ") < 0 ||
         append_escaped(m, help, "\\\n", "\\n") < 0 || append_str(m, "\n") < 0))
        return -1;
    if (append_str(m, "# TYPE ") < 0 || append_str(m, name) < 0 || append_str(m, " ") < 0 ||
        append_str(m, type) < 0 || append_str(m, "\n") < 0)
        return -1;
    return 0;
}

static int write_sample(ism_metrics_t *m, const char *name, const char *labels, double value)
{
    char num[64];

    format_value(value, num, sizeof(num));
    if (append_str(m, name) < 0)
        return -1;
    if (labels && *labels &&
        (append_str(m, "{") < 0 || append_str(m, labels) < 0 || append_str(m, "}") < 0))
        return -1;
    if (append_str(m, " ") < 0 || append_str(m, num) < 0 || append_str(m, "\n") < 0)
        return -1;
    return 0;
}

/* Make name/type the metric being written (copies; m unchanged on
 * failure). */
static int set_current(ism_metrics_t *m, const char *name, const char *type)
{
    char *n = strdup(name);
    char *t = strdup(type);

    if (!n || !t) {
        free(n);
        free(t);
        return -1;
    }
    free(m->last_name);
    free(m->last_type);
    m->last_name = n;
    m->last_type = t;
    return 0;
}

/* Out of memory while writing: the text as it was before; -1 (ENOMEM). */
static int roll_back(ism_metrics_t *m, size_t saved)
{
    m->len = saved;
    if (m->buf)
        m->buf[saved] = '\0';
    errno = ENOMEM;
    return -1;
}

int ism_metric(ism_metrics_t *m, const char *name, const char *type, const char *help,
               const char *labels, double value)
{
    size_t saved;
    bool same;

    if (!m || !valid_name(name) || !type ||
        (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0)) {
        errno = EINVAL;
        return -1;
    }
    same = m->last_name && strcmp(m->last_name, name) == 0;
    if (same ? strcmp(m->last_type, type) != 0 : name_closed(m, name)) {
        errno = EINVAL;
        return -1;
    }
    saved = m->len;
    if ((!same && write_header(m, name, type, help) < 0) ||
        write_sample(m, name, labels, value) < 0 || (!same && set_current(m, name, type) < 0)) {
        return roll_back(m, saved);
    }
    return 0;
}

int ism_metric_histogram(ism_metrics_t *m, const char *name, const char *help,
                         const double *bounds, const uint64_t *counts, int n, double sum,
                         uint64_t count)
{
    char sub[256], le[96], num[64];
    size_t saved;

    if (!m || !valid_name(name) || strlen(name) > 200 || n < 0 || (n && (!bounds || !counts)) ||
        name_closed(m, name)) {
        errno = EINVAL;
        return -1;
    }
    saved = m->len;
    int rc = write_header(m, name, "histogram", help);
    snprintf(sub, sizeof(sub), "%s_bucket", name);
    for (int i = 0; rc == 0 && i < n; i++) {
        format_value(bounds[i], num, sizeof(num));
        snprintf(le, sizeof(le), "le=\"%s\"", num);
        rc = write_sample(m, sub, le, (double)counts[i]);
    }
    if (rc == 0)
        rc = write_sample(m, sub, "le=\"+Inf\"", (double)count);
    snprintf(sub, sizeof(sub), "%s_sum", name);
    if (rc == 0)
        rc = write_sample(m, sub, NULL, sum);
    snprintf(sub, sizeof(sub), "%s_count", name);
    if (rc == 0)
        rc = write_sample(m, sub, NULL, (double)count);
    if (rc == 0)
        rc = set_current(m, name, "histogram");
    if (rc < 0) {
        return roll_back(m, saved);
    }
    return 0;
}

char *ism_metrics_label_escape(const char *value)
{
    ism_metrics_t tmp = { 0 };

    if (!value) {
        errno = EINVAL;
        return NULL;
    }
    if (reserve(&tmp, strlen(value)) < 0)
        return NULL;
    tmp.buf[0] = '\0';
    if (append_escaped(&tmp, value, "\\\"\n", "\\\"n") < 0) {
        free(tmp.buf);
        errno = ENOMEM;
        return NULL;
    }
    return tmp.buf;
}
