/* policy.h - which Slurm partitions, accounts and qos each namespace's
 * gangs may use, their defaults, and the longest time limit.
 *
 * The admin writes one GangPolicy line per namespace in isthmus.conf(5),
 * a file only cluster admins can write:
 *
 *   GangPolicy=NAMESPACE Field=Value ...
 *
 * NAMESPACE is a namespace's name, or "*" for every namespace without a
 * line of its own.  Fields (any case): Partitions, Accounts, QOS (comma
 * separated Slurm names, or "*" for any), DefaultPartition,
 * DefaultAccount, DefaultQOS (a Slurm name, which the list must allow),
 * MaxTime (Slurm's time formats).
 *
 * The rules (isthmusd(8), "Who may spend which account"):
 *  - no GangPolicy line at all: every namespace may name anything (as
 *    before policies existed); partitions' MaxTime still holds;
 *  - else a namespace with neither its own line nor a "*" line runs no
 *    gang;
 *  - a field whose list is not given allows only the value the namespace
 *    gets without asking (its default);
 *  - a value left to Slurm (none asked, no default) is Slurm's choice and
 *    passes;
 *  - a time limit above the line's MaxTime or above the partition's
 *    MaxTime is refused; a gang without a time limit under a MaxTime gets
 *    the smaller of the two maxima.
 *
 * Pure: no I/O.  The policy owns its strings.  One thread.
 */
#ifndef ISTHMUS_BRIDGE_POLICY_H
#define ISTHMUS_BRIDGE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "bridge/gang_plan.h"
#include "lib/slurm/slurm_adapter.h"
#include "lib/util/error.h"

/* One field's allowed values. */
struct policy_list {
    bool given; /* the line names the field */
    bool any;   /* "*" */
    char **v;
    int n;
};

struct policy_rule {
    char *ns; /* a namespace, or "*" */
    struct policy_list partitions, accounts, qos;
    char *def_partition, *def_account, *def_qos; /* NULL: none */
    uint32_t max_time;                             /* minutes, 0: none */
    char *origin;                                  /* "FILE:LINE", or "" */
};

struct policy {
    struct policy_rule *rules;
    int n;
};

/* Parse one GangPolicy value (the text after "GangPolicy=") into p.
 * origin (may be NULL) is kept for messages.  -1 with EINVAL and err
 * naming the field (unknown field, a field given twice, a bad name or
 * time, a default its list does not allow, a namespace given twice);
 * ENOMEM.  p is unchanged on failure. */
int policy_add(struct policy *p, const char *line, const char *origin, ism_error_t *err);
/* Free what p holds; p is empty after.  NULL ok. */
void policy_clear(struct policy *p);

/* The line for ns: its own, else "*", else NULL. */
const struct policy_rule *policy_rule_for(const struct policy *p, const char *ns);

/* The defaults gangs of ns get: the line's, over global (isthmus.conf's
 * GangPartition, GangAccount, GangQOS, GangTimeLimit).  out borrows
 * strings from p and global. */
void policy_defaults(const struct policy *p, const char *ns, const struct gang_defaults *global,
                     struct gang_defaults *out);

/* Check a gang's Slurm request (built over policy_defaults' defaults defs)
 * for namespace ns against p and the partitions' limits (parts, may be
 * NULL with nparts 0).  0: allowed, and req->time_limit set when it was
 * unset and a MaxTime applies.  -1 with EACCES and err saying the
 * namespace, the field (with its annotation) and what is allowed. */
int policy_check(const struct policy *p, const char *ns, const struct gang_defaults *defs,
                 const struct ism_slurm_partition *parts, int nparts,
                 struct ism_slurm_alloc_req *req, ism_error_t *err);

#endif
