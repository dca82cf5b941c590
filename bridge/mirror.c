/* mirror.c - Slurm's own jobs as allocated ResourceClaims, so every DRA
 * allocator (kube-scheduler included) sees their cores as taken.
 *
 * For each job that holds cores and was not started by isthmus, the
 * namespace isthmus-system holds claims slurm-<job>-<pool>-<i> (model.h),
 * at most 32 devices each, allocated to exactly the job's cores.  A claim
 * is created without status, then its allocation is written (the API
 * ignores status on create).  Claims carry isthmusd's own finalizer and
 * never the built-in one, so kube-controller-manager never deallocates
 * them; when the job is gone, isthmusd deletes the claim and then drops
 * its finalizer.
 *
 * Level-based: any change of the jobs, the Node map or a claim marks the
 * mirror dirty, and a pass compares every wanted claim with the cache.
 */
#include <config.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "lib/util/log.h"
#include "model.h"

#define RETRY_BASE_MS 500
#define RETRY_CAP_MS 60000

struct mirror {
    struct bridge *b;
    json_t *want;      /* claim name -> wanted claim; NULL when to recompute */
    uint64_t jobs;     /* jobs mirrored by want */
    bool dirty;
    int failures;      /* consecutive passes with a failed write */
    int64_t not_before; /* monotonic ms: no pass before, after a failure */
};

/* ------------------------------------------------------------ informer */

static void on_change(void *arg)
{
    struct bridge *b = arg;
    b->mirror->dirty = true;
}

static void on_add(void *arg, const char *key, json_t *obj)
{
    (void)key, (void)obj;
    on_change(arg);
}

static void on_update(void *arg, const char *key, json_t *old, json_t *obj)
{
    (void)key, (void)old, (void)obj;
    on_change(arg);
}

static void on_del(void *arg, const char *key, json_t *old)
{
    (void)key, (void)old;
    on_change(arg);
}

const ism_kube_handlers_t mirror_handlers = {
    .add = on_add, .update = on_update, .del = on_del, .synced = on_change,
};

void mirror_mark(struct mirror *m)
{
    if (!m)
        return;
    json_decref(m->want);
    m->want = NULL;
    m->dirty = true;
}

/* ------------------------------------------------------------ wanted */

static bool started_by_isthmus(const struct ism_slurm_job *j)
{
    return j->admin_comment && strncmp(j->admin_comment, BRIDGE_JOB_TAG,
                                       strlen(BRIDGE_JOB_TAG)) == 0;
}

static int want_job(struct mirror *m, const struct ism_slurm_job *j, json_t *want)
{
    ism_error_t err = ISM_ERROR_INIT;
    int claims = 0;

    for (int i = 0; i < j->nnodes && j->node; i++) {
        const struct ism_slurm_job_node *jn = &j->node[i];
        const char *pool = bridge_pool_of(m->b, jn->name);
        json_t *list, *c;
        size_t k;

        if (!pool || !jn->cores || ism_bitmap_empty(jn->cores))
            continue;
        if (!(list = ism_claims_build(j->id, j->name, pool, jn->name, jn->cores, m->b->ns, &err))) {
            ism_log_error("job %u on %s: %s", j->id, jn->name, err.text);
            continue;
        }
        json_array_foreach(list, k, c) {
            const char *name = json_string_value(json_object_get(json_object_get(c, "metadata"), "name"));
            if (name && json_object_set(want, name, c) == 0)
                claims++;
        }
        json_decref(list);
    }
    return claims;
}

/* Every claim the current jobs need. */
static json_t *compute_want(struct mirror *m)
{
    const ism_slurm_jobs_t *jobs = m->b->sjobs;
    json_t *want = json_object();

    m->jobs = 0;
    for (int i = 0; want && jobs && i < jobs->count; i++) {
        const struct ism_slurm_job *j = &jobs->jobs[i];
        if (!started_by_isthmus(j) && want_job(m, j, want) > 0)
            m->jobs++;
    }
    return want;
}

/* ------------------------------------------------------------ writes */

static const char *name_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
}

static bool has_finalizer(const json_t *obj)
{
    json_t *list = json_object_get(json_object_get(obj, "metadata"), "finalizers"), *f;
    size_t i;

    json_array_foreach(list, i, f) {
        if (json_is_string(f) && strcmp(json_string_value(f), ISM_FINALIZER) == 0)
            return true;
    }
    return false;
}

static void warn_write(const char *what, const json_t *obj, const ism_error_t *err)
{
    ism_log_warn("ResourceClaim %s: %s failed: %s", name_of(obj), what, err->text);
}

/* PUT obj's status as wanted's (obj carries the resourceVersion). */
static int write_status(struct mirror *m, const json_t *obj, const json_t *wanted)
{
    json_t *body = json_deep_copy(obj);
    ism_error_t err = ISM_ERROR_INIT;
    int rc = -1;

    if (body && json_object_set(body, "status", json_object_get(wanted, "status")) == 0)
        rc = ism_kube_update(m->b->kube, &bridge_claims, m->b->ns, body, "status", NULL, NULL, &err);
    if (rc < 0)
        warn_write("allocation", obj, &err);
    json_decref(body);
    return rc;
}

static int create_claim(struct mirror *m, const json_t *wanted, int *writes)
{
    json_t *body = json_copy((json_t *)wanted), *made = NULL;
    ism_error_t err = ISM_ERROR_INIT;
    int rc = -1;

    if (body && json_object_del(body, "status") == 0) {
        (*writes)++;
        rc = ism_kube_create_object(m->b->kube, &bridge_claims, m->b->ns, body, &made, NULL, &err);
        if (rc < 0)
            warn_write("create", wanted, &err);
    }
    if (rc == 0) {
        (*writes)++;
        rc = write_status(m, made, wanted);
        if (rc == 0)
            ism_log_info("ResourceClaim %s/%s created", m->b->ns, name_of(wanted));
    }
    json_decref(made);
    json_decref(body);
    return rc;
}

/* Put our finalizer back (add) or take it off (remove). */
static int set_finalizer(struct mirror *m, const json_t *obj, bool add, int *writes)
{
    json_t *body = json_deep_copy(obj), *meta, *list, *kept = json_array(), *f;
    ism_error_t err = ISM_ERROR_INIT;
    size_t i;
    int rc = -1;

    meta = json_object_get(body, "metadata");
    list = json_object_get(meta, "finalizers");
    json_array_foreach(list, i, f) {
        if (!json_is_string(f) || strcmp(json_string_value(f), ISM_FINALIZER) != 0)
            json_array_append(kept, f);
    }
    if (add)
        json_array_append_new(kept, json_string(ISM_FINALIZER));
    if (body && kept && json_object_set(meta, "finalizers", kept) == 0) {
        (*writes)++;
        rc = ism_kube_update(m->b->kube, &bridge_claims, m->b->ns, body, NULL, NULL, NULL, &err);
    }
    if (rc < 0)
        warn_write(add ? "adding the finalizer" : "removing the finalizer", obj, &err);
    json_decref(kept);
    json_decref(body);
    return rc;
}

static int delete_claim(struct mirror *m, const json_t *obj, int *writes)
{
    const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
    ism_error_t err = ISM_ERROR_INIT;

    (*writes)++;
    if (ism_kube_delete(m->b->kube, &bridge_claims, m->b->ns, name_of(obj), uid, NULL, NULL, &err) < 0 &&
        errno != ENOENT) {
        warn_write("delete", obj, &err);
        return -1;
    }
    ism_log_info("ResourceClaim %s/%s deleted", m->b->ns, name_of(obj));
    return 0;
}

/* ------------------------------------------------------------ reconcile */

static bool deleting(const json_t *obj)
{
    return json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp") != NULL;
}

/* One wanted claim against what exists. */
static int sync_wanted(struct mirror *m, const json_t *wanted, int *writes)
{
    char key[600];
    json_t *have;

    snprintf(key, sizeof(key), "%s/%s", m->b->ns, name_of(wanted));
    have = ism_kube_informer_get(m->b->claim_inf, key);
    if (!have)
        return create_claim(m, wanted, writes);
    if (deleting(have))
        return 0; /* gone soon (below); then made again */
    if (!json_object_get(json_object_get(have, "status"), "allocation")) {
        (*writes)++;
        return write_status(m, have, wanted);
    }
    if (!ism_claim_allocation_equal(have, wanted)) {
        /* The allocation is immutable: a reused job id, or an edit. */
        return delete_claim(m, have, writes);
    }
    if (!has_finalizer(have))
        return set_finalizer(m, have, true, writes);
    return 0;
}

/* One existing claim that no job wants. */
static int sync_unwanted(struct mirror *m, const json_t *have, int *writes)
{
    if (!deleting(have))
        return delete_claim(m, have, writes);
    if (has_finalizer(have))
        return set_finalizer(m, have, false, writes);
    return 0;
}

int mirror_reconcile(struct mirror *m, int budget, bool *more)
{
    json_t *cache = ism_kube_informer_cache(m->b->claim_inf), *obj;
    const char *key;
    int writes = 0, rc = 0;

    *more = false;
    if (!m->dirty || ism_kube_now_ms() < m->not_before || m->b->jobs_unsupported)
        return 0;
    if (!m->want && !(m->want = compute_want(m)))
        return 0;
    m->dirty = false;
    json_object_foreach(m->want, key, obj) {
        if (writes >= budget)
            break;
        if (sync_wanted(m, obj, &writes) < 0)
            rc = -1;
    }
    json_object_foreach(cache, key, obj) {
        if (writes >= budget)
            break;
        if (!json_object_get(m->want, name_of(obj)) && sync_unwanted(m, obj, &writes) < 0)
            rc = -1;
    }
    if (writes >= budget)
        m->dirty = *more = true;
    if (rc < 0) {
        int64_t delay = (int64_t)RETRY_BASE_MS << (m->failures < 7 ? m->failures : 7);
        m->failures++;
        m->not_before = ism_kube_now_ms() + (delay < RETRY_CAP_MS ? delay : RETRY_CAP_MS);
        m->dirty = true;
        m->b->reconcile_errors++;
    } else {
        m->failures = 0;
    }
    return writes;
}

int64_t mirror_wake_ms(const struct mirror *m)
{
    int64_t left;

    if (!m || !m->dirty || m->failures == 0)
        return -1;
    left = m->not_before - ism_kube_now_ms();
    return left > 0 ? left : 0;
}

void mirror_stats(const struct mirror *m, uint64_t *jobs, uint64_t *claims)
{
    *jobs = m && m->want ? m->jobs : 0;
    *claims = m && m->want ? json_object_size(m->want) : 0;
}

/* ------------------------------------------------------------ lifetime */

struct mirror *mirror_create(struct bridge *b, ism_error_t *err)
{
    struct mirror *m = calloc(1, sizeof(*m));

    if (!m) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    m->b = b;
    m->dirty = true;
    return m;
}

void mirror_destroy(struct mirror *m)
{
    int saved = errno;

    if (!m)
        return;
    json_decref(m->want);
    free(m);
    errno = saved;
}
