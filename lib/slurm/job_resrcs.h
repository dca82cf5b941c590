/* job_resrcs.h - a running job's cores on each node, read from the job
 * resources record libslurm 24.11 and 25.05 unpack into job_info_t.
 *
 * Slurm 24.11 removed the calls that read a job's cores per node and added
 * none until 25.11 (slurm_get_resource_layout).  The record they read is
 * still sent: slurm_load_jobs(SHOW_DETAIL) fills job_info_t.job_resrcs,
 * whose type slurm.h keeps opaque.  This file reads it through a private
 * copy of its layout (struct ism_resrcs_2411, unchanged from 24.11.0 to
 * 25.05.8), and checks what it read against what the rest of the job
 * record and the node table say, so that a layout it got wrong is refused
 * with an error naming the job, never mirrored as wrong cores:
 *   - the record's own counts agree with each other (node groups add up
 *     to its node count, its core bitmap is a bitmap of Slurm's with as
 *     many bits as its nodes have cores, its node list has as many names);
 *   - its node count and cpu total are the job's (job_info_t num_nodes,
 *     num_cpus), each of the job's nodes is in its node list;
 *   - on each node, sockets and cores per socket are the node table's, and
 *     the cpus Slurm counts lie between one and ThreadsPerCore per core
 *     that the bitmap gives the job.
 * lib/README.md ("Slurm releases") says why this way and not another.
 *
 * Pure functions: no libslurm call, so that the unit tests can feed them
 * made-up records on any release.  Called on the Slurm owner thread only
 * because the record belongs to a message that thread owns.
 */
#ifndef ISTHMUS_JOB_RESRCS_H
#define ISTHMUS_JOB_RESRCS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/util/bitmap.h"
#include "lib/util/error.h"

/* Slurm's bitmaps: an array of int64_t words, [0] this magic, [1] the
 * number of bits, then the bits, bit i in word 2 + i / 64 at position
 * i % 64 (from the least significant bit on little-endian machines, from
 * the most significant on big-endian ones). */
#define ISM_SLURM_BITSTR_MAGIC 0x42434445
typedef int64_t ism_slurm_bitstr_t;

/* struct job_resources of Slurm 24.11.0 to 25.05.8 (src/common/
 * job_resources.h): what the adapter reads of it, field for field.
 * Nodes come in the order of the names in nodes; node groups: the next
 * sock_core_rep_count[g] nodes have sockets_per_node[g] sockets of
 * cores_per_socket[g] cores; core_bitmap holds each node's cores in turn,
 * socket-major (bit = the node's first bit + Slurm's abstract core index). */
struct ism_resrcs_2411 {
    ism_slurm_bitstr_t *core_bitmap;
    ism_slurm_bitstr_t *core_bitmap_used;
    uint32_t cpu_array_cnt;
    uint16_t *cpu_array_value;
    uint32_t *cpu_array_reps;
    uint16_t *cpus; /* per node */
    uint16_t *cpus_used;
    uint16_t *cores_per_socket; /* per node group */
    uint16_t cr_type;
    uint64_t *memory_allocated; /* MiB per node */
    uint64_t *memory_used;
    uint32_t next_step_node_inx;
    uint32_t nhosts;
    ism_slurm_bitstr_t *node_bitmap;
    uint32_t node_req;
    char *nodes; /* hostlist expression */
    uint32_t ncpus;
    uint32_t *sock_core_rep_count; /* per node group */
    uint16_t *sockets_per_node;    /* per node group */
    uint16_t *tasks_per_node;
    uint16_t threads_per_core;
    uint8_t whole_node;
};

/* What the job record says besides its resources. */
struct ism_resrcs_job {
    uint32_t id;
    uint32_t num_nodes; /* job_info_t.num_nodes */
    uint32_t num_cpus;  /* job_info_t.num_cpus */
    bool completing;    /* slurmctld lets go of a completing job's nodes one
                           by one: its node count may be below the record's,
                           its cpus too */
};

/* A checked record (borrows from it and from the job). */
typedef struct {
    const struct ism_resrcs_2411 *rec;
    struct ism_resrcs_job job;
    int nhosts;
    const char *nodes; /* the record's node list: the index of a node in it
                          is the node's index below */
} ism_job_resrcs_t;

/* Check the record rec (job_info_t.job_resrcs) of job as a whole and fill
 * view.  The caller must then find each of the job's nodes in view->nodes
 * (and that it has view->nhosts names).  EPROTO naming the job when a
 * check fails. */
int ism_job_resrcs_open(const void *rec, const struct ism_resrcs_job *job,
                        ism_job_resrcs_t *view, ism_error_t *err);

/* A node's shape from the node table. */
struct ism_resrcs_shape {
    int sockets; /* per node */
    int cores_per_socket;
    int threads_per_core;
};

/* The job's cores (new bitmap, caller destroys), cpus and memory (MiB, 0
 * when the record has none) on its node with index idx in view->nodes,
 * called name, of shape.  EPROTO naming the job and node when the record
 * does not agree with shape. */
int ism_job_resrcs_node(const ism_job_resrcs_t *view, int idx, const char *name,
                        const struct ism_resrcs_shape *shape, ism_bitmap_t **cores,
                        uint32_t *cpus, uint64_t *memory, ism_error_t *err);

#endif
