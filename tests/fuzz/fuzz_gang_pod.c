/* Fuzz target: what the gang scheduler reads of a pod and its claims
 * (bridge/gang_plan.c: gang_id_of_pod, gang_pod_parse, gang_alloc_request).
 * The input is a JSON document {"pod": POD, "claims": {"NS/NAME": CLAIM}},
 * the shape of the informers' caches.  Each step succeeds with results
 * that hold together, or fails with a message and one of the errnos its
 * header names; nothing leaks, nothing is read past an end. */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "bridge/gang_plan.h"
#include "bridge/model.h"

static bool known_errno(int e)
{
    return e == EINVAL || e == ENOTSUP || e == EXDEV || e == EAGAIN || e == E2BIG;
}

/* The sums gang_pod_parse promises: a pod's cores are its claims', a
 * claim's its requests', each count within what one claim can hold. */
static void check_pod(const struct gang_pod *p)
{
    int pod_cores = 0;

    if (!p->ns || !p->name || !p->uid || p->nclaims < 1 || !p->claims)
        abort();
    for (int c = 0; c < p->nclaims; c++) {
        const struct gang_claim *cl = &p->claims[c];
        int claim_cores = 0;

        if (!cl->name || !cl->uid || cl->nrequests < 1 || cl->align > p->align)
            abort();
        for (int r = 0; r < cl->nrequests; r++) {
            if (!cl->requests[r].name || cl->requests[r].count < 1)
                abort();
            claim_cores += cl->requests[r].count;
        }
        if (claim_cores != cl->cores || cl->cores > ISM_CLAIM_MAX_RESULTS)
            abort();
        pod_cores += cl->cores;
    }
    if (pod_cores != p->cores)
        abort();
}

static void check_request(const struct gang_id *id, const struct gang_pod *p, const json_t *pod)
{
    static const struct gang_defaults defs = { "batch", NULL, NULL, 60 };
    ism_error_t err = ISM_ERROR_INIT;
    struct gang_alloc a;

    if (gang_alloc_request(id, p, 1, pod, &defs, 2, &a, &err) < 0) {
        if (err.text[0] == '\0' || (errno != EINVAL && errno != ENOTSUP))
            abort();
        return;
    }
    /* one pod: one task of all its cores, two threads each */
    if (a.req.num_tasks != 1 || a.req.cpus_per_task != (uint32_t)p->cores * 2 ||
        a.req.time_limit < 1 || strncmp(a.name, "k8s:", 4) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ism_error_t err = ISM_ERROR_INIT, perr = ISM_ERROR_INIT;
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    const json_t *pod = json_object_get(doc, "pod"), *claims = json_object_get(doc, "claims");
    struct gang_id id;
    struct gang_pod p;

    if (!doc)
        return 0;
    if (gang_id_of_pod(pod, &id, &err) < 0) {
        if (err.text[0] == '\0' || errno != EINVAL)
            abort();
        json_decref(doc);
        return 0;
    }
    if (id.min < 0 || id.min > ISM_GANG_MAX_PODS || !memchr(id.key, '\0', sizeof(id.key)))
        abort();
    if (gang_pod_parse(pod, claims, &p, &perr) < 0) {
        if (perr.text[0] == '\0' || !known_errno(errno))
            abort();
    } else {
        check_pod(&p);
        check_request(&id, &p, pod);
        gang_pod_clear(&p);
    }
    json_decref(doc);
    return 0;
}
