/* topology_cache.h - a node's topology model kept in a file, for speed.
 *
 * Loading the topology with hwloc takes milliseconds to tens of
 * milliseconds (it walks /sys for every cpu and cache); a job launch must
 * not pay that per task.  The cache file holds the model's JSON encoding
 * (topology.h) under a one-line header with a key.  The key is a hash of
 * what the kernel says about the machine's cpus and NUMA nodes (the sysfs
 * lists of possible and online cpus and nodes, each node's cpu list, each
 * online cpu's core and package id) plus the encoding version, so it is
 * cheap to recompute (a few small reads) and changes when cpus go on- or
 * offline, SMT is switched, nodes appear, or the encoding changes.  A
 * cache whose key differs is stale.
 *
 * File format, all text:
 *     isthmus-topology-cache 1 <key>\n
 *     <JSON encoding>\n
 */
#ifndef ISTHMUS_TOPOLOGY_CACHE_H
#define ISTHMUS_TOPOLOGY_CACHE_H

#include "lib/util/error.h"
#include "lib/topology/topology.h"

#define ISM_TOPO_CACHE_KEY_LEN 16 /* hex digits, without the NUL */
/* A cache file larger than this is corrupt (a 16384-core model is < 4 MiB). */
#define ISM_TOPO_CACHE_MAX_BYTES (16 * 1024 * 1024)

/* The key of the machine described by sysfs_root (normally "/sys") into
 * key (ISM_TOPO_CACHE_KEY_LEN + 1 bytes).  -1 with err when the cpu lists
 * cannot be read. */
int ism_topo_cache_key(const char *sysfs_root, char *key, ism_error_t *err);

/* Read the model from path if its key equals key.  Returns a new topology
 * (caller destroys), or NULL with errno ENOENT (no file), ESTALE (another
 * key), EFBIG (larger than ISM_TOPO_CACHE_MAX_BYTES), EINVAL (corrupt:
 * header or JSON), EISDIR or EINVAL (not a regular file), or the errno of
 * the failed open or read, and err saying which (lib/util/file.h). */
ism_topo_t *ism_topo_cache_read(const char *path, const char *key, ism_error_t *err);

/* Write topo under key to path atomically (a temporary file in the same
 * directory, renamed over path), mode 0644, creating the directory (0755)
 * if missing.  -1 with err on failure; path is then unchanged. */
int ism_topo_cache_write(const char *path, const char *key, const ism_topo_t *topo,
                         ism_error_t *err);

#endif
