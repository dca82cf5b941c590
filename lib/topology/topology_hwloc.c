/* topology_hwloc.c - build an ism_topo_t with hwloc.
 *
 * The topology is loaded the way slurmd loads it (xcpuinfo.c in Slurm
 * 22.05-25.11): whole system, disallowed cpus included, L1/L2/L4/L5 and Misc
 * objects filtered out.  Same objects in, same logical indices out, so a
 * core's hwloc logical index is Slurm's abstract core index.
 */
#include <config.h>
#include <errno.h>
#include <hwloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/topology/topology.h"

enum source { FROM_LIVE, FROM_XML, FROM_SYNTHETIC };

/* Convert an hwloc cpuset into our bitmap, keeping only bits in mask. */
static ism_bitmap_t *bitmap_from_hwloc(hwloc_const_bitmap_t set, hwloc_const_bitmap_t mask)
{
    ism_bitmap_t *b = ism_bitmap_create();
    int i;

    if (!b)
        return NULL;
    hwloc_bitmap_foreach_begin(i, set)
    {
        if ((mask && !hwloc_bitmap_isset(mask, (unsigned)i)) || i >= ISM_BITMAP_MAX_BITS)
            continue;
        if (ism_bitmap_set(b, i) < 0) {
            ism_bitmap_destroy(b);
            return NULL;
        }
    }
    hwloc_bitmap_foreach_end();
    return b;
}

/* Slurm counts cores below a socket through the children arrays only. */
static int core_child_count(hwloc_obj_t obj)
{
    int count = 0;

    if (obj->type == HWLOC_OBJ_CORE)
        return 1;
    for (unsigned i = 0; i < obj->arity; i++)
        count += core_child_count(obj->children[i]);
    return count;
}

/* Slurm's fields for socket type stype, computed exactly as slurmd does, and
 * whether each of those sockets really holds cores_per_socket cores (Slurm
 * checks only divisibility). */
static int slurm_view(hwloc_topology_t t, hwloc_obj_type_t stype, struct ism_slurm_hw *hw,
                      char *note, size_t notelen)
{
    hwloc_obj_t first = hwloc_get_next_child(t, hwloc_get_root_obj(t), NULL);
    int boards = 1, sockets = 0, cores, cpus;
    int depth = hwloc_get_type_depth(t, stype);
    bool uneven = false;

    if (first && first->type == HWLOC_OBJ_GROUP) {
        int n = hwloc_get_nbobjs_by_depth(t, first->depth);
        boards = n > 1 ? n : 1;
    }
    if (depth >= 0) {
        for (unsigned i = 0; i < hwloc_get_nbobjs_by_depth(t, depth); i++) {
            hwloc_obj_t s = hwloc_get_obj_by_depth(t, depth, i);
            if (s->type == stype && core_child_count(s) > 0)
                sockets++;
        }
    }
    if (sockets == 0) {
        sockets = hwloc_get_nbobjs_by_type(t, stype);
        if (sockets == 0)
            sockets = 1;
    }
    if (sockets < 0) {
        snprintf(note, notelen, "%s objects sit at several depths; slurmd cannot use them as sockets",
                 hwloc_obj_type_string(stype));
        memset(hw, 0, sizeof(*hw));
        return -1;
    }
    cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    if (cores <= 0)
        cores = 1;
    cpus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    hw->cpus = cpus;
    hw->boards = boards;
    hw->threads_per_core = cpus / cores;
    hw->cores_per_socket = cores / sockets;
    hw->sockets_per_board = sockets / boards;
    if (depth >= 0 && cores % sockets == 0) {
        for (unsigned i = 0; i < hwloc_get_nbobjs_by_depth(t, depth); i++) {
            hwloc_obj_t s = hwloc_get_obj_by_depth(t, depth, i);
            int n = core_child_count(s);
            if (n > 0 && n != cores / sockets)
                uneven = true;
        }
    }
    if (cpus % cores)
        snprintf(note, notelen, "%d cpus are not a multiple of %d cores", cpus, cores);
    else if (cores % sockets || uneven)
        snprintf(note, notelen, "%d cores are not spread evenly over %d sockets", cores, sockets);
    else if (hw->sockets_per_board == 0 || sockets % boards)
        snprintf(note, notelen, "%d sockets do not divide into %d boards", sockets, boards);
    else
        return 0;
    return -1;
}

/* A regular description of the same cores when Slurm's own is not: one
 * board, the packages as sockets if they hold equal core counts, else one
 * socket.  Needs every core to have the same number of threads. */
static int flat_view(hwloc_topology_t t, struct ism_slurm_hw *hw, char *note, size_t notelen)
{
    int ncores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    int npkg = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
    hwloc_obj_type_t unit = ncores > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    int nunits = hwloc_get_nbobjs_by_type(t, unit);
    int threads = -1, sockets = 1;
    size_t len;

    for (int i = 0; i < nunits; i++) {
        int n = hwloc_bitmap_weight(hwloc_get_obj_by_type(t, unit, (unsigned)i)->cpuset);
        if (threads >= 0 && n != threads) {
            len = strlen(note);
            snprintf(note + len, notelen - len,
                     "; cores have different thread counts, which Slurm cannot describe");
            memset(hw, 0, sizeof(*hw));
            return -1;
        }
        threads = n;
    }
    if (npkg > 1 && nunits % npkg == 0) {
        sockets = npkg;
        for (int i = 0; i < npkg; i++) {
            hwloc_obj_t p = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, (unsigned)i);
            if (hwloc_get_nbobjs_inside_cpuset_by_type(t, p->cpuset, unit) != nunits / npkg)
                sockets = 1;
        }
    }
    len = strlen(note);
    snprintf(note + len, notelen - len, "; printing a regular description of the same cores");
    hw->cpus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    hw->boards = 1;
    hw->sockets_per_board = sockets;
    hw->cores_per_socket = nunits / sockets;
    hw->threads_per_core = threads > 0 ? threads : 1;
    return 0;
}

/* Whether the cores hold different numbers of usable threads (offline or
 * disabled siblings): no regular description has the same cores then. */
static bool threads_differ(const ism_topo_t *topo)
{
    for (int i = 1; i < topo->ncores; i++) {
        if (ism_bitmap_count(topo->cores[i].cpus) != ism_bitmap_count(topo->cores[0].cpus))
            return true;
    }
    return false;
}

/* slurmd's fallback, which is what it registers: when the counts do not
 * divide, xcpuinfo.c (22.05 to 26.05 alike) rounds ThreadsPerCore =
 * cpus / cores and CoresPerSocket = cores / sockets down and prints CPUs as
 * counted; slurmctld then resets CPUs to Sockets x CoresPerSocket x
 * ThreadsPerCore ("CPUs=7 match no Sockets, ...").  Returns 0 when every
 * count is at least 1, so Slurm has such a node. */
static int slurm_fallback(struct ism_slurm_hw *hw, char *note, size_t notelen)
{
    int sockets = hw->boards * hw->sockets_per_board;
    int keep = sockets * hw->cores_per_socket * hw->threads_per_core;
    size_t len = strlen(note);

    if (hw->boards < 1 || hw->sockets_per_board < 1 || hw->cores_per_socket < 1 ||
        hw->threads_per_core < 1)
        return -1;
    snprintf(note + len, notelen - len,
             "; cores have different thread counts: slurmd rounds the counts down and "
             "Slurm uses the first %d thread(s) of its first %d cores (CPUs=%d, %d online)",
             hw->threads_per_core, sockets * hw->cores_per_socket, keep, hw->cpus);
    if (hw->cpus != sockets && hw->cpus != sockets * hw->cores_per_socket)
        hw->cpus = keep;
    return 0;
}

/* Fill topo->slurm and topo->slurm_numa.  Returns 1 when the plain view is
 * slurmd's fallback, so the cores must be cut down to Slurm's (see
 * slurm_cores), else 0. */
static int fill_slurm_views(hwloc_topology_t t, ism_topo_t *topo)
{
    hwloc_obj_t numa = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, NULL);
    hwloc_obj_type_t numa_socket = (numa && numa->parent) ? numa->parent->type
                                                          : HWLOC_OBJ_PACKAGE;

    if (slurm_view(t, HWLOC_OBJ_PACKAGE, &topo->slurm, topo->slurm_note,
                   sizeof(topo->slurm_note)) < 0 && threads_differ(topo) &&
        slurm_fallback(&topo->slurm, topo->slurm_note, sizeof(topo->slurm_note)) == 0) {
        /* One core numbering per topology: the NUMA view would number
         * other cores, so it is not offered. */
        memset(&topo->slurm_numa, 0, sizeof(topo->slurm_numa));
        snprintf(topo->slurm_numa_note, sizeof(topo->slurm_numa_note),
                 "cores have different thread counts; isthmus models slurmd's fallback only "
                 "with Packages as sockets, not with numa_node_as_socket");
        return 1;
    }
    if (topo->slurm_note[0])
        flat_view(t, &topo->slurm, topo->slurm_note, sizeof(topo->slurm_note));
    if (slurm_view(t, numa_socket, &topo->slurm_numa, topo->slurm_numa_note,
                   sizeof(topo->slurm_numa_note)) < 0)
        flat_view(t, &topo->slurm_numa, topo->slurm_numa_note, sizeof(topo->slurm_numa_note));
    return 0;
}

/* Cut the cores down to what slurmd's block map gives under its fallback:
 * abstract core k (k < sockets x cores per socket) is hwloc core k, with
 * its first threads_per_core threads; a thread whose OS index is not below
 * the cpu count is skipped by slurmd (its abstract cpu keeps the identity
 * mapping, to a cpu that is not this core's: left out here).  Cores past
 * Slurm's count, and cores left with no thread, are dropped. */
static int slurm_cores(hwloc_topology_t t, ism_topo_t *topo, ism_error_t *err)
{
    int ncores = topo->slurm.boards * topo->slurm.sockets_per_board * topo->slurm.cores_per_socket;
    int npus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    int kept = 0;

    for (int i = 0; i < topo->ncores; i++) {
        struct ism_core *c = &topo->cores[i];
        hwloc_obj_t core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, (unsigned)c->index);
        ism_bitmap_t *cpus = ism_bitmap_create();

        if (!cpus)
            return ism_err(err, ENOMEM, "out of memory");
        for (int k = 0; core && c->index < ncores && k < topo->slurm.threads_per_core; k++) {
            hwloc_obj_t pu = hwloc_get_obj_inside_cpuset_by_type(t, core->cpuset, HWLOC_OBJ_PU,
                                                                 (unsigned)k);
            if (pu && (int)pu->os_index < npus && ism_bitmap_test(c->cpus, (int)pu->os_index) &&
                ism_bitmap_set(cpus, (int)pu->os_index) < 0) {
                ism_bitmap_destroy(cpus);
                return ism_err(err, ENOMEM, "out of memory");
            }
        }
        ism_bitmap_destroy(c->cpus);
        c->cpus = cpus;
        if (ism_bitmap_empty(cpus)) {
            ism_bitmap_destroy(cpus);
            continue;
        }
        topo->cores[kept++] = *c;
    }
    topo->ncores = kept;
    if (kept == 0)
        return ism_err(err, ENODEV, "Slurm would use none of this topology's cpus");
    return 0;
}

/* The highest-ranked kind among the core's cpus.  hwloc lists kinds by
 * rising efficiency ranking, so with several kinds the last one is the
 * performance kind and every other one an efficiency kind. */
static enum ism_core_kind core_kind(hwloc_topology_t t, hwloc_const_cpuset_t cpus)
{
    int nkinds = hwloc_cpukinds_get_nr(t, 0);
    hwloc_bitmap_t one;
    int best = -1;

    if (nkinds <= 1 || !(one = hwloc_bitmap_alloc()))
        return ISM_CORE_STANDARD;
    for (int cpu = hwloc_bitmap_first(cpus); cpu >= 0; cpu = hwloc_bitmap_next(cpus, cpu)) {
        int k;
        hwloc_bitmap_only(one, (unsigned)cpu);
        if ((k = hwloc_cpukinds_get_by_cpuset(t, one, 0)) > best)
            best = k;
    }
    hwloc_bitmap_free(one);
    if (best < 0)
        return ISM_CORE_STANDARD;
    return best == nkinds - 1 ? ISM_CORE_PERFORMANCE : ISM_CORE_EFFICIENCY;
}

/* Whether hwloc marks the node as high-bandwidth memory: MCDRAM on Xeon
 * Phi, HBM on newer parts (hwloc 2.10+ sets it from memory tiers). */
static bool high_bandwidth(hwloc_obj_t node)
{
    return node->subtype &&
           (strcmp(node->subtype, "MCDRAM") == 0 || strcmp(node->subtype, "HBM") == 0);
}

/* The NUMA node with the core's ordinary memory.  Xeon Phi (SNC, hybrid,
 * flat) and Xeon Max (HBM flat) have two nodes over the same cpus, the DDR
 * one and the HBM one: take the node hwloc does not mark high-bandwidth,
 * and among those the lowest OS index, as Linux numbers the nodes with cpus
 * (DDR) before the cpu-less ones it finds later (HBM, CXL), which hwloc
 * attaches to the same cpus. */
static int numa_of(hwloc_topology_t t, hwloc_const_cpuset_t cpus)
{
    hwloc_obj_t node = NULL, best = NULL;

    while ((node = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, node))) {
        if (!hwloc_bitmap_intersects(node->cpuset, cpus))
            continue;
        if (!best || (high_bandwidth(best) && !high_bandwidth(node)) ||
            (high_bandwidth(best) == high_bandwidth(node) && node->os_index < best->os_index))
            best = node;
    }
    if (!best || best->os_index == HWLOC_UNKNOWN_INDEX)
        return -1;
    return (int)best->os_index;
}

static int fill_cores(hwloc_topology_t t, ism_topo_t *topo, ism_error_t *err)
{
    hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(t);
    /* Without Core objects (some VMs, some exports) each PU is a core, as
     * Slurm's fallback treats it. */
    hwloc_obj_type_t unit = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE
                                                                          : HWLOC_OBJ_PU;
    int n = hwloc_get_nbobjs_by_type(t, unit);

    if (n <= 0)
        return ism_err(err, ENODEV, "topology has no cores and no cpus");
    if (n > ISM_TOPO_MAX_CORES)
        return ism_err(err, E2BIG, "topology has %d cores, more than %d", n, ISM_TOPO_MAX_CORES);
    if (!(topo->cores = calloc((size_t)n, sizeof(*topo->cores))))
        return ism_err(err, ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(t, unit, (unsigned)i);
        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, obj);
        hwloc_obj_t l3 = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_L3CACHE, obj);
        struct ism_core *core = &topo->cores[topo->ncores];

        if (!hwloc_bitmap_intersects(obj->cpuset, allowed))
            continue; /* every thread disallowed: keep the index free */
        if (!(core->cpus = bitmap_from_hwloc(obj->cpuset, allowed)))
            return ism_err(err, ENOMEM, "out of memory");
        core->index = i;
        core->os_index = (unit == HWLOC_OBJ_CORE && obj->os_index != HWLOC_UNKNOWN_INDEX)
                             ? (int)obj->os_index
                             : -1;
        core->socket = pkg ? (int)pkg->logical_index : 0;
        core->numa = numa_of(t, obj->cpuset);
        core->l3 = l3 ? (int)l3->logical_index : -1;
        core->kind = core_kind(t, obj->cpuset);
        topo->ncores++;
    }
    if (topo->ncores == 0)
        return ism_err(err, ENODEV, "every cpu of the topology is disallowed");
    return 0;
}

static int numa_cmp(const void *a, const void *b)
{
    return ((const struct ism_numa_node *)a)->os_index - ((const struct ism_numa_node *)b)->os_index;
}

static int fill_numa(hwloc_topology_t t, ism_topo_t *topo, ism_error_t *err)
{
    hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(t);
    int n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);

    if (n > ISM_TOPO_MAX_NUMA)
        return ism_err(err, E2BIG, "topology has %d NUMA nodes, more than %d", n,
                       ISM_TOPO_MAX_NUMA);
    if (n > 0 && !(topo->numa = calloc((size_t)n, sizeof(*topo->numa))))
        return ism_err(err, ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        struct ism_numa_node *out = &topo->numa[topo->nnuma++];

        out->os_index = node->os_index == HWLOC_UNKNOWN_INDEX ? i : (int)node->os_index;
        out->memory = node->attr ? node->attr->numanode.local_memory : 0;
        if (!(out->cpus = bitmap_from_hwloc(node->cpuset, allowed)))
            return ism_err(err, ENOMEM, "out of memory");
    }
    qsort(topo->numa, (size_t)topo->nnuma, sizeof(*topo->numa), numa_cmp);
    return 0;
}

static int fill_counts(hwloc_topology_t t, ism_topo_t *topo, enum source src, ism_error_t *err)
{
    hwloc_obj_t root = hwloc_get_root_obj(t);
    hwloc_bitmap_t offline = hwloc_bitmap_alloc();
    hwloc_bitmap_t disallowed = hwloc_bitmap_alloc();
    int npkg = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
    int rc = 0;

    topo->sockets = npkg > 0 ? npkg : 1;
    topo->l3_caches = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_L3CACHE);
    if (!offline || !disallowed) {
        rc = ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    hwloc_bitmap_andnot(offline, root->complete_cpuset, root->cpuset);
    hwloc_bitmap_andnot(disallowed, root->cpuset, hwloc_topology_get_allowed_cpuset(t));
    if (!(topo->offline = bitmap_from_hwloc(offline, NULL)) ||
        !(topo->disallowed = bitmap_from_hwloc(disallowed, NULL))) {
        rc = ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    topo->memory = root->total_memory;
    if (fill_slurm_views(t, topo) == 1 && (rc = slurm_cores(t, topo, err)) < 0)
        goto out;
    if (src == FROM_LIVE) {
        /* slurmd's get_memory(), float rounding included, so RealMemory
         * matches slurmd -C on this host. */
        long pages = sysconf(_SC_PHYS_PAGES);
        long pagesize = sysconf(_SC_PAGE_SIZE);
        if (pages > 0 && pagesize > 0) {
            topo->memory = (uint64_t)pages * (uint64_t)pagesize;
            topo->slurm.real_memory = (uint64_t)((float)pages * (pagesize / 1048576.0));
        }
    } else {
        /* Slurm takes RealMemory=1 for "unknown". */
        topo->slurm.real_memory = topo->memory / (1024 * 1024);
        if (topo->slurm.real_memory == 0)
            topo->slurm.real_memory = 1;
    }
    topo->slurm_numa.real_memory = topo->slurm.real_memory;
out:
    hwloc_bitmap_free(offline);
    hwloc_bitmap_free(disallowed);
    return rc;
}

static int load_hwloc(hwloc_topology_t t, enum source src, const char *arg, ism_error_t *err)
{
    static const hwloc_obj_type_t dropped[] = {
        HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L4CACHE, HWLOC_OBJ_L5CACHE,
        HWLOC_OBJ_MISC,
    };

    if (hwloc_topology_set_flags(t, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED) < 0)
        return ism_err(err, errno, "hwloc: cannot include disallowed cpus");
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        hwloc_topology_set_type_filter(t, dropped[i], HWLOC_TYPE_FILTER_KEEP_NONE);
    if (src == FROM_XML && hwloc_topology_set_xml(t, arg) < 0)
        return ism_err(err, errno ? errno : EINVAL, "not an hwloc XML topology");
    if (src == FROM_SYNTHETIC && hwloc_topology_set_synthetic(t, arg) < 0)
        return ism_err(err, EINVAL, "'%s': not an hwloc synthetic description", arg);
    if (hwloc_topology_load(t) < 0) {
        if (src == FROM_XML)
            return ism_err(err, EINVAL, "hwloc cannot load this XML topology");
        return ism_err(err, errno ? errno : EIO, "hwloc: cannot load the topology");
    }
    return 0;
}

static ism_topo_t *topo_from_hwloc(enum source src, const char *arg, ism_error_t *err)
{
    hwloc_topology_t t;
    ism_topo_t *topo = NULL;

    if (src != FROM_LIVE && (!arg || !*arg)) {
        ism_err(err, EINVAL, "topology: missing %s", src == FROM_XML ? "XML file" : "description");
        return NULL;
    }
    if (hwloc_topology_init(&t) < 0) {
        ism_err(err, errno, "hwloc: cannot initialise");
        return NULL;
    }
    if (load_hwloc(t, src, arg, err) < 0)
        goto error;
    if (!(topo = calloc(1, sizeof(*topo)))) {
        ism_err(err, ENOMEM, "out of memory");
        goto error;
    }
    if (fill_cores(t, topo, err) < 0 || fill_numa(t, topo, err) < 0 ||
        fill_counts(t, topo, src, err) < 0)
        goto error;
    hwloc_topology_destroy(t);
    return topo;
error:
    if (src == FROM_XML)
        ism_errprefix(err, "%s", arg);
    ism_topo_destroy(topo);
    hwloc_topology_destroy(t);
    return NULL;
}

ism_topo_t *ism_topo_from_live(ism_error_t *err)
{
    return topo_from_hwloc(FROM_LIVE, NULL, err);
}

ism_topo_t *ism_topo_from_xml(const char *path, ism_error_t *err)
{
    return topo_from_hwloc(FROM_XML, path, err);
}

ism_topo_t *ism_topo_from_synthetic(const char *description, ism_error_t *err)
{
    return topo_from_hwloc(FROM_SYNTHETIC, description, err);
}

ism_topo_t *ism_topo_load_default(ism_error_t *err)
{
    const char *xml = getenv("ISTHMUS_HWLOC_XMLFILE");

    if (xml && *xml)
        return ism_topo_from_xml(xml, err);
    return ism_topo_from_live(err);
}
