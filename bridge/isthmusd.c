/* isthmusd - the bridge daemon: Slurm nodes' cores as ResourceSlices,
 * Slurm jobs as allocated ResourceClaims (see isthmusd(8)).
 *
 * This file is the process: options, config, daemonizing, the pidfile,
 * signals, the HTTP endpoints and the event loop.  bridge.c holds the
 * state the loop works on.
 */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"
#include "http.h"
#include "lib/util/log.h"
#include "metrics.h"
#include "lib/util/settings.h"
#include "lib/slurm/slurm_conf.h"

struct daemon {
    const char *config_path;   /* --config, or NULL for the default */
    ism_config_t *cfg;
    struct bridge b;
    ism_http_t *http;
    int sigfd;
    int pidfd;
    const char *pidfile;
};

/* ------------------------------------------------------------ options */

static void usage(FILE *f)
{
    fprintf(f, "Usage: isthmusd [OPTIONS]\n\n"
               "Publish every Slurm node's cores as DRA ResourceSlices and mirror Slurm\n"
               "jobs as allocated ResourceClaims.  See isthmusd(8).\n\n"
               "  -f, --foreground     stay in the foreground, log to stderr\n"
               "  -c, --config FILE    read FILE instead of %s\n"
               "      --check-config   check the config file and exit\n"
               "  -h, --help           this text\n"
               "  -V, --version        the version\n",
            ISM_CONF_DEFAULT_PATH);
}

struct options {
    bool foreground, check;
    const char *config;
};

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        { "foreground", no_argument, NULL, 'f' }, { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 'C' }, { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "fc:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': o->foreground = true; break;
        case 'c': o->config = optarg; break;
        case 'C': o->check = true; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("isthmusd %s\n", PACKAGE_VERSION); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "isthmusd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ process */

/* Fork into the background.  The parent waits on a pipe until the child
 * says it started (0) or failed (its message), so the exit status of
 * `isthmusd` tells an init system the truth.  Returns the pipe's write end
 * in the child. */
static int daemonize(void)
{
    int p[2];
    pid_t pid;
    char msg[512];
    ssize_t n;

    if (pipe(p) < 0 || (pid = fork()) < 0) {
        perror("isthmusd: fork");
        exit(1);
    }
    if (pid > 0) {
        close(p[1]);
        n = read(p[0], msg, sizeof(msg) - 1);
        if (n == 1 && msg[0] == '\0')
            exit(0);
        msg[n > 0 ? n : 0] = '\0';
        fprintf(stderr, "isthmusd: %s\n", n > 0 ? msg : "failed to start (see the log)");
        exit(1);
    }
    close(p[0]);
    if (setsid() < 0 || chdir("/") < 0)
        exit(1);
    if ((pid = fork()) < 0)
        exit(1);
    if (pid > 0)
        _exit(0); /* not a session leader: never gets a terminal again */
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
    umask(022);
    return p[1];
}

static void tell_parent(int fd, const char *msg)
{
    size_t n = *msg ? strlen(msg) : 1; /* one NUL byte means "started" */

    if (fd < 0)
        return;
    if (write(fd, msg, n < 511 ? n : 511) < 0)
        ism_log_debug("cannot tell the parent process");
    close(fd);
}

/* Take the pidfile: locked while we run, so a second isthmusd with the
 * same pidfile refuses to start instead of fighting the first. */
static int take_pidfile(struct daemon *d, ism_error_t *err)
{
    char buf[32];
    int fd, n;

    d->pidfd = -1;
    if (!d->pidfile || !*d->pidfile)
        return 0;
    if ((fd = open(d->pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
        return ism_err(err, errno, "pidfile %s: %s", d->pidfile, strerror(errno));
    if (lockf(fd, F_TLOCK, 0) < 0) {
        n = (int)read(fd, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        close(fd);
        return ism_err(err, EEXIST, "pidfile %s is held: isthmusd already runs as pid %s",
                       d->pidfile, *buf ? buf : "?");
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)n) != n) {
        ism_err(err, errno, "pidfile %s: %s", d->pidfile, strerror(errno));
        close(fd);
        return -1;
    }
    d->pidfd = fd;
    return 0;
}

static void drop_pidfile(struct daemon *d)
{
    if (d->pidfd < 0)
        return;
    unlink(d->pidfile);
    close(d->pidfd);
    d->pidfd = -1;
}

/* Signals arrive on a descriptor the loop polls: nothing runs in a
 * handler, and a signal never interrupts a request half way. */
static int take_signals(struct daemon *d, ism_error_t *err)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
        (d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
        return ism_err(err, errno, "signals: %s", strerror(errno));
    return 0;
}

/* SIGHUP: read the file again.  LogLevel takes effect; any other key that
 * changed is reported and keeps its value until a restart, since it shapes
 * connections and caches built at start. */
static void reload(struct daemon *d)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_config_t *fresh = ism_settings_load(d->config_path, &err);
    enum ism_log_level level;

    if (!fresh) {
        ism_log_error("SIGHUP: %s; keeping the running configuration", err.text);
        return;
    }
    for (const struct ism_config_key *k = ism_settings_schema; k->name; k++) {
        const char *was = ism_config_get(d->cfg, k->name), *now = ism_config_get(fresh, k->name);
        if ((was == NULL) == (now == NULL) && (!was || strcmp(was, now) == 0))
            continue;
        if (strcmp(k->name, "LogLevel") == 0)
            continue;
        ism_log_warn("SIGHUP: %s changed (%s -> %s): takes effect at the next restart", k->name,
                     was ? was : "unset", now ? now : "unset");
    }
    if (ism_log_level_parse(ism_config_get(fresh, "LogLevel"), &level, NULL) == 0) {
        ism_log_set_level(level);
        ism_log_notice("SIGHUP: configuration read again, LogLevel=%s", ism_log_level_name(level));
    }
    ism_config_destroy(fresh);
}

static void handle_signals(struct daemon *d)
{
    struct signalfd_siginfo si;

    while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            reload(d);
        } else if (!d->b.stopping) {
            ism_log_notice("signal %u: stopping", si.ssi_signo);
            d->b.stopping = true;
        }
    }
}

/* ------------------------------------------------------------ HTTP */

static bool healthy(void *arg, char *why, size_t n)
{
    struct daemon *d = arg;
    if (d->b.stopping) {
        snprintf(why, n, "stopping");
        return false;
    }
    return true;
}

static bool ready(void *arg, char *why, size_t n)
{
    struct daemon *d = arg;
    int64_t failing = bridge_failing_ms(&d->b);
    if (failing > ism_config_get_int(d->cfg, "ReadyFailingTime") * 1000) {
        snprintf(why, n, "the Kubernetes API server has been failing for %lld s",
                 (long long)(failing / 1000));
        return false;
    }
    if (!bridge_synced(&d->b)) {
        snprintf(why, n, "Kubernetes caches not synced");
        return false;
    }
    if (!d->b.snodes) {
        snprintf(why, n, "Slurm has not answered yet");
        return false;
    }
    return true;
}

/* The informers' counters, one metric name at a time (ism_metric wants
 * the samples of a name together), labelled with the resource. */
static void informer_metrics(ism_metrics_t *m, const struct bridge *b)
{
    static const char *const names[3] = { "nodes", "resourceslices", "resourceclaims" };
    static const struct {
        const char *name, *type, *help;
    } rows[] = {
        { "isthmus_informer_synced", "gauge", "1 while the cache holds a whole list." },
        { "isthmus_informer_failing_seconds", "gauge", "How long lists or watches have failed." },
        { "isthmus_informer_lists_total", "counter", "Lists done." },
        { "isthmus_informer_watches_total", "counter", "Watches started." },
        { "isthmus_informer_events_total", "counter", "Watch events applied." },
        { "isthmus_informer_gone_total", "counter", "410 Gone answers that forced a relist." },
        { "isthmus_informer_errors_total", "counter", "Lists and watches that failed." },
    };
    const ism_kube_informer_t *inf[3] = { b->nodes, slices_informer(b->slices),
                                          mirror_informer(b->mirror) };
    ism_kube_informer_stats_t s[3];

    for (int i = 0; i < 3; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        ism_kube_informer_stats(inf[i], &s[i]);
    }
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        for (int i = 0; i < 3; i++) {
            double v[] = { ism_kube_informer_synced(inf[i]) ? 1 : 0,
                           (double)ism_kube_informer_failing_ms(inf[i]) / 1000.0,
                           (double)s[i].lists, (double)s[i].watches, (double)s[i].events,
                           (double)s[i].gone, (double)s[i].errors };
            char labels[64];
            snprintf(labels, sizeof(labels), "resource=\"%s\"", names[i]);
            ism_metric(m, rows[r].name, rows[r].type, rows[r].help, labels, v[r]);
        }
    }
}

/* The gang scheduler's figures (none with Gangs=no). */
static void gang_metrics(ism_metrics_t *m, const struct bridge *b)
{
    struct gangs_stats st;
    char label[32];

    if (!b->gangs)
        return;
    gangs_stats(b->gangs, &st);
    const struct {
        const char *phase;
        uint64_t count;
    } phases[] = {
        { "waiting", st.waiting }, { "pending", st.pending }, { "committing", st.committing },
        { "bound", st.bound },     { "failed", st.failed },
    };
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        snprintf(label, sizeof(label), "phase=\"%s\"", phases[i].phase);
        ism_metric(m, "isthmus_gangs", "gauge",
                   "Gangs by phase: waiting for members, pending in Slurm (or being "
                   "submitted), committing (or undoing), bound, failed.",
                   label, (double)phases[i].count);
    }
    ism_metric(m, "isthmus_gangs_submitted_total", "counter", "Gang jobs Slurm accepted.", NULL,
               (double)st.submitted_total);
    ism_metric(m, "isthmus_gangs_bound_total", "counter", "Gangs bound whole.", NULL,
               (double)st.bound_total);
    ism_metric(m, "isthmus_gangs_failed_total", "counter",
               "Gangs refused (by Slurm, or asking what isthmus does not serve).", NULL,
               (double)st.failed_total);
    ism_metric(m, "isthmus_gangs_refused_total", "counter",
               "Gang submissions the GangPolicy or a partition's MaxTime refused (never sent to "
               "Slurm).",
               NULL, (double)st.refused_total);
    ism_metric(m, "isthmus_gangs_ended_total", "counter",
               "Gang jobs Slurm ended under running pods (scancel, time limit, node failure).",
               NULL, (double)st.ended_total);
    ism_metric_histogram(m, "isthmus_gang_bind_seconds",
                         "Seconds from a gang's last member seen to its last pod bound.",
                         gang_latency_bounds, st.latency_counts, GANG_LATENCY_BUCKETS,
                         st.latency_sum, st.latency_count);
}

static int metrics(void *arg, ism_metrics_t *m)
{
    struct daemon *d = arg;
    struct bridge *b = &d->b;
    ism_kube_stats_t ks;
    uint64_t lease = ism_kube_leader_writes(b->leader), pools, no_topo, jobs, claims;

    ism_kube_stats(b->kube, &ks);
    slices_stats(b->slices, &pools, &no_topo);
    mirror_stats(b->mirror, &jobs, &claims);
    ism_metric(m, "isthmus_kube_requests_total", "counter",
               "Requests sent to the API server, retries and watches included.", NULL,
               (double)ks.requests);
    ism_metric(m, "isthmus_kube_writes_total", "counter",
               "Write requests for objects isthmusd manages (Lease writes not included).", NULL,
               (double)(ks.writes - lease));
    ism_metric(m, "isthmus_kube_lease_writes_total", "counter",
               "Lease writes of leader election.", NULL, (double)lease);
    ism_metric(m, "isthmus_kube_retries_total", "counter", "Requests retried.", NULL,
               (double)ks.retries);
    ism_metric(m, "isthmus_kube_failures_total", "counter", "Requests that failed in the end.",
               NULL, (double)ks.failures);
    ism_metric(m, "isthmus_leader", "gauge", "1 while this replica may write.", NULL,
               bridge_may_write(b) ? 1 : 0);
    ism_metric(m, "isthmus_slurm_polls_total", "counter", "Reads of Slurm nodes and jobs.", NULL,
               (double)b->slurm_polls);
    ism_metric(m, "isthmus_slurm_poll_errors_total", "counter", "Reads of Slurm that failed.",
               NULL, (double)b->slurm_poll_errors);
    ism_metric(m, "isthmus_nodes", "gauge", "Slurm nodes in the last answer.", NULL,
               b->snodes ? b->snodes->count : 0);
    ism_metric(m, "isthmus_pools", "gauge", "Pools with ResourceSlices of cpu.isthmus.io.", NULL,
               (double)pools);
    ism_metric(m, "isthmus_nodes_without_topology", "gauge",
               "Slurm nodes without a usable topology in their Extra field.", NULL,
               (double)no_topo);
    ism_metric(m, "isthmus_mirrored_jobs", "gauge", "Slurm jobs mirrored as ResourceClaims.",
               NULL, (double)jobs);
    ism_metric(m, "isthmus_mirrored_claims", "gauge", "ResourceClaims mirroring Slurm jobs.",
               NULL, (double)claims);
    ism_metric(m, "isthmus_reconcile_errors_total", "counter",
               "Reconciles that failed and were retried later.", NULL,
               (double)b->reconcile_errors);
    ism_metric(m, "isthmus_kube_calls_in_flight", "gauge",
               "Kubernetes requests queued or in flight.", NULL, (double)ism_kube_calls(b->kube));
    ism_metric(m, "isthmus_kube_failing_seconds", "gauge",
               "How long the API server has been failing (0: it answers).", NULL,
               (double)bridge_failing_ms(b) / 1000.0);
    informer_metrics(m, b);
    ism_kube_recorder_stats_t rs = { 0 };
    ism_kube_recorder_stats(b->events, &rs);
    ism_metric(m, "isthmus_events_recorded_total", "counter", "Events recorded.", NULL,
               (double)rs.recorded);
    ism_metric(m, "isthmus_events_created_total", "counter", "Event objects created.", NULL,
               (double)rs.created);
    ism_metric(m, "isthmus_events_series_total", "counter", "Event series updates written.",
               NULL, (double)rs.series);
    ism_metric(m, "isthmus_events_dropped_total", "counter",
               "Events refused by the per-object limit.", NULL, (double)rs.dropped);
    ism_metric(m, "isthmus_events_failed_total", "counter", "Event writes that failed.", NULL,
               (double)rs.failed);
    gang_metrics(m, b);
    return 0;
}

/* ------------------------------------------------------------ main */

static int start(struct daemon *d, ism_error_t *err)
{
    ism_http_handlers_t h = { .healthy = healthy, .ready = ready, .metrics = metrics, .arg = d };

    d->pidfile = ism_config_get(d->cfg, "PidFile");
    if (take_pidfile(d, err) < 0 || take_signals(d, err) < 0)
        return -1;
    if (bridge_create(&d->b, d->cfg, err) < 0)
        return -1;
    if (!(d->http = ism_http_create(ism_config_get(d->cfg, "HttpListen"), &h, err)))
        return ism_errprefix(err, "HttpListen");
    ism_log_notice("isthmusd %s started: HTTP on port %d, Slurm poll every %lld s, namespace %s",
                   PACKAGE_VERSION, ism_http_port(d->http),
                   ism_config_get_int(d->cfg, "SlurmPollInterval"), d->b.ns);
    return 0;
}

static int run(struct daemon *d)
{
    ism_error_t err = ISM_ERROR_INIT;
    int wait = 0;

    while (!d->b.stopping) {
        struct pollfd fds[3] = {
            { .fd = d->sigfd, .events = POLLIN },
            { .fd = ism_slurm_agent_fd(d->b.slurm), .events = POLLIN },
            { .fd = ism_http_fd(d->http), .events = POLLIN },
        };
        int http_wait = ism_http_timeout_ms(d->http);
        if (http_wait >= 0 && (wait < 0 || http_wait < wait))
            wait = http_wait;
        if (ism_kube_run(d->b.kube, fds, 3, wait, &err) < 0) {
            ism_log_error("event loop: %s", err.text);
            return -1;
        }
        if (fds[0].revents)
            handle_signals(d);
        ism_http_run(d->http);
        wait = bridge_work(&d->b);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    struct daemon d = { .sigfd = -1, .pidfd = -1 };
    ism_error_t err = ISM_ERROR_INIT;
    enum ism_log_level level;
    int parent = -1, rc = 1;

    if (parse_options(argc, argv, &o) < 0)
        return 2;
    d.config_path = o.config;
    if (!(d.cfg = ism_settings_load(o.config, &err))) {
        fprintf(stderr, "isthmusd: %s\n", err.text);
        return 1;
    }
    /* Before anything reaches libslurm, which would retry for a minute and
     * then exit through its fatal(). */
    if (ism_slurm_conf_check(ism_config_get(d.cfg, "SlurmConf"), NULL, 0, &err) < 0) {
        fprintf(stderr, "isthmusd: %s\n", err.text);
        ism_config_destroy(d.cfg);
        return 4;
    }
    if (o.check) {
        printf("isthmusd: configuration is valid\n");
        ism_config_destroy(d.cfg);
        return 0;
    }
    ism_log_level_parse(ism_config_get(d.cfg, "LogLevel"), &level, NULL);
    if (!o.foreground)
        parent = daemonize();
    ism_log_open("isthmusd", level, o.foreground ? ISM_LOG_STDERR : ISM_LOG_SYSLOG);
    if (start(&d, &err) < 0) {
        ism_log_error("%s", err.text);
        tell_parent(parent, err.text);
    } else {
        tell_parent(parent, "");
        rc = run(&d) < 0 ? 1 : 0;
    }
    ism_http_destroy(d.http);
    bridge_destroy(&d.b);
    if (d.sigfd >= 0)
        close(d.sigfd);
    drop_pidfile(&d);
    ism_config_destroy(d.cfg);
    ism_log_notice("stopped");
    ism_log_close();
    return rc;
}
