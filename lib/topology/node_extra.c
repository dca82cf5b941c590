/* node_extra.c - see node_extra.h */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/topology/node_extra.h"

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

int ism_extra_merge(const char *extra, const char *topo_json, bool force, char **merged,
                    ism_error_t *err)
{
    ism_error_t why = ISM_ERROR_INIT;
    json_t *obj = NULL, *topo;
    int rc = -1;

    if (!merged)
        return ism_err(err, EINVAL, "extra merge: missing output");
    *merged = NULL;
    if (!topo_json)
        return ism_err(err, EINVAL, "extra merge: missing topology");
    if (!(topo = load_object(topo_json, "the topology", err)))
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
