/* bench_dra: the kubelet plugin's prepare without the API read, for a
 * claim of 32 cores on a 64-core, 4-NUMA-node synthetic machine: parse
 * the claim, map cores to cpus and nodes, write the CDI spec and the
 * checkpoint (each fsync'ed), as a new claim each time; and prepare of a
 * claim already prepared (the kubelet's retries, a restarted plugin).
 * Each claim is unprepared before the next, so the checkpoint holds one
 * claim at most; then N more claims are prepared and kept, so the
 * checkpoint, rewritten whole by each prepare, grows to N claims.
 *
 *   bench_dra [DIR] [N]     DIR: where specs and checkpoint go (a temp dir)
 */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "dra/node.h"
#include "lib/topology/topology.h"

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[(int)(p * (n - 1))];
}

int main(int argc, char **argv)
{
    char tmpl[] = "/tmp/bench_dra.XXXXXX", state[512], cdi[512], uid[64], cmd[600];
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    int n = argc > 2 ? atoi(argv[2]) : 300, i, k;
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *topo = ism_topo_from_synthetic("pack:2 numa:2 core:16 pu:2", &err);
    double *fresh = calloc((size_t)n, sizeof(double)), *again = calloc((size_t)n, sizeof(double));
    double *kept = calloc((size_t)n, sizeof(double)), tail;
    struct ism_node_opts o = { state, cdi, "/usr/sbin/isthmus-oci-hook", ISM_DRA_DRIVER, "n1", NULL };
    char results[8192] = "", *json;
    const struct ism_prepared *p;
    ism_node_t *node;

    if (!dir || !topo || !fresh || !again || !kept || n < 2) {
        fprintf(stderr, "bench_dra: %s\n", err.text[0] ? err.text : "setup failed");
        return 1;
    }
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(cdi, sizeof(cdi), "%s/cdi", dir);
    o.topo = topo;
    if (!(node = ism_node_create(&o, &err))) {
        fprintf(stderr, "bench_dra: %s\n", err.text);
        return 1;
    }
    for (k = 0; k < 32; k++)
        snprintf(results + strlen(results), sizeof(results) - strlen(results),
                 "%s{\"request\":\"cpus\",\"driver\":\"cpu.isthmus.io\",\"pool\":\"n1\","
                 "\"device\":\"core-%d\"}", k ? "," : "", k * 2);
    for (i = 0; i < 2 * n; i++) {
        double t0;

        snprintf(uid, sizeof(uid), "bench-%08d-0000-0000-0000-000000000000", i);
        if (asprintf(&json, "{\"metadata\":{\"name\":\"c\",\"namespace\":\"ns\",\"uid\":\"%s\"},"
                            "\"status\":{\"allocation\":{\"devices\":{\"results\":[%s]}}}}",
                     uid, results) < 0)
            return 1;
        t0 = now();
        if (ism_node_prepare(node, "ns", "c", uid, json, strlen(json), &p, &err) < 0) {
            fprintf(stderr, "bench_dra: %s\n", err.text);
            return 1;
        }
        if (i >= n) {
            /* Kept: the checkpoint now holds i - n + 1 claims. */
            kept[i - n] = now() - t0;
            free(json);
            continue;
        }
        fresh[i] = now() - t0;
        t0 = now();
        if (ism_node_prepare(node, "ns", "c", uid, NULL, 0, &p, &err) < 0) {
            fprintf(stderr, "bench_dra: %s\n", err.text);
            return 1;
        }
        again[i] = now() - t0;
        if (ism_node_unprepare(node, uid, &err) < 0) {
            fprintf(stderr, "bench_dra: %s\n", err.text);
            return 1;
        }
        free(json);
    }
    printf("prepare, new claim of 32 cores (no API read): p50 %.3f ms  p99 %.3f ms  (n=%d)\n",
           pct(fresh, n, 0.5) * 1e3, pct(fresh, n, 0.99) * 1e3, n);
    printf("prepare, claim already prepared:              p50 %.3f ms  p99 %.3f ms\n",
           pct(again, n, 0.5) * 1e3, pct(again, n, 0.99) * 1e3);
    /* The last tenth first, while kept[] is in order of checkpoint size. */
    tail = pct(kept + n - n / 10, n / 10 > 0 ? n / 10 : 1, 0.5);
    printf("prepare, new claim, 0 to %d claims kept:     p50 %.3f ms  p99 %.3f ms  "
           "(p50 of the last tenth %.3f ms)\n",
           n - 1, pct(kept, n, 0.5) * 1e3, pct(kept, n, 0.99) * 1e3, tail * 1e3);
    ism_node_destroy(node);
    ism_topo_destroy(topo);
    free(fresh);
    free(again);
    free(kept);
    if (argc <= 1) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : 1;
    }
    return 0;
}
