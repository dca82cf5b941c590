/* slurm_adapter.c - see slurm_adapter.h.
 *
 * Facts this file relies on (Slurm 22.05.8, read in its sources and
 * checked on the test cluster):
 * - slurm_load_node and slurm_load_partitions return -1 with errno
 *   SLURM_NO_CHANGE_IN_DATA when nothing changed since the time given;
 *   slurm_load_jobs returns that code itself.  The old message stays valid.
 * - The partitions field of node_info_t is NULL from the API (scontrol fills
 *   it itself), so a node's partitions come from the partition table.
 * - slurm_job_cpus_allocated_str_on_node() prints abstract core indices as
 *   long as this process never called slurm_sprint_job_info(), which makes
 *   it print cpu ids through a node table of its own; we never call it.  It
 *   does not check its buffer: bit_fmt truncates silently, hence the check.
 */
#include <config.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "lib/topology/extra_table.h"
#include "lib/topology/node_extra.h"
#include "lib/slurm/job_resrcs.h"
#include "lib/slurm/slurm_adapter.h"
#include "lib/slurm/slurm_conf.h"

/* ---- what differs between Slurm releases ----
 *
 * Every difference between the releases this file builds against is
 * decided here, at compile time on SLURM_VERSION_NUMBER, and listed with
 * the release it came in in lib/README.md ("Slurm releases"). */

/* The hostlist type became a struct typedef used through a pointer. */
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(23, 11, 0)
typedef hostlist_t *ism_hostlist_t;
#else
typedef hostlist_t ism_hostlist_t;
#endif

/* Per-node allocation moved from select_nodeinfo into node_info_t. */
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(25, 5, 0)
#define ISM_NODE_ALLOC_FIELDS 1
#endif

/* A running job's cores on each node: the job resources helpers up to
 * 24.05; slurm_get_resource_layout() from 25.11; 24.11 and 25.05 have no
 * public call: the job's resources record, read and checked by
 * job_resrcs.h. */
#if SLURM_VERSION_NUMBER < SLURM_VERSION_NUM(24, 11, 0)
#define ISM_HAVE_JOB_CPUS_STR 1
#elif SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(25, 11, 0)
#define ISM_HAVE_RESOURCE_LAYOUT 1
#else
#define ISM_HAVE_JOB_RESRCS_2411 1
#endif

/* 25.11 names the job of an allocation, and of slurm_complete_job, by a
 * slurm_step_id_t; 26.05 does the same for slurm_load_job, slurm_kill_job
 * and slurm_signal_job.  Only its job_id counts there; the rest stays
 * "no step" (NO_VAL, sluid 0). */
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(25, 11, 0)
static slurm_step_id_t job_step_id(uint32_t job_id)
{
    slurm_step_id_t id = SLURM_STEP_ID_INITIALIZER;
    id.job_id = job_id;
    return id;
}

static uint32_t alloc_job_id(const resource_allocation_response_msg_t *resp)
{
    return resp->step_id.job_id;
}

static int complete_job(uint32_t job_id, uint32_t rc)
{
    slurm_step_id_t id = job_step_id(job_id);
    return slurm_complete_job(&id, rc);
}
#else
static uint32_t alloc_job_id(const resource_allocation_response_msg_t *resp)
{
    return resp->job_id;
}

static int complete_job(uint32_t job_id, uint32_t rc)
{
    return slurm_complete_job(job_id, rc);
}
#endif

#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(26, 5, 0)
#define ISM_JOB(job_id) job_step_id(job_id)
#else
#define ISM_JOB(job_id) (job_id)
#endif

/* A wait reason's name ("Resources"): exported by libslurm but declared in
 * no header (configure checks the symbol); renamed in 24.05. */
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(24, 5, 0)
#ifdef ISM_HAVE_JOB_STATE_REASON_STRING
extern const char *slurm_job_state_reason_string(enum job_state_reason inx);
#define ISM_REASON_STRING slurm_job_state_reason_string
#endif
#elif defined(ISM_HAVE_JOB_REASON_STRING)
extern char *slurm_job_reason_string(enum job_state_reason inx);
#define ISM_REASON_STRING slurm_job_reason_string
#endif

struct ism_slurm {
    ism_extra_table_t *topologies; /* the last snapshot's, shared with the next */
    node_info_msg_t *node_msg;
    partition_info_msg_t *part_msg;
    job_info_msg_t *job_msg;
    bool nodes_fresh; /* the messages above were not converted yet */
    bool jobs_fresh;
};

/* Exported by libslurm but not declared: frees xmalloc'd memory. */
extern void slurm_xfree_ptr(void *ptr);

/* slurm_free_node_info_msg of 22.05.8 forgets each node's comment and
 * extra (valgrind found it; its slurm_free_node_info_members has no
 * xfree for them), which would leak every Extra field on every changed
 * poll.  Free them first; the NULLs keep a fixed release from freeing
 * them twice. */
static void free_node_msg(node_info_msg_t *msg)
{
    for (uint32_t i = 0; msg && i < msg->record_count; i++) {
        slurm_xfree_ptr(msg->node_array[i].extra);
        slurm_xfree_ptr(msg->node_array[i].comment);
        msg->node_array[i].extra = NULL;
        msg->node_array[i].comment = NULL;
    }
    slurm_free_node_info_msg(msg);
}

/* Likewise slurm_free_job_info_msg of 22.05.8 forgets five strings of
 * each job that it unpacks (compare slurm_free_job_info_members with
 * _unpack_job_info_members): admin_comment, cluster_features, cronspec,
 * prefer, system_comment. */
static void free_job_msg(job_info_msg_t *msg)
{
    for (uint32_t i = 0; msg && i < msg->record_count; i++) {
        slurm_job_info_t *j = &msg->job_array[i];
        char **leaked[] = { &j->admin_comment, &j->cluster_features, &j->cronspec, &j->prefer,
                            &j->system_comment };
        for (size_t k = 0; k < sizeof(leaked) / sizeof(leaked[0]); k++) {
            slurm_xfree_ptr(*leaked[k]);
            *leaked[k] = NULL;
        }
    }
    slurm_free_job_info_msg(msg);
}


static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static const char *init_conf;

static void init_libslurm(void)
{
    slurm_init(init_conf);
}

/* Fail with Slurm's error: errno = code, message "<what>: <slurm text>". */
static int slurm_fail(ism_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int slurm_fail(ism_error_t *err, int code, const char *fmt, ...)
{
    char what[384];
    va_list ap;

    if (code == 0 || code == -1)
        code = EIO;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return ism_err(err, code, "%s: %s", what, slurm_strerror(code));
}

/* Slurm's error number of the call that just failed.  libslurm sets errno
 * itself; 24.11 removed slurm_get_errno(), which only ever returned it. */
static int last_error(void)
{
    int code = errno;
    return code ? code : EIO;
}

bool ism_slurm_error_is_transient(int errnum)
{
    switch (errnum) {
    case EAGAIN:
    case EINTR:
    case ETIMEDOUT:
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case SLURM_COMMUNICATIONS_CONNECTION_ERROR:
    case SLURM_COMMUNICATIONS_SEND_ERROR:
    case SLURM_COMMUNICATIONS_RECEIVE_ERROR:
    case SLURM_COMMUNICATIONS_SHUTDOWN_ERROR:
    case SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR:
    case SLURMCTLD_COMMUNICATIONS_SEND_ERROR:
    case SLURMCTLD_COMMUNICATIONS_RECEIVE_ERROR:
    case SLURMCTLD_COMMUNICATIONS_SHUTDOWN_ERROR:
#if SLURM_VERSION_NUMBER < SLURM_VERSION_NUM(23, 2, 0)
    case SLURM_PROTOCOL_SOCKET_IMPL_ZERO_RECV_LENGTH:
    case SLURM_PROTOCOL_SOCKET_IMPL_NEGATIVE_RECV_LENGTH:
    case SLURM_PROTOCOL_SOCKET_IMPL_NOT_ALL_DATA_SENT:
#endif
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(23, 2, 0)
    case SLURMCTLD_COMMUNICATIONS_BACKOFF: /* slurmctld's RPC rate limit */
#endif
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(24, 5, 0)
    case SLURMCTLD_COMMUNICATIONS_HARD_DROP:
#endif
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(26, 5, 0)
    case SLURM_COMMUNICATIONS_CONNECT_TIMEOUT:
    case SLURM_COMMUNICATIONS_READ_TIMEOUT:
    case SLURM_COMMUNICATIONS_WRITE_TIMEOUT:
#endif
    case ESLURM_PROTOCOL_INCOMPLETE_PACKET:
    case SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT:
    case SLURM_PROTOCOL_SOCKET_ZERO_BYTES_SENT:
    case ESLURM_IN_STANDBY_MODE:
    case ESLURM_IN_STANDBY_USE_BACKUP:
#if SLURM_VERSION_NUMBER < SLURM_VERSION_NUM(26, 5, 2)
    case ESLURM_ERROR_ON_DESC_TO_RECORD_COPY:
#endif
    case ESLURM_TRANSITION_STATE_NO_UPDATE:
        return true;
    default:
        return false;
    }
}

ism_slurm_t *ism_slurm_create(const char *conf, ism_error_t *err)
{
    ism_slurm_t *s = calloc(1, sizeof(*s));

    if (!s) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    /* slurm_init reads slurm.conf once per process; 22.05 retries for a
     * minute and then exits the process when it cannot, so check first
     * what it would die on. */
    if (ism_slurm_conf_check(conf, NULL, 0, err) < 0) {
        free(s);
        return NULL;
    }
    init_conf = conf;
    pthread_once(&init_once, init_libslurm);
    return s;
}

void ism_slurm_reset(ism_slurm_t *s)
{
    if (!s)
        return;
    free_node_msg(s->node_msg);
    slurm_free_partition_info_msg(s->part_msg);
    free_job_msg(s->job_msg);
    s->node_msg = NULL;
    s->part_msg = NULL;
    s->job_msg = NULL;
    ism_extra_table_destroy(s->topologies);
    s->topologies = NULL;
}

void ism_slurm_destroy(ism_slurm_t *s)
{
    int saved = errno;

    if (s) {
        ism_slurm_reset(s);
        free(s);
    }
    errno = saved;
}

/* ---- node Extra ---- */

/* One node's record (caller frees with slurm_free_node_info_msg). */
static node_info_msg_t *load_one_node(const char *node, ism_error_t *err)
{
    node_info_msg_t *msg = NULL;

    if (!node || !*node) {
        ism_err(err, EINVAL, "missing node name");
        return NULL;
    }
    if (slurm_load_node_single(&msg, (char *)node, SHOW_ALL) != 0) {
        slurm_fail(err, last_error(), "reading node %s", node);
        return NULL;
    }
    if (!msg || msg->record_count == 0 || !msg->node_array[0].name) {
        free_node_msg(msg);
        ism_err(err, ENOENT, "reading node %s: Slurm has no such node", node);
        return NULL;
    }
    return msg;
}

char *ism_slurm_node_extra(ism_slurm_t *s, const char *node, ism_error_t *err)
{
    node_info_msg_t *msg = load_one_node(node, err);
    char *extra;

    if (!msg)
        return NULL;
    extra = strdup(msg->node_array[0].extra ? msg->node_array[0].extra : "");
    free_node_msg(msg);
    if (!extra)
        ism_err(err, ENOMEM, "out of memory");
    return extra;
}

int ism_slurm_node_set_extra(ism_slurm_t *s, const char *node, const char *extra,
                             ism_error_t *err)
{
    update_node_msg_t u;

    if (!node || !*node || !extra)
        return ism_err(err, EINVAL, "setting Extra: missing node name or text");
    slurm_init_update_node_msg(&u);
    u.node_names = (char *)node;
    u.extra = (char *)extra;
    if (slurm_update_node(&u) != 0)
        return slurm_fail(err, last_error(), "updating the Extra field of node %s", node);
    return 0;
}

/* The canonical encoding extra holds in full when its digest is digest
 * (caller frees), else NULL: a reference, another topology, none. */
static char *extra_full(const char *extra, const char *digest)
{
    char *value = ism_extra_get(extra, NULL), *canonical = NULL;
    char got[ISM_EXTRA_DIGEST_LEN + 1];
    ism_topo_t *topo;

    if (value && ism_extra_ref_parse(value, NULL, NULL) == 0 &&
        (topo = ism_topo_decode(value, NULL))) {
        canonical = ism_topo_encode(topo, NULL);
        ism_topo_destroy(topo);
    }
    free(value);
    if (canonical) {
        ism_extra_digest(canonical, got);
        if (strcmp(got, digest) != 0) {
            free(canonical);
            canonical = NULL;
        }
    }
    return canonical;
}

/* Node's full encoding with digest, read with one single-node RPC, or
 * NULL: a candidate holder that cannot be read is just not a holder. */
static char *node_full(const char *node, const char *digest)
{
    node_info_msg_t *msg = load_one_node(node, NULL);
    char *canonical = msg ? extra_full(msg->node_array[0].extra, digest) : NULL;

    free_node_msg(msg);
    return canonical;
}

/* The holders to try, as ism_slurm_publish_topology says: a NULL-terminated
 * array of new strings (caller frees with free_names), NULL if out of
 * memory. */
struct names {
    char **v;
    int n;
};

static int names_add(struct names *a, const char *name, const char *skip)
{
    char **v;

    if (!name || !*name || strcmp(name, skip) == 0)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->v[i], name) == 0)
            return 0;
    if (!(v = realloc(a->v, sizeof(*v) * (size_t)(a->n + 2))))
        return -1;
    a->v = v;
    if (!(v[a->n] = strdup(name)))
        return -1;
    v[++a->n] = NULL;
    return 0;
}

static void names_free(struct names *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
}

/* The first node of each partition that holds node. */
static int partition_firsts(struct names *a, const char *node)
{
    partition_info_msg_t *msg = NULL;
    int rc = 0;

    if (slurm_load_partitions(0, &msg, SHOW_ALL) != 0 || !msg)
        return 0; /* only candidates are lost */
    for (uint32_t p = 0; rc == 0 && p < msg->record_count; p++) {
        const char *list = msg->partition_array[p].nodes;
        ism_hostlist_t hl = list && *list ? slurm_hostlist_create(list) : NULL;
        char *first;

        if (!hl)
            continue;
        if (slurm_hostlist_find(hl, node) >= 0 && (first = slurm_hostlist_shift(hl))) {
            rc = names_add(a, first, node);
            free(first);
        }
        slurm_hostlist_destroy(hl);
    }
    slurm_free_partition_info_msg(msg);
    return rc;
}

/* The first node of the whole table other than skip that holds digest in
 * full (one read of the table), among the nodes before skip only when
 * earlier: its name into holder (NULL ok) and its encoding into *json
 * (NULL ok).  Returns 1 found, 0 none, -1 with err. */
static int table_holder(const char *digest, const char *skip, bool earlier, char *holder,
                        char **json, ism_error_t *err)
{
    node_info_msg_t *msg = NULL;
    int found = 0;

    if (slurm_load_node(0, &msg, SHOW_ALL) != 0)
        return slurm_fail(err, last_error(), "reading the nodes");
    for (uint32_t i = 0; !found && i < msg->record_count; i++) {
        const node_info_t *n = &msg->node_array[i];
        char *full;

        if (n->name && strcmp(n->name, skip) == 0) {
            if (earlier)
                break;
            continue;
        }
        if (!n->name || !n->extra || strlen(n->name) > ISM_SLURM_NODE_NAME_MAX ||
            !(full = extra_full(n->extra, digest)))
            continue;
        found = 1;
        if (holder)
            strcpy(holder, n->name);
        if (json)
            *json = full;
        else
            free(full);
    }
    free_node_msg(msg);
    return found;
}

/* The first candidate holding digest in full: --holder nodes, then the
 * first node of each partition of node, each with a single-node read.
 * Its name into holder ("" when none; -1 only when out of memory), and its
 * encoding into *json when json is not NULL. */
static int find_holder(const char *node, const char *digest, const char *const *given,
                       char *holder, char **json)
{
    struct names a = { 0 };
    int rc = 0;

    holder[0] = '\0';
    for (int i = 0; rc == 0 && given && given[i]; i++)
        rc = names_add(&a, given[i], node);
    if (rc == 0)
        rc = partition_firsts(&a, node);
    for (int i = 0; rc == 0 && i < a.n && !holder[0]; i++) {
        char *full = node_full(a.v[i], digest);
        if (full && strlen(a.v[i]) <= ISM_SLURM_NODE_NAME_MAX) {
            strcpy(holder, a.v[i]);
            if (json) {
                *json = full;
                full = NULL;
            }
        }
        free(full);
    }
    names_free(&a);
    return rc;
}

/* Whether extra already names digest by reference. */
static bool names_digest(const char *extra, const char *digest)
{
    char *value = ism_extra_get(extra, NULL), now[ISM_EXTRA_DIGEST_LEN + 1];
    bool yes = value && ism_extra_ref_parse(value, now, NULL) == 1 && strcmp(now, digest) == 0;

    free(value);
    return yes;
}

/* Whether extra holds the encoding with digest in full. */
static bool holds_digest(const char *extra, const char *digest)
{
    char *full = extra_full(extra, digest);

    free(full);
    return full != NULL;
}

/* Where publish stores a reference: a candidate holding digest; else, when
 * the node published this topology before, a holder anywhere in the table
 * (one read): any for a node that names it (a holder given by --holder
 * once stays good), one before it in slurmctld's order for a node that
 * holds it too (so the holders of one machine that is no partition's
 * first converge on the first of them, and two never both give way).
 * holder "" when none: store it in full. */
static int choose_holder(const char *node, const char *extra, const char *digest,
                         const struct ism_publish *p, char *holder, ism_error_t *err)
{
    bool names, holds;

    if (find_holder(node, digest, p->holders, holder, NULL) < 0)
        return ism_err(err, ENOMEM, "out of memory");
    if (holder[0])
        return 0;
    names = names_digest(extra, digest);
    holds = !names && holds_digest(extra, digest);
    if ((names || holds) && table_holder(digest, node, holds, holder, NULL, err) < 0)
        return -1;
    return 0;
}

int ism_slurm_publish_topology(ism_slurm_t *s, const char *node, const char *topo_json,
                               struct ism_publish *p, ism_error_t *err)
{
    char digest[ISM_EXTRA_DIGEST_LEN + 1], *extra, *merged = NULL, *ref = NULL;
    const char *value = topo_json;
    int rc = -1;

    if (!p || !topo_json)
        return ism_err(err, EINVAL, "publish: missing topology or options");
    p->changed = false;
    p->holder[0] = '\0';
    if (!(extra = ism_slurm_node_extra(s, node, err)))
        return -1;
    ism_extra_digest(topo_json, digest);
    if (!p->full && choose_holder(node, extra, digest, p, p->holder, err) < 0)
        goto out;
    if (p->holder[0] && !(value = ref = ism_extra_ref_format(digest, err)))
        goto out;
    if ((rc = ism_extra_merge(extra, value, p->force, &merged, err)) < 0)
        ism_errprefix(err, "node %s", node);
    else if (rc > 0 && (rc = ism_slurm_node_set_extra(s, node, merged, err)) == 0)
        p->changed = true;
out:
    free(ref);
    free(merged);
    free(extra);
    return rc < 0 ? -1 : 0;
}

/* The full encoding a reference names: from the first node of one of
 * node's partitions, else from any node of the table. */
static char *follow(const char *node, const char *digest, ism_error_t *err)
{
    char holder[ISM_SLURM_NODE_NAME_MAX + 1], *json = NULL;

    if (find_holder(node, digest, NULL, holder, &json) < 0) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    if (!json && table_holder(digest, node, false, NULL, &json, err) == 0)
        ism_err(err, ENOENT,
                "its Extra names the topology %s%s, but no node holds it: run "
                "isthmus-topology publish on %s", ISM_EXTRA_REF_PREFIX, digest, node);
    return json;
}

char *ism_slurm_fetch_topology(ism_slurm_t *s, const char *node, ism_error_t *err)
{
    char *extra = ism_slurm_node_extra(s, node, err);
    char *value = extra ? ism_extra_get(extra, err) : NULL, *json = NULL;
    char digest[ISM_EXTRA_DIGEST_LEN + 1];
    int kind = value ? ism_extra_ref_parse(value, digest, err) : -1;

    if (kind == 0) {
        json = value;
        value = NULL;
    } else if (kind == 1) {
        json = follow(node, digest, err);
    }
    if (extra && !json)
        ism_errprefix(err, "node %s", node);
    free(value);
    free(extra);
    return json;
}

/* ---- nodes ---- */

static const char *node_state_name(uint32_t state)
{
    switch (state & NODE_STATE_BASE) {
    case NODE_STATE_UNKNOWN: return "unknown";
    case NODE_STATE_DOWN: return "down";
    case NODE_STATE_IDLE: return "idle";
    case NODE_STATE_ALLOCATED: return "allocated";
    case NODE_STATE_ERROR: return "error";
    case NODE_STATE_MIXED: return "mixed";
    case NODE_STATE_FUTURE: return "future";
    default: return "invalid";
    }
}

/* Load a table when it changed.  Returns 1 changed, 0 not, -1 error. */
static int load_nodes_msg(ism_slurm_t *s, ism_error_t *err)
{
    node_info_msg_t *msg = NULL;

    /* SHOW_MIXED: libslurm turns a partly allocated node from ALLOCATED
     * into MIXED, as sinfo shows it. */
    if (slurm_load_node(s->node_msg ? s->node_msg->last_update : 0, &msg,
                        SHOW_ALL | SHOW_MIXED) != 0) {
        int code = last_error();
        if (code == SLURM_NO_CHANGE_IN_DATA && s->node_msg)
            return 0;
        return slurm_fail(err, code, "reading the nodes");
    }
    free_node_msg(s->node_msg);
    s->node_msg = msg;
    return 1;
}

static int load_parts_msg(ism_slurm_t *s, ism_error_t *err)
{
    partition_info_msg_t *msg = NULL;

    if (slurm_load_partitions(s->part_msg ? s->part_msg->last_update : 0, &msg, SHOW_ALL) !=
        0) {
        int code = last_error();
        if (code == SLURM_NO_CHANGE_IN_DATA && s->part_msg)
            return 0;
        return slurm_fail(err, code, "reading the partitions");
    }
    slurm_free_partition_info_msg(s->part_msg);
    s->part_msg = msg;
    return 1;
}

static char *dup_or_empty(const char *str)
{
    return strdup(str ? str : "");
}

struct ism_slurm_name_index {
    const char *name;
    int index;
};

static int cmp_name_index(const void *a, const void *b)
{
    const struct ism_slurm_name_index *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* The position of node name in the snapshot, or -1. */
static int find_index(const ism_slurm_nodes_t *nodes, const char *name)
{
    struct ism_slurm_name_index key = { name, 0 }, *hit = NULL;

    if (nodes && name && nodes->by_name)
        hit = bsearch(&key, nodes->by_name, (size_t)nodes->count, sizeof(key), cmp_name_index);
    return hit ? hit->index : -1;
}

static int add_partition(struct ism_slurm_node *n, const char *part)
{
    char **p = realloc(n->partitions, sizeof(*p) * (size_t)(n->npartitions + 1));

    if (!p)
        return -1;
    n->partitions = p;
    if (!(p[n->npartitions] = strdup(part)))
        return -1;
    n->npartitions++;
    return 0;
}

/* Index the snapshot's nodes by name, for ism_slurm_nodes_find and the
 * partitions. */
static int index_nodes(ism_slurm_nodes_t *nodes)
{
    struct ism_slurm_name_index *idx = calloc((size_t)nodes->count + 1, sizeof(*idx));

    if (!idx)
        return -1;
    for (int i = 0; i < nodes->count; i++)
        idx[i] = (struct ism_slurm_name_index){ nodes->nodes[i].name, i };
    qsort(idx, (size_t)nodes->count, sizeof(*idx), cmp_name_index);
    nodes->by_name = idx;
    return 0;
}

/* Slurm's time limits (minutes, INFINITE or NO_VAL for none) as ours. */
static uint32_t limit_minutes(uint32_t t)
{
    return (t == INFINITE || t == NO_VAL) ? ISM_SLURM_UNLIMITED : t;
}

/* Give every node the names of the partitions whose node list holds it,
 * and the snapshot the partitions' limits. */
static int fill_partitions(ism_slurm_nodes_t *nodes, const partition_info_msg_t *parts,
                           ism_error_t *err)
{
    int rc = 0;

    if (parts && parts->record_count &&
        !(nodes->partitions = calloc(parts->record_count, sizeof(*nodes->partitions))))
        return ism_err(err, ENOMEM, "out of memory");
    for (uint32_t p = 0; parts && p < parts->record_count; p++) {
        const partition_info_t *part = &parts->partition_array[p];
        struct ism_slurm_partition *to = &nodes->partitions[nodes->npartitions];

        if (!part->name)
            continue;
        if (!(to->name = strdup(part->name)))
            return ism_err(err, ENOMEM, "out of memory");
        to->max_time = limit_minutes(part->max_time);
        to->default_time = limit_minutes(part->default_time);
        to->is_default = (part->flags & PART_FLAG_DEFAULT) != 0;
        nodes->npartitions++;
    }

    for (uint32_t p = 0; rc == 0 && parts && p < parts->record_count; p++) {
        const partition_info_t *part = &parts->partition_array[p];
        ism_hostlist_t hl;
        char *host;

        if (!part->name || !part->nodes || !*part->nodes)
            continue;
        if (!(hl = slurm_hostlist_create(part->nodes)))
            continue; /* not a hostlist Slurm can read: no node to add */
        while (rc == 0 && (host = slurm_hostlist_shift(hl))) {
            int i = find_index(nodes, host);
            if (i >= 0 && add_partition(&nodes->nodes[i], part->name) < 0)
                rc = ism_err(err, ENOMEM, "out of memory");
            free(host);
        }
        slurm_hostlist_destroy(hl);
    }
    return rc;
}

static void node_alloc(const node_info_t *in, struct ism_slurm_node *n)
{
#ifdef ISM_NODE_ALLOC_FIELDS
    n->alloc_cpus = in->alloc_cpus;
    n->alloc_memory = in->alloc_memory;
#else
    uint16_t cpus = 0;
    uint64_t mem = 0; /* the header says uint32, the select plugins write uint64 */

    if (slurm_get_select_nodeinfo(in->select_nodeinfo, SELECT_NODEDATA_SUBCNT,
                                  NODE_STATE_ALLOCATED, &cpus) == 0)
        n->alloc_cpus = cpus;
    if (slurm_get_select_nodeinfo(in->select_nodeinfo, SELECT_NODEDATA_MEM_ALLOC,
                                  NODE_STATE_ALLOCATED, &mem) == 0)
        n->alloc_memory = mem;
#endif
}

static int convert_node(const node_info_t *in, struct ism_slurm_node *n)
{
    const char *features = in->features_act && *in->features_act ? in->features_act : in->features;

    n->state = in->node_state;
    n->state_name = node_state_name(in->node_state);
    if (!(n->name = dup_or_empty(in->name)) || !(n->features = dup_or_empty(features)) ||
        !(n->extra = dup_or_empty(in->extra)))
        return -1;
    n->sockets = in->sockets;
    n->cores_per_socket = in->cores;
    n->threads_per_core = in->threads;
    n->cpus = in->cpus;
    n->real_memory = in->real_memory;
    node_alloc(in, n);
    return 0;
}

/* Give every node of the snapshot its topology, decoding only what changed
 * since the last snapshot (lib/topology/extra_table.h). */
static int node_topologies(ism_slurm_t *s, ism_slurm_nodes_t *nodes)
{
    const char **names = calloc((size_t)nodes->count + 1, sizeof(*names));
    const char **extras = calloc((size_t)nodes->count + 1, sizeof(*extras));
    struct ism_topo_share **shares = calloc((size_t)nodes->count + 1, sizeof(*shares));
    int rc = -1;

    if (!names || !extras || !shares ||
        (!s->topologies && !(s->topologies = ism_extra_table_create())))
        goto out;
    for (int i = 0; i < nodes->count; i++) {
        names[i] = nodes->nodes[i].name;
        extras[i] = nodes->nodes[i].extra;
    }
    if (ism_extra_table_update(s->topologies, nodes->count, names, extras, shares) < 0)
        goto out;
    for (int i = 0; i < nodes->count; i++) {
        struct ism_slurm_node *n = &nodes->nodes[i];
        n->topo_share = shares[i];
        n->topo = shares[i]->topo;
        memcpy(n->topo_error, shares[i]->error, sizeof(n->topo_error));
    }
    rc = 0;
out:
    free(names);
    free(extras);
    free(shares);
    return rc;
}

static ism_slurm_nodes_t *convert_nodes(ism_slurm_t *s, const node_info_msg_t *msg,
                                        const partition_info_msg_t *parts, ism_error_t *err)
{
    ism_slurm_nodes_t *nodes = calloc(1, sizeof(*nodes));

    if (!nodes || (msg->record_count &&
                   !(nodes->nodes = calloc(msg->record_count, sizeof(*nodes->nodes)))))
        goto nomem;
    nodes->updated = msg->last_update;
    for (uint32_t i = 0; i < msg->record_count; i++) {
        /* Slurm leaves holes for nodes it hides or removed. */
        if (!msg->node_array[i].name)
            continue;
        if (convert_node(&msg->node_array[i], &nodes->nodes[nodes->count++]) < 0)
            goto nomem;
    }
    if (index_nodes(nodes) < 0 || node_topologies(s, nodes) < 0)
        goto nomem;
    if (fill_partitions(nodes, parts, err) < 0)
        goto error;
    return nodes;
nomem:
    ism_err(err, ENOMEM, "out of memory");
error:
    ism_slurm_nodes_destroy(nodes);
    return NULL;
}

int ism_slurm_nodes_poll(ism_slurm_t *s, ism_slurm_nodes_t **nodes, ism_error_t *err)
{
    int n, p;

    if (!s || !nodes)
        return ism_err(err, EINVAL, "nodes poll: missing handle or output");
    *nodes = NULL;
    /* A change stays pending until converted, even when a later step of
     * this poll fails: the next poll converts it. */
    if ((n = load_nodes_msg(s, err)) > 0)
        s->nodes_fresh = true;
    if (n < 0 || (p = load_parts_msg(s, err)) < 0)
        return -1;
    if (p > 0)
        s->nodes_fresh = true;
    if (!s->nodes_fresh)
        return 0;
    if (!(*nodes = convert_nodes(s, s->node_msg, s->part_msg, err)))
        return -1;
    s->nodes_fresh = false;
    return 1;
}

void ism_slurm_nodes_destroy(ism_slurm_nodes_t *nodes)
{
    int saved = errno;

    if (!nodes)
        return;
    for (int i = 0; i < nodes->count; i++) {
        struct ism_slurm_node *n = &nodes->nodes[i];
        free(n->name);
        for (int p = 0; p < n->npartitions; p++)
            free(n->partitions[p]);
        free(n->partitions);
        free(n->features);
        free(n->extra);
        ism_topo_share_put(n->topo_share);
    }
    free(nodes->nodes);
    free(nodes->by_name);
    for (int p = 0; p < nodes->npartitions; p++)
        free(nodes->partitions[p].name);
    free(nodes->partitions);
    free(nodes);
    errno = saved;
}

const struct ism_slurm_node *ism_slurm_nodes_find(const ism_slurm_nodes_t *nodes,
                                                  const char *name)
{
    int i = find_index(nodes, name);
    return i >= 0 ? &nodes->nodes[i] : NULL;
}

/* ---- jobs ---- */

static const char *job_state_name(uint32_t state)
{
    static const char *const names[] = {
        "PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED",
        "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY",
    };
    uint32_t base = state & JOB_STATE_BASE;

    return base < sizeof(names) / sizeof(names[0]) ? names[base] : "UNKNOWN";
}

static bool job_is_finished(uint32_t state)
{
    uint32_t base = state & JOB_STATE_BASE;
    return base > JOB_SUSPENDED && !(state & JOB_COMPLETING);
}

static bool job_holds_resources(const slurm_job_info_t *j)
{
    uint32_t base = j->job_state & JOB_STATE_BASE;
    return j->job_resrcs && j->nodes && *j->nodes &&
           (base == JOB_RUNNING || base == JOB_SUSPENDED || (j->job_state & JOB_COMPLETING));
}

#ifdef ISM_HAVE_JOB_CPUS_STR
/* The cores, cpus and memory a job holds on one of its nodes. */
static int job_node(const slurm_job_info_t *j, const char *host, struct ism_slurm_job_node *jn,
                    ism_error_t *err)
{
    static __thread char buf[65536];
    int cpus;

    if (!(jn->name = strdup(host)))
        return ism_err(err, ENOMEM, "out of memory");
    buf[sizeof(buf) - 2] = '\0';
    if (slurm_job_cpus_allocated_str_on_node(buf, sizeof(buf), j->job_resrcs, host) != 0)
        return slurm_fail(err, last_error(), "job %u: cores on node %s", j->job_id, host);
    if (buf[sizeof(buf) - 2] != '\0')
        return ism_err(err, E2BIG, "job %u: core list on node %s is too long", j->job_id, host);
    if (!(jn->cores = ism_bitmap_parse_list(buf, err)))
        return ism_errprefix(err, "job %u: cores on node %s", j->job_id, host);
    cpus = slurm_job_cpus_allocated_on_node(j->job_resrcs, host);
    jn->cpus = cpus > 0 ? (uint32_t)cpus : 0;
    if (j->pn_min_memory == NO_VAL64)
        jn->memory = 0;
    else if (j->pn_min_memory & MEM_PER_CPU)
        jn->memory = (j->pn_min_memory & ~MEM_PER_CPU) * jn->cpus;
    else
        jn->memory = j->pn_min_memory;
    return 0;
}
#endif

#ifndef ISM_HAVE_JOB_CPUS_STR
/* The shape of node host (sockets, cores per socket, threads per core):
 * from the last node table this handle read, else asked of slurmctld. */
static int node_shape(ism_slurm_t *s, const char *host, struct ism_resrcs_shape *shape,
                      ism_error_t *err)
{
    node_info_msg_t *msg = NULL;
    const node_info_t *n = NULL;

    for (uint32_t i = 0; s->node_msg && i < s->node_msg->record_count && !n; i++)
        if (s->node_msg->node_array[i].name && strcmp(s->node_msg->node_array[i].name, host) == 0)
            n = &s->node_msg->node_array[i];
    if (!n) {
        if (!(msg = load_one_node(host, err)))
            return -1;
        n = &msg->node_array[0];
    }
    shape->sockets = n->sockets;
    shape->cores_per_socket = n->cores;
    shape->threads_per_core = n->threads;
    free_node_msg(msg);
    if (shape->sockets <= 0 || shape->cores_per_socket <= 0 || shape->threads_per_core <= 0)
        return ism_err(err, EPROTO, "node %s has %d sockets of %d cores of %d threads", host,
                       shape->sockets, shape->cores_per_socket, shape->threads_per_core);
    return 0;
}
#endif

#ifdef ISM_HAVE_JOB_RESRCS_2411
/* Job j's cores on node host into jn; all is the record's node list. */
static int resrcs_node(ism_slurm_t *s, const ism_job_resrcs_t *view, ism_hostlist_t all,
                       const char *host, struct ism_slurm_job_node *jn, ism_error_t *err)
{
    struct ism_resrcs_shape shape;

    if (!(jn->name = strdup(host)))
        return ism_err(err, ENOMEM, "out of memory");
    if (node_shape(s, host, &shape, err) < 0)
        return ism_errprefix(err, "job %u", view->job.id);
    return ism_job_resrcs_node(view, slurm_hostlist_find(all, host), host, &shape, &jn->cores,
                               &jn->cpus, &jn->memory, err);
}

/* 24.11 and 25.05: the resources record slurm_load_jobs brought, checked
 * against the job and the node table (job_resrcs.h); no more RPCs unless
 * the node table was not read yet. */
static int job_nodes(ism_slurm_t *s, const slurm_job_info_t *j, struct ism_slurm_job *job,
                     ism_error_t *err)
{
    struct ism_resrcs_job rj = { .id = j->job_id, .num_nodes = j->num_nodes,
                                 .num_cpus = j->num_cpus,
                                 .completing = (j->job_state & JOB_COMPLETING) != 0 };
    ism_job_resrcs_t view;
    ism_hostlist_t hl = NULL, all = NULL;
    char *host;
    int count, rc = 0;

    if (!job_holds_resources(j))
        return 0;
    if (ism_job_resrcs_open(j->job_resrcs, &rj, &view, err) < 0)
        return -1;
    if (!(hl = slurm_hostlist_create(j->nodes)) || !(all = slurm_hostlist_create(view.nodes)))
        rc = ism_err(err, EINVAL, "job %u: bad node list '%s' or '%s'", j->job_id, j->nodes,
                     view.nodes);
    if (rc == 0 && slurm_hostlist_count(all) != view.nhosts)
        rc = ism_err(err, EPROTO, "job %u: its resources record names %d nodes (%s) for %d",
                     j->job_id, slurm_hostlist_count(all), view.nodes, view.nhosts);
    count = rc == 0 ? slurm_hostlist_count(hl) : 0;
    if (count > 0 && !(job->node = calloc((size_t)count, sizeof(*job->node))))
        rc = ism_err(err, ENOMEM, "out of memory");
    while (rc == 0 && job->nnodes < count && (host = slurm_hostlist_shift(hl))) {
        rc = resrcs_node(s, &view, all, host, &job->node[job->nnodes++], err);
        free(host);
    }
    if (all)
        slurm_hostlist_destroy(all);
    if (hl)
        slurm_hostlist_destroy(hl);
    return rc;
}
#elif !defined(ISM_HAVE_RESOURCE_LAYOUT)
static int job_nodes(ism_slurm_t *s, const slurm_job_info_t *j, struct ism_slurm_job *job,
                     ism_error_t *err)
{
    ism_hostlist_t hl;
    char *host;
    int count, rc = 0;

    if (!job_holds_resources(j))
        return 0;
    if (!(hl = slurm_hostlist_create(j->nodes)))
        return ism_err(err, EINVAL, "job %u: bad node list '%s'", j->job_id, j->nodes);
    count = slurm_hostlist_count(hl);
    if (count > 0 && !(job->node = calloc((size_t)count, sizeof(*job->node))))
        rc = ism_err(err, ENOMEM, "out of memory");
    while (rc == 0 && job->nnodes < count && (host = slurm_hostlist_shift(hl))) {
        rc = job_node(j, host, &job->node[job->nnodes++], err);
        free(host);
    }
    slurm_hostlist_destroy(hl);
    return rc;
}
#else
/* The reply of slurm_get_resource_layout().  Its types are in no public
 * header: these are their layouts from 25.11.0 to 26.05.5.  A reply that
 * does not look like one (names that are not the job's nodes, a core mask
 * that is not hex or does not fit the node) is refused, never mirrored. */
struct layout_node {
    char *node;
    uint64_t mem_alloc; /* MiB on this node */
    uint16_t sockets_per_node;
    uint16_t cores_per_socket;
    char *core_bitmap; /* "0x" and hex digits, most significant first:
                          bit i is the node's abstract core i */
    uint32_t channel;
    list_t *gres;
};

struct layout_msg {
    list_t *nodes; /* of struct layout_node */
};

extern void slurm_free_resource_layout_msg(struct layout_msg *msg);

/* The cores of a "0x..." mask of a node with ncores cores (new bitmap). */
static ism_bitmap_t *parse_core_mask(const char *hex, int ncores, ism_error_t *err)
{
    ism_bitmap_t *b;
    size_t len;

    if (!hex || strncmp(hex, "0x", 2) != 0 || !(len = strlen(hex + 2)) ||
        strspn(hex + 2, "0123456789abcdefABCDEF") != len) {
        ism_err(err, EPROTO, "core mask '%s' is not hexadecimal", hex ? hex : "(none)");
        return NULL;
    }
    if (!(b = ism_bitmap_create())) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t k = 0; k < len; k++) {
        char c = hex[2 + len - 1 - k];
        int v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
        for (int bit = 0; bit < 4; bit++) {
            long core = (long)k * 4 + bit;
            if (!(v & (1 << bit)))
                continue;
            if (core >= ncores) {
                ism_err(err, EPROTO, "core mask '%s' names core %ld of a node of %d cores", hex,
                        core, ncores);
                ism_bitmap_destroy(b);
                return NULL;
            }
            if (ism_bitmap_set(b, (int)core) < 0) {
                ism_err(err, ENOMEM, "out of memory");
                ism_bitmap_destroy(b);
                return NULL;
            }
        }
    }
    return b;
}

/* One node of the reply into jn; hl is the job's node list, seen marks the
 * nodes already described. */
static int layout_node(ism_slurm_t *s, const slurm_job_info_t *j, const struct layout_node *ln,
                       ism_hostlist_t hl, bool *seen, struct ism_slurm_job_node *jn,
                       ism_error_t *err)
{
    int at = ln->node ? slurm_hostlist_find(hl, ln->node) : -1;
    int ncores = (int)ln->sockets_per_node * ln->cores_per_socket;
    struct ism_resrcs_shape shape;

    if (at < 0 || seen[at])
        return ism_err(err, EPROTO,
                       "job %u: Slurm described cores on node '%s', which is not one of its "
                       "nodes (%s) or came twice; refusing the reply",
                       j->job_id, ln->node ? ln->node : "(none)", j->nodes);
    seen[at] = true;
    if (!(jn->name = strdup(ln->node)))
        return ism_err(err, ENOMEM, "out of memory");
    if (ncores <= 0)
        return ism_err(err, EPROTO, "job %u: node %s has %d sockets of %d cores", j->job_id,
                       ln->node, ln->sockets_per_node, ln->cores_per_socket);
    if (!(jn->cores = parse_core_mask(ln->core_bitmap, ncores, err)))
        return ism_errprefix(err, "job %u: cores on node %s", j->job_id, ln->node);
    if (ism_bitmap_empty(jn->cores))
        return ism_err(err, EPROTO, "job %u: Slurm gave it no core on node %s", j->job_id,
                       ln->node);
    if (node_shape(s, ln->node, &shape, err) < 0)
        return ism_errprefix(err, "job %u", j->job_id);
    /* Slurm allocates whole cores: every thread of each. */
    jn->cpus = (uint32_t)ism_bitmap_count(jn->cores) * (uint32_t)shape.threads_per_core;
    jn->memory = ln->mem_alloc;
    return 0;
}

/* 25.11 and later: one RPC per running job.  slurmctld answers only for a
 * job in state RUNNING: a suspended or completing one is read without
 * nodes, and so is one that ended since the job table was read. */
static int job_nodes(ism_slurm_t *s, const slurm_job_info_t *j, struct ism_slurm_job *job,
                     ism_error_t *err)
{
    /* slurm_get_resource_layout() (25.11 to 26.05) sends its argument as
     * a job_id_msg_t, a step id and then uint16_t show_flags: it reads
     * past a bare slurm_step_id_t (valgrind saw the stack's bytes go out).
     * Give it the whole message, show_flags 0. */
    struct {
        slurm_step_id_t id;
        uint16_t show_flags;
    } req = { .id = job_step_id(j->job_id), .show_flags = 0 };
    struct layout_msg *msg = NULL;
    struct layout_node *ln;
    list_itr_t *it;
    ism_hostlist_t hl;
    bool *seen = NULL;
    int count, rc;

    if (!job_holds_resources(j) || (j->job_state & JOB_STATE_BASE) != JOB_RUNNING)
        return 0;
    rc = slurm_get_resource_layout(&req.id, (void **)&msg);
    if (rc == SLURM_ERROR)
        rc = last_error();
    if (rc == ESLURM_JOB_NOT_RUNNING || rc == ESLURM_INVALID_JOB_ID) {
        slurm_free_resource_layout_msg(msg);
        return 0;
    }
    if (rc != 0 || !msg || !msg->nodes) {
        slurm_free_resource_layout_msg(msg);
        return slurm_fail(err, rc ? rc : EPROTO, "job %u: reading its cores", j->job_id);
    }
    if (!(hl = slurm_hostlist_create(j->nodes))) {
        slurm_free_resource_layout_msg(msg);
        return ism_err(err, EINVAL, "job %u: bad node list '%s'", j->job_id, j->nodes);
    }
    count = slurm_hostlist_count(hl);
    rc = 0;
    if (count <= 0 || !(job->node = calloc((size_t)count, sizeof(*job->node))) ||
        !(seen = calloc((size_t)count, sizeof(*seen))))
        rc = count <= 0 ? ism_err(err, EINVAL, "job %u: no nodes in '%s'", j->job_id, j->nodes)
                        : ism_err(err, ENOMEM, "out of memory");
    if (rc == 0 && !(it = slurm_list_iterator_create(msg->nodes)))
        rc = ism_err(err, ENOMEM, "out of memory");
    if (rc == 0) {
        while (rc == 0 && (ln = slurm_list_next(it))) {
            if (job->nnodes == count)
                rc = ism_err(err, EPROTO, "job %u: Slurm described more nodes than its %d",
                             j->job_id, count);
            else
                rc = layout_node(s, j, ln, hl, seen, &job->node[job->nnodes++], err);
        }
        slurm_list_iterator_destroy(it);
    }
    if (rc == 0 && job->nnodes != count)
        rc = ism_err(err, EPROTO, "job %u: Slurm described cores on %d of its %d nodes (%s)",
                     j->job_id, job->nnodes, count, j->nodes);
    free(seen);
    slurm_hostlist_destroy(hl);
    slurm_free_resource_layout_msg(msg);
    return rc;
}
#endif

/* Why a job waits (or ended) as squeue prints it: the description
 * slurmctld wrote, else the reason's name. */
static char *job_reason(const slurm_job_info_t *j)
{
    if (j->state_desc && *j->state_desc)
        return strdup(j->state_desc);
    if (j->state_reason == WAIT_NO_REASON)
        return strdup("");
#ifdef ISM_REASON_STRING
    return strdup(ISM_REASON_STRING(j->state_reason));
#else
    char buf[64];
    snprintf(buf, sizeof(buf), "reason %u", (unsigned)j->state_reason);
    return strdup(buf);
#endif
}

/* Pending reasons slurmctld gives when the request does not fit the
 * configuration: such a job would wait forever (the default
 * EnforcePartLimits=NO queues it instead of refusing it).  NULL for any
 * other reason. */
static const char *hopeless_reason(uint32_t reason)
{
    switch (reason) {
    case WAIT_PART_NODE_LIMIT: return "more nodes than the partition allows (PartitionNodeLimit)";
    case WAIT_PART_TIME_LIMIT: return "a longer time than the partition allows (PartitionTimeLimit)";
    case WAIT_PART_CONFIG: return "more than the partition's nodes can hold (PartitionConfig)";
    case FAIL_BAD_CONSTRAINTS: return "constraints no node satisfies (BadConstraints)";
    case FAIL_ACCOUNT: return "an invalid account (InvalidAccount)";
    case FAIL_QOS: return "an invalid QOS (InvalidQOS)";
    default: return NULL;
    }
}

static int convert_job(ism_slurm_t *s, const slurm_job_info_t *j, struct ism_slurm_job *job,
                       ism_error_t *err)
{
    job->id = j->job_id;
    job->state = j->job_state;
    job->state_name = job_state_name(j->job_state);
    job->user_id = j->user_id;
    job->hopeless = NULL;
    if ((j->job_state & JOB_STATE_BASE) == JOB_PENDING)
        job->hopeless = hopeless_reason(j->state_reason);
    if (!(job->name = dup_or_empty(j->name)) || !(job->comment = dup_or_empty(j->comment)) ||
        !(job->admin_comment = dup_or_empty(j->admin_comment)) ||
        !(job->partition = dup_or_empty(j->partition)) || !(job->reason = job_reason(j)) ||
        !(job->nodes = dup_or_empty(job_holds_resources(j) ? j->nodes : NULL)))
        return ism_err(err, ENOMEM, "out of memory");
    return job_nodes(s, j, job, err);
}

static ism_slurm_jobs_t *convert_jobs(ism_slurm_t *s, const job_info_msg_t *msg,
                                      ism_error_t *err)
{
    ism_slurm_jobs_t *jobs = calloc(1, sizeof(*jobs));

    if (!jobs || (msg->record_count &&
                  (!(jobs->jobs = calloc(msg->record_count, sizeof(*jobs->jobs))) ||
                   !(jobs->ended = calloc(msg->record_count, sizeof(*jobs->ended)))))) {
        ism_err(err, ENOMEM, "out of memory");
        ism_slurm_jobs_destroy(jobs);
        return NULL;
    }
    jobs->updated = msg->last_update;
    for (uint32_t i = 0; i < msg->record_count; i++) {
        const slurm_job_info_t *j = &msg->job_array[i];
        /* a finished job holds no resources: convert_job gives it no nodes */
        int rc = convert_job(s, j, job_is_finished(j->job_state) ? &jobs->ended[jobs->nended++]
                                                              : &jobs->jobs[jobs->count++],
                             err);
        if (rc < 0) {
            ism_slurm_jobs_destroy(jobs);
            return NULL;
        }
    }
    return jobs;
}

int ism_slurm_jobs_poll(ism_slurm_t *s, ism_slurm_jobs_t **jobs, ism_error_t *err)
{
    job_info_msg_t *msg = NULL;
    int rc;

    if (!s || !jobs)
        return ism_err(err, EINVAL, "jobs poll: missing handle or output");
    *jobs = NULL;
    /* SHOW_DETAIL brings job_resrcs (the core bitmaps); SHOW_LOCAL spares
     * the federation lookup. */
    rc = slurm_load_jobs(s->job_msg ? s->job_msg->last_update : 0, &msg,
                         SHOW_ALL | SHOW_DETAIL | SHOW_LOCAL);
    if (rc != 0) {
        int code = rc == SLURM_ERROR ? last_error() : rc;
        if (code != SLURM_NO_CHANGE_IN_DATA || !s->job_msg)
            return slurm_fail(err, code, "reading the jobs");
        if (!s->jobs_fresh)
            return 0;
    } else {
        free_job_msg(s->job_msg);
        s->job_msg = msg;
    }
    s->jobs_fresh = true;
    if (!(*jobs = convert_jobs(s, s->job_msg, err)))
        return -1;
    s->jobs_fresh = false;
    return 1;
}

void ism_slurm_jobs_destroy(ism_slurm_jobs_t *jobs)
{
    int saved = errno;

    if (!jobs)
        return;
    for (int i = 0; i < jobs->count + jobs->nended; i++) {
        struct ism_slurm_job *job =
            i < jobs->count ? &jobs->jobs[i] : &jobs->ended[i - jobs->count];
        for (int n = 0; n < job->nnodes; n++) {
            free(job->node[n].name);
            ism_bitmap_destroy(job->node[n].cores);
        }
        free(job->node);
        free(job->name);
        free(job->comment);
        free(job->admin_comment);
        free(job->partition);
        free(job->reason);
        free(job->nodes);
    }
    free(jobs->jobs);
    free(jobs->ended);
    free(jobs);
    errno = saved;
}

const struct ism_slurm_job *ism_slurm_jobs_find(const ism_slurm_jobs_t *jobs, uint32_t id)
{
    for (int i = 0; jobs && i < jobs->count; i++) {
        if (jobs->jobs[i].id == id)
            return &jobs->jobs[i];
    }
    return NULL;
}

/* ---- cores and the topology model ---- */

ism_bitmap_t *ism_slurm_cores_to_cpus(const ism_topo_t *topo, const ism_bitmap_t *cores,
                                      ism_error_t *err)
{
    ism_bitmap_t *cpus;
    int core;

    if (!topo || !cores) {
        ism_err(err, EINVAL, "cores to cpus: missing topology or cores");
        return NULL;
    }
    if (!(cpus = ism_bitmap_create())) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    ism_bitmap_foreach(core, cores)
    {
        const struct ism_core *c = ism_topo_core(topo, core);
        if (!c) {
            ism_err(err, EINVAL, "core %d is not in the node's topology (%d cores)", core,
                    topo->ncores);
            ism_bitmap_destroy(cpus);
            return NULL;
        }
        if (ism_bitmap_or(cpus, c->cpus) < 0) {
            ism_err(err, ENOMEM, "out of memory");
            ism_bitmap_destroy(cpus);
            return NULL;
        }
    }
    return cpus;
}

char *ism_slurm_core_devices(const ism_bitmap_t *cores)
{
    size_t len = 0, size = 1;
    char *s;
    int core;

    ism_bitmap_foreach(core, cores)
        size += 17;
    if (!(s = malloc(size)))
        return NULL;
    s[0] = '\0';
    ism_bitmap_foreach(core, cores)
        len += (size_t)snprintf(s + len, size - len, "%score-%d", len ? "," : "", core);
    return s;
}

/* ---- allocations ---- */

static void fill_job_desc(job_desc_msg_t *d, const struct ism_slurm_alloc_req *req)
{
    slurm_init_job_desc_msg(d);
    d->name = (char *)req->name;
    d->partition = (char *)req->partition;
    d->account = (char *)req->account;
    d->qos = (char *)req->qos;
    d->comment = (char *)req->comment;
    d->admin_comment = (char *)req->admin_comment;
    d->user_id = req->as_user ? req->uid : getuid();
    d->group_id = req->as_user ? req->gid : getgid();
    if (req->exclusive)
        d->shared = JOB_SHARED_NONE;
    d->work_dir = (char *)"/";
    if (req->min_nodes)
        d->min_nodes = req->min_nodes;
    if (req->max_nodes)
        d->max_nodes = req->max_nodes;
    /* What sbatch and salloc compute from -n and -c: without min_cpus a job
     * of 3 tasks with 2 cpus each gets 4 cpus. */
    if (req->num_tasks) {
        d->num_tasks = req->num_tasks;
        d->bitflags |= JOB_NTASKS_SET;
    }
    if (req->cpus_per_task) {
        d->cpus_per_task = (uint16_t)req->cpus_per_task;
        d->bitflags |= JOB_CPUS_SET;
    }
    if (req->num_tasks || req->cpus_per_task)
        d->min_cpus = (req->num_tasks ? req->num_tasks : 1) *
                      (req->cpus_per_task ? req->cpus_per_task : 1);
    if (req->ntasks_per_node)
        d->ntasks_per_node = (uint16_t)req->ntasks_per_node;
    if (req->mem_per_cpu)
        d->pn_min_memory = req->mem_per_cpu | MEM_PER_CPU;
    if (req->time_limit)
        d->time_limit = req->time_limit;
    d->immediate = req->immediate ? 1 : 0;
}

/* Cancel a just queued job that can never start, and say why. */
static int refuse_hopeless(uint32_t job_id, ism_error_t *err)
{
    job_info_msg_t *msg = NULL;
    const char *why = NULL;

    if (slurm_load_job(&msg, ISM_JOB(job_id), SHOW_LOCAL) == 0 && msg && msg->record_count == 1)
        why = hopeless_reason(msg->job_array[0].state_reason);
    free_job_msg(msg);
    if (!why)
        return 0;
    slurm_kill_job(ISM_JOB(job_id), SIGKILL, 0);
    return ism_err(err, EINVAL, "job %u asks for %s; it could never start, so it was cancelled",
                   job_id, why);
}

int ism_slurm_allocate(ism_slurm_t *s, const struct ism_slurm_alloc_req *req,
                       struct ism_slurm_alloc *alloc, ism_error_t *err)
{
    resource_allocation_response_msg_t *resp = NULL;
    job_desc_msg_t d;

    if (!req || !alloc)
        return ism_err(err, EINVAL, "allocate: missing request or output");
    if (req->cpus_per_task > UINT16_MAX || req->ntasks_per_node > UINT16_MAX ||
        (req->mem_per_cpu & MEM_PER_CPU))
        return ism_err(err, EINVAL, "allocate: a count is out of range");
    memset(alloc, 0, sizeof(*alloc));
    fill_job_desc(&d, req);
    if (slurm_allocate_resources(&d, &resp) != 0 || !resp)
        return slurm_fail(err, last_error(), "allocating %s", req->name ? req->name : "a job");
    alloc->job_id = alloc_job_id(resp);
    alloc->granted = resp->node_cnt > 0 && resp->node_list;
    snprintf(alloc->nodes, sizeof(alloc->nodes), "%s",
             alloc->granted ? resp->node_list : "");
    slurm_free_resource_allocation_response_msg(resp);
    if (!alloc->granted && refuse_hopeless(alloc->job_id, err) < 0) {
        alloc->job_id = 0;
        return -1;
    }
    return 0;
}

int ism_slurm_complete(ism_slurm_t *s, uint32_t job_id, int rc, ism_error_t *err)
{
    if (complete_job(job_id, (uint32_t)rc) != 0)
        return slurm_fail(err, last_error(), "completing job %u", job_id);
    return 0;
}

int ism_slurm_cancel(ism_slurm_t *s, uint32_t job_id, ism_error_t *err)
{
    if (slurm_kill_job(ISM_JOB(job_id), SIGKILL, 0) != 0)
        return slurm_fail(err, last_error(), "cancelling job %u", job_id);
    return 0;
}

int ism_slurm_signal(ism_slurm_t *s, uint32_t job_id, int sig, ism_error_t *err)
{
    if (sig <= 0 || sig >= NSIG)
        return ism_err(err, EINVAL, "signal %d is not a signal", sig);
    if (slurm_signal_job(ISM_JOB(job_id), (uint16_t)sig) != 0)
        return slurm_fail(err, last_error(), "signalling job %u", job_id);
    return 0;
}
