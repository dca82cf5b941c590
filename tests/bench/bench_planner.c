/* Benchmark: the planner on a big node, and the topology cache against
 * hwloc on this machine.
 *
 *   bench_planner [XML [ROUNDS]]
 *
 * Prints the median time per operation over ROUNDS runs.  Not a test: the
 * figures go in issue notes, next to the command line.
 */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "lib/topology/planner.h"
#include "lib/topology/topology_cache.h"

static double median_us(double *v, int n)
{
    return median(v, n) * 1e6;
}

static int plan_bench(const ism_topo_t *topo, const ism_bitmap_t *all, int consumers, int cpt,
                      enum ism_layout layout, double *t, int rounds)
{
    struct ism_plan_request req = { all, consumers, cpt, layout, ISM_MEM_LOCAL };
    ism_error_t err = ISM_ERROR_INIT;

    for (int i = 0; i < rounds; i++) {
        double t0 = now();
        ism_plan_t *plan = ism_plan_create(topo, &req, &err);
        t[i] = now() - t0;
        if (!plan) {
            fprintf(stderr, "bench_planner: %s\n", err.text);
            return -1;
        }
        ism_plan_destroy(plan);
    }
    printf("plan %d cores, %d consumers x %d cpus, %s: %.1f us\n", ism_bitmap_count(all), consumers,
           cpt, ism_layout_name(layout), median_us(t, rounds));
    return 0;
}

int main(int argc, char **argv)
{
    const char *xml = argc > 1 ? argv[1] : TOPOLOGIES_DIR "/192em64t-12gr2n8c2t.xml";
    int rounds = argc > 2 ? atoi(argv[2]) : 50;
    double *t = calloc((size_t)(rounds > 0 ? rounds : 1), sizeof(double));
    ism_error_t err = ISM_ERROR_INIT;
    char key[ISM_TOPO_CACHE_KEY_LEN + 1], path[] = "/tmp/bench-planner-cache.XXXXXX";
    ism_bitmap_t *all = ism_bitmap_create();
    ism_topo_t *topo;
    int fd;

    if (rounds < 1 || !t || !all || !(topo = ism_topo_from_xml(xml, &err)))
        return fprintf(stderr, "bench_planner: %s\n", err.text), 1;
    for (int i = 0; i < topo->ncores; i++)
        ism_bitmap_set(all, topo->cores[i].index);
    printf("%s: %d cores\n", xml, topo->ncores);
    if (plan_bench(topo, all, topo->ncores, 2, ISM_LAYOUT_COMPACT, t, rounds) < 0 ||
        plan_bench(topo, all, 24, 0, ISM_LAYOUT_SPREAD, t, rounds) < 0 ||
        plan_bench(topo, all, 24, 2, ISM_LAYOUT_NUMA, t, rounds) < 0 ||
        plan_bench(topo, all, 2 * topo->ncores, 1, ISM_LAYOUT_COMPACT, t, rounds) < 0)
        return 1;
    ism_topo_destroy(topo);

    /* This machine: hwloc against key + cache read. */
    if ((fd = mkstemp(path)) < 0)
        return 1;
    close(fd);
    for (int i = 0; i < rounds; i++) {
        double t0 = now();
        topo = ism_topo_from_live(&err);
        t[i] = now() - t0;
        if (!topo)
            return fprintf(stderr, "bench_planner: %s\n", err.text), 1;
        if (i == rounds - 1 &&
            (ism_topo_cache_key("/sys", key, &err) < 0 || ism_topo_cache_write(path, key, topo, &err) < 0))
            return fprintf(stderr, "bench_planner: %s\n", err.text), 1;
        ism_topo_destroy(topo);
    }
    printf("this machine, hwloc load: %.1f us\n", median_us(t, rounds));
    for (int i = 0; i < rounds; i++) {
        double t0 = now();
        if (ism_topo_cache_key("/sys", key, &err) < 0 || !(topo = ism_topo_cache_read(path, key, &err)))
            return fprintf(stderr, "bench_planner: %s\n", err.text), 1;
        t[i] = now() - t0;
        ism_topo_destroy(topo);
    }
    printf("this machine, cache key + read: %.1f us\n", median_us(t, rounds));
    unlink(path);
    ism_bitmap_destroy(all);
    free(t);
    return 0;
}
