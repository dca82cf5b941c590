/* kube_config.c - see kube_config.h
 *
 * A kubeconfig is read in two steps.  libyaml's event parser builds a small
 * tree (struct knode) with limits a hostile file cannot get around: size,
 * nesting depth, number of anchors, and the size of the tree with every
 * alias expanded.  The kubeconfig schema is then read from that tree with
 * a table of known keys per object, which type-checks every known key of
 * every entry (as kubectl's decoder does) and ignores unknown ones.
 */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "lib/kube/kube_config.h"
#include "lib/util/file.h"
#include "lib/util/log.h"
#include "lib/util/names.h"

#define KC_MAX_SIZE (1024 * 1024) /* bytes in one kubeconfig */
#define KC_MAX_DEPTH 64           /* nested collections */
#define KC_MAX_ANCHORS 100        /* distinct &anchors in one file */
#define KC_MAX_WEIGHT 2000000     /* nodes with every alias expanded */

/* ---- the YAML tree ---------------------------------------------------- */

enum knode_type { KN_SCALAR, KN_SEQ, KN_MAP };

struct knode {
    enum knode_type type;
    bool plain;    /* scalar written without quotes: null and bool apply */
    bool open;     /* collection not yet closed: an alias to it is a cycle */
    int line;      /* 1-based */
    size_t weight; /* nodes below and including this one, aliases expanded */
    char *value;   /* scalar, NUL-terminated (may hold NULs: see len) */
    size_t len;
    struct knode **kids; /* sequence items; mapping key, value, key, ... */
    size_t nkids, cap;
};

struct kanchor {
    char *name;
    struct knode *node;
};

struct kdoc {
    struct knode **nodes; /* every node, freed together (aliases share) */
    size_t n, cap;
    struct kanchor anchors[KC_MAX_ANCHORS];
    int nanchors;
    struct knode *root; /* NULL: empty document */
};

static void kdoc_free(struct kdoc *doc)
{
    for (size_t i = 0; i < doc->n; i++) {
        free(doc->nodes[i]->value);
        free(doc->nodes[i]->kids);
        free(doc->nodes[i]);
    }
    free(doc->nodes);
    for (int i = 0; i < doc->nanchors; i++)
        free(doc->anchors[i].name);
    memset(doc, 0, sizeof(*doc));
}

static int grow(void **array, size_t *cap, size_t need, size_t size)
{
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p;

    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    if (!(p = realloc(*array, ncap * size)))
        return -1;
    *array = p;
    *cap = ncap;
    return 0;
}

static struct knode *knode_new(struct kdoc *doc, enum knode_type type, const yaml_event_t *ev)
{
    struct knode *node;

    if (grow((void **)&doc->nodes, &doc->cap, doc->n + 1, sizeof(*doc->nodes)) < 0 ||
        !(node = calloc(1, sizeof(*node))))
        return NULL;
    doc->nodes[doc->n++] = node;
    node->type = type;
    node->line = (int)ev->start_mark.line + 1;
    node->weight = 1;
    return node;
}

/* Add a finished node (or an alias target) to the open collection on top. */
static int attach(struct knode *parent, struct knode *child, const char *origin,
                  ism_error_t *err)
{
    if (grow((void **)&parent->kids, &parent->cap, parent->nkids + 1, sizeof(*parent->kids)) < 0)
        return ism_err(err, ENOMEM, "%s: out of memory", origin);
    parent->kids[parent->nkids++] = child;
    parent->weight += child->weight;
    if (parent->weight > KC_MAX_WEIGHT)
        return ism_err(err, EINVAL,
                       "%s:%d: too many aliases: the document would expand to more than %d nodes",
                       origin, child->line, KC_MAX_WEIGHT);
    return 0;
}

static int add_anchor(struct kdoc *doc, const yaml_char_t *name, struct knode *node,
                      const char *origin, ism_error_t *err)
{
    if (!name)
        return 0;
    if (doc->nanchors == KC_MAX_ANCHORS)
        return ism_err(err, EINVAL, "%s:%d: more than %d anchors", origin, node->line,
                       KC_MAX_ANCHORS);
    if (!(doc->anchors[doc->nanchors].name = strdup((const char *)name)))
        return ism_err(err, ENOMEM, "%s: out of memory", origin);
    doc->anchors[doc->nanchors++].node = node;
    return 0;
}

/* The node an alias names: the latest anchor of that name, closed. */
static struct knode *find_anchor(struct kdoc *doc, const yaml_event_t *ev, const char *origin,
                                 ism_error_t *err)
{
    const char *name = (const char *)ev->data.alias.anchor;
    int line = (int)ev->start_mark.line + 1;

    for (int i = doc->nanchors - 1; i >= 0; i--) {
        if (strcmp(doc->anchors[i].name, name) != 0)
            continue;
        if (doc->anchors[i].node->open) {
            ism_err(err, EINVAL, "%s:%d: alias *%s refers to a node that contains it", origin,
                    line, name);
            return NULL;
        }
        return doc->anchors[i].node;
    }
    ism_err(err, EINVAL, "%s:%d: alias *%s names no anchor", origin, line, name);
    return NULL;
}

static int yaml_failed(const yaml_parser_t *parser, const char *origin, ism_error_t *err)
{
    if (parser->error == YAML_MEMORY_ERROR)
        return ism_err(err, ENOMEM, "%s: out of memory", origin);
    return ism_err(err, EINVAL, "%s:%d: YAML: %s%s%s", origin, (int)parser->problem_mark.line + 1,
                   parser->problem ? parser->problem : "invalid",
                   parser->context ? " " : "", parser->context ? parser->context : "");
}

struct kload {
    struct kdoc *doc;
    const char *origin;
    struct knode *stack[KC_MAX_DEPTH];
    int depth;
    int documents;
};

/* A node is complete: hang it under its parent, or make it the root. */
static int finish(struct kload *ld, struct knode *node, ism_error_t *err)
{
    if (ld->depth > 0)
        return attach(ld->stack[ld->depth - 1], node, ld->origin, err);
    ld->doc->root = node;
    return 0;
}

static int on_event(struct kload *ld, const yaml_event_t *ev, ism_error_t *err)
{
    struct knode *node;

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++ld->documents > 1)
            return ism_err(err, EINVAL, "%s:%d: more than one YAML document", ld->origin,
                           (int)ev->start_mark.line + 1);
        return 0;
    case YAML_SCALAR_EVENT:
        if (!(node = knode_new(ld->doc, KN_SCALAR, ev)) ||
            !(node->value = malloc(ev->data.scalar.length + 1)))
            return ism_err(err, ENOMEM, "%s: out of memory", ld->origin);
        memcpy(node->value, ev->data.scalar.value, ev->data.scalar.length);
        node->value[ev->data.scalar.length] = '\0';
        node->len = ev->data.scalar.length;
        node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (add_anchor(ld->doc, ev->data.scalar.anchor, node, ld->origin, err) < 0)
            return -1;
        return finish(ld, node, err);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (ld->depth == KC_MAX_DEPTH)
            return ism_err(err, EINVAL, "%s:%d: nested more than %d levels deep", ld->origin,
                           (int)ev->start_mark.line + 1, KC_MAX_DEPTH);
        node = knode_new(ld->doc, ev->type == YAML_SEQUENCE_START_EVENT ? KN_SEQ : KN_MAP, ev);
        if (!node)
            return ism_err(err, ENOMEM, "%s: out of memory", ld->origin);
        node->open = true;
        ld->stack[ld->depth++] = node;
        return add_anchor(ld->doc,
                          ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
                                                                : ev->data.mapping_start.anchor,
                          node, ld->origin, err);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        node = ld->stack[--ld->depth];
        node->open = false;
        return finish(ld, node, err);
    case YAML_ALIAS_EVENT:
        if (!(node = find_anchor(ld->doc, ev, ld->origin, err)))
            return -1;
        return finish(ld, node, err);
    default:
        return 0;
    }
}

static int kdoc_load(struct kdoc *doc, const char *text, size_t len, const char *origin,
                     ism_error_t *err)
{
    struct kload ld = { .doc = doc, .origin = origin };
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = 0;

    memset(doc, 0, sizeof(*doc));
    if (!yaml_parser_initialize(&parser))
        return ism_err(err, ENOMEM, "%s: out of memory", origin);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    do {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_failed(&parser, origin, err);
            break;
        }
        rc = on_event(&ld, &ev, err);
        if (rc == 0 && ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        yaml_event_delete(&ev);
    } while (rc == 0);
    yaml_parser_delete(&parser);
    if (rc < 0)
        kdoc_free(doc);
    return rc;
}

/* ---- scalars ---------------------------------------------------------- */

/* YAML null: a plain empty, ~ or null scalar (or no node at all). */
static bool is_null(const struct knode *node)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

    if (!node)
        return true;
    if (node->type != KN_SCALAR || !node->plain)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(node->value, nulls[i]) == 0)
            return true;
    return false;
}

/* YAML 1.1 booleans as kubectl's YAML reader takes them; -1 if not one. */
static int bool_value(const struct knode *node)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
                                       "on",   "On",   "ON",   "y",   "Y" };
    static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO",
                                      "off",   "Off",   "OFF",   "n",  "N" };

    if (node->type != KN_SCALAR || !node->plain)
        return -1;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(node->value, yes[i]) == 0)
            return 1;
        if (strcmp(node->value, no[i]) == 0)
            return 0;
    }
    return -1;
}

static bool key_is(const struct knode *key, const char *name)
{
    return key->type == KN_SCALAR && strcmp(key->value, name) == 0 && key->len == strlen(name);
}

static const char *type_name(const struct knode *node)
{
    return node->type == KN_MAP ? "a mapping" : node->type == KN_SEQ ? "a sequence" : "a scalar";
}

/* ---- base64 (standard alphabet, padded; CR and LF skipped, as Go's
 * decoder does for []byte fields) -------------------------------------- */

static int b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decode in into a new NUL-terminated buffer (NULL: only check).  Returns
 * the decoded length, or -1 with *bad the offset of the first bad byte. */
static ssize_t b64_decode(const char *in, size_t len, char **out, size_t *bad)
{
    char *buf = NULL;
    size_t n = 0, quad = 0, pad = 0;
    uint32_t acc = 0;

    if (out && !(buf = malloc(len / 4 * 3 + 4)))
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int d = b64_digit(c);

        if (c == '\r' || c == '\n')
            continue;
        if (c == '=' && quad >= 2) {
            pad++;
            d = 0;
        } else if (d < 0 || pad > 0) {
            *bad = i;
            free(buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t)d;
        if (++quad < 4)
            continue;
        if (buf) {
            buf[n] = (char)(acc >> 16);
            buf[n + 1] = (char)(acc >> 8);
            buf[n + 2] = (char)acc;
        }
        n += 3 - pad;
        quad = 0;
        acc = 0;
        /* Padding ends the data. */
        if (pad && i + 1 < len && strspn(in + i + 1, "\r\n") < len - i - 1) {
            *bad = i + 1;
            free(buf);
            return -1;
        }
    }
    if (quad != 0) {
        *bad = len;
        free(buf);
        return -1;
    }
    if (buf) {
        buf[n] = '\0';
        *out = buf;
    }
    return (ssize_t)n;
}

/* ---- the kubeconfig schema -------------------------------------------- */

enum ftype { F_STR, F_BOOL, F_B64, F_SEQ, F_MAP };

struct field {
    const char *key;
    enum ftype type;
};

enum { R_CLUSTERS, R_CONTEXTS, R_USERS, R_CURRENT, R_PREFS, R_API, R_KIND, R_EXT, R_N };
static const struct field root_fields[] = {
    [R_CLUSTERS] = { "clusters", F_SEQ },
    [R_CONTEXTS] = { "contexts", F_SEQ },
    [R_USERS] = { "users", F_SEQ },
    [R_CURRENT] = { "current-context", F_STR },
    [R_PREFS] = { "preferences", F_MAP },
    [R_API] = { "apiVersion", F_STR },
    [R_KIND] = { "kind", F_STR },
    [R_EXT] = { "extensions", F_SEQ },
};

enum { C_SERVER, C_CA, C_CA_DATA, C_INSECURE, C_SNI, C_PROXY, C_NOZIP, C_EXT, C_N };
static const struct field cluster_fields[] = {
    [C_SERVER] = { "server", F_STR },
    [C_CA] = { "certificate-authority", F_STR },
    [C_CA_DATA] = { "certificate-authority-data", F_B64 },
    [C_INSECURE] = { "insecure-skip-tls-verify", F_BOOL },
    [C_SNI] = { "tls-server-name", F_STR },
    [C_PROXY] = { "proxy-url", F_STR },
    [C_NOZIP] = { "disable-compression", F_BOOL },
    [C_EXT] = { "extensions", F_SEQ },
};

enum { X_CLUSTER, X_USER, X_NAMESPACE, X_EXT, X_N };
static const struct field context_fields[] = {
    [X_CLUSTER] = { "cluster", F_STR },
    [X_USER] = { "user", F_STR },
    [X_NAMESPACE] = { "namespace", F_STR },
    [X_EXT] = { "extensions", F_SEQ },
};

enum {
    U_CERT,
    U_CERT_DATA,
    U_KEY,
    U_KEY_DATA,
    U_TOKEN,
    U_TOKEN_FILE,
    U_AS,
    U_AS_UID,
    U_AS_GROUPS,
    U_AS_EXTRA,
    U_USERNAME,
    U_PASSWORD,
    U_AUTH_PROVIDER,
    U_EXEC,
    U_EXT,
    U_N
};
static const struct field user_fields[] = {
    [U_CERT] = { "client-certificate", F_STR },
    [U_CERT_DATA] = { "client-certificate-data", F_B64 },
    [U_KEY] = { "client-key", F_STR },
    [U_KEY_DATA] = { "client-key-data", F_B64 },
    [U_TOKEN] = { "token", F_STR },
    [U_TOKEN_FILE] = { "tokenFile", F_STR },
    [U_AS] = { "as", F_STR },
    [U_AS_UID] = { "as-uid", F_STR },
    [U_AS_GROUPS] = { "as-groups", F_SEQ },
    [U_AS_EXTRA] = { "as-user-extra", F_MAP },
    [U_USERNAME] = { "username", F_STR },
    [U_PASSWORD] = { "password", F_STR },
    [U_AUTH_PROVIDER] = { "auth-provider", F_MAP },
    [U_EXEC] = { "exec", F_MAP },
    [U_EXT] = { "extensions", F_SEQ },
};

/* The three named lists of a kubeconfig. */
enum kind { K_CLUSTER, K_CONTEXT, K_USER, K_N };
static const char *const list_key[K_N] = { "clusters", "contexts", "users" };
static const char *const body_key[K_N] = { "cluster", "context", "user" };
static const struct field *const kind_fields[K_N] = { cluster_fields, context_fields,
                                                      user_fields };
static const int kind_nfields[K_N] = { C_N, X_N, U_N };

static int check_type(const struct field *f, const struct knode *v, const char *origin,
                      ism_error_t *err)
{
    size_t bad;

    switch (f->type) {
    case F_STR:
        if (v->type != KN_SCALAR)
            break;
        if (strlen(v->value) != v->len)
            return ism_err(err, EINVAL, "%s:%d: %s: contains a NUL byte", origin, v->line, f->key);
        return 0;
    case F_B64:
        if (v->type != KN_SCALAR)
            break;
        if (b64_decode(v->value, v->len, NULL, &bad) < 0)
            return ism_err(err, EINVAL, "%s:%d: %s: not valid base64 (at byte %zu)", origin,
                           v->line, f->key, bad);
        return 0;
    case F_BOOL:
        if (bool_value(v) >= 0)
            return 0;
        return ism_err(err, EINVAL, "%s:%d: %s: expected true or false, got '%s'", origin,
                       v->line, f->key, v->type == KN_SCALAR ? v->value : type_name(v));
    case F_SEQ:
        if (v->type == KN_SEQ)
            return 0;
        return ism_err(err, EINVAL, "%s:%d: %s: expected a sequence, got %s", origin, v->line,
                       f->key, type_name(v));
    case F_MAP:
        if (v->type == KN_MAP)
            return 0;
        return ism_err(err, EINVAL, "%s:%d: %s: expected a mapping, got %s", origin, v->line,
                       f->key, type_name(v));
    }
    return ism_err(err, EINVAL, "%s:%d: %s: expected a string, got %s", origin, v->line, f->key,
                   type_name(v));
}

/* Pick the known keys of map into out[] (NULL when absent or null),
 * type-checked.  Unknown keys are ignored; a known key given twice and a
 * merge key are errors. */
static int read_fields(const struct knode *map, const struct field *fields, int nfields,
                       const struct knode **out, const char *origin, ism_error_t *err)
{
    const struct knode *seen[U_N + R_N] = { NULL };

    for (int i = 0; i < nfields; i++)
        out[i] = NULL;
    if (!map)
        return 0;
    for (size_t k = 0; k + 1 < map->nkids; k += 2) {
        const struct knode *key = map->kids[k], *value = map->kids[k + 1];

        if (key_is(key, "<<") && key->plain)
            return ism_err(err, EINVAL, "%s:%d: merge keys (<<) are not supported", origin,
                           key->line);
        for (int i = 0; i < nfields; i++) {
            if (!key_is(key, fields[i].key))
                continue;
            if (seen[i])
                return ism_err(err, EINVAL, "%s:%d: %s is given twice (first at line %d)",
                               origin, key->line, fields[i].key, seen[i]->line);
            seen[i] = key;
            if (!is_null(value) && check_type(&fields[i], value, origin, err) < 0)
                return -1;
            out[i] = is_null(value) ? NULL : value;
        }
    }
    return 0;
}

/* A string field: NULL when absent, null or empty (Go's zero value). */
static const char *str(const struct knode *v)
{
    return v && v->len ? v->value : NULL;
}

/* ---- one kubeconfig file ---------------------------------------------- */

struct kentry {
    const char *name;
    int line;
    const struct knode *body; /* NULL: the entry has no body */
};

struct kfile {
    char *origin; /* file name for messages */
    char *dir;    /* what relative paths in it are relative to; NULL: as is */
    struct kdoc doc;
    const char *current; /* current-context, or NULL */
    struct kentry *list[K_N];
    size_t n[K_N];
};

static void kfile_free(struct kfile *f)
{
    if (!f)
        return;
    kdoc_free(&f->doc);
    for (int k = 0; k < K_N; k++)
        free(f->list[k]);
    free(f->origin);
    free(f->dir);
    free(f);
}

static int cmp_entry(const void *a, const void *b)
{
    const struct kentry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* kubectl refuses a file in which two entries of a list share a name. */
static int check_unique(const struct kfile *f, enum kind k, ism_error_t *err)
{
    const struct kentry **sorted;
    int rc = 0;

    if (f->n[k] < 2)
        return 0;
    if (!(sorted = malloc(f->n[k] * sizeof(*sorted))))
        return ism_err(err, ENOMEM, "%s: out of memory", f->origin);
    for (size_t i = 0; i < f->n[k]; i++)
        sorted[i] = &f->list[k][i];
    qsort(sorted, f->n[k], sizeof(*sorted), cmp_entry);
    for (size_t i = 1; i < f->n[k] && rc == 0; i++) {
        const struct kentry *a = sorted[i - 1], *b = sorted[i];

        if (strcmp(a->name, b->name) == 0)
            rc = ism_err(err, EINVAL, "%s:%d: %s: the name '%s' is used twice (also at line %d)",
                         f->origin, a->line > b->line ? a->line : b->line, list_key[k], a->name,
                         a->line > b->line ? b->line : a->line);
    }
    free(sorted);
    return rc;
}

static const struct field name_fields[] = { { "name", F_STR } };

/* Read one of the lists: each item a mapping with a name and a body whose
 * known keys all type-check. */
static int read_list(struct kfile *f, enum kind k, const struct knode *seq, ism_error_t *err)
{
    const struct field body_field = { body_key[k], F_MAP };

    if (!seq)
        return 0;
    if (!(f->list[k] = calloc(seq->nkids ? seq->nkids : 1, sizeof(*f->list[k]))))
        return ism_err(err, ENOMEM, "%s: out of memory", f->origin);
    for (size_t i = 0; i < seq->nkids; i++) {
        const struct knode *item = seq->kids[i], *name, *body;
        const struct knode *fields[U_N];
        struct kentry *e = &f->list[k][f->n[k]++];

        if (item->type != KN_MAP)
            return ism_err(err, EINVAL, "%s:%d: %s[%zu]: expected a mapping, got %s", f->origin,
                           item->line, list_key[k], i, type_name(item));
        if (read_fields(item, name_fields, 1, &name, f->origin, err) < 0 ||
            read_fields(item, &body_field, 1, &body, f->origin, err) < 0 ||
            read_fields(body, kind_fields[k], kind_nfields[k], fields, f->origin, err) < 0)
            return -1;
        e->name = str(name) ? str(name) : "";
        e->line = item->line;
        e->body = body;
    }
    return check_unique(f, k, err);
}

static struct kfile *kfile_parse(const char *text, size_t len, const char *origin, const char *dir,
                                 ism_error_t *err)
{
    struct kfile *f = calloc(1, sizeof(*f));
    const struct knode *root[R_N];

    if (!f || !(f->origin = strdup(origin)) || (dir && !(f->dir = strdup(dir)))) {
        ism_err(err, ENOMEM, "%s: out of memory", origin);
        goto error;
    }
    if (len > KC_MAX_SIZE) {
        ism_err(err, EFBIG, "%s: larger than %d bytes", origin, KC_MAX_SIZE);
        goto error;
    }
    if (kdoc_load(&f->doc, text, len, origin, err) < 0)
        goto error;
    if (f->doc.root && !is_null(f->doc.root) && f->doc.root->type != KN_MAP) {
        ism_err(err, EINVAL, "%s:%d: expected a mapping at the top, got %s", origin,
                f->doc.root->line, type_name(f->doc.root));
        goto error;
    }
    if (read_fields(is_null(f->doc.root) ? NULL : f->doc.root, root_fields, R_N, root, origin,
                    err) < 0 ||
        read_list(f, K_CLUSTER, root[R_CLUSTERS], err) < 0 ||
        read_list(f, K_CONTEXT, root[R_CONTEXTS], err) < 0 ||
        read_list(f, K_USER, root[R_USERS], err) < 0)
        goto error;
    f->current = str(root[R_CURRENT]);
    return f;
error:
    kfile_free(f);
    return NULL;
}

/* ---- building the config ---------------------------------------------- */

/* A namespace is an RFC 1123 label; it ends up in request paths. */
static bool namespace_ok(const char *s, size_t len)
{
    return ism_name_valid_n(ISM_NAME_DNS_LABEL, s, len);
}

/* *dst = a copy of len bytes of src plus a NUL (nothing when src is NULL). */
static bool copy_mem(char **dst, const char *src, size_t len)
{
    if (!src)
        return true;
    if (!(*dst = malloc(len + 1)))
        return false;
    memcpy(*dst, src, len);
    (*dst)[len] = '\0';
    return true;
}

static bool copy_str(char **dst, const char *src)
{
    return copy_mem(dst, src, src ? strlen(src) : 0);
}

ism_kube_config_t *ism_kube_config_copy(const ism_kube_config_t *cfg)
{
    ism_kube_config_t *c;

    if (!cfg) {
        errno = EINVAL;
        return NULL;
    }
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    c->insecure = cfg->insecure;
    c->ca_data_len = cfg->ca_data_len;
    c->cert_data_len = cfg->cert_data_len;
    c->key_data_len = cfg->key_data_len;
    if (copy_str(&c->server, cfg->server) && copy_str(&c->context, cfg->context) &&
        copy_str(&c->namespace_, cfg->namespace_) && copy_str(&c->ca_file, cfg->ca_file) &&
        copy_mem(&c->ca_data, cfg->ca_data, cfg->ca_data_len) &&
        copy_str(&c->tls_server_name, cfg->tls_server_name) &&
        copy_str(&c->proxy_url, cfg->proxy_url) && copy_str(&c->cert_file, cfg->cert_file) &&
        copy_mem(&c->cert_data, cfg->cert_data, cfg->cert_data_len) &&
        copy_str(&c->key_file, cfg->key_file) &&
        copy_mem(&c->key_data, cfg->key_data, cfg->key_data_len) &&
        copy_str(&c->token, cfg->token) && copy_str(&c->token_file, cfg->token_file))
        return c;
    ism_kube_config_destroy(c);
    errno = ENOMEM;
    return NULL;
}

void ism_kube_config_destroy(ism_kube_config_t *cfg)
{
    int saved = errno;

    if (!cfg)
        return;
    free(cfg->server);
    free(cfg->context);
    free(cfg->namespace_);
    free(cfg->ca_file);
    free(cfg->ca_data);
    free(cfg->tls_server_name);
    free(cfg->proxy_url);
    free(cfg->cert_file);
    free(cfg->cert_data);
    if (cfg->key_data)
        explicit_bzero(cfg->key_data, cfg->key_data_len);
    free(cfg->key_data);
    free(cfg->key_file);
    if (cfg->token)
        explicit_bzero(cfg->token, strlen(cfg->token));
    free(cfg->token);
    free(cfg->token_file);
    free(cfg);
    errno = saved;
}

static int set_str(char **dst, const char *s, const char *origin, ism_error_t *err)
{
    if (s && !(*dst = strdup(s)))
        return ism_err(err, ENOMEM, "%s: out of memory", origin);
    return 0;
}

/* Characters that would let a value break out of an HTTP header or URL. */
static int check_printable(const struct knode *v, const char *key, const char *what,
                           const char *origin, ism_error_t *err)
{
    for (size_t i = 0; v && i < v->len; i++) {
        unsigned char c = (unsigned char)v->value[i];

        if (c <= ' ' || c == 0x7f)
            return ism_err(err, EINVAL, "%s:%d: %s of %s: contains a space or control character",
                           origin, v->line, key, what);
    }
    return 0;
}

/* A file named in a kubeconfig: relative to the file's directory, and
 * readable now (kubectl checks this too before it connects). */
static int set_path(char **dst, const struct knode *v, const char *key, const char *what,
                    const struct kfile *f, ism_error_t *err)
{
    const char *p = str(v);
    int n;

    if (!p)
        return 0;
    if (p[0] != '/' && f->dir)
        n = asprintf(dst, "%s%s%s", f->dir, f->dir[strlen(f->dir) - 1] == '/' ? "" : "/", p);
    else
        n = (*dst = strdup(p)) ? 0 : -1;
    if (n < 0) {
        *dst = NULL;
        return ism_err(err, ENOMEM, "%s: out of memory", f->origin);
    }
    if (access(*dst, R_OK) < 0)
        return ism_err(err, errno, "%s:%d: %s of %s: %s: %s", f->origin, v->line, key, what,
                       *dst, strerror(errno));
    return 0;
}

/* Inline PEM data: decode the base64 and check that PEM came out. */
static int set_data(char **dst, size_t *dlen, const struct knode *v, const char *key,
                    const char *what, const char *origin, ism_error_t *err)
{
    size_t bad;
    ssize_t n;

    if (!str(v))
        return 0;
    if ((n = b64_decode(v->value, v->len, dst, &bad)) < 0)
        return ism_err(err, errno == ENOMEM ? ENOMEM : EINVAL,
                       "%s:%d: %s of %s: not valid base64", origin, v->line, key, what);
    *dlen = (size_t)n;
    if (!memmem(*dst, *dlen, "-----BEGIN ", 11))
        return ism_err(err, EINVAL, "%s:%d: %s of %s: does not decode to PEM text", origin,
                       v->line, key, what);
    return 0;
}

static int both(const struct knode *a, const struct knode *b, const char *ka, const char *kb,
                const char *what, const char *origin, ism_error_t *err)
{
    if (str(a) && str(b))
        return ism_err(err, EINVAL, "%s:%d: %s sets both %s and %s", origin, b->line, what, ka,
                       kb);
    return 0;
}

/* server: http(s)://host[:port][/prefix]; a bare host means https. */
static int set_server(ism_kube_config_t *cfg, const struct knode *v, const char *what,
                      const char *origin, ism_error_t *err)
{
    const char *s = v->value;
    size_t len = v->len;

    if (check_printable(v, "server", what, origin, err) < 0)
        return -1;
    while (len > 0 && s[len - 1] == '/')
        len--;
    if (strncasecmp(s, "https://", 8) != 0 && strncasecmp(s, "http://", 7) != 0) {
        if (strstr(s, "://"))
            return ism_err(err, EINVAL, "%s:%d: server of %s: '%s' is not an http(s) URL",
                           origin, v->line, what, s);
        if (asprintf(&cfg->server, "https://%.*s", (int)len, s) < 0)
            cfg->server = NULL;
    } else
        cfg->server = strndup(s, len);
    if (!cfg->server)
        return ism_err(err, ENOMEM, "%s: out of memory", origin);
    if (strlen(cfg->server) <= strlen("https://") || cfg->server[strlen(cfg->server) - 1] == '/')
        return ism_err(err, EINVAL, "%s:%d: server of %s: '%s' has no host", origin, v->line, what,
                       s);
    return 0;
}

static int take_cluster(ism_kube_config_t *cfg, const struct kentry *e, const struct kfile *f,
                        ism_error_t *err)
{
    const struct knode *c[C_N];
    char what[300];
    int insecure;

    snprintf(what, sizeof(what), "cluster '%s'", e->name);
    if (read_fields(e->body, cluster_fields, C_N, c, f->origin, err) < 0)
        return -1;
    if (!str(c[C_SERVER]))
        return ism_err(err, EINVAL, "%s:%d: %s has no server", f->origin, e->line, what);
    insecure = c[C_INSECURE] ? bool_value(c[C_INSECURE]) : 0;
    if (insecure && (str(c[C_CA]) || str(c[C_CA_DATA])))
        return ism_err(err, EINVAL,
                       "%s:%d: %s sets insecure-skip-tls-verify and a certificate authority",
                       f->origin, c[C_INSECURE]->line, what);
    if (set_server(cfg, c[C_SERVER], what, f->origin, err) < 0 ||
        both(c[C_CA], c[C_CA_DATA], "certificate-authority", "certificate-authority-data", what,
             f->origin, err) < 0 ||
        set_path(&cfg->ca_file, c[C_CA], "certificate-authority", what, f, err) < 0 ||
        set_data(&cfg->ca_data, &cfg->ca_data_len, c[C_CA_DATA], "certificate-authority-data",
                 what, f->origin, err) < 0 ||
        check_printable(c[C_SNI], "tls-server-name", what, f->origin, err) < 0 ||
        set_str(&cfg->tls_server_name, str(c[C_SNI]), f->origin, err) < 0 ||
        check_printable(c[C_PROXY], "proxy-url", what, f->origin, err) < 0 ||
        set_str(&cfg->proxy_url, str(c[C_PROXY]), f->origin, err) < 0)
        return -1;
    cfg->insecure = insecure == 1;
    return 0;
}

static int refuse_auth(const struct knode *const *u, const char *what, const char *origin,
                       ism_error_t *err)
{
    static const struct {
        int field;
        const char *why;
    } refused[] = {
        { U_EXEC, "exec credential plugins are not supported" },
        { U_AUTH_PROVIDER, "auth-provider plugins are not supported" },
        { U_USERNAME, "basic authentication (username/password) is not supported" },
        { U_PASSWORD, "basic authentication (username/password) is not supported" },
        { U_AS, "impersonation (as) is not supported" },
        { U_AS_UID, "impersonation (as-uid) is not supported" },
        { U_AS_GROUPS, "impersonation (as-groups) is not supported" },
        { U_AS_EXTRA, "impersonation (as-user-extra) is not supported" },
    };

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const struct knode *v = u[refused[i].field];

        if (v && (v->type != KN_SCALAR || v->len > 0))
            return ism_err(err, ENOTSUP, "%s:%d: %s: %s", origin, v->line, what, refused[i].why);
    }
    return 0;
}

static int take_user(ism_kube_config_t *cfg, const struct kentry *e, const struct kfile *f,
                     ism_error_t *err)
{
    const struct knode *u[U_N];
    char what[300];

    snprintf(what, sizeof(what), "user '%s'", e->name);
    if (read_fields(e->body, user_fields, U_N, u, f->origin, err) < 0 ||
        refuse_auth(u, what, f->origin, err) < 0 ||
        both(u[U_CERT], u[U_CERT_DATA], "client-certificate", "client-certificate-data", what,
             f->origin, err) < 0 ||
        both(u[U_KEY], u[U_KEY_DATA], "client-key", "client-key-data", what, f->origin, err) < 0 ||
        both(u[U_TOKEN], u[U_TOKEN_FILE], "token", "tokenFile", what, f->origin, err) < 0)
        return -1;
    if (!(str(u[U_CERT]) || str(u[U_CERT_DATA])) != !(str(u[U_KEY]) || str(u[U_KEY_DATA])))
        return ism_err(err, EINVAL, "%s:%d: %s has a client %s without a client %s", f->origin,
                       e->line, what, str(u[U_KEY]) || str(u[U_KEY_DATA]) ? "key" : "certificate",
                       str(u[U_KEY]) || str(u[U_KEY_DATA]) ? "certificate" : "key");
    if (set_path(&cfg->cert_file, u[U_CERT], "client-certificate", what, f, err) < 0 ||
        set_data(&cfg->cert_data, &cfg->cert_data_len, u[U_CERT_DATA], "client-certificate-data",
                 what, f->origin, err) < 0 ||
        set_path(&cfg->key_file, u[U_KEY], "client-key", what, f, err) < 0 ||
        set_data(&cfg->key_data, &cfg->key_data_len, u[U_KEY_DATA], "client-key-data", what,
                 f->origin, err) < 0 ||
        check_printable(u[U_TOKEN], "token", what, f->origin, err) < 0 ||
        set_str(&cfg->token, str(u[U_TOKEN]), f->origin, err) < 0 ||
        set_path(&cfg->token_file, u[U_TOKEN_FILE], "tokenFile", what, f, err) < 0)
        return -1;
    return 0;
}

/* The first file that defines name wins. */
static const struct kentry *find_entry(struct kfile *const *files, int nfiles, enum kind k,
                                       const char *name, const struct kfile **in)
{
    for (int i = 0; i < nfiles; i++) {
        for (size_t j = 0; j < files[i]->n[k]; j++) {
            if (strcmp(files[i]->list[k][j].name, name) == 0) {
                *in = files[i];
                return &files[i]->list[k][j];
            }
        }
    }
    return NULL;
}

/* Resolve context -> cluster and user over the merged files.  where names
 * the files in messages about names missing from all of them. */
static ism_kube_config_t *assemble(struct kfile *const *files, int nfiles, const char *where,
                                   const char *context, ism_error_t *err)
{
    ism_kube_config_t *cfg = calloc(1, sizeof(*cfg));
    const struct kentry *ctx, *cluster, *user = NULL;
    const struct kfile *cf = NULL, *clf = NULL, *uf = NULL;
    const struct knode *x[X_N];
    char what[300];

    if (!cfg) {
        ism_err(err, ENOMEM, "%s: out of memory", where);
        return NULL;
    }
    for (int i = 0; !context && i < nfiles; i++)
        context = files[i]->current;
    if (!context) {
        ism_err(err, EINVAL, "%s: no current-context is set and no context was named", where);
        goto error;
    }
    if (!(ctx = find_entry(files, nfiles, K_CONTEXT, context, &cf))) {
        ism_err(err, EINVAL, "%s: context '%s' not found", where, context);
        goto error;
    }
    snprintf(what, sizeof(what), "context '%s'", context);
    if (read_fields(ctx->body, context_fields, X_N, x, cf->origin, err) < 0)
        goto error;
    if (!str(x[X_CLUSTER])) {
        ism_err(err, EINVAL, "%s:%d: %s names no cluster", cf->origin, ctx->line, what);
        goto error;
    }
    if (!(cluster = find_entry(files, nfiles, K_CLUSTER, str(x[X_CLUSTER]), &clf))) {
        ism_err(err, EINVAL, "%s:%d: cluster '%s' of %s not found in %s", cf->origin,
                x[X_CLUSTER]->line, str(x[X_CLUSTER]), what, where);
        goto error;
    }
    if (str(x[X_NAMESPACE]) && !namespace_ok(x[X_NAMESPACE]->value, x[X_NAMESPACE]->len)) {
        ism_err(err, EINVAL, "%s:%d: namespace of %s: '%s' is not a namespace name", cf->origin,
                x[X_NAMESPACE]->line, what, x[X_NAMESPACE]->value);
        goto error;
    }
    if (str(x[X_USER]) && !(user = find_entry(files, nfiles, K_USER, str(x[X_USER]), &uf))) {
        ism_err(err, EINVAL, "%s:%d: user '%s' of %s not found in %s", cf->origin,
                x[X_USER]->line, str(x[X_USER]), what, where);
        goto error;
    }
    if (set_str(&cfg->context, context, where, err) < 0 ||
        set_str(&cfg->namespace_, str(x[X_NAMESPACE]) ? str(x[X_NAMESPACE]) : "default", where,
                err) < 0 ||
        take_cluster(cfg, cluster, clf, err) < 0 || (user && take_user(cfg, user, uf, err) < 0))
        goto error;
    return cfg;
error:
    ism_kube_config_destroy(cfg);
    return NULL;
}

/* ---- public API ------------------------------------------------------- */

/* The directory part of path, made absolute, so that paths in the file
 * stay right when the process changes directory later. */
static char *dir_of(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    char cwd[4096];
    char *dir;

    if (path && path[0] == '/')
        return strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    if (!slash)
        return strdup(cwd);
    if (asprintf(&dir, "%s/%.*s", cwd, (int)(slash - path), path) < 0)
        return NULL;
    return dir;
}

ism_kube_config_t *ism_kube_config_parse(const char *text, size_t len, const char *origin,
                                         const char *dir, const char *context,
                                         ism_error_t *err)
{
    ism_kube_config_t *cfg = NULL;
    struct kfile *f;
    char *cwd = NULL;

    if (!text) {
        ism_err(err, EINVAL, "no kubeconfig text given");
        return NULL;
    }
    if (!origin)
        origin = "kubeconfig";
    if (!dir && !(dir = cwd = dir_of("."))) {
        ism_err(err, errno, "%s: cannot get the current directory: %s", origin, strerror(errno));
        return NULL;
    }
    if ((f = kfile_parse(text, len, origin, dir, err)))
        cfg = assemble(&f, 1, origin, context, err);
    kfile_free(f);
    free(cwd);
    return cfg;
}

/* Parse one file of the list into *out; *out NULL when it does not exist. */
static int load_one(const char *path, struct kfile **out, ism_error_t *err)
{
    ism_error_t mine = ISM_ERROR_INIT;
    char *text, *dir = NULL;
    size_t len;

    *out = NULL;
    if (!(text = ism_file_read(path, KC_MAX_SIZE, &len, &mine))) {
        if (errno == ENOENT)
            return 0;
        return ism_err(err, errno, "%s", mine.text);
    }
    if (!(dir = dir_of(path)))
        ism_err(err, ENOMEM, "%s: cannot find its directory", path);
    else
        *out = kfile_parse(text, len, path, dir, err);
    free(dir);
    free(text);
    return *out ? 0 : -1;
}

ism_kube_config_t *ism_kube_config_load(const char *paths, const char *context,
                                        ism_error_t *err)
{
    ism_kube_config_t *cfg = NULL;
    struct kfile **files = NULL;
    char *list = NULL, *home = NULL, *save = NULL;
    int nfiles = 0, nlisted = 0;

    if (!paths || !*paths)
        paths = getenv("KUBECONFIG");
    if (!paths || !*paths) {
        const char *h = getenv("HOME");

        if (!h || !*h) {
            ism_err(err, ENOENT, "no kubeconfig: KUBECONFIG and HOME are not set");
            return NULL;
        }
        if (asprintf(&home, "%s/.kube/config", h) < 0) {
            ism_err(err, ENOMEM, "out of memory");
            return NULL;
        }
        paths = home;
    }
    if (!(list = strdup(paths)) || !(files = calloc(strlen(paths) / 2 + 1, sizeof(*files)))) {
        ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        nlisted++;
        if (load_one(p, &files[nfiles], err) < 0)
            goto out;
        if (files[nfiles])
            nfiles++;
    }
    if (nfiles == 0)
        ism_err(err, ENOENT, "no kubeconfig: %s %s", paths,
                nlisted > 1 ? "do not exist" : "does not exist");
    else
        cfg = assemble(files, nfiles, paths, context, err);
out:
    for (int i = 0; files && i < nfiles; i++)
        kfile_free(files[i]);
    free(files);
    free(list);
    free(home);
    return cfg;
}

/* The namespace file of a service account: one DNS label, maybe with a
 * trailing newline; absent or empty means "default". */
static int read_namespace(ism_kube_config_t *cfg, const char *sa_dir, ism_error_t *err)
{
    ism_error_t mine = ISM_ERROR_INIT;
    char *path = NULL, *text = NULL;
    size_t len = 0;
    int rc = 0;

    if (asprintf(&path, "%s/namespace", sa_dir) < 0)
        return ism_err(err, ENOMEM, "out of memory");
    if (!(text = ism_file_read(path, 253, &len, &mine)) && errno != ENOENT)
        rc = ism_err(err, errno, "%s", mine.text);
    while (text && len > 0 && strchr(" \t\r\n", text[len - 1]))
        text[--len] = '\0';
    if (rc == 0 && text && len > 0 && (strlen(text) != len || !namespace_ok(text, len)))
        rc = ism_err(err, EINVAL, "%s: '%s' is not a namespace name", path, text);
    if (rc == 0 && !(cfg->namespace_ = strdup(text && len ? text : "default")))
        rc = ism_err(err, ENOMEM, "out of memory");
    free(text);
    free(path);
    return rc;
}

static int in_cluster_server(ism_kube_config_t *cfg, ism_error_t *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    char *end;
    long n;

    if (!host || !*host || !port || !*port)
        return ism_err(err, ENOENT,
                       "not running in a pod: KUBERNETES_SERVICE_HOST and "
                       "KUBERNETES_SERVICE_PORT are not both set");
    if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
        strlen(host))
        return ism_err(err, EINVAL, "KUBERNETES_SERVICE_HOST='%s' is not a host name or address",
                       host);
    errno = 0;
    n = strtol(port, &end, 10);
    if (errno || *end || port[0] < '0' || port[0] > '9' || n < 1 || n > 65535)
        return ism_err(err, EINVAL, "KUBERNETES_SERVICE_PORT='%s' is not a port number", port);
    if (asprintf(&cfg->server, strchr(host, ':') ? "https://[%s]:%ld" : "https://%s:%ld", host,
                 n) < 0) {
        cfg->server = NULL;
        return ism_err(err, ENOMEM, "out of memory");
    }
    return 0;
}

ism_kube_config_t *ism_kube_config_in_cluster(const char *sa_dir, ism_error_t *err)
{
    ism_kube_config_t *cfg = calloc(1, sizeof(*cfg));

    if (!sa_dir)
        sa_dir = ISM_KUBE_SA_DIR;
    if (!cfg) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    if (in_cluster_server(cfg, err) < 0)
        goto error;
    if (asprintf(&cfg->token_file, "%s/token", sa_dir) < 0 ||
        asprintf(&cfg->ca_file, "%s/ca.crt", sa_dir) < 0) {
        ism_err(err, ENOMEM, "out of memory");
        goto error;
    }
    if (access(cfg->token_file, R_OK) < 0) {
        ism_err(err, errno, "service-account token %s: %s", cfg->token_file, strerror(errno));
        goto error;
    }
    /* client-go goes on with the system CAs when ca.crt is missing. */
    if (access(cfg->ca_file, R_OK) < 0) {
        ism_log_warn("service-account CA %s: %s; using the system CAs", cfg->ca_file,
                     strerror(errno));
        free(cfg->ca_file);
        cfg->ca_file = NULL;
    }
    if (read_namespace(cfg, sa_dir, err) < 0)
        goto error;
    return cfg;
error:
    ism_kube_config_destroy(cfg);
    return NULL;
}

ism_kube_config_t *ism_kube_config_default(const char *context, ism_error_t *err)
{
    const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
    ism_error_t mine = ISM_ERROR_INIT;
    ism_kube_config_t *cfg;
    char *path = NULL;
    bool exists;

    if (env && *env)
        return ism_kube_config_load(env, context, err);
    if (home && *home && asprintf(&path, "%s/.kube/config", home) < 0) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    exists = path && access(path, F_OK) == 0;
    if (exists) {
        cfg = ism_kube_config_load(path, context, err);
        free(path);
        return cfg;
    }
    free(path);
    if (context) {
        ism_err(err, ENOENT, "context '%s' named, but there is no kubeconfig", context);
        return NULL;
    }
    if (!(cfg = ism_kube_config_in_cluster(NULL, &mine))) {
        int saved = errno;
        ism_err(err, saved, "no kubeconfig (KUBECONFIG unset, no ~/.kube/config) and no "
                "in-cluster config: %s", mine.text);
    }
    return cfg;
}
