/* node_extra.h - the isthmus part of a Slurm node's Extra field.
 *
 * Slurm's node Extra field is free text that admins and other tools may
 * use too.  isthmus keeps its topology JSON (topology.h) there as the value
 * of the key "isthmus" of a JSON object, and leaves every other key alone.
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

/* Merge topology JSON text topo_json (an object, e.g. from ism_topo_encode)
 * into the Extra text extra (NULL or "" when the field is empty).
 *
 * Returns 1 and sets *merged to the new Extra text (compact JSON, other
 * keys kept in their order; caller frees) when it differs from extra;
 * returns 0 and sets *merged to NULL when extra already holds an equal
 * value under the key, so the caller needs no update RPC.
 *
 * Returns -1 with err set and *merged NULL when topo_json is not a JSON
 * object (EINVAL), or extra is not a JSON object (EEXIST: the message says
 * to clear the field or pass force).  With force a non-object extra is
 * replaced by a new object holding only our key.  Extra keys other than
 * ours are re-serialised compactly: their values stay equal as JSON, their
 * spacing does not. */
int ism_extra_merge(const char *extra, const char *topo_json, bool force, char **merged,
                    ism_error_t *err);

/* The value of our key in extra as compact JSON text (caller frees).
 * NULL with ENOENT when extra is empty or has no such key, EINVAL when extra
 * is not a JSON object; err says which. */
char *ism_extra_get(const char *extra, ism_error_t *err);

#endif
