/* model.h - the API objects isthmusd wants to exist, built from Slurm's
 * view of a node or a job.  Pure functions: no I/O, no global state, so
 * the unit tests and the benchmark call them directly.
 *
 * Names are deterministic (a restarted isthmusd finds its own objects,
 * and the API server's AlreadyExists and Conflict answers do the locking):
 *   ResourceSlice  <pool>-cpu.isthmus.io-<i>, i = 0 .. count-1
 *   ResourceClaim  slurm-<job id>-<pool>-<i>
 * Should a name pass 253 characters (a pool name near the limit), the pool
 * part is cut and a hash of the whole pool name is put in its place, so
 * names stay unique and valid.
 *
 * Ownership: every json_t returned is a new reference the caller decrefs;
 * strings returned are the caller's to free.
 */
#ifndef ISTHMUS_BRIDGE_MODEL_H
#define ISTHMUS_BRIDGE_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/util/bitmap.h"
#include "lib/util/error.h"
#include "lib/topology/topology.h"

#define ISM_DRIVER "cpu.isthmus.io"             /* DRA driver and DeviceClass */
#define ISM_SLICE_MAX_DEVICES 128               /* ResourceSlice limit */
#define ISM_CLAIM_MAX_RESULTS 32                /* AllocationResultsMaxSize */
#define ISM_LABEL_SLURM_NODE "isthmus.io/slurm-node" /* on Nodes: maps them; on slices */
#define ISM_LABEL_SLURM_JOB "isthmus.io/slurm-job"   /* on mirrored claims: the job id */
#define ISM_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define ISM_MANAGER "isthmusd"
#define ISM_FINALIZER "isthmus.io/slurm-job"    /* on mirrored claims */
#define ISM_CLAIM_REQUEST "cores"               /* the one request of a mirrored claim */
/* Jobs isthmus itself submits (gangs, gang.h) carry an admin comment
 * starting with this; the mirror leaves them alone, since their pods' own
 * claims already hold their cores. */
#define BRIDGE_JOB_TAG "isthmus.io/"

/* The name of slice i of pool, or of claim i of job on pool.  NULL with
 * EINVAL when pool is not a Node name (DNS-1123 subdomain) or i < 0. */
char *ism_slice_name(const char *pool, int index);
char *ism_claim_name(uint32_t job_id, const char *pool, int index);

/* The devices of topo, one per core in index order:
 *   {"name": "core-<index>", "attributes": {
 *      "resource.kubernetes.io/numaNode": {"int": numa}   (left out if numa < 0)
 *      "cpu.isthmus.io/socket":   {"int": socket}
 *      "cpu.isthmus.io/l3cache":  {"int": l3}              (left out if l3 < 0)
 *      "cpu.isthmus.io/core":     {"int": index}
 *      "cpu.isthmus.io/cpus":     {"string": "0,48"}       (ranged cpu list)
 *      "cpu.isthmus.io/threads":  {"int": number of cpus}
 *      "cpu.isthmus.io/coreType": {"string": "standard" | "performance" | "efficiency"}}}
 * NULL with EINVAL when a value breaks an API limit (a cpu list over 64
 * characters). */
json_t *ism_devices_build(const ism_topo_t *topo, ism_error_t *err);

/* A key of what ism_devices_build reads of topo: two topologies have
 * equal keys iff their device arrays are equal, so nodes of the same
 * hardware share one (cheaper than ism_topo_encode).  The caller frees
 * it; NULL with errno. */
char *ism_devices_key(const ism_topo_t *topo);

/* The slices of one pool: an array of complete ResourceSlice objects
 *   apiVersion resource.k8s.io/v1, kind ResourceSlice,
 *   metadata {name, labels {isthmus.io/slurm-node: slurm_node,
 *                           app.kubernetes.io/managed-by: isthmusd},
 *             ownerReferences [{apiVersion v1, kind Node, name pool,
 *                               uid node_uid, controller: true}]}
 *   spec {driver, pool {name: pool, generation, resourceSliceCount},
 *         nodeName: pool, devices: up to 128 of devices, in order}
 * devices is ism_devices_build's array (borrowed: the slices hold copies).
 * An empty devices array gives one slice with no devices (a node whose
 * cores are all disallowed still has a pool).  pool is the Kubernetes
 * Node's name, slurm_node the Slurm node's (often the same).  NULL with
 * EINVAL and err saying which when pool is not a Node name, node_uid is
 * empty, slurm_node is not a label value, devices is not an array or
 * generation is negative. */
json_t *ism_slices_build(const char *pool, const char *node_uid, const char *slurm_node,
                         const json_t *devices, int64_t generation, ism_error_t *err);

/* A digest of the parts of a slice that isthmusd owns: spec, labels
 * isthmusd sets, and ownerReferences, in hex into out (65 bytes with the
 * NUL).  Two slices have equal digests iff those parts are equal as JSON,
 * whatever the key order or fields the API server adds elsewhere.  Members
 * that are null or empty arrays or objects count as absent: the API server
 * leaves those out of its answers.  -1 (EINVAL) when slice is not an
 * object.
 *
 * It is a tree of SHA-256s of canonical texts (pruned, keys sorted,
 * compact), so the parts can be hashed apart and the device lists once per
 * hardware (ism_slice_parts_build):
 *   devices digest D = canon(spec.devices)
 *   spec digest S    = canon(spec without devices) "\n" D
 *   slice digest     = canon({labels (ours), ownerReferences}) "\n" S
 * ism_slice_digest_devices, ism_slice_spec_digest and ism_slice_meta_digest
 * are the three steps (devices_digest NULL for no devices). */
#define ISM_DIGEST_LEN 65
int ism_slice_digest(const json_t *slice, char out[ISM_DIGEST_LEN]);
int ism_slice_digest_devices(const json_t *devices, char out[ISM_DIGEST_LEN]);
int ism_slice_spec_digest(const json_t *spec, const char *devices_digest,
                          char out[ISM_DIGEST_LEN]);
int ism_slice_meta_digest(const json_t *slice, const char *spec_digest,
                          char out[ISM_DIGEST_LEN]);

/* What a pool's slices hold that depends on the hardware alone, built once
 * per distinct device list and shared by every pool of that hardware, so
 * a pool costs only its names: an object
 *   {"count": n, "text": [devices of slice i as JSON text, ...],
 *    "digest": [devices digest of slice i, ...]}
 * cut as ism_slices_build cuts (128 devices a slice; no devices: one
 * empty slice).  The text has its keys sorted.  devices is
 * ism_devices_build's array (borrowed).  NULL with err (EINVAL: not an
 * array; ENOMEM). */
json_t *ism_slice_parts_build(const json_t *devices, ism_error_t *err);
size_t ism_slice_parts_count(const json_t *parts);
/* The devices digest of slice index, borrowed; NULL when there is none. */
const char *ism_slice_parts_digest(const json_t *parts, size_t index);

/* Slice index of a pool as ism_slices_build makes it, without
 * spec.devices (a new reference): what isthmusd keeps and hashes of a
 * slice it writes.  Its last member is spec, as ism_slice_text needs.
 * NULL with err as ism_slices_build, or EINVAL when parts has no slice
 * index. */
json_t *ism_slice_skeleton(const char *pool, const char *node_uid, const char *slurm_node,
                           const json_t *parts, size_t index, int64_t generation,
                           ism_error_t *err);
/* The whole slice as JSON text: skeleton (changed by nothing but
 * metadata members since ism_slice_skeleton) with the device text of
 * parts' slice index put in as spec.devices.  The caller frees it; NULL
 * with errno. */
char *ism_slice_text(const json_t *skeleton, const json_t *parts, size_t index);

/* The claims mirroring job job_id's cores on one node: an array of
 * ResourceClaim objects in namespace ns, each naming at most 32 devices,
 * in core order:
 *   metadata {name: ism_claim_name(job_id, pool, i), namespace: ns,
 *             labels {isthmus.io/slurm-job: "<id>", isthmus.io/slurm-node:
 *                     slurm_node, app.kubernetes.io/managed-by: isthmusd},
 *             annotations {isthmus.io/slurm-job-name: job_name (if any)},
 *             finalizers [isthmus.io/slurm-job]}
 *   spec.devices.requests [{name: "cores", exactly: {deviceClassName:
 *             cpu.isthmus.io, allocationMode: ExactCount, count: n}}]
 *   status.allocation {devices.results [{request: cores, driver, pool,
 *             device: core-<N>} x n], nodeSelector {nodeSelectorTerms:
 *             [{matchFields: [{key: metadata.name, operator: In,
 *             values: [pool]}]}]}}
 * The caller creates the object without status, then writes status (the
 * API ignores status on create).  An empty cores set gives an empty array.
 * The annotation keeps at most 253 bytes of job_name, cut between
 * characters (a name that is not UTF-8 keeps its printable ASCII, every
 * other byte becomes '?').  NULL with EINVAL and err saying which when
 * job_id is 0, pool is not a Node name, slurm_node is not a label value,
 * cores is NULL or ns is not a namespace name. */
json_t *ism_claims_build(uint32_t job_id, const char *job_name, const char *pool,
                         const char *slurm_node, const ism_bitmap_t *cores, const char *ns,
                         ism_error_t *err);

/* True when the existing claim's status.allocation names exactly the
 * devices (request, driver, pool, device) of the wanted one, in any
 * order, each as often.  False when either has no results array or a
 * result lacks one of those strings (any JSON is safe to pass). */
bool ism_claim_allocation_equal(const json_t *existing, const json_t *wanted);

/* Whether obj's metadata.finalizers holds finalizer (any JSON is safe). */
bool ism_has_finalizer(const json_t *obj, const char *finalizer);
/* A deep copy of obj whose metadata.finalizers holds finalizer once, at
 * the end (add), or not at all; the others stay, in order.  NULL with
 * ENOMEM, or EINVAL when obj has no metadata object. */
json_t *ism_with_finalizer(const json_t *obj, const char *finalizer, bool add);

#endif
