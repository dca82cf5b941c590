/* taint.h - the NoSchedule taint on the Nodes isthmusd bridges.
 *
 * A bridged Node's cores belong to Slurm: kube-scheduler must not place an
 * ordinary pod there, or it would take cpu time Slurm has given to a job.
 * isthmusd adds the taint BRIDGE_TAINT_KEY:NoSchedule to every Node whose
 * Slurm node it publishes (TaintBridgedNodes=yes) and never removes it.
 * Its own gang pods are bound through pods/binding, which no taint stops
 * (isthmusd(8), "Bridged Nodes").
 *
 * Pure: no client, no I/O.
 */
#ifndef ISTHMUS_BRIDGE_TAINT_H
#define ISTHMUS_BRIDGE_TAINT_H

#include <jansson.h>
#include <stdbool.h>

#define BRIDGE_TAINT_KEY "isthmus.io/bridged"

/* True when node (a Node object, borrowed) has a taint with key
 * BRIDGE_TAINT_KEY, whatever its effect (an admin's NoExecute stays). */
bool taint_present(const json_t *node);

/* The merge patch that adds BRIDGE_TAINT_KEY:NoSchedule to node's taints,
 * keeping the others, with the Node's resourceVersion as a precondition
 * (a concurrent change of the taints makes it fail with a conflict rather
 * than be lost).  A new reference the caller owns; NULL when the taint is
 * there already, or (errno EINVAL) for a Node without a resourceVersion
 * or with malformed taints, or ENOMEM. */
json_t *taint_patch(const json_t *node);

#endif
