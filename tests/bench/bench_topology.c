/* Benchmark: topology load (hwloc XML), JSON encode and JSON decode.
 *
 *   bench_topology [XML [ROUNDS]]
 *
 * Prints the median time per operation over ROUNDS runs and the peak RSS.
 * Not a test: the figures go in issue notes, next to the command line.
 */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "lib/topology/topology.h"

int main(int argc, char **argv)
{
    const char *xml = argc > 1 ? argv[1] : TOPOLOGIES_DIR "/192em64t-12gr2n8c2t.xml";
    int rounds = argc > 2 ? atoi(argv[2]) : 50;
    double *load = calloc((size_t)rounds, sizeof(double));
    double *enc = calloc((size_t)rounds, sizeof(double));
    double *dec = calloc((size_t)rounds, sizeof(double));
    ism_error_t err = ISM_ERROR_INIT;
    struct rusage ru;
    size_t json_len = 0;
    int ncores = 0;

    if (rounds < 1 || !load || !enc || !dec)
        return 2;
    for (int i = 0; i < rounds; i++) {
        double t0 = now();
        ism_topo_t *topo = ism_topo_from_xml(xml, &err), *back;
        double t1 = now();
        char *json;

        if (!topo) {
            fprintf(stderr, "bench_topology: %s\n", err.text);
            return 1;
        }
        json = ism_topo_encode(topo, NULL);
        double t2 = now();
        back = ism_topo_decode(json, NULL);
        double t3 = now();
        if (!json || !back || !ism_topo_equal(topo, back)) {
            fprintf(stderr, "bench_topology: round trip failed\n");
            return 1;
        }
        load[i] = t1 - t0;
        enc[i] = t2 - t1;
        dec[i] = t3 - t2;
        json_len = strlen(json);
        ncores = topo->ncores;
        free(json);
        ism_topo_destroy(back);
        ism_topo_destroy(topo);
    }
    getrusage(RUSAGE_SELF, &ru);
    printf("topology %s: %d cores, JSON %zu bytes, %d rounds (median)\n", xml, ncores, json_len,
           rounds);
    printf("  load (hwloc XML)  %9.3f ms\n", median(load, rounds) * 1e3);
    printf("  encode (JSON)     %9.3f ms\n", median(enc, rounds) * 1e3);
    printf("  decode (JSON)     %9.3f ms\n", median(dec, rounds) * 1e3);
    printf("  peak RSS          %9ld KiB\n", ru.ru_maxrss);
    free(load);
    free(enc);
    free(dec);
    return 0;
}
