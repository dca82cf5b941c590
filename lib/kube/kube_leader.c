/* kube_leader.c - Lease leader election.  See kube_leader.h. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kube/kube_internal.h"
#include "lib/kube/kube_leader.h"
#include "lib/util/log.h"
#include "lib/util/random.h"

static const ism_kube_resource_t LEASES = { "coordination.k8s.io", "v1", "leases", true };

struct ism_kube_leader {
    ism_kube_t *k;
    char *ns, *name, *identity;
    int lease_ms, renew_deadline_ms, retry_ms;
    void (*started)(void *arg);
    void (*stopped)(void *arg);
    void *arg;
    ism_kube_timer_t timer;  /* the next round */
    ism_kube_timer_t expiry; /* the write deadline: tell the callbacks on time */
    ism_kube_call_t *call;   /* the round's (or the release's) request in flight */
    int64_t round_start;     /* monotonic ms when the round's first request left */
    bool releasing;          /* the call belongs to ism_kube_leader_release */
    bool leading;            /* as far as callbacks were told */
    int64_t valid_until;     /* monotonic ms; writes allowed before this */
    char *observed;          /* the lease's spec as last seen, compact JSON */
    json_t *wrote;           /* the spec of the write in flight */
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

static void round_read(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                       json_t *lease, const ism_error_t *err);
static void round_written(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                          json_t *answer, const ism_error_t *err);

/* A Lease request of the elector: one try each (a round is retried by the
 * next round, every retry period), each try bounded by half the renew
 * deadline so a round of two requests ends before the deadline, and not
 * asked to the write guard (which is the elector itself: a Lease write is
 * safe by its resourceVersion, and must be able to take the lease back).
 * Nor do they wait for the rate limiter: the object writes of a busy
 * leader must not delay its own renewals past the deadline. */
static void tune(ism_kube_leader_t *le, ism_kube_call_t *c)
{
    ism_kube_call_tune(c, 0, le->renew_deadline_ms / 2 > 0 ? le->renew_deadline_ms / 2 : 1,
                       true);
}

/* The round is over: tell the callbacks, arm the next round. */
static void round_end(ism_kube_leader_t *le)
{
    notify(le);
    int64_t next = le->retry_ms - le->retry_ms / 5 + ism_random_below(le->retry_ms / 5 + 1);
    ism_kube_timer_arm(le->k, &le->timer, next);
}

/* Write the lease (create it, or update the copy we read). */
static int write_lease(ism_kube_leader_t *le, json_t *lease, bool create, ism_kube_call_f done,
                       ism_error_t *err)
{
    le->writes++;
    le->call = create ? ism_kube_create_object_async(le->k, &LEASES, le->ns, lease, done, le,
                                                     err)
                      : ism_kube_update_async(le->k, &LEASES, le->ns, lease, NULL, done, le,
                                              err);
    if (!le->call)
        return -1;
    tune(le, le->call);
    return 0;
}

/* The round read the lease: take it or renew it when allowed. */
static void round_read(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                       json_t *answer, const ism_error_t *err)
{
    ism_kube_leader_t *le = arg;
    ism_error_t werr = ISM_ERROR_INIT;
    json_t *lease = NULL, *spec = NULL;
    (void)k;

    le->call = NULL;
    if (rc < 0 && st->reason != ISM_KUBE_NOT_FOUND) {
        if (le->leading)
            ism_log_warn("lease %s/%s: renewal failed: %s", le->ns, le->name, err->text);
        round_end(le);
        return;
    }
    lease = rc == 0 ? json_incref(answer)
                    : json_pack("{s:s, s:s, s:{s:s, s:s}, s:{}}", "apiVersion",
                                "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name",
                                le->name, "namespace", le->ns, "spec");
    if (!lease) {
        round_end(le);
        return;
    }
    json_t *old = json_object_get(lease, "spec");
    const char *holder = json_string_value(json_object_get(old, "holderIdentity"));
    /* When we saw it is when the answer came, by our clock: the request
     * may have waited (a frozen process, a busy loop), and an observation
     * dated earlier would let us take a lease over too soon. */
    observe(le, old, ism_kube_now_ms());
    if (holder && *holder && strcmp(holder, le->identity) != 0 &&
        ism_kube_now_ms() < le->observed_at + le->lease_ms) {
        json_decref(lease); /* held by another, and not expired by our clock */
        round_end(le);
        return;
    }
    bool create = !json_object_get(json_object_get(lease, "metadata"), "resourceVersion");
    if (!(spec = our_spec(le, old)) || json_object_set(lease, "spec", spec) < 0 ||
        write_lease(le, lease, create, round_written, &werr) < 0) {
        if (le->leading)
            ism_log_warn("lease %s/%s: renewal failed: %s", le->ns, le->name,
                         werr.text[0] ? werr.text : "out of memory");
        json_decref(spec);
        json_decref(lease);
        round_end(le);
        return;
    }
    json_decref(le->wrote);
    le->wrote = spec; /* observed once the write is in */
    json_decref(lease);
}

static void round_written(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                          json_t *answer, const ism_error_t *err)
{
    ism_kube_leader_t *le = arg;
    (void)k, (void)st, (void)answer;

    le->call = NULL;
    if (rc == 0) {
        /* Validity counts from before the round's first request left: the
         * server may have stored the renewal at any moment after that. */
        le->valid_until = le->round_start + le->renew_deadline_ms;
        observe(le, le->wrote, ism_kube_now_ms());
        ism_kube_timer_arm(le->k, &le->expiry, le->valid_until - ism_kube_now_ms());
    } else if (le->leading) {
        ism_log_warn("lease %s/%s: renewal failed: %s", le->ns, le->name, err->text);
    }
    json_decref(le->wrote);
    le->wrote = NULL;
    round_end(le);
}

static void round_cb(ism_kube_t *k, void *arg)
{
    ism_kube_leader_t *le = arg;
    ism_error_t err = ISM_ERROR_INIT;

    if (le->call) { /* the last round still waits for its answer */
        round_end(le);
        return;
    }
    le->round_start = ism_kube_now_ms();
    if (!(le->call = ism_kube_get_async(k, &LEASES, le->ns, le->name, round_read, le, &err))) {
        ism_log_warn("lease %s/%s: %s", le->ns, le->name, err.text);
        round_end(le);
        return;
    }
    tune(le, le->call);
}

/* The write deadline passed without a renewal. */
static void expiry_cb(ism_kube_t *k, void *arg)
{
    (void)k;
    notify(arg);
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
    ism_kube_timer_init(&le->timer, round_cb, le);
    ism_kube_timer_init(&le->expiry, expiry_cb, le);
    ism_kube_timer_arm(k, &le->timer, 0);
    ism_kube_set_write_guard(k, guard, le);
    return le;
error:
    ism_kube_leader_destroy(le);
    return NULL;
}

static void release_written(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                            json_t *answer, const ism_error_t *err)
{
    ism_kube_leader_t *le = arg;
    (void)k, (void)st, (void)answer;

    le->call = NULL;
    le->releasing = false;
    if (rc < 0)
        ism_log_warn("lease %s/%s: giving it up: %s", le->ns, le->name, err->text);
}

static void release_read(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                         json_t *lease, const ism_error_t *err)
{
    ism_kube_leader_t *le = arg;
    ism_error_t werr = ISM_ERROR_INIT;
    json_t *spec = json_object_get(lease, "spec");
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    (void)k, (void)st;

    le->call = NULL;
    le->releasing = false;
    if (rc < 0) {
        ism_log_warn("lease %s/%s: giving it up: %s", le->ns, le->name, err->text);
        return;
    }
    if (!holder || strcmp(holder, le->identity) != 0)
        return; /* someone else holds it already */
    if (json_object_set_new(spec, "holderIdentity", json_string("")) < 0 ||
        json_object_set_new(spec, "leaseDurationSeconds", json_integer(1)) < 0 ||
        json_object_set_new(spec, "renewTime", ism_kube_micro_time_now()) < 0 ||
        write_lease(le, lease, false, release_written, &werr) < 0) {
        ism_log_warn("lease %s/%s: giving it up: %s", le->ns, le->name,
                     werr.text[0] ? werr.text : "out of memory");
        return;
    }
    le->releasing = true;
}

int ism_kube_leader_release(ism_kube_leader_t *le, ism_error_t *err)
{
    if (!le)
        return ism_err(err, EINVAL, "leader election: no elector");
    ism_kube_timer_disarm(le->k, &le->timer);
    ism_kube_timer_disarm(le->k, &le->expiry);
    if (!ism_kube_leader_is_leader(le))
        return 0;
    le->valid_until = 0; /* stop writing first */
    notify(le);
    ism_kube_cancel(le->k, le->call); /* a round in flight */
    json_decref(le->wrote);
    le->wrote = NULL;
    if (!(le->call = ism_kube_get_async(le->k, &LEASES, le->ns, le->name, release_read, le,
                                        err)))
        return -1;
    tune(le, le->call);
    le->releasing = true;
    return 0;
}

bool ism_kube_leader_releasing(const ism_kube_leader_t *le)
{
    return le && le->releasing;
}

void ism_kube_leader_destroy(ism_kube_leader_t *le)
{
    int saved = errno;

    if (!le)
        return;
    if (le->k) {
        ism_kube_timer_disarm(le->k, &le->timer);
        ism_kube_timer_disarm(le->k, &le->expiry);
        ism_kube_cancel(le->k, le->call);
        ism_kube_set_write_guard(le->k, NULL, NULL);
    }
    json_decref(le->wrote);
    free(le->ns);
    free(le->name);
    free(le->identity);
    free(le->observed);
    free(le);
    errno = saved;
}
