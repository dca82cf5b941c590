/* policy.c - see policy.h */
#include <config.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge/policy.h"

#define NAME_MAX_LEN 127 /* as gang_alloc's buffers */

static void list_clear(struct policy_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static void rule_clear(struct policy_rule *r)
{
    free(r->ns);
    list_clear(&r->partitions);
    list_clear(&r->accounts);
    list_clear(&r->qos);
    free(r->def_partition);
    free(r->def_account);
    free(r->def_qos);
    free(r->origin);
    memset(r, 0, sizeof(*r));
}

void policy_clear(struct policy *p)
{
    if (!p)
        return;
    int e = errno;
    for (int i = 0; i < p->n; i++)
        rule_clear(&p->rules[i]);
    free(p->rules);
    p->rules = NULL;
    p->n = 0;
    errno = e;
}

/* A Slurm name as gang_alloc_request accepts one: printable, no space or
 * comma, at most NAME_MAX_LEN bytes. */
static bool slurm_name(const char *s, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == ',' || s[i] == 127)
            return false;
    return true;
}

/* A namespace name (an RFC 1123 label) or "*". */
static bool ns_name(const char *s)
{
    size_t len = strlen(s);

    if (strcmp(s, "*") == 0)
        return true;
    if (len == 0 || len > 63 || !isalnum((unsigned char)s[0]) ||
        !isalnum((unsigned char)s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

static int parse_list(const char *field, const char *value, struct policy_list *l,
                      ism_error_t *err)
{
    const char *p = value;

    if (strcmp(value, "*") == 0) {
        l->given = l->any = true;
        return 0;
    }
    l->given = true;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char **v;

        if (!slurm_name(p, len) || (len == 1 && *p == '*'))
            return ism_err(err, EINVAL, "%s=%s: '%.*s' is not a Slurm name", field, value,
                           (int)len, p);
        if (!(v = realloc(l->v, sizeof(*v) * (size_t)(l->n + 1))))
            return ism_err(err, ENOMEM, "out of memory");
        l->v = v;
        if (!(l->v[l->n] = strndup(p, len)))
            return ism_err(err, ENOMEM, "out of memory");
        l->n++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static bool list_has(const struct policy_list *l, const char *v)
{
    if (l->any)
        return true;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], v) == 0)
            return true;
    return false;
}

static int parse_default(const char *field, const char *value, char **out, ism_error_t *err)
{
    if (!slurm_name(value, strlen(value)) || strcmp(value, "*") == 0)
        return ism_err(err, EINVAL, "%s=%s: not a Slurm name", field, value);
    if (!(*out = strdup(value)))
        return ism_err(err, ENOMEM, "out of memory");
    return 0;
}

static const char *const FIELDS =
    "Partitions, Accounts, QOS, DefaultPartition, DefaultAccount, DefaultQOS, MaxTime";

/* One Field=Value word into r; seen marks the fields given. */
static int parse_field(struct policy_rule *r, char *word, unsigned *seen, ism_error_t *err)
{
    static const char *const names[] = { "Partitions",     "Accounts",       "QOS",
                                         "DefaultPartition", "DefaultAccount", "DefaultQOS",
                                         "MaxTime" };
    char *eq = strchr(word, '=');
    int f;

    if (!eq || eq == word)
        return ism_err(err, EINVAL, "'%s' is not Field=Value (fields: %s)", word, FIELDS);
    *eq = '\0';
    for (f = 0; f < 7; f++)
        if (strcasecmp(word, names[f]) == 0)
            break;
    if (f == 7)
        return ism_err(err, EINVAL, "unknown field '%s' (fields: %s)", word, FIELDS);
    if (*seen & (1u << f))
        return ism_err(err, EINVAL, "%s is given twice", names[f]);
    *seen |= 1u << f;
    if (!eq[1])
        return ism_err(err, EINVAL, "%s has an empty value", names[f]);
    switch (f) {
    case 0: return parse_list(names[f], eq + 1, &r->partitions, err);
    case 1: return parse_list(names[f], eq + 1, &r->accounts, err);
    case 2: return parse_list(names[f], eq + 1, &r->qos, err);
    case 3: return parse_default(names[f], eq + 1, &r->def_partition, err);
    case 4: return parse_default(names[f], eq + 1, &r->def_account, err);
    case 5: return parse_default(names[f], eq + 1, &r->def_qos, err);
    default:
        if (gang_parse_time_limit(eq + 1, &r->max_time, err) < 0)
            return ism_errprefix(err, "MaxTime");
        return 0;
    }
}

/* A default outside the list it belongs to is a mistake of the admin's. */
static int check_default(const char *field, const char *def, const struct policy_list *l,
                         ism_error_t *err)
{
    if (def && l->given && !list_has(l, def))
        return ism_err(err, EINVAL, "Default%s=%s is not in %s", field, def,
                       strcmp(field, "QOS") == 0 ? "QOS" : field[0] == 'P' ? "Partitions"
                                                                             : "Accounts");
    return 0;
}

int policy_add(struct policy *p, const char *line, const char *origin, ism_error_t *err)
{
    struct policy_rule r = { 0 };
    struct policy_rule *rules;
    char *copy, *word, *save = NULL;
    unsigned seen = 0;
    int rc = 0;

    if (!p || !line)
        return ism_err(err, EINVAL, "GangPolicy: missing argument");
    if (!(copy = strdup(line)))
        return ism_err(err, ENOMEM, "out of memory");
    word = strtok_r(copy, " \t", &save);
    if (!word || !ns_name(word)) {
        rc = ism_err(err, EINVAL,
                     "GangPolicy must start with a namespace name or '*', not '%s'",
                     word ? word : "");
        goto done;
    }
    if (policy_rule_for(p, word) && strcmp(policy_rule_for(p, word)->ns, word) == 0) {
        rc = ism_err(err, EINVAL, "GangPolicy for '%s' is given twice (first at %s)", word,
                     policy_rule_for(p, word)->origin);
        goto done;
    }
    if (!(r.ns = strdup(word)) || !(r.origin = strdup(origin ? origin : ""))) {
        rc = ism_err(err, ENOMEM, "out of memory");
        goto done;
    }
    while (rc == 0 && (word = strtok_r(NULL, " \t", &save)))
        rc = parse_field(&r, word, &seen, err);
    if (rc == 0 && (check_default("Partition", r.def_partition, &r.partitions, err) < 0 ||
                    check_default("Account", r.def_account, &r.accounts, err) < 0 ||
                    check_default("QOS", r.def_qos, &r.qos, err) < 0))
        rc = -1;
    if (rc == 0 && !(rules = realloc(p->rules, sizeof(*rules) * (size_t)(p->n + 1))))
        rc = ism_err(err, ENOMEM, "out of memory");
    if (rc == 0) {
        p->rules = rules;
        p->rules[p->n++] = r;
        memset(&r, 0, sizeof(r));
    } else {
        ism_errprefix(err, "GangPolicy %s", r.ns ? r.ns : "");
    }
done:
    rule_clear(&r);
    free(copy);
    return rc;
}

const struct policy_rule *policy_rule_for(const struct policy *p, const char *ns)
{
    const struct policy_rule *star = NULL;

    for (int i = 0; p && ns && i < p->n; i++) {
        if (strcmp(p->rules[i].ns, ns) == 0)
            return &p->rules[i];
        if (strcmp(p->rules[i].ns, "*") == 0)
            star = &p->rules[i];
    }
    return star;
}

void policy_defaults(const struct policy *p, const char *ns, const struct gang_defaults *global,
                     struct gang_defaults *out)
{
    static const struct gang_defaults none = { 0 };
    const struct policy_rule *r = policy_rule_for(p, ns);

    *out = global ? *global : none;
    if (!r)
        return;
    if (r->def_partition)
        out->partition = r->def_partition;
    if (r->def_account)
        out->account = r->def_account;
    if (r->def_qos)
        out->qos = r->def_qos;
}

/* "a, b, c", "any", or the default alone, into buf. */
static const char *allowed_text(const struct policy_list *l, const char *def, char *buf,
                                size_t size)
{
    size_t used = 0;

    if (l->any)
        return "any";
    if (!l->given)
        return def && *def ? (snprintf(buf, size, "only the default '%s'", def), buf)
                           : "none (Slurm's default only)";
    buf[0] = '\0';
    for (int i = 0; i < l->n && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", l->v[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

static int check_field(const char *ns, const char *what, const char *annotation,
                       const struct policy_list *l, const char *def, const char *value,
                       ism_error_t *err)
{
    char buf[512];

    if (!value || !*value || list_has(l, value))
        return 0;
    if (!l->given && def && strcmp(def, value) == 0)
        return 0;
    return ism_err(err, EACCES, "namespace %s may not use %s '%s' (%s); allowed: %s", ns, what,
                   value, annotation, allowed_text(l, def, buf, sizeof(buf)));
}

static const struct ism_slurm_partition *find_partition(const struct ism_slurm_partition *parts,
                                                        int nparts, const char *name)
{
    for (int i = 0; parts && i < nparts; i++)
        if (name ? strcmp(parts[i].name, name) == 0 : parts[i].is_default)
            return &parts[i];
    return NULL;
}

int policy_check(const struct policy *p, const char *ns, const struct gang_defaults *defs,
                 const struct ism_slurm_partition *parts, int nparts,
                 struct ism_slurm_alloc_req *req, ism_error_t *err)
{
    static const struct gang_defaults none = { 0 };
    const struct policy_rule *r = policy_rule_for(p, ns);
    const struct ism_slurm_partition *part;
    uint32_t part_max, max;

    if (!ns || !req)
        return ism_err(err, EINVAL, "policy: missing argument");
    if (!defs)
        defs = &none;
    if (p && p->n > 0 && !r)
        return ism_err(err, EACCES,
                       "namespace %s may not run gangs: no GangPolicy line in isthmus.conf names "
                       "it (nor '*')",
                       ns);
    if (r && (check_field(ns, "partition", "isthmus.io/partition", &r->partitions,
                          defs->partition, req->partition, err) < 0 ||
              check_field(ns, "account", "isthmus.io/account", &r->accounts, defs->account,
                          req->account, err) < 0 ||
              check_field(ns, "qos", "isthmus.io/qos", &r->qos, defs->qos, req->qos, err) < 0))
        return -1;
    part = find_partition(parts, nparts, req->partition && *req->partition ? req->partition
                                                                           : NULL);
    part_max = part ? part->max_time : ISM_SLURM_UNLIMITED;
    if (req->time_limit && part_max != ISM_SLURM_UNLIMITED && req->time_limit > part_max)
        return ism_err(err, EACCES,
                       "namespace %s: time limit %u min (isthmus.io/time-limit) is above "
                       "partition %s's MaxTime; allowed: at most %u min",
                       ns, req->time_limit, part->name, part_max);
    max = r ? r->max_time : 0;
    if (req->time_limit && max && req->time_limit > max)
        return ism_err(err, EACCES,
                       "namespace %s may not use time limit %u min (isthmus.io/time-limit); "
                       "allowed: at most %u min (GangPolicy MaxTime)",
                       ns, req->time_limit, max);
    if (!req->time_limit && max) {
        /* the partition's default could be longer: the policy's maximum */
        req->time_limit = part_max != ISM_SLURM_UNLIMITED && part_max < max ? part_max : max;
    }
    return 0;
}
