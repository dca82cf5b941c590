/* kube_status.c - what the API server's answers mean, and how to name
 * things in its URLs.  Pure functions: no network, no client state.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "lib/kube/kube_internal.h"

static const struct {
    ism_kube_reason_t reason;
    const char *name;
    int errnum;
} reasons[] = {
    { ISM_KUBE_OK, "OK", 0 },
    { ISM_KUBE_NOT_FOUND, "NotFound", ENOENT },
    { ISM_KUBE_ALREADY_EXISTS, "AlreadyExists", EEXIST },
    { ISM_KUBE_CONFLICT, "Conflict", EBUSY },
    { ISM_KUBE_INVALID, "Invalid", EINVAL },
    { ISM_KUBE_BAD_REQUEST, "BadRequest", EINVAL },
    { ISM_KUBE_UNAUTHORIZED, "Unauthorized", EACCES },
    { ISM_KUBE_FORBIDDEN, "Forbidden", EACCES },
    { ISM_KUBE_GONE, "Gone", ESTALE },
    { ISM_KUBE_TOO_MANY_REQUESTS, "TooManyRequests", EAGAIN },
    { ISM_KUBE_TIMEOUT, "Timeout", ETIMEDOUT },
    { ISM_KUBE_SERVER_ERROR, "InternalError", EIO },
    { ISM_KUBE_OTHER, "Unknown", EIO },
    { ISM_KUBE_TRANSPORT, "Transport", ECONNREFUSED },
    { ISM_KUBE_BAD_RESPONSE, "BadResponse", EBADMSG },
    { ISM_KUBE_NOT_LEADER, "NotLeader", EPERM },
};

#define N_REASONS (sizeof(reasons) / sizeof(reasons[0]))

const char *ism_kube_reason_name(ism_kube_reason_t reason)
{
    for (size_t i = 0; i < N_REASONS; i++)
        if (reasons[i].reason == reason)
            return reasons[i].name;
    return "Unknown";
}

int ism_kube_reason_errno(ism_kube_reason_t reason)
{
    for (size_t i = 0; i < N_REASONS; i++)
        if (reasons[i].reason == reason)
            return reasons[i].errnum;
    return EIO;
}

/* The reason an HTTP code means when the body says nothing better. */
static ism_kube_reason_t reason_from_code(long code)
{
    switch (code) {
    case 400: return ISM_KUBE_BAD_REQUEST;
    case 401: return ISM_KUBE_UNAUTHORIZED;
    case 403: return ISM_KUBE_FORBIDDEN;
    case 404: return ISM_KUBE_NOT_FOUND;
    case 409: return ISM_KUBE_CONFLICT;
    case 410: return ISM_KUBE_GONE;
    case 422: return ISM_KUBE_INVALID;
    case 429: return ISM_KUBE_TOO_MANY_REQUESTS;
    case 504: return ISM_KUBE_TIMEOUT;
    }
    if (code >= 200 && code < 300)
        return ISM_KUBE_OK;
    if (code >= 500 && code < 600)
        return ISM_KUBE_SERVER_ERROR;
    return ISM_KUBE_OTHER;
}

/* The API's own reason strings (metav1.StatusReason) that we tell apart.
 * A 409 is Conflict or AlreadyExists depending on this, which is why the
 * body wins over the code. */
static ism_kube_reason_t reason_from_string(const char *s, ism_kube_reason_t fallback)
{
    static const struct {
        const char *name;
        ism_kube_reason_t reason;
    } map[] = {
        { "NotFound", ISM_KUBE_NOT_FOUND },
        { "AlreadyExists", ISM_KUBE_ALREADY_EXISTS },
        { "Conflict", ISM_KUBE_CONFLICT },
        { "Invalid", ISM_KUBE_INVALID },
        { "BadRequest", ISM_KUBE_BAD_REQUEST },
        { "Unauthorized", ISM_KUBE_UNAUTHORIZED },
        { "Forbidden", ISM_KUBE_FORBIDDEN },
        { "Gone", ISM_KUBE_GONE },
        { "Expired", ISM_KUBE_GONE },
        { "TooManyRequests", ISM_KUBE_TOO_MANY_REQUESTS },
        { "Timeout", ISM_KUBE_TIMEOUT },
        { "ServerTimeout", ISM_KUBE_TIMEOUT },
        { "InternalError", ISM_KUBE_SERVER_ERROR },
        { "ServiceUnavailable", ISM_KUBE_SERVER_ERROR },
    };
    if (!s)
        return fallback;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(s, map[i].name) == 0)
            return map[i].reason;
    return fallback;
}

/* Copy at most the first line of text into dst, replacing control
 * characters, so a hostile body cannot forge log lines. */
static void copy_printable(char *dst, size_t size, const char *text, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 1 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n' || c == '\r')
            break;
        dst[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    dst[j] = '\0';
}

void ism_kube_status_decode(long code, const char *body, size_t len, ism_kube_status_t *st)
{
    ism_kube_reason_t reason = reason_from_code(code);
    json_t *j = NULL;
    const char *message = NULL, *why = NULL;
    json_int_t retry = 0;

    st->http_code = code;
    st->retry_after = 0;
    st->message[0] = '\0';
    /* A 2xx body is the caller's answer, not a Status that could change
     * the reason: not decoded twice (a list page may be megabytes). */
    if (body && len > 0 && (code < 200 || code >= 300))
        j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(j) && json_is_string(json_object_get(j, "kind")) &&
        strcmp(json_string_value(json_object_get(j, "kind")), "Status") == 0) {
        json_t *details = json_object_get(j, "details");
        message = json_string_value(json_object_get(j, "message"));
        why = json_string_value(json_object_get(j, "reason"));
        if (json_is_integer(json_object_get(details, "retryAfterSeconds")))
            retry = json_integer_value(json_object_get(details, "retryAfterSeconds"));
        if (code >= 300 || code == 0)
            reason = reason_from_string(why, reason);
    }
    st->reason = reason;
    if (retry > 0 && retry < 86400)
        st->retry_after = (int)retry;
    if (message)
        copy_printable(st->message, sizeof(st->message), message, strlen(message));
    else if (reason != ISM_KUBE_OK && body && len > 0)
        copy_printable(st->message, sizeof(st->message), body, len < 200 ? len : 200);
    json_decref(j);
}

char *ism_kube_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out, *p;

    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    out = malloc(strlen(s) * 3 + 1);
    if (!out)
        return NULL;
    p = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

/* A name that can be a path segment as is: Kubernetes object names are
 * DNS subdomains or path-segment names, neither of which holds '/', '%'
 * or '?' (apimachinery's path validation refuses them too). */
static bool segment_ok(const char *s)
{
    if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strlen(s) > 253)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '%' || c == '?' || c == '#')
            return false;
    }
    return true;
}

char *ism_kube_path(const ism_kube_resource_t *r, const char *ns, const char *name,
                    const char *sub)
{
    char *path = NULL;
    int n;

    if (!r || !segment_ok(r->version) || !segment_ok(r->resource) ||
        (r->group && *r->group && !segment_ok(r->group)) || (ns && !segment_ok(ns)) ||
        (name && !segment_ok(name)) || (sub && !segment_ok(sub)) || (sub && !name) ||
        (ns && !r->namespaced)) {
        errno = EINVAL;
        return NULL;
    }
    n = asprintf(&path, "%s%s/%s%s%s/%s%s%s%s%s",
                 r->group && *r->group ? "/apis/" : "/api", r->group ? r->group : "",
                 r->version, ns ? "/namespaces/" : "", ns ? ns : "", r->resource,
                 name ? "/" : "", name ? name : "", sub ? "/" : "", sub ? sub : "");
    if (n < 0)
        return NULL;
    return path;
}

json_t *ism_kube_micro_time_now(void)
{
    struct timeval tv;
    struct tm tm;
    char date[32], buf[48];

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, sizeof(buf), "%s.%06dZ", date, (int)(tv.tv_usec % 1000000));
    return json_string(buf);
}
