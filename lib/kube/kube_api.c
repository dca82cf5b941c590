/* kube_api.c - typed requests on objects and collections, over
 * ism_kube_request (kube.c).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kube/kube_internal.h"

/* metadata.name of obj, or NULL. */
static const char *object_name(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
}

int ism_kube_get(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                 const char *name, json_t **out, ism_kube_status_t *st, ism_error_t *err)
{
    char *path = ism_kube_path(r, ns, name, NULL);
    int rc;

    if (!path || !name)
        rc = ism_err(err, EINVAL, "get: bad resource, namespace or name");
    else
        rc = ism_kube_request(k, "GET", path, NULL, NULL, out, st, err);
    free(path);
    return rc;
}

int ism_kube_create_object(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                           const json_t *obj, json_t **out, ism_kube_status_t *st,
                           ism_error_t *err)
{
    char *path = ism_kube_path(r, ns, NULL, NULL);
    int rc;

    if (!path || !json_is_object(obj))
        rc = ism_err(err, EINVAL, "create: bad resource, namespace or object");
    else
        rc = ism_kube_request(k, "POST", path, obj, NULL, out, st, err);
    free(path);
    return rc;
}

int ism_kube_create_subresource(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                                const char *name, const char *sub, const json_t *obj,
                                json_t **out, ism_kube_status_t *st, ism_error_t *err)
{
    char *path = ism_kube_path(r, ns, name, sub);
    int rc;

    if (!path || !name || !sub || !json_is_object(obj))
        rc = ism_err(err, EINVAL, "create %s: bad resource, name or object", sub ? sub : "");
    else
        rc = ism_kube_request(k, "POST", path, obj, NULL, out, st, err);
    free(path);
    return rc;
}

int ism_kube_update(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                    const json_t *obj, const char *sub, json_t **out, ism_kube_status_t *st,
                    ism_error_t *err)
{
    char *path = ism_kube_path(r, ns, object_name(obj), sub);
    int rc;

    if (!path || !object_name(obj))
        rc = ism_err(err, EINVAL, "update: bad resource, namespace or object name");
    else
        rc = ism_kube_request(k, "PUT", path, obj, NULL, out, st, err);
    free(path);
    return rc;
}

int ism_kube_patch(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                   const char *name, const char *sub, ism_kube_patch_t type,
                   const json_t *patch, const char *field_manager, json_t **out,
                   ism_kube_status_t *st, ism_error_t *err)
{
    static const char *const types[] = {
        [ISM_KUBE_PATCH_MERGE] = "application/merge-patch+json",
        [ISM_KUBE_PATCH_JSON] = "application/json-patch+json",
        [ISM_KUBE_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
        [ISM_KUBE_PATCH_APPLY] = "application/apply-patch+yaml",
    };
    char *path = ism_kube_path(r, ns, name, sub), *full = NULL, *fm = NULL;
    int rc = -1;

    if (!path || !name || (unsigned)type > ISM_KUBE_PATCH_APPLY || !patch ||
        (type == ISM_KUBE_PATCH_APPLY && !field_manager)) {
        rc = ism_err(err, EINVAL, "patch: bad resource, name, type, patch or field manager");
        goto done;
    }
    if (field_manager && !(fm = ism_kube_escape(field_manager))) {
        rc = ism_err(err, ENOMEM, "out of memory");
        goto done;
    }
    /* JSON is YAML, so an apply patch is sent as JSON. */
    if (asprintf(&full, "%s%s%s%s", path, fm ? "?fieldManager=" : "", fm ? fm : "",
                 type == ISM_KUBE_PATCH_APPLY ? "&force=true" : "") < 0) {
        full = NULL;
        rc = ism_err(err, ENOMEM, "out of memory");
        goto done;
    }
    rc = ism_kube_request(k, "PATCH", full, patch, types[type], out, st, err);
done:
    free(path);
    free(full);
    free(fm);
    return rc;
}

int ism_kube_delete(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                    const char *name, const char *uid, const char *resource_version,
                    ism_kube_status_t *st, ism_error_t *err)
{
    char *path = ism_kube_path(r, ns, name, NULL);
    json_t *opts = NULL, *pre = NULL;
    int rc = -1;

    if (!path || !name) {
        rc = ism_err(err, EINVAL, "delete: bad resource, namespace or name");
        goto done;
    }
    if (uid || resource_version) {
        pre = json_object();
        if (!pre || (uid && json_object_set_new(pre, "uid", json_string(uid)) < 0) ||
            (resource_version &&
             json_object_set_new(pre, "resourceVersion", json_string(resource_version)) < 0) ||
            !(opts = json_pack("{s:s, s:s, s:O}", "kind", "DeleteOptions", "apiVersion", "v1",
                               "preconditions", pre))) {
            rc = ism_err(err, ENOMEM, "out of memory");
            goto done;
        }
    }
    rc = ism_kube_request(k, "DELETE", path, opts, NULL, NULL, st, err);
done:
    json_decref(pre);
    json_decref(opts);
    free(path);
    return rc;
}

char *ism_kube_selector_query(const char *label, const char *field)
{
    char *l = label ? ism_kube_escape(label) : NULL;
    char *f = field ? ism_kube_escape(field) : NULL;
    char *q = NULL;

    if ((!label || l) && (!field || f) &&
        asprintf(&q, "%s%s%s%s", l ? "&labelSelector=" : "", l ? l : "",
                 f ? "&fieldSelector=" : "", f ? f : "") < 0)
        q = NULL;
    free(l);
    free(f);
    return q;
}

/* "/path?limit=N&labelSelector=..&fieldSelector=..&continue=TOKEN" */
static char *list_url(const char *path, const char *label, const char *field, int limit,
                      const char *cont)
{
    char *sel = ism_kube_selector_query(label, field);
    char *c = cont ? ism_kube_escape(cont) : NULL;
    char *url = NULL;

    if (sel && (!cont || c) &&
        asprintf(&url, "%s?limit=%d%s%s%s", path, limit, sel, c ? "&continue=" : "",
                 c ? c : "") < 0)
        url = NULL;
    free(sel);
    free(c);
    return url;
}

/* Append page's items to items, giving each the kind and apiVersion the
 * server leaves out of list items. */
static int take_items(json_t *page, json_t *items, ism_kube_item_f each, void *each_arg,
                      ism_error_t *err)
{
    json_t *list = json_object_get(page, "items"), *item;
    const char *kind = json_string_value(json_object_get(page, "kind"));
    const char *api = json_string_value(json_object_get(page, "apiVersion"));
    size_t i, n;

    if (!json_is_array(list) && !json_is_null(list) && list)
        return ism_err(err, EBADMSG, "list answer: items is not an array");
    n = kind ? strlen(kind) : 0;
    json_array_foreach(list, i, item) {
        if (!json_is_object(item))
            return ism_err(err, EBADMSG, "list answer: item %zu is not an object", i);
        if (n > 4 && strcmp(kind + n - 4, "List") == 0 && !json_object_get(item, "kind"))
            json_object_set_new(item, "kind", json_stringn(kind, n - 4));
        if (api && !json_object_get(item, "apiVersion"))
            json_object_set_new(item, "apiVersion", json_string(api));
        if (each)
            each(each_arg, item);
        if (json_array_append(items, item) < 0)
            return ism_err(err, ENOMEM, "out of memory");
    }
    return 0;
}

int ism_kube_list(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                  const char *label_selector, const char *field_selector, int limit,
                  json_t **items, char **resource_version, ism_kube_status_t *st,
                  ism_error_t *err)
{
    char *path = ism_kube_path(r, ns, NULL, NULL);
    int rc;

    if (!path)
        return ism_err(err, EINVAL, "list: bad resource or namespace");
    rc = ism_kube_list_path(k, path, label_selector, field_selector, limit, NULL, NULL, items,
                            resource_version, st, err);
    free(path);
    return rc;
}

int ism_kube_list_path(ism_kube_t *k, const char *path, const char *label_selector,
                       const char *field_selector, int limit, ism_kube_item_f each,
                       void *each_arg, json_t **items, char **resource_version,
                       ism_kube_status_t *st, ism_error_t *err)
{
    char *cont = NULL, *rv = NULL;
    json_t *all = json_array();
    int rc = -1;

    if (!items || !path || limit < 0) {
        rc = ism_err(err, EINVAL, "list: bad resource, namespace or arguments");
        goto done;
    }
    if (!all) {
        rc = ism_err(err, ENOMEM, "out of memory");
        goto done;
    }
    do {
        char *url = list_url(path, label_selector, field_selector, limit ? limit : 500, cont);
        json_t *page = NULL;
        if (!url) {
            rc = ism_err(err, ENOMEM, "out of memory");
            goto done;
        }
        rc = ism_kube_request(k, "GET", url, NULL, NULL, &page, st, err);
        free(url);
        if (rc == 0)
            rc = take_items(page, all, each, each_arg, err);
        json_t *meta = json_object_get(page, "metadata");
        const char *next = json_string_value(json_object_get(meta, "continue"));
        const char *v = json_string_value(json_object_get(meta, "resourceVersion"));
        free(cont);
        cont = rc == 0 && next && *next ? strdup(next) : NULL;
        if (rc == 0 && !rv && v)
            rv = strdup(v);
        json_decref(page);
    } while (rc == 0 && cont);
    if (rc == 0 && !rv)
        rc = ism_err(err, EBADMSG, "list answer: no metadata.resourceVersion");
    if (rc == 0) {
        *items = all;
        all = NULL;
        if (resource_version) {
            *resource_version = rv;
            rv = NULL;
        }
    }
done:
    json_decref(all);
    free(cont);
    free(rv);
    return rc;
}
