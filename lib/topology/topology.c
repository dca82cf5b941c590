/* topology.c - the model's life cycle and lookups; see topology.h */
#include <config.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/topology/topology.h"

static const char *const kind_names[] = {
    [ISM_CORE_STANDARD] = "standard",
    [ISM_CORE_PERFORMANCE] = "performance",
    [ISM_CORE_EFFICIENCY] = "efficiency",
};

const char *ism_core_kind_name(enum ism_core_kind kind)
{
    if ((unsigned)kind >= sizeof(kind_names) / sizeof(kind_names[0]))
        return "unknown";
    return kind_names[kind];
}

int ism_core_kind_parse(const char *s, enum ism_core_kind *kind)
{
    for (size_t i = 0; s && i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            *kind = (enum ism_core_kind)i;
            return 0;
        }
    }
    errno = EINVAL;
    return -1;
}

void ism_topo_destroy(ism_topo_t *topo)
{
    if (topo) {
        int saved_errno = errno;
        for (int i = 0; topo->cores && i < topo->ncores; i++)
            ism_bitmap_destroy(topo->cores[i].cpus);
        for (int i = 0; topo->numa && i < topo->nnuma; i++)
            ism_bitmap_destroy(topo->numa[i].cpus);
        free(topo->cores);
        free(topo->numa);
        ism_bitmap_destroy(topo->offline);
        ism_bitmap_destroy(topo->disallowed);
        free(topo);
        errno = saved_errno;
    }
}

static bool core_equal(const struct ism_core *a, const struct ism_core *b)
{
    return a->index == b->index && a->os_index == b->os_index && a->socket == b->socket &&
           a->numa == b->numa && a->l3 == b->l3 && a->kind == b->kind &&
           ism_bitmap_equal(a->cpus, b->cpus);
}

static bool hw_equal(const struct ism_slurm_hw *a, const struct ism_slurm_hw *b)
{
    return a->cpus == b->cpus && a->boards == b->boards &&
           a->sockets_per_board == b->sockets_per_board &&
           a->cores_per_socket == b->cores_per_socket &&
           a->threads_per_core == b->threads_per_core && a->real_memory == b->real_memory;
}

bool ism_topo_equal(const ism_topo_t *a, const ism_topo_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->sockets != b->sockets || a->l3_caches != b->l3_caches || a->ncores != b->ncores ||
        a->nnuma != b->nnuma || a->memory != b->memory || !hw_equal(&a->slurm, &b->slurm) ||
        !hw_equal(&a->slurm_numa, &b->slurm_numa) || !ism_bitmap_equal(a->offline, b->offline) ||
        !ism_bitmap_equal(a->disallowed, b->disallowed))
        return false;
    for (int i = 0; i < a->ncores; i++) {
        if (!core_equal(&a->cores[i], &b->cores[i]))
            return false;
    }
    for (int i = 0; i < a->nnuma; i++) {
        if (a->numa[i].os_index != b->numa[i].os_index || a->numa[i].memory != b->numa[i].memory ||
            !ism_bitmap_equal(a->numa[i].cpus, b->numa[i].cpus))
            return false;
    }
    return true;
}

const struct ism_core *ism_topo_core(const ism_topo_t *topo, int index)
{
    int lo = 0, hi = topo ? topo->ncores - 1 : -1;

    while (lo <= hi) { /* cores are sorted by index, with possible gaps */
        int mid = lo + (hi - lo) / 2;
        if (topo->cores[mid].index == index)
            return &topo->cores[mid];
        if (topo->cores[mid].index < index)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const struct ism_numa_node *ism_topo_numa(const ism_topo_t *topo, int os_index)
{
    for (int i = 0; topo && i < topo->nnuma; i++) {
        if (topo->numa[i].os_index == os_index)
            return &topo->numa[i];
    }
    return NULL;
}

ism_bitmap_t *ism_topo_cpus(const ism_topo_t *topo)
{
    ism_bitmap_t *all;

    if (!topo) {
        errno = EINVAL;
        return NULL;
    }
    if (!(all = ism_bitmap_create()))
        return NULL;
    for (int i = 0; i < topo->ncores; i++) {
        if (ism_bitmap_or(all, topo->cores[i].cpus) < 0) {
            ism_bitmap_destroy(all);
            return NULL;
        }
    }
    return all;
}

int ism_topo_threads_max(const ism_topo_t *topo)
{
    int max = 0;

    for (int i = 0; topo && i < topo->ncores; i++) {
        int n = ism_bitmap_count(topo->cores[i].cpus);
        if (n > max)
            max = n;
    }
    return max;
}

ism_bitmap_t *ism_topo_core_nodes(const ism_topo_t *topo)
{
    ism_bitmap_t *nodes;

    if (!topo) {
        errno = EINVAL;
        return NULL;
    }
    if (!(nodes = ism_bitmap_create()))
        return NULL;
    for (int i = 0; i < topo->ncores; i++) {
        if (topo->cores[i].numa >= 0 && ism_bitmap_set(nodes, topo->cores[i].numa) < 0) {
            ism_bitmap_destroy(nodes);
            return NULL;
        }
    }
    return nodes;
}

int ism_topo_add_extra_near(const ism_topo_t *topo, const ism_bitmap_t *core_nodes,
                            const ism_bitmap_t *cpus, ism_bitmap_t *mems)
{
    for (int i = 0; topo && core_nodes && i < topo->nnuma; i++) {
        const struct ism_numa_node *n = &topo->numa[i];
        if (ism_bitmap_test(core_nodes, n->os_index) ||
            !(ism_bitmap_empty(n->cpus) || (cpus && ism_bitmap_intersects(n->cpus, cpus))))
            continue;
        if (ism_bitmap_set(mems, n->os_index) < 0)
            return -1;
    }
    return 0;
}

int ism_slurm_hw_check(const ism_topo_t *topo, const struct ism_slurm_hw *hw, ism_error_t *err)
{
    long long cores;

    if (!topo || !hw)
        return ism_err(err, EINVAL, "slurm hardware check: missing argument");
    if (hw->boards < 1 || hw->sockets_per_board < 1 || hw->cores_per_socket < 1 ||
        hw->threads_per_core < 1)
        return ism_err(err, EINVAL,
                       "Boards=%d SocketsPerBoard=%d CoresPerSocket=%d ThreadsPerCore=%d: "
                       "every count must be at least 1",
                       hw->boards, hw->sockets_per_board, hw->cores_per_socket,
                       hw->threads_per_core);
    cores = (long long)hw->boards * hw->sockets_per_board * hw->cores_per_socket;
    if (cores * hw->threads_per_core != hw->cpus)
        return ism_err(err, EINVAL, "%lld cores x %d threads is not CPUs=%d", cores,
                       hw->threads_per_core, hw->cpus);
    if (topo->ncores > 0 && topo->cores[topo->ncores - 1].index >= cores)
        return ism_err(err, EINVAL, "core index %d is beyond the %lld cores Slurm knows",
                       topo->cores[topo->ncores - 1].index, cores);
    if (ism_topo_threads_max(topo) > hw->threads_per_core)
        return ism_err(err, EINVAL, "a core has %d threads, more than ThreadsPerCore=%d",
                       ism_topo_threads_max(topo), hw->threads_per_core);
    return 0;
}
