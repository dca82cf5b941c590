/* kube_leader.c - Lease leader election.  See kube_leader.h. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kube/kube_internal.h"
#include "lib/kube/kube_leader.h"
#include "lib/util/log.h"

static const ism_kube_resource_t LEASES = { "coordination.k8s.io", "v1", "leases", true };

struct ism_kube_leader {
    ism_kube_t *k;
    char *ns, *name, *identity;
    int lease_ms, renew_deadline_ms, retry_ms;
    void (*started)(void *arg);
    void (*stopped)(void *arg);
    void *arg;
    ism_kube_timer_t *timer;
    bool leading;            /* as far as callbacks were told */
    int64_t valid_until;     /* monotonic ms; writes allowed before this */
    char *observed;          /* the lease's spec as last seen, compact JSON */
    int64_t observed_at;     /* monotonic ms when it last changed */
    uint64_t writes;         /* Lease writes tried (creates, renewals, releases) */
};

static int64_t guard(void *arg)
{
    const ism_kube_leader_t *le = arg;
    return le->valid_until - ism_kube_now_ms();
}

uint64_t ism_kube_leader_writes(const ism_kube_leader_t *le)
{
    return le ? le->writes : 0;
}

bool ism_kube_leader_is_leader(const ism_kube_leader_t *le)
{
    return le && ism_kube_now_ms() < le->valid_until;
}

/* Tell the callbacks when leadership changed. */
static void notify(ism_kube_leader_t *le)
{
    bool now = ism_kube_leader_is_leader(le);
    if (now == le->leading)
        return;
    le->leading = now;
    ism_log_notice("lease %s/%s: %s is %s the leader", le->ns, le->name, le->identity,
                   now ? "now" : "no longer");
    if (now && le->started)
        le->started(le->arg);
    if (!now && le->stopped)
        le->stopped(le->arg);
}

/* Remember when the lease's spec last changed, by our own clock. */
static void observe(ism_kube_leader_t *le, const json_t *spec, int64_t now)
{
    char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return;
    if (!le->observed || strcmp(text, le->observed) != 0) {
        free(le->observed);
        le->observed = text;
        le->observed_at = now;
    } else {
        free(text);
    }
}

/* The lease spec we write: held by us from now on. */
static json_t *our_spec(ism_kube_leader_t *le, const json_t *old)
{
    const char *holder = json_string_value(json_object_get(old, "holderIdentity"));
    bool ours = holder && strcmp(holder, le->identity) == 0;
    json_int_t transitions = json_integer_value(json_object_get(old, "leaseTransitions"));
    json_t *acquire = ours ? json_incref(json_object_get(old, "acquireTime")) : ism_kube_micro_time_now();

    return json_pack("{s:s, s:i, s:o, s:o, s:I}", "holderIdentity", le->identity,
                     "leaseDurationSeconds", (le->lease_ms + 999) / 1000, "acquireTime",
                     acquire ? acquire : ism_kube_micro_time_now(), "renewTime", ism_kube_micro_time_now(),
                     "leaseTransitions", ours || !holder || !*holder ? transitions
                                                                     : transitions + 1);
}

/* Write the lease (create it, or update the copy we read); the write
 * guard is ours, and the lease write itself must pass it. */
static int write_lease(ism_kube_leader_t *le, json_t *lease, bool create, ism_error_t *err)
{
    int rc;
    ism_kube_set_write_guard(le->k, NULL, NULL);
    le->writes++;
    rc = create ? ism_kube_create_object(le->k, &LEASES, le->ns, lease, NULL, NULL, err)
                : ism_kube_update(le->k, &LEASES, le->ns, lease, NULL, NULL, NULL, err);
    ism_kube_set_write_guard(le->k, guard, le);
    return rc;
}

/* One round: read, then take or renew when allowed.  True when we hold
 * the lease now. */
static bool try_acquire_or_renew(ism_kube_leader_t *le, int64_t start, ism_error_t *err)
{
    ism_kube_status_t st;
    json_t *lease = NULL, *spec = NULL;
    bool won = false;

    if (ism_kube_get(le->k, &LEASES, le->ns, le->name, &lease, &st, err) < 0) {
        if (st.reason != ISM_KUBE_NOT_FOUND)
            return false;
        lease = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{}}", "apiVersion", "coordination.k8s.io/v1",
                          "kind", "Lease", "metadata", "name", le->name, "namespace", le->ns,
                          "spec");
        ism_error_clear(err);
    }
    if (!lease)
        return false;
    json_t *old = json_object_get(lease, "spec");
    const char *holder = json_string_value(json_object_get(old, "holderIdentity"));
    observe(le, old, start);
    if (holder && *holder && strcmp(holder, le->identity) != 0 &&
        start < le->observed_at + le->lease_ms)
        goto done; /* held by another, and not expired by our clock */
    if ((spec = our_spec(le, old)) && json_object_set(lease, "spec", spec) == 0 &&
        write_lease(le, lease, !json_object_get(lease, "metadata") ||
                                   !json_object_get(json_object_get(lease, "metadata"),
                                                    "resourceVersion"), err) == 0) {
        won = true;
        le->valid_until = start + le->renew_deadline_ms;
        observe(le, spec, start);
    }
done:
    json_decref(spec);
    json_decref(lease);
    return won;
}

static void round_cb(ism_kube_t *k, void *arg)
{
    ism_kube_leader_t *le = arg;
    ism_error_t err = ISM_ERROR_INIT;
    /* Validity counts from before the request left: the server may store
     * the renewal at any moment after this. */
    int64_t start = ism_kube_now_ms();

    le->timer = NULL;
    if (!try_acquire_or_renew(le, start, &err) && err.text[0] && le->leading)
        ism_log_warn("lease %s/%s: renewal failed: %s", le->ns, le->name, err.text);
    notify(le);
    int64_t next = le->retry_ms - le->retry_ms / 5 + ism_kube_jitter(le->retry_ms / 5 + 1);
    /* A leader that cannot renew must notice the deadline on time. */
    if (le->leading && le->valid_until - ism_kube_now_ms() < next)
        next = le->valid_until - ism_kube_now_ms();
    le->timer = ism_kube_timer_add(k, next > 0 ? next : 0, round_cb, le);
}

static int check_options(const ism_kube_leader_options_t *o, ism_error_t *err)
{
    if (!o || !o->ns || !o->name || !o->identity || !*o->identity)
        return ism_err(err, EINVAL, "leader election: namespace, name and identity are required");
    if (o->retry_ms < 1 || o->retry_ms >= o->renew_deadline_ms ||
        o->renew_deadline_ms >= o->lease_ms)
        return ism_err(err, EINVAL, "leader election: need 0 < retry (%d ms) < renew deadline "
                       "(%d ms) < lease duration (%d ms)", o->retry_ms, o->renew_deadline_ms,
                       o->lease_ms);
    return 0;
}

ism_kube_leader_t *ism_kube_leader_create(ism_kube_t *k, const ism_kube_leader_options_t *o,
                                          ism_error_t *err)
{
    ism_kube_leader_t *le;

    if (!k || check_options(o, err) < 0) {
        ism_err(err, EINVAL, "leader election: bad arguments");
        return NULL;
    }
    if (!(le = calloc(1, sizeof(*le))) || !(le->ns = strdup(o->ns)) ||
        !(le->name = strdup(o->name)) || !(le->identity = strdup(o->identity))) {
        ism_err(err, ENOMEM, "out of memory");
        goto error;
    }
    le->k = k;
    le->lease_ms = o->lease_ms;
    le->renew_deadline_ms = o->renew_deadline_ms;
    le->retry_ms = o->retry_ms;
    le->started = o->started;
    le->stopped = o->stopped;
    le->arg = o->arg;
    if (!(le->timer = ism_kube_timer_add(k, 0, round_cb, le))) {
        ism_err(err, ENOMEM, "out of memory");
        goto error;
    }
    ism_kube_set_write_guard(k, guard, le);
    return le;
error:
    ism_kube_leader_destroy(le);
    return NULL;
}

int ism_kube_leader_release(ism_kube_leader_t *le, ism_error_t *err)
{
    json_t *lease = NULL;
    int rc = -1;

    if (!le)
        return ism_err(err, EINVAL, "leader election: no elector");
    if (!ism_kube_leader_is_leader(le))
        return 0;
    le->valid_until = 0; /* stop writing first */
    notify(le);
    if (ism_kube_get(le->k, &LEASES, le->ns, le->name, &lease, NULL, err) == 0) {
        json_t *spec = json_object_get(lease, "spec");
        const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
        if (!holder || strcmp(holder, le->identity) != 0) {
            rc = 0; /* someone else holds it already */
        } else {
            json_object_set_new(spec, "holderIdentity", json_string(""));
            json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
            json_object_set_new(spec, "renewTime", ism_kube_micro_time_now());
            rc = write_lease(le, lease, false, err);
        }
    }
    json_decref(lease);
    return rc;
}

void ism_kube_leader_destroy(ism_kube_leader_t *le)
{
    int saved = errno;

    if (!le)
        return;
    if (le->k) {
        ism_kube_timer_cancel(le->k, le->timer);
        ism_kube_set_write_guard(le->k, NULL, NULL);
    }
    free(le->ns);
    free(le->name);
    free(le->identity);
    free(le->observed);
    free(le);
    errno = saved;
}
