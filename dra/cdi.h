/* cdi.h - the CDI spec the kubelet plugin writes for a prepared claim.
 *
 * One spec file per claim, one device in it, named claim-<uid>, of kind
 * cpu.isthmus.io/claim: the runtime adds its environment to the container
 * and runs its createRuntime hook, isthmus-oci-hook(8), which confines the
 * container's cpuset.  The hook gets the cpus and memory nodes as its own
 * arguments: the container's environment is the pod author's to change.
 *
 * Environment given to the container:
 *     ISTHMUS_CPUS=<cpu list>  ISTHMUS_MEMS=<node list>
 *     ISTHMUS_CLAIM_UID=<uid>  ISTHMUS_SLURM_JOB_ID=<id> (when the claim has one)
 */
#ifndef ISTHMUS_DRA_CDI_H
#define ISTHMUS_DRA_CDI_H

#include <stddef.h>

#include "dra/checkpoint.h"
#include "lib/util/error.h"

/* The oldest CDI version with everything we use (env, hooks), so older
 * runtimes accept the spec too. */
#define ISM_CDI_VERSION "0.5.0"
#define ISM_CDI_KIND ISM_DRA_DRIVER "/claim"

/* "cpu.isthmus.io/claim=claim-<uid>" into buf.  -1 with ENAMETOOLONG. */
int ism_cdi_device_id(const char *uid, char *buf, size_t size);
/* "<dir>/cpu.isthmus.io-claim-<uid>.json" into buf. */
int ism_cdi_spec_path(const char *dir, const char *uid, char *buf, size_t size);
/* The spec's JSON (caller frees), or NULL with err. */
char *ism_cdi_spec(const struct ism_prepared *p, const char *hook_path, ism_error_t *err);

#endif
