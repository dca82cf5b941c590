/* node.h - prepare and unprepare claims on this node, idempotently.
 *
 * The state a kubelet plugin keeps between calls and across restarts: the
 * checkpoint of prepared claims (checkpoint.h) in state_dir, and one CDI
 * spec per prepared claim in cdi_dir (cdi.h).  The gRPC layer asks
 * ism_node_find first: a claim already prepared needs no API read.
 *
 * Order of writes, so that a crash at any point leaves nothing that a
 * retry does not clean up:
 *   prepare    spec file, then checkpoint (a spec without a record is
 *              removed by unprepare, whose file name is deterministic);
 *   unprepare  spec file, then checkpoint (a record without a spec is
 *              re-prepared by rewriting the spec from the record).
 *
 * Not locked: one thread at a time (the plugin serves calls in order).
 */
#ifndef ISTHMUS_DRA_NODE_H
#define ISTHMUS_DRA_NODE_H

#include <stddef.h>

#include "dra/checkpoint.h"
#include "lib/topology/topology.h"
#include "lib/util/error.h"

struct ism_node_opts {
    const char *state_dir; /* holds checkpoint.json; created 0700 if missing */
    const char *cdi_dir;   /* where specs go (/var/run/cdi); created 0755 */
    const char *hook_path; /* absolute path of isthmus-oci-hook */
    const char *driver;    /* ISM_DRA_DRIVER */
    const char *pool;      /* this node's pool: the Node's name */
    const ism_topo_t *topo; /* borrowed; must outlive the node */
};

typedef struct ism_node ism_node_t;

/* Load the checkpoint.  A corrupt checkpoint does not stop the plugin: it
 * is renamed to checkpoint.json.corrupt, the node starts empty, and
 * ism_node_warning says so (unprepare still removes specs by name, and
 * prepare recomputes from the API).  NULL with err for missing options or
 * directories that cannot be made. */
ism_node_t *ism_node_create(const struct ism_node_opts *opts, ism_error_t *err);
void ism_node_destroy(ism_node_t *n); /* NULL ok, keeps errno */

/* What create had to say (a corrupt checkpoint moved aside), or "". */
const char *ism_node_warning(const ism_node_t *n);
const ism_ckpt_t *ism_node_checkpoint(const ism_node_t *n);

/* The prepared claim with uid, or NULL.  Valid until the next change. */
const struct ism_prepared *ism_node_find(const ism_node_t *n, const char *uid);

/* Prepare claim uid (namespace/name) from its JSON as read from the API
 * server (claim_json may be NULL when the claim is already prepared: the
 * record is used, and its spec rewritten).  *out is the record, valid
 * until the next change.  -1 with err: the claim is not for this node
 * (claim.h), a core is not on this node, or a file cannot be written;
 * nothing is left behind then. */
int ism_node_prepare(ism_node_t *n, const char *ns, const char *name, const char *uid,
                     const char *claim_json, size_t len, const struct ism_prepared **out,
                     ism_error_t *err);

/* Remove the claim's spec and record.  An unknown claim is a success. */
int ism_node_unprepare(ism_node_t *n, const char *uid, ism_error_t *err);

#endif
