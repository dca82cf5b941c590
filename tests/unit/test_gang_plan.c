/* Unit tests: the gang scheduler's decisions (bridge/gang_plan.c).
 *
 * Identity and demand over tables of pods and claims (each row: what the
 * objects say, and the gang or the refusal with its errno); the Slurm
 * request; the split checked by its properties (disjoint whole cores from
 * the grant, every pod's count, alignment against the topology) over a
 * synthetic machine of 2 sockets, each of 2 NUMA nodes, each of 2 L3
 * caches of 4 cores of 2 threads (32 cores); the commit objects, and the
 * commit and rollback driven against a simulated server (each write applied
 * to the caches), checking the order of the writes.
 */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bridge/gang_plan.h"
#include "bridge/model.h"
#include "unit.h"

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    ck_assert_msg(j != NULL, "bad test JSON: %s: %s", je.text, text);
    return j;
}

/* ------------------------------------------------------------ identity */

static const struct id_case {
    const char *pod; /* metadata and spec of a pod, as JSON */
    int errnum;      /* 0: the gang below */
    const char *key;
    int min;
} id_cases[] = {
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\"}}", 0, "pod:ns/p", 1 },
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"annotations\": "
      "{\"isthmus.io/gang\": \"g\", \"isthmus.io/gang-size\": \"8\"}}}", 0, "gang:ns/g", 8 },
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"labels\": "
      "{\"scheduling.x-k8s.io/pod-group\": \"pg\"}, \"annotations\": "
      "{\"isthmus.io/gang\": \"g\", \"isthmus.io/gang-size\": \"8\"}}}", 0, "podgroup:ns/pg", 0 },
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"labels\": "
      "{\"scheduling.x-k8s.io/pod-group\": \"pg\"}}, \"spec\": {\"schedulingGroup\": "
      "{\"podGroupName\": \"w\"}}}", 0, "workload:ns/w", 0 },
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"annotations\": "
      "{\"isthmus.io/gang\": \"g\"}}}", EINVAL, NULL, 0 },
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"annotations\": "
      "{\"isthmus.io/gang-size\": \"2\"}}}", EINVAL, NULL, 0 },
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"annotations\": "
      "{\"isthmus.io/gang\": \"g\", \"isthmus.io/gang-size\": \"0\"}}}", EINVAL, NULL, 0 },
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"annotations\": "
      "{\"isthmus.io/gang\": \"g\", \"isthmus.io/gang-size\": \"4097\"}}}", EINVAL, NULL, 0 },
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"annotations\": "
      "{\"isthmus.io/gang\": \"g\", \"isthmus.io/gang-size\": \" 2\"}}}", EINVAL, NULL, 0 },
    { "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"annotations\": "
      "{\"isthmus.io/gang\": \"Not_A_Name\", \"isthmus.io/gang-size\": \"2\"}}}", EINVAL, NULL, 0 },
    { "{\"metadata\": {\"name\": \"p\"}}", EINVAL, NULL, 0 },
    { "[]", EINVAL, NULL, 0 },
};

START_TEST(identity)
{
    const struct id_case *c = &id_cases[_i];
    json_t *pod = load(c->pod);
    struct gang_id id;
    ism_error_t err = ISM_ERROR_INIT;
    int rc = gang_id_of_pod(pod, &id, &err);

    if (c->errnum) {
        ck_assert_int_eq(rc, -1);
        ck_assert_int_eq(errno, c->errnum);
        ck_assert_msg(err.text[0], "no message");
    } else {
        ck_assert_msg(rc == 0, "%s", err.text);
        ck_assert_str_eq(id.key, c->key);
        ck_assert_int_eq(id.min, c->min);
    }
    json_decref(pod);
}
END_TEST

static const struct group_case {
    enum gang_source source;
    const char *group;
    int min; /* -1: refused */
} group_cases[] = {
    { GANG_WORKLOAD, "{\"spec\": {\"schedulingPolicy\": {\"gang\": {\"minCount\": 8}}}}", 8 },
    { GANG_WORKLOAD, "{\"spec\": {\"schedulingPolicy\": {\"basic\": {}}}}", 1 },
    { GANG_WORKLOAD, "{\"spec\": {\"schedulingPolicy\": {\"gang\": {}}}}", -1 },
    { GANG_WORKLOAD, "{\"spec\": {\"schedulingPolicy\": {\"gang\": {\"minCount\": 0}}}}", -1 },
    { GANG_COSCHEDULING, "{\"spec\": {\"minMember\": 3}}", 3 },
    { GANG_COSCHEDULING, "{\"spec\": {\"minMember\": \"3\"}}", -1 },
    { GANG_COSCHEDULING, "{}", -1 },
    { GANG_ANNOTATION, "{}", -1 },
};

START_TEST(group_min)
{
    const struct group_case *c = &group_cases[_i];
    json_t *g = load(c->group);
    int min = -7;
    ism_error_t err = ISM_ERROR_INIT;
    int rc = gang_min_of_group(c->source, g, &min, &err);

    if (c->min < 0) {
        ck_assert_int_eq(rc, -1);
        ck_assert_int_eq(errno, EINVAL);
    } else {
        ck_assert_msg(rc == 0, "%s", err.text);
        ck_assert_int_eq(min, c->min);
    }
    json_decref(g);
}
END_TEST

/* ------------------------------------------------------------ demand */

/* A pod "p" (uid pod-uid) in ns with the given spec.resourceClaims and status. */
static json_t *pod_with(const char *claims, const char *status)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"uid\": \"pod-uid\"},"
             " \"spec\": {\"containers\": [{\"name\": \"c\", \"resources\": {\"requests\":"
             " {\"memory\": \"1Gi\"}}}], \"resourceClaims\": %s}, \"status\": %s}",
             claims, status);
    return load(buf);
}

/* The cache with one claim ns/NAME whose spec.devices is devices. */
static json_t *claims_with(const char *name, const char *devices, const char *status)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"ns/%s\": {\"metadata\": {\"name\": \"%s\", \"namespace\": \"ns\","
             " \"uid\": \"claim-uid\", \"resourceVersion\": \"7\"},"
             " \"spec\": {\"devices\": %s}, \"status\": %s}}",
             name, name, devices, status);
    return load(buf);
}

#define REQ(count, extra)                                                                  \
    "{\"requests\": [{\"name\": \"cores\", \"exactly\": {\"deviceClassName\": "            \
    "\"cpu.isthmus.io\", \"allocationMode\": \"ExactCount\", \"count\": " #count extra "}}]"

static const struct demand_case {
    const char *what;
    const char *pod_claims, *pod_status;
    const char *devices, *claim_status;
    int errnum;
    int cores;
    enum gang_align align;
} demand_cases[] = {
    { "a direct claim of 4 cores", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(4, "") "}", "{}", 0, 4, GANG_ALIGN_NONE },
    { "from a template, made", "[{\"name\": \"c\", \"resourceClaimTemplateName\": \"t\"}]",
      "{\"resourceClaimStatuses\": [{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]}",
      REQ(2, "") ", \"constraints\": [{\"matchAttribute\": \"resource.kubernetes.io/numaNode\"}]}",
      "{}", 0, 2, GANG_ALIGN_NUMA },
    { "from a template, not made yet", "[{\"name\": \"c\", \"resourceClaimTemplateName\": \"t\"}]",
      "{}", REQ(2, "") "}", "{}", EAGAIN, 0, 0 },
    { "a claim not in the cache", "[{\"name\": \"c\", \"resourceClaimName\": \"other\"}]", "{}",
      REQ(2, "") "}", "{}", EAGAIN, 0, 0 },
    { "another driver's class",
      "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      "{\"requests\": [{\"name\": \"gpu\", \"exactly\": {\"deviceClassName\": \"gpu.example.com\"}}]}",
      "{}", EXDEV, 0, 0 },
    { "allocationMode All", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      "{\"requests\": [{\"name\": \"r\", \"exactly\": {\"deviceClassName\": \"cpu.isthmus.io\","
      " \"allocationMode\": \"All\"}}]}", "{}", ENOTSUP, 0, 0 },
    { "firstAvailable", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      "{\"requests\": [{\"name\": \"r\", \"firstAvailable\": []}]}", "{}", ENOTSUP, 0, 0 },
    { "a selector outside the subset", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(2, ", \"selectors\": [{\"cel\": {\"expression\": \"device.attributes['cpu.isthmus.io']"
             ".socket + 1 == 1\"}}]") "}", "{}", ENOTSUP, 0, 0 },
    { "a selector in the subset", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(2, ", \"selectors\": [{\"cel\": {\"expression\": \"device.attributes['cpu.isthmus.io']"
             ".socket == 1\"}}]") "}", "{}", 0, 2, GANG_ALIGN_NONE },
    { "a constraint on another attribute", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]",
      "{}", REQ(2, "") ", \"constraints\": [{\"matchAttribute\": \"cpu.isthmus.io/coreType\"}]}",
      "{}", ENOTSUP, 0, 0 },
    { "socket and L3 constraints: L3 is stricter",
      "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(2, "") ", \"constraints\": [{\"matchAttribute\": \"cpu.isthmus.io/socket\"},"
      " {\"matchAttribute\": \"cpu.isthmus.io/l3cache\"}]}", "{}", 0, 2, GANG_ALIGN_L3 },
    { "a count of 0", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(0, "") "}", "{}", EINVAL, 0, 0 },
    { "a count that is a string", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ("2", "") "}", "{}", EINVAL, 0, 0 },
    { "allocated to someone else", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(2, "") "}", "{\"allocation\": {}, \"reservedFor\": [{\"uid\": \"x\"}]}", ENOTSUP, 0, 0 },
    { "allocated to this pod already", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(2, "") "}", "{\"allocation\": {}, \"reservedFor\": [{\"uid\": \"pod-uid\"}]}", 0, 2,
      GANG_ALIGN_NONE },
    { "no claims at all", "[]", "{}", REQ(2, "") "}", "{}", ENOTSUP, 0, 0 },
    { "an entry naming nothing", "[{\"name\": \"c\"}]", "{}", REQ(2, "") "}", "{}", EINVAL, 0, 0 },
    { "our opaque config, mem hbm", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(2, "") ", \"config\": [{\"opaque\": {\"driver\": \"cpu.isthmus.io\","
      " \"parameters\": {\"mem\": \"hbm\"}}}]}", "{}", 0, 2, GANG_ALIGN_NONE },
    { "another driver's config", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(2, "") ", \"config\": [{\"opaque\": {\"driver\": \"gpu.example.com\","
      " \"parameters\": {}}}]}", "{}", ENOTSUP, 0, 0 },
    { "our config with an unknown key", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]",
      "{}", REQ(2, "") ", \"config\": [{\"opaque\": {\"driver\": \"cpu.isthmus.io\","
      " \"parameters\": {\"layout\": \"numa\"}}}]}", "{}", EINVAL, 0, 0 },
    { "config not a list", "[{\"name\": \"c\", \"resourceClaimName\": \"cl\"}]", "{}",
      REQ(2, "") ", \"config\": {}}", "{}", EINVAL, 0, 0 },
};

START_TEST(demand)
{
    const struct demand_case *c = &demand_cases[_i];
    json_t *pod = pod_with(c->pod_claims, c->pod_status);
    json_t *claims = claims_with("cl", c->devices, c->claim_status);
    struct gang_pod p;
    ism_error_t err = ISM_ERROR_INIT;
    int rc = gang_pod_parse(pod, claims, &p, &err);

    if (c->errnum) {
        ck_assert_msg(rc == -1, "%s: accepted", c->what);
        ck_assert_msg(errno == c->errnum, "%s: errno %d, want %d (%s)", c->what, errno, c->errnum,
                      err.text);
        ck_assert_msg(strstr(err.text, "pod ns/p"), "%s: message '%s' names no pod", c->what,
                      err.text);
        ck_assert_ptr_null(p.claims);
    } else {
        ck_assert_msg(rc == 0, "%s: %s", c->what, err.text);
        ck_assert_int_eq(p.cores, c->cores);
        ck_assert_int_eq(p.align, c->align);
        ck_assert_uint_eq(p.memory_mib, 1024);
        ck_assert_str_eq(p.claims[0].uid, "claim-uid");
        gang_pod_clear(&p);
    }
    json_decref(pod);
    json_decref(claims);
}
END_TEST

/* A container's memory request: the MiB the pod asks, rounded up, or
 * refused (EINVAL, with the text in the message). */
static const struct memory_case {
    const char *quantity;
    long long mib; /* -1: refused */
} memory_cases[] = {
    { "1Gi", 1024 }, { "1536Mi", 1536 }, { "2G", 1908 }, { "1e9", 954 }, { "1E9", 954 }, { "1e3M", -1 },
    { "1048576", 1 }, { "1", 1 }, { "0", 0 }, { ".5Gi", 512 }, { "1.Gi", 1024 },
    { "+1Ki", 1 }, { "100m", 1 }, { "1Pi", 1073741824 }, { "1e6Mi", -1 },
    { "1E", 953674316407 }, { "1Ei", -1 }, { "1e30", -1 }, { "1e-3Gi", -1 }, { "nan", -1 },
    { "inf", -1 }, { "0x10Mi", -1 }, { "-1Gi", -1 }, { "1..0", -1 }, { "1GB", -1 },
    { "1e", -1 }, { "1e1000", -1 }, { " 1Gi", -1 }, { "", -1 }, { "Gi", -1 },
};

START_TEST(memory)
{
    const struct memory_case *c = &memory_cases[_i];
    char buf[512];
    json_t *pod, *claims = claims_with("cl", REQ(1, "") "}", "{}");
    struct gang_pod p;
    ism_error_t err = ISM_ERROR_INIT;
    int rc;

    snprintf(buf, sizeof(buf),
             "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"uid\": \"u\"},"
             " \"spec\": {\"containers\": [{\"name\": \"c\", \"resources\": {\"limits\":"
             " {\"memory\": \"%s\"}}}], \"resourceClaims\": [{\"name\": \"c\","
             " \"resourceClaimName\": \"cl\"}]}}", c->quantity);
    pod = load(buf);
    rc = gang_pod_parse(pod, claims, &p, &err);
    if (c->mib < 0) {
        ck_assert_msg(rc == -1, "%s: accepted as %llu MiB", c->quantity,
                      (unsigned long long)p.memory_mib);
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_msg(strstr(err.text, "is not a quantity"), "%s: %s", c->quantity, err.text);
    } else {
        ck_assert_msg(rc == 0, "%s: %s", c->quantity, err.text);
        ck_assert_msg(p.memory_mib == (uint64_t)c->mib, "%s: %llu MiB, want %lld", c->quantity,
                      (unsigned long long)p.memory_mib, c->mib);
        gang_pod_clear(&p);
    }
    json_decref(pod);
    json_decref(claims);
}
END_TEST

/* ------------------------------------------------------------ request */

static const struct time_case {
    const char *text;
    int minutes; /* -1: refused */
} time_cases[] = {
    { "30", 30 }, { "30:30", 31 }, { "1:00:00", 60 }, { "2-0", 2880 }, { "1-2:30", 1590 },
    { "1-0:0:1", 1441 }, { "0", -1 }, { "", -1 }, { "x", -1 }, { "1:2:3:4", -1 },
    { "-5", -1 }, { "1-", -1 }, { "5m", -1 }, { "99999999999", -1 },
};

START_TEST(time_limit)
{
    const struct time_case *c = &time_cases[_i];
    uint32_t m = 0;
    ism_error_t err = ISM_ERROR_INIT;
    int rc = gang_parse_time_limit(c->text, &m, &err);

    if (c->minutes < 0) {
        ck_assert_msg(rc == -1, "'%s' accepted as %u", c->text, m);
        ck_assert_int_eq(errno, EINVAL);
    } else {
        ck_assert_msg(rc == 0, "'%s': %s", c->text, err.text);
        ck_assert_uint_eq(m, (uint32_t)c->minutes);
    }
}
END_TEST

static void fake_pod(struct gang_pod *p, const char *name, int cores, uint64_t mib)
{
    memset(p, 0, sizeof(*p));
    p->ns = strdup("ns");
    p->name = strdup(name);
    p->uid = strdup(name);
    p->cores = cores;
    p->memory_mib = mib;
}

START_TEST(alloc_request)
{
    struct gang_pod pods[3];
    struct gang_id id;
    struct gang_alloc a;
    struct gang_defaults defs = { .partition = "batch", .account = "acct", .time_limit = 10 };
    json_t *first = load("{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\", \"annotations\":"
                         " {\"isthmus.io/gang\": \"g\", \"isthmus.io/gang-size\": \"3\","
                         " \"isthmus.io/qos\": \"high\", \"isthmus.io/time-limit\": \"1:30:00\"}}}");
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_int_eq(gang_id_of_pod(first, &id, &err), 0);
    for (int i = 0; i < 3; i++)
        fake_pod(&pods[i], "p", 4, i == 1 ? 3000 : 1000);
    ck_assert_msg(gang_alloc_request(&id, pods, 3, first, &defs, 2, &a, &err) == 0, "%s", err.text);
    ck_assert_str_eq(a.req.name, "k8s:ns/g");
    ck_assert_str_eq(a.req.admin_comment, "isthmus.io/gang=gang:ns/g");
    ck_assert_str_eq(a.req.partition, "batch");
    ck_assert_str_eq(a.req.account, "acct");
    ck_assert_str_eq(a.req.qos, "high");
    ck_assert_uint_eq(a.req.time_limit, 90);
    ck_assert_uint_eq(a.req.num_tasks, 3);
    ck_assert_uint_eq(a.req.cpus_per_task, 8);
    ck_assert_uint_eq(a.req.mem_per_cpu, 375); /* 3000 MiB over 8 cpus */

    /* pods of two shapes: tasks of their common divisor, 2 cores */
    pods[2].cores = 2;
    ck_assert_msg(gang_alloc_request(&id, pods, 3, first, &defs, 2, &a, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(a.req.num_tasks, 5);
    ck_assert_uint_eq(a.req.cpus_per_task, 4);
    ck_assert_uint_eq(a.req.max_nodes, 3);
    ck_assert_uint_eq(a.req.mem_per_cpu, 375);
    pods[2].cores = 0;
    ck_assert_int_eq(gang_alloc_request(&id, pods, 3, first, &defs, 2, &a, &err), -1);
    ck_assert_int_eq(errno, ENOTSUP);
    /* a bad annotation */
    json_object_set_new(json_object_get(json_object_get(first, "metadata"), "annotations"),
                        "isthmus.io/account", json_string("a b"));
    pods[2].cores = 4;
    ck_assert_int_eq(gang_alloc_request(&id, pods, 3, first, &defs, 2, &a, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(gang_alloc_request(NULL, pods, 3, first, &defs, 2, &a, &err), -1);
    for (int i = 0; i < 3; i++)
        gang_pod_clear(&pods[i]);
    json_decref(first);
}
END_TEST

/* ------------------------------------------------------------ split */

static ism_topo_t *machine(void)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *t = ism_topo_from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2", &err);
    ck_assert_msg(t != NULL, "%s", err.text);
    return t;
}

/* A pod of one claim of `cores` cores aligned as asked, with an optional selector. */
static void split_pod(struct gang_pod *p, const char *name, int cores, enum gang_align align,
                      const char *selector)
{
    ism_error_t err = ISM_ERROR_INIT;

    fake_pod(p, name, cores, 0);
    p->align = align;
    p->nclaims = 1;
    p->claims = calloc(1, sizeof(*p->claims));
    p->claims[0].name = strdup(name);
    p->claims[0].uid = strdup("u");
    p->claims[0].cores = cores;
    p->claims[0].align = align;
    p->claims[0].nrequests = 1;
    p->claims[0].requests = calloc(1, sizeof(*p->claims[0].requests));
    p->claims[0].requests[0].name = strdup("cores");
    p->claims[0].requests[0].count = cores;
    if (selector) {
        p->claims[0].requests[0].selectors = calloc(1, sizeof(ism_cel_t *));
        p->claims[0].requests[0].selectors[0] = ism_cel_compile(selector, &err);
        ck_assert_msg(p->claims[0].requests[0].selectors[0] != NULL, "%s", err.text);
        p->claims[0].requests[0].nselectors = 1;
    }
}

static const struct split_case {
    const char *what;
    const char *granted[2]; /* per node, abstract cores */
    int npods, cores;
    enum gang_align align;
    const char *selector;
    int errnum;             /* 0: a valid split */
} split_cases[] = {
    { "12 pods of 4 over two nodes", { "0-31", "0-15" }, 12, 4, GANG_ALIGN_NUMA, NULL, 0 },
    { "4 pods of 4, NUMA, scattered grant", { "0-3,8-11", "4-7,12-15" }, 4, 4, GANG_ALIGN_NUMA,
      NULL, 0 },
    { "2 pods of 4 per L3 in one node", { "0-7", "" }, 2, 4, GANG_ALIGN_L3, NULL, 0 },
    { "cores straddling NUMA nodes", { "6-9", "" }, 1, 4, GANG_ALIGN_NUMA, NULL, ENOSPC },
    { "the same, unaligned, is fine", { "6-9", "" }, 1, 4, GANG_ALIGN_NONE, NULL, 0 },
    { "more pods than the grant holds", { "0-3", "" }, 3, 2, GANG_ALIGN_NONE, NULL, ENOSPC },
    { "filling in order fails, the greedy split finds room", { "0-1,8-9,16-19", "0-3" }, 2, 4,
      GANG_ALIGN_NUMA, NULL, 0 },
    { "no node has an aligned domain left", { "0-1,8-9,16-19", "4-5,10-11" }, 2, 4,
      GANG_ALIGN_NUMA, NULL, ENOSPC },
    { "a selector the grant meets", { "16-19", "" }, 1, 2, GANG_ALIGN_NONE,
      "device.attributes['cpu.isthmus.io'].socket == 1", 0 },
    { "a selector the grant misses", { "0-3", "" }, 1, 2, GANG_ALIGN_NONE,
      "device.attributes['cpu.isthmus.io'].socket == 1", ENOSPC },
    { "a selector that fails to evaluate", { "0-3", "" }, 1, 2, GANG_ALIGN_NONE,
      "device.attributes['cpu.isthmus.io'].nothere == 1", ENOENT },
};

START_TEST(split)
{
    const struct split_case *c = &split_cases[_i];
    ism_topo_t *topo = machine();
    ism_error_t err = ISM_ERROR_INIT;
    json_t *devices = ism_devices_build(topo, &err);
    struct gang_node nodes[2];
    ism_bitmap_t *granted[2], *seen[2];
    struct gang_pod pods[16];
    struct gang_place *places;
    char name[16];

    for (int n = 0; n < 2; n++) {
        granted[n] = c->granted[n][0] ? ism_bitmap_parse_list(c->granted[n], &err)
                                       : ism_bitmap_create();
        seen[n] = ism_bitmap_create();
        nodes[n] = (struct gang_node){ .pool = n ? "n2" : "n1", .topo = topo,
                                       .devices = devices, .cores = granted[n] };
    }
    for (int i = 0; i < c->npods; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        split_pod(&pods[i], name, c->cores, c->align, c->selector);
    }
    places = gang_split(pods, c->npods, nodes, 2, &err);
    if (c->errnum) {
        ck_assert_msg(!places, "%s: split", c->what);
        ck_assert_msg(errno == c->errnum, "%s: errno %d (%s)", c->what, errno, err.text);
        ck_assert_msg(err.text[0], "no message");
    } else {
        ck_assert_msg(places != NULL, "%s: %s", c->what, err.text);
        for (int i = 0; i < c->npods; i++) {
            const struct gang_place *pl = &places[i];
            int bit, want = -1;
            ck_assert_int_eq(ism_bitmap_count(pl->cores), c->cores);
            ck_assert_msg(ism_bitmap_is_subset(pl->cores, granted[pl->node]), "%s: pod %d "
                          "outside the grant", c->what, i);
            ck_assert_msg(!ism_bitmap_intersects(pl->cores, seen[pl->node]), "%s: pod %d shares "
                          "a core", c->what, i);
            ism_bitmap_or(seen[pl->node], pl->cores);
            ck_assert_msg(ism_bitmap_equal(pl->claim_cores[0], pl->cores), "claim != pod");
            ism_bitmap_foreach(bit, pl->cores) {
                const struct ism_core *core = ism_topo_core(topo, bit);
                int v = c->align == GANG_ALIGN_NUMA ? core->numa
                      : c->align == GANG_ALIGN_L3   ? core->l3
                                                    : 0;
                if (want < 0)
                    want = v;
                ck_assert_msg(v == want, "%s: pod %d not aligned", c->what, i);
                if (c->selector)
                    ck_assert_int_eq(core->socket, 1);
            }
        }
        gang_places_destroy(places, c->npods);
    }
    for (int i = 0; i < c->npods; i++)
        gang_pod_clear(&pods[i]);
    for (int n = 0; n < 2; n++) {
        ism_bitmap_destroy(granted[n]);
        ism_bitmap_destroy(seen[n]);
    }
    json_decref(devices);
    ism_topo_destroy(topo);
}
END_TEST

/* ------------------------------------------------------------ commit */

START_TEST(commit_objects)
{
    ism_topo_t *topo = machine();
    ism_error_t err = ISM_ERROR_INIT;
    json_t *devices = ism_devices_build(topo, &err);
    ism_bitmap_t *granted = ism_bitmap_parse_list("4-5", &err);
    struct gang_node node = { .pool = "n1", .topo = topo, .devices = devices, .cores = granted };
    struct gang_pod pod;
    struct gang_place *pl;
    json_t *st, *want, *b;
    char *text;

    split_pod(&pod, "p0", 2, GANG_ALIGN_NUMA, NULL);
    pl = gang_split(&pod, 1, &node, 1, &err);
    ck_assert_msg(pl != NULL, "%s", err.text);
    st = gang_claim_status(&pod, 0, "n1", pl);
    want = load("{\"allocation\": {\"devices\": {\"results\": ["
                "{\"request\": \"cores\", \"driver\": \"cpu.isthmus.io\", \"pool\": \"n1\", \"device\": \"core-4\"},"
                "{\"request\": \"cores\", \"driver\": \"cpu.isthmus.io\", \"pool\": \"n1\", \"device\": \"core-5\"}]},"
                " \"nodeSelector\": {\"nodeSelectorTerms\": [{\"matchFields\": [{\"key\": \"metadata.name\","
                " \"operator\": \"In\", \"values\": [\"n1\"]}]}]}},"
                " \"reservedFor\": [{\"resource\": \"pods\", \"name\": \"p0\", \"uid\": \"p0\"}]}");
    text = json_dumps(st, JSON_SORT_KEYS);
    ck_assert_msg(json_equal(st, want), "got %s", text);
    free(text);
    ck_assert_ptr_null(gang_claim_status(&pod, 1, "n1", pl));
    /* The claim's own config goes into the allocation, for the kubelet plugin. */
    pod.claims[0].config = load("[{\"source\": \"FromClaim\", \"requests\": [\"cores\"],"
                                " \"opaque\": {\"driver\": \"cpu.isthmus.io\","
                                " \"parameters\": {\"mem\": \"hbm\"}}}]");
    json_decref(st);
    st = gang_claim_status(&pod, 0, "n1", pl);
    ck_assert(json_equal(json_object_get(json_object_get(json_object_get(st, "allocation"),
                                                         "devices"), "config"),
                         pod.claims[0].config));
    b = gang_binding(&pod, "n1");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "target"), "name")), "n1");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "metadata"), "uid")), "p0");
    json_decref(b);
    json_decref(st);
    json_decref(want);
    gang_places_destroy(pl, 1);
    gang_pod_clear(&pod);
    ism_bitmap_destroy(granted);
    json_decref(devices);
    ism_topo_destroy(topo);
}
END_TEST

/* A server for the commit: apply each planned write to the caches. */
static void serve(struct writes *w, json_t *claims, json_t *pods, int *binds, int *claims_done)
{
    char key[400];
    for (size_t i = 0; i < w->n; i++) {
        const struct write *x = &w->v[i];
        snprintf(key, sizeof(key), "%s/%s", x->ns, x->name);
        if (x->op == WRITE_BIND) {
            /* every claim is allocated before the first binding */
            const char *k;
            json_t *c;
            json_object_foreach(claims, k, c)
                ck_assert_msg(json_object_get(json_object_get(c, "status"), "allocation"),
                              "bound before claim %s was allocated", k);
            json_object_set_new(json_object_get(json_object_get(pods, key), "spec"), "nodeName",
                                json_string(json_string_value(json_object_get(
                                    json_object_get(x->obj, "target"), "name"))));
            (*binds)++;
        } else if (x->op == WRITE_UPDATE_STATUS) {
            ck_assert_msg(ism_has_finalizer(json_object_get(claims, key), ISM_GANG_FINALIZER),
                          "status of %s written before its finalizer", key);
            json_object_set(claims, key, x->obj);
            (*claims_done)++;
        } else {
            ck_assert_int_eq(x->op, WRITE_UPDATE);
            json_object_set(claims, key, x->obj);
        }
    }
    writes_clear(w);
}

START_TEST(commit_and_rollback)
{
    ism_topo_t *topo = machine();
    ism_error_t err = ISM_ERROR_INIT;
    json_t *devices = ism_devices_build(topo, &err);
    ism_bitmap_t *granted = ism_bitmap_parse_list("0-15", &err);
    struct gang_node node = { .pool = "n1", .topo = topo, .devices = devices, .cores = granted };
    json_t *claims = json_object(), *pods = json_object(), *snapshot;
    struct gang_pod gp[3];
    struct gang_place *pl;
    struct writes w = { 0 };
    int rc = 0, rounds = 0, binds = 0, done = 0;
    char name[16], key[64];

    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        split_pod(&gp[i], name, 4, GANG_ALIGN_NUMA, NULL);
        snprintf(key, sizeof(key), "ns/%s", name);
        json_object_set_new(claims, key, json_pack("{s:{s:s, s:s, s:s}, s:{}}", "metadata", "name",
                                                   name, "namespace", "ns", "uid", "u", "spec"));
        json_object_set_new(pods, key, json_pack("{s:{s:s, s:s, s:s}, s:{}}", "metadata", "name",
                                                 name, "namespace", "ns", "uid", name, "spec"));
    }
    pl = gang_split(gp, 3, &node, 1, &err);
    ck_assert_msg(pl != NULL, "%s", err.text);
    snapshot = json_deep_copy(claims);
    while ((rc = gang_commit_plan(gp, 3, pl, &node, claims, pods, NULL, &w, &err)) == 0) {
        ck_assert_msg(w.n > 0, "no progress");
        for (size_t i = 0; i < w.n; i++)
            ck_assert_msg(w.v[i].urgent, "a commit write of %s is not urgent", w.v[i].name);
        serve(&w, claims, pods, &binds, &done);
        ck_assert_int_lt(++rounds, 10);
    }
    ck_assert_msg(rc == 1, "%s", err.text);
    ck_assert_int_eq(binds, 3);
    ck_assert_int_eq(done, 3);
    ck_assert_int_eq(rounds, 3); /* finalizers, allocations, bindings: one round each */
    ck_assert_int_eq(gang_commit_plan(gp, 3, pl, &node, claims, pods, NULL, &w, &err), 1);
    ck_assert_uint_eq(w.n, 0);

    /* nothing twice: an object with a write in flight gets no other */
    /* (pods share their claims' names: only the claims are in flight) */
    json_t *fl = json_pack("{s:b, s:b}", "resource.k8s.io/resourceclaims:ns/p0", 1,
                           "resource.k8s.io/resourceclaims:ns/p1", 1);
    json_t *fresh = json_deep_copy(snapshot);
    ck_assert_int_eq(gang_commit_plan(gp, 3, pl, &node, fresh, pods, fl, &w, &err), 0);
    ck_assert_uint_eq(w.n, 1);
    ck_assert_str_eq(w.v[0].name, "p2");
    writes_clear(&w);
    json_decref(fl);
    json_decref(fresh);

    /* rollback: allocations and reservations go, then the finalizers */
    rounds = 0;
    while ((rc = gang_rollback_plan(gp, 3, claims, NULL, &w, &err)) == 0) {
        for (size_t i = 0; i < w.n; i++) {
            snprintf(key, sizeof(key), "ns/%s", w.v[i].name);
            json_object_set(claims, key, w.v[i].obj);
        }
        writes_clear(&w);
        ck_assert_int_lt(++rounds, 10);
    }
    ck_assert_int_eq(rc, 1);
    ck_assert_int_eq(rounds, 2);
    {
        const char *k;
        json_t *c;
        json_object_foreach(claims, k, c) {
            ck_assert_msg(!json_object_get(json_object_get(c, "status"), "allocation"), "%s", k);
            ck_assert_msg(!ism_has_finalizer(c, ISM_GANG_FINALIZER), "%s", k);
        }
    }

    /* someone else allocated a claim meanwhile: EBUSY, roll back */
    json_object_set_new(json_object_get(claims, "ns/p1"), "status",
                        json_pack("{s:{s:{s:[]}}}", "allocation", "devices", "results"));
    json_object_set_new(json_object_get(json_object_get(claims, "ns/p1"), "metadata"), "finalizers",
                        json_pack("[s]", ISM_GANG_FINALIZER));
    json_object_set_new(json_object_get(json_object_get(pods, "ns/p0"), "spec"), "nodeName",
                        json_string(""));
    ck_assert_int_eq(gang_commit_plan(gp, 3, pl, &node, claims, pods, NULL, &w, &err), -1);
    ck_assert_int_eq(errno, EBUSY);
    writes_clear(&w);
    json_object_del(claims, "ns/p2");
    ck_assert_int_eq(gang_commit_plan(gp, 3, pl, &node, claims, pods, NULL, &w, &err), -1);
    ck_assert_int_eq(errno, EBUSY);
    writes_clear(&w);

    json_decref(snapshot);
    json_decref(claims);
    json_decref(pods);
    gang_places_destroy(pl, 3);
    for (int i = 0; i < 3; i++)
        gang_pod_clear(&gp[i]);
    ism_bitmap_destroy(granted);
    json_decref(devices);
    ism_topo_destroy(topo);
}
END_TEST

/* The finalizers go on while Slurm decides: one urgent update per claim
 * that lacks it, none for one in flight, nothing for one not cached. */
START_TEST(hold)
{
    ism_error_t err = ISM_ERROR_INIT;
    json_t *held = json_pack("{s:b, s:b, s:b, s:b}", "ns/a", 1, "ns/b", 1, "ns/c", 1, "ns/gone", 1);
    json_t *claims = json_object();
    json_t *fl = json_pack("{s:b, s:b}", "resource.k8s.io/resourceclaims:ns/c", 1, "pods:ns/a", 1);
    struct writes w = { 0 };
    const char *names[] = { "a", "b", "c" };
    char key[16];

    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "ns/%s", names[i]);
        json_object_set_new(claims, key, json_pack("{s:{s:s, s:s, s:s, s:s}}", "metadata",
                                                   "name", names[i], "namespace", "ns", "uid",
                                                   names[i], "resourceVersion", "7"));
    }
    json_object_set_new(json_object_get(json_object_get(claims, "ns/b"), "metadata"),
                        "finalizers", json_pack("[s]", ISM_GANG_FINALIZER));
    ck_assert_int_eq(gang_hold_plan(held, claims, fl, &w, &err), 0);
    ck_assert_uint_eq(w.n, 1);
    ck_assert_str_eq(w.v[0].name, "a");
    ck_assert_int_eq(w.v[0].op, WRITE_UPDATE);
    ck_assert(w.v[0].urgent);
    ck_assert(ism_has_finalizer(w.v[0].obj, ISM_GANG_FINALIZER));
    json_object_set(claims, "ns/a", w.v[0].obj);
    writes_clear(&w);
    /* c is in flight: not done, nothing written */
    ck_assert_int_eq(gang_hold_plan(held, claims, fl, &w, &err), 0);
    ck_assert_uint_eq(w.n, 0);
    ck_assert_int_eq(gang_hold_plan(held, claims, NULL, &w, &err), 0);
    ck_assert_uint_eq(w.n, 1);
    ck_assert_str_eq(w.v[0].name, "c");
    json_object_set(claims, "ns/c", w.v[0].obj);
    writes_clear(&w);
    ck_assert_int_eq(gang_hold_plan(held, claims, NULL, &w, &err), 1);
    ck_assert_uint_eq(w.n, 0);
    /* bad arguments */
    ck_assert_int_eq(gang_hold_plan(NULL, claims, NULL, &w, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(gang_hold_plan(claims, claims, NULL, NULL, &err), -1);
    {
        char fk[GANG_KEY_MAX];
        gang_flight_key(&gang_pod_resource, "ns/a", fk, sizeof(fk));
        ck_assert_str_eq(fk, "pods:ns/a");
        gang_flight_key(&gang_claim_resource, "ns/a", fk, sizeof(fk));
        ck_assert_str_eq(fk, "resource.k8s.io/resourceclaims:ns/a");
    }
    json_decref(held);
    json_decref(claims);
    json_decref(fl);
}
END_TEST

/* The claims a waiting gang holds for a pod: ours, made, not deleting,
 * not allocated; a template's claim only once it is made. */
START_TEST(pod_claim_keys)
{
    json_t *claims = json_object(), *out = json_object();
    json_t *pod = json_pack(
        "{s:{s:s, s:s}, s:{s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, "
        "{s:s, s:s}, {s:s, s:s}]}, s:{s:[{s:s, s:s}]}}",
        "metadata", "name", "p", "namespace", "ns",
        "spec", "resourceClaims",
        "name", "a", "resourceClaimName", "mine",
        "name", "b", "resourceClaimName", "gpu",
        "name", "c", "resourceClaimName", "going",
        "name", "d", "resourceClaimName", "taken",
        "name", "e", "resourceClaimName", "absent",
        "name", "f", "resourceClaimTemplateName", "t",
        "name", "g", "resourceClaimTemplateName", "t",
        "status", "resourceClaimStatuses", "name", "f", "resourceClaimName", "p-f-x");
    const char *cls[] = { "mine", ISM_DRIVER, "gpu", "gpu.example.com", "going", ISM_DRIVER,
                          "taken", ISM_DRIVER, "p-f-x", ISM_DRIVER };
    char key[32];

    for (size_t i = 0; i < sizeof(cls) / sizeof(*cls); i += 2) {
        snprintf(key, sizeof(key), "ns/%s", cls[i]);
        json_object_set_new(claims, key,
                            json_pack("{s:{s:s}, s:{s:{s:[{s:s, s:{s:s}}]}}}", "metadata", "name",
                                      cls[i], "spec", "devices", "requests", "name", "r",
                                      "exactly", "deviceClassName", cls[i + 1]));
    }
    json_object_set_new(json_object_get(json_object_get(claims, "ns/going"), "metadata"),
                        "deletionTimestamp", json_string("2026-12-07T00:00:00Z"));
    json_object_set_new(json_object_get(claims, "ns/taken"), "status",
                        json_pack("{s:{}}", "allocation"));
    ck_assert_int_eq(gang_pod_claim_keys(pod, claims, out), 2);
    ck_assert_uint_eq(json_object_size(out), 2);
    ck_assert_ptr_nonnull(json_object_get(out, "ns/mine"));
    ck_assert_ptr_nonnull(json_object_get(out, "ns/p-f-x"));
    ck_assert_int_eq(gang_pod_claim_keys(pod, claims, NULL), -1);
    ck_assert_int_eq(gang_pod_claim_keys(NULL, claims, out), -1);
    ck_assert_int_eq(gang_pod_claim_keys(pod, NULL, out), 0);
    json_decref(pod);
    json_decref(claims);
    json_decref(out);
}
END_TEST

START_TEST(null_arguments)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct gang_pod p;

    ck_assert_int_eq(gang_id_of_pod(NULL, NULL, &err), -1);
    ck_assert_int_eq(gang_pod_parse(NULL, NULL, NULL, &err), -1);
    ck_assert_int_eq(gang_pod_parse(NULL, NULL, &p, &err), -1);
    ck_assert_ptr_null(gang_split(NULL, 0, NULL, 0, &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(gang_binding(NULL, "n1"));
    errno = EBADF;
    gang_pod_clear(NULL);
    gang_places_destroy(NULL, 3);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gang_plan");
    TCase *tc = tcase_create("plans");

    tcase_add_loop_test(tc, identity, 0, ARRAY_SIZE(id_cases));
    tcase_add_loop_test(tc, group_min, 0, ARRAY_SIZE(group_cases));
    tcase_add_loop_test(tc, demand, 0, ARRAY_SIZE(demand_cases));
    tcase_add_loop_test(tc, memory, 0, ARRAY_SIZE(memory_cases));
    tcase_add_loop_test(tc, time_limit, 0, ARRAY_SIZE(time_cases));
    tcase_add_test(tc, alloc_request);
    tcase_add_loop_test(tc, split, 0, ARRAY_SIZE(split_cases));
    tcase_add_test(tc, commit_objects);
    tcase_add_test(tc, commit_and_rollback);
    tcase_add_test(tc, hold);
    tcase_add_test(tc, pod_claim_keys);
    tcase_add_test(tc, null_arguments);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
