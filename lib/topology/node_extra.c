/* node_extra.c - see node_extra.h */
#include <config.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/topology/node_extra.h"
#include "lib/util/hash.h"

static bool is_blank(const char *s)
{
    return !s || s[strspn(s, " \t\r\n")] == '\0';
}

/* Parse extra as a JSON object (new reference), or NULL with err set. */
static json_t *load_object(const char *extra, const char *what, ism_error_t *err)
{
    json_error_t jerr;
    size_t len = strnlen(extra, ISM_EXTRA_MAX_BYTES + 1);
    json_t *o;

    if (len > ISM_EXTRA_MAX_BYTES) {
        ism_err(err, E2BIG, "%s is larger than %d bytes", what, ISM_EXTRA_MAX_BYTES);
        return NULL;
    }
    if (!(o = json_loadb(extra, len, JSON_REJECT_DUPLICATES, &jerr))) {
        ism_err(err, EINVAL, "%s is not JSON: %s (at byte %d)", what, jerr.text, jerr.position);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        ism_err(err, EINVAL, "%s is JSON but not an object", what);
        return NULL;
    }
    return o;
}

/* ---- references ---- */

void ism_extra_digest(const char *encoding, char *digest)
{
    snprintf(digest, ISM_EXTRA_DIGEST_LEN + 1, "%012" PRIx64, ism_fnv1a_str(encoding) >> 16);
}

static bool is_digest(const char *s, size_t len)
{
    if (len != ISM_EXTRA_DIGEST_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", s[i]) || !s[i])
            return false;
    return true;
}

char *ism_extra_ref_format(const char *digest, ism_error_t *err)
{
    char *text = NULL;

    if (!digest || !is_digest(digest, strlen(digest))) {
        ism_err(err, EINVAL, "'%s' is not a topology digest (%d lower-case hex digits)",
                digest ? digest : "(null)", ISM_EXTRA_DIGEST_LEN);
        return NULL;
    }
    if (asprintf(&text, "\"%s%s\"", ISM_EXTRA_REF_PREFIX, digest) < 0) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    return text;
}

int ism_extra_ref_parse(const char *value, char *digest, ism_error_t *err)
{
    json_t *v = value ? json_loads(value, JSON_DECODE_ANY, NULL) : NULL;
    size_t plen = strlen(ISM_EXTRA_REF_PREFIX);
    const char *s;
    int rc = -1;

    if (!v) {
        return ism_err(err, EINVAL, "the value under \"%s\" is not JSON", ISM_EXTRA_KEY);
    } else if (!json_is_string(v)) {
        rc = 0;
    } else if (strncmp(s = json_string_value(v), ISM_EXTRA_REF_PREFIX, plen) != 0 ||
               json_string_length(v) != strlen(s) || !is_digest(s + plen, strlen(s + plen))) {
        ism_err(err, EINVAL,
                "the value under \"%s\" is a string but not a topology reference (%sDIGEST, "
                "%d lower-case hex digits)", ISM_EXTRA_KEY, ISM_EXTRA_REF_PREFIX,
                ISM_EXTRA_DIGEST_LEN);
    } else {
        if (digest)
            memcpy(digest, s + plen, ISM_EXTRA_DIGEST_LEN + 1);
        rc = 1;
    }
    json_decref(v);
    return rc;
}

/* ---- merging ---- */

/* Our value from its JSON text: an object (full) or a valid reference. */
static json_t *load_value(const char *value_json, ism_error_t *err)
{
    json_t *v;

    if (ism_extra_ref_parse(value_json, NULL, err) < 0)
        return NULL;
    if (!(v = json_loads(value_json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL)) ||
        !(json_is_object(v) || json_is_string(v))) {
        json_decref(v);
        ism_err(err, EINVAL, "the topology is neither a JSON object nor a reference");
        return NULL;
    }
    return v;
}

int ism_extra_merge(const char *extra, const char *value_json, bool force, char **merged,
                    ism_error_t *err)
{
    ism_error_t why = ISM_ERROR_INIT;
    json_t *obj = NULL, *topo;
    int rc = -1;

    if (!merged)
        return ism_err(err, EINVAL, "extra merge: missing output");
    *merged = NULL;
    if (!value_json)
        return ism_err(err, EINVAL, "extra merge: missing topology");
    if (!(topo = load_value(value_json, err)))
        return -1;
    if (is_blank(extra)) {
        obj = json_object();
    } else if (!(obj = load_object(extra, "the node's Extra field", &why))) {
        if (errno == E2BIG || !force) {
            ism_err(err, errno == E2BIG ? E2BIG : EEXIST,
                    "%s; isthmus keeps its topology under the key \"%s\" of a JSON object "
                    "there: move the text into a key of a JSON object, clear the field "
                    "(scontrol update nodename=NODE extra=''), or replace it with --force",
                    why.text, ISM_EXTRA_KEY);
            goto out;
        }
        obj = json_object();
    }
    if (!obj) {
        ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    if (json_equal(json_object_get(obj, ISM_EXTRA_KEY), topo)) {
        rc = 0;
        goto out;
    }
    /* set_new steals topo even on failure. */
    if (json_object_set_new(obj, ISM_EXTRA_KEY, topo) < 0 ||
        !(*merged = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        topo = NULL;
        ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    topo = NULL;
    rc = 1;
out:
    json_decref(topo);
    json_decref(obj);
    return rc;
}

char *ism_extra_get(const char *extra, ism_error_t *err)
{
    json_t *obj, *value;
    char *s = NULL;

    if (is_blank(extra)) {
        ism_err(err, ENOENT, "the node's Extra field is empty: no topology was published");
        return NULL;
    }
    if (!(obj = load_object(extra, "the node's Extra field", err)))
        return NULL;
    if (!(value = json_object_get(obj, ISM_EXTRA_KEY)))
        ism_err(err, ENOENT, "the node's Extra field has no key \"%s\": no topology was published",
                ISM_EXTRA_KEY);
    else if (!(s = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)))
        ism_err(err, ENOMEM, "out of memory");
    json_decref(obj);
    return s;
}
