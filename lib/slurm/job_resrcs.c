/* job_resrcs.c - see job_resrcs.h. */
#include <config.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/slurm/job_resrcs.h"

/* Bounds past which a record is not believed: far above any cluster's,
 * low enough that no product below overflows an int. */
#define MAX_NODES (1 << 20)
#define MAX_NODE_CORES (1 << 16)
#define MAX_BITS (1 << 30)
#define MAX_NODES_TEXT (1 << 24)

static bool bit_test(const ism_slurm_bitstr_t *b, int bit)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint64_t mask = (uint64_t)1 << (63 - (bit & 63));
#else
    uint64_t mask = (uint64_t)1 << (bit & 63);
#endif
    return ((uint64_t)b[2 + bit / 64] & mask) != 0;
}

static int refuse(ism_error_t *err, const struct ism_resrcs_job *job, const char *what)
{
    return ism_err(err, EPROTO,
                   "job %u: its resources record from libslurm does not check out (%s); "
                   "refusing to read its cores",
                   job->id, what);
}

/* The number of bits the node groups of r give its nhosts nodes, or -1
 * when they do not add up. */
static long group_bits(const struct ism_resrcs_2411 *r)
{
    long bits = 0, nodes = 0;

    for (uint32_t g = 0; nodes < r->nhosts; g++) {
        long per_node;
        uint32_t reps;

        if (g >= r->nhosts)
            return -1;
        per_node = (long)r->sockets_per_node[g] * r->cores_per_socket[g];
        reps = r->sock_core_rep_count[g];
        if (reps == 0 || reps > r->nhosts - nodes || per_node <= 0 ||
            per_node > MAX_NODE_CORES)
            return -1;
        nodes += reps;
        bits += per_node * reps;
        if (bits > MAX_BITS)
            return -1;
    }
    return bits;
}

int ism_job_resrcs_open(const void *rec, const struct ism_resrcs_job *job,
                        ism_job_resrcs_t *view, ism_error_t *err)
{
    const struct ism_resrcs_2411 *r = rec;
    uint64_t cpus = 0;
    long bits;

    if (!job || !view)
        return ism_err(err, EINVAL, "job resources: missing job or view");
    if (!r)
        return refuse(err, job, "no record although the job holds nodes");
    if (r->nhosts == 0 || r->nhosts > MAX_NODES)
        return refuse(err, job, "node count out of range");
    if (job->completing ? job->num_nodes > r->nhosts : job->num_nodes != r->nhosts)
        return refuse(err, job, "its node count is not the job's");
    if (!r->nodes || !*r->nodes || strnlen(r->nodes, MAX_NODES_TEXT) == MAX_NODES_TEXT)
        return refuse(err, job, "no node list");
    if (!r->cpus || !r->sockets_per_node || !r->cores_per_socket || !r->sock_core_rep_count ||
        !r->core_bitmap)
        return refuse(err, job, "a per-node array is missing");
    if ((bits = group_bits(r)) < 0)
        return refuse(err, job, "its node groups do not add up to its nodes");
    if (r->core_bitmap[0] != ISM_SLURM_BITSTR_MAGIC || r->core_bitmap[1] != bits)
        return refuse(err, job, "its core bitmap is not one of its nodes' cores");
    if (r->node_bitmap && r->node_bitmap[0] != ISM_SLURM_BITSTR_MAGIC)
        return refuse(err, job, "its node bitmap is not a bitmap");
    for (uint32_t i = 0; i < r->nhosts; i++)
        cpus += r->cpus[i];
    /* (r->ncpus is what the job asked for, not what it got.) */
    if (!job->completing && cpus != job->num_cpus) {
        char what[160];
        snprintf(what, sizeof(what), "its cpus per node add up to %llu, the job has %u",
                 (unsigned long long)cpus, job->num_cpus);
        return refuse(err, job, what);
    }
    view->rec = r;
    view->job = *job;
    view->nhosts = (int)r->nhosts;
    view->nodes = r->nodes;
    return 0;
}

/* The group of node idx: its first bit in *first and its cores in *ncores,
 * its sockets and cores per socket in *sockets, *cps. */
static void node_place(const struct ism_resrcs_2411 *r, int idx, long *first, int *sockets,
                       int *cps)
{
    long bit = 0;
    uint32_t g = 0, left = (uint32_t)idx;

    while (left >= r->sock_core_rep_count[g]) {
        bit += (long)r->sockets_per_node[g] * r->cores_per_socket[g] * r->sock_core_rep_count[g];
        left -= r->sock_core_rep_count[g++];
    }
    *sockets = r->sockets_per_node[g];
    *cps = r->cores_per_socket[g];
    *first = bit + (long)left * *sockets * *cps;
}

int ism_job_resrcs_node(const ism_job_resrcs_t *view, int idx, const char *name,
                        const struct ism_resrcs_shape *shape, ism_bitmap_t **cores,
                        uint32_t *cpus, uint64_t *memory, ism_error_t *err)
{
    const struct ism_resrcs_2411 *r;
    const struct ism_resrcs_job *job;
    ism_bitmap_t *b;
    int sockets, cps, n;
    long first;

    if (!view || !view->rec || !name || !shape || !cores || !cpus || !memory)
        return ism_err(err, EINVAL, "job resources: missing argument");
    r = view->rec, job = &view->job;
    *cores = NULL;
    if (idx < 0 || idx >= view->nhosts)
        return ism_err(err, EPROTO, "job %u: node %s is not in its resources record", job->id,
                       name);
    node_place(r, idx, &first, &sockets, &cps);
    if (sockets != shape->sockets || cps != shape->cores_per_socket)
        return ism_err(err, EPROTO,
                       "job %u: its resources record gives node %s %d sockets of %d cores, the "
                       "node table %d of %d; refusing to read its cores",
                       job->id, name, sockets, cps, shape->sockets, shape->cores_per_socket);
    if (!(b = ism_bitmap_create()))
        return ism_err(err, ENOMEM, "out of memory");
    for (int c = 0; c < sockets * cps; c++)
        if (bit_test(r->core_bitmap, (int)first + c) && ism_bitmap_set(b, c) < 0) {
            ism_bitmap_destroy(b);
            return ism_err(err, ENOMEM, "out of memory");
        }
    n = ism_bitmap_count(b);
    if (n == 0 || r->cpus[idx] < n || r->cpus[idx] > n * shape->threads_per_core) {
        ism_bitmap_destroy(b);
        return ism_err(err, EPROTO,
                       "job %u: its resources record gives it %d cores and %u cpus on node %s "
                       "(%d threads per core); refusing to read its cores",
                       job->id, n, r->cpus[idx], name, shape->threads_per_core);
    }
    *cores = b;
    *cpus = r->cpus[idx];
    *memory = r->memory_allocated ? r->memory_allocated[idx] : 0;
    return 0;
}
