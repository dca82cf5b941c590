/* bench_oci_hook: the run time of isthmus-oci-hook as a container runtime
 * sees it, from the fork that starts it with the OCI state on its stdin to
 * its exit with the cpuset written, on a real cgroup of this kernel.
 *
 *   bench_oci_hook HOOK [N]      (root; cgroup v1 cpuset, or v2 with cpuset)
 *   bench_oci_hook --wrap LOG HOOK ARG...
 *
 * The container is played by a child parked in a cgroup made for the
 * bench (the cpuset v1 hierarchy, else a cgroup2 child with the cpuset
 * controller); no runtime runs, so the figure is the hook alone.  Runs
 * alternate between the first online cpu and every online cpu, so each
 * one changes cpuset.cpus; memory nodes are the online ones.  Prints p50,
 * p99 and the largest time of N runs (default 500); the first 10 runs
 * warm the caches and are not counted.
 *
 * With --wrap it is itself the hook a runtime runs (tests/bench/
 * oci_hook_runc.sh puts it in runc's createRuntime hooks): it runs HOOK
 * with ARG... (ARG[0] its argv[0]) on the same stdin, so HOOK reads the
 * runtime's own OCI state and writes the real container's cgroup, appends
 * the seconds from fork to exit as a line to LOG and exits as HOOK did.
 */
#include <config.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define WARMUP 10

static char cgdir[256];

/* The first line of PATH, without its newline, in buf. */
static int read_line(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    int ok = f && fgets(buf, (int)size, f) != NULL;

    if (f)
        fclose(f);
    if (!ok)
        return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "w")))
        return -1;
    rc = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) != 0 ? -1 : rc;
}

/* Make the bench's cgroup: v1 when the cpuset hierarchy is mounted at the
 * usual place, else v2 when the root hands the cpuset controller down. */
static int make_cgroup(const char *cpus, const char *mems)
{
    char ctl[512];

    if (access("/sys/fs/cgroup/cpuset/cpuset.cpus", F_OK) == 0) {
        snprintf(cgdir, sizeof(cgdir), "/sys/fs/cgroup/cpuset/isthmus-bench-%ld", (long)getpid());
        if (mkdir(cgdir, 0755) < 0)
            return -1;
        /* A v1 cpuset takes no task before it has cpus and memory nodes. */
        return write_file(cgdir, "cpuset.mems", mems) < 0 ||
                       write_file(cgdir, "cpuset.cpus", cpus) < 0
                   ? -1
                   : 0;
    }
    if (read_line("/sys/fs/cgroup/cgroup.subtree_control", ctl, sizeof(ctl)) < 0 ||
        !strstr(ctl, "cpuset")) {
        errno = ENOTSUP;
        return -1;
    }
    snprintf(cgdir, sizeof(cgdir), "/sys/fs/cgroup/isthmus-bench-%ld", (long)getpid());
    return mkdir(cgdir, 0755);
}

/* Run the hook once for the container PID; the seconds it took, or -1. */
static double run_hook(const char *hook, pid_t pid, const char *cpus, const char *mems)
{
    char state[256], a_cpus[160], a_mems[160];
    int fds[2], status, n;
    double t0, t1;
    pid_t child;

    n = snprintf(state, sizeof(state),
                 "{\"ociVersion\":\"1.0.2\",\"id\":\"bench\",\"status\":\"created\","
                 "\"pid\":%ld,\"bundle\":\"/nonexistent\"}",
                 (long)pid);
    snprintf(a_cpus, sizeof(a_cpus), "--cpus=%s", cpus);
    snprintf(a_mems, sizeof(a_mems), "--mems=%s", mems);
    if (pipe(fds) < 0)
        return -1;
    t0 = now();
    if ((child = fork()) < 0)
        return -1;
    if (child == 0) {
        dup2(fds[0], STDIN_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(hook, "isthmus-oci-hook", a_cpus, a_mems, "--claim=bench", (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    if (write(fds[1], state, (size_t)n) != n)
        perror("bench_oci_hook: writing the state");
    close(fds[1]);
    if (waitpid(child, &status, 0) < 0)
        return -1;
    t1 = now();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_oci_hook: the hook failed (status %d)\n", status);
        return -1;
    }
    return t1 - t0;
}

static int wrap(int argc, char **argv)
{
    int status;
    double t0;
    pid_t child;
    FILE *log;

    if (argc < 5) {
        fprintf(stderr, "usage: bench_oci_hook --wrap LOG HOOK ARG...\n");
        return 2;
    }
    t0 = now();
    if ((child = fork()) < 0)
        return 1;
    if (child == 0) {
        execv(argv[3], argv + 4);
        _exit(127);
    }
    if (waitpid(child, &status, 0) < 0)
        return 1;
    t0 = now() - t0;
    if ((log = fopen(argv[2], "a"))) {
        fprintf(log, "%.9f\n", t0);
        fclose(log);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[(int)(p * (n - 1))];
}

int main(int argc, char **argv)
{
    const char *hook = argc > 1 ? argv[1] : NULL;
    int n = argc > 2 ? atoi(argv[2]) : 500, i, rc = 1;
    char online[128], nodes[128], first[32], got[128], pidtext[32], path[512];
    double *t = NULL, p50, p99;
    pid_t parked = -1;

    if (hook && strcmp(hook, "--wrap") == 0)
        return wrap(argc, argv);
    if (!hook || n < 2) {
        fprintf(stderr, "usage: bench_oci_hook HOOK [N]\n");
        return 2;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "bench_oci_hook: needs root (it makes a cgroup)\n");
        return 77;
    }
    if (read_line("/sys/devices/system/cpu/online", online, sizeof(online)) < 0)
        return 1;
    if (read_line("/sys/devices/system/node/online", nodes, sizeof(nodes)) < 0)
        snprintf(nodes, sizeof(nodes), "0");
    snprintf(first, sizeof(first), "%.*s", (int)strcspn(online, "-,"), online);
    if (make_cgroup(online, nodes) < 0) {
        fprintf(stderr, "bench_oci_hook: no cpuset cgroup to use: %s\n", strerror(errno));
        return 77;
    }
    if (!(t = calloc((size_t)n, sizeof(*t))))
        goto out;
    if ((parked = fork()) == 0) {
        pause();
        _exit(0);
    }
    snprintf(pidtext, sizeof(pidtext), "%ld\n", (long)parked);
    if (parked < 0 || write_file(cgdir, "cgroup.procs", pidtext) < 0) {
        fprintf(stderr, "bench_oci_hook: %s: cannot move a process in: %s\n", cgdir, strerror(errno));
        goto out;
    }
    for (i = -WARMUP; i < n; i++) {
        double s = run_hook(hook, parked, i % 2 ? online : first, nodes);

        if (s < 0)
            goto out;
        if (i >= 0)
            t[i] = s;
    }
    /* The last run asked for (n - 1) % 2 ? online : first. */
    snprintf(path, sizeof(path), "%s/cpuset.cpus", cgdir);
    if (read_line(path, got, sizeof(got)) < 0 || strcmp(got, (n - 1) % 2 ? online : first)) {
        fprintf(stderr, "bench_oci_hook: cpuset.cpus is '%s' after the last run\n", got);
        goto out;
    }
    p50 = pct(t, n, 0.5);
    p99 = pct(t, n, 0.99);
    printf("isthmus-oci-hook, fork to exit, cpuset written (%s cgroup, cpus %s <-> %s, mems %s):\n"
           "  p50 %.3f ms  p99 %.3f ms  max %.3f ms  (n=%d)\n",
           strstr(cgdir, "/cpuset/") ? "v1 cpuset" : "v2", first, online, nodes, p50 * 1e3,
           p99 * 1e3, t[n - 1] * 1e3, n);
    rc = 0;
out:
    if (parked > 0) {
        kill(parked, SIGKILL);
        waitpid(parked, NULL, 0);
    }
    if (cgdir[0])
        rmdir(cgdir);
    free(t);
    return rc;
}
