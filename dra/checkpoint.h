/* checkpoint.h - the kubelet plugin's record of the claims it prepared.
 *
 * One file in the plugin's state directory, written atomically after every
 * change (lib/util/file.h), so that after a restart the plugin answers prepare
 * and unprepare as before: a claim it prepared is prepared again from the
 * record, without reading the API server, and gets the same CDI device.
 *
 * File format (our own: read strictly, unknown keys refused):
 *     {"version":1,"claims":[{"uid":U,"namespace":NS,"name":N,
 *       "cpus":"0-3","mems":"0","slurmJob":123 or null,
 *       "devices":[{"request":R,"pool":P,"device":"core-0"},...]},...]}
 *
 * A checkpoint is not locked: one thread at a time.
 */
#ifndef ISTHMUS_DRA_CHECKPOINT_H
#define ISTHMUS_DRA_CHECKPOINT_H

#include <stddef.h>

#include "dra/claim.h"
#include "lib/util/error.h"

#define ISM_CKPT_VERSION 1
#define ISM_CKPT_MAX_BYTES (16 * 1024 * 1024)
#define ISM_CKPT_MAX_CLAIMS 1024

/* A prepared claim.  cpus and mems are canonical cpu lists, owned by the
 * checkpoint that holds the claim. */
struct ism_prepared {
    char namespace[ISM_DRA_LABEL_MAX + 1];
    char name[ISM_DRA_POOL_MAX + 1];
    struct ism_claim_alloc alloc; /* uid, slurm_job, devices */
    char *cpus;
    char *mems;
};

typedef struct ism_ckpt ism_ckpt_t;

ism_ckpt_t *ism_ckpt_create(void);
void ism_ckpt_destroy(ism_ckpt_t *c); /* NULL ok, keeps errno */

/* Decode len bytes (not necessarily NUL-terminated).  A new checkpoint
 * (caller destroys) or NULL with EINVAL and err naming the field. */
ism_ckpt_t *ism_ckpt_decode(const char *text, size_t len, ism_error_t *err);
/* Canonical JSON text (caller frees), or NULL with ENOMEM. */
char *ism_ckpt_encode(const ism_ckpt_t *c, ism_error_t *err);

/* Read path: a missing file is an empty checkpoint; a corrupt one is NULL
 * with EINVAL.  Write path atomically (mode 0600). */
ism_ckpt_t *ism_ckpt_load(const char *path, ism_error_t *err);
int ism_ckpt_save(const ism_ckpt_t *c, const char *path, ism_error_t *err);

int ism_ckpt_count(const ism_ckpt_t *c);
/* The claim with uid, or NULL.  The pointer is valid until the next
 * change of c. */
const struct ism_prepared *ism_ckpt_find(const ism_ckpt_t *c, const char *uid);
const struct ism_prepared *ism_ckpt_at(const ism_ckpt_t *c, int i);
/* Add a copy of p (the strings are copied), replacing a claim of the same
 * uid.  -1 with ENOMEM, or ENOSPC past ISM_CKPT_MAX_CLAIMS. */
int ism_ckpt_put(ism_ckpt_t *c, const struct ism_prepared *p, ism_error_t *err);
/* Remove the claim with uid; 1 if it was there, 0 if not. */
int ism_ckpt_remove(ism_ckpt_t *c, const char *uid);

#endif
