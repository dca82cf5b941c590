/* planner.c - split allocated cores among consumers (see planner.h).
 *
 * The allocation becomes a list of units in compact order: whole cores, or
 * single hardware threads when whole cores cannot serve every consumer.
 * Each layout is then a way of handing out runs of units; whatever the
 * layout, a unit goes to at most one consumer, which is what makes the
 * plans disjoint by construction.
 */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/topology/planner.h"

struct unit {
    const struct ism_core *core;
    int cpu; /* the one OS cpu of a thread unit; -1 for a whole core */
    int ncpus;
};

/* A NUMA node's run of units inside the compact order, and how far it has
 * been handed out. */
struct group {
    int numa;
    int first, end, next;
};

struct work {
    const ism_topo_t *topo;
    const struct ism_plan_request *req;
    struct unit *units;
    int nunits;
    struct group *groups;
    int ngroups;
    int share;             /* units per consumer when cpus_per_consumer is 0 */
    int *owner;            /* per unit: consumer index or -1 */
    ism_bitmap_t *core_nodes; /* mem=hbm: the nodes cores name (see topology.h) */
};

static const char *const layout_names[] = { "compact", "spread", "numa", "none" };
static const char *const mem_names[] = { "local", "hbm", "none" };

const char *ism_layout_name(enum ism_layout layout)
{
    return (unsigned)layout < 4 ? layout_names[layout] : "?";
}

const char *ism_mem_name(enum ism_mem mem)
{
    return (unsigned)mem < 3 ? mem_names[mem] : "?";
}

/* Index of s in names[0..n), or -1. */
static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++) {
        if (strcmp(s, names[i]) == 0)
            return i;
    }
    return -1;
}

int ism_layout_parse(const char *s, enum ism_layout *layout, ism_error_t *err)
{
    int i = name_index(layout_names, 4, s);

    if (i < 0)
        return ism_err(err, EINVAL, "unknown layout '%s' (want compact, spread, numa or none)",
                       s ? s : "(null)");
    *layout = (enum ism_layout)i;
    return 0;
}

int ism_mem_parse(const char *s, enum ism_mem *mem, ism_error_t *err)
{
    int i = name_index(mem_names, 3, s);

    if (i < 0)
        return ism_err(err, EINVAL, "unknown memory policy '%s' (want local, hbm or none)",
                       s ? s : "(null)");
    *mem = (enum ism_mem)i;
    return 0;
}

int ism_plan_params_parse(const json_t *params, enum ism_mem *mem, ism_error_t *err)
{
    const char *key;
    json_t *value;
    enum ism_mem m = *mem;

    if (!json_is_object(params))
        return ism_err(err, EINVAL, "parameters: not an object (want {\"mem\": \"hbm\"})");
    json_object_foreach((json_t *)params, key, value) {
        if (strcmp(key, "mem") != 0)
            return ism_err(err, EINVAL, "parameters: unknown key '%s' (want mem)", key);
        if (!json_is_string(value) || ism_mem_parse(json_string_value(value), &m, NULL) < 0 ||
            m == ISM_MEM_NONE)
            return ism_err(err, EINVAL, "parameters.mem: want \"local\" or \"hbm\"");
    }
    *mem = m;
    return 0;
}

static int parse_word(const char *w, struct ism_plan_opts *o, ism_error_t *err)
{
    enum ism_layout layout;

    if (*w == '\0')
        return ism_err(err, EINVAL, "empty word in option list");
    if (strcmp(w, "verbose") == 0) {
        o->verbose = o->verbose_set = true;
        return 0;
    }
    if (strncmp(w, "mem=", 4) == 0) {
        if (ism_mem_parse(w + 4, &o->mem, err) < 0)
            return -1;
        o->mem_set = true;
        return 0;
    }
    if (strncmp(w, "layout=", 7) == 0)
        w += 7;
    else if (strchr(w, '='))
        return ism_err(err, EINVAL, "unknown option '%.*s' (want layout=, mem= or a layout)",
                       (int)(strchr(w, '=') - w), w);
    if (ism_layout_parse(w, &layout, NULL) < 0)
        return ism_err(err, EINVAL, "unknown word '%s' (want compact, spread, numa, none, "
                       "verbose, layout=… or mem=…)", w);
    if (o->layout_set)
        return ism_err(err, EINVAL, "layout given twice ('%s' after '%s')", w,
                       ism_layout_name(o->layout));
    o->layout = layout;
    o->layout_set = true;
    return 0;
}

int ism_plan_opts_parse(const char *text, struct ism_plan_opts *opts, ism_error_t *err)
{
    struct ism_plan_opts o = *opts;
    char *copy, *w, *save = NULL;
    int rc = 0;

    if (!text || !opts)
        return ism_err(err, EINVAL, "no option text");
    if (*text == '\0')
        return 0;
    if (!(copy = strdup(text)))
        return ism_err(err, ENOMEM, "out of memory");
    /* The layout may come from defaults: only the text may not name two. */
    o.layout_set = false;
    /* strtok_r would skip empty words; "a,,b" is a mistake worth naming. */
    for (w = copy; rc == 0 && w; w = save) {
        save = strchr(w, ',');
        if (save)
            *save++ = '\0';
        rc = parse_word(w, &o, err);
    }
    free(copy);
    if (rc < 0)
        return -1;
    o.layout_set = o.layout_set || opts->layout_set;
    *opts = o;
    return 0;
}

void ism_plan_destroy(ism_plan_t *plan)
{
    int saved = errno;

    if (!plan)
        return;
    for (int i = 0; plan->slots && i < plan->nslots; i++) {
        ism_bitmap_destroy(plan->slots[i].cores);
        ism_bitmap_destroy(plan->slots[i].cpus);
        ism_bitmap_destroy(plan->slots[i].mems);
    }
    free(plan->slots);
    free(plan);
    errno = saved;
}

/* Compact order: socket, NUMA node, L3, then Slurm's index. */
static int core_cmp(const void *a, const void *b)
{
    const struct ism_core *x = *(const struct ism_core *const *)a;
    const struct ism_core *y = *(const struct ism_core *const *)b;

    if (x->socket != y->socket)
        return x->socket < y->socket ? -1 : 1;
    if (x->numa != y->numa)
        return x->numa < y->numa ? -1 : 1;
    if (x->l3 != y->l3)
        return x->l3 < y->l3 ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* The allocated cores in compact order (caller frees), or NULL. */
static const struct ism_core **sorted_cores(const ism_topo_t *topo, const ism_bitmap_t *cores,
                                            int *n, ism_error_t *err)
{
    const struct ism_core **v;
    int bit, i = 0;

    *n = ism_bitmap_count(cores);
    if (*n == 0)
        return ism_err(err, EINVAL, "the allocation holds no core"), NULL;
    if (!(v = calloc((size_t)*n, sizeof(*v))))
        return ism_err(err, ENOMEM, "out of memory"), NULL;
    ism_bitmap_foreach(bit, cores) {
        if (!(v[i++] = ism_topo_core(topo, bit))) {
            free(v);
            return ism_err(err, EINVAL, "allocated core %d is not a usable core of this node "
                           "(it has %d cores, the last %d)", bit, topo->ncores,
                           topo->ncores ? topo->cores[topo->ncores - 1].index : -1), NULL;
        }
    }
    qsort(v, (size_t)*n, sizeof(*v), core_cmp);
    return v;
}

/* Fill w->units (whole cores or threads) and w->groups from the sorted cores. */
static int build_units(struct work *w, const struct ism_core **cores, int ncores, bool whole,
                       ism_error_t *err)
{
    int n = 0, cpu;

    for (int i = 0; i < ncores; i++)
        n += whole ? 1 : ism_bitmap_count(cores[i]->cpus);
    if (!(w->units = calloc((size_t)n, sizeof(*w->units))) ||
        !(w->owner = calloc((size_t)n, sizeof(*w->owner))) ||
        !(w->groups = calloc((size_t)n, sizeof(*w->groups))))
        return ism_err(err, ENOMEM, "out of memory");
    for (int i = 0; i < ncores; i++) {
        if (whole) {
            w->units[w->nunits++] = (struct unit){ cores[i], -1, ism_bitmap_count(cores[i]->cpus) };
            continue;
        }
        ism_bitmap_foreach(cpu, cores[i]->cpus)
            w->units[w->nunits++] = (struct unit){ cores[i], cpu, 1 };
    }
    for (int u = 0; u < w->nunits; u++) {
        struct group *g = w->ngroups ? &w->groups[w->ngroups - 1] : NULL;

        w->owner[u] = -1;
        if (g && g->numa == w->units[u].core->numa) {
            g->end = u + 1;
            continue;
        }
        w->groups[w->ngroups++] = (struct group){ w->units[u].core->numa, u, u + 1, u };
    }
    return 0;
}

/* Is a consumer holding units and cpus satisfied? */
static bool satisfied(const struct work *w, int units, int cpus)
{
    return w->share ? units >= w->share : cpus >= w->req->cpus_per_consumer;
}

/* Can group g alone satisfy a consumer from where it stands? */
static bool group_fits(const struct work *w, const struct group *g)
{
    int units = 0, cpus = 0;

    for (int u = g->next; u < g->end; u++) {
        units++;
        cpus += w->units[u].ncpus;
        if (satisfied(w, units, cpus))
            return true;
    }
    return false;
}

/* Give consumer c units of group g until it is satisfied or g is used up;
 * units and cpus carry what c already holds. */
static void take(struct work *w, struct group *g, int c, int *units, int *cpus)
{
    while (g->next < g->end && !satisfied(w, *units, *cpus)) {
        w->owner[g->next] = c;
        *cpus += w->units[g->next++].ncpus;
        (*units)++;
    }
}

static int too_few(const struct work *w, int c, ism_error_t *err)
{
    int cpus = 0;

    for (int u = 0; u < w->nunits; u++)
        cpus += w->units[u].ncpus;
    if (w->req->cpus_per_consumer == 0)
        return ism_err(err, EINVAL, "%d consumers cannot share %d %s", w->req->consumers,
                       w->nunits, w->units[0].cpu < 0 ? "cores" : "cpus");
    return ism_err(err, EINVAL, "the allocation has %d cpus: too few for %d consumers of %d "
                   "cpus each (consumer %d found none left)", cpus, w->req->consumers,
                   w->req->cpus_per_consumer, c);
}

/* compact and spread: consumer c starts in group c*stride mod ngroups,
 * prefers the first group from there that holds it whole, and otherwise
 * runs over the following groups. */
static int assign_sequential(struct work *w, int stride, ism_error_t *err)
{
    for (int c = 0; c < w->req->consumers; c++) {
        int start = stride ? c % w->ngroups : 0, units = 0, cpus = 0, g;

        for (g = 0; g < w->ngroups; g++) {
            struct group *grp = &w->groups[(start + g) % w->ngroups];
            if (group_fits(w, grp)) {
                take(w, grp, c, &units, &cpus);
                break;
            }
        }
        for (g = 0; g < w->ngroups && !satisfied(w, units, cpus); g++)
            take(w, &w->groups[(start + g) % w->ngroups], c, &units, &cpus);
        if (!satisfied(w, units, cpus))
            return too_few(w, c, err);
    }
    return 0;
}

/* numa: first fit of each consumer into one group, or a reason. */
static int assign_numa(struct work *w, ism_error_t *err)
{
    for (int c = 0; c < w->req->consumers; c++) {
        int units = 0, cpus = 0, g;
        char left[256] = "";
        size_t len = 0;

        for (g = 0; g < w->ngroups && !group_fits(w, &w->groups[g]); g++)
            ;
        if (g < w->ngroups) {
            take(w, &w->groups[g], c, &units, &cpus);
            continue;
        }
        for (g = 0; g < w->ngroups && len < sizeof(left); g++) {
            int n = 0;
            for (int u = w->groups[g].next; u < w->groups[g].end; u++)
                n += w->units[u].ncpus;
            len += (size_t)snprintf(left + len, sizeof(left) - len, "%snode %d: %d", g ? ", " : "",
                                    w->groups[g].numa, n);
        }
        return ism_err(err, EINVAL, "layout numa: consumer %d of %d needs %d %s inside one NUMA "
                       "node, but the allocation's NUMA nodes have only these cpus left: %s", c,
                       w->req->consumers, w->share ? w->share : w->req->cpus_per_consumer,
                       w->share ? "cores" : "cpus", left);
    }
    return 0;
}

static int assign_none(struct work *w)
{
    /* Owner -2: every consumer gets the unit. */
    for (int u = 0; u < w->nunits; u++)
        w->owner[u] = -2;
    return 0;
}

static int fill_slot(const struct work *w, struct ism_plan_slot *s, int c, ism_error_t *err)
{
    if (!(s->cores = ism_bitmap_create()) || !(s->cpus = ism_bitmap_create()) ||
        !(s->mems = ism_bitmap_create()))
        return ism_err(err, ENOMEM, "out of memory");
    for (int u = 0; u < w->nunits; u++) {
        const struct unit *un = &w->units[u];
        if (w->owner[u] != c && w->owner[u] != -2)
            continue;
        if (ism_bitmap_set(s->cores, un->core->index) < 0 ||
            (un->cpu < 0 ? ism_bitmap_or(s->cpus, un->core->cpus)
                         : ism_bitmap_set(s->cpus, un->cpu)) < 0 ||
            (w->req->mem != ISM_MEM_NONE && un->core->numa >= 0 &&
             ism_bitmap_set(s->mems, un->core->numa) < 0))
            return ism_err(err, ENOMEM, "out of memory");
    }
    if (w->req->mem == ISM_MEM_HBM &&
        ism_topo_add_extra_near(w->topo, w->core_nodes, s->cpus, s->mems) < 0)
        return ism_err(err, ENOMEM, "out of memory");
    return 0;
}

static void work_free(struct work *w)
{
    int saved = errno; /* ism_plan_create reads the attempt's errno after this */

    free(w->units);
    free(w->owner);
    free(w->groups);
    ism_bitmap_destroy(w->core_nodes);
    memset(w, 0, sizeof(*w));
    errno = saved;
}

/* One attempt: whole cores or threads.  Returns a plan or NULL. */
static ism_plan_t *attempt(const ism_topo_t *topo, const struct ism_plan_request *req,
                           const struct ism_core **cores, int ncores, bool whole, ism_error_t *err)
{
    struct work w = { .topo = topo, .req = req };
    ism_plan_t *plan = NULL;
    int rc;

    if (build_units(&w, cores, ncores, whole, err) < 0)
        goto error;
    if (req->cpus_per_consumer == 0 && req->layout != ISM_LAYOUT_NONE &&
        (w.share = w.nunits / req->consumers) == 0) {
        too_few(&w, 0, err);
        goto error;
    }
    switch (req->layout) {
    case ISM_LAYOUT_COMPACT: rc = assign_sequential(&w, 0, err); break;
    case ISM_LAYOUT_SPREAD: rc = assign_sequential(&w, 1, err); break;
    case ISM_LAYOUT_NUMA: rc = assign_numa(&w, err); break;
    default: rc = assign_none(&w); break;
    }
    if (rc < 0)
        goto error;
    if (!(plan = calloc(1, sizeof(*plan))) ||
        !(plan->slots = calloc((size_t)req->consumers, sizeof(*plan->slots)))) {
        ism_err(err, ENOMEM, "out of memory");
        goto error;
    }
    if (req->mem == ISM_MEM_HBM && !(w.core_nodes = ism_topo_core_nodes(topo))) {
        ism_err(err, ENOMEM, "out of memory");
        goto error;
    }
    plan->layout = req->layout;
    plan->whole = whole;
    plan->nslots = req->consumers;
    for (int c = 0; c < req->consumers; c++) {
        if (fill_slot(&w, &plan->slots[c], c, err) < 0)
            goto error;
    }
    work_free(&w);
    return plan;
error:
    ism_plan_destroy(plan);
    work_free(&w);
    return NULL;
}

static int check_request(const ism_topo_t *topo, const struct ism_plan_request *req,
                         ism_error_t *err)
{
    if (!topo || !req || !req->cores)
        return ism_err(err, EINVAL, "no topology, request or allocation");
    if (req->consumers < 1 || req->consumers > ISM_PLAN_MAX_CONSUMERS)
        return ism_err(err, EINVAL, "consumer count %d is out of range (1-%d)", req->consumers,
                       ISM_PLAN_MAX_CONSUMERS);
    if (req->cpus_per_consumer < 0 || req->cpus_per_consumer > ISM_BITMAP_MAX_BITS)
        return ism_err(err, EINVAL, "cpus per consumer %d is out of range (0-%d)",
                       req->cpus_per_consumer, ISM_BITMAP_MAX_BITS);
    if ((unsigned)req->layout > ISM_LAYOUT_NONE || (unsigned)req->mem > ISM_MEM_NONE)
        return ism_err(err, EINVAL, "unknown layout %d or memory policy %d", (int)req->layout,
                       (int)req->mem);
    return 0;
}

ism_plan_t *ism_plan_create(const ism_topo_t *topo, const struct ism_plan_request *req,
                            ism_error_t *err)
{
    const struct ism_core **cores;
    ism_error_t whole_err = ISM_ERROR_INIT;
    ism_plan_t *plan;
    int ncores;

    if (check_request(topo, req, err) < 0)
        return NULL;
    if (!(cores = sorted_cores(topo, req->cores, &ncores, err)))
        return NULL;
    /* Whole cores first; threads only when whole cores cannot serve all. */
    plan = attempt(topo, req, cores, ncores, true, &whole_err);
    if (!plan && errno == EINVAL)
        plan = attempt(topo, req, cores, ncores, false, err);
    else if (!plan)
        ism_err(err, errno, "%s", whole_err.text);
    free(cores);
    return plan;
}
