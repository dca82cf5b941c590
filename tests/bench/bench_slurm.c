/* Benchmark: the Slurm adapter's node poll on a large cluster.
 *
 *   bench_slurm TOPOLOGY.json [ROUNDS]     (SLURM_CONF names the cluster)
 *
 * Run by tests/bench/slurm-poll, which starts a cluster with 1,000 nodes.
 * Measures, without and then with a topology published on every node:
 * the first (full) read, a poll when nothing changed (one RPC for the nodes
 * and one for the partitions, both answered "no change"), and a poll after
 * one node's Extra changed (the whole node table again, converted).
 * Prints median and 90th percentile wall times; asserts nothing on speed.
 */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slurm/slurm.h>

#include "lib/slurm/slurm_adapter.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *t, int n)
{
    qsort(t, (size_t)n, sizeof(*t), cmp_double);
    printf("%-44s median %8.3f ms   p90 %8.3f ms   (%d runs)\n", what, t[n / 2] * 1e3,
           t[(n * 9) / 10] * 1e3, n);
}

/* One poll, timed; dies unless it returned want. */
static double timed_poll(ism_slurm_t *s, int want, int *count)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_nodes_t *nodes = NULL;
    double t0 = now(), t;
    int rc = ism_slurm_nodes_poll(s, &nodes, &err);

    t = now() - t0;
    if (rc != want) {
        fprintf(stderr, "bench_slurm: poll returned %d, wanted %d: %s\n", rc, want, err.text);
        exit(1);
    }
    if (nodes && count)
        *count = nodes->count;
    ism_slurm_nodes_destroy(nodes);
    return t;
}

static void settle(ism_slurm_t *s)
{
    ism_slurm_nodes_t *nodes = NULL;

    /* slurmctld says "no change" only a whole second after the change. */
    sleep(2);
    if (ism_slurm_nodes_poll(s, &nodes, NULL) < 0)
        exit(1);
    ism_slurm_nodes_destroy(nodes);
}

/* Slurm's own share: the node table RPC alone, nothing converted.  (The
 * message leaks its Extra strings: see free_node_msg in the adapter.) */
static void raw_load(const char *label, int rounds)
{
    double *t = calloc((size_t)rounds, sizeof(*t));
    char what[128];

    for (int i = 0; i < rounds; i++) {
        node_info_msg_t *msg = NULL;
        double t0 = now();
        if (slurm_load_node(0, &msg, SHOW_ALL) != 0)
            exit(1);
        t[i] = now() - t0;
        slurm_free_node_info_msg(msg);
    }
    snprintf(what, sizeof(what), "%s: slurm_load_node alone", label);
    report(what, t, rounds);
    free(t);
}

static void run(ism_slurm_t *s, const char *label, const char *node, int rounds)
{
    ism_error_t err = ISM_ERROR_INIT;
    double *t = calloc((size_t)rounds, sizeof(*t));
    char what[128], *orig, *extra;
    const char *rest;
    int count = 0;

    ism_slurm_reset(s);
    t[0] = timed_poll(s, 1, &count);
    printf("%s: %d nodes; first full read %.3f ms\n", label, count, t[0] * 1e3);
    settle(s);
    for (int i = 0; i < rounds; i++)
        t[i] = timed_poll(s, 0, NULL);
    snprintf(what, sizeof(what), "%s: unchanged poll", label);
    report(what, t, rounds);
    /* Change one node: a key of our own in front of its Extra object,
     * with a new value each round. */
    if (!(orig = ism_slurm_node_extra(s, node, &err))) {
        fprintf(stderr, "bench_slurm: %s\n", err.text);
        exit(1);
    }
    rest = strlen(orig) > 2 ? orig + 1 : "}";
    extra = malloc(strlen(orig) + 64);
    for (int i = 0; i < rounds; i++) {
        sprintf(extra, "{\"bench\":%d%s%s", i, *rest == '}' ? "" : ",", rest);
        if (ism_slurm_node_set_extra(s, node, extra, &err) < 0) {
            fprintf(stderr, "bench_slurm: %s\n", err.text);
            exit(1);
        }
        t[i] = timed_poll(s, 1, NULL);
    }
    /* Leave the node as it was. */
    ism_slurm_node_set_extra(s, node, orig, NULL);
    free(extra);
    free(orig);
    snprintf(what, sizeof(what), "%s: poll after one node changed", label);
    report(what, t, rounds);
    raw_load(label, rounds);
    free(t);
}

int main(int argc, char **argv)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_nodes_t *nodes = NULL;
    int rounds = argc > 2 ? atoi(argv[2]) : 50;
    ism_slurm_t *s;
    char *json;
    FILE *f;
    long len;
    double t0;

    if (argc < 2 || rounds < 2 || !(f = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: bench_slurm TOPOLOGY.json [ROUNDS >= 2]\n");
        return 2;
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    json = calloc(1, (size_t)len + 1);
    if (fread(json, 1, (size_t)len, f) != (size_t)len)
        return 1;
    fclose(f);
    json[strcspn(json, "\n")] = '\0';
    if (!(s = ism_slurm_create(NULL, &err)) || ism_slurm_nodes_poll(s, &nodes, &err) != 1) {
        fprintf(stderr, "bench_slurm: %s\n", err.text);
        return 1;
    }
    /* The last node changes: the table is walked to its end. */
    char *node = strdup(nodes->nodes[nodes->count - 1].name);
    run(s, "no topologies", node, rounds);
    t0 = now();
    for (int i = 0; i < nodes->count; i++) {
        /* As isthmus-topology publish does: the first node holds it, the
         * others name it. */
        struct ism_publish p = { .force = true };
        if (ism_slurm_publish_topology(s, nodes->nodes[i].name, json, &p, &err) < 0) {
            fprintf(stderr, "bench_slurm: %s\n", err.text);
            return 1;
        }
    }
    printf("publishing a %zu-byte topology on %d nodes: %.3f ms per node\n", strlen(json),
           nodes->count, (now() - t0) * 1e3 / nodes->count);
    run(s, "topology on every node", node, rounds);
    ism_slurm_nodes_destroy(nodes);
    ism_slurm_destroy(s);
    free(node);
    free(json);
    return 0;
}
