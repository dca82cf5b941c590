/* Unit tests: the topology model (lib/topology*.c).
 *
 * Oracles are the real programs, not numbers copied by hand: for every
 * machine in the shared topologies, hwloc's own hwloc-calc and hwloc-info
 * give the counts and each core's cpus, and `slurmd -C` gives the NodeName
 * fields Slurm derives from the same XML.
 */
#include <config.h>
#include <errno.h>
#include <hwloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/topology/topology.h"
#include "unit.h"

static const char *xml_path(const char *name)
{
    static char path[1024];
    const char *dir = getenv("ISTHMUS_TOPOLOGIES");

    snprintf(path, sizeof(path), "%s/%s", dir ? dir : TOPOLOGIES_DIR, name);
    return path;
}

static ism_topo_t *load(const char *name)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *topo = ism_topo_from_xml(xml_path(name), &err);

    ck_assert_msg(topo != NULL, "%s: %s", name, err.text);
    return topo;
}

/* Run a shell command and return its whole stdout (caller frees). */
static char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *run(const char *fmt, ...)
{
    char cmd[2048], *out = NULL;
    size_t len = 0, size = 0;
    va_list ap;
    FILE *p;
    int c;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(p = popen(cmd, "r"));
    while ((c = fgetc(p)) != EOF) {
        if (len + 2 > size)
            ck_assert_ptr_nonnull(out = realloc(out, size = size * 2 + 4096));
        out[len++] = (char)c;
    }
    pclose(p);
    if (!out)
        ck_assert_ptr_nonnull(out = calloc(1, 1));
    out[len] = '\0';
    return out;
}

/* hwloc-calc --number-of TYPE; 0 when hwloc says the type is unavailable. */
static int hwloc_count(const char *name, const char *type)
{
    char *out = run("hwloc-calc --input '%s' --number-of %s all 2>/dev/null", xml_path(name), type);
    int n;

    n = atoi(out);
    free(out);
    return n;
}

/* NUMA nodes with cpus, from hwloc-info: hwloc-calc --number-of numanode
 * counts only those up to hwloc 2.9 and memory-only ones too from 2.12. */
static int hwloc_numa_with_cpus(const char *name)
{
    char *out = run("hwloc-info --input '%s' --disallowed numanode:all 2>/dev/null | "
                    "awk '$1 == \"cpuset\" && $3 !~ /^0x0+$/' | wc -l",
                    xml_path(name));
    int n = atoi(out);

    free(out);
    return n;
}

static int slurmd_view(const char *name, struct ism_slurm_hw *hw);

/* slurmd's fallback (cores with different thread counts): Slurm then has
 * Sockets x CoresPerSocket cores of ThreadsPerCore threads, as slurmd -C
 * rounds them down, not hwloc's cores. */
static bool slurmd_fallback(const char *name, struct ism_slurm_hw *hw)
{
    int cores = hwloc_count(name, "core");

    ck_assert_msg(slurmd_view(name, hw) == 0, "slurmd -C printed no CPUs= line for %s", name);
    return cores > 0 && hw->cpus % cores != 0 && hw->boards > 0 && hw->sockets_per_board > 0 &&
           hw->cores_per_socket > 0 && hw->threads_per_core > 0;
}

START_TEST(counts_match_hwloc_calc)
{
    const char *name = machines[_i];
    ism_topo_t *topo = load(name);
    ism_bitmap_t *cpus = ism_topo_cpus(topo);
    int packages = hwloc_count(name, "package");
    int cores = hwloc_count(name, "core");
    int numa_with_cpus = 0;

    for (int i = 0; i < topo->nnuma; i++)
        numa_with_cpus += !ism_bitmap_empty(topo->numa[i].cpus);
    ck_assert_int_eq(topo->sockets, packages ? packages : 1);
    ck_assert_int_eq(numa_with_cpus, hwloc_numa_with_cpus(name));
    ck_assert_int_eq(topo->l3_caches, hwloc_count(name, "l3cache"));
    struct ism_slurm_hw slurm;

    if (slurmd_fallback(name, &slurm)) {
        /* Slurm's cores, each with Slurm's thread count. */
        int n = slurm.boards * slurm.sockets_per_board * slurm.cores_per_socket;
        ck_assert_int_eq(topo->ncores, n < cores ? n : cores);
        ck_assert_int_eq(ism_bitmap_count(cpus), topo->ncores * slurm.threads_per_core);
    } else {
        /* Without Core objects each PU is a core. */
        ck_assert_int_eq(topo->ncores, cores ? cores : hwloc_count(name, "pu"));
        ck_assert_int_eq(ism_bitmap_count(cpus), hwloc_count(name, "pu"));
    }
    ism_bitmap_destroy(cpus);
    ism_topo_destroy(topo);
}
END_TEST

/* Each core's cpus equal the cpuset hwloc-info gives for the object with
 * the same logical index in a whole-system topology. */
START_TEST(core_cpus_match_hwloc_info)
{
    const char *name = machines[_i];
    ism_topo_t *topo = load(name);
    const char *type = hwloc_count(name, "core") ? "core" : "pu";
    /* Filtered as slurmd and isthmus load it: without L1/L2 objects hwloc
     * sorts cores by cpuset, which changes their logical order on some
     * machines (the A2A Xeon Phi export). */
    char *out = run("hwloc-info --input '%s' --disallowed --filter l1cache:none "
                    "--filter l2cache:none --filter l4cache:none --filter l5cache:none "
                    "--filter misc:none %s:all",
                    xml_path(name), type);
    char *line, *save = NULL;
    int current = -1, checked = 0;
    struct ism_slurm_hw slurm;
    bool fallback = slurmd_fallback(name, &slurm);

    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *set = strstr(line, " cpuset = ");
        if (strncmp(line, "Core L#", 7) == 0 || strncmp(line, "PU L#", 5) == 0)
            current = atoi(strchr(line, '#') + 1);
        else if (set && strncmp(line, " cpuset", 7) == 0 && current >= 0) {
            hwloc_bitmap_t expected = hwloc_bitmap_alloc();
            const struct ism_core *core = ism_topo_core(topo, current);
            char *ours, *theirs = NULL;

            ck_assert_int_eq(hwloc_bitmap_sscanf(expected, set + 10), 0);
            if (fallback && !core) { /* past Slurm's cores */
                hwloc_bitmap_free(expected);
                current = -1;
                continue;
            }
            ck_assert_msg(core != NULL, "%s: core %d missing", name, current);
            if (fallback) { /* Slurm's first thread of the core (its PUs are in os order) */
                ck_assert_int_eq(slurm.threads_per_core, 1);
                hwloc_bitmap_singlify(expected);
            }
            ours = ism_bitmap_format_list(core->cpus);
            hwloc_bitmap_list_asprintf(&theirs, expected);
            ck_assert_msg(strcmp(ours, theirs) == 0, "%s core %d: ours %s, hwloc %s", name,
                          current, ours, theirs);
            free(ours);
            free(theirs);
            hwloc_bitmap_free(expected);
            checked++;
            current = -1;
        }
    }
    ck_assert_int_eq(checked, topo->ncores);
    free(out);
    ism_topo_destroy(topo);
}
END_TEST

/* The five cpu fields of `slurmd -C` for the XML; RealMemory is the host's. */
static int slurmd_view(const char *name, struct ism_slurm_hw *hw)
{
    char *out = run("HWLOC_XMLFILE='%s' slurmd -C 2>/dev/null", xml_path(name));
    const char *p = strstr(out, "CPUs=");
    int n = p ? sscanf(p, "CPUs=%d Boards=%d SocketsPerBoard=%d CoresPerSocket=%d ThreadsPerCore=%d",
                       &hw->cpus, &hw->boards, &hw->sockets_per_board, &hw->cores_per_socket,
                       &hw->threads_per_core)
              : 0;
    free(out);
    return n == 5 ? 0 : -1;
}

/* Does the slurmd on PATH leave out a hybrid Intel part's efficiency
 * cores of this machine?  From Slurm 23.02 on it keeps only the cpus of
 * the kinds as fast as the one hwloc calls IntelCore, unless
 * SlurmdParameters=allow_ecores, which `slurmd -C` does not read. */
static bool slurmd_drops_ecores(const char *name)
{
    char *v = run("slurmd -V 2>/dev/null | sed 's/^[^0-9]*//'");
    char *kinds = run("grep -c '<cpukind ' '%s'; grep -c 'value=\"IntelCore\"' '%s'",
                      xml_path(name), xml_path(name));
    int major = 0, minor = 0, nkinds = 0, intel = 0;
    bool newer;

    newer = sscanf(v, "%d.%d", &major, &minor) == 2 && (major > 23 || (major == 23 && minor >= 2));
    sscanf(kinds, "%d %d", &nkinds, &intel);
    free(v);
    free(kinds);
    return newer && nkinds > 1 && intel > 0;
}

START_TEST(slurm_conf_matches_slurmd)
{
    const char *name = machines[_i];
    ism_topo_t *topo = load(name);
    struct ism_slurm_hw slurm = { 0 };
    ism_error_t err = ISM_ERROR_INIT;
    bool fallback = slurmd_fallback(name, &slurm);

    if (slurmd_drops_ecores(name)) {
        /* isthmus describes every core, as slurmd does with allow_ecores
         * (README: such a machine needs it); -C shows fewer, never more. */
        ck_assert_msg(slurm.cpus < topo->slurm.cpus, "%s: slurmd -C %d cpus, isthmus %d", name,
                      slurm.cpus, topo->slurm.cpus);
        ism_topo_destroy(topo);
        return;
    }
    /* Whatever isthmus prints must describe the cores regularly. */
    ck_assert_msg(ism_slurm_hw_check(topo, &topo->slurm, &err) == 0, "%s: %s", name, err.text);
    if (fallback) {
        /* slurmd's own rounded counts, and the CPUs slurmctld keeps of them. */
        ck_assert_int_eq(topo->slurm.cpus, slurm.boards * slurm.sockets_per_board *
                                               slurm.cores_per_socket * slurm.threads_per_core);
        slurm.cpus = topo->slurm.cpus;
    } else {
        ck_assert_int_eq(topo->slurm.cpus, slurm.cpus);
    }
    if (topo->slurm_note[0] == '\0' || fallback) {
        ck_assert_int_eq(topo->slurm.boards, slurm.boards);
        ck_assert_int_eq(topo->slurm.sockets_per_board, slurm.sockets_per_board);
        ck_assert_int_eq(topo->slurm.cores_per_socket, slurm.cores_per_socket);
        ck_assert_int_eq(topo->slurm.threads_per_core, slurm.threads_per_core);
    } else {
        /* Where isthmus differs, Slurm's own line cannot describe the
         * machine: the counts do not multiply back to its cores. */
        slurm.real_memory = 1;
        ck_assert_msg(ism_slurm_hw_check(topo, &slurm, NULL) < 0,
                      "%s: isthmus deviates (%s) from a usable slurmd -C line", name,
                      topo->slurm_note);
    }
    ism_topo_destroy(topo);
}
END_TEST

START_TEST(json_round_trip)
{
    const char *name = machines[_i];
    ism_topo_t *topo = load(name), *back;
    ism_error_t err = ISM_ERROR_INIT;
    char *json = ism_topo_encode(topo, &err), *again;

    ck_assert_msg(json != NULL, "%s", err.text);
    back = ism_topo_decode(json, &err);
    ck_assert_msg(back != NULL, "%s: %s", name, err.text);
    ck_assert(ism_topo_equal(topo, back));
    again = ism_topo_encode(back, NULL);
    ck_assert_str_eq(json, again);
    free(json);
    free(again);
    ism_topo_destroy(back);
    ism_topo_destroy(topo);
}
END_TEST

/* Structural invariants every loaded topology keeps. */
START_TEST(invariants)
{
    ism_topo_t *topo = load(machines[_i]);
    ism_bitmap_t *seen = ism_bitmap_create();

    for (int i = 0; i < topo->ncores; i++) {
        const struct ism_core *c = &topo->cores[i];
        const struct ism_numa_node *n = ism_topo_numa(topo, c->numa);

        ck_assert(i == 0 || c->index > topo->cores[i - 1].index);
        ck_assert_ptr_eq(ism_topo_core(topo, c->index), c);
        ck_assert(!ism_bitmap_empty(c->cpus));
        ck_assert(!ism_bitmap_intersects(seen, c->cpus));
        if (c->numa >= 0) {
            ck_assert_ptr_nonnull(n);
            ck_assert(ism_bitmap_is_subset(c->cpus, n->cpus));
        } else { /* only when no NUMA node holds it (its memory is offline) */
            for (int k = 0; k < topo->nnuma; k++)
                ck_assert(!ism_bitmap_intersects(c->cpus, topo->numa[k].cpus));
        }
        ck_assert(c->socket >= 0 && c->socket < topo->sockets);
        ck_assert(c->l3 >= -1 && c->l3 < topo->l3_caches);
        ism_bitmap_or(seen, c->cpus);
    }
    ck_assert_ptr_null(ism_topo_core(topo, -1));
    ck_assert_ptr_null(ism_topo_core(topo, 1 << 20));
    ism_bitmap_destroy(seen);
    ism_topo_destroy(topo);
}
END_TEST

/* Hand-checked cases. */
START_TEST(synthetic_exact)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *t = ism_topo_from_synthetic("pack:2 numa:2 l3:2 core:4 pu:2", &err);
    const struct ism_core *c;
    char *s;

    ck_assert_msg(t != NULL, "%s", err.text);
    ck_assert_int_eq(t->sockets, 2);
    ck_assert_int_eq(t->nnuma, 4);
    ck_assert_int_eq(t->l3_caches, 8);
    ck_assert_int_eq(t->ncores, 32);
    c = ism_topo_core(t, 1);
    s = ism_bitmap_format_list(c->cpus);
    ck_assert_str_eq(s, "2-3");
    free(s);
    ck_assert_int_eq(c->socket, 0);
    ck_assert_int_eq(c->numa, 0);
    ck_assert_int_eq(c->l3, 0);
    c = ism_topo_core(t, 31);
    ck_assert_int_eq(c->socket, 1);
    ck_assert_int_eq(c->numa, 3);
    ck_assert_int_eq(c->l3, 7);
    ck_assert_int_eq(c->kind, ISM_CORE_STANDARD);
    /* Plain: 2 packages of 16 cores.  numa_node_as_socket: the NUMA
     * nodes' parents (Groups) become 4 sockets of 8 cores. */
    ck_assert_int_eq(t->slurm.sockets_per_board, 2);
    ck_assert_int_eq(t->slurm.cores_per_socket, 16);
    ck_assert_int_eq(t->slurm.threads_per_core, 2);
    ck_assert_int_eq(t->slurm_numa.sockets_per_board, 4);
    ck_assert_int_eq(t->slurm_numa.cores_per_socket, 8);
    ism_topo_destroy(t);
}
END_TEST

static const struct {
    const char *machine;
    int boards, sockets_per_board, cores_per_socket, threads_per_core;
} numa_views[] = {
    /* Cluster-on-Die: two NUMA nodes per package become sockets. */
    { "28intel64-2p2g7c-CoDgroups.v1tov2.xml", 1, 4, 7, 1 },
    /* One NUMA node per package: no change. */
    { "corona.xml", 1, 2, 24, 2 },
    /* One NUMA node for the whole machine: one socket. */
    { "16em64t-4s2c2t.xml", 1, 1, 8, 2 },
};

START_TEST(numa_node_as_socket_view)
{
    ism_topo_t *t = load(numa_views[_i].machine);

    ck_assert_int_eq(t->slurm_numa.boards, numa_views[_i].boards);
    ck_assert_int_eq(t->slurm_numa.sockets_per_board, numa_views[_i].sockets_per_board);
    ck_assert_int_eq(t->slurm_numa.cores_per_socket, numa_views[_i].cores_per_socket);
    ck_assert_int_eq(t->slurm_numa.threads_per_core, numa_views[_i].threads_per_core);
    ism_topo_destroy(t);
}
END_TEST

START_TEST(special_machines)
{
    ism_topo_t *t;
    char *s;

    /* Offline cpus are reported, memory-only NUMA nodes kept. */
    t = load("16amd64-8n2c-cpusets.xml");
    s = ism_bitmap_format_list(t->offline);
    ck_assert_str_eq(s, "4,7-11");
    free(s);
    ck_assert_int_eq(t->nnuma, 5);
    ck_assert(ism_bitmap_empty(ism_topo_numa(t, 4)->cpus));
    ck_assert_int_eq(ism_topo_numa(t, 4)->memory, 8589934592ULL);
    ism_topo_destroy(t);
    /* Hybrid kinds: the top kind is "performance". */
    t = load("fakecpukinds.xml");
    ck_assert_int_eq(ism_topo_core(t, 0)->kind, ISM_CORE_EFFICIENCY);
    ck_assert_int_eq(ism_topo_core(t, 1)->kind, ISM_CORE_PERFORMANCE);
    ism_topo_destroy(t);
    /* No Core objects at all: each PU is a core, no crash. */
    t = load("8intel64-4n2t-memattrs.xml");
    ck_assert_int_eq(t->ncores, 8);
    ck_assert_int_eq(ism_topo_core(t, 3)->os_index, -1);
    ism_topo_destroy(t);
    /* Offline cpus leave cores of 1 and 2 threads over 4 packages: slurmd
     * registers 4 sockets of 1 single-thread core, and its block map gives
     * abstract core k the first thread of hwloc core k. */
    t = load("16em64t-4s2c2t-offlines.xml");
    ck_assert_int_eq(t->slurm.cpus, 4);
    ck_assert_int_eq(t->slurm.sockets_per_board, 4);
    ck_assert_int_eq(t->slurm.cores_per_socket, 1);
    ck_assert_int_eq(t->slurm.threads_per_core, 1);
    ck_assert_int_eq(t->ncores, 4);
    s = ism_bitmap_format_list(ism_topo_core(t, 1)->cpus);
    ck_assert_str_eq(s, "4");
    free(s);
    ck_assert_int_eq(ism_topo_core(t, 3)->socket, 2);
    ck_assert_ptr_null(ism_topo_core(t, 4));
    ck_assert_int_eq(t->slurm_numa.cpus, 0); /* not offered: see the note */
    ism_topo_destroy(t);
    /* Xeon Phi SNC4 hybrid: each quarter has a DDR node and an MCDRAM node
     * over the same cpus; the core's node is the DDR one. */
    t = load("64intel64-fakeKNL-SNC4-hybrid.xml");
    ck_assert_int_eq(ism_topo_core(t, 0)->numa, 0);
    ck_assert_int_eq(ism_topo_core(t, 4)->numa, 1);
    ck_assert(ism_bitmap_equal(ism_topo_numa(t, 4)->cpus, ism_topo_numa(t, 1)->cpus));
    ism_topo_destroy(t);
    /* Xeon Max flat SNC4: DDR nodes 0-7, HBM nodes 8-15, no subtype. */
    t = load("xeonmax-2p4g-hbmflat.xml");
    ck_assert_int_eq(ism_topo_core(t, 14)->numa, 1);
    ck_assert_int_eq(ism_topo_core(t, 111)->numa, 7);
    ck_assert(ism_bitmap_equal(ism_topo_numa(t, 9)->cpus, ism_topo_numa(t, 1)->cpus));
    ism_topo_destroy(t);
    /* MI300A: memory figures come from the XML, in MiB for Slurm. */
    t = load("tuo.SPX.xml");
    ck_assert_uint_eq(t->slurm.real_memory, t->memory / (1024 * 1024));
    ism_topo_destroy(t);
}
END_TEST

START_TEST(environment_selects_xml)
{
    ism_topo_t *t;

    setenv("ISTHMUS_HWLOC_XMLFILE", xml_path("sierra.xml"), 1);
    t = ism_topo_load_default(NULL);
    unsetenv("ISTHMUS_HWLOC_XMLFILE");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->slurm.threads_per_core, 4);
    ism_topo_destroy(t);
}
END_TEST

START_TEST(live_machine)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *t = ism_topo_from_live(&err);
    ism_bitmap_t *cpus;
    char *out = run("hwloc-calc --number-of pu all");

    ck_assert_msg(t != NULL, "%s", err.text);
    cpus = ism_topo_cpus(t);
    ck_assert_int_eq(ism_bitmap_count(cpus), atoi(out));
    ck_assert(t->slurm.real_memory > 1);
    free(out);
    ism_bitmap_destroy(cpus);
    ism_topo_destroy(t);
}
END_TEST

/* Broken XML inputs: an error that names the file, never a crash. */
static const struct {
    const char *content; /* NULL: take the first half of corona.xml */
    const char *file;
} bad_xml[] = {
    { "", "empty.xml" },
    { NULL, "truncated.xml" },
    { "\x01\x02garbage\xff\xfe<<<>>>", "garbage.xml" },
    { "<?xml version=\"1.0\"?><topology></topology>", "no-objects.xml" },
    { "<?xml version=\"1.0\"?><!DOCTYPE topology SYSTEM \"hwloc2.dtd\"><topology version=\"2.0\">"
      "<object type=\"Machine\" os_index=\"0\" cpuset=\"0xzz\"/></topology>",
      "bad-cpuset.xml" },
};

START_TEST(xml_bad_input)
{
    ism_error_t err = ISM_ERROR_INIT;
    char path[] = "/tmp/isthmus-xml-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    if (bad_xml[_i].content) {
        fputs(bad_xml[_i].content, f);
    } else {
        char *whole = run("cat '%s'", xml_path("corona.xml"));
        fwrite(whole, 1, strlen(whole) / 2, f);
        free(whole);
    }
    fclose(f);
    ck_assert_ptr_null(ism_topo_from_xml(path, &err));
    ck_assert_msg(strstr(err.text, path) != NULL, "%s: '%s'", bad_xml[_i].file, err.text);
    unlink(path);
}
END_TEST

START_TEST(bad_sources)
{
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_ptr_null(ism_topo_from_xml("/nonexistent.xml", &err));
    ck_assert_ptr_nonnull(strstr(err.text, "/nonexistent.xml"));
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_topo_from_xml(NULL, &err));
    ck_assert_int_eq(errno, EINVAL);
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_topo_from_synthetic("pack:two", &err));
    ck_assert_ptr_nonnull(strstr(err.text, "synthetic"));
    ck_assert_ptr_null(ism_topo_from_synthetic("", NULL));
    ck_assert_ptr_null(ism_topo_encode(NULL, NULL));
    ck_assert_ptr_null(ism_topo_decode(NULL, NULL));
    ck_assert(ism_topo_equal(NULL, NULL));
    ism_topo_destroy(NULL);
    ck_assert_int_eq(ism_slurm_hw_check(NULL, NULL, NULL), -1);
}
END_TEST

/* A small valid encoding; each hostile case edits one fragment of it. */
static const char base_json[] =
    "{\"version\":1,\"sockets\":1,\"l3_caches\":1,\"memory\":1024,\"offline\":\"8\","
    "\"disallowed\":\"\","
    "\"slurm\":{\"cpus\":4,\"boards\":1,\"sockets_per_board\":1,\"cores_per_socket\":2,"
    "\"threads_per_core\":2,\"real_memory\":1},"
    "\"slurm_numa\":{\"cpus\":4,\"boards\":1,\"sockets_per_board\":1,\"cores_per_socket\":2,"
    "\"threads_per_core\":2,\"real_memory\":1},"
    "\"numa\":[[0,1024,\"0-3\"],[1,2048,\"\"]],"
    "\"cores\":[[0,0,0,0,0,\"0,2\",\"standard\"],[1,1,0,0,0,\"1,3\",\"standard\"]]}";

static const struct {
    const char *from, *to; /* replace the first from with to; NULL: whole text is to */
    const char *message;
} hostile[] = {
    { NULL, "", "topology JSON:" },
    { NULL, "not json", "topology JSON:" },
    { NULL, "[1,2,3]", "topology: expected an object" },
    { NULL, "{\"version\":1}", "missing key 'sockets'" },
    { NULL, "{\"sockets\":1}", "version: expected an integer" },
    { NULL, "{\"version\":1,\"version\":1}", "duplicate" },
    { "\"version\":1", "\"version\":2", "version: 2 is not supported" },
    { "\"version\":1", "\"version\":\"1\"", "version: expected an integer" },
    { "\"memory\":1024", "\"memory\":1024,\"extra\":0", "unknown key 'extra'" },
    { "\"sockets\":1", "\"sockets\":0", "sockets: 0 is out of range" },
    { "\"sockets\":1", "\"sockets\":1e9", "sockets: expected an integer" },
    { "\"memory\":1024", "\"memory\":-5", "memory: -5 is out of range" },
    { "\"offline\":\"8\"", "\"offline\":\"8-\"", "offline: cpu list" },
    { "\"offline\":\"8\"", "\"offline\":\"0\"", "cpus include offline" },
    { "\"boards\":1", "\"boards\":null", "slurm.boards: expected an integer" },
    { "\"real_memory\":1}", "\"real_memory\":1,\"x\":1}", "slurm: unknown key 'x'" },
    { "[0,1024,\"0-3\"]", "[0,1024]", "numa[0]: expected an array of 3 items" },
    { "[1,2048,\"\"]", "[0,2048,\"\"]", "numa[1]: node 0 is listed twice" },
    /* A node may share cpus with another (HBM beside DDR): valid. */
    { "[1,2048,\"\"]", "[1,2048,\"0-3\"]", NULL },
    { "\"numa\":[[0,1024,\"0-3\"],[1,2048,\"\"]]", "\"numa\":{}", "numa: expected an array" },
    { "\"cores\":[[", "\"cores\":[],\"x\":[[", "unknown key 'x'" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[0,1,0,0,0,\"1,3\",\"standard\"]",
      "cores[1]: core index 0 is a duplicate" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,0,0,0,\"2,3\",\"standard\"]",
      "cores[1]: cpus shared with another core" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,1,0,0,\"1,3\",\"standard\"]",
      "cores[1]: socket 1, but there are 1 sockets" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,0,7,0,\"1,3\",\"standard\"]",
      "cores[1]: NUMA node 7 is not in numa[]" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,0,1,0,\"1,3\",\"standard\"]",
      "cores[1]: cpus are not all in NUMA node 1" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,0,0,3,\"1,3\",\"standard\"]",
      "cores[1]: L3 3, but there are 1 L3 caches" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,0,0,0,\"\",\"standard\"]",
      "cores[1]: a core needs at least one cpu" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,0,0,0,\"1,3\",\"turbo\"]", "cores[1] (kind)" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,0,0,0,\"1,3\"]",
      "cores[1]: expected an array of 7 items" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,-2,0,0,0,\"1,3\",\"standard\"]",
      "cores[1] (os_index): -2 is out of range" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[99999999999999999999,1,0,0,0,\"1,3\",\"standard\"]",
      "topology JSON:" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,0,0,0,\"1,3,99999\",\"standard\"]",
      "exceeds" },
    { "[1,1,0,0,0,\"1,3\",\"standard\"]", "[1,1,0,0,0,3,\"standard\"]",
      "cores[1]: expected a cpu list string" },
    { "\"cores\":[[0,0,0,0,0,\"0,2\",\"standard\"],", "\"cores\":[", NULL },
    { "\"cores\":[[0,0,0,0,0,\"0,2\",\"standard\"],[1,1,0,0,0,\"1,3\",\"standard\"]]",
      "\"cores\":[]", "cores: expected an array of 1 to" },
};

START_TEST(json_hostile)
{
    ism_error_t err = ISM_ERROR_INIT;
    char text[4096];
    ism_topo_t *t;

    if (!hostile[_i].from) {
        snprintf(text, sizeof(text), "%s", hostile[_i].to);
    } else {
        const char *at = strstr(base_json, hostile[_i].from);
        ck_assert_ptr_nonnull(at);
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - base_json), base_json, hostile[_i].to,
                 at + strlen(hostile[_i].from));
    }
    t = ism_topo_decode(text, &err);
    if (!hostile[_i].message) { /* a control: this edit keeps the input valid */
        ck_assert_msg(t != NULL, "%s", err.text);
        ism_topo_destroy(t);
        return;
    }
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err.text, hostile[_i].message) != NULL, "'%s' lacks '%s'", err.text,
                  hostile[_i].message);
}
END_TEST

START_TEST(json_base_is_valid)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *t = ism_topo_decode(base_json, &err);
    char *again;

    ck_assert_msg(t != NULL, "%s", err.text);
    again = ism_topo_encode(t, NULL);
    ck_assert_str_eq(again, base_json);
    free(again);
    ism_topo_destroy(t);
}
END_TEST

START_TEST(json_too_large)
{
    size_t n = 5 * 1024 * 1024;
    char *big = malloc(n + 1);
    ism_error_t err = ISM_ERROR_INIT;

    memset(big, ' ', n);
    big[n] = '\0';
    ck_assert_ptr_null(ism_topo_decode(big, &err));
    ck_assert_int_eq(errno, E2BIG);
    free(big);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("topology");
    TCase *oracles = tcase_create("oracles");
    TCase *model = tcase_create("model");
    TCase *bad_input = tcase_create("xml_bad_input");

    /* slurmd -C and hwloc-info on the 384-cpu machine take a few seconds
     * under valgrind. */
    tcase_set_timeout(oracles, 600);
    tcase_set_timeout(model, 600);
    tcase_add_loop_test(oracles, counts_match_hwloc_calc, 0, ARRAY_SIZE(machines));
    tcase_add_loop_test(oracles, core_cpus_match_hwloc_info, 0, ARRAY_SIZE(machines));
    tcase_add_loop_test(oracles, slurm_conf_matches_slurmd, 0, ARRAY_SIZE(machines));
    tcase_add_loop_test(model, json_round_trip, 0, ARRAY_SIZE(machines));
    tcase_add_loop_test(model, invariants, 0, ARRAY_SIZE(machines));
    tcase_add_test(model, synthetic_exact);
    tcase_add_loop_test(model, numa_node_as_socket_view, 0, ARRAY_SIZE(numa_views));
    tcase_add_test(model, special_machines);
    tcase_add_test(model, environment_selects_xml);
    tcase_add_test(model, live_machine);
    tcase_add_test(model, bad_sources);
    tcase_add_test(model, json_base_is_valid);
    tcase_add_loop_test(model, json_hostile, 0, ARRAY_SIZE(hostile));
    tcase_add_test(model, json_too_large);
    /* Its own case, so test_xml_readers.sh can run it under each of hwloc's
     * XML readers (CK_RUN_CASE=xml_bad_input). */
    tcase_add_loop_test(bad_input, xml_bad_input, 0, ARRAY_SIZE(bad_xml));
    suite_add_tcase(s, oracles);
    suite_add_tcase(s, bad_input);
    suite_add_tcase(s, model);
    return run_suite(s);
}
