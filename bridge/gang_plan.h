/* gang_plan.h - the gang scheduler's decisions, as pure functions.
 *
 * isthmusd runs pods with spec.schedulerName "isthmus" as atomic Slurm
 * allocations.  Between the watch (gang.c) and the writes (apply.h) every
 * decision is made here, over JSON objects and topologies, with no I/O, so
 * unit tests drive each one:
 *
 *   1. identity  which gang a pod belongs to (gang_id_of_pod), in this
 *                order of precedence:
 *                  the Workload API: spec.schedulingGroup.podGroupName,
 *                    the PodGroup's spec.schedulingPolicy.gang.minCount;
 *                  the scheduler-plugins label scheduling.x-k8s.io/pod-group,
 *                    the PodGroup's spec.minMember;
 *                  the annotations isthmus.io/gang + isthmus.io/gang-size;
 *                  else the pod alone (a gang of one).
 *   2. demand    what a pod asks for (gang_pod_parse): its claims (direct,
 *                or made from a template by kube-controller-manager and
 *                named in status.resourceClaimStatuses), each request's
 *                core count and selectors (cel.h), and the alignment its
 *                constraints ask (matchAttribute on the NUMA node, socket
 *                or L3 cache).
 *   3. request   the Slurm allocation for a gang (gang_alloc_request): one
 *                task per pod, cpus per task = cores x threads per core.
 *   4. split     which cores of the grant each pod and each claim gets
 *                (gang_split), with the planner (planner.h): pods of a node
 *                get disjoint whole cores; a pod whose claims ask alignment
 *                gets all its cores inside one NUMA node (or socket, or L3
 *                cache), checked against the topology, never assumed.
 *   5. commit    each claim's status (gang_claim_status): the allocation and
 *                the pod in reservedFor, written in one status update, as
 *                kube-scheduler does; then the binding (gang_binding).
 *
 * Errors follow error.h.  The errno of a refusal tells the caller what to
 * tell the pod's owner:
 *   EAGAIN   not yet: a claim from a template is not created yet
 *   EINVAL   malformed: a field has the wrong type or value
 *   ENOTSUP  valid, but isthmus does not serve it (say what)
 *   EXDEV    a request for another driver's DeviceClass: not ours
 *   ENOSPC   the grant cannot be split as the claims ask
 * and err names the pod, claim or request and the field.
 *
 * Ownership: structures filled here own their strings and references;
 * clear them with the matching _clear function.  JSON arguments are
 * borrowed.
 */
#ifndef ISTHMUS_BRIDGE_GANG_PLAN_H
#define ISTHMUS_BRIDGE_GANG_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "bridge/apply.h"
#include "bridge/cel.h"
#include "lib/slurm/slurm_adapter.h"
#include "lib/topology/topology.h"
#include "lib/util/bitmap.h"
#include "lib/util/error.h"

#define ISM_SCHEDULER_NAME "isthmus"
#define ISM_ANNOT_GANG "isthmus.io/gang"
#define ISM_ANNOT_GANG_SIZE "isthmus.io/gang-size"
#define ISM_LABEL_POD_GROUP "scheduling.x-k8s.io/pod-group"
#define ISM_GANG_MAX_PODS 4096 /* members of one gang, against absurd sizes */

/* ------------------------------------------------------------ 1. identity */

enum gang_source {
    GANG_WORKLOAD,     /* scheduling.k8s.io PodGroup (Workload API) */
    GANG_COSCHEDULING, /* scheduling.x-k8s.io PodGroup (scheduler-plugins) */
    GANG_ANNOTATION,   /* isthmus.io/gang + isthmus.io/gang-size */
    GANG_ALONE,        /* the pod by itself */
};

struct gang_id {
    enum gang_source source;
    char ns[64];
    char name[254];  /* the group's name (the pod's own when alone) */
    char key[340];   /* "SOURCE:NS/NAME": unique over sources */
    int min;         /* members to wait for; 0 = read it from the group
                        object (gang_min_of_group) */
};

/* The gang of pod.  -1 with EINVAL when the pod has no name or namespace,
 * or its gang annotations are inconsistent (a gang without a size, a size
 * that is not an integer in 1..ISM_GANG_MAX_PODS, a name that is not a
 * DNS subdomain). */
int gang_id_of_pod(const json_t *pod, struct gang_id *id, ism_error_t *err);

/* The minimum count a group object gives (a Workload API PodGroup's
 * spec.schedulingPolicy.gang.minCount, or a scheduler-plugins PodGroup's
 * spec.minMember).  A Workload PodGroup with the basic policy is not a
 * gang: every pod is its own, and *min is 1.  -1 with EINVAL when the
 * field is missing or out of 1..ISM_GANG_MAX_PODS. */
int gang_min_of_group(enum gang_source source, const json_t *group, int *min, ism_error_t *err);

const char *gang_source_name(enum gang_source source);

/* ------------------------------------------------------------ 2. demand */

enum gang_align {
    GANG_ALIGN_NONE,
    GANG_ALIGN_NUMA,   /* resource.kubernetes.io/numaNode */
    GANG_ALIGN_SOCKET, /* cpu.isthmus.io/socket */
    GANG_ALIGN_L3,     /* cpu.isthmus.io/l3cache */
};

struct gang_request {
    char *name;          /* the request's name in the claim */
    int count;           /* cores */
    int nselectors;
    ism_cel_t **selectors;
};

struct gang_claim {
    char *name;          /* the ResourceClaim, in the pod's namespace */
    char *uid;
    char *resource_version;
    int cores;           /* sum of its requests */
    enum gang_align align;
    int nrequests;
    struct gang_request *requests;
    json_t *config; /* the allocation's config: the claim's own opaque config of
                     * our driver ({"mem": ...}), as FromClaim entries; NULL
                     * without one */
};

struct gang_pod {
    char *ns, *name, *uid;
    int cores;           /* sum over its claims */
    uint64_t memory_mib; /* sum of its containers' memory requests */
    enum gang_align align; /* the strictest of its claims' */
    int nclaims;
    struct gang_claim *claims;
};

/* What pod asks of isthmus.  claims maps "NS/NAME" to ResourceClaim
 * objects (an informer's cache).  Every claim of the pod must be there,
 * unallocated or already allocated to exactly this pod (a retry after a
 * partial commit); every request must use DeviceClass cpu.isthmus.io with
 * allocationMode ExactCount; a claim's config may only be our driver's
 * opaque config that the kubelet plugin reads ({"mem": "local"|"hbm"}),
 * which the allocation carries.  Fills out (cleared first) or returns -1 with
 * errno as above and err naming the claim and field. */
int gang_pod_parse(const json_t *pod, const json_t *claims, struct gang_pod *out,
                   ism_error_t *err);
void gang_pod_clear(struct gang_pod *pod); /* NULL ok */

const char *gang_align_name(enum gang_align align);

/* ------------------------------------------------------------ 3. request */

struct gang_defaults {
    const char *partition, *account, *qos; /* NULL or "": Slurm's default */
    uint32_t time_limit;                   /* minutes, 0: the partition's */
};

/* A Slurm request, with the strings it points to. */
struct gang_alloc {
    struct ism_slurm_alloc_req req;
    char name[400];          /* "k8s:NS/NAME" */
    char admin_comment[400]; /* BRIDGE_JOB_TAG "gang=" key: finds it again */
    char partition[128], account[128], qos[128];
};

/* The allocation for the npods pods of gang id: tasks of g cores each,
 * g the greatest common divisor of the pods' core counts (one task per
 * pod when they are alike), cpus per task = g x threads_per_core, at most
 * one node per pod, memory per cpu to cover every pod.  Options come from
 * the first pod's annotations isthmus.io/partition, account, qos,
 * time-limit (Slurm's time formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM,
 * D-HH:MM:SS), over defs.  ENOTSUP for a pod with no cores; EINVAL for a
 * bad annotation. */
int gang_alloc_request(const struct gang_id *id, const struct gang_pod *pods, int npods,
                       const json_t *first_pod, const struct gang_defaults *defs,
                       int threads_per_core, struct gang_alloc *out, ism_error_t *err);

/* Slurm's time formats to minutes (seconds rounded up); -1 with EINVAL. */
int gang_parse_time_limit(const char *s, uint32_t *minutes, ism_error_t *err);

/* ------------------------------------------------------------ 4. split */

/* One node of a grant. */
struct gang_node {
    const char *pool;          /* the Kubernetes Node (and device pool) */
    const ism_topo_t *topo;    /* its published topology */
    const json_t *devices;     /* ism_devices_build(topo): for selectors */
    const ism_bitmap_t *cores; /* the cores Slurm granted there */
};

/* Where one pod goes: its node and, per claim and request, its cores. */
struct gang_place {
    int node;                  /* index into the nodes given */
    ism_bitmap_t *cores;       /* all of the pod's cores */
    ism_bitmap_t **claim_cores; /* per claim of the pod */
    ism_bitmap_t ***request_cores; /* per claim, per request */
    int nclaims;
};

/* Split a grant among pods: every pod gets whole cores on one node, the
 * count its claims ask, disjoint from every other pod's, each request's
 * cores matching its selectors, and a pod asking alignment inside one
 * NUMA node (socket, L3 cache).  Pods fill the nodes in order, as many
 * per node as its granted cores hold.  Returns an array of npods places
 * (gang_places_destroy), or NULL with ENOSPC when the grant cannot be
 * split so (err says which pod and why), or errno of a selector that
 * failed to evaluate. */
struct gang_place *gang_split(const struct gang_pod *pods, int npods,
                              const struct gang_node *nodes, int nnodes, ism_error_t *err);
void gang_places_destroy(struct gang_place *places, int npods); /* NULL ok */

/* ------------------------------------------------------------ 5. commit */

/* The status to PUT for claim c of pod p placed at pool with the cores of
 * place: {allocation: {devices: {results: [{request, driver, pool,
 * device}]}, nodeSelector: {the Node by metadata.name}}, reservedFor:
 * [{resource: pods, name, uid}]}.  A new reference, or NULL (ENOMEM). */
json_t *gang_claim_status(const struct gang_pod *p, int c, const char *pool,
                          const struct gang_place *place);

/* The pods/binding body for p on pool (new reference, or NULL). */
json_t *gang_binding(const struct gang_pod *p, const char *pool);

#define ISM_GANG_FINALIZER "isthmus.io/gang" /* on claims a gang allocated */

extern const ism_kube_resource_t gang_pod_resource;   /* v1 pods */
extern const ism_kube_resource_t gang_claim_resource; /* resource.k8s.io/v1 resourceclaims */

/* The key of object nsname ("NS/NAME") of resource res in the maps of
 * writes in flight and of answers: "GROUP/RESOURCE:NS/NAME" ("pods:NS/NAME"
 * for the core group), since a pod and its claim often share a name. */
#define GANG_KEY_MAX 600
void gang_flight_key(const ism_kube_resource_t *res, const char *nsname, char *out, size_t size);

/* The next writes of a placed gang's commit, level-based: call it again
 * after each answer.  claims and pods map "NS/NAME" to the cached objects;
 * in_flight has the gang_flight_key of each object with a write under way
 * (NULL for none), which gets no other.  For each claim of each pod:
 *   our finalizer missing      -> update: the cached claim with it added
 *   not allocated              -> update-status: gang_claim_status
 *   allocated as planned       -> nothing
 *   allocated otherwise, gone  -> -1 with EBUSY (someone else took it)
 * then, once every claim is allocated as planned, for each pod:
 *   not bound (no nodeName)    -> bind: gang_binding
 *   bound to its node          -> nothing
 *   bound elsewhere, gone      -> -1 with EBUSY
 * The finalizer goes on first, so kube-controller-manager never clears an
 * allocation isthmus made; the allocation and the reservation go in one
 * status write, as kube-scheduler writes them; no pod is bound before
 * every claim of the gang is allocated.  Every write is urgent (the
 * gang's pods wait on each).  Returns 1 when every pod is bound, 0 with
 * writes appended to out (none while writes are in flight), -1 with errno
 * and err. */
int gang_commit_plan(const struct gang_pod *pods, int npods, const struct gang_place *places,
                     const struct gang_node *nodes, const json_t *claims, const json_t *pods_cache,
                     const json_t *in_flight, struct writes *out, ism_error_t *err);

/* The claims of pod that a gang holds while it waits for its members and
 * while Slurm decides (gang_hold_plan): added to out as "NS/NAME" keys,
 * those that exist in claims, are not being deleted, are not allocated and
 * ask for cpu.isthmus.io devices.  Returns how many were added, or -1 (bad
 * arguments, out of memory). */
int gang_pod_claim_keys(const json_t *pod, const json_t *claims, json_t *out);

/* The writes that put our finalizer on the claims a gang will allocate,
 * while Slurm decides, so the commit that follows the grant is one status
 * write per claim and one binding per pod.  held is a JSON object whose
 * keys are the claims' "NS/NAME"; claims and in_flight as above.  A claim
 * not cached (yet) is skipped: the commit plan finds it.  The writes are
 * urgent (the grant may come before their answers).  Returns 1 when every
 * cached claim has the finalizer, 0 with writes appended (or some in
 * flight), -1 with errno and err. */
int gang_hold_plan(const json_t *held, const json_t *claims, const json_t *in_flight,
                   struct writes *out, ism_error_t *err);

/* The writes that undo a commit that did not reach its last binding: each
 * cached claim of the pods that this gang allocated (our finalizer, one of
 * the pods in reservedFor) loses its allocation and reservation in one
 * status write; a claim that has neither any more loses our finalizer.
 * Call it again after each answer, until it returns 1 (nothing left).
 * Bound pods cannot be unbound: the caller deletes them, so a gang is
 * bound whole or not at all. */
int gang_rollback_plan(const struct gang_pod *pods, int npods, const json_t *claims,
                       const json_t *in_flight, struct writes *out, ism_error_t *err);

#endif
