/* extra_table.h - the topologies a table of Slurm nodes publishes.
 *
 * Every node read brings every node's Extra field (node_extra.h): a full
 * encoding on the few nodes that hold one per distinct machine, a
 * reference elsewhere.  This turns such a table into one shared, decoded
 * topology per node, cheaply enough to run on every change of slurmctld's
 * node table (several a second on a busy cluster):
 *
 *   - a node whose Extra text is the same as at the last update keeps what
 *     it had (a resolved reference stays resolved: the digest is the
 *     topology's identity, so a holder that goes away changes nothing);
 *   - each distinct Extra text is decoded once, however many nodes hold it;
 *   - a reference resolves to the topology of any node of this table, or
 *     of the last one, with that digest.
 *
 * Nodes with the same topology share one ism_topo_t: readers may compare
 * topology pointers to find equal machines.
 *
 * Not thread-safe: one table per reader.  The shares it hands out are
 * reference counted atomically, so snapshots holding them may be released
 * on any thread.
 */
#ifndef ISTHMUS_EXTRA_TABLE_H
#define ISTHMUS_EXTRA_TABLE_H

#include "lib/topology/node_extra.h"
#include "lib/topology/topology.h"

/* One node's view of its published topology. */
struct ism_topo_share {
    int refs;                /* atomic */
    ism_topo_t *topo;        /* NULL when none is usable: see error */
    char digest[ISM_EXTRA_DIGEST_LEN + 1]; /* of topo's encoding; "" without topo */
    char ref[ISM_EXTRA_DIGEST_LEN + 1]; /* the digest the Extra names, "" when
                                           it holds no reference */
    char error[sizeof(((ism_error_t *)0)->text)]; /* why topo is NULL; "" when
                                                     nothing was published */
};

/* A new reference to share (share returned). */
struct ism_topo_share *ism_topo_share_get(struct ism_topo_share *share);
/* Drop a reference; the last one frees the share and its topology. NULL ok. */
void ism_topo_share_put(struct ism_topo_share *share);

typedef struct ism_extra_table ism_extra_table_t;

ism_extra_table_t *ism_extra_table_create(void); /* NULL with errno ENOMEM */
void ism_extra_table_destroy(ism_extra_table_t *t); /* NULL ok, keeps errno */

/* The topologies of a node table of n nodes: names[i] and extras[i] (""
 * when empty) of node i; names unique.  Sets shares[i] to a new reference
 * the caller puts, never NULL on success.  Remembers this table for the
 * next call.  Returns 0, or -1 with errno ENOMEM (no share is then set,
 * and the table remembers the previous call). */
int ism_extra_table_update(ism_extra_table_t *t, int n, const char *const *names,
                           const char *const *extras, struct ism_topo_share **shares);

#endif
