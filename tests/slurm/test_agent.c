/* Slurm integration: the owner thread (lib/slurm_agent.h).
 *
 * Requests run on the agent's thread and are reported through its file
 * descriptor; with slurmctld stopped (tests/slurm/ctld), polls are retried
 * with backoff and succeed once slurmctld is back, while an allocation is
 * not retried.  Destroying the agent runs every callback still owed.
 */
#include <config.h>
#include <poll.h>
#include <slurm/slurm_errno.h>

#include "lib/slurm/slurm_agent.h"
#include "slurm_test.h"

static ism_slurm_agent_t *agent;

static void setup(void)
{
    ism_error_t err = ISM_ERROR_INIT;

    agent = ism_slurm_agent_create(NULL, &err);
    ck_assert_msg(agent, "%s", err.text);
    ck_assert(ism_slurm_agent_set_backoff(agent, 50, 800, &err) == 0);
}

static void teardown(void)
{
    ism_slurm_agent_destroy(agent);
    agent = NULL;
}

static void on_done(struct ism_slurm_request *req, void *arg)
{
    (*(int *)arg)++;
}

/* Wait (bounded) for the agent's fd and dispatch until *calls reaches n. */
static void wait_done(int *calls, int n)
{
    struct pollfd p = { .fd = ism_slurm_agent_fd(agent), .events = POLLIN };

    for (int i = 0; *calls < n && i < WAIT_SECONDS * 10; i++) {
        if (poll(&p, 1, 100) > 0)
            ism_slurm_agent_dispatch(agent);
    }
    ck_assert_int_eq(*calls, n);
}

static void ctld(const char *what)
{
    char *out = sh("%s/ctld %s %s 2>&1 && echo done", getenv("ISTHMUS_SLURM_TESTS"), what,
                   world_dir());
    ck_assert_msg(out && strstr(out, "done"), "ctld %s: %s", what, out ? out : "");
    free(out);
}

START_TEST(polls_through_the_fd)
{
    struct ism_slurm_request nodes = { .op = ISM_SLURM_POLL_NODES };
    struct ism_slurm_request jobs = { .op = ISM_SLURM_POLL_JOBS };
    char *count = sh("sinfo -h -N -o %%N | sort -u | wc -l");
    int calls = 0;

    ck_assert(ism_slurm_agent_submit(agent, &nodes, on_done, &calls, NULL) == 0);
    ck_assert(ism_slurm_agent_submit(agent, &jobs, on_done, &calls, NULL) == 0);
    wait_done(&calls, 2);
    ck_assert_msg(nodes.rc == 1, "%s", nodes.err.text);
    ck_assert_int_eq(nodes.nodes->count, atoi(count));
    ck_assert_int_eq(nodes.attempts, 1);
    ck_assert_msg(jobs.rc == 1 && jobs.jobs, "%s", jobs.err.text);
    ism_slurm_nodes_destroy(nodes.nodes);
    ism_slurm_jobs_destroy(jobs.jobs);
    free(count);
}
END_TEST

START_TEST(retries_until_slurmctld_returns)
{
    struct ism_slurm_request nodes = { .op = ISM_SLURM_POLL_NODES };
    struct ism_slurm_request alloc = { .op = ISM_SLURM_ALLOCATE };
    int calls = 0, alloc_calls = 0;

    alloc.alloc_req = (struct ism_slurm_alloc_req){ .name = "isthmus-test-agent", .min_nodes = 1 };
    ctld("stop");
    /* An allocation fails at once, without a retry. */
    ck_assert(ism_slurm_agent_submit(agent, &alloc, on_done, &alloc_calls, NULL) == 0);
    wait_done(&alloc_calls, 1);
    ck_assert_int_eq(alloc.rc, -1);
    ck_assert_int_eq(alloc.attempts, 1);
    ck_assert_msg(ism_slurm_error_is_transient(alloc.errnum), "errno %d: %s", alloc.errnum,
                  alloc.err.text);
    /* A poll keeps trying while slurmctld is away.  Each libslurm call
     * itself tries to connect for about MessageTimeout (9 s measured with
     * the default 10 s) before it fails, so stay away longer than that... */
    ck_assert(ism_slurm_agent_submit(agent, &nodes, on_done, &calls, NULL) == 0);
    sleep(20);
    ism_slurm_agent_dispatch(agent);
    ck_assert_int_eq(calls, 0);
    ctld("start");
    /* ...and succeeds once it is back. */
    wait_done(&calls, 1);
    ck_assert_msg(nodes.rc == 1, "rc %d: %s", nodes.rc, nodes.err.text);
    ck_assert_int_ge(nodes.attempts, 2);
    ck_assert_int_gt(nodes.nodes->count, 0);
    ism_slurm_nodes_destroy(nodes.nodes);
}
END_TEST

START_TEST(destroy_runs_owed_callbacks)
{
    struct ism_slurm_request reqs[3] = { { .op = ISM_SLURM_POLL_NODES },
                                         { .op = ISM_SLURM_POLL_JOBS },
                                         { .op = ISM_SLURM_CANCEL, .job_id = 1 } };
    int calls = 0;

    ctld("stop");
    for (int i = 0; i < 3; i++)
        ck_assert(ism_slurm_agent_submit(agent, &reqs[i], on_done, &calls, NULL) == 0);
    ism_slurm_agent_destroy(agent);
    agent = NULL;
    ck_assert_int_eq(calls, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(reqs[i].rc, -1);
        ck_assert_msg(reqs[i].errnum == ECANCELED || ism_slurm_error_is_transient(reqs[i].errnum),
                      "request %d: errno %d", i, reqs[i].errnum);
    }
    ctld("start");
}
END_TEST

START_TEST(bad_arguments)
{
    struct ism_slurm_request req = { .op = ISM_SLURM_POLL_NODES };
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_int_eq(ism_slurm_agent_submit(NULL, &req, on_done, NULL, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(ism_slurm_agent_submit(agent, &req, NULL, NULL, &err), -1);
    ck_assert_int_eq(ism_slurm_agent_set_backoff(agent, 0, 10, &err), -1);
    ck_assert_int_eq(ism_slurm_agent_set_backoff(agent, 20, 10, &err), -1);
    ck_assert_int_eq(ism_slurm_agent_fd(NULL), -1);
    ck_assert_int_eq(ism_slurm_agent_dispatch(agent), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slurm agent");
    TCase *tc = tcase_create("agent");

    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, polls_through_the_fd);
    tcase_add_test(tc, retries_until_slurmctld_returns);
    tcase_add_test(tc, destroy_runs_owed_callbacks);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
