/* planner.h - split allocated cores among consumers, topology-aware.
 *
 * The planner answers one question for every component that places work
 * on a node: given this node's topology, the cores granted to a job (Slurm
 * abstract core indices, see topology.h), N consumers (the local tasks of
 * a step, the pods of a gang, the containers of a claim) and how many cpus
 * each needs, which cores, OS cpus and NUMA nodes does each consumer get?
 *
 * It is pure code over an ism_topo_t: no Slurm, no hwloc, no system call,
 * so it runs the same in slurmstepd, in isthmusd and in the kubelet plugin,
 * and in unit tests over any machine's model.
 *
 * Rules every plan keeps (the unit tests check each):
 *   - consumers get disjoint sets of cores (except layout none, where each
 *     gets the whole allocation);
 *   - every core given is one of the allocated cores, and a consumer gets
 *     all of a core's usable threads ("whole cores");
 *   - when the allocation has fewer cores than consumers × cores needed,
 *     whole cores are impossible: the plan then gives threads (plan->whole
 *     is false), siblings of one core kept together in one consumer where
 *     the counts allow, and never one thread to two consumers;
 *   - mems are the NUMA nodes with the ordinary memory of the consumer's
 *     cores (each core's numa), plus, only with ISM_MEM_HBM, the extra
 *     memory near its cpus: HBM nodes over the same cpus (Xeon Phi, Xeon
 *     Max flat mode) and memory-only nodes of unknown locality (see
 *     ism_topo_add_extra_near).
 *
 * Layouts:
 *   compact  cores in (socket, NUMA node, L3, index) order, consumer after
 *            consumer: a consumer fills an L3 before the next L3, a NUMA
 *            node before the next, a socket before the next.  A consumer
 *            that does not fit in what is left of a NUMA node goes whole
 *            to the next node that can hold it, when there is one.
 *   spread   consumers round-robin over the allocation's NUMA nodes:
 *            consumer i starts in NUMA node i mod n; inside a node, compact.
 *   numa     every consumer's cores inside one NUMA node (first fit in
 *            compact order); refused with a reason when the allocation
 *            cannot give that.
 *   none     no placement: every consumer gets the whole allocation.
 */
#ifndef ISTHMUS_PLANNER_H
#define ISTHMUS_PLANNER_H

#include <stdbool.h>

#include "lib/util/bitmap.h"
#include "lib/util/error.h"
#include "lib/topology/topology.h"

enum ism_layout {
    ISM_LAYOUT_COMPACT,
    ISM_LAYOUT_SPREAD,
    ISM_LAYOUT_NUMA,
    ISM_LAYOUT_NONE,
};

enum ism_mem {
    ISM_MEM_LOCAL, /* the NUMA nodes of the consumer's cpus (default) */
    ISM_MEM_HBM,   /* those plus the extra memory near the consumer's cpus */
    ISM_MEM_NONE,  /* no memory placement: mems is empty */
};

/* What a user or admin asks for, as parsed from text (see ism_plan_opts_parse). */
struct ism_plan_opts {
    enum ism_layout layout;
    enum ism_mem mem;
    bool verbose;
    bool layout_set, mem_set, verbose_set; /* which ones the text named */
};

#define ISM_PLAN_OPTS_INIT { ISM_LAYOUT_COMPACT, ISM_MEM_LOCAL, false, false, false, false }

/* Upper bound of consumers, against absurd input (far above real nodes). */
#define ISM_PLAN_MAX_CONSUMERS 65536

struct ism_plan_request {
    const ism_bitmap_t *cores; /* allocated abstract core indices; not kept */
    int consumers;             /* >= 1 */
    /* cpus (hardware threads) each consumer needs; 0 = an equal share of
     * the allocation's whole cores (the rest stays unused). */
    int cpus_per_consumer;
    enum ism_layout layout;
    enum ism_mem mem;
};

struct ism_plan_slot {
    ism_bitmap_t *cores; /* abstract core indices */
    ism_bitmap_t *cpus;  /* OS cpu ids */
    ism_bitmap_t *mems;  /* NUMA node OS indices; empty with ISM_MEM_NONE */
};

struct ism_plan {
    enum ism_layout layout;
    bool whole; /* every slot holds whole cores */
    int nslots;
    struct ism_plan_slot *slots; /* one per consumer, in consumer order */
};

typedef struct ism_plan ism_plan_t;

/* Plan req over topo.  Returns a new plan (caller destroys; it holds no
 * reference to topo or req), or NULL with errno EINVAL and err naming the
 * reason: a core of the allocation missing from the topology, too few
 * cpus for the consumers, no NUMA node able to hold a consumer (numa).
 * ENOMEM when memory runs out. */
ism_plan_t *ism_plan_create(const ism_topo_t *topo, const struct ism_plan_request *req,
                            ism_error_t *err);
void ism_plan_destroy(ism_plan_t *plan); /* NULL ok, keeps errno */

/* Parse a comma-separated option string, e.g. "spread,verbose,mem=hbm":
 * words compact|spread|numa|none (the layout, at most once), verbose,
 * layout=WORD, mem=local|hbm|none.  Fills only what the text names, over
 * what opts already holds, so defaults can be applied first and the user's
 * text on top.  "" is valid and names nothing.  -1 with EINVAL and err
 * naming the offending word; opts is then unchanged. */
int ism_plan_opts_parse(const char *text, struct ism_plan_opts *opts, ism_error_t *err);

/* The opaque parameters of a DRA claim's config for driver cpu.isthmus.io
 * (status.allocation.devices.config[].opaque.parameters): an object whose
 * only key is "mem", a string local or hbm ("none" would leave a
 * container's cpuset.mems empty).  Sets *mem, or -1 with EINVAL and err
 * naming the key or value; *mem is then unchanged.  params is borrowed. */
struct json_t;
int ism_plan_params_parse(const struct json_t *params, enum ism_mem *mem, ism_error_t *err);

const char *ism_layout_name(enum ism_layout layout);
int ism_layout_parse(const char *s, enum ism_layout *layout, ism_error_t *err);
const char *ism_mem_name(enum ism_mem mem);
int ism_mem_parse(const char *s, enum ism_mem *mem, ism_error_t *err);

#endif
