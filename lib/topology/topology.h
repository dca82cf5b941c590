/* topology.h - a node's CPU topology, the way isthmus and Slurm see it.
 *
 * The model is what every component needs and no more: the node's cores
 * with the identifiers used across isthmus (Slurm's abstract core index,
 * which names the DRA device "core-<index>"), where each core sits (socket,
 * NUMA node, L3 cache), which OS cpus are its hardware threads, and the NUMA
 * nodes with their memory, including memory-only ones (HBM, CXL).
 *
 * Numbering:
 *   index     Slurm's abstract core index: socket * CoresPerSocket + core.
 *             For every machine Slurm can describe regularly this is hwloc's
 *             logical Core index in a whole-system topology (disallowed cpus
 *             included), which is how slurmd builds its block map.  A core
 *             whose threads are all disallowed keeps its index but is left
 *             out of cores[], so indices may have gaps.
 *   os_index  the kernel's core id (topology/core_id), -1 if unknown.
 *   socket    logical index of the Package (0..sockets-1); 0 when the
 *             machine has no Package objects.
 *   numa      OS index of the NUMA node with the core's ordinary memory
 *             (as in /sys/devices/system/node/nodeN); -1 if there is none.
 *             Where an HBM node shares the core's cpus (Xeon Phi, Xeon Max
 *             flat mode) it is the DDR node; see ism_topo_core_nodes.
 *   l3        logical index of the core's L3 cache, -1 without one.
 *
 * A topology comes from hwloc (topology_hwloc.c) or from its JSON encoding
 * (topology_json.c).  It is immutable after creation: share it freely
 * between threads for reading.  ism_topo_destroy frees it and all it holds.
 */
#ifndef ISTHMUS_TOPOLOGY_H
#define ISTHMUS_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util/bitmap.h"
#include "lib/util/error.h"

/* Version of the JSON encoding.  Bump it when the encoding changes. */
#define ISM_TOPO_VERSION 1

/* Upper bounds for decoding untrusted input: far above real machines. */
#define ISM_TOPO_MAX_CORES 16384
#define ISM_TOPO_MAX_NUMA 1024

enum ism_core_kind {
    ISM_CORE_STANDARD,    /* the only kind on the machine */
    ISM_CORE_PERFORMANCE, /* hybrid parts: the most efficient-for-speed kind */
    ISM_CORE_EFFICIENCY,  /* hybrid parts: every other kind */
};

struct ism_core {
    int index;
    int os_index;
    int socket;
    int numa;
    int l3;
    ism_bitmap_t *cpus; /* OS cpu ids of its usable hardware threads, never empty */
    enum ism_core_kind kind;
};

struct ism_numa_node {
    int os_index;
    uint64_t memory;    /* local memory in bytes (0 if unknown) */
    ism_bitmap_t *cpus; /* usable OS cpus near it; empty for memory-only nodes.
                         * Nodes may share cpus (an HBM node and a DDR node). */
};

/* The NodeName hardware fields Slurm uses for this topology (slurm.conf). */
struct ism_slurm_hw {
    int cpus;
    int boards;
    int sockets_per_board;
    int cores_per_socket;
    int threads_per_core;
    uint64_t real_memory; /* MiB */
};

struct ism_topo {
    int sockets;       /* Package objects with cores; 1 without packages */
    int l3_caches;     /* L3 caches holding cores */
    int ncores;
    struct ism_core *cores; /* sorted by index */
    int nnuma;
    struct ism_numa_node *numa; /* sorted by os_index */
    ism_bitmap_t *offline;    /* cpus the OS has but that are offline */
    ism_bitmap_t *disallowed; /* online cpus outside our cgroup/cpuset */
    uint64_t memory;          /* bytes: sum of NUMA nodes, or the host's */
    /* What Slurm would use: slurm is the plain view, slurm_numa the view
     * with SlurmdParameters=numa_node_as_socket. */
    struct ism_slurm_hw slurm;
    struct ism_slurm_hw slurm_numa;
    /* Why slurm or slurm_numa is not what slurmd -C prints, when hwloc's
     * view cannot be described to Slurm regularly (see ism_slurm_hw_check);
     * "" otherwise.  Set by the hwloc loader only: not encoded. */
    char slurm_note[256];
    char slurm_numa_note[256];
};

typedef struct ism_topo ism_topo_t;

/* Loading with hwloc.  Each returns a new topology (caller destroys) or
 * NULL with err set.  from_live reads this machine; from_xml an hwloc XML
 * export; from_synthetic an hwloc synthetic description such as
 * "pack:2 numa:2 core:4 pu:2". */
ism_topo_t *ism_topo_from_live(ism_error_t *err);
ism_topo_t *ism_topo_from_xml(const char *path, ism_error_t *err);
ism_topo_t *ism_topo_from_synthetic(const char *description, ism_error_t *err);
/* The XML named by ISTHMUS_HWLOC_XMLFILE if set, else the live machine. */
ism_topo_t *ism_topo_load_default(ism_error_t *err);

void ism_topo_destroy(ism_topo_t *topo); /* NULL ok, keeps errno */

/* JSON encoding (see isthmus-topology(1), "JSON ENCODING").  encode returns
 * a compact canonical string the caller frees: the same topology always
 * gives the same bytes.  decode is strict: every error names the field. */
char *ism_topo_encode(const ism_topo_t *topo, ism_error_t *err);
ism_topo_t *ism_topo_decode(const char *json, ism_error_t *err);

bool ism_topo_equal(const ism_topo_t *a, const ism_topo_t *b);

/* The core with Slurm index, or NULL. */
const struct ism_core *ism_topo_core(const ism_topo_t *topo, int index);
/* The NUMA node with OS index, or NULL. */
const struct ism_numa_node *ism_topo_numa(const ism_topo_t *topo, int os_index);
/* All usable cpus (union of the cores' cpus); caller destroys. */
ism_bitmap_t *ism_topo_cpus(const ism_topo_t *topo);
int ism_topo_threads_max(const ism_topo_t *topo);

/* Extra memory: NUMA nodes that no core names as its own, i.e. memory
 * beside the cores' ordinary memory (HBM on Xeon Phi and Xeon Max, which
 * hwloc attaches to the same cpus as the DDR node; CXL; GPU memory).
 * ism_topo_core_nodes returns the OS indexes of the nodes some core names
 * (caller destroys; NULL with ENOMEM).  ism_topo_add_extra_near adds to
 * mems the extra memory near cpus: nodes not in core_nodes that share a cpu
 * with cpus or have no cpus at all (their locality unknown); 0, or -1 with
 * ENOMEM. */
ism_bitmap_t *ism_topo_core_nodes(const ism_topo_t *topo);
int ism_topo_add_extra_near(const ism_topo_t *topo, const ism_bitmap_t *core_nodes,
                            const ism_bitmap_t *cpus, ism_bitmap_t *mems);

const char *ism_core_kind_name(enum ism_core_kind kind);
int ism_core_kind_parse(const char *s, enum ism_core_kind *kind);

/* Slurm's node model is regular: equal cores per socket, equal threads per
 * core.  Returns 0 when hw describes this topology's cores that way, or -1
 * with err saying why Slurm's view does not fit. */
int ism_slurm_hw_check(const ism_topo_t *topo, const struct ism_slurm_hw *hw, ism_error_t *err);

#endif
