/* Unit tests: the planner (lib/planner.c).
 *
 * Two kinds of test.  Exact plans, worked out by hand on hwloc synthetic
 * machines whose numbering is known (core i of "pack:2 numa:2 l3:2 core:4
 * pu:2" is in socket i/16, NUMA node i/8, L3 i/4 and has cpus 2i and 2i+1).
 * And rules every plan must keep, checked over every real machine of the
 * shared topologies, many allocation shapes, consumer counts and layouts.
 */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/topology/planner.h"
#include "unit.h"

#define SYNTH "pack:2 numa:2 l3:2 core:4 pu:2"

static ism_bitmap_t *list(const char *s)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_bitmap_t *b = ism_bitmap_parse_list(s, &err);

    ck_assert_msg(b != NULL, "%s: %s", s, err.text);
    return b;
}

/* "cores/cpus/mems" of one slot, e.g. "0-1/0-3/0". */
static char *slot_text(const struct ism_plan_slot *s)
{
    char *a = ism_bitmap_format_list(s->cores), *b = ism_bitmap_format_list(s->cpus);
    char *c = ism_bitmap_format_list(s->mems), *out;

    ck_assert_int_ge(asprintf(&out, "%s/%s/%s", a, b, c), 0);
    free(a);
    free(b);
    free(c);
    return out;
}

/* ------------------------------------------------------------ exact plans */

static const struct exact {
    const char *what;
    const char *machine; /* synthetic description, or an XML name */
    const char *alloc;
    int consumers, cpt;
    enum ism_layout layout;
    enum ism_mem mem;
    int whole;
    /* "cores/cpus/mems" per slot joined by " ", or NULL when it must fail */
    const char *expect;
    const char *error; /* a piece of the error message */
} exact[] = {
    { "compact: one core per task, in order", SYNTH, "0-7", 4, 2, ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL,
      1, "0/0-1/0 1/2-3/0 2/4-5/0 3/6-7/0", NULL },
    { "compact: a task fills a NUMA node before the next", SYNTH, "0-31", 2, 16,
      ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL, 1, "0-7/0-15/0 8-15/16-31/1", NULL },
    { "compact: a task needing 3 cpus gets 2 whole cores", SYNTH, "0-7", 2, 3, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 1, "0-1/0-3/0 2-3/4-7/0", NULL },
    { "compact: split over two NUMA nodes", SYNTH, "6-9", 2, 4, ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL,
      1, "6-7/12-15/0 8-9/16-19/1", NULL },
    { "compact: straddling task names both NUMA nodes", SYNTH, "7-8", 1, 4, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 1, "7-8/14-17/0-1", NULL },
    { "compact: equal share of an odd allocation", SYNTH, "0-2", 2, 0, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 1, "0/0-1/0 1/2-3/0", NULL },
    { "compact: allocation across sockets, share", SYNTH, "14-17", 2, 0, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 1, "14-15/28-31/1 16-17/32-35/2", NULL },
    { "spread: round-robin over NUMA nodes", SYNTH, "0-31", 4, 2, ISM_LAYOUT_SPREAD, ISM_MEM_LOCAL,
      1, "0/0-1/0 8/16-17/1 16/32-33/2 24/48-49/3", NULL },
    { "spread: wraps to the first node again", SYNTH, "0-31", 6, 2, ISM_LAYOUT_SPREAD,
      ISM_MEM_LOCAL, 1, "0/0-1/0 8/16-17/1 16/32-33/2 24/48-49/3 1/2-3/0 9/18-19/1", NULL },
    { "spread: only the allocation's nodes count", SYNTH, "6-9", 4, 2, ISM_LAYOUT_SPREAD,
      ISM_MEM_LOCAL, 1, "6/12-13/0 8/16-17/1 7/14-15/0 9/18-19/1", NULL },
    { "numa: each task inside one node", SYNTH, "6-9", 2, 4, ISM_LAYOUT_NUMA, ISM_MEM_LOCAL, 1,
      "6-7/12-15/0 8-9/16-19/1", NULL },
    { "numa: first fit skips a node too small", SYNTH, "7-11", 2, 4, ISM_LAYOUT_NUMA,
      ISM_MEM_LOCAL, 1, "8-9/16-19/1 10-11/20-23/1", NULL },
    { "numa: refused when no node holds a task", SYNTH, "6-9", 2, 6, ISM_LAYOUT_NUMA,
      ISM_MEM_LOCAL, 0, NULL, "layout numa: consumer 0 of 2 needs 6 cpus inside one NUMA node" },
    { "none: everyone gets the allocation", SYNTH, "3,5", 2, 1, ISM_LAYOUT_NONE, ISM_MEM_LOCAL, 1,
      "3,5/6-7,10-11/0 3,5/6-7,10-11/0", NULL },
    { "threads when whole cores do not suffice", SYNTH, "0-1", 4, 1, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 0, "0/0/0 0/1/0 1/2/0 1/3/0", NULL },
    { "threads: siblings stay together where they can", SYNTH, "0-2", 2, 3, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 0, "0-1/0-2/0 1-2/3-5/0", NULL },
    { "mem=none names no NUMA node", SYNTH, "0-1", 2, 2, ISM_LAYOUT_COMPACT, ISM_MEM_NONE, 1,
      "0/0-1/ 1/2-3/", NULL },
    { "mem=hbm adds the memory-only nodes", "sierra.xml", "0", 1, 1, ISM_LAYOUT_COMPACT,
      ISM_MEM_HBM, 1, "0/0-3/0,252-255", NULL },
    { "mem=local leaves memory-only nodes out", "sierra.xml", "0", 1, 1, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 1, "0/0-3/0", NULL },
    { "Xeon Phi: mem=local is the DDR node", "64intel64-fakeKNL-SNC4-hybrid.xml", "4", 1, 4,
      ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL, 1, "4/4,20,36,52/1", NULL },
    { "Xeon Phi: mem=hbm adds the MCDRAM node of the same cpus", "64intel64-fakeKNL-SNC4-hybrid.xml",
      "4", 1, 4, ISM_LAYOUT_COMPACT, ISM_MEM_HBM, 1, "4/4,20,36,52/1,4", NULL },
    { "Xeon Max: mem=hbm adds each task's own HBM node", "xeonmax-2p4g-hbmflat.xml", "13-14", 2,
      2, ISM_LAYOUT_COMPACT, ISM_MEM_HBM, 1, "13/13,125/0,8 14/14,126/1,9", NULL },
    { "hybrid: whole cores of either kind", "fakecpukinds.xml", "0-1", 2, 1, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 1, "0/0,2/0 1/1,3/0", NULL },
    { "no SMT: one cpu per core", "28intel64-2p2g7c-CoDgroups.v1tov2.xml", "0-7", 2, 3, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 1, "0-2/0-2/0 3-5/3-5/0", NULL },
    { "a core outside the topology is refused", SYNTH, "30-33", 1, 1, ISM_LAYOUT_COMPACT,
      ISM_MEM_LOCAL, 0, NULL, "allocated core 32 is not a usable core of this node" },
    { "too few cpus is refused", SYNTH, "0-1", 2, 3, ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL, 0, NULL,
      "the allocation has 4 cpus: too few for 2 consumers of 3 cpus each" },
    { "more consumers than cpus is refused", SYNTH, "0", 3, 0, ISM_LAYOUT_SPREAD, ISM_MEM_LOCAL, 0,
      NULL, "3 consumers cannot share 2 cpus" },
    { "an empty allocation is refused", SYNTH, "", 1, 1, ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL, 0, NULL,
      "the allocation holds no core" },
    { "zero consumers is refused", SYNTH, "0", 0, 1, ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL, 0, NULL,
      "consumer count 0 is out of range" },
};

START_TEST(exact_plan)
{
    const struct exact *e = &exact[_i];
    ism_topo_t *topo = strstr(e->machine, ".xml") ? load_xml(e->machine) : load_synth(e->machine);
    ism_bitmap_t *cores = list(e->alloc);
    struct ism_plan_request req = { cores, e->consumers, e->cpt, e->layout, e->mem };
    ism_error_t err = ISM_ERROR_INIT;
    ism_plan_t *plan = ism_plan_create(topo, &req, &err);

    if (!e->expect) {
        ck_assert_msg(plan == NULL, "%s: planned, wanted '%s'", e->what, e->error);
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_msg(strstr(err.text, e->error), "%s: error '%s', wanted '%s'", e->what, err.text,
                      e->error);
    } else {
        char got[2048] = "";
        size_t len = 0;

        ck_assert_msg(plan != NULL, "%s: %s", e->what, err.text);
        ck_assert_int_eq(plan->nslots, e->consumers);
        for (int i = 0; i < plan->nslots; i++) {
            char *s = slot_text(&plan->slots[i]);
            len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s", i ? " " : "", s);
            free(s);
        }
        ck_assert_msg(strcmp(got, e->expect) == 0, "%s: got '%s', wanted '%s'", e->what, got,
                      e->expect);
        ck_assert_int_eq(plan->whole, e->whole);
    }
    ism_plan_destroy(plan);
    ism_bitmap_destroy(cores);
    ism_topo_destroy(topo);
}
END_TEST

/* ------------------------------------------------- rules over real machines */

/* The cores of shape s of topo (caller destroys). */
static ism_bitmap_t *shape(const ism_topo_t *topo, int s)
{
    ism_bitmap_t *b = ism_bitmap_create();
    int n = topo->ncores, k = n / 8 ? n / 8 : 1;

    for (int i = 0; i < n; i++) {
        bool in = false;
        switch (s) {
        case 0: in = true; break;                           /* whole node */
        case 1: in = i < n / 2 + 1; break;                  /* odd, from the start */
        case 2: in = i >= n / 2 - k && i < n / 2 + k; break; /* across the middle: sockets */
        case 3: in = i % 3 == 1; break;                     /* every third core */
        case 4: in = i == n - 1; break;                     /* one core */
        }
        if (in)
            ck_assert_int_eq(ism_bitmap_set(b, topo->cores[i].index), 0);
    }
    return b;
}
#define NSHAPES 5

static const struct { int consumers, cpt; } asks[] = {
    { 1, 0 }, { 2, 0 }, { 3, 0 }, { 2, 1 }, { 3, 2 }, { 4, 4 }, { 7, 1 }, { -1, 1 }, { -2, 1 },
};
/* consumers -1: one per allocated core; -2: one per allocated cpu. */

static ism_bitmap_t *cpus_of(const ism_topo_t *topo, const ism_bitmap_t *cores)
{
    ism_bitmap_t *b = ism_bitmap_create();
    int bit;

    ism_bitmap_foreach(bit, cores) ck_assert_int_eq(ism_bitmap_or(b, ism_topo_core(topo, bit)->cpus), 0);
    return b;
}

static int numa_of_cpu(const ism_topo_t *topo, int cpu)
{
    for (int i = 0; i < topo->ncores; i++) {
        if (ism_bitmap_test(topo->cores[i].cpus, cpu))
            return topo->cores[i].numa;
    }
    return -2;
}

static void check_rules(const char *name, const ism_topo_t *topo, const ism_bitmap_t *alloc,
                        const struct ism_plan_request *req, const ism_plan_t *plan)
{
    ism_bitmap_t *alloc_cpus = cpus_of(topo, alloc), *seen = ism_bitmap_create();
    int bit;

    ck_assert_int_eq(plan->nslots, req->consumers);
    for (int i = 0; i < plan->nslots; i++) {
        const struct ism_plan_slot *s = &plan->slots[i];
        ism_bitmap_t *mems = ism_bitmap_create(), *core_cpus = cpus_of(topo, s->cores);
        int numa = -3;

        ck_assert_msg(!ism_bitmap_empty(s->cpus), "%s: slot %d empty", name, i);
        ck_assert_msg(ism_bitmap_is_subset(s->cores, alloc), "%s: slot %d cores outside", name, i);
        ck_assert_msg(ism_bitmap_is_subset(s->cpus, alloc_cpus), "%s: slot %d cpus outside", name, i);
        ck_assert_msg(ism_bitmap_is_subset(s->cpus, core_cpus), "%s: slot %d cpus not of its cores",
                      name, i);
        if (plan->whole)
            ck_assert_msg(ism_bitmap_equal(s->cpus, core_cpus), "%s: slot %d split a core", name, i);
        if (req->cpus_per_consumer && req->layout != ISM_LAYOUT_NONE)
            ck_assert_int_ge(ism_bitmap_count(s->cpus), req->cpus_per_consumer);
        if (req->layout == ISM_LAYOUT_NONE) {
            ck_assert(ism_bitmap_equal(s->cpus, alloc_cpus));
        } else {
            ck_assert_msg(!ism_bitmap_intersects(seen, s->cpus), "%s: slot %d overlaps", name, i);
            ck_assert_int_eq(ism_bitmap_or(seen, s->cpus), 0);
        }
        ism_bitmap_foreach(bit, s->cpus) {
            int n = numa_of_cpu(topo, bit);
            if (n >= 0)
                ck_assert_int_eq(ism_bitmap_set(mems, n), 0);
            if (req->layout == ISM_LAYOUT_NUMA) {
                ck_assert_msg(numa == -3 || numa == n, "%s: slot %d spans NUMA nodes", name, i);
                numa = n;
            }
        }
        for (int k = 0; req->mem == ISM_MEM_HBM && k < topo->nnuma; k++) {
            /* extra memory: a node no core names, near the slot or of no cpus */
            const struct ism_numa_node *nd = &topo->numa[k];
            bool named = false;
            for (int c = 0; c < topo->ncores; c++)
                named = named || topo->cores[c].numa == nd->os_index;
            if (!named && (ism_bitmap_empty(nd->cpus) || ism_bitmap_intersects(nd->cpus, s->cpus)))
                ck_assert_int_eq(ism_bitmap_set(mems, nd->os_index), 0);
        }
        if (req->mem == ISM_MEM_NONE)
            ism_bitmap_zero(mems);
        ck_assert_msg(ism_bitmap_equal(mems, s->mems), "%s: slot %d mems are not its cpus' nodes",
                      name, i);
        ism_bitmap_destroy(core_cpus);
        ism_bitmap_destroy(mems);
    }
    ism_bitmap_destroy(seen);
    ism_bitmap_destroy(alloc_cpus);
}

START_TEST(rules_on_real_machines)
{
    const char *machine = machines[_i];
    ism_topo_t *topo = load_xml(machine);
    int planned = 0, refused = 0;

    for (int s = 0; s < NSHAPES; s++) {
        ism_bitmap_t *alloc = shape(topo, s), *alloc_cpus = cpus_of(topo, alloc);
        for (int a = 0; a < ARRAY_SIZE(asks); a++) {
            for (int l = ISM_LAYOUT_COMPACT; l <= ISM_LAYOUT_NONE; l++) {
                int consumers = asks[a].consumers == -1   ? ism_bitmap_count(alloc)
                                : asks[a].consumers == -2 ? ism_bitmap_count(alloc_cpus)
                                                          : asks[a].consumers;
                /* every other ask with mem=hbm: HBM and memory-only nodes */
                struct ism_plan_request req = { alloc, consumers, asks[a].cpt, (enum ism_layout)l,
                                                a % 2 ? ISM_MEM_HBM : ISM_MEM_LOCAL };
                ism_error_t err = ISM_ERROR_INIT;
                ism_plan_t *plan = ism_plan_create(topo, &req, &err);
                char name[256];
                int need = consumers * (asks[a].cpt ? asks[a].cpt : 1);

                snprintf(name, sizeof(name), "%s shape %d, %d x %d, %s", machine, s, consumers,
                         asks[a].cpt, ism_layout_name((enum ism_layout)l));
                if (plan) {
                    check_rules(name, topo, alloc, &req, plan);
                    planned++;
                } else {
                    /* A refusal must be explained, and only the numa layout
                     * may refuse an allocation with enough cpus. */
                    ck_assert_msg(err.text[0] != '\0', "%s: refused without a reason", name);
                    ck_assert_msg(l == ISM_LAYOUT_NUMA || need > ism_bitmap_count(alloc_cpus),
                                  "%s: refused: %s", name, err.text);
                    refused++;
                }
                ism_plan_destroy(plan);
            }
        }
        ism_bitmap_destroy(alloc_cpus);
        ism_bitmap_destroy(alloc);
    }
    ck_assert_int_gt(planned, refused);
    ism_topo_destroy(topo);
}
END_TEST

/* Spread puts the first consumers on distinct NUMA nodes whenever every
 * node of the allocation can hold one.  The allocation is every core that
 * has a NUMA node (a cpuset can hide a core's node: numa -1). */
START_TEST(spread_uses_distinct_nodes)
{
    const char *machine = machines[_i];
    ism_topo_t *topo = load_xml(machine);
    ism_bitmap_t *alloc = ism_bitmap_create(), *nodes = ism_bitmap_create();

    for (int i = 0; i < topo->ncores; i++) {
        if (topo->cores[i].numa >= 0) {
            ck_assert_int_eq(ism_bitmap_set(alloc, topo->cores[i].index), 0);
            ck_assert_int_eq(ism_bitmap_set(nodes, topo->cores[i].numa), 0);
        }
    }
    if (ism_bitmap_count(nodes) > 1) {
        int n = ism_bitmap_count(nodes);
        struct ism_plan_request req = { alloc, n, 1, ISM_LAYOUT_SPREAD, ISM_MEM_LOCAL };
        ism_error_t err = ISM_ERROR_INIT;
        ism_plan_t *plan = ism_plan_create(topo, &req, &err);
        ism_bitmap_t *used = ism_bitmap_create();

        ck_assert_msg(plan != NULL, "%s: %s", machine, err.text);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(ism_bitmap_count(plan->slots[i].mems), 1);
            ck_assert_msg(!ism_bitmap_intersects(used, plan->slots[i].mems), "%s: slot %d", machine, i);
            ism_bitmap_or(used, plan->slots[i].mems);
        }
        ck_assert(ism_bitmap_equal(used, nodes));
        ism_bitmap_destroy(used);
        ism_plan_destroy(plan);
    }
    ism_bitmap_destroy(nodes);
    ism_bitmap_destroy(alloc);
    ism_topo_destroy(topo);
}
END_TEST

/* ---------------------------------------------------------- option parser */

static const struct opt_case {
    const char *text;
    int ok;
    enum ism_layout layout;
    enum ism_mem mem;
    int verbose;
    const char *error;
} opt_cases[] = {
    { "", 1, ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL, 0, NULL },
    { "spread", 1, ISM_LAYOUT_SPREAD, ISM_MEM_LOCAL, 0, NULL },
    { "numa,verbose", 1, ISM_LAYOUT_NUMA, ISM_MEM_LOCAL, 1, NULL },
    { "verbose,none", 1, ISM_LAYOUT_NONE, ISM_MEM_LOCAL, 1, NULL },
    { "layout=spread,mem=hbm", 1, ISM_LAYOUT_SPREAD, ISM_MEM_HBM, 0, NULL },
    { "mem=none", 1, ISM_LAYOUT_COMPACT, ISM_MEM_NONE, 0, NULL },
    { "bogus", 0, 0, 0, 0, "unknown word 'bogus'" },
    { "compact,", 0, 0, 0, 0, "empty word" },
    { ",compact", 0, 0, 0, 0, "empty word" },
    { "compact,spread", 0, 0, 0, 0, "layout given twice" },
    { "mem=fast", 0, 0, 0, 0, "unknown memory policy 'fast'" },
    { "cpus=0-3", 0, 0, 0, 0, "unknown option 'cpus'" },
    { "Compact", 0, 0, 0, 0, "unknown word 'Compact'" },
    { "layout=", 0, 0, 0, 0, "unknown word ''" },
};

START_TEST(opts_parse)
{
    const struct opt_case *c = &opt_cases[_i];
    struct ism_plan_opts o = ISM_PLAN_OPTS_INIT, before;
    ism_error_t err = ISM_ERROR_INIT;
    int rc;

    before = o;
    rc = ism_plan_opts_parse(c->text, &o, &err);
    if (c->ok) {
        ck_assert_msg(rc == 0, "'%s': %s", c->text, err.text);
        ck_assert_int_eq(o.layout, c->layout);
        ck_assert_int_eq(o.mem, c->mem);
        ck_assert_int_eq(o.verbose, c->verbose);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_msg(strstr(err.text, c->error), "'%s': error '%s', wanted '%s'", c->text, err.text,
                      c->error);
        ck_assert_mem_eq(&o, &before, sizeof(o));
    }
}
END_TEST

/* Admin defaults first, the user's words on top: the user's layout wins. */
START_TEST(opts_layer)
{
    struct ism_plan_opts o = ISM_PLAN_OPTS_INIT;

    ck_assert_int_eq(ism_plan_opts_parse("numa,verbose", &o, NULL), 0);
    ck_assert_int_eq(ism_plan_opts_parse("spread", &o, NULL), 0);
    ck_assert_int_eq(o.layout, ISM_LAYOUT_SPREAD);
    ck_assert(o.verbose && o.layout_set && !o.mem_set);
    ck_assert_int_eq(ism_plan_opts_parse(NULL, &o, NULL), -1);
    ck_assert_str_eq(ism_layout_name(ISM_LAYOUT_NUMA), "numa");
    ck_assert_str_eq(ism_mem_name(ISM_MEM_HBM), "hbm");
}
END_TEST

START_TEST(bad_requests)
{
    ism_topo_t *topo = load_synth(SYNTH);
    ism_bitmap_t *cores = list("0-3");
    struct ism_plan_request req = { cores, 1, -1, ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL };
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_ptr_null(ism_plan_create(topo, &req, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "cpus per consumer -1"));
    req.cpus_per_consumer = 1;
    req.layout = (enum ism_layout)9;
    ck_assert_ptr_null(ism_plan_create(topo, &req, NULL));
    ck_assert_ptr_null(ism_plan_create(NULL, &req, NULL));
    ck_assert_ptr_null(ism_plan_create(topo, NULL, NULL));
    ism_plan_destroy(NULL);
    ism_bitmap_destroy(cores);
    ism_topo_destroy(topo);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("planner");
    TCase *tc = tcase_create("planner");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, exact_plan, 0, ARRAY_SIZE(exact));
    tcase_add_loop_test(tc, rules_on_real_machines, 0, ARRAY_SIZE(machines));
    tcase_add_loop_test(tc, spread_uses_distinct_nodes, 0, ARRAY_SIZE(machines));
    tcase_add_loop_test(tc, opts_parse, 0, ARRAY_SIZE(opt_cases));
    tcase_add_test(tc, opts_layer);
    tcase_add_test(tc, bad_requests);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
