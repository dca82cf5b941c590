/* bench_kube [N]: the Kubernetes client against the real API server of a
 * test world (ISTHMUS_K8S_DIR; `make -C tests/bench bench-kube` starts one).
 *
 * Creates N ConfigMaps (default 10000) in a fresh namespace at unlimited
 * QPS, then fills an informer's cache from them (list + watch) and reports:
 * creates per second, sync wall time, RSS before and after and per cached
 * object, peak RSS, and, as a reference measured in the same run, the wall
 * time of `kubectl get configmaps -o json` for the same list.  Figures go in
 * issue notes; nothing here is a test.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/kube/kube_watch.h"
#include "tests/kube/world.h"

static const ism_kube_resource_t CONFIGMAPS = { "", "v1", "configmaps", true };
static const ism_kube_resource_t NAMESPACES = { "", "v1", "namespaces", false };

static long rss_kib(const char *field)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = atol(line + strlen(field));
    if (f)
        fclose(f);
    return v;
}

static void die(const char *what, const ism_error_t *err)
{
    fprintf(stderr, "bench_kube: %s: %s\n", what, err->text);
    exit(1);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    ism_kube_options_t o = ISM_KUBE_OPTIONS_DEFAULT;
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_config_t *cfg = world_config("admin");
    char ns[64], cmd[1024];
    ism_kube_t *k;

    if (!cfg || n <= 0)
        return 2;
    o.qps = 0;
    if (!(k = ism_kube_create(cfg, &o, &err)))
        die("client", &err);
    snprintf(ns, sizeof(ns), "bench-%d", (int)getpid());
    json_t *nso = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                            "metadata", "name", ns);
    if (ism_kube_create_object(k, &NAMESPACES, NULL, nso, NULL, NULL, &err) < 0)
        die("namespace", &err);
    json_decref(nso);

    int64_t t0 = ism_kube_now_ms();
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "cm-%05d", i);
        json_t *cm = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:s}}", "apiVersion", "v1",
                               "kind", "ConfigMap", "metadata", "name", name, "labels", "bench",
                               "yes", "data", "node", name, "cores", "0-47,96-143");
        if (ism_kube_create_object(k, &CONFIGMAPS, ns, cm, NULL, NULL, &err) < 0)
            die("create", &err);
        json_decref(cm);
    }
    int64_t t1 = ism_kube_now_ms();
    printf("creates           %6d in %.1f s: %.0f per second (one connection, sequential)\n", n,
           (t1 - t0) / 1000.0, n * 1000.0 / (double)(t1 - t0));

    long before = rss_kib("VmRSS:");
    ism_kube_informer_t *inf = ism_kube_informer_create(k, &CONFIGMAPS, ns, NULL, NULL, NULL,
                                                        NULL, &err);
    if (!inf)
        die("informer", &err);
    int64_t t2 = ism_kube_now_ms();
    while (!ism_kube_informer_synced(inf))
        if (ism_kube_run(k, NULL, 0, 100, &err) < 0)
            die("loop", &err);
    int64_t t3 = ism_kube_now_ms();
    long after = rss_kib("VmRSS:");
    size_t cached = json_object_size(ism_kube_informer_cache(inf));
    printf("list+watch sync   %6zu objects in %lld ms\n", cached, (long long)(t3 - t2));
    printf("RSS               %6ld KiB before, %ld KiB after: %.2f KiB per cached object\n",
           before, after, (double)(after - before) / (double)(cached ? cached : 1));
    printf("peak RSS          %6ld KiB\n", rss_kib("VmHWM:"));

    snprintf(cmd, sizeof(cmd), "'%s/kubectl' --kubeconfig='%s/admin.kubeconfig' -n %s get "
             "configmaps -o json >/dev/null", getenv("KUBECTL_DIR") ? getenv("KUBECTL_DIR") : "",
             getenv("ISTHMUS_K8S_DIR"), ns);
    int64_t t4 = ism_kube_now_ms();
    int rc = getenv("KUBECTL_DIR") ? system(cmd) : -1;
    int64_t t5 = ism_kube_now_ms();
    if (rc == 0)
        printf("kubectl get -o json (reference)  %lld ms\n", (long long)(t5 - t4));

    ism_kube_informer_destroy(inf);
    ism_kube_delete(k, &NAMESPACES, NULL, ns, NULL, NULL, NULL, NULL);
    ism_kube_destroy(k);
    return 0;
}
