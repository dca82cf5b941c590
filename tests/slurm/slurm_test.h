/* slurm_test.h - what the Slurm integration tests share.
 *
 * The tests run against a real cluster started by tests/slurm/run
 * (tests/world/slurm/start): SLURM_CONF and ISTHMUS_SLURM_DIR name it.
 * Oracles are Slurm's own command line tools (scontrol, squeue, sbatch)
 * and hwloc-calc, run as separate processes, never the adapter itself.
 */
#ifndef ISTHMUS_TEST_SLURM_H
#define ISTHMUS_TEST_SLURM_H

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/slurm/slurm_adapter.h"
#include "tests/unit/unit.h"

/* Bound on waiting for a job to reach a state: a guard against a hang,
 * not a speed assertion. */
#define WAIT_SECONDS 120

/* Run a shell command and return its stdout without the trailing newline
 * (caller frees); NULL if it could not run. */
static inline char *sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *sh(const char *fmt, ...)
{
    char cmd[4096], *out = NULL;
    size_t len = 0, size = 0;
    va_list ap;
    FILE *p;
    int c;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (!(p = popen(cmd, "r")))
        return NULL;
    while ((c = fgetc(p)) != EOF) {
        if (len + 2 > size && !(out = realloc(out, size = size ? size * 2 : 256)))
            break;
        out[len++] = (char)c;
    }
    pclose(p);
    if (!out && !(out = malloc(1)))
        return NULL;
    while (len && out[len - 1] == '\n')
        len--;
    out[len] = '\0';
    return out;
}

/* The cluster directory (tests/world/slurm/start's DIR). */
static inline const char *world_dir(void)
{
    const char *d = getenv("ISTHMUS_SLURM_DIR");
    ck_assert_msg(d && *d, "ISTHMUS_SLURM_DIR is not set: run through tests/slurm/run");
    return d;
}

/* Read a whole file (caller frees), trailing newline removed. */
static inline char *slurp(const char *path)
{
    char *s = sh("cat '%s'", path);
    ck_assert_msg(s && *s, "cannot read %s", path);
    return s;
}

/* The value of Key= in `scontrol show OBJECT NAME` (-d: details), caller
 * frees; "" when absent. */
static inline char *scontrol_field(const char *what, const char *name, const char *key)
{
    return sh("scontrol -d -o show %s %s | tr ' ' '\\n' | sed -n 's/^%s=//p' | head -1", what,
              name, key);
}

/* The abstract cores of job on node from `scontrol -d show job`: CPU_IDs
 * are abstract cpu ids, core * ThreadsPerCore + thread. */
static inline ism_bitmap_t *oracle_job_cores(uint32_t job, const char *node)
{
    char *threads = scontrol_field("node", node, "ThreadsPerCore");
    /* scontrol groups nodes with equal ids into one hostlist: expand it. */
    char *ids = sh("scontrol -d show job %u | awk '/^ *Nodes=.* CPU_IDs=/ {print $1, $2}' | "
                   "while read n c; do for h in $(scontrol show hostnames ${n#Nodes=}); do "
                   "[ \"$h\" = '%s' ] && echo ${c#CPU_IDs=}; done; done | head -1",
                   job, node);
    ism_bitmap_t *cpus = ism_bitmap_parse_list(ids ? ids : "x", NULL);
    ism_bitmap_t *cores = ism_bitmap_create();
    int t = atoi(threads ? threads : "0"), cpu;

    ck_assert_msg(cpus && t > 0, "no CPU_IDs for job %u on %s ('%s', threads %s)", job, node,
                  ids ? ids : "", threads ? threads : "");
    ism_bitmap_foreach(cpu, cpus)
        ism_bitmap_set(cores, cpu / t);
    ism_bitmap_destroy(cpus);
    free(ids);
    free(threads);
    return cores;
}

/* Submit `sleep` as a batch job (sbatch ARGS); returns the job id. */
static inline uint32_t sbatch(const char *args)
{
    char *out = sh("sbatch --parsable -o /dev/null %s --wrap 'sleep 600'", args);
    uint32_t id = out ? (uint32_t)strtoul(out, NULL, 10) : 0;

    ck_assert_msg(id > 0, "sbatch %s printed '%s'", args, out ? out : "");
    free(out);
    return id;
}

/* Wait until squeue shows job in state (e.g. "RUNNING"); "" = gone. */
static inline void wait_job_state(uint32_t job, const char *state)
{
    char *st = NULL;

    for (int i = 0; i < WAIT_SECONDS * 5; i++) {
        free(st);
        st = sh("squeue -h -j %u -o %%T 2>/dev/null", job);
        if (st && strcmp(st, state) == 0)
            break;
        usleep(200000);
    }
    ck_assert_msg(st && strcmp(st, state) == 0, "job %u: state '%s', want '%s'", job,
                  st ? st : "?", state);
    free(st);
}

/* slurmctld answers "no change" only to a read made at least one second
 * after the last change (it compares whole seconds and errs on the side of
 * "changed").  Wait for that and make one such read, so that the next poll
 * of an unchanged cluster must say unchanged. */
static inline void settle(ism_slurm_t *s)
{
    ism_slurm_nodes_t *nodes = NULL;
    ism_slurm_jobs_t *jobs = NULL;

    sleep(2);
    ck_assert(ism_slurm_nodes_poll(s, &nodes, NULL) >= 0);
    ck_assert(ism_slurm_jobs_poll(s, &jobs, NULL) >= 0);
    ism_slurm_nodes_destroy(nodes);
    ism_slurm_jobs_destroy(jobs);
}

/* Cancel every job of the (private) test cluster and wait until none is
 * left, so one failed test leaves nothing running for the next. */
static inline void cancel_all_jobs(void)
{
    char *left = NULL;

    free(sh("scancel --user=$(id -un) 2>/dev/null"));
    for (int i = 0; i < WAIT_SECONDS * 5; i++) {
        free(left);
        left = sh("squeue -h -o %%i");
        if (left && !*left)
            break;
        usleep(200000);
    }
    ck_assert_msg(left && !*left, "jobs left: %s", left ? left : "?");
    free(left);
}

/* Node names of the cluster, from sinfo (one string, space separated). */
static inline char *world_nodes(void)
{
    return sh("sinfo -h -N -o %%N | sort -u | tr '\\n' ' ' | sed 's/ $//'");
}

/* Fill names[] (at most max, each the caller's to free) with the cluster's
 * nodes; fails the test unless there are at least 3. */
static inline int world_node_names(char *names[], int max)
{
    char *list = world_nodes(), *save = NULL;
    int n = 0;

    ck_assert_ptr_nonnull(list);
    for (char *w = strtok_r(list, " ", &save); w && n < max; w = strtok_r(NULL, " ", &save))
        names[n++] = strdup(w);
    free(list);
    ck_assert_int_ge(n, 3);
    return n;
}

#endif
