/* extra_table.c - see extra_table.h */
#include <config.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/topology/extra_table.h"
#include "lib/util/hash.h"

struct entry {
    char *name;
    char *extra;
    struct ism_topo_share *share;
};

struct ism_extra_table {
    struct entry *nodes; /* the last update's, sorted by name */
    int count;
};

/* ---- shares ---- */

struct ism_topo_share *ism_topo_share_get(struct ism_topo_share *share)
{
    __atomic_add_fetch(&share->refs, 1, __ATOMIC_RELAXED);
    return share;
}

void ism_topo_share_put(struct ism_topo_share *share)
{
    if (share && __atomic_sub_fetch(&share->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        ism_topo_destroy(share->topo);
        free(share);
    }
}

static void set_error(struct ism_topo_share *share, const ism_error_t *e)
{
    memcpy(share->error, e->text, sizeof(share->error));
    share->error[sizeof(share->error) - 1] = '\0';
}

/* Decode a full encoding into share, with its digest. */
static void decode_full(struct ism_topo_share *share, const char *json)
{
    ism_error_t e = ISM_ERROR_INIT;
    char *canonical;

    if (!(share->topo = ism_topo_decode(json, &e))) {
        ism_errprefix(&e, "published topology");
        set_error(share, &e);
        return;
    }
    /* The digest is of the canonical encoding, as the publisher computes
     * it, whatever spacing or key order an admin's edit left. */
    if (!(canonical = ism_topo_encode(share->topo, &e))) {
        ism_topo_destroy(share->topo);
        share->topo = NULL;
        set_error(share, &e);
        return;
    }
    ism_extra_digest(canonical, share->digest);
    free(canonical);
}

/* A new share for one Extra text (NULL only when out of memory): decoded
 * when full, a reference still to resolve, or an error. */
static struct ism_topo_share *share_decode(const char *extra)
{
    struct ism_topo_share *share = calloc(1, sizeof(*share));
    ism_error_t e = ISM_ERROR_INIT;
    char *value;
    int kind;

    if (!share)
        return NULL;
    share->refs = 1;
    if (!(value = ism_extra_get(extra, &e))) {
        if (errno != ENOENT)
            set_error(share, &e);
        return share;
    }
    if ((kind = ism_extra_ref_parse(value, share->ref, &e)) < 0)
        set_error(share, &e);
    else if (kind == 0)
        decode_full(share, value);
    free(value);
    return share;
}

static bool is_pending(const struct ism_topo_share *share)
{
    return !share->topo && share->ref[0];
}

/* ---- the table ---- */

ism_extra_table_t *ism_extra_table_create(void)
{
    return calloc(1, sizeof(ism_extra_table_t));
}

static void entries_free(struct entry *nodes, int count)
{
    for (int i = 0; nodes && i < count; i++) {
        free(nodes[i].name);
        free(nodes[i].extra);
        ism_topo_share_put(nodes[i].share);
    }
    free(nodes);
}

void ism_extra_table_destroy(ism_extra_table_t *t)
{
    int saved = errno;

    if (t) {
        entries_free(t->nodes, t->count);
        free(t);
    }
    errno = saved;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* What the last update gave node i, when its Extra is the same and it was
 * not a reference that failed to resolve (that one is tried again). */
static struct ism_topo_share *previous(const ism_extra_table_t *t, const char *name,
                                       const char *extra)
{
    struct entry key = { .name = (char *)name }, *hit = NULL;

    if (t->count)
        hit = bsearch(&key, t->nodes, (size_t)t->count, sizeof(key), cmp_entry);
    if (!hit || strcmp(hit->extra, extra) != 0 || is_pending(hit->share))
        return NULL;
    return ism_topo_share_get(hit->share);
}

/* Nodes still to decode, with a hash of their Extra, so that equal texts
 * sort together and each is decoded once. */
struct todo {
    uint64_t hash;
    const char *extra;
    int node;
};

static int cmp_todo(const void *a, const void *b)
{
    const struct todo *x = a, *y = b;

    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return strcmp(x->extra, y->extra);
}

/* Give every node without a share one: -1 when out of memory. */
static int decode_new(int n, const char *const *extras, struct ism_topo_share **shares)
{
    struct todo *todo = calloc((size_t)n + 1, sizeof(*todo));
    int count = 0, rc = 0;

    if (!todo)
        return -1;
    for (int i = 0; i < n; i++)
        if (!shares[i])
            todo[count++] = (struct todo){ ism_fnv1a_str(extras[i]), extras[i], i };
    qsort(todo, (size_t)count, sizeof(*todo), cmp_todo);
    for (int i = 0; i < count; i++) {
        struct todo *t = &todo[i];
        if (i > 0 && cmp_todo(t, t - 1) == 0)
            shares[t->node] = ism_topo_share_get(shares[(t - 1)->node]);
        else if (!(shares[t->node] = share_decode(t->extra))) {
            rc = -1;
            break;
        }
    }
    free(todo);
    return rc;
}

static int cmp_share_digest(const void *a, const void *b)
{
    return strcmp((*(struct ism_topo_share *const *)a)->digest,
                  (*(struct ism_topo_share *const *)b)->digest);
}

/* Every decoded topology of this update and the last, by digest. */
static struct ism_topo_share **digest_index(const ism_extra_table_t *t, int n,
                                            struct ism_topo_share **shares, int *count)
{
    struct ism_topo_share **index = calloc((size_t)(n + t->count) + 1, sizeof(*index));

    *count = 0;
    if (!index)
        return NULL;
    for (int i = 0; i < n; i++)
        if (shares[i]->topo)
            index[(*count)++] = shares[i];
    for (int i = 0; i < t->count; i++)
        if (t->nodes[i].share->topo)
            index[(*count)++] = t->nodes[i].share;
    qsort(index, (size_t)*count, sizeof(*index), cmp_share_digest);
    return index;
}

/* Point every reference at a topology with its digest, or say why not. */
static int resolve(const ism_extra_table_t *t, int n, struct ism_topo_share **shares)
{
    struct ism_topo_share **index, **hit, key, *keyp = &key;
    int count;

    if (!(index = digest_index(t, n, shares, &count)))
        return -1;
    for (int i = 0; i < n; i++) {
        struct ism_topo_share *pending = shares[i];
        if (!is_pending(pending))
            continue;
        memcpy(key.digest, pending->ref, sizeof(key.digest));
        hit = count ? bsearch(&keyp, index, (size_t)count, sizeof(*index), cmp_share_digest)
                    : NULL;
        if (hit) {
            shares[i] = ism_topo_share_get(*hit);
            ism_topo_share_put(pending);
        } else if (!pending->error[0]) {
            ism_error_t e = ISM_ERROR_INIT;
            ism_err(&e, ENOENT,
                    "its Extra names the topology %s%s, but no node holds a topology with "
                    "that digest: run isthmus-topology publish on this node",
                    ISM_EXTRA_REF_PREFIX, pending->ref);
            set_error(pending, &e);
        }
    }
    free(index);
    return 0;
}

/* The entries to remember: copies of names and Extra texts, sorted. */
static struct entry *remember(int n, const char *const *names, const char *const *extras)
{
    struct entry *nodes = calloc((size_t)n + 1, sizeof(*nodes));

    for (int i = 0; nodes && i < n; i++) {
        if (!(nodes[i].name = strdup(names[i])) || !(nodes[i].extra = strdup(extras[i]))) {
            entries_free(nodes, n);
            return NULL;
        }
    }
    return nodes;
}

static void put_all(struct ism_topo_share **shares, int n)
{
    for (int i = 0; i < n; i++) {
        ism_topo_share_put(shares[i]);
        shares[i] = NULL;
    }
}

int ism_extra_table_update(ism_extra_table_t *t, int n, const char *const *names,
                           const char *const *extras, struct ism_topo_share **shares)
{
    struct entry *nodes;

    if (!t || n < 0 || (n && (!names || !extras || !shares))) {
        errno = EINVAL;
        return -1;
    }
    if (!(nodes = remember(n, names, extras)))
        goto nomem;
    for (int i = 0; i < n; i++)
        shares[i] = previous(t, names[i], extras[i]);
    if (decode_new(n, extras, shares) < 0 || resolve(t, n, shares) < 0)
        goto nomem_shares;
    for (int i = 0; i < n; i++)
        nodes[i].share = ism_topo_share_get(shares[i]);
    qsort(nodes, (size_t)n, sizeof(*nodes), cmp_entry);
    entries_free(t->nodes, t->count);
    t->nodes = nodes;
    t->count = n;
    return 0;
nomem_shares:
    put_all(shares, n);
nomem:
    entries_free(nodes, n);
    errno = ENOMEM;
    return -1;
}
