/* kube_api.c - typed requests on objects and collections, over
 * ism_kube_request_async (kube.c); each synchronous form is its
 * asynchronous form followed by ism_kube_wait.
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

/* Wait for a call queued without a callback (the synchronous forms). */
static int wait_for(ism_kube_t *k, ism_kube_call_t *c, json_t **out, ism_kube_status_t *st,
                    ism_error_t *err)
{
    if (st)
        memset(st, 0, sizeof(*st));
    return ism_kube_wait(k, c, out, st, err);
}

ism_kube_call_t *ism_kube_get_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                    const char *ns, const char *name, ism_kube_call_f done,
                                    void *arg, ism_error_t *err)
{
    char *path = name ? ism_kube_path(r, ns, name, NULL) : NULL;
    ism_kube_call_t *c = NULL;

    if (!path)
        ism_err(err, EINVAL, "get: bad resource, namespace or name");
    else
        c = ism_kube_request_async(k, "GET", path, NULL, NULL, done, arg, err);
    free(path);
    return c;
}

int ism_kube_get(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                 const char *name, json_t **out, ism_kube_status_t *st, ism_error_t *err)
{
    return wait_for(k, ism_kube_get_async(k, r, ns, name, NULL, NULL, err), out, st, err);
}

ism_kube_call_t *ism_kube_create_object_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                              const char *ns, const json_t *obj,
                                              ism_kube_call_f done, void *arg,
                                              ism_error_t *err)
{
    char *path = ism_kube_path(r, ns, NULL, NULL);
    ism_kube_call_t *c = NULL;

    if (!path || !json_is_object(obj))
        ism_err(err, EINVAL, "create: bad resource, namespace or object");
    else
        c = ism_kube_request_async(k, "POST", path, obj, NULL, done, arg, err);
    free(path);
    return c;
}

int ism_kube_create_object(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                           const json_t *obj, json_t **out, ism_kube_status_t *st,
                           ism_error_t *err)
{
    return wait_for(k, ism_kube_create_object_async(k, r, ns, obj, NULL, NULL, err), out, st,
                    err);
}

ism_kube_call_t *ism_kube_create_subresource_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                                   const char *ns, const char *name,
                                                   const char *sub, const json_t *obj,
                                                   ism_kube_call_f done, void *arg,
                                                   ism_error_t *err)
{
    char *path = name && sub ? ism_kube_path(r, ns, name, sub) : NULL;
    ism_kube_call_t *c = NULL;

    if (!path || !json_is_object(obj))
        ism_err(err, EINVAL, "create %s: bad resource, name or object", sub ? sub : "");
    else
        c = ism_kube_request_async(k, "POST", path, obj, NULL, done, arg, err);
    free(path);
    return c;
}

int ism_kube_create_subresource(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                                const char *name, const char *sub, const json_t *obj,
                                json_t **out, ism_kube_status_t *st, ism_error_t *err)
{
    return wait_for(k, ism_kube_create_subresource_async(k, r, ns, name, sub, obj, NULL, NULL,
                                                         err),
                    out, st, err);
}

ism_kube_call_t *ism_kube_update_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                       const char *ns, const json_t *obj, const char *sub,
                                       ism_kube_call_f done, void *arg, ism_error_t *err)
{
    char *path = object_name(obj) ? ism_kube_path(r, ns, object_name(obj), sub) : NULL;
    ism_kube_call_t *c = NULL;

    if (!path)
        ism_err(err, EINVAL, "update: bad resource, namespace or object name");
    else
        c = ism_kube_request_async(k, "PUT", path, obj, NULL, done, arg, err);
    free(path);
    return c;
}

int ism_kube_update(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                    const json_t *obj, const char *sub, json_t **out, ism_kube_status_t *st,
                    ism_error_t *err)
{
    return wait_for(k, ism_kube_update_async(k, r, ns, obj, sub, NULL, NULL, err), out, st,
                    err);
}

ism_kube_call_t *ism_kube_patch_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                      const char *ns, const char *name, const char *sub,
                                      ism_kube_patch_t type, const json_t *patch,
                                      const char *field_manager, ism_kube_call_f done,
                                      void *arg, ism_error_t *err)
{
    static const char *const types[] = {
        [ISM_KUBE_PATCH_MERGE] = "application/merge-patch+json",
        [ISM_KUBE_PATCH_JSON] = "application/json-patch+json",
        [ISM_KUBE_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
        [ISM_KUBE_PATCH_APPLY] = "application/apply-patch+yaml",
    };
    char *path = name ? ism_kube_path(r, ns, name, sub) : NULL, *full = NULL, *fm = NULL;
    ism_kube_call_t *c = NULL;

    if (!path || (unsigned)type > ISM_KUBE_PATCH_APPLY || !patch ||
        (type == ISM_KUBE_PATCH_APPLY && !field_manager)) {
        ism_err(err, EINVAL, "patch: bad resource, name, type, patch or field manager");
        goto done;
    }
    if (field_manager && !(fm = ism_kube_escape(field_manager))) {
        ism_err(err, ENOMEM, "out of memory");
        goto done;
    }
    /* JSON is YAML, so an apply patch is sent as JSON. */
    if (asprintf(&full, "%s%s%s%s", path, fm ? "?fieldManager=" : "", fm ? fm : "",
                 type == ISM_KUBE_PATCH_APPLY ? "&force=true" : "") < 0) {
        full = NULL;
        ism_err(err, ENOMEM, "out of memory");
        goto done;
    }
    c = ism_kube_request_async(k, "PATCH", full, patch, types[type], done, arg, err);
done:
    free(path);
    free(full);
    free(fm);
    return c;
}

int ism_kube_patch(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                   const char *name, const char *sub, ism_kube_patch_t type,
                   const json_t *patch, const char *field_manager, json_t **out,
                   ism_kube_status_t *st, ism_error_t *err)
{
    return wait_for(k, ism_kube_patch_async(k, r, ns, name, sub, type, patch, field_manager,
                                            NULL, NULL, err),
                    out, st, err);
}

ism_kube_call_t *ism_kube_delete_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                       const char *ns, const char *name, const char *uid,
                                       const char *resource_version, ism_kube_call_f done,
                                       void *arg, ism_error_t *err)
{
    char *path = name ? ism_kube_path(r, ns, name, NULL) : NULL;
    json_t *opts = NULL;
    ism_kube_call_t *c = NULL;

    if (!path) {
        ism_err(err, EINVAL, "delete: bad resource, namespace or name");
        goto done;
    }
    if (uid || resource_version) {
        /* json_pack fails (without errno) when a string is NULL or not
         * UTF-8, or when out of memory. */
        opts = json_pack("{s:s, s:s, s:{s:s*, s:s*}}", "kind", "DeleteOptions", "apiVersion",
                         "v1", "preconditions", "uid", uid, "resourceVersion",
                         resource_version);
        if (!opts) {
            ism_err(err, EINVAL, "delete %s: bad preconditions (or out of memory)", name);
            goto done;
        }
    }
    c = ism_kube_request_async(k, "DELETE", path, opts, NULL, done, arg, err);
done:
    json_decref(opts);
    free(path);
    return c;
}

int ism_kube_delete(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                    const char *name, const char *uid, const char *resource_version,
                    ism_kube_status_t *st, ism_error_t *err)
{
    return wait_for(k, ism_kube_delete_async(k, r, ns, name, uid, resource_version, NULL, NULL,
                                             err),
                    NULL, st, err);
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
        if (n > 4 && strcmp(kind + n - 4, "List") == 0 && !json_object_get(item, "kind") &&
            json_object_set_new(item, "kind", json_stringn(kind, n - 4)) < 0)
            return ism_err(err, ENOMEM, "out of memory");
        if (api && !json_object_get(item, "apiVersion") &&
            json_object_set_new(item, "apiVersion", json_string(api)) < 0)
            return ism_err(err, ENOMEM, "out of memory");
        if (each)
            each(each_arg, item);
        if (json_array_append(items, item) < 0)
            return ism_err(err, ENOMEM, "out of memory");
    }
    return 0;
}

/* ------------------------------------------------------------------ lists */

/* A paged list in progress (the call's page state). */
struct pages {
    char *path, *label, *field;
    int limit;
    ism_kube_item_f each;
    void *each_arg;
    json_t *items;
    char *rv, *kind, *api;
};

static void pages_free(void *arg)
{
    struct pages *p = arg;

    if (!p)
        return;
    free(p->path);
    free(p->label);
    free(p->field);
    json_decref(p->items);
    free(p->rv);
    free(p->kind);
    free(p->api);
    free(p);
}

static char *dup_opt(const char *s, bool *failed)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *failed = true;
    return d;
}

static int on_page(void *arg, json_t *page, char **next, json_t **final, ism_error_t *err)
{
    struct pages *p = arg;
    json_t *meta = json_object_get(page, "metadata");
    const char *cont = json_string_value(json_object_get(meta, "continue"));
    const char *v = json_string_value(json_object_get(meta, "resourceVersion"));
    const char *kind = json_string_value(json_object_get(page, "kind"));
    const char *api = json_string_value(json_object_get(page, "apiVersion"));
    bool failed = false;

    if (!page)
        return ism_err(err, EBADMSG, "list answer: empty");
    if (take_items(page, p->items, p->each, p->each_arg, err) < 0)
        return -1;
    if (!p->rv && v && !(p->rv = strdup(v)))
        return ism_err(err, ENOMEM, "out of memory");
    if (!p->kind && kind)
        p->kind = dup_opt(kind, &failed);
    if (!p->api && api)
        p->api = dup_opt(api, &failed);
    if (failed)
        return ism_err(err, ENOMEM, "out of memory");
    if (cont && *cont) {
        if (!(*next = list_url(p->path, p->label, p->field, p->limit, cont)))
            return ism_err(err, ENOMEM, "out of memory");
        return 0;
    }
    if (!p->rv)
        return ism_err(err, EBADMSG, "list answer: no metadata.resourceVersion");
    *final = json_pack("{s:s?, s:s?, s:{s:s}, s:O}", "kind", p->kind, "apiVersion", p->api,
                       "metadata", "resourceVersion", p->rv, "items", p->items);
    if (!*final)
        return ism_err(err, ENOMEM, "out of memory");
    return 0;
}

ism_kube_call_t *ism_kube_list_path_async(ism_kube_t *k, const char *path,
                                          const char *label_selector,
                                          const char *field_selector, int limit,
                                          ism_kube_item_f each, void *each_arg,
                                          ism_kube_call_f done, void *arg, ism_error_t *err)
{
    struct pages *p;
    ism_kube_call_t *c;
    char *url;
    bool failed = false;

    if (!k || !path || limit < 0) {
        ism_err(err, EINVAL, "list: bad resource, namespace or arguments");
        return NULL;
    }
    if (!(p = calloc(1, sizeof(*p)))) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    p->path = dup_opt(path, &failed);
    p->label = dup_opt(label_selector, &failed);
    p->field = dup_opt(field_selector, &failed);
    p->limit = limit ? limit : 500;
    p->each = each;
    p->each_arg = each_arg;
    p->items = json_array();
    url = failed || !p->items ? NULL : list_url(path, label_selector, field_selector, p->limit,
                                                NULL);
    if (!url) {
        pages_free(p);
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    c = ism_kube_request_async(k, "GET", url, NULL, NULL, done, arg, err);
    free(url);
    if (!c) {
        pages_free(p);
        return NULL;
    }
    ism_kube_call_pages(c, on_page, pages_free, p);
    return c;
}

ism_kube_call_t *ism_kube_list_async(ism_kube_t *k, const ism_kube_resource_t *r,
                                     const char *ns, const char *label_selector,
                                     const char *field_selector, int limit,
                                     ism_kube_call_f done, void *arg, ism_error_t *err)
{
    char *path = ism_kube_path(r, ns, NULL, NULL);
    ism_kube_call_t *c;

    if (!path) {
        ism_err(err, EINVAL, "list: bad resource or namespace");
        return NULL;
    }
    c = ism_kube_list_path_async(k, path, label_selector, field_selector, limit, NULL, NULL,
                                 done, arg, err);
    free(path);
    return c;
}

int ism_kube_list(ism_kube_t *k, const ism_kube_resource_t *r, const char *ns,
                  const char *label_selector, const char *field_selector, int limit,
                  json_t **items, char **resource_version, ism_kube_status_t *st,
                  ism_error_t *err)
{
    json_t *list = NULL;
    char *rv = NULL;
    int rc;

    if (!items)
        return ism_err(err, EINVAL, "list: bad resource, namespace or arguments");
    rc = wait_for(k, ism_kube_list_async(k, r, ns, label_selector, field_selector, limit, NULL,
                                         NULL, err),
                  &list, st, err);
    if (rc == 0 && resource_version) {
        const char *v = json_string_value(
            json_object_get(json_object_get(list, "metadata"), "resourceVersion"));
        if (!(rv = strdup(v ? v : "")))
            rc = ism_err(err, ENOMEM, "out of memory");
    }
    if (rc == 0) {
        *items = json_incref(json_object_get(list, "items"));
        if (resource_version)
            *resource_version = rv;
    }
    json_decref(list);
    return rc;
}
