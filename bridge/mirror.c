/* mirror.c - claims mirroring Slurm jobs: the plan and the reconciler
 * (mirror.h). */
#include <config.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/backoff.h"
#include "bridge/mirror.h"
#include "bridge/model.h"
#include "lib/util/log.h"

static const ism_backoff_t RETRY = { 500, 60000 }; /* after a failed write */

const ism_kube_resource_t mirror_resource = { "resource.k8s.io", "v1", "resourceclaims", true };

struct mirror {
    struct mirror_ctx c;
    ism_kube_informer_t *cache;  /* claims isthmusd manages in ns */
    const ism_slurm_jobs_t *jobs; /* borrowed: the bridge's last snapshot */
    json_t *want;      /* claim name -> wanted claim; NULL when to recompute */
    json_t *in_flight; /* claim name -> true: a write submitted, no answer yet */
    uint64_t jobs_mirrored; /* jobs mirrored by want */
    bool dirty;
    bool failed;       /* a write of this pass failed (backoff already set) */
    int failures;      /* consecutive passes with a failed write */
    int64_t not_before; /* monotonic ms: no pass before, after a failure */
};

/* ------------------------------------------------------------ informer */

static void on_change(void *arg)
{
    struct mirror *m = arg;
    m->dirty = true;
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

static const ism_kube_handlers_t handlers = {
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

void mirror_jobs_changed(struct mirror *m, const ism_slurm_jobs_t *jobs)
{
    if (!m)
        return;
    m->jobs = jobs;
    mirror_mark(m);
}

/* ------------------------------------------------------------ wanted */

static const char *name_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
}

static bool started_by_isthmus(const struct ism_slurm_job *j)
{
    return j->admin_comment && strncmp(j->admin_comment, BRIDGE_JOB_TAG,
                                       strlen(BRIDGE_JOB_TAG)) == 0;
}

/* Add job j's claims to want; how many, or -1 (ENOMEM). */
static int want_job(const struct ism_slurm_job *j, const struct poolmap *pools, const char *ns,
                    json_t *want)
{
    ism_error_t err = ISM_ERROR_INIT;
    int claims = 0;

    for (int i = 0; i < j->nnodes && j->node; i++) {
        const struct ism_slurm_job_node *jn = &j->node[i];
        const char *pool = poolmap_pool_of(pools, jn->name);
        json_t *list, *c;
        size_t k;

        if (!pool || !jn->cores || ism_bitmap_empty(jn->cores))
            continue;
        if (!(list = ism_claims_build(j->id, j->name, pool, jn->name, jn->cores, ns, &err))) {
            ism_log_error("job %u on %s: %s", j->id, jn->name, err.text);
            continue;
        }
        json_array_foreach(list, k, c) {
            const char *name = name_of(c);
            if (!name)
                continue;
            if (json_object_set(want, name, c) < 0) {
                json_decref(list);
                return -1;
            }
            claims++;
        }
        json_decref(list);
    }
    return claims;
}

json_t *mirror_want(const ism_slurm_jobs_t *jobs, const struct poolmap *pools, const char *ns,
                    uint64_t *mirrored)
{
    json_t *want = json_object();
    uint64_t n = 0;

    for (int i = 0; want && jobs && i < jobs->count; i++) {
        const struct ism_slurm_job *j = &jobs->jobs[i];
        int claims;
        if (started_by_isthmus(j))
            continue;
        if ((claims = want_job(j, pools, ns, want)) < 0) {
            json_decref(want);
            want = NULL;
        } else if (claims > 0) {
            n++;
        }
    }
    if (mirrored)
        *mirrored = want ? n : 0;
    if (!want)
        errno = ENOMEM;
    return want;
}

/* ------------------------------------------------------------ the plan */

static bool has_finalizer(const json_t *obj)
{
    return ism_has_finalizer(obj, ISM_FINALIZER);
}

static bool deleting(const json_t *obj)
{
    json_t *ts = json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp");
    return ts && !json_is_null(ts);
}

static const char *uid_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
}

int mirror_plan_status(const char *ns, const json_t *answer, const json_t *wanted,
                       struct writes *out)
{
    json_t *body = json_deep_copy(answer);

    if (!body || json_object_set(body, "status", json_object_get(wanted, "status")) < 0) {
        json_decref(body);
        errno = ENOMEM;
        return -1;
    }
    return writes_add(out, WRITE_UPDATE_STATUS, &mirror_resource, ns, name_of(answer), NULL, body);
}

/* obj with our finalizer put back (add) or taken off. */
static int plan_finalizer(const char *ns, const json_t *obj, bool add, struct writes *out)
{
    json_t *body = ism_with_finalizer(obj, ISM_FINALIZER, add);

    if (!body)
        return -1;
    return writes_add(out, WRITE_UPDATE, &mirror_resource, ns, name_of(obj), NULL, body);
}

static int plan_delete(const char *ns, const json_t *obj, struct writes *out)
{
    return writes_add(out, WRITE_DELETE, &mirror_resource, ns, name_of(obj), uid_of(obj), NULL);
}

/* One wanted claim against what exists. */
static int plan_wanted(const struct mirror_input *in, const json_t *wanted, struct writes *out)
{
    char key[600];
    json_t *have, *body;

    snprintf(key, sizeof(key), "%s/%s", in->ns, name_of(wanted));
    have = json_object_get(in->have, key);
    if (!have) {
        if (!(body = json_copy((json_t *)wanted)) || json_object_del(body, "status") < 0) {
            json_decref(body);
            errno = ENOMEM;
            return -1;
        }
        return writes_add(out, WRITE_CREATE, &mirror_resource, in->ns, name_of(wanted), NULL, body);
    }
    if (deleting(have))
        return 0; /* gone soon (below); then made again */
    if (!json_object_get(json_object_get(have, "status"), "allocation"))
        return mirror_plan_status(in->ns, have, wanted, out);
    if (!ism_claim_allocation_equal(have, wanted))
        return plan_delete(in->ns, have, out); /* immutable: a reused job id, or an edit */
    if (!has_finalizer(have))
        return plan_finalizer(in->ns, have, true, out);
    return 0;
}

/* One existing claim that no job wants. */
static int plan_unwanted(const struct mirror_input *in, const json_t *have, struct writes *out)
{
    if (!deleting(have))
        return plan_delete(in->ns, have, out);
    if (has_finalizer(have))
        return plan_finalizer(in->ns, have, false, out);
    return 0;
}

int mirror_plan(const struct mirror_input *in, struct writes *out)
{
    const char *key;
    json_t *obj;

    if (!in || !in->ns || !out) {
        errno = EINVAL;
        return -1;
    }
    json_object_foreach((json_t *)in->want, key, obj) {
        if (json_object_get(in->in_flight, name_of(obj)))
            continue;
        if (plan_wanted(in, obj, out) < 0)
            return -1;
    }
    json_object_foreach((json_t *)in->have, key, obj) {
        const char *name = name_of(obj);
        if (!name || json_object_get(in->want, name) || json_object_get(in->in_flight, name))
            continue;
        if (plan_unwanted(in, obj, out) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ reconcile */

/* After a failed write: no pass before the backoff, once per pass. */
static void failed(struct mirror *m)
{
    m->dirty = true;
    if (m->failed)
        return;
    m->failed = true;
    m->failures++;
    m->not_before = ism_kube_now_ms() + ism_backoff_delay(&RETRY, m->failures);
    if (m->c.errors)
        (*m->c.errors)++;
}

static void submit(struct mirror *m, const struct write *w);

static void write_done(void *arg, const struct write *w, int rc, const ism_kube_status_t *st,
                       json_t *answer, const ism_error_t *err)
{
    struct mirror *m = arg;
    const json_t *wanted;
    struct writes next = { 0 };
    (void)st;

    json_object_del(m->in_flight, w->name);
    if (rc < 0) {
        ism_log_warn("ResourceClaim %s/%s: %s failed: %s", w->ns, w->name, write_op_name(w->op),
                     err->text);
        failed(m);
        return;
    }
    if (w->op == WRITE_DELETE) {
        ism_log_info("ResourceClaim %s/%s deleted", w->ns, w->name);
        /* Our finalizer holds it: take it off now, from the answer, rather
         * than when the watch brings the change (a watch restarted after
         * an outage may bring it late). */
        if (answer && deleting(answer) && has_finalizer(answer) && m->c.may_write(m->c.arg)) {
            if (plan_finalizer(w->ns, answer, false, &next) < 0)
                failed(m);
            else
                submit(m, &next.v[0]);
            writes_clear(&next);
        }
        return;
    }
    if (w->op == WRITE_UPDATE_STATUS)
        ism_log_info("ResourceClaim %s/%s allocated", w->ns, w->name);
    if (w->op != WRITE_CREATE)
        return;
    ism_log_info("ResourceClaim %s/%s created", w->ns, w->name);
    /* The allocation goes onto the object the server made, at once. */
    wanted = m->want ? json_object_get(m->want, w->name) : NULL;
    if (!wanted || !answer || !m->c.may_write(m->c.arg))
        return; /* the next pass writes it */
    if (mirror_plan_status(w->ns, answer, wanted, &next) < 0) {
        failed(m);
    } else {
        submit(m, &next.v[0]);
    }
    writes_clear(&next);
}

static void submit(struct mirror *m, const struct write *w)
{
    if (json_object_set_new(m->in_flight, w->name, json_true()) < 0) {
        failed(m);
        return;
    }
    if (apply_submit(m->c.apply, w, write_done, m) < 0) {
        ism_log_warn("ResourceClaim %s/%s: %s not started", w->ns, w->name, write_op_name(w->op));
        json_object_del(m->in_flight, w->name);
        failed(m);
    }
}

int mirror_reconcile(struct mirror *m, int budget, bool *more)
{
    struct mirror_input in;
    struct writes plan = { 0 };
    int writes = 0;

    *more = false;
    if (!m->dirty || ism_kube_now_ms() < m->not_before)
        return 0;
    if (!m->want && !(m->want = mirror_want(m->jobs, m->c.pools, m->c.ns, &m->jobs_mirrored))) {
        ism_log_error("mirror: out of memory (trying again later)");
        m->failed = false;
        failed(m);
        return 0;
    }
    m->dirty = false;
    m->failed = false;
    in = (struct mirror_input){ .ns = m->c.ns, .want = m->want,
                                .have = ism_kube_informer_cache(m->cache),
                                .in_flight = m->in_flight };
    if (mirror_plan(&in, &plan) < 0) {
        ism_log_error("mirror: out of memory (trying again later)");
        failed(m);
    }
    if (plan.n)
        ism_log_debug("mirror: %zu writes planned, budget %d", plan.n, budget);
    for (size_t i = 0; i < plan.n && writes < budget; i++) {
        writes++;
        submit(m, &plan.v[i]);
        if (plan.v[i].op == WRITE_CREATE)
            writes++; /* and its allocation */
    }
    if (writes >= budget && plan.n > 0)
        m->dirty = *more = true;
    writes_clear(&plan);
    if (!m->failed)
        m->failures = 0;
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
    *jobs = m && m->want ? m->jobs_mirrored : 0;
    *claims = m && m->want ? json_object_size(m->want) : 0;
}

/* ------------------------------------------------------------ lifetime */

struct mirror *mirror_create(const struct mirror_ctx *ctx, ism_error_t *err)
{
    struct mirror *m;
    char selector[128];

    if (!ctx || !ctx->kube || !ctx->apply || !ctx->pools || !ctx->ns || !ctx->may_write) {
        ism_err(err, EINVAL, "mirror: incomplete context");
        return NULL;
    }
    if (!(m = calloc(1, sizeof(*m))) || !(m->in_flight = json_object())) {
        mirror_destroy(m);
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    m->c = *ctx;
    m->dirty = true;
    snprintf(selector, sizeof(selector), "%s=%s", ISM_LABEL_MANAGED_BY, ISM_MANAGER);
    if (!(m->cache = ism_kube_informer_create(ctx->kube, &mirror_resource, ctx->ns, selector,
                                              NULL, &handlers, m, err))) {
        mirror_destroy(m);
        return NULL;
    }
    return m;
}

ism_kube_informer_t *mirror_informer(const struct mirror *x)
{
    return x ? x->cache : NULL;
}

bool mirror_synced(const struct mirror *m)
{
    return m && ism_kube_informer_synced(m->cache);
}

void mirror_destroy(struct mirror *m)
{
    int saved = errno;

    if (!m)
        return;
    ism_kube_informer_destroy(m->cache);
    json_decref(m->want);
    json_decref(m->in_flight);
    free(m);
    errno = saved;
}
