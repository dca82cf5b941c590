/* bridge.c - isthmusd's state: the Nodes, Slurm polling, leadership,
 * and the reconcile turn of the event loop (bridge.h). */
#include <config.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge/bridge.h"
#include "bridge/model.h"
#include "lib/util/backoff.h"
#include "lib/util/log.h"

static const ism_kube_resource_t NODES = { "", "v1", "nodes", false };
static const ism_backoff_t TAINT_RETRY = { 1000, 60000 }; /* a refused taint patch */

/* A taint patch in flight for one Node. */
struct taint_call {
    struct bridge *b;
    char node[]; /* its name */
};

/* Stopping: how long pending Events may take to be written. */
#define STOP_EVENTS_MS 5000

/* ------------------------------------------------------------ Nodes */

static const char *node_label(const json_t *node)
{
    return poolmap_node_label(node);
}

static const char *node_rv(const json_t *node)
{
    return json_string_value(json_object_get(json_object_get(node, "metadata"),
                                             "resourceVersion"));
}

static const char *node_uid(const json_t *node)
{
    return json_string_value(json_object_get(json_object_get(node, "metadata"), "uid"));
}

/* Keep what the map and Events need: a Node is large (images, status). */
static void node_shrink(void *arg, json_t *node)
{
    json_t *meta = json_object_get(node, "metadata");
    json_t *labels = json_object_get(meta, "labels");
    json_t *ours = json_object_get(labels, ISM_LABEL_SLURM_NODE);
    json_t *keep = json_object();
    json_t *taints = json_object_get(json_object_get(node, "spec"), "taints");
    (void)arg;

    if (keep && ours)
        json_object_set(keep, ISM_LABEL_SLURM_NODE, ours);
    json_object_set_new(meta, "labels", keep ? keep : json_object());
    json_object_del(meta, "annotations");
    /* the taints stay: TaintBridgedNodes patches the whole list */
    if (json_is_array(taints))
        json_object_set_new(node, "spec", json_pack("{s:O}", "taints", taints));
    else
        json_object_del(node, "spec");
    json_object_del(node, "status");
    /* A metadata-only list or watch says PartialObjectMetadata: the Events
     * about the Node must name a Node. */
    json_object_set_new(node, "apiVersion", json_string("v1"));
    json_object_set_new(node, "kind", json_string("Node"));
}

static void node_changed(struct bridge *b, const char *name)
{
    b->pool_map_stale = true;
    b->taints_dirty = true;
    slices_mark(b->slices, name);
}

static void node_add(void *arg, const char *key, json_t *obj)
{
    (void)obj;
    node_changed(arg, key);
}

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Only the label and the uid matter here: status updates do not. */
static void node_update(void *arg, const char *key, json_t *old, json_t *obj)
{
    struct bridge *b = arg;

    if (b->taint_done)
        json_object_del(b->taint_done, key); /* the informer is past our patch */
    if (!same(node_label(old), node_label(obj)) || !same(node_uid(old), node_uid(obj)))
        node_changed(b, key);
    else if (!taint_present(obj)) /* someone took it off */
        b->taints_dirty = true;
}

static void node_del(void *arg, const char *key, json_t *old)
{
    struct bridge *b = arg;
    (void)old;

    if (b->taint_done)
        json_object_del(b->taint_done, key);
    node_changed(b, key);
}

static const ism_kube_handlers_t node_handlers = {
    .add = node_add, .update = node_update, .del = node_del, .transform = node_shrink,
};

static void pool_moved(void *arg, const char *pool)
{
    struct bridge *b = arg;
    slices_mark(b->slices, pool);
}

/* Rebuild the Slurm node <-> Node map, and mark what moved. */
static void rebuild_pool_map(struct bridge *b)
{
    ism_error_t err = ISM_ERROR_INIT;

    if (poolmap_rebuild(b->pools, ism_kube_informer_cache(b->nodes), pool_moved, b, &err) < 0) {
        ism_log_error("the Node map: %s (trying again)", err.text);
        return;
    }
    b->pool_map_stale = false;
    mirror_mark(b->mirror);
    gangs_mark(b->gangs);
}

/* ------------------------------------------------------------ taints */

/* A Node is bridged when its Slurm node is in the last Slurm snapshot. */
static bool bridged(const struct bridge *b, const char *node)
{
    const char *snode = poolmap_slurm_of(b->pools, node);
    return snode && b->snodes && ism_slurm_nodes_find(b->snodes, snode);
}

static void tainted(ism_kube_t *k, void *arg, int rc, const ism_kube_status_t *st,
                    json_t *answer, const ism_error_t *err)
{
    struct taint_call *t = arg;
    struct bridge *b = t->b;
    (void)k;
    (void)answer;

    /* Done: until the informer shows the Node past the version patched,
     * it is not patched again (that would only meet a Conflict). */
    if (rc == 0 && b->taint_calls && b->taint_done)
        json_object_set(b->taint_done, t->node, json_object_get(b->taint_calls, t->node));
    if (b->taint_calls)
        json_object_del(b->taint_calls, t->node);
    if (rc == 0) {
        ism_log_notice("Node %s: tainted %s:NoSchedule", t->node, BRIDGE_TAINT_KEY);
    } else if (st && st->reason == ISM_KUBE_CONFLICT) {
        b->taints_dirty = true; /* the Node changed: the next turn sees it */
    } else if (errno != ECANCELED) {
        b->reconcile_errors++;
        ism_log_warn("Node %s: adding the taint %s: %s (trying again)", t->node, BRIDGE_TAINT_KEY,
                     err ? err->text : "failed");
        b->taints_dirty = true;
        b->taint_retry_ms = ism_kube_now_ms() + ism_backoff_delay(&TAINT_RETRY, ++b->taint_failures);
    }
    if (rc == 0)
        b->taint_failures = 0;
    free(t);
}

/* Start the taint patch of one Node if it needs one: 1 started, 0 not
 * needed (or refused, logged), -1 out of memory. */
static int taint_one(struct bridge *b, const char *name, const json_t *node)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct taint_call *t;
    ism_kube_call_t *call;
    json_t *patch;

    const char *rv = node_rv(node);
    const char *done = json_string_value(json_object_get(b->taint_done, name));

    if (!bridged(b, name) || json_object_get(b->taint_calls, name) ||
        (done && rv && strcmp(done, rv) == 0))
        return 0;
    if (!(patch = taint_patch(node))) {
        if (errno)
            ism_log_warn("Node %s: cannot add the taint %s: %s", name, BRIDGE_TAINT_KEY,
                         errno == EINVAL ? "malformed taints" : strerror(errno));
        return 0;
    }
    if (!(t = calloc(1, sizeof(*t) + strlen(name) + 1))) {
        json_decref(patch);
        return -1;
    }
    t->b = b;
    strcpy(t->node, name);
    call = ism_kube_patch_async(b->kube, &NODES, NULL, name, NULL, ISM_KUBE_PATCH_MERGE, patch,
                                NULL, tainted, t, &err);
    json_decref(patch);
    if (!call) {
        ism_log_warn("Node %s: adding the taint %s: %s", name, BRIDGE_TAINT_KEY, err.text);
        free(t);
        b->taints_dirty = true;
        return 0;
    }
    /* the answer is not read: the Node informer sees the change */
    ism_kube_call_accept(call, ISM_KUBE_ACCEPT_METADATA);
    json_object_set_new(b->taint_calls, name, json_string(rv ? rv : ""));
    return 1;
}

/* Taint the bridged Nodes that lack it (TaintBridgedNodes=yes); at most
 * budget writes.  Returns the writes started.  A pass that runs out of
 * budget goes on from the same Node next time (wrapping around), so
 * tainting N Nodes costs one walk of the Nodes, not one per turn. */
static int taint_nodes(struct bridge *b, int budget)
{
    json_t *cache = ism_kube_informer_cache(b->nodes);
    void *start, *it;
    bool looped = false;
    int n = 0, rc;

    if (!b->taint || !b->taints_dirty || !b->snodes || b->pool_map_stale ||
        ism_kube_now_ms() < b->taint_retry_ms)
        return 0;
    if ((!b->taint_calls && !(b->taint_calls = json_object())) ||
        (!b->taint_done && !(b->taint_done = json_object())))
        return 0;
    b->taints_dirty = false;
    start = b->taint_cursor ? json_object_iter_at(cache, b->taint_cursor) : NULL;
    free(b->taint_cursor);
    b->taint_cursor = NULL;
    for (it = start ? start : json_object_iter(cache); it;) {
        if (n >= budget) {
            b->taint_cursor = strdup(json_object_iter_key(it));
            b->taints_dirty = true;
            break;
        }
        if ((rc = taint_one(b, json_object_iter_key(it), json_object_iter_value(it))) < 0) {
            b->taints_dirty = true;
            break;
        }
        n += rc;
        it = json_object_iter_next(cache, it);
        if (!it && start && !looped) { /* from the cursor to the end, then the rest */
            it = json_object_iter(cache);
            looped = true;
        }
        if (looped && it == start)
            break;
    }
    return n;
}

/* ------------------------------------------------------------ Slurm */

static void poll_slurm(ism_kube_t *k, void *arg);

/* Poll again after SlurmPollInterval, or within a second while a gang
 * has a job (its end must be seen soon); at once when asked (arming cannot
 * fail). */
static void schedule_poll(struct bridge *b)
{
    int64_t ms = ism_config_get_int(b->cfg, "SlurmPollInterval") * 1000;

    if (gangs_active(b->gangs) && ms > 1000)
        ms = 1000;
    if (b->poll_soon)
        ms = 0;
    b->poll_soon = false;
    ism_kube_timer_arm(b->kube, &b->poll_timer, ms);
}

static void slurm_failed(struct bridge *b, const struct ism_slurm_request *r, const char *what)
{
    b->slurm_poll_errors++;
    if (!b->slurm_down)
        ism_log_warn("Slurm: reading %s failed: %s (keeping the last answer)", what, r->err.text);
    b->slurm_down = true;
}

static void slurm_answered(struct bridge *b)
{
    if (b->slurm_down)
        ism_log_notice("Slurm answers again");
    b->slurm_down = false;
}

static void nodes_done(struct ism_slurm_request *r, void *arg)
{
    struct bridge *b = arg;
    ism_slurm_nodes_t *old = b->snodes;

    b->slurm_polls++;
    if (r->rc < 0) {
        slurm_failed(b, r, "nodes");
        return;
    }
    slurm_answered(b);
    if (r->rc == 0)
        return;
    b->snodes = r->nodes;
    r->nodes = NULL;
    b->nodes_changed = true;
    b->taints_dirty = true;
    slices_slurm_changed(b->slices, old, b->snodes);
    ism_slurm_nodes_destroy(old);
}

static void jobs_done(struct ism_slurm_request *r, void *arg)
{
    struct bridge *b = arg;

    b->slurm_polls++;
    b->poll_busy = false;
    if (!b->stopping)
        schedule_poll(b);
    if (r->rc < 0) {
        slurm_failed(b, r, "jobs");
        return;
    }
    if (r->rc == 1) {
        mirror_jobs_changed(b->mirror, r->jobs);
        ism_slurm_jobs_destroy(b->sjobs);
        b->sjobs = r->jobs;
        r->jobs = NULL;
    }
    gangs_slurm_seen(b->gangs, b->snodes, b->sjobs, (uint64_t)r->value,
                     r->rc == 1 || b->nodes_changed);
    b->nodes_changed = false;
}

/* Whether this poll reads the node table.  slurmctld changes it at every
 * job start and end (node states), and then a read carries every node:
 * about 3.4 MB and tens of ms of slurmctld's CPU at 10,000 nodes.  The
 * jobs are what must be seen within a poll; nodes change what isthmusd
 * does only when a topology, a node or a partition comes or goes, so they
 * are read every SlurmNodePollInterval, and at once while a gang waits
 * for a node's topology. */
static bool nodes_due(struct bridge *b)
{
    int64_t now = ism_kube_now_ms();

    if (now < b->nodes_due_ms && !(b->gangs && gangs_want_nodes(b->gangs)))
        return false;
    b->nodes_due_ms = now + ism_config_get_int(b->cfg, "SlurmNodePollInterval") * 1000;
    return true;
}

/* Read nodes (when due) then jobs, each only if changed (one cheap RPC
 * otherwise). */
static void poll_slurm(ism_kube_t *k, void *arg)
{
    struct bridge *b = arg;
    ism_error_t err = ISM_ERROR_INIT;
    bool nodes;
    (void)k;

    if (b->poll_busy)
        return;
    nodes = nodes_due(b);
    memset(&b->nodes_req, 0, sizeof(b->nodes_req));
    memset(&b->jobs_req, 0, sizeof(b->jobs_req));
    b->nodes_req.op = ISM_SLURM_POLL_NODES;
    b->nodes_req.max_attempts = 1;
    b->jobs_req.op = ISM_SLURM_POLL_JOBS;
    b->jobs_req.max_attempts = 1;
    b->jobs_req.value = (int)++b->polls_started; /* its number, back in jobs_done */
    gangs_poll_started(b->gangs, b->polls_started);
    if ((nodes && ism_slurm_agent_submit(b->slurm, &b->nodes_req, nodes_done, b, &err) < 0) ||
        ism_slurm_agent_submit(b->slurm, &b->jobs_req, jobs_done, b, &err) < 0) {
        ism_log_error("Slurm: %s", err.text);
        schedule_poll(b);
        return;
    }
    b->poll_busy = true;
}

/* ------------------------------------------------------------ leadership */

static void started(void *arg)
{
    struct bridge *b = arg;

    ism_log_notice("leading: isthmusd writes from now on");
    slices_forget_told(b->slices);
    slices_mark_all(b->slices);
    mirror_mark(b->mirror);
    gangs_mark(b->gangs);
}

static void stopped(void *arg)
{
    struct bridge *b = arg;

    if (!b->stopping)
        ism_log_warn("not leading any more: writing stops");
}

static int start_leader(struct bridge *b, ism_error_t *err)
{
    char host[256] = "", identity[300];
    ism_kube_leader_options_t o = {
        .ns = b->ns,
        .name = ism_config_get(b->cfg, "LeaseName"),
        .identity = identity,
        .lease_ms = (int)ism_config_get_int(b->cfg, "LeaseDuration") * 1000,
        .renew_deadline_ms = (int)ism_config_get_int(b->cfg, "RenewDeadline") * 1000,
        .retry_ms = (int)ism_config_get_int(b->cfg, "RetryPeriod") * 1000,
        .started = started,
        .stopped = stopped,
        .arg = b,
    };

    if (!ism_config_get_bool(b->cfg, "LeaderElection"))
        return 0;
    gethostname(host, sizeof(host) - 1);
    snprintf(identity, sizeof(identity), "%s_%ld", host, (long)getpid());
    if (o.renew_deadline_ms >= o.lease_ms || o.retry_ms >= o.renew_deadline_ms)
        return ism_err(err, EINVAL,
                       "need RetryPeriod < RenewDeadline < LeaseDuration (have %d, %d, %d s)",
                       o.retry_ms / 1000, o.renew_deadline_ms / 1000, o.lease_ms / 1000);
    b->leader = ism_kube_leader_create(b->kube, &o, err);
    return b->leader ? 0 : -1;
}

/* ------------------------------------------------------------ lifetime */

static ism_kube_t *connect_kube(const ism_config_t *cfg, ism_error_t *err)
{
    const char *path = ism_config_get(cfg, "Kubeconfig");
    ism_kube_options_t o = ISM_KUBE_OPTIONS_DEFAULT;
    ism_kube_config_t *kc;
    ism_kube_t *k;

    kc = path && *path ? ism_kube_config_load(path, NULL, err) : ism_kube_config_default(NULL, err);
    if (!kc)
        return NULL;
    /* Each try ends within 5 s and a request is tried 4 times at most
     * (backoff 200 ms .. 2 s): about 25 s in all, inside the Deployment's
     * liveness allowance (3 x 10 s) even were the loop to wait, which it
     * no longer does.  The elector's own requests are one try each,
     * bounded by half of RenewDeadline (kube_leader.c), so a renewal round
     * (a read and a write) ends before the deadline.  client-go's 10
     * retries of up to 30 s would keep a write pending for minutes while
     * the API server is down, for no gain: the reconcilers retry anyway. */
    o.timeout_ms = 5000;
    o.max_retries = 3;
    o.backoff_base_ms = 200;
    o.backoff_cap_ms = 2000;
    o.qps = (double)ism_config_get_int(cfg, "KubeQPS");
    o.burst = (int)ism_config_get_int(cfg, "KubeBurst");
    o.user_agent = "isthmusd/" PACKAGE_VERSION;
    k = ism_kube_create(kc, &o, err);
    ism_kube_config_destroy(kc);
    return k;
}

static bool leading_cb(void *arg)
{
    return bridge_leading(arg);
}

static bool may_write_cb(void *arg)
{
    return bridge_may_write(arg);
}

/* A gang's grant: read the jobs now rather than at the next tick. */
static void poll_now_cb(void *arg)
{
    struct bridge *b = arg;

    if (b->poll_busy) {
        b->poll_soon = true;
        return;
    }
    ism_kube_timer_disarm(b->kube, &b->poll_timer);
    poll_slurm(b->kube, b);
}

/* GangUser: a user name, or UID[:GID] (a container may not know the
 * site's users).  0, or -1 with err. */
static int gang_user(const char *user, uid_t *uid, gid_t *gid, ism_error_t *err)
{
    unsigned long u, g = ULONG_MAX; /* ULONG_MAX: no GID given */
    char *end;
    struct passwd *pw;

    if (!user || !*user)
        return ism_err(err, EINVAL, "GangUser is not set: gang jobs need a Slurm user to run as "
                       "(or set Gangs=no)");
    errno = 0;
    u = strtoul(user, &end, 10);
    if (*end == ':' && isdigit((unsigned char)end[1])) /* "1000:" is no GID 0 */
        g = strtoul(end + 1, &end, 10);
    if (isdigit((unsigned char)*user) && !*end && !errno && u < UINT32_MAX &&
        (g == ULONG_MAX || g < UINT32_MAX)) {
        pw = getpwuid((uid_t)u);
        *uid = (uid_t)u;
        *gid = g != ULONG_MAX ? (gid_t)g : pw ? pw->pw_gid : (gid_t)u;
    } else if ((pw = getpwnam(user))) {
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    } else {
        return ism_err(err, ENOENT, "GangUser %s: no such user (nor UID[:GID])", user);
    }
    if (*uid == 0)
        return ism_err(err, EINVAL, "GangUser %s is root: gang jobs never run as root", user);
    return 0;
}

/* The gang scheduler's context from isthmus.conf: refused without a
 * GangUser, since gang jobs never run as root. */
static int gangs_context(struct bridge *b, struct gangs_ctx *gc, ism_error_t *err)
{
    const char *tl;
    uid_t uid = 0;
    gid_t gid = 0;

    if (gang_user(ism_config_get(b->cfg, "GangUser"), &uid, &gid, err) < 0)
        return -1;
    *gc = (struct gangs_ctx){
        .kube = b->kube, .apply = b->apply, .slurm = b->slurm, .events = b->events,
        .pools = b->pools, .may_write = may_write_cb, .poll_now = poll_now_cb, .arg = b,
        .errors = &b->reconcile_errors, .uid = uid, .gid = gid,
        .wait_timeout_s = (int)ism_config_get_int(b->cfg, "GangWaitTimeout"),
    };
    gc->defaults.partition = ism_config_get(b->cfg, "GangPartition");
    gc->defaults.account = ism_config_get(b->cfg, "GangAccount");
    gc->defaults.qos = ism_config_get(b->cfg, "GangQOS");
    if ((tl = ism_config_get(b->cfg, "GangTimeLimit")) && *tl &&
        gang_parse_time_limit(tl, &gc->defaults.time_limit, err) < 0)
        return ism_errprefix(err, "GangTimeLimit");
    for (int i = 0; i < ism_config_count(b->cfg, "GangPolicy"); i++) {
        const char *origin = "";
        const char *line = ism_config_get_list(b->cfg, "GangPolicy", i, &origin);
        if (policy_add(&b->policy, line, origin, err) < 0)
            return ism_errprefix(err, "%s", origin);
    }
    if (b->policy.n == 0)
        ism_log_notice("no GangPolicy in isthmus.conf: every namespace may name any partition, "
                       "account and qos");
    gc->policy = &b->policy;
    return 0;
}

/* The Node informer, then each reconciler with its own cache. */
static int start_reconcilers(struct bridge *b, ism_error_t *err)
{
    struct slices_ctx sc = {
        .kube = b->kube, .apply = b->apply, .pools = b->pools, .events = b->events,
        .leading = leading_cb, .arg = b, .errors = &b->reconcile_errors,
    };
    struct mirror_ctx mc = {
        .kube = b->kube, .apply = b->apply, .pools = b->pools, .ns = b->ns,
        .may_write = may_write_cb, .arg = b, .errors = &b->reconcile_errors,
    };

    b->nodes = ism_kube_informer_create(b->kube, &NODES, NULL, NULL, NULL, &node_handlers, b, err);
    if (!b->nodes)
        return -1;
    /* Without taints to keep, the map needs a Node's name, uid and label
     * only: its metadata, not the status kubelet rewrites. */
    ism_kube_informer_set_metadata_only(b->nodes, !b->taint);
    sc.nodes = b->nodes;
    if (!(b->slices = slices_create(&sc, err)) || !(b->mirror = mirror_create(&mc, err)))
        return -1;
    if (ism_config_get_bool(b->cfg, "Gangs")) {
        struct gangs_ctx gc;
        if (gangs_context(b, &gc, err) < 0 || !(b->gangs = gangs_create(&gc, err)))
            return -1;
    }
    return 0;
}

int bridge_create(struct bridge *b, const ism_config_t *cfg, ism_error_t *err)
{
    char host[256] = "";

    memset(b, 0, sizeof(*b));
    b->cfg = cfg;
    b->ns = ism_config_get(cfg, "Namespace");
    b->taint = ism_config_get_bool(cfg, "TaintBridgedNodes");
    gethostname(host, sizeof(host) - 1);
    if (!(b->pools = poolmap_create(err)))
        return -1;
    if (!(b->kube = connect_kube(cfg, err)))
        return ism_errprefix(err, "Kubernetes");
    if (!(b->events = ism_kube_recorder_create(b->kube, "isthmus.io/isthmusd", host, err)))
        return -1;
    if (!(b->slurm = ism_slurm_agent_create(ism_config_get(cfg, "SlurmConf"), err)))
        return ism_errprefix(err, "Slurm");
    if (!(b->apply = applier_create(b->kube, err)))
        return -1;
    if (start_reconcilers(b, err) < 0 || start_leader(b, err) < 0)
        return -1;
    ism_kube_timer_init(&b->poll_timer, poll_slurm, b);
    poll_slurm(b->kube, b);
    return 0;
}

/* Drive the loop while busy(b) and the time lasts. */
static void drive_while(struct bridge *b, bool (*busy)(const struct bridge *), int64_t until)
{
    ism_error_t err = ISM_ERROR_INIT;

    while (b->kube && busy(b) && ism_kube_now_ms() < until &&
           ism_kube_run(b->kube, NULL, 0, (int)(until - ism_kube_now_ms()), &err) == 0)
        ;
}

static bool writes_pending(const struct bridge *b)
{
    return ism_kube_recorder_pending(b->events) > 0 || apply_in_flight(b->apply) > 0;
}

static bool releasing(const struct bridge *b)
{
    return ism_kube_leader_releasing(b->leader);
}

/* The recorder's pending Events are sent while the Lease is still held
 * (the write guard lets them through), and they and the reconcilers'
 * writes still in flight get a bounded wait; then the recorder goes, so
 * nothing it queued can be written by a replica that no longer leads, and
 * then the Lease, with a bounded wait for its release. */
void bridge_stop(struct bridge *b)
{
    ism_error_t err = ISM_ERROR_INIT;
    int64_t until = ism_kube_now_ms() + STOP_EVENTS_MS;

    b->stopping = true;
    ism_kube_recorder_flush(b->events);
    drive_while(b, writes_pending, until);
    ism_kube_recorder_destroy(b->events);
    b->events = NULL;
    if (b->leader && ism_kube_leader_release(b->leader, &err) < 0)
        ism_log_warn("giving the Lease up: %s", err.text);
    drive_while(b, releasing, ism_kube_now_ms() + STOP_EVENTS_MS);
    ism_kube_leader_destroy(b->leader);
    b->leader = NULL;
}

void bridge_destroy(struct bridge *b)
{
    int saved = errno;

    bridge_stop(b);
    /* The agent runs the callbacks it still owes (as cancelled). */
    ism_slurm_agent_destroy(b->slurm);
    ism_kube_timer_disarm(b->kube, &b->poll_timer);
    /* Writes still in flight are told they were cancelled while their
     * reconcilers still exist. */
    applier_destroy(b->apply);
    gangs_destroy(b->gangs);
    mirror_destroy(b->mirror);
    slices_destroy(b->slices);
    ism_kube_informer_destroy(b->nodes);
    json_decref(b->taint_calls);
    json_decref(b->taint_done);
    free(b->taint_cursor);
    policy_clear(&b->policy);
    ism_kube_destroy(b->kube);
    ism_slurm_jobs_destroy(b->sjobs);
    ism_slurm_nodes_destroy(b->snodes);
    poolmap_destroy(b->pools);
    memset(b, 0, sizeof(*b));
    errno = saved;
}

/* ------------------------------------------------------------ the turn */

int64_t bridge_failing_ms(const struct bridge *b)
{
    int64_t ms = ism_kube_failing_ms(b->kube), v;

    if ((v = ism_kube_informer_failing_ms(b->nodes)) > ms)
        ms = v;
    if ((v = ism_kube_informer_failing_ms(slices_informer(b->slices))) > ms)
        ms = v;
    if ((v = ism_kube_informer_failing_ms(mirror_informer(b->mirror))) > ms)
        ms = v;
    if ((v = gangs_failing_ms(b->gangs)) > ms)
        ms = v;
    return ms;
}

bool bridge_synced(const struct bridge *b)
{
    return ism_kube_informer_synced(b->nodes) && slices_synced(b->slices) &&
           mirror_synced(b->mirror);
}

bool bridge_leading(const struct bridge *b)
{
    return !b->leader || ism_kube_leader_is_leader(b->leader);
}

bool bridge_may_write(const struct bridge *b)
{
    return bridge_leading(b) && !b->stopping && bridge_synced(b);
}

static int sooner(int wait, int64_t ms)
{
    if (ms < 0)
        return wait;
    if (ms > 0x7fffffff)
        ms = 0x7fffffff;
    return wait < 0 || ms < wait ? (int)ms : wait;
}

int bridge_work(struct bridge *b)
{
    bool more_slices = false, more_claims = false, more_gangs = false;
    /* Taint patches bypass the applier: they count here too, or a
     * first start would have a patch of every Node in flight at once. */
    int budget = BRIDGE_WRITES_PER_TURN - (int)apply_in_flight(b->apply) -
                 (int)json_object_size(b->taint_calls),
        wait = -1;

    ism_slurm_agent_dispatch(b->slurm);
    if (ism_kube_informer_synced(b->nodes) && b->pool_map_stale)
        rebuild_pool_map(b);
    if (!bridge_may_write(b))
        return wait;
    /* Gangs first: a pod waits for its binding, a slice is already there. */
    if (b->gangs && budget > 0)
        budget -= gangs_reconcile(b->gangs, budget, &more_gangs);
    if (budget > 0)
        budget -= taint_nodes(b, budget);
    if (b->snodes && budget > 0)
        budget -= slices_reconcile(b->slices, budget, &more_slices);
    if (b->sjobs && budget > 0)
        mirror_reconcile(b->mirror, budget, &more_claims);
    if (more_slices || more_claims || more_gangs)
        return 0;
    if (b->taint && b->taints_dirty && b->taint_retry_ms > 0) {
        int64_t left = b->taint_retry_ms - ism_kube_now_ms();
        wait = sooner(wait, left > 0 ? left : 0);
    }
    wait = sooner(wait, slices_wake_ms(b->slices));
    wait = sooner(wait, gangs_wake_ms(b->gangs));
    return sooner(wait, mirror_wake_ms(b->mirror));
}
