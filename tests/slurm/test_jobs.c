/* Slurm integration: node and job reads.
 *
 * Nodes as the adapter reads them against `scontrol show node`; running
 * sbatch jobs' cores as the adapter reads them against `scontrol -d show
 * job` (CPU_IDs), and those cores' OS cpus through the topology model
 * against hwloc-calc on the node's XML.  The cluster's nodes pretend to be
 * machines with and without SMT and with several NUMA nodes per socket.
 */
#include <config.h>

#include "slurm_test.h"

static char *nodes[64];
static int nnodes;
static ism_slurm_t *slurm;

static void setup(void)
{
    ism_error_t err = ISM_ERROR_INIT;

    cancel_all_jobs();
    nnodes = world_node_names(nodes, 64);
    slurm = ism_slurm_create(NULL, &err);
    ck_assert_msg(slurm, "%s", err.text);
}

static void teardown(void)
{
    for (int i = 0; i < nnodes; i++)
        free(nodes[i]);
    nnodes = 0;
    ism_slurm_destroy(slurm);
    slurm = NULL;
}

START_TEST(nodes_match_scontrol)
{
    const char *node = nodes[_i % nnodes];
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_nodes_t *snap = NULL;
    const struct ism_slurm_node *n;
    char *cpus, *sockets, *cores, *threads, *parts, *state, *mem, joined[1024] = "";

    ck_assert_msg(ism_slurm_nodes_poll(slurm, &snap, &err) == 1, "%s", err.text);
    ck_assert_int_eq(snap->count, nnodes);
    ck_assert_ptr_nonnull(n = ism_slurm_nodes_find(snap, node));
    cpus = scontrol_field("node", node, "CPUTot");
    sockets = scontrol_field("node", node, "Sockets");
    cores = scontrol_field("node", node, "CoresPerSocket");
    threads = scontrol_field("node", node, "ThreadsPerCore");
    mem = scontrol_field("node", node, "RealMemory");
    parts = scontrol_field("node", node, "Partitions");
    state = sh("sinfo -h -n %s -o %%T | head -1", node);
    ck_assert_int_eq(n->cpus, atoi(cpus));
    ck_assert_int_eq(n->sockets, atoi(sockets));
    ck_assert_int_eq(n->cores_per_socket, atoi(cores));
    ck_assert_int_eq(n->threads_per_core, atoi(threads));
    ck_assert_int_eq((int)n->real_memory, atoi(mem));
    for (int p = 0; p < n->npartitions; p++)
        snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s", p ? "," : "",
                 n->partitions[p]);
    ck_assert_str_eq(joined, parts);
    ck_assert_str_eq(n->state_name, state);
    ism_slurm_nodes_destroy(snap);
    /* Nothing changed since: the next poll gives no snapshot. */
    settle(slurm);
    ck_assert_int_eq(ism_slurm_nodes_poll(slurm, &snap, &err), 0);
    free(cpus), free(sockets), free(cores), free(threads), free(mem), free(parts), free(state);
}
END_TEST

/* hwloc-calc's OS cpus of the given logical cores of the node's XML. */
static ism_bitmap_t *oracle_cpus(const char *node, const ism_bitmap_t *cores)
{
    char cmd[8192], *out, *save = NULL;
    int len, core;
    ism_bitmap_t *cpus = ism_bitmap_create();

    len = snprintf(cmd, sizeof(cmd), "hwloc-calc --input %s/topology/%s.xml -I pu --po",
                   world_dir(), node);
    ism_bitmap_foreach(core, cores)
        len += snprintf(cmd + len, sizeof(cmd) - (size_t)len, " core:%d", core);
    out = sh("%s", cmd);
    for (char *t = strtok_r(out, ",", &save); t; t = strtok_r(NULL, ",", &save))
        ism_bitmap_set(cpus, atoi(t));
    free(out);
    return cpus;
}

/* Two jobs on a node, the second one on cores after the first's; each
 * one's cores and cpus against the oracles. */
START_TEST(job_cores_match_cpu_ids)
{
    const char *node = nodes[_i % nnodes];
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_nodes_t *nsnap = NULL;
    ism_slurm_jobs_t *snap = NULL;
    char args[256];
    uint32_t ids[2];

    snprintf(args, sizeof(args), "-w %s -n 3 -J isthmus-a --comment=first", node);
    ids[0] = sbatch(args);
    snprintf(args, sizeof(args), "-w %s -n 2 -J isthmus-b", node);
    ids[1] = sbatch(args);
    wait_job_state(ids[0], "RUNNING");
    wait_job_state(ids[1], "RUNNING");
    ck_assert_msg(ism_slurm_jobs_poll(slurm, &snap, &err) == 1, "%s", err.text);
    ck_assert_msg(ism_slurm_nodes_poll(slurm, &nsnap, &err) == 1, "%s", err.text);
    for (int k = 0; k < 2; k++) {
        const struct ism_slurm_job *job = ism_slurm_jobs_find(snap, ids[k]);
        const struct ism_slurm_node *n = ism_slurm_nodes_find(nsnap, node);
        ism_bitmap_t *want, *cpus, *want_cpus;
        char *got_s, *want_s, *devices;

        ck_assert_ptr_nonnull(job);
        ck_assert_str_eq(job->state_name, "RUNNING");
        ck_assert_str_eq(job->name, k ? "isthmus-b" : "isthmus-a");
        ck_assert_str_eq(job->comment, k ? "" : "first");
        ck_assert_int_eq(job->nnodes, 1);
        ck_assert_str_eq(job->node[0].name, node);
        want = oracle_job_cores(ids[k], node);
        got_s = ism_bitmap_format_list(job->node[0].cores);
        want_s = ism_bitmap_format_list(want);
        ck_assert_msg(ism_bitmap_equal(job->node[0].cores, want), "job %u on %s: cores %s, want %s",
                      ids[k], node, got_s, want_s);
        ck_assert_int_gt(job->node[0].memory, 0);
        /* The OS cpus through the published topology (test_publish ran
         * before) against hwloc-calc. */
        ck_assert_msg(n && n->topo, "%s has no topology: %s", node, n ? n->topo_error : "");
        cpus = ism_slurm_cores_to_cpus(n->topo, job->node[0].cores, &err);
        ck_assert_msg(cpus, "%s", err.text);
        want_cpus = oracle_cpus(node, want);
        ck_assert(ism_bitmap_equal(cpus, want_cpus));
        devices = ism_slurm_core_devices(job->node[0].cores);
        ck_assert_msg(strncmp(devices, "core-", 5) == 0, "%s", devices);
        free(devices), free(got_s), free(want_s);
        ism_bitmap_destroy(want), ism_bitmap_destroy(cpus), ism_bitmap_destroy(want_cpus);
    }
    /* The node is partly used: mixed, as sinfo says. */
    {
        char *state = sh("sinfo -h -n %s -o %%T | head -1", node);
        ck_assert_str_eq(ism_slurm_nodes_find(nsnap, node)->state_name, state);
        ck_assert_str_eq(state, "mixed");
        free(state);
    }
    ck_assert(!ism_bitmap_intersects(ism_slurm_jobs_find(snap, ids[0])->node[0].cores,
                                     ism_slurm_jobs_find(snap, ids[1])->node[0].cores));
    ism_slurm_jobs_destroy(snap);
    ism_slurm_nodes_destroy(nsnap);
    /* Nothing changed: no snapshot. */
    settle(slurm);
    ck_assert_int_eq(ism_slurm_jobs_poll(slurm, &snap, &err), 0);
    ck_assert_ptr_null(snap);
    cancel_all_jobs();
}
END_TEST

/* Job shapes whose cores each release reads its own way (a job's
 * resources record on 24.11 and 25.05 groups nodes of equal shape, and
 * counts cpus per node): several nodes of different shapes, SMT and
 * non-SMT nodes, partial and whole nodes, several cores per task, one
 * thread per core.  n1 corona (2 x 24 x 2), n2 2 x 8 x 2, n3 2 x 14 x 1,
 * n4 4 x 2 x 2 (tests/slurm/run). */
static const struct {
    const char *args;
    bool cpus_are_num_cpus; /* the cpus per node add up to NumCPUs (22.05
                               counts one cpu per core under nomultithread
                               where NumCPUs counts every thread) */
} shapes[] = {
    { "-N 4 -n 4", true },
    { "-N 4 -n 9", true },
    { "-N 2 -w n[2,4] -n 6 -c 3", true },
    { "-N 3 -w n[1-3] --ntasks-per-node=2 -c 2", true },
    { "-w n3 -n 20", true },
    { "-w n4 --exclusive", true },
    { "-w n1 -n 4 --hint=nomultithread", false },
    { "-N 2 -p pair -n 5 -c 5", true },
};
/* Every node of a job of each shape: its cores against CPU_IDs, its cpus
 * between one and ThreadsPerCore per core, and added up against the job's
 * NumCPUs. */
START_TEST(job_shapes_match_cpu_ids)
{
    const char *shape = shapes[_i].args;
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_jobs_t *snap = NULL;
    const struct ism_slurm_job *job;
    char args[256], jid[16], *hosts, *num_cpus, *num_nodes;
    uint32_t id, cpus = 0;

    snprintf(args, sizeof(args), "%s -J isthmus-shape", shape);
    id = sbatch(args);
    wait_job_state(id, "RUNNING");
    ck_assert_msg(ism_slurm_jobs_poll(slurm, &snap, &err) == 1, "%s: %s", shape, err.text);
    ck_assert_ptr_nonnull(job = ism_slurm_jobs_find(snap, id));
    snprintf(jid, sizeof(jid), "%u", id);
    num_nodes = scontrol_field("job", jid, "NumNodes");
    num_cpus = scontrol_field("job", jid, "NumCPUs");
    hosts = sh("scontrol show hostnames $(squeue -h -j %u -o %%N) | tr '\n' ' '", id);
    ck_assert_msg(job->nnodes == atoi(num_nodes), "%s: %d nodes, want %s", shape, job->nnodes,
                  num_nodes);
    for (int k = 0; k < job->nnodes; k++) {
        const struct ism_slurm_job_node *jn = &job->node[k];
        ism_bitmap_t *want = oracle_job_cores(id, jn->name);
        char *got_s = ism_bitmap_format_list(jn->cores), *want_s = ism_bitmap_format_list(want);
        char word[64], *threads;

        snprintf(word, sizeof(word), "%s ", jn->name);
        ck_assert_msg(strstr(hosts, word), "%s: node %s is not among %s", shape, jn->name, hosts);
        ck_assert_msg(ism_bitmap_equal(jn->cores, want), "%s: job %u on %s: cores %s, want %s",
                      shape, id, jn->name, got_s, want_s);
        ck_assert_msg(jn->memory > 0, "%s: no memory on %s", shape, jn->name);
        threads = scontrol_field("node", jn->name, "ThreadsPerCore");
        ck_assert_msg(jn->cpus >= (uint32_t)ism_bitmap_count(want) &&
                          jn->cpus <= (uint32_t)(ism_bitmap_count(want) * atoi(threads)),
                      "%s: %u cpus for cores %s of %s threads on %s", shape, jn->cpus, want_s,
                      threads, jn->name);
        cpus += jn->cpus;
        free(got_s), free(want_s), free(threads);
        ism_bitmap_destroy(want);
    }
    ck_assert_msg(!shapes[_i].cpus_are_num_cpus || cpus == (uint32_t)atoi(num_cpus),
                  "%s: %u cpus, want %s", shape, cpus, num_cpus);
    free(hosts), free(num_cpus), free(num_nodes);
    ism_slurm_jobs_destroy(snap);
    cancel_all_jobs();
}
END_TEST

START_TEST(cores_outside_topology)
{
    ism_error_t err = ISM_ERROR_INIT;
    char path[1024], *json, want[32];
    ism_topo_t *topo;
    ism_bitmap_t *cores = ism_bitmap_create();
    int last;

    /* The first node's topology, and a core one past its last. */
    snprintf(path, sizeof(path), "%s/topology/%s.json", world_dir(), nodes[0]);
    json = slurp(path);
    ck_assert_ptr_nonnull(topo = ism_topo_decode(json, NULL));
    last = topo->cores[topo->ncores - 1].index;
    ism_bitmap_set(cores, last);
    ism_bitmap_set(cores, last + 1);
    ck_assert_ptr_null(ism_slurm_cores_to_cpus(topo, cores, &err));
    ck_assert_int_eq(errno, EINVAL);
    snprintf(want, sizeof(want), "core %d ", last + 1);
    ck_assert_msg(strstr(err.text, want), "%s", err.text);
    free(json);
    ism_bitmap_destroy(cores);
    ism_topo_destroy(topo);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slurm nodes and jobs");
    TCase *tc = tcase_create("reads");

    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, nodes_match_scontrol, 0, 4);
    tcase_add_loop_test(tc, job_cores_match_cpu_ids, 0, 4);
    tcase_add_loop_test(tc, job_shapes_match_cpu_ids, 0,
                        (int)(sizeof(shapes) / sizeof(shapes[0])));
    tcase_add_test(tc, cores_outside_topology);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
