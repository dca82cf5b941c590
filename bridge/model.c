/* model.c - see model.h */
#include <config.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/names.h"
#include "model.h"

#define NAME_MAX_LEN 253       /* a DNS-1123 subdomain: object names */
#define LABEL_MAX_LEN 63       /* a DNS-1123 label, a label value */
#define ATTR_STRING_MAX 64     /* a device attribute's string value */
#define NAME_HASH_HEX 10       /* hex digits of the pool's hash in a cut name */
#define JOB_NAME_MAX 253       /* bytes of a job name kept in the annotation */
#define ANNOTATION_JOB_NAME "isthmus.io/slurm-job-name"
#define SLICE_API_VERSION "resource.k8s.io/v1"

#define ATTR_NUMA "resource.kubernetes.io/numaNode"
#define ATTR_SOCKET ISM_DRIVER "/socket"
#define ATTR_L3 ISM_DRIVER "/l3cache"
#define ATTR_CORE ISM_DRIVER "/core"
#define ATTR_CPUS ISM_DRIVER "/cpus"
#define ATTR_THREADS ISM_DRIVER "/threads"
#define ATTR_CORE_TYPE ISM_DRIVER "/coreType"

/* ------------------------------------------------------------ validation */

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int check_pool(const char *pool, ism_error_t *err)
{
    if (!ism_name_valid(ISM_NAME_DNS_SUBDOMAIN, pool))
        return ism_err(err, EINVAL, "pool name '%.300s' is not a Kubernetes Node name",
                       pool ? pool : "(null)");
    return 0;
}

static int check_slurm_node(const char *slurm_node, ism_error_t *err)
{
    /* A label value may be empty; a node name may not. */
    if (!slurm_node || !*slurm_node || !ism_name_valid(ISM_NAME_LABEL_VALUE, slurm_node))
        return ism_err(err, EINVAL, "Slurm node name '%.100s' cannot be a label value",
                       slurm_node ? slurm_node : "(null)");
    return 0;
}

/* ------------------------------------------------------------ names */

/* The SHA-256 of data in lowercase hex. */
static int sha256_hex(const void *data, size_t len, char out[ISM_DIGEST_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen * 2 + 1 != ISM_DIGEST_LEN) {
        errno = ENOMEM; /* the one way a built-in digest fails */
        return -1;
    }
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * mdlen] = '\0';
    return 0;
}

/* prefix pool suffix, or when that passes NAME_MAX_LEN, prefix, as much of
 * pool as fits ending in an alphanumeric, '-', a hash of the whole pool and
 * suffix.  prefix is empty or ends in '-'; suffix starts with '-'. */
static char *join_name(const char *prefix, const char *pool, const char *suffix)
{
    size_t fixed = strlen(prefix) + strlen(suffix), keep = strlen(pool);
    char hash[ISM_DIGEST_LEN], *name;
    int n;

    if (fixed + keep <= NAME_MAX_LEN) {
        n = asprintf(&name, "%s%s%s", prefix, pool, suffix);
    } else {
        if (sha256_hex(pool, keep, hash) < 0)
            return NULL;
        hash[NAME_HASH_HEX] = '\0';
        keep = NAME_MAX_LEN - fixed - NAME_HASH_HEX - 1;
        while (keep > 0 && !is_lower_alnum(pool[keep - 1]))
            keep--;
        n = asprintf(&name, "%s%.*s%s%s%s", prefix, (int)keep, pool, keep ? "-" : "", hash,
                     suffix);
    }
    if (n < 0) {
        errno = ENOMEM;
        return NULL;
    }
    return name;
}

char *ism_slice_name(const char *pool, int index)
{
    char suffix[64];

    if (check_pool(pool, NULL) < 0 || index < 0) {
        errno = EINVAL;
        return NULL;
    }
    snprintf(suffix, sizeof(suffix), "-%s-%d", ISM_DRIVER, index);
    return join_name("", pool, suffix);
}

char *ism_claim_name(uint32_t job_id, const char *pool, int index)
{
    char prefix[32], suffix[32];

    if (check_pool(pool, NULL) < 0 || index < 0) {
        errno = EINVAL;
        return NULL;
    }
    snprintf(prefix, sizeof(prefix), "slurm-%" PRIu32 "-", job_id);
    snprintf(suffix, sizeof(suffix), "-%d", index);
    return join_name(prefix, pool, suffix);
}

/* ------------------------------------------------------------ devices */

/* Set attrs[key] to {"int": v} or {"string": s}; -1 on failure. */
static int set_int_attr(json_t *attrs, const char *key, json_int_t v)
{
    return json_object_set_new(attrs, key, json_pack("{s:I}", "int", v));
}

static int set_string_attr(json_t *attrs, const char *key, const char *s)
{
    return json_object_set_new(attrs, key, json_pack("{s:s}", "string", s));
}

static json_t *core_attributes(const struct ism_core *c, const char *cpus)
{
    json_t *attrs = json_object();
    int rc = 0;

    if (c->numa >= 0)
        rc |= set_int_attr(attrs, ATTR_NUMA, c->numa);
    rc |= set_int_attr(attrs, ATTR_SOCKET, c->socket);
    if (c->l3 >= 0)
        rc |= set_int_attr(attrs, ATTR_L3, c->l3);
    rc |= set_int_attr(attrs, ATTR_CORE, c->index);
    rc |= set_string_attr(attrs, ATTR_CPUS, cpus);
    rc |= set_int_attr(attrs, ATTR_THREADS, ism_bitmap_count(c->cpus));
    rc |= set_string_attr(attrs, ATTR_CORE_TYPE, ism_core_kind_name(c->kind));
    if (rc) {
        json_decref(attrs);
        return NULL;
    }
    return attrs;
}

static json_t *core_device(const struct ism_core *c, ism_error_t *err)
{
    char *cpus = ism_bitmap_format_list(c->cpus), name[32];
    json_t *dev = NULL, *attrs;

    if (!cpus) {
        ism_err(err, ENOMEM, "core %d: out of memory", c->index);
        return NULL;
    }
    if (strlen(cpus) > ATTR_STRING_MAX) {
        ism_err(err, EINVAL,
                "core %d: its cpu list '%.100s' is longer than %d characters, the limit of "
                "a device attribute",
                c->index, cpus, ATTR_STRING_MAX);
        goto out;
    }
    snprintf(name, sizeof(name), "core-%d", c->index);
    attrs = core_attributes(c, cpus);
    dev = json_object();
    if (json_object_set_new(dev, "name", json_string(name)) < 0 ||
        json_object_set_new(dev, "attributes", attrs) < 0) {
        json_decref(dev);
        dev = NULL;
        ism_err(err, ENOMEM, "core %d: out of memory", c->index);
    }
out:
    free(cpus);
    return dev;
}

json_t *ism_devices_build(const ism_topo_t *topo, ism_error_t *err)
{
    json_t *devices;

    if (!topo) {
        ism_err(err, EINVAL, "devices: no topology");
        return NULL;
    }
    if (!(devices = json_array())) {
        ism_err(err, ENOMEM, "devices: out of memory");
        return NULL;
    }
    for (int i = 0; i < topo->ncores; i++) {
        json_t *dev = core_device(&topo->cores[i], err);

        if (!dev || json_array_append_new(devices, dev) < 0) {
            if (dev)
                ism_err(err, ENOMEM, "devices: out of memory");
            json_decref(devices);
            return NULL;
        }
    }
    return devices;
}

/* Append v in decimal and the separator sep to *p (no stdio: a key is
 * made for every node of a poll). */
static char *put_int(char *p, int v, char sep)
{
    char digits[16];
    int n = 0;
    unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;

    if (v < 0)
        *p++ = '-';
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *p++ = digits[--n];
    *p++ = sep;
    return p;
}

char *ism_devices_key(const ism_topo_t *topo)
{
    size_t size = 1;
    char *key, *p;
    int bit;

    if (!topo) {
        errno = EINVAL;
        return NULL;
    }
    /* an int takes 12 bytes at most with its separator */
    for (int i = 0; i < topo->ncores; i++)
        size += 12 * (5 + (size_t)ism_bitmap_count(topo->cores[i].cpus));
    if (!(p = key = malloc(size)))
        return NULL;
    /* Exactly what core_device reads, in its order. */
    for (int i = 0; i < topo->ncores; i++) {
        const struct ism_core *c = &topo->cores[i];
        p = put_int(p, c->index, ' ');
        p = put_int(p, c->socket, ' ');
        p = put_int(p, c->numa, ' ');
        p = put_int(p, c->l3, ' ');
        p = put_int(p, (int)c->kind, ':');
        ism_bitmap_foreach(bit, c->cpus)
            p = put_int(p, bit, ',');
        *p++ = ';';
    }
    *p = '\0';
    return key;
}

/* ------------------------------------------------------------ slices */

struct slice_args {
    const char *pool, *node_uid, *slurm_node;
    const json_t *devices;
    int64_t generation;
    size_t count; /* slices in the pool */
};

/* Slice index of the pool, holding devices [first, last). */
static json_t *slice_build(const struct slice_args *a, size_t index, size_t first, size_t last)
{
    char *name = ism_slice_name(a->pool, (int)index);
    json_t *slice = NULL, *devs = json_array();

    for (size_t i = first; devs && i < last; i++) {
        if (json_array_append_new(devs, json_deep_copy(json_array_get(a->devices, i))) < 0) {
            json_decref(devs);
            devs = NULL;
        }
    }
    if (name && devs)
        slice = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}, s:[{s:s, s:s, s:s, s:s, s:b}]},"
                          " s:{s:s, s:{s:s, s:I, s:I}, s:s}}",
                          "apiVersion", SLICE_API_VERSION, "kind", "ResourceSlice", "metadata",
                          "name", name, "labels", ISM_LABEL_SLURM_NODE, a->slurm_node,
                          ISM_LABEL_MANAGED_BY, ISM_MANAGER, "ownerReferences", "apiVersion",
                          "v1", "kind", "Node", "name", a->pool, "uid", a->node_uid,
                          "controller", 1, "spec", "driver", ISM_DRIVER, "pool", "name",
                          a->pool, "generation", (json_int_t)a->generation,
                          "resourceSliceCount", (json_int_t)a->count, "nodeName", a->pool);
    if (slice && json_object_set_new(json_object_get(slice, "spec"), "devices", devs) < 0) {
        json_decref(slice);
        slice = NULL;
    } else if (!slice) {
        json_decref(devs);
    }
    free(name);
    return slice;
}

json_t *ism_slices_build(const char *pool, const char *node_uid, const char *slurm_node,
                         const json_t *devices, int64_t generation, ism_error_t *err)
{
    struct slice_args a = { pool, node_uid, slurm_node, devices, generation, 0 };
    size_t ndev = json_array_size(devices);
    json_t *slices;

    if (check_pool(pool, err) < 0 || check_slurm_node(slurm_node, err) < 0)
        return NULL;
    if (!node_uid || !*node_uid || !json_is_array(devices) || generation < 0) {
        ism_err(err, EINVAL, "slices of pool %s: %s", pool,
                !node_uid || !*node_uid ? "no Node uid"
                : !json_is_array(devices) ? "devices is not an array"
                                          : "negative generation");
        return NULL;
    }
    a.count = ndev ? (ndev + ISM_SLICE_MAX_DEVICES - 1) / ISM_SLICE_MAX_DEVICES : 1;
    if (!(slices = json_array()))
        goto nomem;
    for (size_t i = 0; i < a.count; i++) {
        size_t first = i * ISM_SLICE_MAX_DEVICES;
        size_t last = first + ISM_SLICE_MAX_DEVICES < ndev ? first + ISM_SLICE_MAX_DEVICES : ndev;

        if (json_array_append_new(slices, slice_build(&a, i, first, last)) < 0)
            goto nomem;
    }
    return slices;
nomem:
    json_decref(slices);
    ism_err(err, ENOMEM, "slices of pool %s: out of memory", pool);
    return NULL;
}

/* ------------------------------------------------------------ digest */

static bool is_empty(const json_t *v)
{
    return json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0);
}

/* A deep copy of v without the object members that are null or empty
 * arrays or objects: the API server leaves those out of what it sends
 * back (Go's omitempty), and they mean the same as absent. */
static json_t *pruned(const json_t *v)
{
    json_t *out, *m;
    const char *key;
    size_t i;

    if (json_is_object(v)) {
        out = json_object();
        json_object_foreach((json_t *)v, key, m) {
            json_t *c;

            if (is_empty(m))
                continue;
            if (!(c = pruned(m)) || is_empty(c)) {
                if (!c)
                    goto fail;
                json_decref(c);
            } else if (json_object_set_new(out, key, c) < 0) {
                goto fail;
            }
        }
        return out;
    }
    if (json_is_array(v)) {
        out = json_array();
        json_array_foreach(v, i, m) {
            if (json_array_append_new(out, pruned(m)) < 0)
                goto fail;
        }
        return out;
    }
    return json_deep_copy(v);
fail:
    json_decref(out);
    return NULL;
}

/* What isthmusd owns of a slice: {spec, labels (ours only), ownerReferences}. */
static json_t *slice_projection(const json_t *slice)
{
    static const char *const ours[] = { ISM_LABEL_SLURM_NODE, ISM_LABEL_MANAGED_BY };
    json_t *meta = json_object_get(slice, "metadata");
    json_t *labels = json_object_get(meta, "labels");
    json_t *proj = json_object(), *mine = json_object();
    int rc = 0;

    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        json_t *v = json_object_get(labels, ours[i]);

        if (v)
            rc |= json_object_set(mine, ours[i], v);
    }
    rc |= json_object_set_new(proj, "labels", mine);
    if (json_object_get(slice, "spec"))
        rc |= json_object_set(proj, "spec", json_object_get(slice, "spec"));
    if (json_object_get(meta, "ownerReferences"))
        rc |= json_object_set(proj, "ownerReferences", json_object_get(meta, "ownerReferences"));
    if (rc) {
        json_decref(proj);
        return NULL;
    }
    return proj;
}

/* The SHA-256 of the canonical text (pruned, keys sorted, compact) of v,
 * after the text of tail when given ("" for an absent or empty v). */
static int canon_digest(const json_t *v, const char *tail, char out[ISM_DIGEST_LEN])
{
    json_t *canon = v && !is_empty(v) ? pruned(v) : NULL;
    char *text = canon ? json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *all = NULL;
    int rc = -1;

    if (canon && !text)
        errno = ENOMEM;
    else if (asprintf(&all, "%s\n%s", text ? text : "", tail ? tail : "") < 0)
        errno = ENOMEM;
    else
        rc = sha256_hex(all, strlen(all), out);
    free(all);
    free(text);
    json_decref(canon);
    return rc;
}

/* spec without its devices (a new reference), or NULL when out of memory. */
static json_t *spec_without_devices(const json_t *spec)
{
    json_t *rest = json_is_object(spec) ? json_copy((json_t *)spec) : json_incref((json_t *)spec);

    if (json_is_object(rest))
        json_object_del(rest, "devices");
    return rest;
}

int ism_slice_digest_devices(const json_t *devices, char out[ISM_DIGEST_LEN])
{
    return canon_digest(devices, NULL, out);
}

int ism_slice_spec_digest(const json_t *spec, const char *devices_digest,
                          char out[ISM_DIGEST_LEN])
{
    json_t *rest = spec ? spec_without_devices(spec) : NULL;
    int rc;

    if (spec && !rest) {
        errno = ENOMEM;
        return -1;
    }
    rc = canon_digest(rest, devices_digest, out);
    json_decref(rest);
    return rc;
}

int ism_slice_meta_digest(const json_t *slice, const char *spec_digest,
                          char out[ISM_DIGEST_LEN])
{
    json_t *proj;
    int rc = -1;

    if (!json_is_object(slice) || !out || !spec_digest) {
        errno = EINVAL;
        return -1;
    }
    if ((proj = slice_projection(slice))) {
        json_object_del(proj, "spec");
        rc = canon_digest(proj, spec_digest, out);
    } else {
        errno = ENOMEM;
    }
    json_decref(proj);
    return rc;
}

int ism_slice_digest(const json_t *slice, char out[ISM_DIGEST_LEN])
{
    const json_t *spec = json_object_get(slice, "spec");
    char dev[ISM_DIGEST_LEN], sp[ISM_DIGEST_LEN];

    if (!json_is_object(slice) || !out) {
        errno = EINVAL;
        return -1;
    }
    if (ism_slice_digest_devices(json_object_get(spec, "devices"), dev) < 0 ||
        ism_slice_spec_digest(spec, dev, sp) < 0)
        return -1;
    return ism_slice_meta_digest(slice, sp, out);
}

/* ------------------------------------------------------------ slice parts */

json_t *ism_slice_parts_build(const json_t *devices, ism_error_t *err)
{
    size_t ndev = json_array_size(devices);
    size_t count = ndev ? (ndev + ISM_SLICE_MAX_DEVICES - 1) / ISM_SLICE_MAX_DEVICES : 1;
    json_t *texts = json_array(), *digests = json_array(), *parts;

    if (!json_is_array(devices)) {
        json_decref(texts);
        json_decref(digests);
        ism_err(err, EINVAL, "slice parts: devices is not an array");
        return NULL;
    }
    parts = json_pack("{s:I, s:o, s:o}", "count", (json_int_t)count, "text", texts, "digest",
                      digests);
    for (size_t i = 0; parts && i < count; i++) {
        size_t first = i * ISM_SLICE_MAX_DEVICES;
        size_t last = first + ISM_SLICE_MAX_DEVICES < ndev ? first + ISM_SLICE_MAX_DEVICES : ndev;
        json_t *chunk = json_array();
        char digest[ISM_DIGEST_LEN], *text = NULL;
        int rc = chunk ? 0 : -1;

        for (size_t d = first; rc == 0 && d < last; d++)
            rc = json_array_append(chunk, json_array_get(devices, d));
        /* Keys sorted: the text sent is the canonical text hashed. */
        if (rc == 0 && canon_digest(chunk, NULL, digest) == 0 &&
            (text = json_dumps(chunk, JSON_COMPACT | JSON_SORT_KEYS)) &&
            json_array_append_new(texts, json_string(text)) == 0 &&
            json_array_append_new(digests, json_string(digest)) == 0)
            rc = 0;
        else
            rc = -1;
        free(text);
        json_decref(chunk);
        if (rc < 0) {
            json_decref(parts);
            parts = NULL;
        }
    }
    if (!parts)
        ism_err(err, ENOMEM, "slice parts: out of memory");
    return parts;
}

size_t ism_slice_parts_count(const json_t *parts)
{
    return (size_t)json_integer_value(json_object_get(parts, "count"));
}

const char *ism_slice_parts_digest(const json_t *parts, size_t index)
{
    return json_string_value(json_array_get(json_object_get(parts, "digest"), index));
}

json_t *ism_slice_skeleton(const char *pool, const char *node_uid, const char *slurm_node,
                           const json_t *parts, size_t index, int64_t generation,
                           ism_error_t *err)
{
    struct slice_args a = { pool, node_uid, slurm_node, NULL, generation,
                            ism_slice_parts_count(parts) };
    json_t *slice;

    if (check_pool(pool, err) < 0 || check_slurm_node(slurm_node, err) < 0)
        return NULL;
    if (!node_uid || !*node_uid || !ism_slice_parts_digest(parts, index) || generation < 0) {
        ism_err(err, EINVAL, "slice %zu of pool %s: %s", index, pool,
                !node_uid || !*node_uid ? "no Node uid"
                : !ism_slice_parts_digest(parts, index) ? "no such slice in its parts"
                                                        : "negative generation");
        return NULL;
    }
    if (!(slice = slice_build(&a, index, 0, 0))) {
        ism_err(err, ENOMEM, "slice %zu of pool %s: out of memory", index, pool);
        return NULL;
    }
    json_object_del(json_object_get(slice, "spec"), "devices");
    return slice;
}

char *ism_slice_text(const json_t *skeleton, const json_t *parts, size_t index)
{
    const char *devices = json_string_value(json_array_get(json_object_get(parts, "text"), index));
    char *head = devices ? json_dumps(skeleton, JSON_COMPACT) : NULL, *text = NULL;
    size_t n = head ? strlen(head) : 0;

    /* skeleton's last member is spec, spec's last nodeName: the text ends
     * in "}}", where the devices go. */
    if (!devices || !head || n < 2 || strcmp(head + n - 2, "}}") != 0 ||
        asprintf(&text, "%.*s,\"devices\":%s}}", (int)(n - 2), head, devices) < 0) {
        errno = devices && head ? ENOMEM : EINVAL;
        text = NULL;
    }
    free(head);
    return text;
}

/* ------------------------------------------------------------ claims */

struct claim_args {
    uint32_t job_id;
    char job_id_text[16];
    const char *job_name; /* NULL: no annotation */
    const char *pool, *slurm_node, *ns;
};

/* job_name cut to JOB_NAME_MAX bytes without splitting a UTF-8 sequence;
 * if jansson still refuses it (not UTF-8), its bytes outside ASCII
 * printables become '?'.  NULL for no name. */
static char *job_name_text(const char *job_name)
{
    size_t len = job_name ? strnlen(job_name, JOB_NAME_MAX + 1) : 0;
    json_t *probe;
    char *s;

    if (len == 0)
        return NULL;
    if (len > JOB_NAME_MAX) {
        len = JOB_NAME_MAX;
        while (len > 0 && ((unsigned char)job_name[len] & 0xc0) == 0x80)
            len--;
    }
    if (!(s = strndup(job_name, len)))
        return NULL;
    if ((probe = json_string(s))) {
        json_decref(probe);
        return s;
    }
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    return s;
}

static json_t *claim_results(const struct claim_args *a, const int *cores, int n)
{
    json_t *results = json_array();

    for (int i = 0; results && i < n; i++) {
        char device[32];

        snprintf(device, sizeof(device), "core-%d", cores[i]);
        if (json_array_append_new(results, json_pack("{s:s, s:s, s:s, s:s}", "request",
                                                     ISM_CLAIM_REQUEST, "driver", ISM_DRIVER,
                                                     "pool", a->pool, "device", device)) < 0) {
            json_decref(results);
            results = NULL;
        }
    }
    return results;
}

/* Claim index of the job, naming the n cores. */
static json_t *claim_build(const struct claim_args *a, int index, const int *cores, int n)
{
    char *name = ism_claim_name(a->job_id, a->pool, index);
    json_t *results = claim_results(a, cores, n), *claim = NULL;
    int rc = 0;

    if (name && results)
        claim = json_pack(
            "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s, s:s}, s:[s]},"
            " s:{s:{s:[{s:s, s:{s:s, s:s, s:I}}]}},"
            " s:{s:{s:{}, s:{s:[{s:[{s:s, s:s, s:[s]}]}]}}}}",
            "apiVersion", SLICE_API_VERSION, "kind", "ResourceClaim", "metadata", "name", name,
            "namespace", a->ns, "labels", ISM_LABEL_SLURM_JOB, a->job_id_text,
            ISM_LABEL_SLURM_NODE, a->slurm_node, ISM_LABEL_MANAGED_BY, ISM_MANAGER, "finalizers",
            ISM_FINALIZER, "spec", "devices", "requests", "name", ISM_CLAIM_REQUEST, "exactly",
            "deviceClassName", ISM_DRIVER, "allocationMode", "ExactCount", "count",
            (json_int_t)n, "status", "allocation", "devices", "nodeSelector",
            "nodeSelectorTerms", "matchFields", "key", "metadata.name", "operator", "In",
            "values", a->pool);
    if (claim) {
        json_t *alloc = json_object_get(json_object_get(claim, "status"), "allocation");

        rc |= json_object_set_new(json_object_get(alloc, "devices"), "results", results);
        results = NULL;
        if (a->job_name)
            rc |= json_object_set_new(json_object_get(claim, "metadata"), "annotations",
                                      json_pack("{s:s}", ANNOTATION_JOB_NAME, a->job_name));
    }
    if (rc) {
        json_decref(claim);
        claim = NULL;
    }
    json_decref(results);
    free(name);
    return claim;
}

static int check_claim_args(const char *pool, const char *slurm_node, const ism_bitmap_t *cores,
                            const char *ns, uint32_t job_id, ism_error_t *err)
{
    if (check_pool(pool, err) < 0 || check_slurm_node(slurm_node, err) < 0)
        return -1;
    if (job_id == 0)
        return ism_err(err, EINVAL, "claims on pool %s: job id 0", pool);
    if (!cores)
        return ism_err(err, EINVAL, "claims of job %" PRIu32 " on pool %s: no core set", job_id,
                       pool);
    if (!ism_name_valid(ISM_NAME_DNS_LABEL, ns))
        return ism_err(err, EINVAL, "claims of job %" PRIu32 ": namespace '%.100s' is not valid",
                       job_id, ns ? ns : "(null)");
    return 0;
}

json_t *ism_claims_build(uint32_t job_id, const char *job_name, const char *pool,
                         const char *slurm_node, const ism_bitmap_t *cores, const char *ns,
                         ism_error_t *err)
{
    struct claim_args a = { job_id, "", NULL, pool, slurm_node, ns };
    json_t *claims = NULL;
    char *name_text = NULL;
    int *idx = NULL, n = 0, bit;

    if (check_claim_args(pool, slurm_node, cores, ns, job_id, err) < 0)
        return NULL;
    snprintf(a.job_id_text, sizeof(a.job_id_text), "%" PRIu32, job_id);
    if (job_name && *job_name && !(a.job_name = name_text = job_name_text(job_name)))
        goto nomem;
    if (!(claims = json_array()) ||
        !(idx = malloc(sizeof(*idx) * ((size_t)ism_bitmap_count(cores) + 1))))
        goto nomem;
    ism_bitmap_foreach(bit, cores)
        idx[n++] = bit;
    for (int off = 0; off < n; off += ISM_CLAIM_MAX_RESULTS) {
        int m = n - off < ISM_CLAIM_MAX_RESULTS ? n - off : ISM_CLAIM_MAX_RESULTS;

        if (json_array_append_new(claims, claim_build(&a, off / ISM_CLAIM_MAX_RESULTS, idx + off,
                                                      m)) < 0)
            goto nomem;
    }
    free(idx);
    free(name_text);
    return claims;
nomem:
    free(idx);
    free(name_text);
    json_decref(claims);
    ism_err(err, ENOMEM, "claims of job %" PRIu32 ": out of memory", job_id);
    return NULL;
}

/* ------------------------------------------------------------ allocation */

struct result_key {
    const char *field[4]; /* request, driver, pool, device */
};

static int result_key_cmp(const void *pa, const void *pb)
{
    const struct result_key *a = pa, *b = pb;

    for (int i = 0; i < 4; i++) {
        int c = strcmp(a->field[i], b->field[i]);

        if (c)
            return c;
    }
    return 0;
}

/* The results of claim's status.allocation as sorted keys borrowed from
 * claim, in *keys (caller frees); their count, or -1 when the claim has
 * none or one lacks a field. */
static long result_keys(const json_t *claim, struct result_key **keys)
{
    static const char *const names[4] = { "request", "driver", "pool", "device" };
    json_t *alloc = json_object_get(json_object_get(claim, "status"), "allocation");
    json_t *results = json_object_get(json_object_get(alloc, "devices"), "results"), *r;
    size_t n = json_array_size(results), i;

    *keys = NULL;
    if (!json_is_array(results) || !(*keys = calloc(n + 1, sizeof(**keys))))
        return -1;
    json_array_foreach(results, i, r) {
        for (int f = 0; f < 4; f++) {
            if (!((*keys)[i].field[f] = json_string_value(json_object_get(r, names[f]))))
                return -1;
        }
    }
    qsort(*keys, n, sizeof(**keys), result_key_cmp);
    return (long)n;
}

bool ism_claim_allocation_equal(const json_t *existing, const json_t *wanted)
{
    struct result_key *a, *b;
    long na = result_keys(existing, &a), nb = result_keys(wanted, &b);
    bool equal = na >= 0 && na == nb;

    for (long i = 0; equal && i < na; i++)
        equal = result_key_cmp(&a[i], &b[i]) == 0;
    free(a);
    free(b);
    return equal;
}

bool ism_has_finalizer(const json_t *obj, const char *finalizer)
{
    json_t *list = json_object_get(json_object_get(obj, "metadata"), "finalizers"), *f;
    size_t i;

    json_array_foreach(list, i, f) {
        if (json_is_string(f) && finalizer && strcmp(json_string_value(f), finalizer) == 0)
            return true;
    }
    return false;
}

json_t *ism_with_finalizer(const json_t *obj, const char *finalizer, bool add)
{
    json_t *body = json_deep_copy(obj), *meta = json_object_get(body, "metadata"), *kept, *f;
    size_t i;

    if (!body || !json_is_object(meta) || !finalizer) {
        json_decref(body);
        errno = body ? EINVAL : ENOMEM;
        return NULL;
    }
    if (!(kept = json_array()))
        goto nomem;
    json_array_foreach(json_object_get(meta, "finalizers"), i, f) {
        if ((!json_is_string(f) || strcmp(json_string_value(f), finalizer) != 0) &&
            json_array_append(kept, f) < 0) {
            json_decref(kept);
            goto nomem;
        }
    }
    if ((add && json_array_append_new(kept, json_string(finalizer)) < 0) ||
        json_object_set_new(meta, "finalizers", kept) < 0)
        goto nomem;
    return body;
nomem:
    json_decref(body);
    errno = ENOMEM;
    return NULL;
}
