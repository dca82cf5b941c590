/* Unit tests of lib/slurm/job_resrcs.h: a job's cores from the resources
 * record of Slurm 24.11 and 25.05, on made-up records.  A good record is
 * read right; every record that breaks one of the checks is refused with
 * EPROTO naming the job (and the node), never read.  The real records are
 * read against scontrol in tests/slurm/test_jobs.c inside the trixie root
 * (tests/slurm/release trixie --adapter). */
#include <config.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "lib/slurm/job_resrcs.h"
#include "tests/unit/unit.h"

/* Three nodes, n[1-3]: n1 and n2 have 2 sockets of 4 cores, n3 1 of 2;
 * 18 bits.  The job holds n1's cores 1 and 6 (4 cpus, SMT), nothing
 * else there, n2's core 0 (1 cpu), n3's cores 0-1 (2 cpus). */
struct fake {
    struct ism_resrcs_2411 rec;
    ism_slurm_bitstr_t core_bits[3];
    ism_slurm_bitstr_t node_bits[3];
    uint16_t cpus[3];
    uint64_t mem[3];
    uint16_t sockets[2], cores[2];
    uint32_t reps[2];
    char nodes[16];
    struct ism_resrcs_job job;
};

static void fake_init(struct fake *f)
{
    static const int held[] = { 1, 6, 8, 16, 17 };

    memset(f, 0, sizeof(*f));
    f->core_bits[0] = ISM_SLURM_BITSTR_MAGIC;
    f->core_bits[1] = 18;
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++)
        f->core_bits[2] |= (int64_t)1 << held[i];
    f->node_bits[0] = ISM_SLURM_BITSTR_MAGIC;
    f->node_bits[1] = 64;
    f->node_bits[2] = 7;
    f->cpus[0] = 4, f->cpus[1] = 1, f->cpus[2] = 2;
    f->mem[0] = 400, f->mem[1] = 100, f->mem[2] = 200;
    f->sockets[0] = 2, f->cores[0] = 4, f->reps[0] = 2;
    f->sockets[1] = 1, f->cores[1] = 2, f->reps[1] = 1;
    strcpy(f->nodes, "n[1-3]");
    f->rec.core_bitmap = f->core_bits;
    f->rec.node_bitmap = f->node_bits;
    f->rec.cpus = f->cpus;
    f->rec.memory_allocated = f->mem;
    f->rec.sockets_per_node = f->sockets;
    f->rec.cores_per_socket = f->cores;
    f->rec.sock_core_rep_count = f->reps;
    f->rec.nhosts = 3;
    f->rec.ncpus = 5; /* what the job asked for: not checked */
    f->rec.nodes = f->nodes;
    f->job = (struct ism_resrcs_job){ .id = 42, .num_nodes = 3, .num_cpus = 7 };
}

static const struct ism_resrcs_shape big = { 2, 4, 2 }, small = { 1, 2, 1 };

START_TEST(reads_a_good_record)
{
    struct fake f;
    ism_job_resrcs_t v;
    ism_error_t err = ISM_ERROR_INIT;
    static const struct {
        const char *name;
        const struct ism_resrcs_shape *shape;
        const char *cores;
        uint32_t cpus;
        uint64_t mem;
    } want[] = {
        { "n1", &big, "1,6", 4, 400 },
        { "n2", &big, "0", 1, 100 },
        { "n3", &small, "0-1", 2, 200 },
    };

    fake_init(&f);
    ck_assert_msg(ism_job_resrcs_open(&f.rec, &f.job, &v, &err) == 0, "%s", err.text);
    ck_assert_int_eq(v.nhosts, 3);
    ck_assert_str_eq(v.nodes, "n[1-3]");
    for (int i = 0; i < 3; i++) {
        ism_bitmap_t *cores;
        uint32_t cpus;
        uint64_t mem;
        char *list;

        ck_assert_msg(ism_job_resrcs_node(&v, i, want[i].name, want[i].shape, &cores, &cpus,
                                          &mem, &err) == 0,
                      "%s", err.text);
        list = ism_bitmap_format_list(cores);
        ck_assert_str_eq(list, want[i].cores);
        ck_assert_uint_eq(cpus, want[i].cpus);
        ck_assert_uint_eq(mem, want[i].mem);
        free(list);
        ism_bitmap_destroy(cores);
    }
}
END_TEST

/* Each breaks the record one way; open (or node, for node >= 0) must
 * refuse it with a message holding want. */
static void no_record(struct fake *f) { (void)f; /* null_record below */ }
static void fewer_nodes(struct fake *f) { f->job.num_nodes = 2; }
static void no_nodes(struct fake *f) { f->rec.nodes = NULL; }
static void no_cpus(struct fake *f) { f->rec.cpus = NULL; }
static void bad_magic(struct fake *f) { f->core_bits[0] = 0; }
static void short_bitmap(struct fake *f) { f->core_bits[1] = 17; }
static void bad_node_bitmap(struct fake *f) { f->node_bits[0] = 1; }
static void groups_short(struct fake *f) { f->reps[1] = 0; }
static void groups_over(struct fake *f) { f->reps[0] = 4; }
static void empty_group(struct fake *f) { f->cores[1] = 0; }
static void cpus_off(struct fake *f) { f->cpus[1] = 2; }
static void shape_off(struct fake *f) { f->sockets[0] = 4, f->cores[0] = 2; }
static void no_core(struct fake *f) { f->core_bits[2] &= ~((int64_t)1 << 8); }
static void too_many_cpus(struct fake *f) { f->cpus[0] = 5, f->job.num_cpus = 8; }
static void too_few_cpus(struct fake *f) { f->cpus[2] = 1, f->job.num_cpus = 6; }

static const struct {
    void (*breaks)(struct fake *);
    bool null_record;
    int node; /* -1: open refuses; else the node to read (n<node+1>) */
    const char *want;
} broken[] = {
    { no_record, true, -1, "no record" },
    { fewer_nodes, false, -1, "node count" },
    { no_nodes, false, -1, "no node list" },
    { no_cpus, false, -1, "array is missing" },
    { bad_magic, false, -1, "core bitmap" },
    { short_bitmap, false, -1, "core bitmap" },
    { bad_node_bitmap, false, -1, "node bitmap" },
    { groups_short, false, -1, "node groups" },
    { groups_over, false, -1, "node groups" },
    { empty_group, false, -1, "node groups" },
    { cpus_off, false, -1, "add up to 8, the job has 7" },
    { shape_off, false, 0, "node n1 4 sockets of 2 cores, the node table 2 of 4" },
    { no_core, false, 1, "0 cores and 1 cpus on node n2" },
    { too_many_cpus, false, 0, "2 cores and 5 cpus on node n1" },
    { too_few_cpus, false, 2, "2 cores and 1 cpus on node n3" },
};

START_TEST(refuses_a_broken_record)
{
    struct fake f;
    ism_job_resrcs_t v;
    ism_error_t err = ISM_ERROR_INIT;
    ism_bitmap_t *cores = (ism_bitmap_t *)&f;
    uint32_t cpus;
    uint64_t mem;
    int node = broken[_i].node;
    const char *names[] = { "n1", "n2", "n3" };

    fake_init(&f);
    broken[_i].breaks(&f);
    errno = 0;
    if (node < 0) {
        ck_assert_int_eq(
            ism_job_resrcs_open(broken[_i].null_record ? NULL : &f.rec, &f.job, &v, &err), -1);
    } else {
        ck_assert_msg(ism_job_resrcs_open(&f.rec, &f.job, &v, &err) == 0, "%s", err.text);
        ck_assert_int_eq(ism_job_resrcs_node(&v, node, names[node], node == 2 ? &small : &big,
                                             &cores, &cpus, &mem, &err),
                         -1);
        ck_assert_ptr_null(cores);
    }
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_msg(strstr(err.text, "job 42") && strstr(err.text, broken[_i].want), "%s",
                  err.text);
}
END_TEST

/* A completing job lets go of its nodes one by one: fewer nodes and cpus
 * than the record are not a broken record then, more still are. */
START_TEST(completing_job)
{
    struct fake f;
    ism_job_resrcs_t v;
    ism_error_t err = ISM_ERROR_INIT;

    fake_init(&f);
    f.job.completing = true;
    f.job.num_nodes = 1;
    f.job.num_cpus = 2;
    ck_assert_msg(ism_job_resrcs_open(&f.rec, &f.job, &v, &err) == 0, "%s", err.text);
    f.job.num_nodes = 4;
    ck_assert_int_eq(ism_job_resrcs_open(&f.rec, &f.job, &v, &err), -1);
    ck_assert_int_eq(errno, EPROTO);
}
END_TEST

START_TEST(bad_arguments)
{
    struct fake f;
    ism_job_resrcs_t v;
    ism_error_t err = ISM_ERROR_INIT;
    ism_bitmap_t *cores;
    uint32_t cpus;
    uint64_t mem;

    fake_init(&f);
    ck_assert_int_eq(ism_job_resrcs_open(&f.rec, NULL, &v, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(ism_job_resrcs_open(&f.rec, &f.job, NULL, NULL), -1);
    ck_assert_int_eq(ism_job_resrcs_open(&f.rec, &f.job, &v, &err), 0);
    ck_assert_int_eq(ism_job_resrcs_node(&v, 0, "n1", NULL, &cores, &cpus, &mem, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* A node the hostlist did not find (index -1) or past the last. */
    ism_error_clear(&err);
    ck_assert_int_eq(ism_job_resrcs_node(&v, -1, "n9", &big, &cores, &cpus, &mem, &err), -1);
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_msg(strstr(err.text, "job 42: node n9 is not in"), "%s", err.text);
    ck_assert_int_eq(ism_job_resrcs_node(&v, 3, "n4", &big, &cores, &cpus, &mem, NULL), -1);
    ck_assert_int_eq(errno, EPROTO);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("job resources of Slurm 24.11 and 25.05");
    TCase *tc = tcase_create("records");

    tcase_add_test(tc, reads_a_good_record);
    tcase_add_loop_test(tc, refuses_a_broken_record, 0,
                        (int)(sizeof(broken) / sizeof(broken[0])));
    tcase_add_test(tc, completing_job);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
