/* node_extra.h - the isthmus part of a Slurm node's Extra field.
 *
 * Slurm's node Extra field is free text that admins and other tools may
 * use too.  isthmus keeps its value under the key "isthmus" of a JSON
 * object, and leaves every other key alone.  The value has two forms:
 *
 *   full        the topology's JSON encoding itself (topology.h), an object:
 *                   {"isthmus":{"version":1,...}}
 *   reference   a string naming the topology by the digest of its encoding,
 *               which some other node holds in full:
 *                   {"isthmus":"@DIGEST"}
 *
 * Why references: every node read of every Slurm client (sinfo, scontrol,
 * squeue's node lookups, isthmusd) carries every node's Extra.  A full
 * encoding is 0.4-8 KB, more than Slurm's own record of the node; a
 * cluster has few distinct machines, so one node per machine holds the
 * encoding and the others name it in 27 bytes (each byte counts: it travels
 * once per node in every node read, where a node's own record is about 340
 * bytes; so the reference names no holder, whose name could be as long as
 * the rest).  The digest is the identity: a reader takes the encoding from
 * any node that holds one with that digest.  The leading '@' marks version
 * 1 of the reference form (another version will use another mark); the
 * full form carries its own "version".
 *
 * These functions only transform text; the Slurm adapter (slurm_adapter.h)
 * reads and writes the field.  They link no libslurm, so the SPANK plugin
 * and the fuzz target can use them.
 *
 * Extra text is untrusted: it may be anything an admin typed.
 */
#ifndef ISTHMUS_NODE_EXTRA_H
#define ISTHMUS_NODE_EXTRA_H

#include <stdbool.h>
#include "lib/util/error.h"

#define ISM_EXTRA_KEY "isthmus"

/* Largest Extra text we parse.  Slurm itself accepts up to 1 GiB per
 * string (MAX_PACK_MEM_LEN in 22.05's pack.c); a topology of the largest
 * machine we know is about 40 KB, so this bounds hostile input only. */
#define ISM_EXTRA_MAX_BYTES (16 * 1024 * 1024)

#define ISM_EXTRA_REF_PREFIX "@"
/* Hex digits of a digest: 48 bits.  Distinct machines in one cluster are
 * few (tens), so an accidental collision is out of reach (about 1e-12 for
 * a hundred); Extra is written by Slurm admins only, so forgery is not a
 * concern. */
#define ISM_EXTRA_DIGEST_LEN 12
/* The digest of a topology's canonical encoding (ism_topo_encode's text)
 * into digest (ISM_EXTRA_DIGEST_LEN + 1 bytes): the first 48 bits of its
 * FNV-1a 64-bit hash in lower-case hex. */
void ism_extra_digest(const char *encoding, char *digest);

/* The reference value for digest, as JSON text (a quoted string; caller
 * frees) for ism_extra_merge.  NULL with EINVAL when digest is not
 * ISM_EXTRA_DIGEST_LEN lower-case hex digits. */
char *ism_extra_ref_format(const char *digest, ism_error_t *err);

/* Read a value as ism_extra_get returns it.  Returns 1 and copies the
 * digest it names into digest (ISM_EXTRA_DIGEST_LEN + 1 bytes; may be
 * NULL) when it is a reference; 0 when it is not a string (a full
 * encoding: decode it); -1 with EINVAL and err naming the problem when it
 * is a string that is no valid reference, or value is NULL. */
int ism_extra_ref_parse(const char *value, char *digest, ism_error_t *err);

/* Merge value_json, the JSON text of our value (a full encoding from
 * ism_topo_encode, or a reference from ism_extra_ref_format), into the
 * Extra text extra (NULL or "" when the field is empty).
 *
 * Returns 1 and sets *merged to the new Extra text (compact JSON, other
 * keys kept in their order; caller frees) when it differs from extra;
 * returns 0 and sets *merged to NULL when extra already holds an equal
 * value under the key, so the caller needs no update RPC.
 *
 * Returns -1 with err set and *merged NULL when value_json is not a JSON
 * object or string (EINVAL), or extra is not a JSON object (EEXIST: the message says
 * to clear the field or pass force).  With force a non-object extra is
 * replaced by a new object holding only our key.  Extra keys other than
 * ours are re-serialised compactly: their values stay equal as JSON, their
 * spacing does not. */
int ism_extra_merge(const char *extra, const char *value_json, bool force, char **merged,
                    ism_error_t *err);

/* The value of our key in extra as compact JSON text (caller frees).
 * NULL with ENOENT when extra is empty or has no such key, EINVAL when extra
 * is not a JSON object; err says which. */
char *ism_extra_get(const char *extra, ism_error_t *err);

#endif
