/* slurm_conf.h - is there a slurm.conf libslurm can live with?
 *
 * libslurm 22.05 reads its configuration at the first call.  When the file
 * is missing, unreadable or lacks what it must name, it does not return an
 * error: it retries for about 60 s and then leaves the process through
 * fatal() ("ClusterName needs to be specified", "Could not establish a
 * configuration source").  Every Slurm-facing program calls
 * ism_slurm_conf_check() before its first libslurm call, so that it can
 * answer at once with its own one-line message and exit code.
 *
 * This file calls nothing of libslurm.
 */
#ifndef ISTHMUS_SLURM_CONF_H
#define ISTHMUS_SLURM_CONF_H

#include <stddef.h>

#include "lib/util/error.h"

/* Where libslurm looks when neither a path nor SLURM_CONF is given: its
 * compiled-in default (Debian's Slurm: /etc/slurm/slurm.conf), then the
 * copy slurmd keeps in configless mode. */
#ifndef ISM_SLURM_CONF_DEFAULT
#define ISM_SLURM_CONF_DEFAULT "/etc/slurm/slurm.conf"
#endif
#define ISM_SLURM_CONF_CONFIGLESS "/run/slurm/conf/slurm.conf"

/* Resolve the file libslurm would read, in libslurm's order: conf (when
 * not NULL or ""), else $SLURM_CONF, else ISM_SLURM_CONF_DEFAULT if it
 * exists, else ISM_SLURM_CONF_CONFIGLESS if it exists, else configless
 * Slurm through DNS (a _slurmctld._tcp SRV record).  Then check it the way
 * libslurm would die on it: the file (and each file it includes) exists,
 * is a readable regular text file, and names a ClusterName and a
 * SlurmctldHost (or ControlMachine).
 *
 * On success returns 0 and copies the path into used (used[0] == '\0'
 * for configless DNS); used may be NULL.  On failure returns -1 with
 * errno (ENOENT, EACCES, EISDIR, EINVAL, ...) and err holding one line
 * that names the file, where its name came from, and the problem. */
int ism_slurm_conf_check(const char *conf, char *used, size_t usedsz, ism_error_t *err);

#endif
