/* isthmus.c - SPANK plugin isthmus.so: bind every Slurm task to whole
 * cores and its memory to the NUMA nodes of those cores.
 *
 * Where the work happens (see facts-slurm.md §1 for the callback order):
 *   slurm_spank_init          every context: read plugstack.conf arguments,
 *                             register --isthmus-bind; in slurmd, write the
 *                             topology cache.
 *   option callback           srun/sbatch/salloc: reject a bad value before
 *                             anything is launched.
 *   slurm_spank_init_post_opt srun: check $ISTHMUS_BIND the same way.
 *                             slurmstepd (root, before the tasks fork): load
 *                             the topology (cache, else hwloc), read the
 *                             step's cores on this node and plan every local
 *                             task once; the tasks inherit the plan.
 *   slurm_spank_task_init     in each task, as the user, last hook before
 *                             exec: set the cpu affinity and the memory
 *                             policy of the task itself (a memory policy
 *                             cannot be set from another process), print
 *                             the verbose line.
 * Failures before the tasks exist are remembered, never returned from
 * init/init_post_opt (that can drain the node); the task that needs the
 * plan fails with the reason instead.
 */
#include <config.h>
#include <errno.h>
#include <linux/mempolicy.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "lib/topology/planner.h"
#include "lib/topology/topology.h"
#include "lib/topology/topology_cache.h"

SPANK_PLUGIN(isthmus, 1);

#define ENV_BIND "ISTHMUS_BIND"

/* Defaults of the cache; plugstack.conf cache=PATH overrides it. */
#ifndef ISM_SPANK_CACHE_DIR
#define ISM_SPANK_CACHE_DIR "/run/isthmus"
#endif

static struct {
    struct ism_plan_opts admin; /* plugstack.conf */
    char *user_text;            /* --isthmus-bind=, or $ISTHMUS_BIND */
    const char *user_from;      /* which of the two */
    char cache[1024];           /* cache file */
    char topology[1024];        /* plugstack.conf topology=FILE: plan only */
    /* Filled in slurmstepd before the tasks fork. */
    struct ism_plan_opts opts;
    bool enabled;
    bool asked;                /* the user named a layout: no plan = the task fails */
    bool plan_only;            /* topology from an XML file: plan, do not bind */
    char source[1100];         /* where the topology came from, for the verbose line */
    ism_plan_t *plan;
    char failure[2048];        /* why there is no plan although binding was asked */
    char node[64];
} g;

static int bind_option_cb(int val, const char *arg, int remote);

static struct spank_option bind_option = {
    "isthmus-bind", "compact|spread|numa|none[,verbose][,mem=local|hbm|none]",
    "isthmus: bind each task to whole cores and its memory to their NUMA nodes "
    "(default compact; also $" ENV_BIND ")",
    1, 0, bind_option_cb,
};

/* Check a user's text; on success keep it for the plan. */
static int take_user_text(const char *text, const char *from)
{
    struct ism_plan_opts o = ISM_PLAN_OPTS_INIT;
    ism_error_t err = ISM_ERROR_INIT;

    if (ism_plan_opts_parse(text ? text : "", &o, &err) < 0) {
        slurm_error("isthmus: %s: %s", from, err.text);
        return -1;
    }
    free(g.user_text);
    if (!(g.user_text = strdup(text ? text : "")))
        return -1;
    g.user_from = from;
    return 0;
}

static int bind_option_cb(int val, const char *arg, int remote)
{
    return take_user_text(arg, "--isthmus-bind");
}

static void cache_path_default(void)
{
    struct utsname u;

    /* One file per host name: safe even on a cache directory shared by mistake. */
    if (uname(&u) < 0)
        strcpy(u.nodename, "localhost");
    snprintf(g.cache, sizeof(g.cache), "%s/topology-%s.json", ISM_SPANK_CACHE_DIR, u.nodename);
}

/* plugstack.conf: default_layout=WORD (or layout=), mem=WORD, verbose,
 * cache=PATH, topology=FILE. */
static int parse_args(int ac, char **av)
{
    ism_error_t err = ISM_ERROR_INIT;

    g.admin = (struct ism_plan_opts)ISM_PLAN_OPTS_INIT;
    cache_path_default();
    for (int i = 0; i < ac; i++) {
        const char *a = av[i];
        if (strncmp(a, "cache=", 6) == 0 && a[6] == '/')
            snprintf(g.cache, sizeof(g.cache), "%s", a + 6);
        else if (strncmp(a, "topology=", 9) == 0 && a[9] == '/')
            snprintf(g.topology, sizeof(g.topology), "%s", a + 9);
        else if (strncmp(a, "default_layout=", 15) == 0 ? ism_plan_opts_parse(a + 15, &g.admin, &err)
                 : ism_plan_opts_parse(a, &g.admin, &err)) {
            slurm_error("isthmus: plugstack.conf argument '%s': %s; also accepted: "
                        "default_layout=WORD, cache=/PATH, topology=/PATH", a, err.text);
            return -1;
        }
        g.admin.layout_set = false; /* a default, not a choice: the user may name one */
    }
    return 0;
}

/* slurmd start: make sure the cache describes this machine. */
static void refresh_cache(bool warn_on_miss, ism_topo_t **out)
{
    ism_error_t err = ISM_ERROR_INIT;
    char key[ISM_TOPO_CACHE_KEY_LEN + 1];
    ism_topo_t *topo = NULL;

    if (ism_topo_cache_key("/sys", key, &err) < 0) {
        slurm_error("isthmus: topology cache key: %s", err.text);
    } else if ((topo = ism_topo_cache_read(g.cache, key, &err))) {
        snprintf(g.source, sizeof(g.source), "cache");
        *out = topo;
        return;
    } else if (warn_on_miss) {
        slurm_info("isthmus: warning: %s; loading the topology with hwloc", err.text);
    }
    ism_error_clear(&err);
    if (!(topo = ism_topo_from_live(&err))) {
        snprintf(g.failure, sizeof(g.failure), "loading this node's topology: %s", err.text);
        return;
    }
    snprintf(g.source, sizeof(g.source), "hwloc");
    if (key[0] && geteuid() == 0) {
        ism_error_clear(&err);
        if (ism_topo_cache_write(g.cache, key, topo, &err) < 0)
            slurm_info("isthmus: warning: cannot write the topology cache: %s", err.text);
    }
    *out = topo;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
    spank_context_t ctx = spank_context();
    ism_topo_t *topo = NULL;

    /* A typo in plugstack.conf fails every srun, sbatch and step with the
     * message, but must not stop slurmd: the node stays up and says why. */
    if (parse_args(ac, av) < 0)
        return ctx == S_CTX_SLURMD ? 0 : -1;
    if (ctx == S_CTX_LOCAL || ctx == S_CTX_REMOTE || ctx == S_CTX_ALLOCATOR) {
        if (spank_option_register(sp, &bind_option) != ESPANK_SUCCESS) {
            slurm_error("isthmus: cannot register --%s", bind_option.name);
            return -1;
        }
    }
    if (ctx == S_CTX_SLURMD && !g.topology[0] && !getenv("HWLOC_XMLFILE")) {
        refresh_cache(false, &topo);
        if (g.failure[0])
            slurm_error("isthmus: %s", g.failure);
        ism_topo_destroy(topo);
    }
    return 0;
}

/* The topology to plan on, or NULL with g.failure set. */
static ism_topo_t *load_topology(void)
{
    const char *xml = g.topology[0] ? g.topology : getenv("ISTHMUS_HWLOC_XMLFILE");
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *topo = NULL;

    /* slurmd of a pretend node passes its HWLOC_XMLFILE on to slurmstepd. */
    if (!xml || !*xml)
        xml = getenv("HWLOC_XMLFILE");
    if (xml && *xml) {
        g.plan_only = true;
        snprintf(g.source, sizeof(g.source), "%s", xml);
        if (!(topo = ism_topo_from_xml(xml, &err)))
            snprintf(g.failure, sizeof(g.failure), "topology %s: %s", xml, err.text);
        return topo;
    }
    refresh_cache(true, &topo);
    return topo;
}

static int get_u32(spank_t sp, spank_item_t item, uint32_t *v)
{
    return spank_get_item(sp, item, v) == ESPANK_SUCCESS ? 0 : -1;
}

/* The cpus each task wants: -c (SLURM_CPUS_PER_TASK in the job's
 * environment) when given, else 0 = an equal share of the step's cores. */
static int cpus_per_task(spank_t sp, uint32_t stepid)
{
    char buf[32];
    char *end;
    long v;

    if (stepid == SLURM_BATCH_SCRIPT)
        return 0;
    if (spank_getenv(sp, "SLURM_CPUS_PER_TASK", buf, sizeof(buf)) != ESPANK_SUCCESS)
        return 0;
    v = strtol(buf, &end, 10);
    return (*end == '\0' && v > 0 && v < ISM_BITMAP_MAX_BITS) ? (int)v : 0;
}

static void plan_step(spank_t sp, uint32_t stepid)
{
    struct ism_plan_request req = { 0 };
    ism_error_t err = ISM_ERROR_INIT;
    ism_bitmap_t *cores = NULL;
    ism_topo_t *topo = NULL;
    char *alloc = NULL;
    uint32_t ntasks = 0;

    if (spank_get_item(sp, S_STEP_ALLOC_CORES, &alloc) != ESPANK_SUCCESS || !alloc || !*alloc)
        spank_get_item(sp, S_JOB_ALLOC_CORES, &alloc);
    if (!alloc || !*alloc) {
        snprintf(g.failure, sizeof(g.failure), "Slurm gave no allocated cores for this node");
        return;
    }
    if (!(cores = ism_bitmap_parse_list(alloc, &err))) {
        snprintf(g.failure, sizeof(g.failure), "allocated cores '%.100s' do not parse: %s", alloc,
                 err.text);
        return;
    }
    if (get_u32(sp, S_JOB_LOCAL_TASK_COUNT, &ntasks) < 0 || ntasks == 0) {
        snprintf(g.failure, sizeof(g.failure), "Slurm gave no local task count");
        goto out;
    }
    if (!(topo = load_topology()))
        goto out;
    req = (struct ism_plan_request){ cores, (int)ntasks, cpus_per_task(sp, stepid),
                                     g.opts.layout, g.opts.mem };
    if (!(g.plan = ism_plan_create(topo, &req, &err)))
        snprintf(g.failure, sizeof(g.failure), "cannot place %u tasks on cores %.100s (%s): %s",
                 ntasks, alloc, ism_layout_name(g.opts.layout), err.text);
out:
    ism_topo_destroy(topo);
    ism_bitmap_destroy(cores);
}

/* Local: check $ISTHMUS_BIND before launch.  Remote: plan the step. */
int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
    char env[256];
    uint32_t stepid = 0;

    if (spank_context() == S_CTX_LOCAL || spank_context() == S_CTX_ALLOCATOR) {
        const char *e = getenv(ENV_BIND);
        if (!g.user_text && e && take_user_text(e, "$" ENV_BIND) < 0)
            return -1;
        return 0;
    }
    if (!spank_remote(sp))
        return 0;
    if (!g.user_text &&
        spank_getenv(sp, ENV_BIND, env, sizeof(env)) == ESPANK_SUCCESS &&
        take_user_text(env, "$" ENV_BIND) < 0) {
        snprintf(g.failure, sizeof(g.failure), "$%s=%.100s is not a valid binding", ENV_BIND, env);
        g.enabled = g.asked = true;
        return 0;
    }
    g.opts = g.admin;
    if (g.user_text && ism_plan_opts_parse(g.user_text, &g.opts, NULL) < 0)
        return 0; /* checked when taken */
    if (g.opts.layout == ISM_LAYOUT_NONE)
        return 0;
    if (get_u32(sp, S_JOB_STEPID, &stepid) < 0 || stepid == SLURM_EXTERN_CONT)
        return 0;
    g.enabled = true;
    g.asked = g.opts.layout_set;
    plan_step(sp, stepid);
    return 0;
}

static int bind_cpus(const ism_bitmap_t *cpus, ism_bitmap_t **got)
{
    cpu_set_t *set;
    size_t size = CPU_ALLOC_SIZE(ISM_BITMAP_MAX_BITS);
    int cpu, rc;

    if (!(set = CPU_ALLOC(ISM_BITMAP_MAX_BITS)))
        return -1;
    CPU_ZERO_S(size, set);
    ism_bitmap_foreach(cpu, cpus) CPU_SET_S((size_t)cpu, size, set);
    /* The kernel keeps the result inside the task's cpuset (cgroup): what
     * is read back is what the task really got. */
    rc = sched_setaffinity(0, size, set);
    if (rc == 0 && sched_getaffinity(0, size, set) == 0 && (*got = ism_bitmap_create())) {
        for (cpu = 0; cpu < ISM_BITMAP_MAX_BITS; cpu++) {
            if (CPU_ISSET_S((size_t)cpu, size, set))
                ism_bitmap_set(*got, cpu);
        }
    }
    CPU_FREE(set);
    return rc;
}

/* set_mempolicy(MPOL_BIND) on the calling task: inherited through exec. */
static int bind_mems(const ism_bitmap_t *mems)
{
    unsigned long mask[ISM_TOPO_MAX_NUMA / (8 * sizeof(unsigned long))] = { 0 };
    const size_t per = 8 * sizeof(unsigned long);
    int node;

    ism_bitmap_foreach(node, mems) {
        if (node >= ISM_TOPO_MAX_NUMA)
            return errno = EINVAL, -1;
        mask[(size_t)node / per] |= 1UL << ((size_t)node % per);
    }
    return (int)syscall(SYS_set_mempolicy, MPOL_BIND, mask, (unsigned long)ISM_TOPO_MAX_NUMA + 1);
}

/* The memory nodes of the calling task's cpuset, or NULL when unknown. */
static ism_bitmap_t *mems_allowed(void)
{
    static const char key[] = "Mems_allowed_list:";
    FILE *f = fopen("/proc/self/status", "re");
    ism_bitmap_t *b = NULL;
    char line[4096];

    if (!f)
        return NULL;
    while (!b && fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, sizeof(key) - 1) == 0)
            b = ism_bitmap_parse_list(line + sizeof(key) - 1 + strspn(line + sizeof(key) - 1, " \t"),
                                      NULL);
    }
    fclose(f);
    return b;
}

/* Bind memory to the slot's nodes that the cpuset allows; note says what
 * was left out.  -1 when the kernel refuses. */
static int bind_slot_mems(const struct ism_plan_slot *s, char *note, size_t size)
{
    ism_bitmap_t *mems = ism_bitmap_dup(s->mems), *allowed = mems_allowed();
    int rc = 0;

    if (!mems) {
        ism_bitmap_destroy(allowed);
        return -1;
    }
    if (allowed)
        ism_bitmap_and(mems, allowed);
    if (ism_bitmap_empty(mems)) {
        char *want = ism_bitmap_format_list(s->mems), *have = ism_bitmap_format_list(allowed);
        snprintf(note, size, " (memory not bound: NUMA nodes %s are outside the cpuset's %s)",
                 want ? want : "?", have ? have : "?");
        free(want);
        free(have);
    } else {
        rc = bind_mems(mems);
    }
    ism_bitmap_destroy(allowed);
    ism_bitmap_destroy(mems);
    return rc;
}

static void say(const struct ism_plan_slot *s, int task, uint32_t global, const ism_bitmap_t *got,
                const char *note)
{
    char *cores = ism_bitmap_format_list(s->cores), *cpus = ism_bitmap_format_list(s->cpus);
    char *mems = ism_bitmap_format_list(s->mems);
    char *real = got ? ism_bitmap_format_list(got) : NULL;

    /* The task's stderr reaches srun; slurmd's log gets it too. */
    fprintf(stderr, "isthmus: node=%s task=%d global=%u layout=%s%s cores=%s cpus=%s mems=%s%s%s%s\n",
            g.node, task, global, ism_layout_name(g.opts.layout), g.plan->whole ? "" : "(threads)",
            cores ? cores : "?", cpus ? cpus : "?", s->mems && mems && *mems ? mems : "-",
            real ? " bound=" : "", real ? real : "", note);
    free(cores);
    free(cpus);
    free(mems);
    free(real);
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
    ism_bitmap_t *got = NULL;
    uint32_t global = 0;
    int task = -1, rc = 0;
    const struct ism_plan_slot *s;
    char note[1200] = "";

    if (!g.enabled)
        return 0;
    if (!g.plan) {
        /* Asked for by the user: fail rather than run unbound.  Only the
         * site's default: the job runs as Slurm placed it (an overcommitted
         * step, -O, has more tasks than cpus), and task 0 says why. */
        if (g.asked) {
            slurm_error("isthmus: %s", g.failure[0] ? g.failure : "no plan");
            return -1;
        }
        if (spank_get_item(sp, S_TASK_ID, &task) == ESPANK_SUCCESS && task == 0)
            fprintf(stderr, "isthmus: warning: tasks not bound by isthmus: %s\n",
                    g.failure[0] ? g.failure : "no plan");
        return 0;
    }
    if (spank_get_item(sp, S_TASK_ID, &task) != ESPANK_SUCCESS || task < 0 ||
        task >= g.plan->nslots) {
        slurm_error("isthmus: local task id %d is outside the plan of %d tasks", task,
                    g.plan->nslots);
        return -1;
    }
    get_u32(sp, S_TASK_GLOBAL_ID, &global);
    /* The task's environment has it by now (not yet in init_post_opt). */
    if (spank_getenv(sp, "SLURMD_NODENAME", g.node, sizeof(g.node)) != ESPANK_SUCCESS)
        snprintf(g.node, sizeof(g.node), "?");
    s = &g.plan->slots[task];
    if (g.plan_only) {
        snprintf(note, sizeof(note), " (plan only: topology %s)", g.source);
    } else {
        if (bind_cpus(s->cpus, &got) < 0) {
            slurm_error("isthmus: task %d: binding to cpus failed: %s", task, strerror(errno));
            return -1;
        }
        if (g.opts.mem != ISM_MEM_NONE && !ism_bitmap_empty(s->mems) &&
            bind_slot_mems(s, note, sizeof(note)) < 0) {
            slurm_error("isthmus: task %d: binding memory failed: %s", task, strerror(errno));
            rc = -1;
        }
        if (got && !ism_bitmap_equal(got, s->cpus))
            snprintf(note + strlen(note), sizeof(note) - strlen(note),
                     " (the task's cpuset narrowed the binding)");
    }
    if (g.opts.verbose && rc == 0)
        say(s, task, global, got, note);
    ism_bitmap_destroy(got);
    return rc;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
    ism_plan_destroy(g.plan);
    g.plan = NULL;
    free(g.user_text);
    g.user_text = NULL;
    return 0;
}
