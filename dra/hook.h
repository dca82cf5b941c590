/* hook.h - what isthmus-oci-hook does, as functions tests can drive.
 *
 * The hook is run by the container runtime as an OCI createRuntime hook:
 * the container's cgroup exists and holds its init process, which waits
 * for `start` before it runs the workload.  It gets the OCI state on
 * stdin and, in its arguments (written by the kubelet plugin into the
 * claim's CDI spec), the cpus and NUMA nodes of the claim.  It confines
 * the container's cpuset cgroup to them.
 *
 * Every path is taken under a root directory ("" for the real machine) so
 * tests can run on a fake /proc, /sys and cgroup tree.  Nothing here keeps
 * state; each function says who owns what.
 */
#ifndef ISTHMUS_DRA_HOOK_H
#define ISTHMUS_DRA_HOOK_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/util/bitmap.h"
#include "lib/util/error.h"

/* The OCI state is small (the annotations dominate; Kubernetes caps a
 * pod's at 256 KiB): anything larger is refused. */
#define ISM_OCI_STATE_MAX_BYTES (1024 * 1024)

struct ism_oci_state {
    char id[256];     /* container id; printable ASCII, for messages */
    char status[16];  /* "creating" or "created" */
    pid_t pid;        /* the container's init process, > 0 */
};

/* Parse the OCI state (runtime-spec "State"): len bytes of JSON, not
 * necessarily NUL-terminated.  Tolerant of fields we do not use; strict on
 * the ones we do: ociVersion and id are strings, pid a positive integer
 * that fits a pid_t, status (when present) "creating" or "created" (the
 * only ones a createRuntime or createContainer hook sees).  0, or -1 with
 * EINVAL and err naming the field.  out is written only on success. */
int ism_oci_state_parse(const char *json, size_t len, struct ism_oci_state *out,
                        ism_error_t *err);

enum ism_cgroup_version { ISM_CGROUP_V1 = 1, ISM_CGROUP_V2 = 2 };

struct ism_cgroup {
    enum ism_cgroup_version version;
    char dir[PATH_MAX]; /* the cgroup's directory, root included */
};

/* Find the cpuset cgroup of process pid under root: read
 * <root>/proc/<pid>/cgroup and <root>/proc/self/mountinfo; a cgroup v1
 * hierarchy with the cpuset controller wins over the unified one (hybrid
 * machines); on v2 the directory must offer cpuset.cpus (the controller
 * is enabled by the parent).  0 or -1 with err saying what is missing. */
int ism_cgroup_find(const char *root, pid_t pid, struct ism_cgroup *out, ism_error_t *err);

/* Check cpus and mems against the node: both non-empty, cpus within
 * <root>/sys/devices/system/cpu/online, mems within
 * <root>/sys/devices/system/node/online (node 0 alone when the kernel has
 * no NUMA support).  0 or -1 with EINVAL and err naming the ids that are
 * not online. */
int ism_cpuset_check(const char *root, const ism_bitmap_t *cpus, const ism_bitmap_t *mems,
                     ism_error_t *err);

/* Write cpuset.mems, then cpuset.cpus, of the cgroup.  Mems go first so
 * that at no moment the tasks run on the new cpus with memory still
 * allowed only on the old nodes, and so that each write alone is valid
 * when narrowing (cgroup v1 checks every write against the parent and
 * refuses to empty a cpuset that holds tasks).  When cpus cannot be
 * written, the old mems are put back: the cgroup is left as it was found.
 * After writing, the files are read back and must equal what was asked.
 * 0 or -1 with err naming the file and the kernel's reason. */
int ism_cpuset_apply(const struct ism_cgroup *cg, const ism_bitmap_t *cpus,
                     const ism_bitmap_t *mems, ism_error_t *err);

#endif
