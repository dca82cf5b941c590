/* checkpoint.c - see checkpoint.h */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dra/checkpoint.h"
#include "lib/util/file.h"
#include "lib/util/bitmap.h"

struct ism_ckpt {
    int n, cap;
    struct ism_prepared *claims; /* in the order they were put */
};

ism_ckpt_t *ism_ckpt_create(void)
{
    return calloc(1, sizeof(ism_ckpt_t));
}

static void prepared_free(struct ism_prepared *p)
{
    free(p->cpus);
    free(p->mems);
}

void ism_ckpt_destroy(ism_ckpt_t *c)
{
    int e = errno, i;

    if (c) {
        for (i = 0; i < c->n; i++)
            prepared_free(&c->claims[i]);
        free(c->claims);
        free(c);
    }
    errno = e;
}

int ism_ckpt_count(const ism_ckpt_t *c)
{
    return c ? c->n : 0;
}

const struct ism_prepared *ism_ckpt_at(const ism_ckpt_t *c, int i)
{
    return c && i >= 0 && i < c->n ? &c->claims[i] : NULL;
}

static int index_of(const ism_ckpt_t *c, const char *uid)
{
    int i;

    for (i = 0; c && uid && i < c->n; i++)
        if (strcmp(c->claims[i].alloc.uid, uid) == 0)
            return i;
    return -1;
}

const struct ism_prepared *ism_ckpt_find(const ism_ckpt_t *c, const char *uid)
{
    int i = index_of(c, uid);

    return i < 0 ? NULL : &c->claims[i];
}

int ism_ckpt_put(ism_ckpt_t *c, const struct ism_prepared *p, ism_error_t *err)
{
    struct ism_prepared copy;
    int i;

    if (!c || !p || !p->cpus || !p->mems)
        return ism_err(err, EINVAL, "checkpoint: invalid argument");
    copy = *p;
    copy.cpus = strdup(p->cpus);
    copy.mems = strdup(p->mems);
    if (!copy.cpus || !copy.mems) {
        prepared_free(&copy);
        return ism_err(err, ENOMEM, "out of memory");
    }
    if ((i = index_of(c, p->alloc.uid)) >= 0) {
        prepared_free(&c->claims[i]);
        c->claims[i] = copy;
        return 0;
    }
    if (c->n >= ISM_CKPT_MAX_CLAIMS) {
        prepared_free(&copy);
        return ism_err(err, ENOSPC, "checkpoint: more than %d claims", ISM_CKPT_MAX_CLAIMS);
    }
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 8;
        struct ism_prepared *bigger = realloc(c->claims, (size_t)cap * sizeof(*bigger));

        if (!bigger) {
            prepared_free(&copy);
            return ism_err(err, ENOMEM, "out of memory");
        }
        c->claims = bigger;
        c->cap = cap;
    }
    c->claims[c->n++] = copy;
    return 0;
}

int ism_ckpt_remove(ism_ckpt_t *c, const char *uid)
{
    int i = index_of(c, uid);

    if (i < 0)
        return 0;
    prepared_free(&c->claims[i]);
    memmove(&c->claims[i], &c->claims[i + 1], (size_t)(c->n - i - 1) * sizeof(c->claims[0]));
    c->n--;
    return 1;
}

/* ---- encoding ----------------------------------------------------------- */

static json_t *encode_claim(const struct ism_prepared *p)
{
    json_t *devs = json_array(), *o;
    int i;

    for (i = 0; devs && i < p->alloc.ndevs; i++) {
        const struct ism_claim_dev *d = &p->alloc.devs[i];

        if (json_array_append_new(devs, json_pack("{s:s, s:s, s:s}", "request", d->request,
                                                  "pool", d->pool, "device", d->device)) < 0) {
            json_decref(devs);
            return NULL;
        }
    }
    if (!devs)
        return NULL;
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "uid", p->alloc.uid, "namespace",
                  p->namespace, "name", p->name, "cpus", p->cpus, "mems", p->mems, "slurmJob",
                  p->alloc.slurm_job > 0 ? json_integer(p->alloc.slurm_job) : json_null(),
                  "devices", devs);
    return o;
}

char *ism_ckpt_encode(const ism_ckpt_t *c, ism_error_t *err)
{
    json_t *claims = json_array(), *root;
    char *text = NULL;
    int i;

    if (!c) {
        json_decref(claims);
        return ism_err(err, EINVAL, "checkpoint: invalid argument"), NULL;
    }
    for (i = 0; claims && i < c->n; i++)
        if (json_array_append_new(claims, encode_claim(&c->claims[i])) < 0) {
            json_decref(claims);
            claims = NULL;
        }
    /* "o" steals claims, also when packing fails. */
    root = claims ? json_pack("{s:i, s:o}", "version", ISM_CKPT_VERSION, "claims", claims) : NULL;
    if (root)
        text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!text)
        ism_err(err, ENOMEM, "checkpoint: out of memory");
    return text;
}

/* ---- decoding ----------------------------------------------------------- */

/* Every key of obj is one of the NULL-terminated keys; else -1 naming it. */
static int only_keys(json_t *obj, const char *const *keys, const char *where, ism_error_t *err)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v) {
        const char *const *k;

        for (k = keys; *k && strcmp(*k, key) != 0; k++)
            ;
        if (!*k)
            return ism_err(err, EINVAL, "%s: unknown key \"%.64s\"", where, key);
    }
    return 0;
}

/* A string member, 1..size-1 bytes without NUL, into buf. */
static int str_field(json_t *obj, const char *key, char *buf, size_t size, const char *where,
                     ism_error_t *err)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= size ||
        strlen(json_string_value(v)) != json_string_length(v))
        return ism_err(err, EINVAL, "%s.%s: %s", where, key,
                       v ? "not a string of the right length" : "missing");
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* A cpu list member, canonical: a new string into *out. */
static int list_field(json_t *obj, const char *key, char **out, const char *where,
                      ism_error_t *err)
{
    json_t *v = json_object_get(obj, key);
    ism_bitmap_t *b;

    if (!json_is_string(v))
        return ism_err(err, EINVAL, "%s.%s: %s", where, key, v ? "not a string" : "missing");
    if (!(b = ism_bitmap_parse_list(json_string_value(v), err)))
        return ism_errprefix(err, "%s.%s", where, key);
    if (ism_bitmap_empty(b)) {
        ism_bitmap_destroy(b);
        return ism_err(err, EINVAL, "%s.%s: empty", where, key);
    }
    *out = ism_bitmap_format_list(b);
    ism_bitmap_destroy(b);
    return *out ? 0 : ism_err(err, ENOMEM, "out of memory");
}

static int decode_device(json_t *o, struct ism_claim_dev *d, const char *where, ism_error_t *err)
{
    static const char *const keys[] = { "request", "pool", "device", NULL };

    if (!json_is_object(o))
        return ism_err(err, EINVAL, "%s: not an object", where);
    if (only_keys(o, keys, where, err) < 0 ||
        str_field(o, "request", d->request, sizeof(d->request), where, err) < 0 ||
        str_field(o, "pool", d->pool, sizeof(d->pool), where, err) < 0 ||
        str_field(o, "device", d->device, sizeof(d->device), where, err) < 0)
        return -1;
    if ((d->core = ism_dra_core_index(d->device)) < 0)
        return ism_err(err, EINVAL, "%s.device: not core-<N>", where);
    return 0;
}

static int decode_claim(json_t *o, struct ism_prepared *p, const char *where, ism_error_t *err)
{
    static const char *const keys[] = { "uid", "namespace", "name", "cpus", "mems",
                                        "slurmJob", "devices", NULL };
    char at[96];
    json_t *v, *devs;
    size_t i;

    if (!json_is_object(o))
        return ism_err(err, EINVAL, "%s: not an object", where);
    if (only_keys(o, keys, where, err) < 0 ||
        str_field(o, "uid", p->alloc.uid, sizeof(p->alloc.uid), where, err) < 0)
        return -1;
    if (!ism_dra_uid_valid(p->alloc.uid))
        return ism_err(err, EINVAL, "%s.uid: not a UID", where);
    if (str_field(o, "namespace", p->namespace, sizeof(p->namespace), where, err) < 0 ||
        str_field(o, "name", p->name, sizeof(p->name), where, err) < 0 ||
        list_field(o, "cpus", &p->cpus, where, err) < 0 ||
        list_field(o, "mems", &p->mems, where, err) < 0)
        return -1;
    v = json_object_get(o, "slurmJob");
    p->alloc.slurm_job = -1;
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
            json_integer_value(v) > 0x7fffffff)
            return ism_err(err, EINVAL, "%s.slurmJob: not a job id", where);
        p->alloc.slurm_job = (long)json_integer_value(v);
    }
    devs = json_object_get(o, "devices");
    if (!json_is_array(devs) || json_array_size(devs) == 0 ||
        json_array_size(devs) > ISM_DRA_MAX_RESULTS)
        return ism_err(err, EINVAL, "%s.devices: not a list of 1 to %d devices", where,
                       ISM_DRA_MAX_RESULTS);
    for (i = 0; i < json_array_size(devs); i++) {
        snprintf(at, sizeof(at), "%s.devices[%zu]", where, i);
        if (decode_device(json_array_get(devs, i), &p->alloc.devs[i], at, err) < 0)
            return -1;
    }
    p->alloc.ndevs = (int)i;
    return 0;
}

ism_ckpt_t *ism_ckpt_decode(const char *text, size_t len, ism_error_t *err)
{
    static const char *const keys[] = { "version", "claims", NULL };
    ism_ckpt_t *c = NULL;
    struct ism_prepared *p = NULL;
    json_error_t jerr;
    json_t *root, *v, *claims;
    char where[48];
    size_t i;

    if (!text)
        return ism_err(err, EINVAL, "checkpoint: no input"), NULL;
    if (len > ISM_CKPT_MAX_BYTES)
        return ism_err(err, EINVAL, "checkpoint: %zu bytes, more than %d", len,
                       ISM_CKPT_MAX_BYTES), NULL;
    if (!(root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)))
        return ism_err(err, EINVAL, "checkpoint: not JSON: %s at line %d column %d", jerr.text,
                       jerr.line, jerr.column), NULL;
    if (!json_is_object(root)) {
        ism_err(err, EINVAL, "checkpoint: not a JSON object");
        goto fail;
    }
    if (only_keys(root, keys, "checkpoint", err) < 0)
        goto fail;
    v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) != ISM_CKPT_VERSION) {
        ism_err(err, EINVAL, "checkpoint: version: not %d", ISM_CKPT_VERSION);
        goto fail;
    }
    claims = json_object_get(root, "claims");
    if (!json_is_array(claims) || json_array_size(claims) > ISM_CKPT_MAX_CLAIMS) {
        ism_err(err, EINVAL, "checkpoint: claims: not a list of at most %d", ISM_CKPT_MAX_CLAIMS);
        goto fail;
    }
    if (!(c = ism_ckpt_create()) || !(p = calloc(1, sizeof(*p)))) {
        ism_err(err, ENOMEM, "out of memory");
        goto fail;
    }
    for (i = 0; i < json_array_size(claims); i++) {
        snprintf(where, sizeof(where), "checkpoint: claims[%zu]", i);
        memset(p, 0, sizeof(*p));
        if (decode_claim(json_array_get(claims, i), p, where, err) < 0)
            goto fail;
        if (ism_ckpt_find(c, p->alloc.uid)) {
            ism_err(err, EINVAL, "%s: claim %s twice", where, p->alloc.uid);
            goto fail;
        }
        if (ism_ckpt_put(c, p, err) < 0)
            goto fail;
        prepared_free(p);
    }
    free(p);
    json_decref(root);
    return c;
fail:
    if (p)
        prepared_free(p);
    free(p);
    ism_ckpt_destroy(c);
    json_decref(root);
    return NULL;
}

ism_ckpt_t *ism_ckpt_load(const char *path, ism_error_t *err)
{
    ism_error_t rerr = ISM_ERROR_INIT;
    size_t len;
    char *text = ism_file_read(path, ISM_CKPT_MAX_BYTES, &len, &rerr);
    ism_ckpt_t *c;

    if (!text) {
        if (errno == ENOENT) {
            if (!(c = ism_ckpt_create()))
                ism_err(err, ENOMEM, "out of memory");
            return c;
        }
        return ism_err(err, errno == EFBIG ? EINVAL : errno, "%s", rerr.text), NULL;
    }
    c = ism_ckpt_decode(text, len, err);
    free(text);
    if (!c)
        ism_errprefix(err, "%s", path);
    return c;
}

int ism_ckpt_save(const ism_ckpt_t *c, const char *path, ism_error_t *err)
{
    char *text = ism_ckpt_encode(c, err);
    int rc;

    if (!text)
        return -1;
    rc = ism_file_write_atomic(path, text, strlen(text), 0600, true, err);
    free(text);
    return rc;
}
