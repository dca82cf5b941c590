/* leader_candidate IDENTITY LEASE CONFIGMAP: one candidate of the leader
 * election test (tests/kube/test_leader.sh), on the test world.
 *
 * Campaigns for Lease LEASE in namespace $ISTHMUS_TEST_NS with short
 * periods (lease 4 s, renew deadline 3 s, retry 0.5 s: client-go's ratios),
 * and every 100 ms tries to write ConfigMap CONFIGMAP.  Prints one line per
 * fact, with the wall clock in ms so the test can order two candidates'
 * lines:  "<ms> leading", "<ms> stopped", "<ms> following",
 * "<ms> write <n> ok", "<ms> write <n> <reason>" when refused or failed.
 */
#include <config.h>

#include <stdio.h>
#include <sys/time.h>

#include "lib/kube/kube_leader.h"
#include "tests/kube/world.h"

static const ism_kube_resource_t CONFIGMAPS = { "", "v1", "configmaps", true };

static long long wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void say(const char *what)
{
    printf("%lld %s\n", wall_ms(), what);
    fflush(stdout);
}

static void started(void *arg)
{
    (void)arg;
    say("leading");
}

static void stopped(void *arg)
{
    (void)arg;
    say("stopped");
}

int main(int argc, char **argv)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_config_t *cfg = world_config("admin");
    const char *ns = getenv("ISTHMUS_TEST_NS");
    ism_kube_t *k;
    ism_kube_leader_t *le;

    if (argc != 4 || !cfg || !ns) {
        fprintf(stderr, "usage: ISTHMUS_K8S_DIR=.. ISTHMUS_TEST_NS=.. %s IDENTITY LEASE CONFIGMAP\n",
                argv[0]);
        return 2;
    }
    if (!(k = ism_kube_create(cfg, NULL, &err))) {
        fprintf(stderr, "%s\n", err.text);
        return 1;
    }
    ism_kube_leader_options_t o = { ns, argv[2], argv[1], 4000, 3000, 500,
                                    started, stopped, NULL };
    if (!(le = ism_kube_leader_create(k, &o, &err))) {
        fprintf(stderr, "%s\n", err.text);
        return 1;
    }
    bool said_following = false;
    int64_t next_write = ism_kube_now_ms(), begin = next_write;
    for (unsigned long n = 0;; ) {
        if (ism_kube_run(k, NULL, 0, 50, &err) < 0) {
            fprintf(stderr, "%s\n", err.text);
            return 1;
        }
        /* Three rounds without the lease: another holds it. */
        if (!said_following && !ism_kube_leader_is_leader(le) &&
            ism_kube_now_ms() > begin + 3 * o.retry_ms) {
            say("following");
            said_following = true;
        }
        if (ism_kube_now_ms() < next_write || !ism_kube_leader_is_leader(le))
            continue;
        next_write = ism_kube_now_ms() + 100;
        char line[64], seq[32];
        snprintf(seq, sizeof(seq), "%lu", ++n);
        json_t *patch = json_pack("{s:{s:s, s:s}}", "data", "holder", argv[1], "seq", seq);
        ism_kube_status_t st;
        int rc = ism_kube_patch(k, &CONFIGMAPS, ns, argv[3], NULL, ISM_KUBE_PATCH_MERGE, patch,
                                NULL, NULL, &st, NULL);
        snprintf(line, sizeof(line), "write %lu %s", n, rc == 0 ? "ok" : ism_kube_reason_name(st.reason));
        say(line);
        json_decref(patch);
    }
}
