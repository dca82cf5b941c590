/* Unit tests: bridge/policy.c, which namespaces may use which Slurm
 * partitions, accounts, qos and time limits (GangPolicy lines). */
#include <config.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bridge/policy.h"
#include "bridge/taint.h"
#include "unit.h"

/* Lines that parse, and one fact each about the rule. */
static const struct {
    const char *line;
    const char *ns;
    int npartitions, naccounts;
    bool any_qos;
    uint32_t max_time;
} good[] = {
    { "team-a", "team-a", 0, 0, false, 0 },
    { "* Partitions=debug", "*", 1, 0, false, 0 },
    { "team-a Partitions=debug,batch Accounts=phys QOS=* MaxTime=1:00:00", "team-a", 2, 1, true,
      60 },
    { "b  accounts=x,y,z\tmaxtime=2-00", "b", 0, 3, false, 2880 },
    { "c Accounts=x DefaultAccount=x DefaultPartition=p DefaultQOS=q", "c", 0, 1, false, 0 },
    { "d Partitions=* DefaultPartition=any", "d", 0, 0, false, 0 },
    { "e MaxTime=90", "e", 0, 0, false, 90 },
};

START_TEST(parse_good)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct policy p = { 0 };
    const struct policy_rule *r;

    ck_assert_msg(policy_add(&p, good[_i].line, "f:1", &err) == 0, "%s: %s", good[_i].line,
                  err.text);
    ck_assert_int_eq(p.n, 1);
    r = &p.rules[0];
    ck_assert_str_eq(r->ns, good[_i].ns);
    ck_assert_int_eq(r->partitions.n, good[_i].npartitions);
    ck_assert_int_eq(r->accounts.n, good[_i].naccounts);
    ck_assert_int_eq(r->qos.any, good[_i].any_qos);
    ck_assert_uint_eq(r->max_time, good[_i].max_time);
    ck_assert_str_eq(r->origin, "f:1");
    policy_clear(&p);
    ck_assert_int_eq(p.n, 0);
}
END_TEST

/* Lines refused, and what the message must say. */
static const struct {
    const char *line;
    const char *message;
} bad[] = {
    { "", "must start with a namespace name or '*', not ''" },
    { "Team-A", "must start with a namespace name or '*', not 'Team-A'" },
    { "Partitions=debug", "not 'Partitions=debug'" },
    { "-a", "not '-a'" },
    { "a Acounts=x", "GangPolicy a: unknown field 'Acounts' (fields: Partitions, Accounts" },
    { "a Accounts", "'Accounts' is not Field=Value" },
    { "a =x", "'=x' is not Field=Value" },
    { "a Accounts=", "Accounts has an empty value" },
    { "a Accounts=x accounts=y", "Accounts is given twice" },
    { "a Accounts=x,,y", "Accounts=x,,y: '' is not a Slurm name" },
    { "a Accounts=x,*", "'*' is not a Slurm name" },
    { "a QOS=a,", "QOS=a,: '' is not a Slurm name" },
    { "a MaxTime=soon", "MaxTime: time limit 'soon' is not in Slurm's time format" },
    { "a MaxTime=0", "MaxTime: time limit '0' is zero" },
    { "a Accounts=x DefaultAccount=y", "DefaultAccount=y is not in Accounts" },
    { "a Partitions=p DefaultPartition=q", "DefaultPartition=q is not in Partitions" },
    { "a QOS=n DefaultQOS=h", "DefaultQOS=h is not in QOS" },
    { "a DefaultQOS=*", "DefaultQOS=*: not a Slurm name" },
};

START_TEST(parse_bad)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct policy p = { 0 };

    ck_assert_int_eq(policy_add(&p, bad[_i].line, "f:1", &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, bad[_i].message) != NULL, "'%s': message '%s' lacks '%s'",
                  bad[_i].line, err.text, bad[_i].message);
    ck_assert_int_eq(p.n, 0);
}
END_TEST

START_TEST(parse_twice_and_null)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct policy p = { 0 };

    ck_assert_int_eq(policy_add(&p, "a Accounts=x", "f:1", &err), 0);
    ck_assert_int_eq(policy_add(&p, "* Accounts=y", "f:2", &err), 0);
    ck_assert_int_eq(policy_add(&p, "a Accounts=z", "f:3", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "GangPolicy for 'a' is given twice (first at f:1)"));
    ck_assert_int_eq(p.n, 2);
    ck_assert_int_eq(policy_add(&p, NULL, NULL, &err), -1);
    ck_assert_int_eq(policy_add(NULL, "a", NULL, &err), -1);
    ck_assert_str_eq(policy_rule_for(&p, "a")->ns, "a");
    ck_assert_str_eq(policy_rule_for(&p, "other")->ns, "*");
    ck_assert_ptr_null(policy_rule_for(NULL, "a"));
    ck_assert_ptr_null(policy_rule_for(&p, NULL));
    policy_clear(&p);
    policy_clear(NULL);
}
END_TEST

/* The policy every check case runs against. */
static const char *const LINES[] = {
    "physics Partitions=debug,long Accounts=phys,shared QOS=normal DefaultAccount=phys "
    "MaxTime=2:00:00",
    "chem Accounts=chem",
    "open Partitions=* Accounts=* QOS=*",
    "global-defaults",
};

static const struct ism_slurm_partition PARTS[] = {
    { .name = "debug", .max_time = 60, .default_time = 30, .is_default = true },
    { .name = "long", .max_time = ISM_SLURM_UNLIMITED, .default_time = ISM_SLURM_UNLIMITED },
};

/* Requests (after gang_alloc_request put the defaults in): allowed or
 * refused, with the words the refusal must hold and the time limit an
 * allowed request leaves with. */
static const struct {
    const char *ns, *partition, *account, *qos;
    uint32_t time;
    bool with_policy; /* LINES, else no GangPolicy at all */
    const char *refusal; /* NULL: allowed */
    uint32_t time_after;
} cases[] = {
    /* allowed */
    { "physics", NULL, "phys", NULL, 0, true, NULL, 60 }, /* debug's MaxTime under 2 h */
    { "physics", "long", "phys", "normal", 0, true, NULL, 120 },
    { "physics", "long", "shared", NULL, 120, true, NULL, 120 },
    { "physics", "debug", "phys", NULL, 45, true, NULL, 45 },
    { "chem", NULL, "chem", NULL, 0, true, NULL, 0 },
    { "chem", NULL, NULL, NULL, 0, true, NULL, 0 },           /* Slurm's default account */
    { "chem", "batch", "chem", NULL, 0, true, NULL, 0 },       /* the global default partition */
    { "open", "anything", "any", "high", 0, true, NULL, 0 },
    { "global-defaults", "batch", "guest", "low", 0, true, NULL, 0 }, /* the globals */
    { "anyone", "x", "y", "z", 0, false, NULL, 0 },            /* no policy */
    { "anyone", "long", NULL, NULL, 100000, false, NULL, 100000 },
    /* refused */
    { "physics", "batch", "phys", NULL, 0, true,
      "namespace physics may not use partition 'batch' (isthmus.io/partition); allowed: debug, long",
      0 },
    { "physics", NULL, "chem", NULL, 0, true,
      "namespace physics may not use account 'chem' (isthmus.io/account); allowed: phys, shared",
      0 },
    { "physics", NULL, "phys", "high", 0, true,
      "namespace physics may not use qos 'high' (isthmus.io/qos); allowed: normal", 0 },
    { "chem", NULL, "phys", NULL, 0, true,
      "namespace chem may not use account 'phys' (isthmus.io/account); allowed: chem", 0 },
    { "chem", "debug", "chem", NULL, 0, true,
      "namespace chem may not use partition 'debug' (isthmus.io/partition); allowed: only the "
      "default 'batch'",
      0 },
    { "chem", NULL, "chem", "high", 0, true,
      "namespace chem may not use qos 'high' (isthmus.io/qos); allowed: only the default 'low'",
      0 },
    { "physics", "long", "phys", NULL, 121, true,
      "namespace physics may not use time limit 121 min (isthmus.io/time-limit); allowed: at "
      "most 120 min (GangPolicy MaxTime)",
      0 },
    { "physics", NULL, "phys", NULL, 61, true,
      "time limit 61 min (isthmus.io/time-limit) is above partition debug's MaxTime; allowed: "
      "at most 60 min",
      0 },
    { "anyone", "debug", NULL, NULL, 61, false, "above partition debug's MaxTime", 0 },
    { "stranger", NULL, NULL, NULL, 0, true,
      "namespace stranger may not run gangs: no GangPolicy line in isthmus.conf names it", 0 },
};

START_TEST(check_cases)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct policy p = { 0 };
    struct gang_defaults global = { .partition = "batch", .account = "guest", .qos = "low" };
    struct gang_defaults defs;
    struct ism_slurm_alloc_req req = { 0 };
    int rc;

    if (cases[_i].with_policy)
        for (int l = 0; l < ARRAY_SIZE(LINES); l++)
            ck_assert_msg(policy_add(&p, LINES[l], NULL, &err) == 0, "%s", err.text);
    policy_defaults(&p, cases[_i].ns, &global, &defs);
    req.partition = cases[_i].partition;
    req.account = cases[_i].account;
    req.qos = cases[_i].qos;
    req.time_limit = cases[_i].time;
    rc = policy_check(&p, cases[_i].ns, &defs, PARTS, (int)ARRAY_SIZE(PARTS), &req, &err);
    if (cases[_i].refusal) {
        ck_assert_msg(rc == -1, "case %d allowed", _i);
        ck_assert_int_eq(errno, EACCES);
        ck_assert_msg(strstr(err.text, cases[_i].refusal) != NULL, "message '%s' lacks '%s'",
                      err.text, cases[_i].refusal);
    } else {
        ck_assert_msg(rc == 0, "case %d refused: %s", _i, err.text);
        ck_assert_uint_eq(req.time_limit, cases[_i].time_after);
    }
    policy_clear(&p);
}
END_TEST

START_TEST(defaults)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct policy p = { 0 };
    struct gang_defaults global = { .partition = "batch", .account = "guest", .time_limit = 7 };
    struct gang_defaults d;

    ck_assert_int_eq(policy_add(&p, "a Accounts=x DefaultAccount=x DefaultQOS=q", NULL, &err),
                     0);
    policy_defaults(&p, "a", &global, &d);
    ck_assert_str_eq(d.account, "x");
    ck_assert_str_eq(d.partition, "batch");
    ck_assert_str_eq(d.qos, "q");
    ck_assert_uint_eq(d.time_limit, 7);
    policy_defaults(&p, "b", &global, &d);
    ck_assert_str_eq(d.account, "guest");
    ck_assert_ptr_null(d.qos);
    policy_defaults(NULL, "b", NULL, &d);
    ck_assert_ptr_null(d.account);
    policy_clear(&p);
}
END_TEST

START_TEST(check_null)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct ism_slurm_alloc_req req = { 0 };

    ck_assert_int_eq(policy_check(NULL, NULL, NULL, NULL, 0, &req, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(policy_check(NULL, "a", NULL, NULL, 0, NULL, &err), -1);
    ck_assert_int_eq(policy_check(NULL, "a", NULL, NULL, 0, &req, &err), 0);
}
END_TEST

/* Nodes as the informer keeps them, and whether a patch comes out. */
static const struct {
    const char *node;
    bool present;
    const char *patch; /* NULL: none (errno in err_no) */
    int err_no;
} taints[] = {
    { "{\"metadata\":{\"resourceVersion\":\"7\"}}", false,
      "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"key\":"
      "\"isthmus.io/bridged\",\"effect\":\"NoSchedule\"}]}}",
      0 },
    { "{\"metadata\":{\"resourceVersion\":\"8\"},\"spec\":{\"taints\":[{\"key\":\"a\","
      "\"effect\":\"NoExecute\"}]}}",
      false,
      "{\"metadata\":{\"resourceVersion\":\"8\"},\"spec\":{\"taints\":[{\"key\":\"a\","
      "\"effect\":\"NoExecute\"},{\"key\":\"isthmus.io/bridged\",\"effect\":"
      "\"NoSchedule\"}]}}",
      0 },
    { "{\"metadata\":{\"resourceVersion\":\"9\"},\"spec\":{\"taints\":[{\"key\":"
      "\"isthmus.io/bridged\",\"effect\":\"NoExecute\"}]}}",
      true, NULL, 0 },
    { "{\"metadata\":{\"resourceVersion\":\"9\"},\"spec\":{\"taints\":null}}", false,
      "{\"metadata\":{\"resourceVersion\":\"9\"},\"spec\":{\"taints\":[{\"key\":"
      "\"isthmus.io/bridged\",\"effect\":\"NoSchedule\"}]}}",
      0 },
    { "{\"metadata\":{}}", false, NULL, EINVAL },
    { "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":{\"taints\":\"x\"}}", false, NULL,
      EINVAL },
};

START_TEST(taint_cases)
{
    json_t *node = json_loads(taints[_i].node, 0, NULL), *patch, *want;

    ck_assert_ptr_nonnull(node);
    ck_assert_int_eq(taint_present(node), taints[_i].present);
    errno = 12345;
    patch = taint_patch(node);
    if (taints[_i].patch) {
        ck_assert_ptr_nonnull(patch);
        want = json_loads(taints[_i].patch, 0, NULL);
        ck_assert_msg(json_equal(patch, want), "got %s", json_dumps(patch, JSON_COMPACT));
        json_decref(want);
    } else {
        ck_assert_ptr_null(patch);
        ck_assert_int_eq(errno, taints[_i].err_no);
    }
    json_decref(patch);
    json_decref(node);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");

    tcase_add_loop_test(tc, parse_good, 0, ARRAY_SIZE(good));
    tcase_add_loop_test(tc, parse_bad, 0, ARRAY_SIZE(bad));
    tcase_add_test(tc, parse_twice_and_null);
    tcase_add_loop_test(tc, check_cases, 0, ARRAY_SIZE(cases));
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, check_null);
    tcase_add_loop_test(tc, taint_cases, 0, ARRAY_SIZE(taints));
    suite_add_tcase(s, tc);
    return run_suite(s);
}
