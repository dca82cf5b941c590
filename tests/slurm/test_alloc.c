/* Slurm integration: allocations without a batch script.
 *
 * An allocation the adapter makes runs (squeue says so), holds its cores
 * (a concurrent sbatch job on the same node gets other cores, both read
 * from `scontrol -d show job`), and completing it frees them.  Requests
 * Slurm cannot serve fail at once with a message saying why.
 */
#include <config.h>
#include <signal.h>
#include <slurm/slurm_errno.h>

#include "slurm_test.h"

static ism_slurm_t *slurm;
static char *node;

static void setup(void)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *list;

    cancel_all_jobs();
    list = world_nodes();

    list[strcspn(list, " ")] = '\0';
    node = list;
    slurm = ism_slurm_create(NULL, &err);
    ck_assert_msg(slurm, "%s", err.text);
}

static void teardown(void)
{
    ism_slurm_destroy(slurm);
    free(node);
    slurm = NULL;
    node = NULL;
}

static struct ism_slurm_alloc_req base_request(void)
{
    return (struct ism_slurm_alloc_req){
        .name = "isthmus-test-alloc",
        .admin_comment = "isthmus:gang=test",
        .partition = "debug",
        .min_nodes = 1,
        .max_nodes = 1,
        .num_tasks = 2,
        .cpus_per_task = 2,
        .mem_per_cpu = 1,
        .time_limit = 10,
    };
}

static char *cpu_alloc(void)
{
    return scontrol_field("node", node, "CPUAlloc");
}

START_TEST(allocation_runs_holds_and_frees)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_slurm_alloc_req req = base_request();
    struct ism_slurm_alloc alloc;
    ism_slurm_jobs_t *snap = NULL;
    const struct ism_slurm_job *job;
    ism_bitmap_t *mine, *other;
    char args[128], *st, *before, *after, *batch_cpus;
    uint32_t batch;

    req.immediate = true;
    before = cpu_alloc();
    ck_assert_str_eq(before, "0");
    ck_assert_msg(ism_slurm_allocate(slurm, &req, &alloc, &err) == 0, "%s", err.text);
    ck_assert(alloc.granted);
    ck_assert_int_gt(alloc.job_id, 0);
    st = sh("squeue -h -j %u -o %%T", alloc.job_id);
    ck_assert_str_eq(st, "RUNNING");
    free(st);
    st = sh("squeue -h -j %u -o %%N", alloc.job_id);
    ck_assert_str_eq(st, alloc.nodes);
    free(st);
    free(node);
    node = strdup(alloc.nodes);
    /* The job as the adapter reads it, against the oracle. */
    ck_assert_msg(ism_slurm_jobs_poll(slurm, &snap, &err) == 1, "%s", err.text);
    ck_assert_ptr_nonnull(job = ism_slurm_jobs_find(snap, alloc.job_id));
    ck_assert_str_eq(job->name, "isthmus-test-alloc");
    ck_assert_str_eq(job->admin_comment, "isthmus:gang=test");
    ck_assert_int_eq(job->nnodes, 1);
    mine = oracle_job_cores(alloc.job_id, node);
    ck_assert(ism_bitmap_equal(job->node[0].cores, mine));
    ck_assert_int_ge(job->node[0].cpus, 4);
    ism_slurm_jobs_destroy(snap);
    /* A concurrent job on the same node gets other cores. */
    snprintf(args, sizeof(args), "-w %s -n 2", node);
    batch = sbatch(args);
    wait_job_state(batch, "RUNNING");
    other = oracle_job_cores(batch, node);
    ck_assert(!ism_bitmap_empty(other));
    ck_assert(!ism_bitmap_intersects(mine, other));
    /* Completing frees the allocation's cpus: only the batch job's stay. */
    ck_assert_msg(ism_slurm_complete(slurm, alloc.job_id, 0, &err) == 0, "%s", err.text);
    for (int i = 0; i < WAIT_SECONDS * 5; i++) {
        st = sh("squeue -h -j %u -t R,CG -o %%T 2>/dev/null", alloc.job_id);
        bool gone = !*st;
        free(st);
        if (gone)
            break;
        usleep(200000);
    }
    snprintf(args, sizeof(args), "%u", batch);
    batch_cpus = scontrol_field("job", args, "NumCPUs");
    after = cpu_alloc();
    ck_assert_str_eq(after, batch_cpus);
    st = sh("scontrol show job %u | sed -n 's/.*JobState=\\([A-Z]*\\).*/\\1/p'", alloc.job_id);
    ck_assert_str_eq(st, "COMPLETED");
    free(st);
    /* Completing twice is an error Slurm names. */
    ism_error_clear(&err);
    ck_assert_int_eq(ism_slurm_complete(slurm, alloc.job_id, 0, &err), -1);
    ck_assert_msg(*err.text, "no message");
    free(sh("scancel %u", batch));
    wait_job_state(batch, "");
    ism_bitmap_destroy(mine);
    ism_bitmap_destroy(other);
    free(before);
    free(after);
    free(batch_cpus);
}
END_TEST

/* Busy nodes: an immediate request fails at once, a plain one is queued
 * (granted false) and starts when the nodes free up. */
START_TEST(queued_until_nodes_free)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_slurm_alloc_req req = base_request();
    struct ism_slurm_alloc alloc;
    ism_slurm_jobs_t *snap = NULL;
    const struct ism_slurm_job *job;
    char args[128], *count = sh("sinfo -h -p debug -N -o %%N | sort -u | wc -l"), *st;
    uint32_t blocker;
    int nodes = atoi(count);

    /* A whole node taken: a request for every node of the partition waits. */
    snprintf(args, sizeof(args), "--exclusive -w %s", node);
    blocker = sbatch(args);
    wait_job_state(blocker, "RUNNING");
    req.min_nodes = req.max_nodes = (uint32_t)nodes;
    req.num_tasks = (uint32_t)nodes;
    req.cpus_per_task = 1;
    req.immediate = true;
    ck_assert_int_eq(ism_slurm_allocate(slurm, &req, &alloc, &err), -1);
    /* 22.05.8 answers "Requested nodes are busy" here. */
    ck_assert_msg(errno == ESLURM_NODES_BUSY || errno == ESLURM_CAN_NOT_START_IMMEDIATELY,
                  "errno %d: %s", errno, err.text);
    ck_assert_msg(strstr(err.text, "allocating isthmus-test-alloc"), "%s", err.text);
    req.immediate = false;
    ism_error_clear(&err);
    ck_assert_msg(ism_slurm_allocate(slurm, &req, &alloc, &err) == 0, "%s", err.text);
    ck_assert(!alloc.granted);
    ck_assert_int_gt(alloc.job_id, 0);
    ck_assert_str_eq(alloc.nodes, "");
    st = sh("squeue -h -j %u -o %%T", alloc.job_id);
    ck_assert_str_eq(st, "PENDING");
    free(st);
    /* The blocker ends: the allocation starts on every node. */
    free(sh("scancel %u", blocker));
    wait_job_state(alloc.job_id, "RUNNING");
    ck_assert_msg(ism_slurm_jobs_poll(slurm, &snap, &err) == 1, "%s", err.text);
    ck_assert_ptr_nonnull(job = ism_slurm_jobs_find(snap, alloc.job_id));
    ck_assert_str_eq(job->state_name, "RUNNING");
    ck_assert_int_eq(job->nnodes, nodes);
    for (int i = 0; i < job->nnodes; i++) {
        ism_bitmap_t *want = oracle_job_cores(alloc.job_id, job->node[i].name);
        ck_assert(ism_bitmap_equal(job->node[i].cores, want));
        ism_bitmap_destroy(want);
    }
    ism_slurm_jobs_destroy(snap);
    ck_assert(ism_slurm_cancel(slurm, alloc.job_id, &err) == 0);
    cancel_all_jobs();
    free(count);
}
END_TEST

/* Requests Slurm cannot serve: a clear error at once, no job left.  Slurm
 * either refuses them itself (errnum, text) or queues a job that can never
 * start, which the adapter cancels (EINVAL, "could never start").  Which
 * one depends on the release: 22.05.8 and 26.05.5 queue a job asking for
 * more nodes or cpus than the cluster has, 24.11.5 refuses it at once with
 * "Requested node configuration is not available". */
static const struct {
    const char *what;
    const char *partition, *account;
    uint32_t min_nodes, num_tasks;
    int errnum;
    const char *text;
    bool may_queue; /* or be queued, then cancelled by the adapter */
} impossible[] = {
    { "unknown partition", "no-such-partition", NULL, 1, 1, ESLURM_INVALID_PARTITION_NAME,
      "Invalid partition", false },
    { "more nodes than the cluster", "debug", NULL, 1000, 0,
      ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE, "Requested node configuration", true },
    { "more cpus than the cluster", "debug", NULL, 1, 100000,
      ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE, "Requested node configuration", true },
    /* Last: needs accounting (tests/slurm/accounting). */
    { "invalid account", "debug", "no-such-account", 1, 1, ESLURM_INVALID_ACCOUNT,
      "Invalid account", false },
};

START_TEST(impossible_requests_fail_at_once)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_slurm_alloc_req req = base_request();
    struct ism_slurm_alloc alloc;
    char *left;

    req.partition = impossible[_i].partition;
    req.account = impossible[_i].account;
    req.min_nodes = impossible[_i].min_nodes;
    req.max_nodes = 0;
    req.num_tasks = impossible[_i].num_tasks;
    req.cpus_per_task = 1;
    req.name = "isthmus-test-impossible";
    ck_assert_int_eq(ism_slurm_allocate(slurm, &req, &alloc, &err), -1);
    if (impossible[_i].may_queue && errno == EINVAL) {
        ck_assert_msg(strstr(err.text, "could never start"), "%s: %s", impossible[_i].what,
                      err.text);
    } else {
        ck_assert_int_eq(errno, impossible[_i].errnum);
        ck_assert_msg(strstr(err.text, impossible[_i].text), "%s: %s", impossible[_i].what,
                      err.text);
    }
    /* No job is left waiting. */
    left = sh("squeue -h -n isthmus-test-impossible -t PD,R -o %%i");
    ck_assert_str_eq(left, "");
    free(left);
}
END_TEST

START_TEST(cancel_and_signal)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_slurm_alloc_req req = base_request();
    struct ism_slurm_alloc alloc;

    ck_assert_msg(ism_slurm_allocate(slurm, &req, &alloc, &err) == 0, "%s", err.text);
    wait_job_state(alloc.job_id, "RUNNING");
    ck_assert_msg(ism_slurm_cancel(slurm, alloc.job_id, &err) == 0, "%s", err.text);
    for (int i = 0; i < WAIT_SECONDS * 5; i++) {
        char *st = sh("squeue -h -j %u -t R -o %%T", alloc.job_id);
        bool gone = !*st;
        free(st);
        if (gone)
            break;
        usleep(200000);
    }
    {
        char *st = sh("scontrol show job %u | sed -n 's/.*JobState=\\([A-Z]*\\).*/\\1/p'", alloc.job_id);
        ck_assert_str_eq(st, "CANCELLED");
        free(st);
    }
    ism_error_clear(&err);
    ck_assert_int_eq(ism_slurm_signal(slurm, alloc.job_id, SIGUSR1, &err), -1);
    ck_assert_int_eq(errno, ESLURM_ALREADY_DONE);
    ck_assert_msg(strstr(err.text, "signalling job"), "%s", err.text);
    ism_error_clear(&err);
    ck_assert_int_eq(ism_slurm_signal(slurm, alloc.job_id, 0, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slurm allocations");
    TCase *tc = tcase_create("alloc");

    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, allocation_runs_holds_and_frees);
    tcase_add_test(tc, queued_until_nodes_free);
    /* Without slurmdbd, slurmctld takes any account: skip that row. */
    tcase_add_loop_test(tc, impossible_requests_fail_at_once, 0,
                        ARRAY_SIZE(impossible) - (getenv("ISTHMUS_SLURM_ACCOUNTING") ? 0 : 1));
    tcase_add_test(tc, cancel_and_signal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
