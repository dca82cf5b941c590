/* cpu_manager.h - the kubelet's CPU manager policy, as the running
 * kubelet recorded it.
 *
 * The kubelet's CPU manager keeps a checkpoint, <root-dir>/cpu_manager_state,
 * that the kubelet writes at start, before it runs any pod, and after each
 * change: {"policyName":"none"|"static","defaultCpuSet":...,...}.  It holds
 * the policy the kubelet really runs with, wherever that came from (the
 * config file, a drop-in, a flag), and the kubelet refuses to start when
 * its configuration names another, so it cannot be stale.
 *
 * Only "none" leaves a container's cpuset alone.  Under "static" the
 * kubelet's reconcile loop writes its shared pool over the cpuset
 * isthmus-oci-hook wrote, within one reconcile period, and moves the
 * container off its claimed cores when another pod gets them exclusively
 * (measured with the pinned kubelet; isthmus-kubelet-plugin(8)).
 */
#ifndef ISTHMUS_DRA_CPU_MANAGER_H
#define ISTHMUS_DRA_CPU_MANAGER_H

#include <stddef.h>

#include "lib/util/error.h"

/* The largest state file read: the kubelet's holds one entry per
 * container with exclusive cpus. */
#define ISM_CPU_MANAGER_STATE_MAX (4u << 20)

/* The policy name in the state text (len bytes, not NUL-terminated).
 * Copies it into policy (size bytes) and returns 0; -1 with EINVAL and
 * err when the text is not a JSON object whose "policyName" is a string
 * of 1 to size-1 letters, digits, '-' or '_'.  Other members are ignored
 * (the kubelet adds some between releases). */
int ism_cpu_manager_parse(const char *text, size_t len, char *policy, size_t size,
                          ism_error_t *err);

/* Read the state file path and parse it.  -1 with errno ENOENT when it
 * does not exist (a kubelet that has not started yet); -1 with errno and
 * err naming the file for any other failure. */
int ism_cpu_manager_read(const char *path, char *policy, size_t size, ism_error_t *err);

/* Can the plugin run beside the kubelet's policy?  0 for "none"; -1 with
 * EPERM and err saying why not, naming path, for any other. */
int ism_cpu_manager_check(const char *policy, const char *path, ism_error_t *err);

#endif
