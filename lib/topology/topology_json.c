/* topology_json.c - the canonical JSON encoding of a topology.
 *
 * Version 1, compact, keys in a fixed order (documented in
 * isthmus-topology(1)):
 *   {"version":1,"sockets":S,"l3_caches":L,"memory":BYTES,
 *    "offline":"LIST","disallowed":"LIST",
 *    "slurm":{HW},"slurm_numa":{HW},
 *    "numa":[[OS_INDEX,BYTES,"CPUS"],...],
 *    "cores":[[INDEX,OS_INDEX,SOCKET,NUMA,L3,"CPUS","KIND"],...]}
 *   HW = "cpus","boards","sockets_per_board","cores_per_socket",
 *        "threads_per_core","real_memory"
 * Cores are tuples, not objects, because the encoding lives in Slurm's
 * node Extra field and shows in every `scontrol show node`: a 192-core node
 * takes about 6 KB this way instead of about 12.
 *
 * The decoder trusts nothing: it is fed whatever a node's Extra field holds.
 */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/topology/topology.h"

/* Far above any real encoding (a 16384-core node is about 600 KB). */
#define MAX_JSON_BYTES (4 * 1024 * 1024)

static const char *const hw_keys[] = {
    "cpus", "boards", "sockets_per_board", "cores_per_socket", "threads_per_core", "real_memory",
};
#define NHW_KEYS (sizeof(hw_keys) / sizeof(hw_keys[0]))

static const char *const top_keys[] = {
    "version", "sockets", "l3_caches", "memory", "offline", "disallowed",
    "slurm", "slurm_numa", "numa", "cores",
};

/* ---- encoding ---- */

/* json_*_set_new and json_array_append_new steal new even on failure. */
static int put(json_t *obj, const char *key, json_t *value)
{
    return json_object_set_new(obj, key, value);
}

static json_t *cpus_string(const ism_bitmap_t *b)
{
    char *s = ism_bitmap_format_list(b);
    json_t *j = s ? json_string(s) : NULL;

    free(s);
    return j;
}

static json_t *encode_hw(const struct ism_slurm_hw *hw)
{
    json_t *o = json_object();
    long long v[NHW_KEYS] = { hw->cpus, hw->boards, hw->sockets_per_board, hw->cores_per_socket,
                              hw->threads_per_core, (long long)hw->real_memory };

    for (size_t i = 0; o && i < NHW_KEYS; i++) {
        if (put(o, hw_keys[i], json_integer(v[i])) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *encode_numa(const ism_topo_t *topo)
{
    json_t *a = json_array();

    for (int i = 0; a && i < topo->nnuma; i++) {
        const struct ism_numa_node *n = &topo->numa[i];
        json_t *t = json_pack("[I,I,o]", (json_int_t)n->os_index, (json_int_t)n->memory,
                              cpus_string(n->cpus));
        if (json_array_append_new(a, t) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *encode_cores(const ism_topo_t *topo)
{
    json_t *a = json_array();

    for (int i = 0; a && i < topo->ncores; i++) {
        const struct ism_core *c = &topo->cores[i];
        json_t *t = json_pack("[i,i,i,i,i,o,s]", c->index, c->os_index, c->socket, c->numa,
                              c->l3, cpus_string(c->cpus), ism_core_kind_name(c->kind));
        if (json_array_append_new(a, t) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

char *ism_topo_encode(const ism_topo_t *topo, ism_error_t *err)
{
    json_t *o;
    char *s = NULL;

    if (!topo) {
        ism_err(err, EINVAL, "topology encode: missing topology");
        return NULL;
    }
    if (!(o = json_object()) || put(o, "version", json_integer(ISM_TOPO_VERSION)) < 0 ||
        put(o, "sockets", json_integer(topo->sockets)) < 0 ||
        put(o, "l3_caches", json_integer(topo->l3_caches)) < 0 ||
        put(o, "memory", json_integer((json_int_t)topo->memory)) < 0 ||
        put(o, "offline", cpus_string(topo->offline)) < 0 ||
        put(o, "disallowed", cpus_string(topo->disallowed)) < 0 ||
        put(o, "slurm", encode_hw(&topo->slurm)) < 0 ||
        put(o, "slurm_numa", encode_hw(&topo->slurm_numa)) < 0 ||
        put(o, "numa", encode_numa(topo)) < 0 || put(o, "cores", encode_cores(topo)) < 0 ||
        !(s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)))
        ism_err(err, ENOMEM, "topology encode: out of memory");
    json_decref(o);
    return s;
}

/* ---- decoding ---- */

static int get_int(json_t *j, const char *what, long long min, long long max, long long *out,
                   ism_error_t *err)
{
    if (!json_is_integer(j))
        return ism_err(err, EINVAL, "%s: expected an integer", what);
    *out = json_integer_value(j);
    if (*out < min || *out > max)
        return ism_err(err, EINVAL, "%s: %lld is out of range [%lld, %lld]", what, *out, min, max);
    return 0;
}

static ism_bitmap_t *get_cpus(json_t *j, const char *what, ism_error_t *err)
{
    ism_bitmap_t *b;

    if (!json_is_string(j)) {
        ism_err(err, EINVAL, "%s: expected a cpu list string", what);
        return NULL;
    }
    if (!(b = ism_bitmap_parse_list(json_string_value(j), err)))
        ism_errprefix(err, "%s", what);
    return b;
}

/* Every key of obj is one of keys[] and every one of keys[] is present. */
static int check_keys(json_t *obj, const char *what, const char *const *keys, size_t nkeys,
                      ism_error_t *err)
{
    const char *key;
    json_t *value;

    if (!json_is_object(obj))
        return ism_err(err, EINVAL, "%s: expected an object", what);
    json_object_foreach(obj, key, value)
    {
        size_t i;
        for (i = 0; i < nkeys && strcmp(key, keys[i]) != 0; i++)
            ;
        if (i == nkeys)
            return ism_err(err, EINVAL, "%s: unknown key '%s'", what, key);
    }
    for (size_t i = 0; i < nkeys; i++) {
        if (!json_object_get(obj, keys[i]))
            return ism_err(err, EINVAL, "%s: missing key '%s'", what, keys[i]);
    }
    return 0;
}

static int decode_hw(json_t *obj, const char *what, struct ism_slurm_hw *hw, ism_error_t *err)
{
    long long v[NHW_KEYS];

    if (check_keys(obj, what, hw_keys, NHW_KEYS, err) < 0)
        return -1;
    for (size_t i = 0; i < NHW_KEYS; i++) {
        char field[64];
        snprintf(field, sizeof(field), "%s.%s", what, hw_keys[i]);
        if (get_int(json_object_get(obj, hw_keys[i]), field, 0,
                    i == NHW_KEYS - 1 ? INT64_MAX : ISM_BITMAP_MAX_BITS, &v[i], err) < 0)
            return -1;
    }
    hw->cpus = (int)v[0];
    hw->boards = (int)v[1];
    hw->sockets_per_board = (int)v[2];
    hw->cores_per_socket = (int)v[3];
    hw->threads_per_core = (int)v[4];
    hw->real_memory = (uint64_t)v[5];
    return 0;
}

static int tuple(json_t *j, const char *what, size_t len, ism_error_t *err)
{
    if (!json_is_array(j) || json_array_size(j) != len)
        return ism_err(err, EINVAL, "%s: expected an array of %zu items", what, len);
    return 0;
}

/* NUMA nodes may share cpus: hwloc attaches a Xeon Phi's or Xeon Max's
 * HBM node to the same cpus as its DDR node.  Which node holds a core's
 * ordinary memory is the core's own numa field. */
static int decode_numa(json_t *a, ism_topo_t *topo, ism_error_t *err)
{
    if (!json_is_array(a) || json_array_size(a) > ISM_TOPO_MAX_NUMA)
        return ism_err(err, EINVAL, "numa: expected an array of at most %d nodes",
                       ISM_TOPO_MAX_NUMA);
    if (json_array_size(a) && !(topo->numa = calloc(json_array_size(a), sizeof(*topo->numa))))
        return ism_err(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *t = json_array_get(a, i);
        struct ism_numa_node *n = &topo->numa[i];
        char what[48];
        long long os, mem;

        snprintf(what, sizeof(what), "numa[%zu]", i);
        if (tuple(t, what, 3, err) < 0 ||
            get_int(json_array_get(t, 0), what, 0, ISM_BITMAP_MAX_BITS - 1, &os, err) < 0 ||
            get_int(json_array_get(t, 1), what, 0, INT64_MAX, &mem, err) < 0)
            return -1;
        topo->nnuma++;
        n->os_index = (int)os;
        n->memory = (uint64_t)mem;
        if (!(n->cpus = get_cpus(json_array_get(t, 2), what, err)))
            return -1;
        if (i > 0 && os <= topo->numa[i - 1].os_index)
            return ism_err(err, EINVAL, "%s: node %lld is %s", what, os,
                           os == topo->numa[i - 1].os_index ? "listed twice" : "out of order");
    }
    return 0;
}

/* Check one core against the rest of the topology.  seen holds the cpus of
 * the cores before it. */
static int check_core(const ism_topo_t *topo, const struct ism_core *c, int i,
                      const ism_bitmap_t *seen, const char *what, ism_error_t *err)
{
    const struct ism_numa_node *node = NULL;

    if (i > 0 && c->index <= topo->cores[i - 1].index)
        return ism_err(err, EINVAL, "%s: core index %d is %s", what, c->index,
                       c->index == topo->cores[i - 1].index ? "a duplicate" : "out of order");
    if (c->socket >= topo->sockets)
        return ism_err(err, EINVAL, "%s: socket %d, but there are %d sockets", what, c->socket,
                       topo->sockets);
    if (c->l3 >= topo->l3_caches)
        return ism_err(err, EINVAL, "%s: L3 %d, but there are %d L3 caches", what, c->l3,
                       topo->l3_caches);
    if (c->numa >= 0 && !(node = ism_topo_numa(topo, c->numa)))
        return ism_err(err, EINVAL, "%s: NUMA node %d is not in numa[]", what, c->numa);
    if (ism_bitmap_empty(c->cpus))
        return ism_err(err, EINVAL, "%s: a core needs at least one cpu", what);
    if (ism_bitmap_intersects(seen, c->cpus))
        return ism_err(err, EINVAL, "%s: cpus shared with another core", what);
    if (node && !ism_bitmap_is_subset(c->cpus, node->cpus))
        return ism_err(err, EINVAL, "%s: cpus are not all in NUMA node %d", what, c->numa);
    if (ism_bitmap_intersects(c->cpus, topo->offline) ||
        ism_bitmap_intersects(c->cpus, topo->disallowed))
        return ism_err(err, EINVAL, "%s: cpus include offline or disallowed ones", what);
    return 0;
}

static int decode_core(json_t *t, ism_topo_t *topo, int i, const ism_bitmap_t *seen,
                       ism_error_t *err)
{
    static const char *const names[] = { "index", "os_index", "socket", "numa", "l3" };
    static const long long min[] = { 0, -1, 0, -1, -1 };
    static const long long max[] = { ISM_TOPO_MAX_CORES - 1, ISM_BITMAP_MAX_BITS,
                                     ISM_TOPO_MAX_CORES - 1, ISM_BITMAP_MAX_BITS - 1,
                                     ISM_TOPO_MAX_CORES - 1 };
    struct ism_core *c = &topo->cores[i];
    long long v[5];
    char what[64];

    snprintf(what, sizeof(what), "cores[%d]", i);
    if (tuple(t, what, 7, err) < 0)
        return -1;
    for (int k = 0; k < 5; k++) {
        char field[96];
        snprintf(field, sizeof(field), "%s (%s)", what, names[k]);
        if (get_int(json_array_get(t, (size_t)k), field, min[k], max[k], &v[k], err) < 0)
            return -1;
    }
    c->index = (int)v[0];
    c->os_index = (int)v[1];
    c->socket = (int)v[2];
    c->numa = (int)v[3];
    c->l3 = (int)v[4];
    if (!json_is_string(json_array_get(t, 6)) ||
        ism_core_kind_parse(json_string_value(json_array_get(t, 6)), &c->kind) < 0)
        return ism_err(err, EINVAL, "%s (kind): expected standard, performance or efficiency",
                       what);
    if (!(c->cpus = get_cpus(json_array_get(t, 5), what, err)))
        return -1;
    return check_core(topo, c, i, seen, what, err);
}

static int decode_cores(json_t *a, ism_topo_t *topo, ism_error_t *err)
{
    ism_bitmap_t *seen;
    int rc = 0;

    if (!json_is_array(a) || json_array_size(a) == 0 ||
        json_array_size(a) > ISM_TOPO_MAX_CORES)
        return ism_err(err, EINVAL, "cores: expected an array of 1 to %d cores",
                       ISM_TOPO_MAX_CORES);
    if (!(topo->cores = calloc(json_array_size(a), sizeof(*topo->cores))) ||
        !(seen = ism_bitmap_create()))
        return ism_err(err, ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < json_array_size(a); i++) {
        topo->ncores++;
        if ((rc = decode_core(json_array_get(a, i), topo, (int)i, seen, err)) == 0 &&
            (rc = ism_bitmap_or(seen, topo->cores[i].cpus)) < 0)
            ism_err(err, ENOMEM, "out of memory");
    }
    ism_bitmap_destroy(seen);
    return rc;
}

static int decode_top(json_t *o, ism_topo_t *topo, ism_error_t *err)
{
    long long version, sockets, l3, memory;

    /* The version first: another version may have other keys. */
    if (!json_is_object(o))
        return ism_err(err, EINVAL, "topology: expected an object");
    if (get_int(json_object_get(o, "version"), "version", 0, INT32_MAX, &version, err) < 0)
        return -1;
    if (version != ISM_TOPO_VERSION)
        return ism_err(err, EPROTO, "version: %lld is not supported (this isthmus reads %d)",
                       version, ISM_TOPO_VERSION);
    if (check_keys(o, "topology", top_keys, sizeof(top_keys) / sizeof(top_keys[0]), err) < 0)
        return -1;
    if (get_int(json_object_get(o, "sockets"), "sockets", 1, ISM_TOPO_MAX_CORES, &sockets, err) <
            0 ||
        get_int(json_object_get(o, "l3_caches"), "l3_caches", 0, ISM_TOPO_MAX_CORES, &l3, err) <
            0 ||
        get_int(json_object_get(o, "memory"), "memory", 0, INT64_MAX, &memory, err) < 0)
        return -1;
    topo->sockets = (int)sockets;
    topo->l3_caches = (int)l3;
    topo->memory = (uint64_t)memory;
    if (!(topo->offline = get_cpus(json_object_get(o, "offline"), "offline", err)) ||
        !(topo->disallowed = get_cpus(json_object_get(o, "disallowed"), "disallowed", err)))
        return -1;
    if (decode_hw(json_object_get(o, "slurm"), "slurm", &topo->slurm, err) < 0 ||
        decode_hw(json_object_get(o, "slurm_numa"), "slurm_numa", &topo->slurm_numa, err) < 0)
        return -1;
    if (decode_numa(json_object_get(o, "numa"), topo, err) < 0)
        return -1;
    return decode_cores(json_object_get(o, "cores"), topo, err);
}

ism_topo_t *ism_topo_decode(const char *json, ism_error_t *err)
{
    json_error_t jerr;
    ism_topo_t *topo = NULL;
    json_t *o;
    size_t len;

    if (!json) {
        ism_err(err, EINVAL, "topology decode: missing input");
        return NULL;
    }
    if ((len = strnlen(json, MAX_JSON_BYTES + 1)) > MAX_JSON_BYTES) {
        ism_err(err, E2BIG, "topology JSON is larger than %d bytes", MAX_JSON_BYTES);
        return NULL;
    }
    if (!(o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr))) {
        ism_err(err, EINVAL, "topology JSON: %s (at byte %d)", jerr.text, jerr.position);
        return NULL;
    }
    if (!(topo = calloc(1, sizeof(*topo))))
        ism_err(err, ENOMEM, "out of memory");
    else if (decode_top(o, topo, err) < 0) {
        ism_topo_destroy(topo);
        topo = NULL;
    }
    json_decref(o);
    return topo;
}
