/* names.c - see names.h */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/names.h"

#define LABEL_MAX 63
#define SUBDOMAIN_MAX 253

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool alnum(char c)
{
    return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* "contains 'c'", with unprintable bytes as \xNN. */
static const char *bad_char(char c, char *buf, size_t size)
{
    unsigned char u = (unsigned char)c;

    if (u >= 0x21 && u < 0x7f && u != '\'')
        snprintf(buf, size, "contains '%c'", c);
    else
        snprintf(buf, size, "contains the byte 0x%02x", u);
    return buf;
}

/* One RFC 1123 label of len bytes (len >= 1). */
static const char *why_dns_label(const char *s, size_t len, char *buf, size_t size)
{
    for (size_t i = 0; i < len; i++)
        if (!lower_alnum(s[i]) && s[i] != '-')
            return bad_char(s[i], buf, size);
    if (s[0] == '-' || s[len - 1] == '-')
        return "must start and end with a lowercase letter or digit";
    return NULL;
}

static const char *why_subdomain(const char *s, size_t len, char *buf, size_t size)
{
    const char *why;

    if (len == 0)
        return "is empty";
    if (len > SUBDOMAIN_MAX)
        return "is longer than 253 characters";
    for (size_t start = 0, end; start <= len; start = end + 1) {
        const char *dot = memchr(s + start, '.', len - start);

        end = dot ? (size_t)(dot - s) : len;
        if (end == start)
            return "has an empty part between dots";
        if ((why = why_dns_label(s + start, end - start, buf, size)))
            return why;
    }
    return NULL;
}

/* A label value or the name part of a qualified name (len >= 1). */
static const char *why_value(const char *s, size_t len, char *buf, size_t size)
{
    if (len > LABEL_MAX)
        return "is longer than 63 characters";
    for (size_t i = 0; i < len; i++)
        if (!alnum(s[i]) && !strchr("-_.", s[i] ? s[i] : 'x'))
            return bad_char(s[i], buf, size);
    if (!alnum(s[0]) || !alnum(s[len - 1]))
        return "must start and end with a letter or digit";
    return NULL;
}

static const char *why_n(enum ism_name_kind kind, const char *s, size_t len, char *buf,
                         size_t size)
{
    const char *slash, *why;

    if (!s)
        return "is missing";
    switch (kind) {
    case ISM_NAME_DNS_LABEL:
        if (len == 0)
            return "is empty";
        if (len > LABEL_MAX)
            return "is longer than 63 characters";
        return why_dns_label(s, len, buf, size);
    case ISM_NAME_DNS_SUBDOMAIN:
        return why_subdomain(s, len, buf, size);
    case ISM_NAME_LABEL_VALUE:
        return len == 0 ? NULL : why_value(s, len, buf, size);
    case ISM_NAME_QUALIFIED:
        if (!(slash = memchr(s, '/', len)))
            return len == 0 ? "is empty" : why_value(s, len, buf, size);
        if (memchr(slash + 1, '/', len - (size_t)(slash + 1 - s)))
            return "has more than one '/'";
        if (slash == s)
            return "has an empty prefix before '/'";
        if ((why = why_subdomain(s, (size_t)(slash - s), buf, size))) {
            /* Say the problem is in the prefix. */
            char part[64];

            snprintf(part, sizeof(part), "%s", why);
            snprintf(buf, size, "its prefix %s", part);
            return buf;
        }
        if ((size_t)(slash + 1 - s) == len)
            return "has an empty name after '/'";
        return why_value(slash + 1, len - (size_t)(slash + 1 - s), buf, size);
    }
    return "has an unknown kind";
}

bool ism_name_valid_n(enum ism_name_kind kind, const char *s, size_t len)
{
    char buf[64];

    return why_n(kind, s, len, buf, sizeof(buf)) == NULL;
}

bool ism_name_valid(enum ism_name_kind kind, const char *s)
{
    return s && ism_name_valid_n(kind, s, strlen(s));
}

const char *ism_name_why(enum ism_name_kind kind, const char *s, char *buf, size_t size)
{
    return why_n(kind, s, s ? strlen(s) : 0, buf, size);
}

const char *ism_name_kind_text(enum ism_name_kind kind)
{
    switch (kind) {
    case ISM_NAME_DNS_LABEL: return "DNS-1123 label";
    case ISM_NAME_DNS_SUBDOMAIN: return "DNS-1123 subdomain";
    case ISM_NAME_LABEL_VALUE: return "label value";
    case ISM_NAME_QUALIFIED: return "qualified name";
    }
    return "name";
}

int ism_name_check(enum ism_name_kind kind, const char *s, const char *what, ism_error_t *err)
{
    char buf[96];
    const char *why = ism_name_why(kind, s, buf, sizeof(buf));

    if (!why)
        return 0;
    return ism_err(err, EINVAL, "%s '%.100s' is not a %s: %s", what ? what : "name",
                   s ? s : "(null)", ism_name_kind_text(kind), why);
}
