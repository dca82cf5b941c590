/* Unit tests: the API objects isthmusd builds (bridge/model.c).
 *
 * Devices are checked against two models of every shared machine: the one
 * hwloc gives, and the one `isthmus-topology json` publishes (what isthmusd
 * really reads).  Slices and claims are split at and around their API
 * limits on hwloc synthetic machines, and the slice digest is checked
 * against what the API server does to an object: reorder keys, add its
 * own fields, drop empty ones.
 */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/model.h"
#include "unit.h"

#define POOL "node-1"
#define UID "8d3c1c1e-2f11-4d0c-9a6e-0c8f2f4f1a01"
#define NS "isthmus-system"

static json_t *devices_of(const ism_topo_t *topo)
{
    ism_error_t err = ISM_ERROR_INIT;
    json_t *devices = ism_devices_build(topo, &err);

    ck_assert_msg(devices != NULL, "%s", err.text);
    return devices;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

    ck_assert_msg(v != NULL, "%s: %s", text, jerr.text);
    return v;
}

/* The value at a space-separated path of object keys and array indices. */
static json_t *at(json_t *v, const char *path)
{
    char *copy = strdup(path), *save = NULL;

    for (char *seg = strtok_r(copy, " ", &save); v && seg; seg = strtok_r(NULL, " ", &save))
        v = json_is_array(v) ? json_array_get(v, strtoul(seg, NULL, 10)) : json_object_get(v, seg);
    free(copy);
    return v;
}

static const char *str_at(json_t *v, const char *path)
{
    const char *s = json_string_value(at(v, path));

    ck_assert_msg(s != NULL, "no string at %s", path);
    return s;
}

static json_int_t int_at(json_t *v, const char *path)
{
    json_t *i = at(v, path);

    ck_assert_msg(json_is_integer(i), "no integer at %s", path);
    return json_integer_value(i);
}

/* Set (value a JSON text) or remove (value NULL) the member at path. */
static void set_at(json_t *root, const char *path, const char *value)
{
    const char *last = strrchr(path, ' ');
    char *parent_path = strndup(path, last ? (size_t)(last - path) : 0);
    json_t *parent = last ? at(root, parent_path) : root;

    ck_assert_msg(json_is_object(parent), "no object at %s", parent_path);
    last = last ? last + 1 : path;
    if (value)
        ck_assert_int_eq(json_object_set_new(parent, last, parse(value)), 0);
    else
        ck_assert_int_eq(json_object_del(parent, last), 0);
    free(parent_path);
}

/* A deep copy of v with every object's keys in reverse order. */
static json_t *reversed(json_t *v)
{
    json_t *out;
    size_t i, n;

    if (json_is_array(v)) {
        out = json_array();
        for (i = 0; i < json_array_size(v); i++)
            json_array_append_new(out, reversed(json_array_get(v, i)));
        return out;
    }
    if (!json_is_object(v))
        return json_deep_copy(v);
    n = json_object_size(v);
    {
        const char **keys = calloc(n + 1, sizeof(*keys));
        const char *key;
        json_t *m;

        i = 0;
        json_object_foreach(v, key, m) {
            keys[i++] = key;
        }
        out = json_object();
        while (i-- > 0)
            json_object_set_new(out, keys[i], reversed(json_object_get(v, keys[i])));
        free(keys);
    }
    return out;
}

/* A valid DNS-1123 subdomain, as the API server checks object names. */
static bool is_subdomain(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i], prev = i ? s[i - 1] : '.', next = i + 1 < len ? s[i + 1] : '.';
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

        if (!alnum && (c != '-' && c != '.'))
            return false;
        if (!alnum && (prev == '.' || next == '.'))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------ names */

static const struct {
    const char *pool;
    int index;
    uint32_t job;
    const char *slice, *claim; /* NULL: refused with EINVAL */
} names[] = {
    { "node-1", 0, 7, "node-1-cpu.isthmus.io-0", "slurm-7-node-1-0" },
    { "n", 12, 4294967295u, "n-cpu.isthmus.io-12", "slurm-4294967295-n-12" },
    { "rack1.node-1.example.org", 3, 1, "rack1.node-1.example.org-cpu.isthmus.io-3",
      "slurm-1-rack1.node-1.example.org-3" },
    { NULL, 0, 1, NULL, NULL },
    { "", 0, 1, NULL, NULL },
    { "Node-1", 0, 1, NULL, NULL },
    { "node_1", 0, 1, NULL, NULL },
    { "-node", 0, 1, NULL, NULL },
    { "node-", 0, 1, NULL, NULL },
    { "a..b", 0, 1, NULL, NULL },
    { "a.-b", 0, 1, NULL, NULL },
    { "node-1", -1, 1, NULL, NULL },
};

START_TEST(name_table)
{
    char *slice, *claim;

    errno = 0;
    slice = ism_slice_name(names[_i].pool, names[_i].index);
    if (!names[_i].slice) {
        ck_assert_ptr_null(slice);
        ck_assert_int_eq(errno, EINVAL);
    } else {
        ck_assert_str_eq(slice, names[_i].slice);
    }
    errno = 0;
    claim = ism_claim_name(names[_i].job, names[_i].pool, names[_i].index);
    if (!names[_i].claim) {
        ck_assert_ptr_null(claim);
        ck_assert_int_eq(errno, EINVAL);
    } else {
        ck_assert_str_eq(claim, names[_i].claim);
    }
    free(slice);
    free(claim);
}
END_TEST

/* Pools near the 253 limit, differing only far in, with '-' or '.' where
 * the cut falls. */
static char *long_pool(size_t len, size_t at, char c)
{
    char *p = malloc(len + 1);

    memset(p, 'a', len);
    p[len] = '\0';
    if (at < len)
        p[at] = c;
    return p;
}

START_TEST(long_pool_names)
{
    /* each pair: (length, position of a marker, marker) */
    static const struct {
        size_t len, at;
        char c;
    } pools[] = {
        { 250, 999, 0 },   { 250, 249, 'b' }, { 250, 248, 'c' }, { 253, 999, 0 },
        { 250, 200, '.' }, { 250, 200, '-' }, { 250, 224, '.' }, { 250, 219, '-' },
        { 250, 222, '-' }, { 250, 230, '.' }, { 250, 223, '-' }, { 237, 999, 0 },
        { 236, 999, 0 },
    };
    enum { N = sizeof(pools) / sizeof(pools[0]), PER = 4 };
    char *made[N * PER];
    int k = 0;

    for (size_t i = 0; i < N; i++) {
        char *pool = long_pool(pools[i].len, pools[i].at, pools[i].c);

        ck_assert_ptr_nonnull(made[k++] = ism_slice_name(pool, 0));
        ck_assert_ptr_nonnull(made[k++] = ism_slice_name(pool, 100000));
        ck_assert_ptr_nonnull(made[k++] = ism_claim_name(4294967295u, pool, 0));
        ck_assert_ptr_nonnull(made[k++] = ism_claim_name(1, pool, 17));
        for (int j = k - PER; j < k; j++) {
            char *again = j % PER < 2 ? ism_slice_name(pool, j % PER ? 100000 : 0)
                                      : ism_claim_name(j % PER == 2 ? 4294967295u : 1, pool,
                                                       j % PER == 2 ? 0 : 17);

            ck_assert_msg(is_subdomain(made[j]), "not a valid name: %s", made[j]);
            ck_assert_str_eq(made[j], again); /* deterministic */
            free(again);
        }
        ck_assert(strstr(made[k - 4], "-cpu.isthmus.io-0") != NULL);
        ck_assert(strncmp(made[k - 2], "slurm-4294967295-aaaa", 21) == 0);
        free(pool);
    }
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++)
            ck_assert_msg(strcmp(made[a], made[b]) != 0, "%s twice", made[a]);
    for (int a = 0; a < k; a++)
        free(made[a]);
}
END_TEST

/* ------------------------------------------------------------ devices */

static void check_int_attr(json_t *attrs, const char *key, int want, bool optional)
{
    json_t *v = json_object_get(attrs, key);

    if (optional && want < 0) {
        ck_assert_msg(v == NULL, "%s present for %d", key, want);
        return;
    }
    ck_assert_msg(json_is_object(v) && json_object_size(v) == 1, "%s", key);
    ck_assert_msg(json_is_integer(json_object_get(v, "int")), "%s is not an int", key);
    ck_assert_int_eq(json_integer_value(json_object_get(v, "int")), want);
}

/* dev is exactly what model.h says of core c. */
static void check_device(json_t *dev, const struct ism_core *c, const char *machine)
{
    json_t *attrs = json_object_get(dev, "attributes");
    json_t *cpus = json_object_get(attrs, "cpu.isthmus.io/cpus");
    json_t *kind = json_object_get(attrs, "cpu.isthmus.io/coreType");
    ism_error_t err = ISM_ERROR_INIT;
    enum ism_core_kind k;
    ism_bitmap_t *b;
    char name[32];

    snprintf(name, sizeof(name), "core-%d", c->index);
    ck_assert_str_eq(str_at(dev, "name"), name);
    ck_assert_int_eq(json_object_size(dev), 2);
    ck_assert_int_eq(json_object_size(attrs), 5 + (c->numa >= 0) + (c->l3 >= 0));
    check_int_attr(attrs, "resource.kubernetes.io/numaNode", c->numa, true);
    check_int_attr(attrs, "cpu.isthmus.io/socket", c->socket, false);
    check_int_attr(attrs, "cpu.isthmus.io/l3cache", c->l3, true);
    check_int_attr(attrs, "cpu.isthmus.io/core", c->index, false);
    check_int_attr(attrs, "cpu.isthmus.io/threads", ism_bitmap_count(c->cpus), false);
    ck_assert_int_eq(json_object_size(cpus), 1);
    ck_assert_int_le(strlen(str_at(cpus, "string")), 64);
    b = ism_bitmap_parse_list(str_at(cpus, "string"), &err);
    ck_assert_msg(b != NULL, "%s: %s", machine, err.text);
    ck_assert_msg(ism_bitmap_equal(b, c->cpus), "%s core %d: cpus %s", machine, c->index,
                  str_at(cpus, "string"));
    ism_bitmap_destroy(b);
    ck_assert_int_eq(json_object_size(kind), 1);
    ck_assert_int_eq(ism_core_kind_parse(str_at(kind, "string"), &k), 0);
    ck_assert_int_eq(k, c->kind);
}

/* `isthmus-topology json --xml FILE`, decoded: the model isthmusd reads. */
static ism_topo_t *published(const char *name)
{
    const char *tool = getenv("ISTHMUS_TOPOLOGY"), *dir = getenv("ISTHMUS_TOPOLOGIES");
    ism_error_t err = ISM_ERROR_INIT;
    char cmd[2048], *text = NULL;
    size_t size = 0;
    ism_topo_t *topo;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "'%s' json --xml '%s/%s'", tool ? tool : TOPOLOGY_TOOL,
             dir ? dir : TOPOLOGIES_DIR, name);
    ck_assert_ptr_nonnull(p = popen(cmd, "r"));
    ck_assert_int_gt(getline(&text, &size, p), 0);
    ck_assert_int_eq(pclose(p), 0);
    text[strcspn(text, "\n")] = '\0';
    topo = ism_topo_decode(text, &err);
    ck_assert_msg(topo != NULL, "%s: %s", name, err.text);
    free(text);
    return topo;
}

START_TEST(devices_of_machines)
{
    ism_topo_t *topo = load_xml(machines[_i]), *pub = published(machines[_i]);
    json_t *devices = devices_of(topo), *dev;
    size_t i;

    ck_assert_int_gt(topo->ncores, 0);
    ck_assert_int_eq(json_array_size(devices), topo->ncores);
    ck_assert_int_eq(pub->ncores, topo->ncores);
    json_array_foreach(devices, i, dev) {
        const struct ism_core *c = &topo->cores[i];

        check_device(dev, c, machines[_i]);
        ck_assert_ptr_nonnull(c = ism_topo_core(pub, c->index));
        check_device(dev, c, machines[_i]);
    }
    json_decref(devices);
    ism_topo_destroy(pub);
    ism_topo_destroy(topo);
}
END_TEST

START_TEST(devices_synthetic_exact)
{
    /* core i: socket i/8, NUMA node i/4, L3 i/2, cpus 2i, 2i+1 */
    ism_topo_t *topo = load_synth("pack:2 numa:2 l3:2 core:2 pu:2");
    json_t *devices = devices_of(topo);
    json_t *want = parse("{\"name\": \"core-13\", \"attributes\": {"
                         "\"resource.kubernetes.io/numaNode\": {\"int\": 3},"
                         "\"cpu.isthmus.io/socket\": {\"int\": 1},"
                         "\"cpu.isthmus.io/l3cache\": {\"int\": 6},"
                         "\"cpu.isthmus.io/core\": {\"int\": 13},"
                         "\"cpu.isthmus.io/cpus\": {\"string\": \"26-27\"},"
                         "\"cpu.isthmus.io/threads\": {\"int\": 2},"
                         "\"cpu.isthmus.io/coreType\": {\"string\": \"standard\"}}}");

    ck_assert_int_eq(json_array_size(devices), 16);
    ck_assert(json_equal(json_array_get(devices, 13), want));
    json_decref(want);
    json_decref(devices);
    ism_topo_destroy(topo);
}
END_TEST

START_TEST(devices_hybrid_kinds)
{
    ism_topo_t *topo = load_xml("fakecpukinds.xml");
    json_t *devices = devices_of(topo), *dev;
    int seen[3] = { 0 };
    size_t i;

    json_array_foreach(devices, i, dev) {
        enum ism_core_kind k;

        ck_assert_int_eq(ism_core_kind_parse(str_at(dev, "attributes cpu.isthmus.io/coreType "
                                                         "string"),
                                             &k),
                         0);
        seen[k]++;
    }
    ck_assert_int_eq(seen[ISM_CORE_STANDARD], 0);
    ck_assert_int_gt(seen[ISM_CORE_PERFORMANCE], 0);
    ck_assert_int_gt(seen[ISM_CORE_EFFICIENCY], 0);
    json_decref(devices);
    ism_topo_destroy(topo);
}
END_TEST

/* A cpu list of exactly 64 characters is the attribute limit; 69 is over. */
START_TEST(devices_cpu_list_limit)
{
    struct ism_core core = { .index = 5, .os_index = 5, .socket = 0, .numa = -1, .l3 = -1 };
    ism_topo_t topo = { .sockets = 1, .ncores = 1, .cores = &core };
    ism_error_t err = ISM_ERROR_INIT;
    json_t *devices;
    char *list;

    ck_assert_ptr_nonnull(core.cpus = ism_bitmap_create());
    for (int cpu = 1000; cpu <= 1024; cpu += 2)
        ism_bitmap_set(core.cpus, cpu);
    list = ism_bitmap_format_list(core.cpus);
    ck_assert_int_eq(strlen(list), 64);
    free(list);
    ck_assert_ptr_nonnull(devices = ism_devices_build(&topo, &err));
    ck_assert_int_eq(json_object_size(at(devices, "0 attributes")), 5); /* no numa, no l3 */
    json_decref(devices);

    ism_bitmap_set(core.cpus, 1026);
    errno = 0;
    ck_assert_ptr_null(ism_devices_build(&topo, &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, "core 5") != NULL, "%s", err.text);
    ism_bitmap_destroy(core.cpus);

    errno = 0;
    ck_assert_ptr_null(ism_devices_build(NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ------------------------------------------------------------ slices */

static json_t *slices_of(const json_t *devices, int64_t generation)
{
    ism_error_t err = ISM_ERROR_INIT;
    json_t *slices = ism_slices_build(POOL, UID, "node1", devices, generation, &err);

    ck_assert_msg(slices != NULL, "%s", err.text);
    return slices;
}

/* Every synthetic machine here names a NUMA level: without one, hwloc adds
 * it with an overlapping memcpy that valgrind reports. */
static const struct {
    const char *machine; /* NULL: no devices */
    int devices;
} splits[] = {
    { NULL, 0 },
    { "pack:1 numa:1 core:1 pu:2", 1 },
    { "pack:1 numa:1 core:128 pu:1", 128 },
    { "pack:2 numa:1 core:129 pu:1", 258 },
    { "pack:1 numa:1 core:129 pu:1", 129 },
    { "pack:2 numa:1 core:128 pu:1", 256 },
    { "pack:1 numa:1 core:257 pu:1", 257 },
};

START_TEST(slice_split)
{
    ism_topo_t *topo = splits[_i].machine ? load_synth(splits[_i].machine) : NULL;
    json_t *devices = topo ? devices_of(topo) : json_array();
    json_t *slices = slices_of(devices, 42), *slice;
    int n = splits[_i].devices, count = n ? (n + 127) / 128 : 1, next = 0;
    size_t i;

    ck_assert_int_eq(json_array_size(devices), n);
    ck_assert_int_eq(json_array_size(slices), count);
    json_array_foreach(slices, i, slice) {
        json_t *devs = at(slice, "spec devices");
        int want = n - (int)i * 128 < 128 ? n - (int)i * 128 : 128;
        char name[64];

        snprintf(name, sizeof(name), POOL "-cpu.isthmus.io-%zu", i);
        ck_assert_str_eq(str_at(slice, "apiVersion"), "resource.k8s.io/v1");
        ck_assert_str_eq(str_at(slice, "kind"), "ResourceSlice");
        ck_assert_str_eq(str_at(slice, "metadata name"), name);
        ck_assert_int_eq(json_object_size(at(slice, "metadata labels")), 2);
        ck_assert_str_eq(str_at(slice, "metadata labels isthmus.io/slurm-node"), "node1");
        ck_assert_str_eq(str_at(slice, "metadata labels app.kubernetes.io/managed-by"),
                         "isthmusd");
        ck_assert_int_eq(json_array_size(at(slice, "metadata ownerReferences")), 1);
        ck_assert_str_eq(str_at(slice, "metadata ownerReferences 0 apiVersion"), "v1");
        ck_assert_str_eq(str_at(slice, "metadata ownerReferences 0 kind"), "Node");
        ck_assert_str_eq(str_at(slice, "metadata ownerReferences 0 name"), POOL);
        ck_assert_str_eq(str_at(slice, "metadata ownerReferences 0 uid"), UID);
        ck_assert(json_is_true(at(slice, "metadata ownerReferences 0 controller")));
        ck_assert_str_eq(str_at(slice, "spec driver"), "cpu.isthmus.io");
        ck_assert_str_eq(str_at(slice, "spec nodeName"), POOL);
        ck_assert_str_eq(str_at(slice, "spec pool name"), POOL);
        ck_assert_int_eq(int_at(slice, "spec pool generation"), 42);
        ck_assert_int_eq(int_at(slice, "spec pool resourceSliceCount"), count);
        ck_assert(json_is_array(devs));
        ck_assert_int_eq(json_array_size(devs), want);
        for (size_t d = 0; d < json_array_size(devs); d++, next++) {
            /* the same devices, in order, and copies: not the caller's */
            ck_assert(json_equal(json_array_get(devs, d), json_array_get(devices, next)));
            ck_assert_ptr_ne(json_array_get(devs, d), json_array_get(devices, next));
        }
    }
    ck_assert_int_eq(next, n);
    json_decref(slices);
    json_decref(devices);
    ism_topo_destroy(topo);
}
END_TEST

START_TEST(slice_long_pool)
{
    char *pool = long_pool(250, 999, 0);
    ism_topo_t *topo = load_synth("pack:1 numa:1 core:200 pu:1");
    json_t *devices = devices_of(topo);
    ism_error_t err = ISM_ERROR_INIT;
    json_t *slices = ism_slices_build(pool, UID, "node1", devices, 1, &err);
    const char *a, *b;

    ck_assert_msg(slices != NULL, "%s", err.text);
    ck_assert_int_eq(json_array_size(slices), 2);
    a = str_at(slices, "0 metadata name");
    b = str_at(slices, "1 metadata name");
    ck_assert(is_subdomain(a) && is_subdomain(b));
    ck_assert_str_ne(a, b);
    ck_assert_str_eq(str_at(slices, "1 spec pool name"), pool);
    json_decref(slices);
    json_decref(devices);
    ism_topo_destroy(topo);
    free(pool);
}
END_TEST

static const struct {
    const char *what, *pool, *uid, *slurm_node;
    bool devices_not_array;
    int64_t generation;
    const char *message; /* a piece of the error */
} bad_slices[] = {
    { "NULL pool", NULL, UID, "n1", false, 1, "pool" },
    { "empty pool", "", UID, "n1", false, 1, "pool" },
    { "pool not a node name", "Node 1", UID, "n1", false, 1, "Node 1" },
    { "NULL uid", POOL, NULL, "n1", false, 1, "uid" },
    { "empty uid", POOL, "", "n1", false, 1, "uid" },
    { "NULL slurm node", POOL, UID, NULL, false, 1, "Slurm node" },
    { "slurm node with a space", POOL, UID, "n 1", false, 1, "n 1" },
    { "slurm node over 63", POOL, UID,
      "n123456789012345678901234567890123456789012345678901234567890123", false, 1, "label" },
    { "devices not an array", POOL, UID, "n1", true, 1, "array" },
    { "negative generation", POOL, UID, "n1", false, -1, "generation" },
};

START_TEST(slice_bad_args)
{
    json_t *devices = bad_slices[_i].devices_not_array ? json_object() : json_array();
    ism_error_t err = ISM_ERROR_INIT;

    errno = 0;
    ck_assert_ptr_null(ism_slices_build(bad_slices[_i].pool, bad_slices[_i].uid,
                                        bad_slices[_i].slurm_node, devices,
                                        bad_slices[_i].generation, &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, bad_slices[_i].message) != NULL, "%s: %s",
                  bad_slices[_i].what, err.text);
    ck_assert_ptr_null(ism_slices_build(bad_slices[_i].pool, bad_slices[_i].uid,
                                        bad_slices[_i].slurm_node, devices,
                                        bad_slices[_i].generation, NULL));
    ck_assert_ptr_null(ism_slices_build(POOL, UID, "n1", NULL, 1, NULL));
    json_decref(devices);
}
END_TEST

/* ------------------------------------------------------------ digest */

static void digest(const json_t *slice, char out[ISM_DIGEST_LEN])
{
    ck_assert_int_eq(ism_slice_digest(slice, out), 0);
    ck_assert_int_eq(strlen(out), 64);
    ck_assert_int_eq(strspn(out, "0123456789abcdef"), 64);
}

/* Changes to slice 0 of a 3-device slice, and whether the digest stays. */
static const struct {
    const char *what, *path, *value; /* value NULL: remove */
    bool same;
} changes[] = {
    /* what the API server adds or leaves out */
    { "uid", "metadata uid", "\"0b1c\"", true },
    { "resourceVersion", "metadata resourceVersion", "\"12345\"", true },
    { "creationTimestamp", "metadata creationTimestamp", "\"2026-01-01T00:00:00Z\"", true },
    { "metadata.generation", "metadata generation", "3", true },
    { "managedFields", "metadata managedFields", "[{\"manager\": \"isthmusd\"}]", true },
    { "someone else's label", "metadata labels team", "\"hpc\"", true },
    { "annotations", "metadata annotations", "{\"a\": \"b\"}", true },
    { "null field in spec", "spec nodeSelector", "null", true },
    { "empty field in spec", "spec sharedCounters", "[]", true },
    { "empty field in a device", "spec devices 1 capacity", "{}", true },
    { "status", "status", "{}", true },
    /* what isthmusd owns */
    { "an attribute", "spec devices 2 attributes cpu.isthmus.io/cpus string", "\"2,9\"", false },
    { "an attribute's type", "spec devices 2 attributes cpu.isthmus.io/core",
      "{\"string\": \"2\"}", false },
    { "a new attribute", "spec devices 0 attributes cpu.isthmus.io/x", "{\"int\": 1}", false },
    { "a removed attribute", "spec devices 0 attributes cpu.isthmus.io/threads", NULL, false },
    { "a device name", "spec devices 0 name", "\"core-9\"", false },
    { "the pool generation", "spec pool generation", "43", false },
    { "the slice count", "spec pool resourceSliceCount", "2", false },
    { "the node name", "spec nodeName", "\"node-2\"", false },
    { "our node label", "metadata labels isthmus.io/slurm-node", "\"node2\"", false },
    { "our manager label gone", "metadata labels app.kubernetes.io/managed-by", NULL, false },
    { "the labels gone", "metadata labels", NULL, false },
    { "the owner's uid", "metadata ownerReferences 0 uid", "\"other\"", false },
    { "the owner's controller flag", "metadata ownerReferences 0 controller", "false", false },
    { "no owner", "metadata ownerReferences", NULL, false },
    { "a second owner", "metadata ownerReferences",
      "[{\"kind\":\"Node\"},{\"kind\":\"Pod\"}]", false },
    { "no spec", "spec", NULL, false },
};

START_TEST(digest_changes)
{
    ism_topo_t *topo = load_synth("pack:1 numa:1 core:3 pu:2");
    json_t *devices = devices_of(topo), *slices = slices_of(devices, 42);
    json_t *mine = json_array_get(slices, 0), *theirs = json_deep_copy(mine);
    char a[ISM_DIGEST_LEN], b[ISM_DIGEST_LEN];

    digest(mine, a);
    set_at(theirs, changes[_i].path, changes[_i].value);
    digest(theirs, b);
    if (changes[_i].same)
        ck_assert_msg(strcmp(a, b) == 0, "%s changed the digest", changes[_i].what);
    else
        ck_assert_msg(strcmp(a, b) != 0, "%s did not change the digest", changes[_i].what);
    json_decref(theirs);
    json_decref(slices);
    json_decref(devices);
    ism_topo_destroy(topo);
}
END_TEST

/* The API server's answer: keys in its own order, after a trip through
 * text, with its metadata fields; an empty slice without its devices. */
START_TEST(digest_server_echo)
{
    ism_topo_t *topo = load_synth("pack:2 numa:1 core:100 pu:2");
    json_t *devices = devices_of(topo), *slices = slices_of(devices, 7), *empty = json_array();
    json_t *none = slices_of(empty, 7), *slice;
    char a[ISM_DIGEST_LEN], b[ISM_DIGEST_LEN];
    size_t i;

    ck_assert_int_eq(json_array_size(slices), 2);
    json_array_extend(slices, none);
    json_array_foreach(slices, i, slice) {
        json_t *echo = reversed(slice);
        char *mine = json_dumps(slice, JSON_COMPACT), *text = json_dumps(echo, JSON_COMPACT);

        ck_assert_str_ne(mine, text); /* the keys are reordered */
        json_decref(echo);
        echo = parse(text);
        set_at(echo, "metadata uid", "\"6a8e2c52-0f7e-4a8b-9d0c-1e2f3a4b5c6d\"");
        set_at(echo, "metadata resourceVersion", "\"991\"");
        set_at(echo, "metadata generation", "1");
        set_at(echo, "metadata creationTimestamp", "\"2026-11-23T10:00:00Z\"");
        if (json_array_size(at(echo, "spec devices")) == 0)
            set_at(echo, "spec devices", NULL);
        digest(slice, a);
        digest(echo, b);
        ck_assert_str_eq(a, b);
        free(mine);
        free(text);
        json_decref(echo);
    }
    /* every slice of a pool has its own digest */
    digest(json_array_get(slices, 0), a);
    digest(json_array_get(slices, 1), b);
    ck_assert_str_ne(a, b);
    json_decref(none);
    json_decref(empty);
    json_decref(slices);
    json_decref(devices);
    ism_topo_destroy(topo);
}
END_TEST

/* The shared parts route (parts once per hardware, a skeleton per pool,
 * the text spliced) sends exactly what ism_slices_build builds, and hashes
 * to the same digest, at every split. */
START_TEST(slice_parts_route)
{
    ism_topo_t *topo = splits[_i].machine ? load_synth(splits[_i].machine) : NULL;
    json_t *devices = topo ? devices_of(topo) : json_array();
    json_t *slices = slices_of(devices, 42), *slice;
    ism_error_t err = ISM_ERROR_INIT;
    json_t *parts = ism_slice_parts_build(devices, &err);
    size_t i;

    ck_assert_msg(parts != NULL, "%s", err.text);
    ck_assert_uint_eq(ism_slice_parts_count(parts), json_array_size(slices));
    json_array_foreach(slices, i, slice) {
        json_t *sk = ism_slice_skeleton(POOL, UID, "node1", parts, i, 42, &err), *sent;
        char whole[ISM_DIGEST_LEN], spec[ISM_DIGEST_LEN], split[ISM_DIGEST_LEN];
        char *text;

        ck_assert_msg(sk != NULL, "%s", err.text);
        ck_assert_ptr_null(at(sk, "spec devices"));
        /* metadata may change (annotations, resourceVersion) */
        set_at(sk, "metadata resourceVersion", "\"7\"");
        ck_assert_ptr_nonnull(text = ism_slice_text(sk, parts, i));
        sent = parse(text);
        set_at(slice, "metadata resourceVersion", "\"7\"");
        ck_assert_msg(json_equal(sent, slice), "slice %zu: the text is not the slice", i);
        digest(slice, whole);
        ck_assert_int_eq(ism_slice_spec_digest(at(sk, "spec"), ism_slice_parts_digest(parts, i),
                                               spec), 0);
        ck_assert_int_eq(ism_slice_meta_digest(sk, spec, split), 0);
        ck_assert_str_eq(whole, split);
        free(text);
        json_decref(sent);
        json_decref(sk);
    }
    ck_assert_ptr_null(ism_slice_skeleton(POOL, UID, "node1", parts, i, 42, &err));
    ck_assert_ptr_null(ism_slice_text(at(slices, "0"), parts, i));
    ck_assert_ptr_null(ism_slice_parts_build(NULL, NULL));
    json_decref(parts);
    json_decref(slices);
    json_decref(devices);
    ism_topo_destroy(topo);
}
END_TEST

/* Equal device keys for equal devices, different ones otherwise. */
START_TEST(devices_key_table)
{
    ism_topo_t *a = load_synth("pack:2 numa:1 core:64 pu:2");
    ism_topo_t *b = load_synth("pack:2 numa:1 core:64 pu:2");
    ism_topo_t *c = load_synth("pack:4 numa:1 core:32 pu:2");
    char *ka = ism_devices_key(a), *kb = ism_devices_key(b), *kc = ism_devices_key(c);
    json_t *da = devices_of(a), *dc = devices_of(c);

    ck_assert_str_eq(ka, kb);
    ck_assert(!json_equal(da, dc));
    ck_assert_str_ne(ka, kc);
    errno = 0;
    ck_assert_ptr_null(ism_devices_key(NULL));
    ck_assert_int_eq(errno, EINVAL);
    json_decref(da);
    json_decref(dc);
    free(ka);
    free(kb);
    free(kc);
    ism_topo_destroy(a);
    ism_topo_destroy(b);
    ism_topo_destroy(c);
}
END_TEST

START_TEST(digest_bad_args)
{
    char out[ISM_DIGEST_LEN];
    json_t *array = json_array(), *empty = json_object(), *odd = parse("{\"metadata\": 5}");
    char a[ISM_DIGEST_LEN];

    errno = 0;
    ck_assert_int_eq(ism_slice_digest(NULL, out), -1);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_int_eq(ism_slice_digest(array, out), -1);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_int_eq(ism_slice_digest(empty, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* objects without our parts still have a digest: the one of nothing */
    digest(empty, a);
    digest(odd, out);
    ck_assert_str_eq(a, out);
    json_decref(odd);
    json_decref(empty);
    json_decref(array);
}
END_TEST

/* ------------------------------------------------------------ claims */

static const struct {
    const char *cores;
    int claims;
} claim_splits[] = {
    { "", 0 },        { "7", 1 },         { "0-31", 1 },    { "0-32", 2 },
    { "100-163", 2 }, { "0-63,1000", 3 }, { "1-129:2", 3 },
};

static ism_bitmap_t *cores_of(const char *list)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_bitmap_t *b;

    if (strcmp(list, "1-129:2") == 0) { /* 65 odd cores, not contiguous */
        ck_assert_ptr_nonnull(b = ism_bitmap_create());
        for (int i = 1; i <= 129; i += 2)
            ism_bitmap_set(b, i);
        return b;
    }
    b = ism_bitmap_parse_list(list, &err);
    ck_assert_msg(b != NULL, "%s: %s", list, err.text);
    return b;
}

START_TEST(claim_split)
{
    ism_bitmap_t *cores = cores_of(claim_splits[_i].cores);
    ism_error_t err = ISM_ERROR_INIT;
    json_t *claims = ism_claims_build(4242, "my job", POOL, "node1", cores, NS, &err), *claim;
    int n = ism_bitmap_count(cores), want_claims = (n + 31) / 32, core = ism_bitmap_first(cores);
    size_t i;

    ck_assert_msg(claims != NULL, "%s", err.text);
    ck_assert_int_eq(want_claims, claim_splits[_i].claims);
    ck_assert_int_eq(json_array_size(claims), want_claims);
    json_array_foreach(claims, i, claim) {
        json_t *results = at(claim, "status allocation devices results"), *r;
        int want = n - (int)i * 32 < 32 ? n - (int)i * 32 : 32;
        char name[64];
        size_t j;

        snprintf(name, sizeof(name), "slurm-4242-" POOL "-%zu", i);
        ck_assert_str_eq(str_at(claim, "apiVersion"), "resource.k8s.io/v1");
        ck_assert_str_eq(str_at(claim, "kind"), "ResourceClaim");
        ck_assert_str_eq(str_at(claim, "metadata name"), name);
        ck_assert_str_eq(str_at(claim, "metadata namespace"), NS);
        ck_assert_int_eq(json_object_size(at(claim, "metadata labels")), 3);
        ck_assert_str_eq(str_at(claim, "metadata labels isthmus.io/slurm-job"), "4242");
        ck_assert_str_eq(str_at(claim, "metadata labels isthmus.io/slurm-node"), "node1");
        ck_assert_str_eq(str_at(claim, "metadata labels app.kubernetes.io/managed-by"),
                         "isthmusd");
        ck_assert_str_eq(str_at(claim, "metadata annotations isthmus.io/slurm-job-name"),
                         "my job");
        ck_assert_int_eq(json_array_size(at(claim, "metadata finalizers")), 1);
        ck_assert_str_eq(str_at(claim, "metadata finalizers 0"), "isthmus.io/slurm-job");
        ck_assert_int_eq(json_array_size(at(claim, "spec devices requests")), 1);
        ck_assert_str_eq(str_at(claim, "spec devices requests 0 name"), "cores");
        ck_assert_str_eq(str_at(claim, "spec devices requests 0 exactly deviceClassName"),
                         "cpu.isthmus.io");
        ck_assert_str_eq(str_at(claim, "spec devices requests 0 exactly allocationMode"),
                         "ExactCount");
        ck_assert_int_eq(int_at(claim, "spec devices requests 0 exactly count"), want);
        ck_assert_int_eq(json_array_size(results), want);
        json_array_foreach(results, j, r) {
            char device[32];

            snprintf(device, sizeof(device), "core-%d", core);
            ck_assert_int_eq(json_object_size(r), 4);
            ck_assert_str_eq(str_at(r, "request"), "cores");
            ck_assert_str_eq(str_at(r, "driver"), "cpu.isthmus.io");
            ck_assert_str_eq(str_at(r, "pool"), POOL);
            ck_assert_str_eq(str_at(r, "device"), device);
            core = ism_bitmap_next(cores, core);
        }
        ck_assert_int_eq(json_array_size(at(claim, "status allocation nodeSelector "
                                                   "nodeSelectorTerms")),
                         1);
        ck_assert_str_eq(str_at(claim, "status allocation nodeSelector nodeSelectorTerms 0 "
                                       "matchFields 0 key"),
                         "metadata.name");
        ck_assert_str_eq(str_at(claim, "status allocation nodeSelector nodeSelectorTerms 0 "
                                       "matchFields 0 operator"),
                         "In");
        ck_assert_int_eq(json_array_size(at(claim, "status allocation nodeSelector "
                                                   "nodeSelectorTerms 0 matchFields 0 values")),
                         1);
        ck_assert_str_eq(str_at(claim, "status allocation nodeSelector nodeSelectorTerms 0 "
                                       "matchFields 0 values 0"),
                         POOL);
        ck_assert(ism_claim_allocation_equal(claim, claim));
    }
    ck_assert_int_eq(core, -1); /* every core named once */
    json_decref(claims);
    ism_bitmap_destroy(cores);
}
END_TEST

static const struct {
    const char *job_name;
    const char *annotation; /* NULL: none */
} job_names[] = {
    { NULL, NULL },
    { "", NULL },
    { "train", "train" },
    { "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" },
    { "bad\xff\xfe utf8", "bad?? utf8" },
    { "tab\there", "tab\there" },
};

START_TEST(claim_job_name)
{
    ism_bitmap_t *cores = cores_of("0-3");
    ism_error_t err = ISM_ERROR_INIT;
    json_t *claims =
        ism_claims_build(9, job_names[_i].job_name, POOL, "node1", cores, NS, &err);

    ck_assert_msg(claims != NULL, "%s", err.text);
    if (job_names[_i].annotation)
        ck_assert_str_eq(str_at(claims, "0 metadata annotations isthmus.io/slurm-job-name"),
                         job_names[_i].annotation);
    else
        ck_assert_ptr_null(at(claims, "0 metadata annotations"));
    json_decref(claims);
    ism_bitmap_destroy(cores);
}
END_TEST

/* A long name is cut to 253 bytes, never inside a character. */
START_TEST(claim_long_job_name)
{
    ism_bitmap_t *cores = cores_of("0");
    ism_error_t err = ISM_ERROR_INIT;
    char name[1001];
    json_t *claims;
    const char *got;

    for (int i = 0; i < 1000; i += 2)
        memcpy(name + i, "\xc3\xa9", 2); /* é: cut after 252 bytes */
    name[1000] = '\0';
    ck_assert_ptr_nonnull(claims = ism_claims_build(9, name, POOL, "node1", cores, NS, &err));
    got = str_at(claims, "0 metadata annotations isthmus.io/slurm-job-name");
    ck_assert_int_eq(strlen(got), 252);
    ck_assert(strncmp(got, name, 252) == 0);
    json_decref(claims);
    memset(name, 'x', 1000);
    ck_assert_ptr_nonnull(claims = ism_claims_build(9, name, POOL, "node1", cores, NS, &err));
    ck_assert_int_eq(strlen(str_at(claims, "0 metadata annotations isthmus.io/slurm-job-name")),
                     253);
    json_decref(claims);
    ism_bitmap_destroy(cores);
}
END_TEST

static const struct {
    const char *what;
    uint32_t job;
    const char *pool, *slurm_node, *ns;
    bool no_cores;
    const char *message;
} bad_claims[] = {
    { "NULL pool", 1, NULL, "n1", NS, false, "pool" },
    { "empty pool", 1, "", "n1", NS, false, "pool" },
    { "NULL cores", 1, POOL, "n1", NS, true, "core" },
    { "NULL namespace", 1, POOL, "n1", NULL, false, "namespace" },
    { "namespace with a dot", 1, POOL, "n1", "a.b", false, "namespace" },
    { "NULL slurm node", 1, POOL, NULL, NS, false, "Slurm node" },
    { "job 0", 0, POOL, "n1", NS, false, "job id 0" },
};

START_TEST(claim_bad_args)
{
    ism_bitmap_t *cores = bad_claims[_i].no_cores ? NULL : cores_of("0-3");
    ism_error_t err = ISM_ERROR_INIT;

    errno = 0;
    ck_assert_ptr_null(ism_claims_build(bad_claims[_i].job, "j", bad_claims[_i].pool,
                                        bad_claims[_i].slurm_node, cores, bad_claims[_i].ns,
                                        &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, bad_claims[_i].message) != NULL, "%s: %s", bad_claims[_i].what,
                  err.text);
    errno = 0;
    ck_assert_ptr_null(ism_claims_build(bad_claims[_i].job, "j", bad_claims[_i].pool,
                                        bad_claims[_i].slurm_node, cores, bad_claims[_i].ns,
                                        NULL));
    ck_assert_int_eq(errno, EINVAL);
    ism_bitmap_destroy(cores);
}
END_TEST

/* ------------------------------------------------------------ allocation */

static json_t *one_claim(const char *list)
{
    ism_bitmap_t *cores = cores_of(list);
    json_t *claims = ism_claims_build(77, NULL, POOL, "node1", cores, NS, NULL), *claim;

    ck_assert_ptr_nonnull(claims);
    ck_assert_int_eq(json_array_size(claims), 1);
    claim = json_incref(json_array_get(claims, 0));
    json_decref(claims);
    ism_bitmap_destroy(cores);
    return claim;
}

START_TEST(allocation_equal)
{
    json_t *wanted = one_claim("0-5"), *existing = reversed(wanted);
    json_t *results = at(existing, "status allocation devices results"), *other;
    json_t *first = json_incref(json_array_get(results, 0));

    /* the server's copy: results in another order, fields added */
    json_array_remove(results, 0);
    json_array_append_new(results, first);
    set_at(existing, "status allocation allocationTimestamp", "\"2026-01-01T00:00:00Z\"");
    set_at(existing, "status allocation devices results 2 adminAccess", "null");
    set_at(existing, "status reservedFor", "[{\"resource\": \"pods\", \"name\": \"p\"}]");
    set_at(existing, "metadata uid", "\"u\"");
    ck_assert(ism_claim_allocation_equal(existing, wanted));
    ck_assert(ism_claim_allocation_equal(wanted, existing));

    other = one_claim("0-4,6");
    ck_assert(!ism_claim_allocation_equal(other, wanted));
    ck_assert(!ism_claim_allocation_equal(wanted, other));
    json_decref(other);
    other = one_claim("0-6");
    ck_assert(!ism_claim_allocation_equal(other, wanted));
    ck_assert(!ism_claim_allocation_equal(wanted, other));
    json_decref(other);
    /* the same devices twice is not the set once */
    other = json_deep_copy(wanted);
    json_array_append(at(other, "status allocation devices results"),
                      at(other, "status allocation devices results 0"));
    json_array_remove(at(other, "status allocation devices results"), 5);
    ck_assert(!ism_claim_allocation_equal(other, wanted));
    json_decref(other);

    set_at(existing, "status allocation devices results 0 pool", "\"node-2\"");
    ck_assert(!ism_claim_allocation_equal(existing, wanted));
    set_at(existing, "status allocation devices results 0 pool", "\"" POOL "\"");
    ck_assert(ism_claim_allocation_equal(existing, wanted));
    set_at(existing, "status allocation devices results 3 driver", "\"gpu.example.com\"");
    ck_assert(!ism_claim_allocation_equal(existing, wanted));
    set_at(existing, "status allocation devices results 3 driver", NULL);
    ck_assert(!ism_claim_allocation_equal(existing, wanted));
    set_at(existing, "status", NULL);
    ck_assert(!ism_claim_allocation_equal(existing, wanted));
    ck_assert(!ism_claim_allocation_equal(wanted, existing));
    ck_assert(!ism_claim_allocation_equal(NULL, wanted));
    ck_assert(!ism_claim_allocation_equal(wanted, NULL));
    ck_assert(!ism_claim_allocation_equal(NULL, NULL));
    json_decref(existing);
    json_decref(wanted);
}
END_TEST

/* Odd JSON where a claim should be: never a crash, never equal. */
static const char *const hostile[] = {
    "null",
    "5",
    "\"claim\"",
    "[]",
    "[{\"status\": {}}]",
    "{}",
    "{\"status\": null}",
    "{\"status\": []}",
    "{\"status\": {\"allocation\": null}}",
    "{\"status\": {\"allocation\": {\"devices\": null}}}",
    "{\"status\": {\"allocation\": {\"devices\": {\"results\": null}}}}",
    "{\"status\": {\"allocation\": {\"devices\": {\"results\": {}}}}}",
    "{\"status\": {\"allocation\": {\"devices\": {\"results\": [1, null, \"x\", [], {}]}}}}",
    "{\"status\": {\"allocation\": {\"devices\": {\"results\": [null]}}}}",
    "{\"status\": {\"allocation\": {\"devices\": {\"results\": [[\"cores\"]]}}}}",
    "{\"status\": {\"allocation\": {\"devices\": {\"results\": [{\"request\": 1, \"driver\": 2,"
    " \"pool\": 3, \"device\": 4}]}}}}",
    "{\"status\": {\"allocation\": {\"devices\": {\"results\": [{\"request\": null,"
    " \"driver\": \"cpu.isthmus.io\", \"pool\": \"node-1\", \"device\": \"core-0\"}]}}}}",
    "{\"status\": {\"allocation\": {\"devices\": {\"results\": [{\"request\": \"cores\","
    " \"driver\": \"cpu.isthmus.io\", \"pool\": \"node-1\"}]}}}}",
};

START_TEST(allocation_hostile)
{
    json_t *odd = parse(hostile[_i]), *wanted = one_claim("0");
    json_t *empty = parse("{\"status\": {\"allocation\": {\"devices\": {\"results\": []}}}}");

    ck_assert(!ism_claim_allocation_equal(odd, wanted));
    ck_assert(!ism_claim_allocation_equal(wanted, odd));
    ck_assert(!ism_claim_allocation_equal(odd, empty));
    ck_assert(!ism_claim_allocation_equal(odd, odd));
    ck_assert(ism_claim_allocation_equal(empty, empty));
    json_decref(empty);
    json_decref(wanted);
    json_decref(odd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *names_tc = tcase_create("names");
    TCase *devices_tc = tcase_create("devices");
    TCase *slices_tc = tcase_create("slices");
    TCase *claims_tc = tcase_create("claims");

    /* the 384-cpu machines take a few seconds under valgrind */
    tcase_set_timeout(devices_tc, 600);
    tcase_set_timeout(slices_tc, 600);
    tcase_set_timeout(claims_tc, 600);
    tcase_add_loop_test(names_tc, name_table, 0, ARRAY_SIZE(names));
    tcase_add_test(names_tc, long_pool_names);
    tcase_add_loop_test(devices_tc, devices_of_machines, 0, ARRAY_SIZE(machines));
    tcase_add_test(devices_tc, devices_synthetic_exact);
    tcase_add_test(devices_tc, devices_hybrid_kinds);
    tcase_add_test(devices_tc, devices_cpu_list_limit);
    tcase_add_loop_test(slices_tc, slice_split, 0, ARRAY_SIZE(splits));
    tcase_add_test(slices_tc, slice_long_pool);
    tcase_add_loop_test(slices_tc, slice_bad_args, 0, ARRAY_SIZE(bad_slices));
    tcase_add_loop_test(slices_tc, digest_changes, 0, ARRAY_SIZE(changes));
    tcase_add_test(slices_tc, digest_server_echo);
    tcase_add_test(slices_tc, digest_bad_args);
    tcase_add_loop_test(slices_tc, slice_parts_route, 0, ARRAY_SIZE(splits));
    tcase_add_test(slices_tc, devices_key_table);
    tcase_add_loop_test(claims_tc, claim_split, 0, ARRAY_SIZE(claim_splits));
    tcase_add_loop_test(claims_tc, claim_job_name, 0, ARRAY_SIZE(job_names));
    tcase_add_test(claims_tc, claim_long_job_name);
    tcase_add_loop_test(claims_tc, claim_bad_args, 0, ARRAY_SIZE(bad_claims));
    tcase_add_test(claims_tc, allocation_equal);
    tcase_add_loop_test(claims_tc, allocation_hostile, 0, ARRAY_SIZE(hostile));
    suite_add_tcase(s, names_tc);
    suite_add_tcase(s, devices_tc);
    suite_add_tcase(s, slices_tc);
    suite_add_tcase(s, claims_tc);
    return run_suite(s);
}
