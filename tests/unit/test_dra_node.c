/* Unit tests of the kubelet plugin's core (dra/claim.h, cdi.h,
 * checkpoint.h, node.h, cpu_manager.h): claims in, cpus and nodes out, CDI specs and the
 * checkpoint on disk, prepare and unprepare across restarts and failures. */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dra/cdi.h"
#include "dra/checkpoint.h"
#include "dra/claim.h"
#include "dra/cpu_manager.h"
#include "dra/node.h"
#include "lib/topology/topology.h"
#include "unit.h"

#define UID "0b7e7a52-3c1f-4e1e-9d7a-5f0c2a1b9e11"

/* A claim of UID with results (JSON list text) and optional extra
 * metadata members. */
static char *claim(const char *uid, const char *meta_extra, const char *results)
{
    char *s;

    ck_assert(asprintf(&s,
                       "{\"apiVersion\":\"resource.k8s.io/v1\",\"kind\":\"ResourceClaim\","
                       "\"metadata\":{\"name\":\"c\",\"namespace\":\"ns\",\"uid\":\"%s\"%s},"
                       "\"spec\":{\"devices\":{\"requests\":[]}},"
                       "\"status\":{\"allocation\":{\"devices\":{\"results\":%s,\"config\":null},"
                       "\"nodeSelector\":{}},\"reservedFor\":[]}}",
                       uid, meta_extra, results) > 0);
    return s;
}

#define RES(req, pool, dev) \
    "{\"request\":\"" req "\",\"driver\":\"cpu.isthmus.io\",\"pool\":\"" pool \
    "\",\"device\":\"" dev "\"}"
#define RES_OTHER "{\"request\":\"g\",\"driver\":\"gpu.example.com\",\"pool\":\"n2\",\"device\":\"gpu-0\"}"

/* ---- claim parsing ------------------------------------------------------ */

static const struct claim_case {
    const char *name, *uid, *meta, *results;
    int rc;
    const char *msg; /* error substring; on success the devices "req:dev,..." */
    long job;
} claim_cases[] = {
    { "two cores", UID, "", "[" RES("cpus", "n1", "core-0") "," RES("cpus", "n1", "core-5") "]", 0,
      "cpus:core-0,cpus:core-5", -1 },
    { "another driver's results are skipped", UID, "",
      "[" RES_OTHER "," RES("a", "n1", "core-3") "]", 0, "a:core-3", -1 },
    { "subrequest", UID, "", "[" RES("main/fast", "n1", "core-1") "]", 0, "main:core-1", -1 },
    { "Slurm job label", UID, ",\"labels\":{\"isthmus.io/slurm-job\":\"4242\",\"x\":\"y\"}",
      "[" RES("r", "n1", "core-0") "]", 0, "r:core-0", 4242 },
    { "null labels", UID, ",\"labels\":null", "[" RES("r", "n1", "core-0") "]", 0, "r:core-0", -1 },
    { "bad Slurm job label", UID, ",\"labels\":{\"isthmus.io/slurm-job\":\"42x\"}",
      "[" RES("r", "n1", "core-0") "]", -1, "not a Slurm job id", -1 },
    { "Slurm job label zero", UID, ",\"labels\":{\"isthmus.io/slurm-job\":\"0\"}",
      "[" RES("r", "n1", "core-0") "]", -1, "not a Slurm job id", -1 },
    { "another node's pool", UID, "", "[" RES("r", "n2", "core-0") "]", -1,
      "allocated in pool n2, not this node's pool n1", -1 },
    { "mixed pools", UID, "", "[" RES("r", "n1", "core-0") "," RES("r", "n2", "core-1") "]", -1,
      "pool n2", -1 },
    { "unknown device", UID, "", "[" RES("r", "n1", "gpu-0") "]", -1, "unknown device gpu-0", -1 },
    { "leading zero", UID, "", "[" RES("r", "n1", "core-01") "]", -1, "unknown device core-01", -1 },
    { "no number", UID, "", "[" RES("r", "n1", "core-") "]", -1, "unknown device core-", -1 },
    { "huge core", UID, "", "[" RES("r", "n1", "core-99999999999") "]", -1, "unknown device", -1 },
    { "no result of ours", UID, "", "[" RES_OTHER "]", -1, "no device of driver cpu.isthmus.io", -1 },
    { "no results", UID, "", "null", -1, "no device of driver", -1 },
    { "results not a list", UID, "", "{}", -1, "results: not a list", -1 },
    { "result not an object", UID, "", "[1]", -1, "results[0]: not an object", -1 },
    { "result without pool", UID, "",
      "[{\"request\":\"r\",\"driver\":\"cpu.isthmus.io\",\"device\":\"core-0\"}]", -1,
      "results[0].pool", -1 },
    { "driver not a string", UID, "", "[{\"driver\":7}]", -1, "results[0].driver", -1 },
    { "bad UID asked", "../../etc", "", "[" RES("r", "n1", "core-0") "]", -1, "not a UID", -1 },
};

static void devices_text(const struct ism_claim_alloc *a, char *buf, size_t size)
{
    int i;

    buf[0] = '\0';
    for (i = 0; i < a->ndevs; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s:%s", i ? "," : "",
                 a->devs[i].request, a->devs[i].device);
}

START_TEST(test_claim_parse)
{
    const struct claim_case *c = &claim_cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_claim_alloc a = { .ndevs = -1 };
    char *json = claim(UID, c->meta, c->results), got[512];
    int rc = ism_claim_parse(json, strlen(json), c->uid, ISM_DRA_DRIVER, "n1", &a, &err);

    ck_assert_msg(rc == c->rc, "%s: rc %d (%s)", c->name, rc, err.text);
    if (rc == 0) {
        devices_text(&a, got, sizeof(got));
        ck_assert_str_eq(got, c->msg);
        ck_assert_int_eq(a.slurm_job, c->job);
        ck_assert_str_eq(a.uid, UID);
    } else {
        ck_assert_msg(strstr(err.text, c->msg), "%s: message '%s' lacks '%s'", c->name, err.text,
                      c->msg);
        ck_assert_int_eq(a.ndevs, -1);
    }
    free(json);
}
END_TEST

/* Claims that are not this plugin's to prepare, not built from RES. */
static const struct raw_case {
    const char *json, *msg;
} raw_cases[] = {
    { "{\"metadata\":{\"uid\":\"ffff\"},\"status\":{\"allocation\":{}}}",
      "the API server has UID ffff under this name" },
    { "{\"metadata\":{\"uid\":\"" UID "\"},\"status\":{}}", "not allocated" },
    { "{\"metadata\":{\"uid\":\"" UID "\"},\"status\":{\"allocation\":null}}", "not allocated" },
    { "{\"metadata\":{\"uid\":\"" UID "\"}}", "not allocated" },
    { "{\"metadata\":{}}", "metadata.uid: missing" },
    { "{\"metadata\":{\"uid\":5}}", "metadata.uid" },
    { "[]", "metadata.uid" },
    { "garbage", "not JSON" },
    { "{\"metadata\":{\"uid\":\"a\",\"uid\":\"b\"}}", "not JSON" },
};

START_TEST(test_claim_raw)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_claim_alloc a;
    const char *json = raw_cases[_i].json;

    ck_assert_int_eq(ism_claim_parse(json, strlen(json), UID, ISM_DRA_DRIVER, "n1", &a, &err), -1);
    ck_assert_msg(strstr(err.text, raw_cases[_i].msg), "'%s' lacks '%s'", err.text,
                  raw_cases[_i].msg);
}
END_TEST

START_TEST(test_claim_too_many)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_claim_alloc a;
    char results[8192] = "[";
    char *json;
    int i;

    for (i = 0; i <= ISM_DRA_MAX_RESULTS; i++)
        snprintf(results + strlen(results), sizeof(results) - strlen(results),
                 "%s{\"request\":\"r\",\"driver\":\"cpu.isthmus.io\",\"pool\":\"n1\",\"device\":\"core-%d\"}",
                 i ? "," : "", i);
    strcat(results, "]");
    json = claim(UID, "", results);
    ck_assert_int_eq(ism_claim_parse(json, strlen(json), UID, ISM_DRA_DRIVER, "n1", &a, &err), -1);
    ck_assert_msg(strstr(err.text, "more than 32 results"), "%s", err.text);
    free(json);
}
END_TEST

/* ---- cores to cpus and nodes -------------------------------------------- */

static const struct cpuset_case {
    const char *results;
    int rc;
    const char *cpus, *mems; /* or the message */
} cpuset_cases[] = {
    /* pack:2 numa:1 core:4 pu:2: core N has cpus 2N, 2N+1; cores 0-3 on node 0. */
    { "[" RES("r", "n1", "core-0") "]", 0, "0-1", "0" },
    { "[" RES("r", "n1", "core-0") "," RES("r", "n1", "core-1") "]", 0, "0-3", "0" },
    { "[" RES("r", "n1", "core-3") "," RES("r", "n1", "core-4") "]", 0, "6-9", "0-1" },
    { "[" RES("r", "n1", "core-7") "]", 0, "14-15", "1" },
    { "[" RES("r", "n1", "core-8") "]", -1, "device core-8: this node has no core 8", NULL },
};

START_TEST(test_claim_cpuset)
{
    const struct cpuset_case *c = &cpuset_cases[_i];
    ism_topo_t *topo = load_synth("pack:2 numa:1 core:4 pu:2");
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_claim_alloc a;
    ism_bitmap_t *cpus = NULL, *mems = NULL;
    char *json = claim(UID, "", c->results), *s;
    int rc;

    ck_assert_int_eq(ism_claim_parse(json, strlen(json), UID, ISM_DRA_DRIVER, "n1", &a, NULL), 0);
    rc = ism_claim_cpuset(&a, topo, &cpus, &mems, &err);
    ck_assert_msg(rc == c->rc, "case %d: %s", _i, err.text);
    if (rc == 0) {
        s = ism_bitmap_format_list(cpus);
        ck_assert_str_eq(s, c->cpus);
        free(s);
        s = ism_bitmap_format_list(mems);
        ck_assert_str_eq(s, c->mems);
        free(s);
    } else {
        ck_assert_msg(strstr(err.text, c->cpus), "%s", err.text);
        ck_assert_ptr_null(cpus);
    }
    ism_bitmap_destroy(cpus);
    ism_bitmap_destroy(mems);
    ism_topo_destroy(topo);
    free(json);
}
END_TEST

/* ---- the claim's config: mem=hbm ---------------------------------------- */

/* A claim of core-4 (request r) of the Xeon Phi SNC4 hybrid machine, whose
 * allocation carries config (JSON list text). */
static char *claim_config(const char *config)
{
    char *s;

    ck_assert(asprintf(&s,
                       "{\"metadata\":{\"uid\":\"%s\"},\"status\":{\"allocation\":{\"devices\":"
                       "{\"results\":[" RES("r", "n1", "core-4") "],\"config\":%s}}}}",
                       UID, config) > 0);
    return s;
}

#define OURS(params) "{\"source\":\"FromClaim\",\"opaque\":{\"driver\":\"cpu.isthmus.io\"," \
                     "\"parameters\":" params "}}"

static const struct config_case {
    const char *what, *config;
    const char *mems; /* NULL: refused */
    const char *msg;  /* the refusal's message */
} config_cases[] = {
    { "no config: the DDR node only", "null", "1", NULL },
    { "mem hbm: the MCDRAM node over the same cpus too", "[" OURS("{\"mem\":\"hbm\"}") "]", "1,4",
      NULL },
    { "mem local", "[" OURS("{\"mem\":\"local\"}") "]", "1", NULL },
    { "the last entry wins",
      "[" OURS("{\"mem\":\"hbm\"}") "," OURS("{\"mem\":\"local\"}") "]", "1", NULL },
    { "another driver's config is not read",
      "[{\"opaque\":{\"driver\":\"gpu.example.com\",\"parameters\":{\"mem\":\"x\"}}}]", "1", NULL },
    { "an entry for another request is not read",
      "[{\"requests\":[\"gpu\"],\"opaque\":{\"driver\":\"cpu.isthmus.io\","
      "\"parameters\":{\"mem\":\"hbm\"}}}]", "1", NULL },
    { "an entry for our request is read",
      "[{\"requests\":[\"gpu\",\"r\"],\"opaque\":{\"driver\":\"cpu.isthmus.io\","
      "\"parameters\":{\"mem\":\"hbm\"}}}]", "1,4", NULL },
    { "mem none is refused", "[" OURS("{\"mem\":\"none\"}") "]", NULL,
      "config[0].opaque: parameters.mem: want \"local\" or \"hbm\"" },
    { "an unknown key is refused", "[" OURS("{\"memory\":\"hbm\"}") "]", NULL,
      "parameters: unknown key 'memory'" },
    { "parameters not an object", "[" OURS("\"hbm\"") "]", NULL, "parameters: not an object" },
    { "config not a list", "{}", NULL, "config: not a list" },
    { "requests not a list",
      "[{\"requests\":\"r\",\"opaque\":{\"driver\":\"cpu.isthmus.io\",\"parameters\":{}}}]",
      NULL, "config[0].requests: not a list" },
};

START_TEST(test_claim_config)
{
    const struct config_case *c = &config_cases[_i];
    ism_topo_t *topo = load_xml("64intel64-fakeKNL-SNC4-hybrid.xml");
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_claim_alloc a;
    ism_bitmap_t *cpus = NULL, *mems = NULL;
    char *json = claim_config(c->config), *s;
    int rc = ism_claim_parse(json, strlen(json), UID, ISM_DRA_DRIVER, "n1", &a, &err);

    if (!c->mems) {
        ck_assert_msg(rc == -1, "%s: accepted", c->what);
        ck_assert_msg(strstr(err.text, c->msg), "%s: '%s' lacks '%s'", c->what, err.text, c->msg);
    } else {
        ck_assert_msg(rc == 0, "%s: %s", c->what, err.text);
        ck_assert_int_eq(ism_claim_cpuset(&a, topo, &cpus, &mems, &err), 0);
        s = ism_bitmap_format_list(mems);
        ck_assert_msg(strcmp(s, c->mems) == 0, "%s: mems %s, want %s", c->what, s, c->mems);
        free(s);
    }
    ism_bitmap_destroy(cpus);
    ism_bitmap_destroy(mems);
    ism_topo_destroy(topo);
    free(json);
}
END_TEST

/* ---- the CDI spec ------------------------------------------------------- */

static struct ism_prepared prepared(long job)
{
    struct ism_prepared p;

    memset(&p, 0, sizeof(p));
    snprintf(p.namespace, sizeof(p.namespace), "ns");
    snprintf(p.name, sizeof(p.name), "c");
    snprintf(p.alloc.uid, sizeof(p.alloc.uid), UID);
    p.alloc.slurm_job = job;
    p.alloc.ndevs = 1;
    snprintf(p.alloc.devs[0].request, sizeof(p.alloc.devs[0].request), "r");
    snprintf(p.alloc.devs[0].pool, sizeof(p.alloc.devs[0].pool), "n1");
    snprintf(p.alloc.devs[0].device, sizeof(p.alloc.devs[0].device), "core-2");
    p.alloc.devs[0].core = 2;
    p.cpus = (char *)"4-5";
    p.mems = (char *)"0";
    return p;
}

START_TEST(test_cdi_spec)
{
    struct ism_prepared p = prepared(_i ? 77 : -1);
    ism_error_t err = ISM_ERROR_INIT;
    char *text = ism_cdi_spec(&p, "/usr/sbin/isthmus-oci-hook", &err), *env;
    json_t *spec, *edits, *hook;
    char id[256];

    ck_assert_msg(text != NULL, "%s", err.text);
    ck_assert((spec = json_loads(text, 0, NULL)) != NULL);
    ck_assert_str_eq(json_string_value(json_object_get(spec, "cdiVersion")), ISM_CDI_VERSION);
    ck_assert_str_eq(json_string_value(json_object_get(spec, "kind")), "cpu.isthmus.io/claim");
    ck_assert_int_eq(json_array_size(json_object_get(spec, "devices")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(spec, "devices"), 0), "name")),
                     "claim-" UID);
    edits = json_object_get(json_array_get(json_object_get(spec, "devices"), 0), "containerEdits");
    env = json_dumps(json_object_get(edits, "env"), JSON_COMPACT);
    ck_assert_str_eq(env, _i ? "[\"ISTHMUS_CPUS=4-5\",\"ISTHMUS_MEMS=0\",\"ISTHMUS_CLAIM_UID=" UID
                               "\",\"ISTHMUS_SLURM_JOB_ID=77\"]"
                             : "[\"ISTHMUS_CPUS=4-5\",\"ISTHMUS_MEMS=0\",\"ISTHMUS_CLAIM_UID=" UID
                               "\"]");
    free(env);
    hook = json_array_get(json_object_get(edits, "hooks"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(hook, "hookName")), "createRuntime");
    ck_assert_str_eq(json_string_value(json_object_get(hook, "path")), "/usr/sbin/isthmus-oci-hook");
    env = json_dumps(json_object_get(hook, "args"), JSON_COMPACT);
    ck_assert_str_eq(env, "[\"isthmus-oci-hook\",\"--cpus=4-5\",\"--mems=0\",\"--claim=" UID "\"]");
    free(env);
    ck_assert_int_eq(ism_cdi_device_id(UID, id, sizeof(id)), 0);
    ck_assert_str_eq(id, "cpu.isthmus.io/claim=claim-" UID);
    ck_assert_int_eq(ism_cdi_device_id(UID, id, 10), -1);
    ck_assert_ptr_null(ism_cdi_spec(&p, "relative/hook", NULL));
    json_decref(spec);
    free(text);
}
END_TEST

/* ---- the checkpoint ----------------------------------------------------- */

#define CK_CLAIM(uid, extra) \
    "{\"uid\":\"" uid "\",\"namespace\":\"ns\",\"name\":\"c\",\"cpus\":\"0-3\",\"mems\":\"0\"," \
    "\"slurmJob\":null,\"devices\":[{\"request\":\"r\",\"pool\":\"n1\",\"device\":\"core-0\"}]" extra "}"

static const struct ckpt_case {
    const char *text;
    int claims; /* -1: refused */
    const char *msg;
} ckpt_cases[] = {
    { "{\"version\":1,\"claims\":[]}", 0, NULL },
    { "{\"version\":1,\"claims\":[" CK_CLAIM("a1", "") "," CK_CLAIM("b2", "") "]}", 2, NULL },
    { "{\"claims\":[],\"version\":1}", 0, NULL },
    { "{\"version\":2,\"claims\":[]}", -1, "version: not 1" },
    { "{\"version\":1}", -1, "claims: not a list" },
    { "{\"version\":1,\"claims\":[],\"extra\":1}", -1, "unknown key \"extra\"" },
    { "{\"version\":1,\"claims\":[" CK_CLAIM("a1", ",\"x\":1") "]}", -1,
      "claims[0]: unknown key \"x\"" },
    { "{\"version\":1,\"claims\":[" CK_CLAIM("a1", "") "," CK_CLAIM("a1", "") "]}", -1,
      "claim a1 twice" },
    { "{\"version\":1,\"claims\":[" CK_CLAIM("../x", "") "]}", -1, "uid: not a UID" },
    { "{\"version\":1,\"claims\":[" CK_CLAIM("A1", "") "]}", -1, "uid: not a UID" },
    { "{\"version\":1,\"claims\":[{\"uid\":\"a\",\"namespace\":\"ns\",\"name\":\"c\",\"cpus\":\"x\","
      "\"mems\":\"0\",\"devices\":[]}]}", -1, "claims[0].cpus" },
    { "{\"version\":1,\"claims\":[{\"uid\":\"a\",\"namespace\":\"ns\",\"name\":\"c\",\"cpus\":\"\","
      "\"mems\":\"0\",\"devices\":[]}]}", -1, "claims[0].cpus: empty" },
    { "{\"version\":1,\"claims\":[{\"uid\":\"a\",\"namespace\":\"ns\",\"name\":\"c\",\"cpus\":\"1\","
      "\"mems\":\"0\",\"devices\":[]}]}", -1, "devices: not a list of 1 to 32" },
    { "{\"version\":1,\"claims\":[{\"uid\":\"a\",\"namespace\":\"ns\",\"name\":\"c\",\"cpus\":\"1\","
      "\"mems\":\"0\",\"slurmJob\":\"5\",\"devices\":[]}]}", -1, "slurmJob: not a job id" },
    { "{\"version\":1,\"claims\":[{\"uid\":\"a\",\"namespace\":\"ns\",\"name\":\"c\",\"cpus\":\"1\","
      "\"mems\":\"0\",\"devices\":[{\"request\":\"r\",\"pool\":\"p\",\"device\":\"gpu-1\"}]}]}", -1,
      "devices[0].device: not core-<N>" },
    { "{\"version\":1,\"claims\":[{\"uid\":\"a\"}]}", -1, "claims[0].namespace: missing" },
    { "{\"version\":1,\"claims\":[7]}", -1, "claims[0]: not an object" },
    { "{\"version\":1,\"claims\":[", -1, "not JSON" },
    { "", -1, "not JSON" },
    { "[]", -1, "not a JSON object" },
};

START_TEST(test_ckpt_decode)
{
    const struct ckpt_case *c = &ckpt_cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    ism_ckpt_t *ck = ism_ckpt_decode(c->text, strlen(c->text), &err);

    if (c->claims >= 0) {
        ck_assert_msg(ck != NULL, "case %d: %s", _i, err.text);
        ck_assert_int_eq(ism_ckpt_count(ck), c->claims);
    } else {
        ck_assert_msg(ck == NULL, "case %d: accepted", _i);
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_msg(strstr(err.text, c->msg), "case %d: '%s' lacks '%s'", _i, err.text, c->msg);
    }
    ism_ckpt_destroy(ck);
}
END_TEST

START_TEST(test_ckpt_roundtrip)
{
    ism_ckpt_t *ck = ism_ckpt_create(), *back;
    struct ism_prepared p = prepared(9);
    char *a, *b;

    ck_assert_int_eq(ism_ckpt_put(ck, &p, NULL), 0);
    snprintf(p.alloc.uid, sizeof(p.alloc.uid), "second");
    p.alloc.slurm_job = -1;
    ck_assert_int_eq(ism_ckpt_put(ck, &p, NULL), 0);
    ck_assert_int_eq(ism_ckpt_put(ck, &p, NULL), 0); /* replaces */
    ck_assert_int_eq(ism_ckpt_count(ck), 2);
    a = ism_ckpt_encode(ck, NULL);
    ck_assert_ptr_nonnull(a);
    back = ism_ckpt_decode(a, strlen(a), NULL);
    ck_assert_ptr_nonnull(back);
    b = ism_ckpt_encode(back, NULL);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(ism_ckpt_find(back, UID)->alloc.slurm_job, 9);
    ck_assert_str_eq(ism_ckpt_find(back, UID)->cpus, "4-5");
    ck_assert_int_eq(ism_ckpt_remove(back, UID), 1);
    ck_assert_int_eq(ism_ckpt_remove(back, UID), 0);
    ck_assert_ptr_null(ism_ckpt_find(back, UID));
    ck_assert_ptr_nonnull(ism_ckpt_find(back, "second"));
    free(a);
    free(b);
    ism_ckpt_destroy(ck);
    ism_ckpt_destroy(back);
}
END_TEST

/* ---- prepare and unprepare on disk -------------------------------------- */

static char dir[256], state_dir[300], cdi_dir[300], spec_path[512], ckpt_path[512];
static ism_topo_t *topo;

static void node_setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/test_dra_node.XXXXXX", tmp ? tmp : "/tmp");
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
    snprintf(cdi_dir, sizeof(cdi_dir), "%s/cdi", dir);
    snprintf(spec_path, sizeof(spec_path), "%s/cpu.isthmus.io-claim-%s.json", cdi_dir, UID);
    snprintf(ckpt_path, sizeof(ckpt_path), "%s/checkpoint.json", state_dir);
    topo = load_synth("pack:2 numa:1 core:4 pu:2");
}

static void node_teardown(void)
{
    char cmd[300];

    ism_topo_destroy(topo);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static ism_node_t *node(void)
{
    struct ism_node_opts o = { state_dir, cdi_dir, "/usr/sbin/isthmus-oci-hook", ISM_DRA_DRIVER,
                               "n1", topo };
    ism_error_t err = ISM_ERROR_INIT;
    ism_node_t *n = ism_node_create(&o, &err);

    ck_assert_msg(n != NULL, "%s", err.text);
    return n;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int files_in(const char *d)
{
    char cmd[400];
    FILE *f;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", d);
    ck_assert((f = popen(cmd, "r")) != NULL);
    ck_assert_int_eq(fscanf(f, "%d", &n), 1);
    pclose(f);
    return n;
}

static const char good_results[] = "[" RES("r", "n1", "core-4") "," RES("r", "n1", "core-5") "]";

START_TEST(test_prepare_restart_unprepare)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_node_t *n = node();
    const struct ism_prepared *p;
    char *json = claim(UID, "", good_results);

    ck_assert_str_eq(ism_node_warning(n), "");
    ck_assert_msg(ism_node_prepare(n, "ns", "c", UID, json, strlen(json), &p, &err) == 0, "%s",
                  err.text);
    ck_assert_str_eq(p->cpus, "8-11");
    ck_assert_str_eq(p->mems, "1");
    ck_assert(exists(spec_path));
    ck_assert(exists(ckpt_path));
    /* Again, with and without the claim: the same answer. */
    ck_assert_int_eq(ism_node_prepare(n, "ns", "c", UID, json, strlen(json), &p, &err), 0);
    ck_assert_int_eq(ism_node_prepare(n, "ns", "c", UID, NULL, 0, &p, &err), 0);
    ck_assert_str_eq(p->cpus, "8-11");
    ism_node_destroy(n);

    /* A restarted plugin knows the claim without the API server... */
    n = node();
    ck_assert_ptr_nonnull((p = ism_node_find(n, UID)));
    ck_assert_str_eq(p->cpus, "8-11");
    ck_assert_str_eq(p->alloc.devs[1].device, "core-5");
    /* ...puts back a spec that went missing... */
    ck_assert_int_eq(unlink(spec_path), 0);
    ck_assert_int_eq(ism_node_prepare(n, "ns", "c", UID, NULL, 0, &p, &err), 0);
    ck_assert(exists(spec_path));
    /* ...and unprepares it. */
    ck_assert_msg(ism_node_unprepare(n, UID, &err) == 0, "%s", err.text);
    ck_assert(!exists(spec_path));
    ck_assert_ptr_null(ism_node_find(n, UID));
    ck_assert_int_eq(ism_node_unprepare(n, UID, &err), 0); /* unknown: a success */
    ism_node_destroy(n);
    n = node();
    ck_assert_int_eq(ism_ckpt_count(ism_node_checkpoint(n)), 0);
    ck_assert_int_eq(files_in(cdi_dir), 0);
    ism_node_destroy(n);
    free(json);
}
END_TEST

/* Claims this node must refuse: an error, and nothing written. */
static const struct refuse_case {
    const char *uid_in_claim, *results, *msg;
} refuse_cases[] = {
    { UID, "[" RES("r", "n2", "core-0") "]", "not this node's pool n1" },
    { UID, "[" RES("r", "n1", "nic-0") "]", "unknown device nic-0" },
    { UID, "[" RES("r", "n1", "core-12") "]", "this node has no core 12" },
    { "1111", "[" RES("r", "n1", "core-0") "]", "deleted and created again" },
};

START_TEST(test_prepare_refused)
{
    const struct refuse_case *c = &refuse_cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    ism_node_t *n = node();
    const struct ism_prepared *p = NULL;
    char *json = claim(c->uid_in_claim, "", c->results);

    ck_assert_int_eq(ism_node_prepare(n, "ns", "c", UID, json, strlen(json), &p, &err), -1);
    ck_assert_msg(strstr(err.text, c->msg) && strstr(err.text, "claim ns/c"), "'%s' lacks '%s'",
                  err.text, c->msg);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(files_in(cdi_dir), 0);
    ck_assert_int_eq(ism_ckpt_count(ism_node_checkpoint(n)), 0);
    /* Still serving: a good claim prepares after a bad one. */
    free(json);
    json = claim(UID, "", good_results);
    ck_assert_int_eq(ism_node_prepare(n, "ns", "c", UID, json, strlen(json), &p, &err), 0);
    ck_assert_int_eq(ism_node_prepare(n, "ns", "c", "not/a/uid", json, strlen(json), &p, &err), -1);
    ck_assert_int_eq(ism_node_unprepare(n, "../../x", NULL), -1);
    ism_node_destroy(n);
    free(json);
}
END_TEST

START_TEST(test_corrupt_checkpoint)
{
    ism_node_t *n;
    FILE *f;
    char aside[600];

    ck_assert_int_eq(mkdir(state_dir, 0700), 0);
    ck_assert((f = fopen(ckpt_path, "w")) != NULL);
    fputs("{\"version\":1,\"claims\":[{\"uid\":", f); /* torn */
    fclose(f);
    n = node();
    ck_assert_msg(strstr(ism_node_warning(n), "not JSON") &&
                      strstr(ism_node_warning(n), "checkpoint.json.corrupt"),
                  "%s", ism_node_warning(n));
    snprintf(aside, sizeof(aside), "%s.corrupt", ckpt_path);
    ck_assert(exists(aside));
    ck_assert(!exists(ckpt_path));
    ck_assert_int_eq(ism_ckpt_count(ism_node_checkpoint(n)), 0);
    ism_node_destroy(n);
}
END_TEST

/* A crash after the spec was written but before the checkpoint was: the
 * unprepare that follows removes the spec all the same. */
START_TEST(test_spec_without_record)
{
    ism_node_t *n = node();
    FILE *f;

    ck_assert((f = fopen(spec_path, "w")) != NULL);
    fputs("{}", f);
    fclose(f);
    ck_assert_int_eq(ism_node_unprepare(n, UID, NULL), 0);
    ck_assert(!exists(spec_path));
    ism_node_destroy(n);
}
END_TEST

/* The checkpoint cannot be written: prepare fails and leaves no spec. */
START_TEST(test_checkpoint_unwritable)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_node_t *n = node();
    const struct ism_prepared *p;
    char *json = claim(UID, "", good_results);

    ck_assert_int_eq(mkdir(ckpt_path, 0700), 0); /* rename over a directory fails */
    ck_assert_int_eq(ism_node_prepare(n, "ns", "c", UID, json, strlen(json), &p, &err), -1);
    ck_assert_msg(strstr(err.text, "checkpoint.json"), "%s", err.text);
    ck_assert(!exists(spec_path));
    ck_assert_ptr_null(ism_node_find(n, UID));
    ck_assert_int_eq(rmdir(ckpt_path), 0);
    ck_assert_int_eq(ism_node_prepare(n, "ns", "c", UID, json, strlen(json), &p, &err), 0);
    /* Unprepare that cannot save keeps the record, to try again. */
    ck_assert_int_eq(unlink(ckpt_path), 0);
    ck_assert_int_eq(mkdir(ckpt_path, 0700), 0);
    ck_assert_int_eq(ism_node_unprepare(n, UID, &err), -1);
    ck_assert_ptr_nonnull(ism_node_find(n, UID));
    ism_node_destroy(n);
    free(json);
}
END_TEST

/* ---- the kubelet's CPU manager state ------------------------------------ */

/* What the pinned kubelet (1.37.2) wrote, as measured on the node world. */
#define STATE_NONE                                                                              \
    "{\"policyName\":\"none\",\"defaultCpuSet\":\"\",\"checksum\":1353318690,\"data\":"         \
    "\"{\\\"policyName\\\":\\\"none\\\",\\\"defaultCpuSet\\\":\\\"\\\"}\",\"dataChecksum\":3028111495}"
#define STATE_STATIC                                                                            \
    "{\"policyName\":\"static\",\"defaultCpuSet\":\"0\",\"entries\":{\"18029f1e-8dee-480b-b9af-" \
    "b54516797b53\":{\"c\":\"1\"}},\"checksum\":870325882}"

static const struct state_case {
    const char *name, *text;
    int rc;
    const char *want; /* the policy, or an error substring */
} state_cases[] = {
    { "none, as 1.37 writes it", STATE_NONE, 0, "none" },
    { "static with an entry", STATE_STATIC, 0, "static" },
    { "unknown members and nulls", "{\"x\":null,\"policyName\":\"none\",\"entries\":null}", 0, "none" },
    { "a future policy", "{\"policyName\":\"dynamic-2\"}", 0, "dynamic-2" },
    { "empty", "", -1, "not JSON" },
    { "torn", "{\"policyName\":\"no", -1, "not JSON" },
    { "an array", "[\"none\"]", -1, "not a JSON object" },
    { "no policyName", "{\"defaultCpuSet\":\"\"}", -1, "policyName: missing" },
    { "null policyName", "{\"policyName\":null}", -1, "policyName: not a string" },
    { "numeric policyName", "{\"policyName\":1}", -1, "policyName: not a string" },
    { "empty policyName", "{\"policyName\":\"\"}", -1, "not a policy name" },
    { "policyName with a newline", "{\"policyName\":\"none\\nstatic\"}", -1, "not a policy name" },
    { "policyName with a NUL", "{\"policyName\":\"none\\u0000x\"}", -1, "not JSON" },
    { "policyName too long",
      "{\"policyName\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", -1,
      "not a policy name" },
    { "duplicate policyName", "{\"policyName\":\"none\",\"policyName\":\"static\"}", -1, "not JSON" },
};

START_TEST(test_cpu_manager_parse)
{
    const struct state_case *c = &state_cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    char policy[64] = "";
    int rc = ism_cpu_manager_parse(c->text, strlen(c->text), policy, sizeof(policy), &err);

    ck_assert_msg(rc == c->rc, "%s: rc %d (%s)", c->name, rc, err.text);
    if (rc == 0)
        ck_assert_str_eq(policy, c->want);
    else
        ck_assert_msg(strstr(err.text, c->want) && errno == EINVAL, "%s: '%s' lacks '%s'", c->name,
                      err.text, c->want);
}
END_TEST

START_TEST(test_cpu_manager_file)
{
    char d[] = "/tmp/isthmus-cpu-manager.XXXXXX", path[64], policy[8];
    ism_error_t err = ISM_ERROR_INIT;
    FILE *f;
    size_t i;

    ck_assert_ptr_nonnull(mkdtemp(d));
    snprintf(path, sizeof(path), "%s/cpu_manager_state", d);
    /* No file: ENOENT, which the plugin takes for a kubelet not started. */
    ck_assert_int_eq(ism_cpu_manager_read(path, policy, sizeof(policy), &err), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert((f = fopen(path, "w")) != NULL);
    fputs(STATE_STATIC, f);
    fclose(f);
    ism_error_clear(&err);
    ck_assert_int_eq(ism_cpu_manager_read(path, policy, sizeof(policy), &err), 0);
    ck_assert_str_eq(policy, "static");
    ck_assert_int_eq(ism_cpu_manager_check(policy, path, &err), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_msg(strstr(err.text, "\"static\"") && strstr(err.text, path) &&
                      strstr(err.text, "cpuManagerPolicy: none"),
                  "%s", err.text);
    ism_error_clear(&err);
    ck_assert_int_eq(ism_cpu_manager_check("none", path, &err), 0);
    ck_assert_int_eq(ism_cpu_manager_check(NULL, path, &err), -1);
    /* A policy longer than the caller's buffer. */
    ck_assert((f = fopen(path, "w")) != NULL);
    fputs("{\"policyName\":\"static-x\"}", f);
    fclose(f);
    ism_error_clear(&err);
    ck_assert_int_eq(ism_cpu_manager_read(path, policy, sizeof(policy), &err), -1);
    ck_assert_msg(strstr(err.text, path) && strstr(err.text, "not a policy name"), "%s", err.text);
    /* Bounded: a file larger than the limit is refused unparsed. */
    ck_assert((f = fopen(path, "w")) != NULL);
    for (i = 0; i <= ISM_CPU_MANAGER_STATE_MAX; i += 8)
        fputs("        ", f);
    fclose(f);
    ism_error_clear(&err);
    ck_assert_int_eq(ism_cpu_manager_read(path, policy, sizeof(policy), &err), -1);
    ck_assert_int_eq(errno, EFBIG);
    ck_assert_int_eq(ism_cpu_manager_read(NULL, policy, sizeof(policy), &err), -1);
    ck_assert_int_eq(ism_cpu_manager_parse("{}", 2, NULL, 8, &err), -1);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(d), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dra_node");
    TCase *tc = tcase_create("claims");
    TCase *tn = tcase_create("node");

    tcase_add_loop_test(tc, test_claim_parse, 0, ARRAY_SIZE(claim_cases));
    tcase_add_loop_test(tc, test_claim_raw, 0, ARRAY_SIZE(raw_cases));
    tcase_add_test(tc, test_claim_too_many);
    tcase_add_loop_test(tc, test_claim_cpuset, 0, ARRAY_SIZE(cpuset_cases));
    tcase_add_loop_test(tc, test_claim_config, 0, ARRAY_SIZE(config_cases));
    tcase_add_loop_test(tc, test_cdi_spec, 0, 2);
    tcase_add_loop_test(tc, test_ckpt_decode, 0, ARRAY_SIZE(ckpt_cases));
    tcase_add_test(tc, test_ckpt_roundtrip);
    tcase_add_loop_test(tc, test_cpu_manager_parse, 0, ARRAY_SIZE(state_cases));
    tcase_add_test(tc, test_cpu_manager_file);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(tn, node_setup, node_teardown);
    tcase_add_test(tn, test_prepare_restart_unprepare);
    tcase_add_loop_test(tn, test_prepare_refused, 0, ARRAY_SIZE(refuse_cases));
    tcase_add_test(tn, test_corrupt_checkpoint);
    tcase_add_test(tn, test_spec_without_record);
    tcase_add_test(tn, test_checkpoint_unwritable);
    suite_add_tcase(s, tn);
    return run_suite(s);
}
