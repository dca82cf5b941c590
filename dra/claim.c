/* claim.c - see claim.h */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dra/claim.h"

bool ism_dra_uid_valid(const char *uid)
{
    size_t n;

    if (!uid || !uid[0] || uid[0] == '-')
        return false;
    for (n = 0; uid[n]; n++)
        if (n >= ISM_DRA_UID_MAX ||
            !((uid[n] >= '0' && uid[n] <= '9') || (uid[n] >= 'a' && uid[n] <= 'z') || uid[n] == '-'))
            return false;
    return true;
}

/* A string member of obj into buf, or "" when absent or null; -1 when
 * present with another type or too long. */
static int get_str(json_t *obj, const char *key, char *buf, size_t size)
{
    json_t *v = json_object_get(obj, key);

    buf[0] = '\0';
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= size ||
        strlen(json_string_value(v)) != json_string_length(v))
        return -1;
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int ism_dra_core_index(const char *device)
{
    const char *p = device + 5;
    long n = 0;

    if (strncmp(device, "core-", 5) != 0 || !*p || (p[0] == '0' && p[1]))
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (*p - '0');
        if (n >= ISM_TOPO_MAX_CORES)
            return -1;
    }
    return (int)n;
}

static int slurm_job(json_t *meta, long *job, ism_error_t *err)
{
    json_t *labels = json_object_get(meta, "labels");
    json_t *v = json_is_object(labels) ? json_object_get(labels, ISM_DRA_LABEL_SLURM_JOB) : NULL;
    const char *s;
    char *end;

    *job = -1;
    if (!v || json_is_null(v))
        return 0;
    s = json_is_string(v) ? json_string_value(v) : "";
    errno = 0;
    *job = strtol(s, &end, 10);
    if (!*s || *end || errno || *job <= 0 || *job > 0x7fffffffL || s[0] < '1' || s[0] > '9') {
        *job = -1;
        return ism_err(err, EINVAL, "label %s: not a Slurm job id", ISM_DRA_LABEL_SLURM_JOB);
    }
    return 0;
}

static int take_result(json_t *r, int i, const char *driver, const char *pool,
                       struct ism_claim_alloc *a, ism_error_t *err)
{
    char drv[ISM_DRA_POOL_MAX + 1], req[2 * ISM_DRA_LABEL_MAX + 2];
    struct ism_claim_dev *d;
    char *slash;

    if (!json_is_object(r))
        return ism_err(err, EINVAL, "results[%d]: not an object", i);
    if (get_str(r, "driver", drv, sizeof(drv)) < 0)
        return ism_err(err, EINVAL, "results[%d].driver: not a string of at most %d bytes", i,
                       ISM_DRA_POOL_MAX);
    if (strcmp(drv, driver) != 0)
        return 0; /* another driver's device */
    if (a->ndevs >= ISM_DRA_MAX_RESULTS)
        return ism_err(err, EINVAL, "more than %d results for %s", ISM_DRA_MAX_RESULTS, driver);
    d = &a->devs[a->ndevs];
    /* "request" or "request/subrequest": the kubelet matches the first. */
    if (get_str(r, "request", req, sizeof(req)) < 0 || !req[0])
        return ism_err(err, EINVAL, "results[%d].request: missing or not a short string", i);
    if ((slash = strchr(req, '/')))
        *slash = '\0';
    if (!req[0] || strlen(req) >= sizeof(d->request))
        return ism_err(err, EINVAL, "results[%d].request: not a request name", i);
    memcpy(d->request, req, strlen(req) + 1);
    if (get_str(r, "pool", d->pool, sizeof(d->pool)) < 0 || !d->pool[0])
        return ism_err(err, EINVAL, "results[%d].pool: missing or not a short string", i);
    if (get_str(r, "device", d->device, sizeof(d->device)) < 0 || !d->device[0])
        return ism_err(err, EINVAL, "results[%d].device: missing or not a short string", i);
    if (strcmp(d->pool, pool) != 0)
        return ism_err(err, EINVAL,
                       "results[%d]: device %s is allocated in pool %s, not this node's pool %s", i,
                       d->device, d->pool, pool);
    if ((d->core = ism_dra_core_index(d->device)) < 0)
        return ism_err(err, EINVAL, "results[%d]: unknown device %s (want core-<N>)", i,
                       d->device);
    a->ndevs++;
    return 0;
}

/* Whether a config entry's "requests" (absent, null or empty: all) names
 * a request of the results kept in a. */
static bool config_applies(json_t *requests, const struct ism_claim_alloc *a)
{
    size_t i;
    json_t *r;

    if (json_array_size(requests) == 0)
        return true;
    json_array_foreach(requests, i, r) {
        for (int d = 0; json_is_string(r) && d < a->ndevs; d++) {
            if (strcmp(json_string_value(r), a->devs[d].request) == 0)
                return true;
        }
    }
    return false;
}

/* The memory policy from the allocation's config entries for driver. */
static int take_config(json_t *config, const char *driver, struct ism_claim_alloc *a,
                       ism_error_t *err)
{
    char drv[ISM_DRA_POOL_MAX + 1];
    size_t i;
    json_t *c;

    if (config && !json_is_null(config) && !json_is_array(config))
        return ism_err(err, EINVAL, "config: not a list");
    json_array_foreach(config, i, c) {
        json_t *opaque = json_object_get(c, "opaque");
        json_t *requests = json_object_get(c, "requests");
        if (!json_is_object(opaque) || get_str(opaque, "driver", drv, sizeof(drv)) < 0 ||
            strcmp(drv, driver) != 0)
            continue; /* not ours */
        if (requests && !json_is_null(requests) && !json_is_array(requests))
            return ism_err(err, EINVAL, "config[%zu].requests: not a list", i);
        if (!config_applies(requests, a))
            continue;
        if (ism_plan_params_parse(json_object_get(opaque, "parameters"), &a->mem, err) < 0)
            return ism_errprefix(err, "config[%zu].opaque", i);
    }
    return 0;
}

int ism_claim_parse(const char *json, size_t len, const char *uid, const char *driver,
                    const char *pool, struct ism_claim_alloc *out, ism_error_t *err)
{
    struct ism_claim_alloc *a;
    json_error_t jerr;
    json_t *root, *meta, *alloc, *results;
    char got[ISM_DRA_UID_MAX + 2];
    size_t i;
    int rc = -1;

    if (!json || !uid || !driver || !pool || !out)
        return ism_err(err, EINVAL, "claim: invalid argument");
    if (!ism_dra_uid_valid(uid))
        return ism_err(err, EINVAL, "claim UID is not a UID");
    if (!(a = calloc(1, sizeof(*a))))
        return ism_err(err, ENOMEM, "out of memory");
    a->mem = ISM_MEM_LOCAL;
    if (!(root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr))) {
        ism_err(err, EINVAL, "claim %s: not JSON: %s", uid, jerr.text);
        goto out;
    }
    meta = json_object_get(root, "metadata");
    if (!json_is_object(meta) || get_str(meta, "uid", got, sizeof(got)) < 0 || !got[0]) {
        ism_err(err, EINVAL, "claim %s: metadata.uid: missing or not a short string", uid);
        goto out;
    }
    if (strcmp(got, uid) != 0) {
        ism_err(err, EINVAL,
                "claim %s: the API server has UID %s under this name (deleted and created again?)",
                uid, got);
        goto out;
    }
    snprintf(a->uid, sizeof(a->uid), "%s", uid);
    if (slurm_job(meta, &a->slurm_job, err) < 0) {
        ism_errprefix(err, "claim %s", uid);
        goto out;
    }
    alloc = json_object_get(json_object_get(root, "status"), "allocation");
    if (!json_is_object(alloc)) {
        ism_err(err, EINVAL, "claim %s: not allocated (status.allocation is %s)", uid,
                alloc ? "not an object" : "missing");
        goto out;
    }
    results = json_object_get(json_object_get(alloc, "devices"), "results");
    if (results && !json_is_null(results) && !json_is_array(results)) {
        ism_err(err, EINVAL, "claim %s: status.allocation.devices.results: not a list", uid);
        goto out;
    }
    for (i = 0; i < json_array_size(results); i++)
        if (take_result(json_array_get(results, i), (int)i, driver, pool, a, err) < 0)
            goto fail;
    if (a->ndevs == 0) {
        ism_err(err, EINVAL, "claim %s: no device of driver %s is allocated", uid, driver);
        goto out;
    }
    if (take_config(json_object_get(json_object_get(alloc, "devices"), "config"), driver, a,
                    err) < 0)
        goto fail;
    *out = *a;
    rc = 0;
    goto out;
fail:
    ism_errprefix(err, "claim %s: status.allocation.devices", uid);
out:
    json_decref(root);
    free(a);
    return rc;
}

/* mem hbm: the extra memory near cpus into mems. */
static int add_extra_memory(const ism_topo_t *topo, const ism_bitmap_t *cpus, ism_bitmap_t *mems,
                            ism_error_t *err)
{
    ism_bitmap_t *core_nodes = ism_topo_core_nodes(topo);
    int rc = core_nodes ? ism_topo_add_extra_near(topo, core_nodes, cpus, mems) : -1;

    ism_bitmap_destroy(core_nodes);
    return rc < 0 ? ism_err(err, ENOMEM, "out of memory") : 0;
}

int ism_claim_cpuset(const struct ism_claim_alloc *alloc, const ism_topo_t *topo,
                     ism_bitmap_t **cpus, ism_bitmap_t **mems, ism_error_t *err)
{
    ism_bitmap_t *c = ism_bitmap_create(), *m = ism_bitmap_create();
    int i;

    if (!alloc || !topo || !cpus || !mems) {
        ism_err(err, EINVAL, "claim cpuset: invalid argument");
        goto fail;
    }
    if (!c || !m) {
        ism_err(err, ENOMEM, "out of memory");
        goto fail;
    }
    for (i = 0; i < alloc->ndevs; i++) {
        const struct ism_core *core = ism_topo_core(topo, alloc->devs[i].core);

        if (!core) {
            ism_err(err, EINVAL, "claim %s: device %s: this node has no core %d", alloc->uid,
                    alloc->devs[i].device, alloc->devs[i].core);
            goto fail;
        }
        if (ism_bitmap_or(c, core->cpus) < 0 || ism_bitmap_set(m, core->numa < 0 ? 0 : core->numa) < 0) {
            ism_err(err, ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (alloc->mem == ISM_MEM_HBM && add_extra_memory(topo, c, m, err) < 0)
        goto fail;
    *cpus = c;
    *mems = m;
    return 0;
fail:
    ism_bitmap_destroy(c);
    ism_bitmap_destroy(m);
    return -1;
}
