/* gang_plan.c - the gang scheduler's decisions (see gang_plan.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/gang_plan.h"
#include "bridge/model.h"
#include "lib/topology/planner.h"
#include "lib/util/names.h"

/* ------------------------------------------------------------ helpers */

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

static const char *annotation(const json_t *pod, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(pod, "metadata"), "annotations"), key));
}

static const char *label(const json_t *pod, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(pod, "metadata"), "labels"), key));
}

/* A count in 1..max from a decimal string; -1 when it is not one. */
static int parse_count(const char *s, int max)
{
    char *end;
    long v;

    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > max)
        return -1;
    return (int)v;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d;
    if (!s)
        return NULL;
    if (!(d = strdup(s)))
        *oom = true;
    return d;
}

/* ------------------------------------------------------------ 1. identity */

const char *gang_source_name(enum gang_source source)
{
    switch (source) {
    case GANG_WORKLOAD:
        return "workload";
    case GANG_COSCHEDULING:
        return "podgroup";
    case GANG_ANNOTATION:
        return "gang";
    case GANG_ALONE:
        return "pod";
    }
    return "?";
}

static int set_id(struct gang_id *id, enum gang_source source, const char *ns, const char *name,
                  int min, const char *what, ism_error_t *err)
{
    if (ism_name_check(ISM_NAME_DNS_SUBDOMAIN, name, what, err) < 0)
        return -1;
    id->source = source;
    id->min = min;
    snprintf(id->ns, sizeof(id->ns), "%s", ns);
    snprintf(id->name, sizeof(id->name), "%s", name);
    snprintf(id->key, sizeof(id->key), "%s:%s/%s", gang_source_name(source), ns, name);
    return 0;
}

int gang_id_of_pod(const json_t *pod, struct gang_id *id, ism_error_t *err)
{
    const char *ns = str_at(pod, "metadata", "namespace");
    const char *name = str_at(pod, "metadata", "name");
    const char *group, *size;
    int n;

    if (!id)
        return ism_err(err, EINVAL, "gang: no place for the result");
    memset(id, 0, sizeof(*id));
    if (!ns || !name || ism_name_check(ISM_NAME_DNS_LABEL, ns, "namespace", err) < 0)
        return ism_err(err, EINVAL, "pod: no name or namespace");
    group = json_string_value(json_object_get(
        json_object_get(json_object_get(pod, "spec"), "schedulingGroup"), "podGroupName"));
    if (group)
        return set_id(id, GANG_WORKLOAD, ns, group, 0, "spec.schedulingGroup.podGroupName", err);
    if ((group = label(pod, ISM_LABEL_POD_GROUP)))
        return set_id(id, GANG_COSCHEDULING, ns, group, 0, "label " ISM_LABEL_POD_GROUP, err);
    group = annotation(pod, ISM_ANNOT_GANG);
    size = annotation(pod, ISM_ANNOT_GANG_SIZE);
    if (group || size) {
        if (!group || !size)
            return ism_err(err, EINVAL, "pod %s/%s: annotation %s needs %s", ns, name,
                           group ? ISM_ANNOT_GANG : ISM_ANNOT_GANG_SIZE,
                           group ? ISM_ANNOT_GANG_SIZE : ISM_ANNOT_GANG);
        if ((n = parse_count(size, ISM_GANG_MAX_PODS)) < 0)
            return ism_err(err, EINVAL, "pod %s/%s: annotation %s is '%s', not a count in 1..%d",
                           ns, name, ISM_ANNOT_GANG_SIZE, size, ISM_GANG_MAX_PODS);
        return set_id(id, GANG_ANNOTATION, ns, group, n, "annotation " ISM_ANNOT_GANG, err);
    }
    return set_id(id, GANG_ALONE, ns, name, 1, "pod name", err);
}

int gang_min_of_group(enum gang_source source, const json_t *group, int *min, ism_error_t *err)
{
    const json_t *spec = json_object_get(group, "spec"), *v;
    const char *what;

    if (source == GANG_WORKLOAD) {
        const json_t *policy = json_object_get(spec, "schedulingPolicy");
        if (json_object_get(policy, "basic") && !json_object_get(policy, "gang")) {
            *min = 1;
            return 0;
        }
        v = json_object_get(json_object_get(policy, "gang"), "minCount");
        what = "spec.schedulingPolicy.gang.minCount";
    } else if (source == GANG_COSCHEDULING) {
        v = json_object_get(spec, "minMember");
        what = "spec.minMember";
    } else {
        return ism_err(err, EINVAL, "gang: a %s gang has no group object",
                       gang_source_name(source));
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > ISM_GANG_MAX_PODS)
        return ism_err(err, EINVAL, "PodGroup %s: %s is missing or not in 1..%d",
                       str_at(group, "metadata", "name") ? str_at(group, "metadata", "name") : "?",
                       what, ISM_GANG_MAX_PODS);
    *min = (int)json_integer_value(v);
    return 0;
}

/* ------------------------------------------------------------ 2. demand */

const char *gang_align_name(enum gang_align align)
{
    switch (align) {
    case GANG_ALIGN_NONE:
        return "none";
    case GANG_ALIGN_NUMA:
        return "NUMA node";
    case GANG_ALIGN_SOCKET:
        return "socket";
    case GANG_ALIGN_L3:
        return "L3 cache";
    }
    return "?";
}

static void request_clear(struct gang_request *r)
{
    for (int i = 0; i < r->nselectors; i++)
        ism_cel_destroy(r->selectors[i]);
    free(r->selectors);
    free(r->name);
}

static void claim_clear(struct gang_claim *c)
{
    for (int i = 0; i < c->nrequests; i++)
        request_clear(&c->requests[i]);
    free(c->requests);
    json_decref(c->config);
    free(c->name);
    free(c->uid);
    free(c->resource_version);
}

void gang_pod_clear(struct gang_pod *pod)
{
    if (!pod)
        return;
    for (int i = 0; i < pod->nclaims; i++)
        claim_clear(&pod->claims[i]);
    free(pod->claims);
    free(pod->ns);
    free(pod->name);
    free(pod->uid);
    memset(pod, 0, sizeof(*pod));
}

/* The alignment a constraint's matchAttribute asks; -1 for one we do not serve. */
static int align_of(const char *attr)
{
    if (!attr)
        return -1;
    if (strcmp(attr, "resource.kubernetes.io/numaNode") == 0)
        return GANG_ALIGN_NUMA;
    if (strcmp(attr, ISM_DRIVER "/socket") == 0)
        return GANG_ALIGN_SOCKET;
    if (strcmp(attr, ISM_DRIVER "/l3cache") == 0)
        return GANG_ALIGN_L3;
    return -1;
}

static int parse_request(const char *claim, const json_t *jr, struct gang_request *r,
                         ism_error_t *err)
{
    const char *name = json_string_value(json_object_get(jr, "name"));
    const json_t *ex = json_object_get(jr, "exactly"), *sels, *count, *s;
    const char *cls, *mode;
    size_t i;

    if (!name)
        return ism_err(err, EINVAL, "claim %s: a request has no name", claim);
    if (!(r->name = strdup(name)))
        return ism_err(err, ENOMEM, "out of memory");
    if (!ex)
        return ism_err(err, ENOTSUP, "claim %s, request %s: only 'exactly' requests are served "
                       "(not firstAvailable)", claim, name);
    cls = json_string_value(json_object_get(ex, "deviceClassName"));
    if (!cls || strcmp(cls, ISM_DRIVER) != 0)
        return ism_err(err, EXDEV, "claim %s, request %s: DeviceClass %s is not isthmus's (%s)",
                       claim, name, cls ? cls : "(none)", ISM_DRIVER);
    mode = json_string_value(json_object_get(ex, "allocationMode"));
    if (mode && strcmp(mode, "ExactCount") != 0)
        return ism_err(err, ENOTSUP, "claim %s, request %s: allocationMode %s is not served "
                       "(ExactCount only)", claim, name, mode);
    count = json_object_get(ex, "count");
    r->count = count ? (int)json_integer_value(count) : 1;
    if (count && (!json_is_integer(count) || json_integer_value(count) < 1 ||
                  json_integer_value(count) > ISM_TOPO_MAX_CORES))
        return ism_err(err, EINVAL, "claim %s, request %s: count is not in 1..%d", claim, name,
                       ISM_TOPO_MAX_CORES);
    if (json_object_get(ex, "adminAccess") == json_true())
        return ism_err(err, ENOTSUP, "claim %s, request %s: adminAccess is not served", claim,
                       name);
    sels = json_object_get(ex, "selectors");
    if (json_array_size(sels) && !(r->selectors = calloc(json_array_size(sels),
                                                         sizeof(*r->selectors))))
        return ism_err(err, ENOMEM, "out of memory");
    json_array_foreach(sels, i, s) {
        const char *expr = str_at(s, "cel", "expression");
        if (!expr)
            return ism_err(err, ENOTSUP, "claim %s, request %s: selector %zu is not CEL", claim,
                           name, i);
        if (!(r->selectors[r->nselectors] = ism_cel_compile(expr, err)))
            return ism_errprefix(err, "claim %s, request %s", claim, name);
        r->nselectors++;
    }
    return 0;
}

static int parse_constraints(const json_t *devices, struct gang_claim *c, ism_error_t *err)
{
    const json_t *k;
    size_t i;

    json_array_foreach(json_object_get(devices, "constraints"), i, k) {
        const char *attr = json_string_value(json_object_get(k, "matchAttribute"));
        int a = align_of(attr);
        if (a < 0)
            return ism_err(err, ENOTSUP, "claim %s: constraint %zu: only matchAttribute on "
                           "resource.kubernetes.io/numaNode, %s/socket or %s/l3cache is served",
                           c->name, i, ISM_DRIVER, ISM_DRIVER);
        /* A constraint over some requests aligns those; aligning the whole
         * claim is stricter and always satisfies it. */
        if (c->align == GANG_ALIGN_NONE || a == GANG_ALIGN_L3 ||
            (a == GANG_ALIGN_NUMA && c->align == GANG_ALIGN_SOCKET))
            c->align = a;
    }
    return 0;
}

/* Whether claim obj is allocated, and if so to exactly this pod. */
static int check_unallocated(const json_t *obj, const char *pod_uid, const char *name,
                             ism_error_t *err)
{
    const json_t *st = json_object_get(obj, "status"), *r;
    size_t i;

    if (!json_object_get(st, "allocation"))
        return 0;
    json_array_foreach(json_object_get(st, "reservedFor"), i, r) {
        const char *uid = json_string_value(json_object_get(r, "uid"));
        if (uid && pod_uid && strcmp(uid, pod_uid) == 0)
            return 0; /* ours, from an earlier try of this commit */
    }
    return ism_err(err, ENOTSUP, "claim %s is already allocated to someone else", name);
}


/* One config entry of the claim's spec, as the allocation's FromClaim entry
 * (new reference), or NULL with err.  Only our driver's opaque config is
 * served: its parameters must be what the kubelet plugin reads
 * (ism_plan_params_parse), so a claim it would refuse is refused here. */
static json_t *config_entry(const char *claim_name, size_t i, json_t *e, ism_error_t *err)
{
    json_t *opaque = json_object_get(e, "opaque"), *requests = json_object_get(e, "requests");
    const char *drv = json_string_value(json_object_get(opaque, "driver"));
    json_t *params = json_object_get(opaque, "parameters"), *out;
    enum ism_mem mem = ISM_MEM_LOCAL;

    if (!drv || strcmp(drv, ISM_DRIVER) != 0) {
        ism_err(err, ENOTSUP, "claim %s: config[%zu]: only opaque config of driver %s is served",
                claim_name, i, ISM_DRIVER);
        return NULL;
    }
    if (requests && !json_is_null(requests) && !json_is_array(requests)) {
        ism_err(err, EINVAL, "claim %s: config[%zu].requests: not a list", claim_name, i);
        return NULL;
    }
    if (ism_plan_params_parse(params, &mem, err) < 0) {
        ism_errprefix(err, "claim %s: config[%zu].opaque", claim_name, i);
        return NULL;
    }
    out = json_pack("{s:s, s:{s:s, s:O}}", "source", "FromClaim", "opaque", "driver", ISM_DRIVER,
                    "parameters", params);
    if (!out || (json_array_size(requests) && json_object_set(out, "requests", requests) < 0)) {
        json_decref(out);
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    return out;
}

static int parse_config(const char *claim_name, json_t *config, struct gang_claim *c,
                        ism_error_t *err)
{
    size_t i;
    json_t *e;

    if (!config || json_is_null(config))
        return 0;
    if (!json_is_array(config))
        return ism_err(err, EINVAL, "claim %s: spec.devices.config: not a list", claim_name);
    if (json_array_size(config) && !(c->config = json_array()))
        return ism_err(err, ENOMEM, "out of memory");
    json_array_foreach(config, i, e) {
        json_t *entry = config_entry(claim_name, i, e, err);
        if (!entry)
            return -1;
        if (json_array_append_new(c->config, entry) < 0)
            return ism_err(err, ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_claim(const char *ns, const char *claim_name, const char *pod_uid,
                       const json_t *claims, struct gang_claim *c, ism_error_t *err)
{
    char key[400];
    const json_t *obj, *devices, *jr;
    bool oom = false;
    size_t i;

    snprintf(key, sizeof(key), "%s/%s", ns, claim_name);
    if (!(obj = json_object_get(claims, key)))
        return ism_err(err, EAGAIN, "claim %s does not exist yet", claim_name);
    if (json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp"))
        return ism_err(err, EAGAIN, "claim %s is being deleted", claim_name);
    c->name = dup_or_null(claim_name, &oom);
    c->uid = dup_or_null(str_at(obj, "metadata", "uid"), &oom);
    c->resource_version = dup_or_null(str_at(obj, "metadata", "resourceVersion"), &oom);
    if (oom)
        return ism_err(err, ENOMEM, "out of memory");
    if (!c->uid)
        return ism_err(err, EINVAL, "claim %s has no uid", claim_name);
    if (check_unallocated(obj, pod_uid, claim_name, err) < 0)
        return -1;
    devices = json_object_get(json_object_get(obj, "spec"), "devices");
    if (parse_config(claim_name, json_object_get(devices, "config"), c, err) < 0)
        return -1;
    if (!json_array_size(json_object_get(devices, "requests")))
        return ism_err(err, EINVAL, "claim %s has no requests", claim_name);
    if (!(c->requests = calloc(json_array_size(json_object_get(devices, "requests")),
                               sizeof(*c->requests))))
        return ism_err(err, ENOMEM, "out of memory");
    json_array_foreach(json_object_get(devices, "requests"), i, jr) {
        c->nrequests++;
        if (parse_request(claim_name, jr, &c->requests[i], err) < 0)
            return -1;
        c->cores += c->requests[i].count;
    }
    if (c->cores > ISM_CLAIM_MAX_RESULTS)
        return ism_err(err, ENOTSUP, "claim %s asks for %d cores; an allocation holds at most %d "
                       "devices (the API's limit): ask with several claims", claim_name, c->cores,
                       ISM_CLAIM_MAX_RESULTS);
    return parse_constraints(devices, c, err);
}

/* The claim name of the pod's entry pc: direct, or made from a template. */
static const char *pod_claim_name(const json_t *pod, const json_t *pc, ism_error_t *err)
{
    const char *entry = json_string_value(json_object_get(pc, "name"));
    const char *direct = json_string_value(json_object_get(pc, "resourceClaimName"));
    const json_t *s;
    size_t i;

    if (!entry) {
        ism_err(err, EINVAL, "spec.resourceClaims: an entry has no name");
        return NULL;
    }
    if (direct)
        return direct;
    if (!json_string_value(json_object_get(pc, "resourceClaimTemplateName"))) {
        ism_err(err, EINVAL, "spec.resourceClaims %s names no claim or template", entry);
        return NULL;
    }
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "resourceClaimStatuses"),
                       i, s) {
        const char *n = json_string_value(json_object_get(s, "name"));
        if (n && strcmp(n, entry) == 0) {
            const char *made = json_string_value(json_object_get(s, "resourceClaimName"));
            if (made)
                return made;
        }
    }
    ism_err(err, EAGAIN, "the claim of spec.resourceClaims %s is not made from its template yet",
            entry);
    return NULL;
}

/* Whether s is a decimal exponent's digits ("3", "-2", "+12": at most 3). */
static bool decimal_exponent(const char *s)
{
    size_t n;

    s += *s == '+' || *s == '-';
    n = strspn(s, "0123456789");
    return n >= 1 && n <= 3 && !s[n];
}

/* Memory in MiB (rounded up) of a Kubernetes quantity: an unsigned
 * decimal number, then a binary (Ki..Ei) or decimal (n, u, m, k..E) suffix
 * or a decimal exponent (e3, E-2); false for anything else and for more
 * than 10^12 MiB.  The number is checked before strtod reads it: strtod
 * alone takes nan, inf and hex, which no quantity is. */
static bool quantity_mib(const char *q, uint64_t *mib)
{
    static const struct { const char *suffix; double factor; } units[] = {
        { "Ki", 0x1p10 }, { "Mi", 0x1p20 }, { "Gi", 0x1p30 }, { "Ti", 0x1p40 },
        { "Pi", 0x1p50 }, { "Ei", 0x1p60 }, { "n", 1e-9 }, { "u", 1e-6 }, { "m", 1e-3 },
        { "", 1.0 }, { "k", 1e3 }, { "M", 1e6 }, { "G", 1e9 }, { "T", 1e12 }, { "P", 1e15 },
        { "E", 1e18 },
    };
    const char *p, *end;
    size_t digits = 0, dots = 0;
    double factor = -1.0, m;

    if (!q)
        return false;
    p = q + (*q == '+');
    for (end = p; (*end >= '0' && *end <= '9') || *end == '.'; end++)
        *end == '.' ? dots++ : digits++;
    if (!digits || dots > 1)
        return false;
    if ((*end == 'e' || *end == 'E') && end[1] && end[1] != 'i') {
        if (!decimal_exponent(end + 1))
            return false;
        factor = 1.0; /* strtod reads the exponent */
    }
    for (size_t i = 0; factor < 0 && i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0)
            factor = units[i].factor;
    }
    if (factor < 0)
        return false;
    m = strtod(p, NULL) * factor / 0x1p20;
    if (!(m <= 1e12))
        return false;
    *mib = (uint64_t)m + ((double)(uint64_t)m < m);
    return true;
}

static int pod_memory(const json_t *pod, uint64_t *mib, ism_error_t *err)
{
    const json_t *c;
    size_t i;

    *mib = 0;
    json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), i, c) {
        const json_t *res = json_object_get(c, "resources");
        const char *q = str_at(json_object_get(res, "requests"), "memory", NULL);
        uint64_t m = 0;
        if (!q)
            q = str_at(json_object_get(res, "limits"), "memory", NULL);
        if (q && !quantity_mib(q, &m))
            return ism_err(err, EINVAL, "container %zu: memory '%s' is not a quantity", i, q);
        *mib += m;
    }
    return 0;
}

int gang_pod_parse(const json_t *pod, const json_t *claims, struct gang_pod *out,
                   ism_error_t *err)
{
    const json_t *pcs = json_object_get(json_object_get(pod, "spec"), "resourceClaims"), *pc;
    bool oom = false;
    size_t i;

    if (!out)
        return ism_err(err, EINVAL, "gang: no place for the result");
    memset(out, 0, sizeof(*out));
    out->ns = dup_or_null(str_at(pod, "metadata", "namespace"), &oom);
    out->name = dup_or_null(str_at(pod, "metadata", "name"), &oom);
    out->uid = dup_or_null(str_at(pod, "metadata", "uid"), &oom);
    if (oom)
        goto nomem;
    if (!out->ns || !out->name || !out->uid) {
        ism_err(err, EINVAL, "pod: no name, namespace or uid");
        goto error;
    }
    if (pod_memory(pod, &out->memory_mib, err) < 0)
        goto error;
    if (!json_array_size(pcs)) {
        ism_err(err, ENOTSUP, "it asks for no %s cores (spec.resourceClaims is empty)",
                ISM_DRIVER);
        goto error;
    }
    if (!(out->claims = calloc(json_array_size(pcs), sizeof(*out->claims))))
        goto nomem;
    json_array_foreach(pcs, i, pc) {
        const char *cn = pod_claim_name(pod, pc, err);
        if (!cn)
            goto error;
        out->nclaims++;
        if (parse_claim(out->ns, cn, out->uid, claims, &out->claims[i], err) < 0)
            goto error;
        out->cores += out->claims[i].cores;
        if (out->claims[i].align > out->align)
            out->align = out->claims[i].align;
    }
    return 0;
nomem:
    ism_err(err, ENOMEM, "out of memory");
error:
    {
        int e = errno;
        ism_errprefix(err, "pod %s/%s", str_at(pod, "metadata", "namespace") ?: "?",
                      str_at(pod, "metadata", "name") ?: "?");
        gang_pod_clear(out);
        errno = e;
    }
    return -1;
}

/* ------------------------------------------------------------ 3. request */

int gang_parse_time_limit(const char *s, uint32_t *minutes, ism_error_t *err)
{
    long f[4] = { 0 }, days = 0, secs;
    int n = 0;
    const char *p = s, *dash;
    char *end;

    if (!s || !*s)
        return ism_err(err, EINVAL, "empty time limit");
    dash = strchr(s, '-');
    if (dash) {
        errno = 0;
        days = strtol(s, &end, 10);
        if (errno || end != dash || end == s || days < 0 || days > 365000)
            return ism_err(err, EINVAL, "time limit '%s': bad days", s);
        p = dash + 1;
    }
    for (;;) {
        if (*p < '0' || *p > '9' || n == 3)
            return ism_err(err, EINVAL, "time limit '%s' is not in Slurm's time format", s);
        errno = 0;
        f[n++] = strtol(p, &end, 10);
        if (errno || f[n - 1] > 1000000)
            return ism_err(err, EINVAL, "time limit '%s': a field is too large", s);
        if (!*end)
            break;
        if (*end != ':')
            return ism_err(err, EINVAL, "time limit '%s' is not in Slurm's time format", s);
        p = end + 1;
    }
    /* Without days: MM, MM:SS, HH:MM:SS; with days: D-HH, D-HH:MM, D-HH:MM:SS. */
    if (dash)
        secs = days * 86400 + f[0] * 3600 + (n > 1 ? f[1] * 60 : 0) + (n > 2 ? f[2] : 0);
    else if (n == 1)
        secs = f[0] * 60;
    else if (n == 2)
        secs = f[0] * 60 + f[1];
    else
        secs = f[0] * 3600 + f[1] * 60 + f[2];
    if (secs <= 0)
        return ism_err(err, EINVAL, "time limit '%s' is zero", s);
    *minutes = (uint32_t)((secs + 59) / 60);
    return 0;
}

/* annotation key of pod, or the default, into buf ("" for none). */
static int option(const json_t *pod, const char *key, const char *def, char *buf, size_t size,
                  ism_error_t *err)
{
    const char *v = annotation(pod, key);

    if (!v)
        v = def ? def : "";
    if (strlen(v) >= size)
        return ism_err(err, EINVAL, "annotation %s is too long", key);
    for (const char *c = v; *c; c++) {
        if (*c <= ' ' || *c == ',' || *c == 127)
            return ism_err(err, EINVAL, "annotation %s: '%s' is not a Slurm name", key, v);
    }
    snprintf(buf, size, "%s", v);
    return 0;
}

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int gang_alloc_request(const struct gang_id *id, const struct gang_pod *pods, int npods,
                       const json_t *first_pod, const struct gang_defaults *defs,
                       int threads_per_core, struct gang_alloc *out, ism_error_t *err)
{
    static const struct gang_defaults none = { 0 };
    uint64_t mem = 0;
    const char *tl;
    int cores, total = 0;

    if (!id || !pods || npods < 1 || !out || threads_per_core < 1)
        return ism_err(err, EINVAL, "gang: bad arguments");
    if (!defs)
        defs = &none;
    memset(out, 0, sizeof(*out));
    /* Tasks of the cores' greatest common divisor: one task per pod when
     * the pods are alike; a pod of a mixed gang takes several tasks, which
     * the split must find on one node (else the next shape, gang.h). */
    cores = 0;
    for (int i = 0; i < npods; i++) {
        if (pods[i].cores < 1)
            return ism_err(err, ENOTSUP, "pod %s asks for no cores", pods[i].name);
        cores = gcd(cores, pods[i].cores);
        total += pods[i].cores;
    }
    for (int i = 0; i < npods; i++) {
        /* memory per cpu that covers every pod (rounded up) */
        uint64_t cpus = (uint64_t)pods[i].cores * (uint64_t)threads_per_core;
        uint64_t per_cpu = (pods[i].memory_mib + cpus - 1) / cpus;
        if (per_cpu > mem)
            mem = per_cpu;
    }
    if (option(first_pod, "isthmus.io/partition", defs->partition, out->partition,
               sizeof(out->partition), err) < 0 ||
        option(first_pod, "isthmus.io/account", defs->account, out->account,
               sizeof(out->account), err) < 0 ||
        option(first_pod, "isthmus.io/qos", defs->qos, out->qos, sizeof(out->qos), err) < 0)
        return -1;
    out->req.time_limit = defs->time_limit;
    if ((tl = annotation(first_pod, "isthmus.io/time-limit")) &&
        gang_parse_time_limit(tl, &out->req.time_limit, err) < 0)
        return ism_errprefix(err, "annotation isthmus.io/time-limit");
    snprintf(out->name, sizeof(out->name), "k8s:%s/%s", id->ns, id->name);
    snprintf(out->admin_comment, sizeof(out->admin_comment), "%sgang=%s", BRIDGE_JOB_TAG,
             id->key);
    out->req.name = out->name;
    out->req.admin_comment = out->admin_comment;
    out->req.partition = out->partition[0] ? out->partition : NULL;
    out->req.account = out->account[0] ? out->account : NULL;
    out->req.qos = out->qos[0] ? out->qos : NULL;
    out->req.num_tasks = (uint32_t)(total / cores);
    out->req.cpus_per_task = (uint32_t)(cores * threads_per_core);
    out->req.min_nodes = 1;
    out->req.max_nodes = (uint32_t)npods;
    out->req.mem_per_cpu = mem;
    return 0;
}

/* ------------------------------------------------------------ 4. split */

void gang_places_destroy(struct gang_place *places, int npods)
{
    if (!places)
        return;
    int e = errno;
    for (int i = 0; i < npods; i++) {
        struct gang_place *p = &places[i];
        ism_bitmap_destroy(p->cores);
        for (int c = 0; c < p->nclaims; c++) {
            ism_bitmap_destroy(p->claim_cores ? p->claim_cores[c] : NULL);
            if (p->request_cores && p->request_cores[c]) {
                /* the request arrays end with a NULL */
                for (ism_bitmap_t **r = p->request_cores[c]; *r; r++)
                    ism_bitmap_destroy(*r);
                free(p->request_cores[c]);
            }
        }
        free(p->claim_cores);
        free(p->request_cores);
    }
    free(places);
    errno = e;
}

/* The value of a core's attribute that an alignment compares. */
static int align_value(const struct ism_core *c, enum gang_align a)
{
    switch (a) {
    case GANG_ALIGN_NUMA:
        return c->numa;
    case GANG_ALIGN_SOCKET:
        return c->socket;
    case GANG_ALIGN_L3:
        return c->l3;
    case GANG_ALIGN_NONE:
        break;
    }
    return 0;
}

/* True when every core of set shares the attribute a asks for. */
static bool aligned(const ism_topo_t *topo, const ism_bitmap_t *set, enum gang_align a)
{
    int bit, want = 0;
    bool first = true;

    if (a == GANG_ALIGN_NONE)
        return true;
    ism_bitmap_foreach(bit, set) {
        const struct ism_core *c = ism_topo_core(topo, bit);
        if (!c || align_value(c, a) < 0)
            return false;
        if (first)
            want = align_value(c, a);
        else if (align_value(c, a) != want)
            return false;
        first = false;
    }
    return true;
}

/* The device JSON of core index in devices, or NULL. */
static const json_t *device_of(const json_t *devices, int index)
{
    char name[32];
    const json_t *d;
    size_t i;

    snprintf(name, sizeof(name), "core-%d", index);
    json_array_foreach(devices, i, d) {
        const char *n = json_string_value(json_object_get(d, "name"));
        if (n && strcmp(n, name) == 0)
            return d;
    }
    return NULL;
}

/* 1 when core index matches every selector of r, 0 when not, -1 on error. */
static int matches(const struct gang_request *r, const json_t *devices, int index,
                   ism_error_t *err)
{
    const json_t *d = device_of(devices, index);
    bool m = true;

    if (!r->nselectors)
        return 1;
    if (!d)
        return ism_err(err, ENOSPC, "core-%d has no device", index);
    for (int s = 0; s < r->nselectors && m; s++) {
        if (ism_cel_eval(r->selectors[s], ISM_DRIVER, json_object_get(d, "attributes"), &m,
                         err) < 0)
            return ism_errprefix(err, "request %s, selector '%s'", r->name,
                                 ism_cel_expression(r->selectors[s]));
    }
    return m;
}

/* Hand the pod's cores to its claims and requests: each request takes, in
 * core order, the first cores left that match its selectors; a claim's
 * cores are its requests'. */
static int assign_requests(const struct gang_pod *p, const struct gang_node *n,
                           struct gang_place *pl, ism_error_t *err)
{
    ism_bitmap_t *left = ism_bitmap_dup(pl->cores);
    int rc = -1;

    if (!left || !(pl->claim_cores = calloc((size_t)p->nclaims, sizeof(*pl->claim_cores))) ||
        !(pl->request_cores = calloc((size_t)p->nclaims, sizeof(*pl->request_cores)))) {
        ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    pl->nclaims = p->nclaims;
    for (int c = 0; c < p->nclaims; c++) {
        const struct gang_claim *cl = &p->claims[c];
        if (!(pl->claim_cores[c] = ism_bitmap_create()) ||
            !(pl->request_cores[c] = calloc((size_t)cl->nrequests + 1, sizeof(ism_bitmap_t *)))) {
            ism_err(err, ENOMEM, "out of memory");
            goto out;
        }
        for (int r = 0; r < cl->nrequests; r++) {
            const struct gang_request *rq = &cl->requests[r];
            ism_bitmap_t *mine = ism_bitmap_create();
            int bit, m;
            if (!mine) {
                ism_err(err, ENOMEM, "out of memory");
                goto out;
            }
            pl->request_cores[c][r] = mine;
            ism_bitmap_foreach(bit, left) {
                if (ism_bitmap_count(mine) == rq->count)
                    break;
                if ((m = matches(rq, n->devices, bit, err)) < 0)
                    goto out;
                if (m && ism_bitmap_set(mine, bit) < 0) {
                    ism_err(err, ENOMEM, "out of memory");
                    goto out;
                }
            }
            if (ism_bitmap_count(mine) < rq->count) {
                ism_err(err, ENOSPC, "claim %s, request %s: %d of the %d cores given on %s match "
                        "its selectors", cl->name, rq->name, ism_bitmap_count(mine), rq->count,
                        n->pool);
                goto out;
            }
            ism_bitmap_andnot(left, mine);
            if (ism_bitmap_or(pl->claim_cores[c], mine) < 0) {
                ism_err(err, ENOMEM, "out of memory");
                goto out;
            }
        }
        if (!aligned(n->topo, pl->claim_cores[c], cl->align)) {
            ism_err(err, ENOSPC, "claim %s: its cores on %s are not in one %s", cl->name, n->pool,
                    gang_align_name(cl->align));
            goto out;
        }
    }
    rc = 0;
out:
    ism_bitmap_destroy(left);
    return rc;
}

/* Plan the pods [first, first + k) on node n: whole cores, aligned as the
 * strictest pod asks.  A NUMA-aligned plan is tried when alignment is
 * asked and the compact one does not give it. */
static bool same_shape(const struct gang_pod *pods, int k)
{
    for (int i = 1; i < k; i++)
        if (pods[i].cores != pods[0].cores)
            return false;
    return true;
}

static int split_node(const struct gang_pod *pods, int first, int k, const struct gang_node *n,
                      int node_index, struct gang_place *places, ism_error_t *err)
{
    enum gang_align need = GANG_ALIGN_NONE;
    static const enum ism_layout layouts[] = { ISM_LAYOUT_COMPACT, ISM_LAYOUT_NUMA };
    int threads = ism_topo_threads_max(n->topo);

    for (int i = first; i < first + k; i++)
        if (pods[i].align > need)
            need = pods[i].align;
    for (size_t l = 0; l < sizeof(layouts) / sizeof(layouts[0]); l++) {
        struct ism_plan_request req = {
            .cores = n->cores, .consumers = k, .cpus_per_consumer = pods[first].cores * threads,
            .layout = layouts[l], .mem = ISM_MEM_LOCAL,
        };
        ism_error_t perr = ISM_ERROR_INIT;
        ism_plan_t *plan = ism_plan_create(n->topo, &req, &perr);
        bool ok = plan && plan->whole;

        for (int i = 0; ok && i < k; i++)
            ok = aligned(n->topo, plan->slots[i].cores, pods[first + i].align);
        if (ok) {
            for (int i = 0; i < k; i++) {
                struct gang_place *pl = &places[first + i];
                pl->node = node_index;
                pl->cores = plan->slots[i].cores;
                plan->slots[i].cores = NULL;
                if (assign_requests(&pods[first + i], n, pl, err) < 0) {
                    ism_plan_destroy(plan);
                    return -1;
                }
            }
            ism_plan_destroy(plan);
            return 0;
        }
        ism_plan_destroy(plan);
        if (need == GANG_ALIGN_NONE)
            return ism_err(err, ENOSPC, "%s: %s", n->pool,
                           perr.text[0] ? perr.text : "the granted cores are not whole");
    }
    return ism_err(err, ENOSPC, "%s: the %d granted cores cannot give %d pods of %d cores each "
                   "inside one %s", n->pool, ism_bitmap_count(n->cores), k, pods[first].cores,
                   gang_align_name(need));
}

/* Take want cores of left for one pod: inside the one domain of the
 * alignment that has the fewest cores left that still suffice (best fit,
 * so big domains stay whole for big pods), in core order; without
 * alignment, the first cores left.  NULL when no domain has enough. */
static ism_bitmap_t *take_cores(const ism_topo_t *topo, ism_bitmap_t *left, int want,
                                enum gang_align a)
{
    /* a domain's index is below the number of cores (-1: none): one count
     * per index, shifted by one */
    int *count = calloc((size_t)topo->ncores + 1, sizeof(*count));
    ism_bitmap_t *mine = count ? ism_bitmap_create() : NULL;
    int best = -2, bit;

    if (!mine) {
        free(count);
        return NULL;
    }
    if (a != GANG_ALIGN_NONE) {
        ism_bitmap_foreach(bit, left) {
            int d = bit < topo->ncores ? align_value(&topo->cores[bit], a) : -2;
            if (d >= -1 && d < topo->ncores)
                count[d + 1]++;
        }
        for (int d = -1; d < topo->ncores; d++)
            if (count[d + 1] >= want && (best < -1 || count[d + 1] < count[best + 1]))
                best = d;
        if (best < -1) {
            free(count);
            ism_bitmap_destroy(mine);
            return NULL;
        }
    }
    free(count);
    ism_bitmap_foreach(bit, left) {
        if (ism_bitmap_count(mine) == want || bit >= topo->ncores)
            break;
        if ((a == GANG_ALIGN_NONE || align_value(&topo->cores[bit], a) == best) &&
            ism_bitmap_set(mine, bit) < 0)
            break;
    }
    if (ism_bitmap_count(mine) < want) {
        ism_bitmap_destroy(mine);
        return NULL;
    }
    ism_bitmap_andnot(left, mine);
    return mine;
}

static const struct gang_pod *sort_pods; /* for by_demand (qsort has no argument) */

/* Aligned pods first, then by cores, largest first; then in gang order. */
static int by_demand(const void *x, const void *y)
{
    const struct gang_pod *a = &sort_pods[*(const int *)x], *b = &sort_pods[*(const int *)y];

    if ((a->align != GANG_ALIGN_NONE) != (b->align != GANG_ALIGN_NONE))
        return a->align != GANG_ALIGN_NONE ? -1 : 1;
    if (a->cores != b->cores)
        return b->cores - a->cores;
    return *(const int *)x - *(const int *)y;
}

/* The split when filling the nodes in order does not work (pods of mixed
 * shapes, a grant whose cores lie across NUMA nodes): each pod, the most
 * demanding first, takes the first node with room for it (aligned, best
 * fit within the node).  0, or -1 with ENOSPC naming the pod. */
static int split_greedy(const struct gang_pod *pods, int npods, const struct gang_node *nodes,
                        int nnodes, struct gang_place *places, ism_error_t *err)
{
    ism_bitmap_t **left = calloc((size_t)nnodes, sizeof(*left));
    int *order = malloc(sizeof(*order) * (size_t)npods), rc = -1;

    if (!left || !order) {
        ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    for (int n = 0; n < nnodes; n++)
        if (!(left[n] = ism_bitmap_dup(nodes[n].cores))) {
            ism_err(err, ENOMEM, "out of memory");
            goto out;
        }
    for (int i = 0; i < npods; i++)
        order[i] = i;
    sort_pods = pods;
    qsort(order, (size_t)npods, sizeof(*order), by_demand);
    for (int k = 0; k < npods; k++) {
        const struct gang_pod *p = &pods[order[k]];
        struct gang_place *pl = &places[order[k]];
        for (int n = 0; n < nnodes && !pl->cores; n++) {
            if (nodes[n].topo && (pl->cores = take_cores(nodes[n].topo, left[n], p->cores,
                                                         p->align)))
                pl->node = n;
        }
        if (!pl->cores) {
            ism_err(err, ENOSPC, "no node of the grant has %d cores left for pod %s%s%s",
                    p->cores, p->name, p->align != GANG_ALIGN_NONE ? " inside one " : "",
                    p->align != GANG_ALIGN_NONE ? gang_align_name(p->align) : "");
            goto out;
        }
        if (assign_requests(p, &nodes[pl->node], pl, err) < 0)
            goto out;
    }
    rc = 0;
out:
    for (int n = 0; left && n < nnodes; n++)
        ism_bitmap_destroy(left[n]);
    free(left);
    free(order);
    return rc;
}

struct gang_place *gang_split(const struct gang_pod *pods, int npods,
                              const struct gang_node *nodes, int nnodes, ism_error_t *err)
{
    struct gang_place *places;
    int next = 0;

    if (!pods || npods < 1 || !nodes || nnodes < 1) {
        ism_err(err, EINVAL, "gang split: bad arguments");
        return NULL;
    }
    if (!(places = calloc((size_t)npods, sizeof(*places)))) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    for (int n = 0; n < nnodes && next < npods; n++) {
        int have = ism_bitmap_count(nodes[n].cores), k = 0, used = 0;
        if (!nodes[n].topo) {
            ism_err(err, ENOSPC, "%s has no topology", nodes[n].pool);
            goto error;
        }
        while (next + k < npods && used + pods[next + k].cores <= have) {
            used += pods[next + k].cores;
            k++;
        }
        if (k && !same_shape(pods + next, k)) {
            errno = ENOSPC; /* the planner splits among equal pods */
            goto greedy;
        }
        if (k && split_node(pods, next, k, &nodes[n], n, places, err) < 0)
            goto greedy;
        next += k;
    }
    if (next < npods) {
        ism_err(err, ENOSPC, "the grant holds %d of the %d pods", next, npods);
        goto greedy;
    }
    return places;
greedy:
    if (errno == ENOMEM)
        goto error;
    {
        ism_error_t first = *err;
        gang_places_destroy(places, npods);
        if (!(places = calloc((size_t)npods, sizeof(*places)))) {
            ism_err(err, ENOMEM, "out of memory");
            return NULL;
        }
        if (split_greedy(pods, npods, nodes, nnodes, places, err) == 0)
            return places;
        if (errno == ENOSPC && first.text[0]) /* say both */
            ism_errprefix(err, "%s; and", first.text);
    }
error:
    gang_places_destroy(places, npods); /* keeps errno */
    return NULL;
}

/* ------------------------------------------------------------ 5. commit */

json_t *gang_claim_status(const struct gang_pod *p, int c, const char *pool,
                          const struct gang_place *place)
{
    const struct gang_claim *cl;
    json_t *results = json_array();
    int bit;

    if (!results || !p || c < 0 || c >= p->nclaims || !place || c >= place->nclaims) {
        json_decref(results);
        return NULL;
    }
    cl = &p->claims[c];
    for (int r = 0; r < cl->nrequests; r++) {
        ism_bitmap_foreach(bit, place->request_cores[c][r]) {
            char dev[32];
            snprintf(dev, sizeof(dev), "core-%d", bit);
            if (json_array_append_new(results, json_pack("{s:s, s:s, s:s, s:s}", "request",
                                                         cl->requests[r].name, "driver",
                                                         ISM_DRIVER, "pool", pool, "device",
                                                         dev)) < 0) {
                json_decref(results);
                return NULL;
            }
        }
    }
    return json_pack("{s:{s:{s:o, s:O*}, s:{s:[{s:[{s:s, s:s, s:[s]}]}]}}, s:[{s:s, s:s, s:s}]}",
                     "allocation", "devices", "results", results, "config", cl->config,
                     "nodeSelector", "nodeSelectorTerms", "matchFields", "key", "metadata.name",
                     "operator", "In", "values", pool, "reservedFor", "resource", "pods", "name",
                     p->name, "uid", p->uid);
}

json_t *gang_binding(const struct gang_pod *p, const char *pool)
{
    if (!p || !pool)
        return NULL;
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}", "apiVersion", "v1",
                     "kind", "Binding", "metadata", "name", p->name, "namespace", p->ns, "uid",
                     p->uid, "target", "apiVersion", "v1", "kind", "Node", "name", pool);
}

const ism_kube_resource_t gang_pod_resource = { "", "v1", "pods", true };
const ism_kube_resource_t gang_claim_resource = { "resource.k8s.io", "v1", "resourceclaims", true };

static const json_t *cached(const json_t *cache, const char *ns, const char *name)
{
    char key[400];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    return json_object_get(cache, key);
}

void gang_flight_key(const ism_kube_resource_t *res, const char *nsname, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s:%s", res->group, *res->group ? "/" : "", res->resource, nsname);
}

static bool busy(const json_t *in_flight, const ism_kube_resource_t *res, const char *ns,
                 const char *name)
{
    char nsname[400], key[GANG_KEY_MAX];

    if (!in_flight)
        return false;
    snprintf(nsname, sizeof(nsname), "%s/%s", ns, name);
    gang_flight_key(res, nsname, key, sizeof(key));
    return json_object_get(in_flight, key) != NULL;
}

/* Whether claim obj asks isthmus for something: one of its requests uses
 * our DeviceClass (the others are refused when the gang is submitted). */
static bool asks_isthmus(const json_t *obj)
{
    const json_t *jr;
    size_t i;

    json_array_foreach(json_object_get(json_object_get(json_object_get(obj, "spec"), "devices"),
                                       "requests"), i, jr) {
        const char *cls = str_at(jr, "exactly", "deviceClassName");
        if (cls && strcmp(cls, ISM_DRIVER) == 0)
            return true;
    }
    return false;
}

int gang_pod_claim_keys(const json_t *pod, const json_t *claims, json_t *out)
{
    const json_t *pc, *obj;
    const char *ns = str_at(pod, "metadata", "namespace"), *name;
    char key[400];
    size_t i;
    int n = 0;

    if (!json_is_object(out) || !ns)
        return -1;
    json_array_foreach(json_object_get(json_object_get(pod, "spec"), "resourceClaims"), i, pc) {
        if (!(name = pod_claim_name(pod, pc, NULL)))
            continue; /* not made from its template yet */
        snprintf(key, sizeof(key), "%s/%s", ns, name);
        obj = json_object_get(claims, key);
        if (!obj || str_at(obj, "metadata", "deletionTimestamp") ||
            json_object_get(json_object_get(obj, "status"), "allocation") || !asks_isthmus(obj))
            continue;
        if (json_object_set_new(out, key, json_true()) < 0)
            return -1;
        n++;
    }
    return n;
}

/* An urgent write that adds our finalizer to claim have: 0, or -1. */
static int plan_finalizer(const json_t *have, const char *ns, const char *name,
                          struct writes *out, ism_error_t *err)
{
    json_t *body = ism_with_finalizer(have, ISM_GANG_FINALIZER, true);

    if (!body || writes_add(out, WRITE_UPDATE, &gang_claim_resource, ns, name, NULL, body) < 0)
        return ism_err(err, ENOMEM, "claim %s/%s: cannot plan its finalizer", ns, name);
    out->v[out->n - 1].urgent = true;
    return 0;
}

int gang_hold_plan(const json_t *held, const json_t *claims, const json_t *in_flight,
                   struct writes *out, ism_error_t *err)
{
    const char *key;
    json_t *v;
    bool done = true;

    if (!json_is_object(held) || !out)
        return ism_err(err, EINVAL, "gang hold: bad arguments");
    json_object_foreach((json_t *)held, key, v) {
        const json_t *have = json_object_get(claims, key);
        const char *ns = str_at(have, "metadata", "namespace");
        const char *name = str_at(have, "metadata", "name");
        if (!have || !ns || !name || ism_has_finalizer(have, ISM_GANG_FINALIZER))
            continue;
        done = false;
        if (busy(in_flight, &gang_claim_resource, ns, name))
            continue;
        if (plan_finalizer(have, ns, name, out, err) < 0)
            return -1;
    }
    return done ? 1 : 0;
}

/* The next write of claim c of pod p: 1 when it is allocated as planned. */
static int commit_claim(const struct gang_pod *p, int c, const char *pool,
                        const struct gang_place *pl, const json_t *have, struct writes *out,
                        ism_error_t *err)
{
    const char *name = p->claims[c].name;
    json_t *st, *want;
    bool same;

    if (!(st = gang_claim_status(p, c, pool, pl)))
        return ism_err(err, ENOMEM, "out of memory");
    if (!json_object_get(json_object_get(have, "status"), "allocation")) {
        if (!ism_has_finalizer(have, ISM_GANG_FINALIZER)) {
            json_decref(st);
            return plan_finalizer(have, p->ns, name, out, err);
        }
        json_t *body = json_deep_copy(have);
        if (!body || json_object_set_new(body, "status", st) < 0) {
            json_decref(body);
            return ism_err(err, ENOMEM, "out of memory");
        }
        if (writes_add(out, WRITE_UPDATE_STATUS, &gang_claim_resource, p->ns, name, NULL, body) < 0)
            return ism_err(err, ENOMEM, "out of memory");
        out->v[out->n - 1].urgent = true;
        return 0;
    }
    want = json_pack("{s:o}", "status", st);
    same = want && ism_claim_allocation_equal(have, want);
    json_decref(want);
    if (!same)
        return ism_err(err, EBUSY, "claim %s/%s was allocated by someone else", p->ns, name);
    return 1;
}

int gang_commit_plan(const struct gang_pod *pods, int npods, const struct gang_place *places,
                     const struct gang_node *nodes, const json_t *claims, const json_t *pods_cache,
                     const json_t *in_flight, struct writes *out, ism_error_t *err)
{
    bool all_claims = true, all_bound = true;

    if (!pods || npods < 1 || !places || !nodes || !out)
        return ism_err(err, EINVAL, "gang commit: bad arguments");
    for (int i = 0; i < npods; i++) {
        const struct gang_pod *p = &pods[i];
        const char *pool = nodes[places[i].node].pool;
        for (int c = 0; c < p->nclaims; c++) {
            const json_t *have = cached(claims, p->ns, p->claims[c].name);
            int rc;
            if (!have)
                return ism_err(err, EBUSY, "claim %s/%s is gone", p->ns, p->claims[c].name);
            if (busy(in_flight, &gang_claim_resource, p->ns, p->claims[c].name)) {
                all_claims = false;
                continue;
            }
            if ((rc = commit_claim(p, c, pool, &places[i], have, out, err)) < 0)
                return -1;
            all_claims = all_claims && rc == 1;
        }
    }
    for (int i = 0; i < npods; i++) {
        const struct gang_pod *p = &pods[i];
        const char *pool = nodes[places[i].node].pool;
        const json_t *pod = cached(pods_cache, p->ns, p->name);
        const char *node = str_at(json_object_get(pod, "spec"), "nodeName", NULL);
        const char *uid = str_at(pod, "metadata", "uid");
        if (!pod || !uid || strcmp(uid, p->uid) != 0)
            return ism_err(err, EBUSY, "pod %s/%s is gone", p->ns, p->name);
        if (node && *node) {
            if (strcmp(node, pool) != 0)
                return ism_err(err, EBUSY, "pod %s/%s was bound to %s by someone else", p->ns,
                               p->name, node);
            continue;
        }
        all_bound = false;
        if (!all_claims || busy(in_flight, &gang_pod_resource, p->ns, p->name))
            continue;
        json_t *b = gang_binding(p, pool);
        if (!b || writes_add(out, WRITE_BIND, &gang_pod_resource, p->ns, p->name, NULL, b) < 0)
            return ism_err(err, ENOMEM, "out of memory");
        out->v[out->n - 1].urgent = true;
    }
    return all_bound && all_claims ? 1 : 0;
}

/* Whether claim have holds an allocation reserved for one of the pods. */
static bool ours(const json_t *have, const struct gang_pod *pods, int npods)
{
    const json_t *r;
    size_t i;

    json_array_foreach(json_object_get(json_object_get(have, "status"), "reservedFor"), i, r) {
        const char *uid = json_string_value(json_object_get(r, "uid"));
        for (int p = 0; uid && p < npods; p++)
            if (strcmp(uid, pods[p].uid) == 0)
                return true;
    }
    return false;
}

int gang_rollback_plan(const struct gang_pod *pods, int npods, const json_t *claims,
                       const json_t *in_flight, struct writes *out, ism_error_t *err)
{
    bool done = true;

    if (!pods || npods < 0 || !out)
        return ism_err(err, EINVAL, "gang rollback: bad arguments");
    for (int i = 0; i < npods; i++) {
        const struct gang_pod *p = &pods[i];
        for (int c = 0; c < p->nclaims; c++) {
            const json_t *have = cached(claims, p->ns, p->claims[c].name);
            json_t *body;
            write_op_t op;
            if (!have || !ism_has_finalizer(have, ISM_GANG_FINALIZER))
                continue;
            done = false;
            if (busy(in_flight, &gang_claim_resource, p->ns, p->claims[c].name))
                continue;
            if (ours(have, pods, npods)) {
                /* allocation and reservation go together, as they came */
                op = WRITE_UPDATE_STATUS;
                body = json_deep_copy(have);
                if (body && json_object_set_new(body, "status", json_object()) < 0) {
                    json_decref(body);
                    body = NULL;
                }
            } else { /* nothing of ours in its status: only the finalizer */
                op = WRITE_UPDATE;
                body = ism_with_finalizer(have, ISM_GANG_FINALIZER, false);
            }
            if (!body || writes_add(out, op, &gang_claim_resource, p->ns, p->claims[c].name, NULL,
                                    body) < 0)
                return ism_err(err, ENOMEM, "out of memory");
        }
    }
    return done ? 1 : 0;
}
