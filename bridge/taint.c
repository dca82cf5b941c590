/* taint.c - see taint.h */
#include <config.h>
#include <errno.h>
#include <string.h>

#include "bridge/taint.h"

static const json_t *taints_of(const json_t *node)
{
    return json_object_get(json_object_get(node, "spec"), "taints");
}

bool taint_present(const json_t *node)
{
    const json_t *t;
    size_t i;

    json_array_foreach(taints_of(node), i, t) {
        const char *key = json_string_value(json_object_get(t, "key"));
        if (key && strcmp(key, BRIDGE_TAINT_KEY) == 0)
            return true;
    }
    return false;
}

json_t *taint_patch(const json_t *node)
{
    const json_t *taints = taints_of(node);
    const char *rv =
        json_string_value(json_object_get(json_object_get(node, "metadata"), "resourceVersion"));
    json_t *list, *patch;

    if (!rv || !*rv || (taints && !json_is_array(taints) && !json_is_null(taints))) {
        errno = EINVAL;
        return NULL;
    }
    if (taint_present(node)) {
        errno = 0;
        return NULL;
    }
    list = json_is_array(taints) ? json_deep_copy(taints) : json_array();
    if (!list || json_array_append_new(list, json_pack("{s:s, s:s}", "key", BRIDGE_TAINT_KEY,
                                                       "effect", "NoSchedule")) < 0) {
        json_decref(list);
        errno = ENOMEM;
        return NULL;
    }
    patch = json_pack("{s:{s:s}, s:{s:o}}", "metadata", "resourceVersion", rv, "spec", "taints",
                      list);
    if (!patch)
        errno = ENOMEM;
    return patch;
}
