/* cdi.c - see cdi.h */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "dra/cdi.h"

int ism_cdi_device_id(const char *uid, char *buf, size_t size)
{
    if (snprintf(buf, size, "%s=claim-%s", ISM_CDI_KIND, uid) >= (int)size)
        return errno = ENAMETOOLONG, -1;
    return 0;
}

int ism_cdi_spec_path(const char *dir, const char *uid, char *buf, size_t size)
{
    if (snprintf(buf, size, "%s/%s-claim-%s.json", dir, ISM_DRA_DRIVER, uid) >= (int)size)
        return errno = ENAMETOOLONG, -1;
    return 0;
}

/* "KEY=value" appended to env; -1 on failure. */
static int add_env(json_t *env, const char *key, const char *value)
{
    char *kv;
    int rc;

    if (asprintf(&kv, "%s=%s", key, value) < 0)
        return -1;
    rc = json_array_append_new(env, json_string(kv));
    free(kv);
    return rc;
}

char *ism_cdi_spec(const struct ism_prepared *p, const char *hook_path, ism_error_t *err)
{
    char job[32], *cpus_arg = NULL, *mems_arg = NULL, *claim_arg = NULL, *name = NULL;
    char *text = NULL;
    json_t *env = json_array(), *spec = NULL;

    if (!p || !hook_path || hook_path[0] != '/') {
        json_decref(env);
        return ism_err(err, EINVAL, "CDI spec: invalid argument"), NULL;
    }
    snprintf(job, sizeof(job), "%ld", p->alloc.slurm_job);
    if (!env || add_env(env, "ISTHMUS_CPUS", p->cpus) < 0 ||
        add_env(env, "ISTHMUS_MEMS", p->mems) < 0 ||
        add_env(env, "ISTHMUS_CLAIM_UID", p->alloc.uid) < 0 ||
        (p->alloc.slurm_job > 0 && add_env(env, "ISTHMUS_SLURM_JOB_ID", job) < 0) ||
        asprintf(&cpus_arg, "--cpus=%s", p->cpus) < 0 ||
        asprintf(&mems_arg, "--mems=%s", p->mems) < 0 ||
        asprintf(&claim_arg, "--claim=%s", p->alloc.uid) < 0 ||
        asprintf(&name, "claim-%s", p->alloc.uid) < 0) {
        json_decref(env);
        goto out;
    }
    /* "o" steals env, also when packing fails. */
    spec = json_pack("{s:s, s:s, s:[{s:s, s:{s:o, s:[{s:s, s:s, s:[s,s,s,s]}]}}]}",
                     "cdiVersion", ISM_CDI_VERSION, "kind", ISM_CDI_KIND, "devices", "name", name,
                     "containerEdits", "env", env, "hooks", "hookName", "createRuntime", "path",
                     hook_path, "args", "isthmus-oci-hook", cpus_arg, mems_arg, claim_arg);
    if (spec)
        text = json_dumps(spec, JSON_INDENT(2) | JSON_SORT_KEYS);
out:
    if (!text)
        ism_err(err, ENOMEM, "CDI spec: out of memory");
    json_decref(spec);
    free(cpus_arg);
    free(mems_arg);
    free(claim_arg);
    free(name);
    return text;
}
