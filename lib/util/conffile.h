/* conffile.h - strict reader for Key=Value files such as isthmus.conf(5).
 *
 * The syntax follows slurm.conf: one "Key=Value" per line, keys in any case,
 * "#" starts a comment (write "\#" for a literal one), blank lines are
 * skipped, a value may be wrapped in double quotes, and "Include FILE" reads
 * another file in place (relative names are taken from the including file's
 * folder; at most ISM_CONFIG_MAX_DEPTH levels).
 *
 * It is strict because it is our own file: an unknown key, a key set twice
 * (but for ISM_CONFIG_LIST keys, which collect their lines),
 * a bad value or a line that is not Key=Value is an error naming the file,
 * the line and the key.  Values are checked against the schema while
 * reading, so the getters below cannot fail.
 *
 * Ownership: ism_config_load returns a config the caller destroys; strings
 * returned by the getters live as long as the config.  The schema must
 * outlive the config.
 */
#ifndef ISTHMUS_CONFFILE_H
#define ISTHMUS_CONFFILE_H

#include <stdbool.h>
#include "lib/util/error.h"

#define ISM_CONFIG_MAX_DEPTH 8
#define ISM_CONFIG_MAX_LINE 4096

enum ism_config_type {
    ISM_CONFIG_STRING,
    ISM_CONFIG_INT,    /* decimal, within [min, max] */
    ISM_CONFIG_BOOL,   /* yes/no, true/false, on/off, 1/0 */
    ISM_CONFIG_CHOICE, /* one of choices[], any case; stored as listed */
    ISM_CONFIG_LIST,   /* a string that may be set on many lines, each kept
                          (ism_config_get_list); its user parses each */
};

struct ism_config_key {
    const char *name;          /* NULL ends the schema */
    enum ism_config_type type;
    const char *default_value; /* text form, or NULL for "unset" */
    long long min, max;        /* ISM_CONFIG_INT */
    const char *const *choices; /* ISM_CONFIG_CHOICE, NULL-terminated */
};

typedef struct ism_config ism_config_t;

/* Read path (following Includes) against schema.  NULL on error. */
ism_config_t *ism_config_load(const char *path, const struct ism_config_key *schema,
                              ism_error_t *err);
/* A config holding only the defaults. */
ism_config_t *ism_config_defaults(const struct ism_config_key *schema, ism_error_t *err);
void ism_config_destroy(ism_config_t *cfg);

/* The value of key (file value, else default, else NULL).  key must be in
 * the schema: asking for another is a programming error and returns NULL
 * (or 0/false). */
const char *ism_config_get(const ism_config_t *cfg, const char *key);
long long ism_config_get_int(const ism_config_t *cfg, const char *key);
bool ism_config_get_bool(const ism_config_t *cfg, const char *key);
/* ISM_CONFIG_LIST keys: how many lines set key, and the i-th value (in
 * file order, Includes in place) with, if origin is not NULL, its
 * "FILE:LINE".  ism_config_get returns the first. */
int ism_config_count(const ism_config_t *cfg, const char *key);
const char *ism_config_get_list(const ism_config_t *cfg, const char *key, int i,
                                const char **origin);
/* "FILE:LINE" where key was set, or "default". */
const char *ism_config_origin(const ism_config_t *cfg, const char *key);

/* Parse a boolean the way the config does (shared with command options). */
int ism_config_parse_bool(const char *s, bool *value);

#endif
