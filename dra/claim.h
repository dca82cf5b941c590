/* claim.h - what a ResourceClaim gives this node, for the kubelet plugin.
 *
 * The kubelet names a claim (namespace, name, UID); the plugin reads it
 * from the API server and keeps, of its allocation, the results of our
 * driver: each one a device "core-<N>" of this node's pool.  The cores are
 * then turned into OS cpus and NUMA nodes with the node's topology model.
 *
 * The claim JSON is untrusted: read tolerantly (unknown fields, nulls),
 * every field we use checked, every error naming the claim and the field.
 */
#ifndef ISTHMUS_DRA_CLAIM_H
#define ISTHMUS_DRA_CLAIM_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/topology/planner.h"
#include "lib/topology/topology.h"
#include "lib/util/bitmap.h"
#include "lib/util/error.h"

#define ISM_DRA_DRIVER "cpu.isthmus.io"
/* The claim label isthmusd sets to the Slurm job id (bridge/model.h). */
#define ISM_DRA_LABEL_SLURM_JOB "isthmus.io/slurm-job"
/* Kubernetes UIDs are 36 characters; we take up to this many [0-9a-z-]. */
#define ISM_DRA_UID_MAX 64
/* Request and device names are DNS labels; pool names DNS subdomains
 * (possibly with '/'-separated parts, each a subdomain). */
#define ISM_DRA_LABEL_MAX 63
#define ISM_DRA_POOL_MAX 253
/* A claim holds at most 32 device results (resource.k8s.io/v1). */
#define ISM_DRA_MAX_RESULTS 32

struct ism_claim_dev {
    char request[ISM_DRA_LABEL_MAX + 1]; /* main request name ("/sub" stripped) */
    char pool[ISM_DRA_POOL_MAX + 1];
    char device[ISM_DRA_LABEL_MAX + 1];  /* "core-<N>" */
    int core;                           /* N */
};

struct ism_claim_alloc {
    char uid[ISM_DRA_UID_MAX + 1];
    long slurm_job; /* from the label, -1 without one */
    enum ism_mem mem; /* the claim's config {"mem": ...}; ISM_MEM_LOCAL without one */
    int ndevs;
    struct ism_claim_dev devs[ISM_DRA_MAX_RESULTS];
};

/* A UID we accept (and may use in file names): 1..ISM_DRA_UID_MAX of
 * [0-9a-z-], not starting with '-'. */
bool ism_dra_uid_valid(const char *uid);

/* N of a device name "core-<N>" (decimal, no leading zero, below
 * ISM_TOPO_MAX_CORES), or -1. */
int ism_dra_core_index(const char *device);

/* Parse len bytes of a ResourceClaim's JSON.  Checks that metadata.uid is
 * uid, that status.allocation is set, and keeps the results of driver:
 * each must be in pool (this node's) and name a device "core-<N>".  The
 * allocation's opaque config for driver (status.allocation.devices.config,
 * copied there from the claim and its DeviceClass by the allocator) sets
 * the memory policy, see ism_plan_params_parse: the last entry that names
 * no request or a request of ours wins.  Fills
 * *out (caller-owned, nothing to free).  -1 with err: EINVAL for a claim
 * that is not for us (another UID, not allocated, another pool, an unknown
 * device, no result of ours) or malformed. */
int ism_claim_parse(const char *json, size_t len, const char *uid, const char *driver,
                    const char *pool, struct ism_claim_alloc *out, ism_error_t *err);

/* The OS cpus of the allocation's cores and the NUMA nodes of their
 * ordinary memory, from topo; with mem hbm also the extra memory near
 * those cpus (the HBM node beside the DDR one, memory-only nodes; see
 * ism_topo_add_extra_near).  New bitmaps into *cpus and *mems (caller destroys)
 * or -1 with err when a core is not on this node.  A core without a NUMA
 * node (no NUMA in the kernel) counts as node 0. */
int ism_claim_cpuset(const struct ism_claim_alloc *alloc, const ism_topo_t *topo,
                     ism_bitmap_t **cpus, ism_bitmap_t **mems, ism_error_t *err);

#endif
