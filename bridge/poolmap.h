/* poolmap.h - which Kubernetes Node is the pool of which Slurm node.
 *
 * A Slurm node's pool is the Node labelled isthmus.io/slurm-node=<name>,
 * else the Node called <name> unless that Node is labelled for another
 * Slurm node.  Two Nodes labelled for one Slurm node: the smallest name
 * wins (and a warning is logged).  An empty label counts as none.  Each
 * Node is the pool of at most one Slurm node, so the map inverts.
 *
 * Pure over the Node objects it is given: no I/O but the log, no client.
 * Ownership: the map owns its strings; names returned are borrowed and
 * live until the next poolmap_rebuild or poolmap_destroy.  One thread.
 */
#ifndef ISTHMUS_BRIDGE_POOLMAP_H
#define ISTHMUS_BRIDGE_POOLMAP_H

#include <jansson.h>
#include <stddef.h>

#include "lib/util/error.h"

struct poolmap;

/* An empty map.  NULL with ENOMEM. */
struct poolmap *poolmap_create(ism_error_t *err);
/* NULL is fine; keeps errno. */
void poolmap_destroy(struct poolmap *pm);

/* Called for a pool whose Slurm node changed (it gained, lost or changed
 * its Slurm node).  pool is borrowed for the call. */
typedef void (*poolmap_moved_f)(void *arg, const char *pool);

/* Rebuild the map from nodes, an object Node name -> Node (an informer's
 * cache; borrowed, only metadata.labels is read), calling moved (if not
 * NULL) for every pool that moved.  -1 with ENOMEM leaves the map as it
 * was. */
int poolmap_rebuild(struct poolmap *pm, const json_t *nodes, poolmap_moved_f moved, void *arg,
                    ism_error_t *err);

/* The pool (Node name) of Slurm node slurm_node, or NULL. */
const char *poolmap_pool_of(const struct poolmap *pm, const char *slurm_node);
/* The Slurm node whose pool is the Node pool, or NULL. */
const char *poolmap_slurm_of(const struct poolmap *pm, const char *pool);
/* Slurm nodes that have a pool. */
size_t poolmap_size(const struct poolmap *pm);

/* The label isthmus.io/slurm-node of a Node, or NULL.  Borrowed. */
const char *poolmap_node_label(const json_t *node);

#endif
