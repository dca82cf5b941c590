/* conffile.c - see conffile.h */
#include <config.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util/conffile.h"

struct entry {
    char *value;  /* NULL: not set in any file */
    char *origin; /* "file:line" */
    struct entry *next; /* ISM_CONFIG_LIST: the next line setting it */
};

struct ism_config {
    const struct ism_config_key *schema;
    int nkeys;
    struct entry *entries; /* parallel to schema */
};

static int key_index(const ism_config_t *cfg, const char *name)
{
    for (int i = 0; name && i < cfg->nkeys; i++) {
        if (strcasecmp(cfg->schema[i].name, name) == 0)
            return i;
    }
    return -1;
}

int ism_config_parse_bool(const char *s, bool *value)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };

    for (size_t i = 0; s && i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *value = false;
            return 0;
        }
    }
    errno = EINVAL;
    return -1;
}

static int parse_int(const char *s, long long *value)
{
    char *end;

    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    *value = strtoll(s, &end, 10);
    return (errno || *end) ? -1 : 0;
}

/* Check value against key's type; for choices, return the schema spelling. */
static const char *check_value(const struct ism_config_key *key, const char *value,
                               ism_error_t *err)
{
    long long n;
    bool b;

    switch (key->type) {
    case ISM_CONFIG_STRING:
    case ISM_CONFIG_LIST:
        return value;
    case ISM_CONFIG_INT:
        if (parse_int(value, &n) < 0 || n < key->min || n > key->max) {
            ism_err(err, EINVAL, "%s=%s: expected an integer from %lld to %lld", key->name,
                    value, key->min, key->max);
            return NULL;
        }
        return value;
    case ISM_CONFIG_BOOL:
        if (ism_config_parse_bool(value, &b) < 0) {
            ism_err(err, EINVAL, "%s=%s: expected yes or no", key->name, value);
            return NULL;
        }
        return value;
    case ISM_CONFIG_CHOICE:
        for (int i = 0; key->choices && key->choices[i]; i++) {
            if (strcasecmp(value, key->choices[i]) == 0)
                return key->choices[i];
        }
        ism_err(err, EINVAL, "%s=%s: not one of the accepted values", key->name, value);
        return NULL;
    }
    ism_err(err, EINVAL, "%s: bad schema type", key->name);
    return NULL;
}

static ism_config_t *config_create(const struct ism_config_key *schema, ism_error_t *err)
{
    ism_config_t *cfg;

    if (!schema) {
        ism_err(err, EINVAL, "config: missing schema");
        return NULL;
    }
    if (!(cfg = calloc(1, sizeof(*cfg)))) {
        ism_err(err, ENOMEM, "config: out of memory");
        return NULL;
    }
    cfg->schema = schema;
    while (schema[cfg->nkeys].name)
        cfg->nkeys++;
    if (!(cfg->entries = calloc((size_t)cfg->nkeys + 1, sizeof(*cfg->entries)))) {
        ism_config_destroy(cfg);
        ism_err(err, ENOMEM, "config: out of memory");
        return NULL;
    }
    return cfg;
}

void ism_config_destroy(ism_config_t *cfg)
{
    if (cfg) {
        int saved_errno = errno;
        for (int i = 0; cfg->entries && i < cfg->nkeys; i++) {
            struct entry *e = cfg->entries[i].next, *next;
            free(cfg->entries[i].value);
            free(cfg->entries[i].origin);
            for (; e; e = next) {
                next = e->next;
                free(e->value);
                free(e->origin);
                free(e);
            }
        }
        free(cfg->entries);
        free(cfg);
        errno = saved_errno;
    }
}

ism_config_t *ism_config_defaults(const struct ism_config_key *schema, ism_error_t *err)
{
    return config_create(schema, err);
}

/* Remove the comment (an unescaped '#' outside double quotes) and
 * unescape "\#" in place. */
static void strip_comment(char *line)
{
    char *r = line, *w = line;
    bool quoted = false;

    for (; *r; r++) {
        if (r[0] == '\\' && r[1] == '#') {
            *w++ = '#';
            r++;
            continue;
        }
        if (*r == '#' && !quoted)
            break;
        if (*r == '"')
            quoted = !quoted;
        *w++ = *r;
    }
    *w = '\0';
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static bool valid_key_name(const char *s)
{
    if (!isalpha((unsigned char)*s))
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    }
    return true;
}

static int load_file(ism_config_t *cfg, const char *path, int depth, ism_error_t *err);

/* "Include FILE": FILE relative to the folder of the including file. */
static int include_file(ism_config_t *cfg, const char *from, const char *name, int depth,
                        ism_error_t *err)
{
    char target[PATH_MAX];
    const char *slash = strrchr(from, '/');
    int n;

    if (*name == '"' && strlen(name) >= 2 && name[strlen(name) - 1] == '"')
        return ism_err(err, EINVAL, "Include takes an unquoted file name");
    if (name[0] == '/' || !slash)
        n = snprintf(target, sizeof(target), "%s", name);
    else
        n = snprintf(target, sizeof(target), "%.*s/%s", (int)(slash - from), from, name);
    if (n < 0 || (size_t)n >= sizeof(target))
        return ism_err(err, ENAMETOOLONG, "Include %s: path too long", name);
    if (depth >= ISM_CONFIG_MAX_DEPTH)
        return ism_err(err, ELOOP, "Include %s: more than %d levels (a loop?)", name,
                       ISM_CONFIG_MAX_DEPTH);
    return load_file(cfg, target, depth + 1, err);
}

static int set_value(ism_config_t *cfg, const char *key, char *value, const char *origin,
                     ism_error_t *err)
{
    int i = key_index(cfg, key);
    const char *checked;
    size_t len = strlen(value);
    struct entry *e;

    if (i < 0)
        return ism_err(err, EINVAL, "unknown key '%s'", key);
    e = &cfg->entries[i];
    if (e->value && cfg->schema[i].type != ISM_CONFIG_LIST)
        return ism_err(err, EINVAL, "%s is set twice (first at %s)", cfg->schema[i].name,
                       cfg->entries[i].origin);
    if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
        value[len - 1] = '\0';
        value++;
    }
    if (*value == '\0')
        return ism_err(err, EINVAL, "%s has an empty value", cfg->schema[i].name);
    if (!(checked = check_value(&cfg->schema[i], value, err)))
        return -1;
    if (e->value) { /* a further line of a list: at the end of the chain */
        while (e->next)
            e = e->next;
        if (!(e->next = calloc(1, sizeof(*e))))
            return ism_err(err, ENOMEM, "out of memory");
        e = e->next;
    }
    if (!(e->value = strdup(checked)) || !(e->origin = strdup(origin)))
        return ism_err(err, ENOMEM, "out of memory");
    return 0;
}

static int parse_line(ism_config_t *cfg, const char *path, char *line, const char *origin,
                      int depth, ism_error_t *err)
{
    char *eq, *key;

    strip_comment(line);
    line = trim(line);
    if (*line == '\0')
        return 0;
    if (strncasecmp(line, "Include", 7) == 0 && isspace((unsigned char)line[7]))
        return include_file(cfg, path, trim(line + 8), depth, err);
    if (!(eq = strchr(line, '=')))
        return ism_err(err, EINVAL, "expected Key=Value, got '%s'", line);
    *eq = '\0';
    key = trim(line);
    if (!valid_key_name(key))
        return ism_err(err, EINVAL, "'%s' is not a key name", key);
    return set_value(cfg, key, trim(eq + 1), origin, err);
}

static int load_file(ism_config_t *cfg, const char *path, int depth, ism_error_t *err)
{
    char origin[PATH_MAX + 32];
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    FILE *f;
    int lineno = 0;
    int rc = 0;

    if (!(f = fopen(path, "r")))
        return ism_err(err, errno, "%s: %s", path, strerror(errno));
    while (rc == 0 && (len = getline(&line, &size, f)) >= 0) {
        lineno++;
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        if (len > ISM_CONFIG_MAX_LINE)
            rc = ism_err(err, EINVAL, "line longer than %d bytes", ISM_CONFIG_MAX_LINE);
        else if (memchr(line, '\0', (size_t)len))
            rc = ism_err(err, EINVAL, "NUL byte in line");
        else
            rc = parse_line(cfg, path, line, origin, depth, err);
        if (rc < 0)
            ism_errprefix(err, "%s", origin);
    }
    if (rc == 0 && ferror(f))
        rc = ism_err(err, EIO, "%s: read error", path);
    free(line);
    fclose(f);
    return rc;
}

ism_config_t *ism_config_load(const char *path, const struct ism_config_key *schema,
                              ism_error_t *err)
{
    ism_config_t *cfg;

    if (!path) {
        ism_err(err, EINVAL, "config: missing file name");
        return NULL;
    }
    if (!(cfg = config_create(schema, err)))
        return NULL;
    if (load_file(cfg, path, 0, err) < 0) {
        ism_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

const char *ism_config_get(const ism_config_t *cfg, const char *key)
{
    int i;

    if (!cfg || (i = key_index(cfg, key)) < 0)
        return NULL;
    return cfg->entries[i].value ? cfg->entries[i].value : cfg->schema[i].default_value;
}

long long ism_config_get_int(const ism_config_t *cfg, const char *key)
{
    const char *s = ism_config_get(cfg, key);
    return s ? strtoll(s, NULL, 10) : 0;
}

bool ism_config_get_bool(const ism_config_t *cfg, const char *key)
{
    bool b = false;
    const char *s = ism_config_get(cfg, key);

    if (s)
        (void)ism_config_parse_bool(s, &b);
    return b;
}

int ism_config_count(const ism_config_t *cfg, const char *key)
{
    int i, n = 0;

    if (!cfg || (i = key_index(cfg, key)) < 0 || !cfg->entries[i].value)
        return 0;
    for (const struct entry *e = &cfg->entries[i]; e; e = e->next)
        n++;
    return n;
}

const char *ism_config_get_list(const ism_config_t *cfg, const char *key, int n,
                                const char **origin)
{
    const struct entry *e;
    int i;

    if (!cfg || n < 0 || (i = key_index(cfg, key)) < 0 || !cfg->entries[i].value)
        return NULL;
    for (e = &cfg->entries[i]; e && n > 0; e = e->next)
        n--;
    if (e && origin)
        *origin = e->origin;
    return e ? e->value : NULL;
}

const char *ism_config_origin(const ism_config_t *cfg, const char *key)
{
    int i;

    if (!cfg || (i = key_index(cfg, key)) < 0 || !cfg->entries[i].origin)
        return "default";
    return cfg->entries[i].origin;
}
