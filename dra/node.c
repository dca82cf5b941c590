/* node.c - see node.h */
#include <config.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dra/cdi.h"
#include "dra/claim.h"
#include "lib/util/file.h"
#include "dra/node.h"

struct ism_node {
    char state_dir[PATH_MAX / 2];
    char cdi_dir[PATH_MAX / 2];
    char hook_path[PATH_MAX / 2];
    char driver[ISM_DRA_POOL_MAX + 1];
    char pool[ISM_DRA_POOL_MAX + 1];
    char ckpt_path[PATH_MAX];
    const ism_topo_t *topo;
    ism_ckpt_t *ckpt;
    char warning[600];
};

static int copy_opt(char *dst, size_t size, const char *src, const char *what, ism_error_t *err)
{
    if (!src || !src[0])
        return ism_err(err, EINVAL, "%s: not set", what);
    if (strlen(src) >= size)
        return ism_err(err, ENAMETOOLONG, "%s: too long", what);
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int make_dir(const char *dir, mode_t mode, ism_error_t *err)
{
    if (mkdir(dir, mode) < 0 && errno != EEXIST)
        return ism_err(err, errno, "%s: %s", dir, strerror(errno));
    return 0;
}

ism_node_t *ism_node_create(const struct ism_node_opts *o, ism_error_t *err)
{
    ism_error_t lerr = ISM_ERROR_INIT;
    ism_node_t *n;

    if (!o || !o->topo)
        return ism_err(err, EINVAL, "node: invalid argument"), NULL;
    if (!(n = calloc(1, sizeof(*n))))
        return ism_err(err, ENOMEM, "out of memory"), NULL;
    if (copy_opt(n->state_dir, sizeof(n->state_dir), o->state_dir, "state directory", err) < 0 ||
        copy_opt(n->cdi_dir, sizeof(n->cdi_dir), o->cdi_dir, "CDI directory", err) < 0 ||
        copy_opt(n->hook_path, sizeof(n->hook_path), o->hook_path, "hook path", err) < 0 ||
        copy_opt(n->driver, sizeof(n->driver), o->driver, "driver", err) < 0 ||
        copy_opt(n->pool, sizeof(n->pool), o->pool, "pool", err) < 0)
        goto fail;
    if (n->hook_path[0] != '/') {
        ism_err(err, EINVAL, "hook path %s: not absolute", n->hook_path);
        goto fail;
    }
    n->topo = o->topo;
    snprintf(n->ckpt_path, sizeof(n->ckpt_path), "%s/checkpoint.json", n->state_dir);
    if (make_dir(n->state_dir, 0700, err) < 0 || make_dir(n->cdi_dir, 0755, err) < 0)
        goto fail;
    if (!(n->ckpt = ism_ckpt_load(n->ckpt_path, &lerr))) {
        char aside[PATH_MAX + 16];

        if (errno != EINVAL) {
            ism_err(err, errno, "%s", lerr.text);
            goto fail;
        }
        snprintf(aside, sizeof(aside), "%s.corrupt", n->ckpt_path);
        if (rename(n->ckpt_path, aside) < 0) {
            ism_err(err, errno, "%s; and it cannot be moved aside: %s", lerr.text,
                    strerror(errno));
            goto fail;
        }
        /* Truncation keeps the front, the cause. */
        if (snprintf(n->warning, sizeof(n->warning), "%s; moved to %s, starting with no claim",
                     lerr.text, aside) < 0)
            n->warning[0] = '\0';
        if (!(n->ckpt = ism_ckpt_create())) {
            ism_err(err, ENOMEM, "out of memory");
            goto fail;
        }
    }
    return n;
fail:
    ism_node_destroy(n);
    return NULL;
}

void ism_node_destroy(ism_node_t *n)
{
    int e = errno;

    if (n) {
        ism_ckpt_destroy(n->ckpt);
        free(n);
    }
    errno = e;
}

const char *ism_node_warning(const ism_node_t *n)
{
    return n ? n->warning : "";
}

const ism_ckpt_t *ism_node_checkpoint(const ism_node_t *n)
{
    return n ? n->ckpt : NULL;
}

const struct ism_prepared *ism_node_find(const ism_node_t *n, const char *uid)
{
    return n ? ism_ckpt_find(n->ckpt, uid) : NULL;
}

static int write_spec(const ism_node_t *n, const struct ism_prepared *p, ism_error_t *err)
{
    char path[PATH_MAX], *spec;
    int rc;

    if (ism_cdi_spec_path(n->cdi_dir, p->alloc.uid, path, sizeof(path)) < 0)
        return ism_err(err, ENAMETOOLONG, "CDI directory: too long");
    if (!(spec = ism_cdi_spec(p, n->hook_path, err)))
        return -1;
    /* Not fsync'ed: a spec lost in a crash is rewritten from the record by
     * the next prepare, which checks that it is there.  The checkpoint is
     * the one file that must survive. */
    rc = ism_file_write_atomic(path, spec, strlen(spec), 0644, false, err);
    free(spec);
    return rc;
}

static int remove_spec(const ism_node_t *n, const char *uid, ism_error_t *err)
{
    char path[PATH_MAX];

    if (ism_cdi_spec_path(n->cdi_dir, uid, path, sizeof(path)) < 0)
        return ism_err(err, ENAMETOOLONG, "CDI directory: too long");
    if (unlink(path) < 0 && errno != ENOENT)
        return ism_err(err, errno, "%s: %s", path, strerror(errno));
    return 0;
}

int ism_node_prepare(ism_node_t *n, const char *ns, const char *name, const char *uid,
                     const char *claim_json, size_t len, const struct ism_prepared **out,
                     ism_error_t *err)
{
    const struct ism_prepared *known;
    struct ism_prepared *p = NULL;
    ism_bitmap_t *cpus = NULL, *mems = NULL;
    int rc = -1;

    if (!n || !ns || !name || !uid || !out)
        return ism_err(err, EINVAL, "prepare: invalid argument");
    if (!ism_dra_uid_valid(uid))
        return ism_err(err, EINVAL, "prepare: claim UID is not a UID");
    if ((known = ism_ckpt_find(n->ckpt, uid))) {
        /* Prepared before (perhaps by an earlier run): the same answer,
         * and the spec put back if it went missing. */
        char path[PATH_MAX];

        if ((ism_cdi_spec_path(n->cdi_dir, uid, path, sizeof(path)) < 0 || access(path, F_OK) < 0) &&
            write_spec(n, known, err) < 0)
            return ism_errprefix(err, "claim %s/%s", ns, name);
        *out = known;
        return 0;
    }
    if (!claim_json)
        return ism_err(err, EINVAL, "claim %s/%s: not prepared, and no claim to prepare", ns,
                       name);
    if (strlen(ns) >= sizeof(p->namespace) || strlen(name) >= sizeof(p->name))
        return ism_err(err, EINVAL, "claim %.64s/%.64s: namespace or name too long", ns, name);
    if (!(p = calloc(1, sizeof(*p))))
        return ism_err(err, ENOMEM, "out of memory");
    snprintf(p->namespace, sizeof(p->namespace), "%s", ns);
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (ism_claim_parse(claim_json, len, uid, n->driver, n->pool, &p->alloc, err) < 0 ||
        ism_claim_cpuset(&p->alloc, n->topo, &cpus, &mems, err) < 0)
        goto out;
    if (!(p->cpus = ism_bitmap_format_list(cpus)) || !(p->mems = ism_bitmap_format_list(mems))) {
        ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    if (write_spec(n, p, err) < 0)
        goto out;
    if (ism_ckpt_put(n->ckpt, p, err) < 0 || ism_ckpt_save(n->ckpt, n->ckpt_path, err) < 0) {
        ism_ckpt_remove(n->ckpt, uid);
        (void)remove_spec(n, uid, NULL);
        goto out;
    }
    *out = ism_ckpt_find(n->ckpt, uid);
    rc = 0;
out:
    if (rc < 0)
        ism_errprefix(err, "claim %s/%s", ns, name);
    ism_bitmap_destroy(cpus);
    ism_bitmap_destroy(mems);
    free(p->cpus);
    free(p->mems);
    free(p);
    return rc;
}

int ism_node_unprepare(ism_node_t *n, const char *uid, ism_error_t *err)
{
    const struct ism_prepared *known;
    struct ism_prepared saved;
    int rc = -1;

    if (!n || !uid)
        return ism_err(err, EINVAL, "unprepare: invalid argument");
    if (!ism_dra_uid_valid(uid))
        return ism_err(err, EINVAL, "unprepare: claim UID is not a UID");
    if (remove_spec(n, uid, err) < 0)
        return ism_errprefix(err, "unprepare claim %s", uid);
    if (!(known = ism_ckpt_find(n->ckpt, uid)))
        return 0;
    /* Keep a copy, to put back if the checkpoint cannot be saved. */
    saved = *known;
    saved.cpus = strdup(known->cpus);
    saved.mems = strdup(known->mems);
    if (!saved.cpus || !saved.mems) {
        ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    ism_ckpt_remove(n->ckpt, uid);
    if (ism_ckpt_save(n->ckpt, n->ckpt_path, err) < 0) {
        (void)ism_ckpt_put(n->ckpt, &saved, NULL);
        ism_errprefix(err, "unprepare claim %s", uid);
        goto out;
    }
    rc = 0;
out:
    free(saved.cpus);
    free(saved.mems);
    return rc;
}
