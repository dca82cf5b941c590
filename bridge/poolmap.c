/* poolmap.c - the Node <-> Slurm node map (poolmap.h). */
#include <config.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/model.h"
#include "bridge/poolmap.h"
#include "lib/util/log.h"

struct poolmap {
    json_t *pool_of;  /* Slurm node name -> Node name */
    json_t *slurm_of; /* Node name -> Slurm node name */
};

const char *poolmap_node_label(const json_t *node)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(node, "metadata"), "labels"), ISM_LABEL_SLURM_NODE));
}

struct poolmap *poolmap_create(ism_error_t *err)
{
    struct poolmap *pm = calloc(1, sizeof(*pm));

    if (!pm || !(pm->pool_of = json_object()) || !(pm->slurm_of = json_object())) {
        poolmap_destroy(pm);
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    return pm;
}

void poolmap_destroy(struct poolmap *pm)
{
    int saved = errno;

    if (!pm)
        return;
    json_decref(pm->pool_of);
    json_decref(pm->slurm_of);
    free(pm);
    errno = saved;
}

/* Map slurm -> node in m, the smallest Node name winning a tie.  -1 on
 * ENOMEM. */
static int map_claim(json_t *m, const char *slurm, const char *node, bool labelled)
{
    const char *have = json_string_value(json_object_get(m, slurm));

    if (have && strcmp(have, node) <= 0) {
        if (labelled)
            ism_log_warn("Nodes %s and %s are both labelled %s=%s; using %s", have, node,
                         ISM_LABEL_SLURM_NODE, slurm, have);
        return 0;
    }
    if (have && labelled)
        ism_log_warn("Nodes %s and %s are both labelled %s=%s; using %s", node, have,
                     ISM_LABEL_SLURM_NODE, slurm, node);
    return json_object_set_new(m, slurm, json_string(node));
}

static void tell_moved(poolmap_moved_f moved, void *arg, const json_t *pool)
{
    if (moved && json_string_value(pool))
        moved(arg, json_string_value(pool));
}

int poolmap_rebuild(struct poolmap *pm, const json_t *nodes, poolmap_moved_f moved, void *arg,
                    ism_error_t *err)
{
    json_t *pool_of = json_object(), *slurm_of = json_object(), *node, *v;
    const char *name;
    int rc = -1;

    if (!pool_of || !slurm_of)
        goto done;
    json_object_foreach((json_t *)nodes, name, node) {
        const char *label = poolmap_node_label(node);
        if (label && *label && map_claim(pool_of, label, name, true) < 0)
            goto done;
    }
    json_object_foreach((json_t *)nodes, name, node) {
        const char *label = poolmap_node_label(node);
        if ((!label || !*label) && !json_object_get(pool_of, name) &&
            map_claim(pool_of, name, name, false) < 0)
            goto done;
    }
    json_object_foreach(pool_of, name, v) {
        if (json_object_set_new(slurm_of, json_string_value(v), json_string(name)) < 0)
            goto done;
    }
    /* Pools whose Slurm node changed, old and new, moved. */
    json_object_foreach(pm->pool_of, name, v) {
        json_t *now = json_object_get(pool_of, name);
        if (!now || !json_equal(now, v)) {
            tell_moved(moved, arg, v);
            tell_moved(moved, arg, now);
        }
    }
    json_object_foreach(pool_of, name, v) {
        if (!json_object_get(pm->pool_of, name))
            tell_moved(moved, arg, v);
    }
    json_decref(pm->pool_of);
    json_decref(pm->slurm_of);
    pm->pool_of = pool_of;
    pm->slurm_of = slurm_of;
    pool_of = slurm_of = NULL;
    rc = 0;
done:
    json_decref(pool_of);
    json_decref(slurm_of);
    if (rc < 0)
        ism_err(err, ENOMEM, "out of memory");
    return rc;
}

const char *poolmap_pool_of(const struct poolmap *pm, const char *slurm_node)
{
    return pm && slurm_node ? json_string_value(json_object_get(pm->pool_of, slurm_node)) : NULL;
}

const char *poolmap_slurm_of(const struct poolmap *pm, const char *pool)
{
    return pm && pool ? json_string_value(json_object_get(pm->slurm_of, pool)) : NULL;
}

size_t poolmap_size(const struct poolmap *pm)
{
    return pm ? json_object_size(pm->pool_of) : 0;
}
