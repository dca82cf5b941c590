/* slurm_conf.c - find and check the slurm.conf libslurm would read. */
#include <config.h>

#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/slurm/slurm_conf.h"

/* Include nesting libslurm itself would follow is unbounded; a loop of
 * includes would make it recurse forever.  Real sites use one or two. */
#define MAX_INCLUDE_DEPTH 8
/* A slurm.conf is a few KB; a file this large is not one. */
#define MAX_CONF_BYTES (64L << 20)

struct found {
    bool cluster_name;
    bool controller;
};

/* The value of "Key=Value" (spaces allowed around '=', key case-blind) if
 * token p starts with key, else NULL. */
static const char *key_value(const char *p, const char *key)
{
    size_t n = strlen(key);

    if (strncasecmp(p, key, n) != 0)
        return NULL;
    p += n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '=')
        return NULL;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static bool has_value(const char *v)
{
    return v && *v && !isspace((unsigned char)*v);
}

static int check_file(const char *path, const char *origin, int depth, struct found *f,
                      ism_error_t *err);

/* An "Include FILE" line: FILE relative to the including file's folder. */
static int follow_include(const char *from, const char *arg, const char *origin, int depth,
                          struct found *f, ism_error_t *err)
{
    char path[4096], by[1024];
    size_t n = strcspn(arg, " \t\r\n");
    const char *slash = strrchr(from, '/');
    int dirlen = arg[0] == '/' ? 0 : slash ? (int)(slash - from) + 1 : 0;
    int len;

    if (n == 0)
        return ism_err(err, EINVAL, "%s%s: an Include line names no file", from, origin);
    if (n >= sizeof(path) ||
        (len = snprintf(path, sizeof(path), "%.*s%.*s", dirlen, from, (int)n, arg)) < 0 ||
        (size_t)len >= sizeof(path))
        return ism_err(err, ENAMETOOLONG, "%s%s: an Include names too long a path", from, origin);
    if (depth >= MAX_INCLUDE_DEPTH)
        return ism_err(err, ELOOP, "%s%s: Include nested deeper than %d files (a loop?)", from,
                       origin, MAX_INCLUDE_DEPTH);
    /* The message names the whole chain: "b.conf (included by a.conf (from ...))". */
    snprintf(by, sizeof(by), " (included by %s%s)", from, origin);
    return check_file(path, by, depth + 1, f, err);
}

/* Scan one line (comment already cut) for the keys libslurm insists on. */
static void scan_line(const char *line, struct found *f)
{
    const char *p = line;

    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (has_value(key_value(p, "ClusterName")))
            f->cluster_name = true;
        if (has_value(key_value(p, "SlurmctldHost")) || has_value(key_value(p, "ControlMachine")))
            f->controller = true;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
}

static int check_file(const char *path, const char *origin, int depth, struct found *f,
                      ism_error_t *err)
{
    struct stat st;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    FILE *fp;
    int fd, rc = 0;

    /* O_NONBLOCK: a FIFO named by mistake must not hang us. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0)
        return ism_err(err, errno, "%s%s: %s", path, origin, strerror(errno));
    if (fstat(fd, &st) < 0) {
        rc = ism_err(err, errno, "%s%s: %s", path, origin, strerror(errno));
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ism_err(err, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, "%s%s: not a regular file",
                       path, origin);
    }
    if (st.st_size > MAX_CONF_BYTES) {
        close(fd);
        return ism_err(err, EFBIG, "%s%s: %lld bytes is too large for a slurm.conf", path,
                       origin, (long long)st.st_size);
    }
    if (!(fp = fdopen(fd, "r"))) {
        rc = ism_err(err, errno, "%s%s: %s", path, origin, strerror(errno));
        close(fd);
        return rc;
    }
    while (rc == 0 && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)len))
            rc = ism_err(err, EINVAL, "%s%s: line %ld: not text (a NUL byte)", path, origin,
                         lineno);
        else {
            char *p = line, *hash;
            /* '#' starts a comment unless escaped as "\#". */
            for (hash = strchr(p, '#'); hash && hash > p && hash[-1] == '\\';)
                hash = strchr(hash + 1, '#');
            if (hash)
                *hash = '\0';
            while (*p == ' ' || *p == '\t')
                p++;
            if (strncasecmp(p, "include", 7) == 0 && (p[7] == ' ' || p[7] == '\t'))
                rc = follow_include(path, p + 8 + strspn(p + 8, " \t"), origin, depth, f, err);
            else
                scan_line(p, f);
        }
    }
    if (rc == 0 && ferror(fp))
        rc = ism_err(err, EIO, "%s%s: %s", path, origin, strerror(EIO));
    free(line);
    fclose(fp);
    return rc;
}

/* Configless Slurm: libslurm asks DNS for the controllers. */
static bool have_dns_srv(void)
{
    unsigned char answer[NS_PACKETSZ];

    return res_search("_slurmctld._tcp", ns_c_in, ns_t_srv, answer, sizeof(answer)) > 0;
}

int ism_slurm_conf_check(const char *conf, char *used, size_t usedsz, ism_error_t *err)
{
    const char *path = conf, *origin = "", *env = getenv("SLURM_CONF");
    struct found f = { false, false };
    struct stat st;

    if (used && usedsz)
        used[0] = '\0';
    if (!path || !*path) {
        if (env) {
            if (!*env)
                return ism_err(err, EINVAL, "SLURM_CONF is set but empty");
            path = env;
            origin = " (from SLURM_CONF)";
        } else if (stat(ISM_SLURM_CONF_DEFAULT, &st) == 0) {
            path = ISM_SLURM_CONF_DEFAULT;
        } else if (stat(ISM_SLURM_CONF_CONFIGLESS, &st) == 0) {
            path = ISM_SLURM_CONF_CONFIGLESS;
        } else if (have_dns_srv()) {
            return 0;
        } else {
            return ism_err(err, ENOENT,
                           "no slurm.conf: SLURM_CONF is not set, " ISM_SLURM_CONF_DEFAULT
                           " does not exist and DNS has no _slurmctld._tcp SRV record for "
                           "configless Slurm");
        }
    }
    if (check_file(path, origin, 0, &f, err) < 0)
        return -1;
    if (!f.cluster_name)
        return ism_err(err, EINVAL, "%s%s: no ClusterName= line (libslurm needs one)", path,
                       origin);
    if (!f.controller)
        return ism_err(err, EINVAL,
                       "%s%s: no SlurmctldHost= (or ControlMachine=) line (libslurm needs one)",
                       path, origin);
    if (used && usedsz)
        snprintf(used, usedsz, "%s", path);
    return 0;
}
