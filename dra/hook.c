/* hook.c - see hook.h */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util/file.h"
#include "dra/hook.h"

/* /proc and /sys files we read are a few KiB; mountinfo can be long on
 * busy nodes (one line per mount). */
#define SMALL_FILE_MAX (64 * 1024)
#define MOUNTINFO_MAX (4 * 1024 * 1024)

/* ---- OCI state ---------------------------------------------------------- */

static bool printable(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

int ism_oci_state_parse(const char *json, size_t len, struct ism_oci_state *out,
                        ism_error_t *err)
{
    struct ism_oci_state st;
    json_error_t jerr;
    json_t *root, *v;
    json_int_t pid;
    const char *s;
    int rc = -1;

    memset(&st, 0, sizeof(st));
    if (!json || !out)
        return ism_err(err, EINVAL, "OCI state: no input");
    if (len > ISM_OCI_STATE_MAX_BYTES)
        return ism_err(err, EINVAL, "OCI state: %zu bytes, more than %d", len,
                       ISM_OCI_STATE_MAX_BYTES);
    if (!(root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)))
        return ism_err(err, EINVAL, "OCI state: not JSON: %s at line %d column %d", jerr.text,
                       jerr.line, jerr.column);
    if (!json_is_object(root)) {
        ism_err(err, EINVAL, "OCI state: not a JSON object");
        goto out;
    }
    v = json_object_get(root, "ociVersion");
    if (!json_is_string(v)) {
        ism_err(err, EINVAL, "OCI state: ociVersion: %s", v ? "not a string" : "missing");
        goto out;
    }
    v = json_object_get(root, "id");
    if (!json_is_string(v) || !(s = json_string_value(v))[0]) {
        ism_err(err, EINVAL, "OCI state: id: %s", v ? "not a non-empty string" : "missing");
        goto out;
    }
    if (strlen(s) >= sizeof(st.id) || strlen(s) != json_string_length(v) || !printable(s)) {
        ism_err(err, EINVAL, "OCI state: id: longer than %zu bytes or not printable ASCII",
                sizeof(st.id) - 1);
        goto out;
    }
    strcpy(st.id, s);
    v = json_object_get(root, "status");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || (strcmp(json_string_value(v), "creating") != 0 &&
                                   strcmp(json_string_value(v), "created") != 0)) {
            ism_err(err, EINVAL,
                    "OCI state: status: not \"creating\" or \"created\" (run the hook as "
                    "createRuntime)");
            goto out;
        }
        strcpy(st.status, json_string_value(v));
    }
    v = json_object_get(root, "pid");
    if (!json_is_integer(v)) {
        ism_err(err, EINVAL, "OCI state: pid: %s", v ? "not an integer" : "missing");
        goto out;
    }
    pid = json_integer_value(v);
    if (pid <= 0 || pid > (json_int_t)INT_MAX || (json_int_t)(pid_t)pid != pid) {
        ism_err(err, EINVAL, "OCI state: pid: %" JSON_INTEGER_FORMAT " is not a process id",
                pid);
        goto out;
    }
    st.pid = (pid_t)pid;
    *out = st;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- finding the cgroup ------------------------------------------------- */

/* Is word one of the comma-separated items of list? */
static bool in_list(const char *list, const char *word)
{
    size_t n = strlen(word);

    while (list && *list) {
        const char *end = strchr(list, ',');
        size_t len = end ? (size_t)(end - list) : strlen(list);

        if (len == n && strncmp(list, word, n) == 0)
            return true;
        list = end ? end + 1 : NULL;
    }
    return false;
}

/* Undo mountinfo's octal escapes (\040 for a space...) in place. */
static void unescape(char *s)
{
    char *w = s;

    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
}

/* A cgroup path as the kernel writes it: absolute, no "." or ".." part. */
static bool sane_path(const char *p)
{
    if (p[0] != '/')
        return false;
    return !strstr(p, "/../") && !strstr(p, "/./") &&
           !(strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0) &&
           !(strlen(p) >= 2 && strcmp(p + strlen(p) - 2, "/.") == 0);
}

/* From /proc/<pid>/cgroup: the cpuset v1 path (v1) and the unified path
 * (v2), each "" when absent. */
static int pid_cgroups(const char *root, pid_t pid, char *v1, char *v2, size_t size,
                       ism_error_t *err)
{
    char path[PATH_MAX], *text, *line, *save = NULL;

    snprintf(path, sizeof(path), "%s/proc/%ld/cgroup", root, (long)pid);
    if (!(text = ism_file_read(path, SMALL_FILE_MAX, NULL, err)))
        return ism_errprefix(err, "the container's init process %ld", (long)pid);
    v1[0] = v2[0] = '\0';
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

        if (!c2)
            continue;
        *c1 = *c2 = '\0';
        if (strcmp(line, "0") == 0 && c2 == c1 + 1)
            snprintf(v2, size, "%s", c2 + 1);
        else if (in_list(c1 + 1, "cpuset"))
            snprintf(v1, size, "%s", c2 + 1);
    }
    free(text);
    if ((v1[0] && !sane_path(v1)) || (v2[0] && !sane_path(v2)))
        return ism_err(err, EINVAL, "%s: a cgroup path is not absolute or has . or ..", path);
    return 0;
}

/* The mount of the cpuset v1 hierarchy (v1) or of cgroup2: its mount
 * point and the cgroup it shows at that point. */
static int find_mount(const char *root, bool v1, char *point, char *mroot, size_t size,
                      ism_error_t *err)
{
    char path[PATH_MAX], *text, *line, *save = NULL;
    int found = 0;

    snprintf(path, sizeof(path), "%s/proc/self/mountinfo", root);
    if (!(text = ism_file_read(path, MOUNTINFO_MAX, NULL, err)))
        return -1;
    for (line = strtok_r(text, "\n", &save); line && !found;
         line = strtok_r(NULL, "\n", &save)) {
        /* id parent major:minor root point options [optional...] - type source super */
        char *f[6], *sep = strstr(line, " - "), *type, *super, *s2 = NULL;
        int i;

        if (!sep)
            continue;
        *sep = '\0';
        for (i = 0; i < 6; i++)
            if (!(f[i] = strtok_r(i ? NULL : line, " ", &s2)))
                break;
        if (i < 6)
            continue;
        s2 = NULL;
        type = strtok_r(sep + 3, " ", &s2);
        (void)strtok_r(NULL, " ", &s2);
        super = strtok_r(NULL, " ", &s2);
        if (!type)
            continue;
        if (v1 ? (strcmp(type, "cgroup") == 0 && in_list(super, "cpuset"))
               : strcmp(type, "cgroup2") == 0) {
            unescape(f[3]);
            unescape(f[4]);
            snprintf(mroot, size, "%s", f[3]);
            snprintf(point, size, "%s", f[4]);
            found = 1;
        }
    }
    free(text);
    if (!found)
        return ism_err(err, ENOENT, "%s: no %s mounted", path,
                       v1 ? "cgroup v1 hierarchy with the cpuset controller" : "cgroup2");
    return 0;
}

/* dir = root + point + (cgpath below mroot). */
static int join(const char *root, const char *point, const char *mroot, const char *cgpath,
                char *dir, size_t size, ism_error_t *err)
{
    size_t n = strlen(mroot);
    const char *rest = cgpath;

    if (strcmp(mroot, "/") != 0) {
        if (strncmp(cgpath, mroot, n) != 0 || (cgpath[n] != '/' && cgpath[n] != '\0'))
            return ism_err(err, ENOENT,
                           "cgroup %s is outside the part of the hierarchy mounted at %s (%s)",
                           cgpath, point, mroot);
        rest = cgpath + n;
    }
    if (strcmp(rest, "/") == 0)
        rest = "";
    if (snprintf(dir, size, "%s%s%s", root, strcmp(point, "/") ? point : "", rest) >= (int)size)
        return ism_err(err, ENAMETOOLONG, "cgroup %s: path too long", cgpath);
    return 0;
}

int ism_cgroup_find(const char *root, pid_t pid, struct ism_cgroup *out, ism_error_t *err)
{
    char v1[PATH_MAX], v2[PATH_MAX], point[PATH_MAX], mroot[PATH_MAX];
    struct ism_cgroup cg;
    char probe[PATH_MAX + 16];

    if (!root || !out || pid <= 0)
        return ism_err(err, EINVAL, "cgroup: invalid argument");
    memset(&cg, 0, sizeof(cg));
    if (pid_cgroups(root, pid, v1, v2, sizeof(v1), err) < 0)
        return -1;
    if (v1[0]) {
        if (find_mount(root, true, point, mroot, sizeof(point), err) < 0 ||
            join(root, point, mroot, v1, cg.dir, sizeof(cg.dir), err) < 0)
            return -1;
        cg.version = ISM_CGROUP_V1;
    } else if (v2[0]) {
        if (find_mount(root, false, point, mroot, sizeof(point), err) < 0 ||
            join(root, point, mroot, v2, cg.dir, sizeof(cg.dir), err) < 0)
            return -1;
        cg.version = ISM_CGROUP_V2;
    } else {
        return ism_err(err, ENOENT,
                       "process %ld is in no cpuset cgroup (neither cgroup v1 cpuset nor v2)",
                       (long)pid);
    }
    snprintf(probe, sizeof(probe), "%s/cpuset.cpus", cg.dir);
    if (access(probe, W_OK) < 0) {
        int e = errno;

        if (e == ENOENT && cg.version == ISM_CGROUP_V2)
            return ism_err(err, e,
                           "%s: the cpuset controller is not enabled for this cgroup "
                           "(add +cpuset to its parent's cgroup.subtree_control)",
                           cg.dir);
        return ism_err(err, e, "%s: %s", probe, strerror(e));
    }
    *out = cg;
    return 0;
}

/* ---- checking and writing ----------------------------------------------- */

static ism_bitmap_t *read_list(const char *path, ism_error_t *err)
{
    char *text = ism_file_read(path, SMALL_FILE_MAX, NULL, err);
    ism_bitmap_t *b;

    if (!text)
        return NULL;
    b = ism_bitmap_parse_list(text, err);
    free(text);
    if (!b)
        ism_errprefix(err, "%s", path);
    return b;
}

/* want within have, else a message naming what is outside. */
static int check_within(const char *what, const ism_bitmap_t *want, const ism_bitmap_t *have,
                        const char *source, ism_error_t *err)
{
    ism_bitmap_t *outside;
    char *o, *h;

    if (ism_bitmap_empty(want))
        return ism_err(err, EINVAL, "%s: the list is empty", what);
    if (ism_bitmap_is_subset(want, have))
        return 0;
    if (!(outside = ism_bitmap_dup(want)))
        return ism_err(err, ENOMEM, "out of memory");
    ism_bitmap_andnot(outside, have);
    o = ism_bitmap_format_list(outside);
    h = ism_bitmap_format_list(have);
    ism_err(err, EINVAL, "%s %s not online on this node (%s online: %s)", what, o ? o : "?",
            source, h ? h : "?");
    free(o);
    free(h);
    ism_bitmap_destroy(outside);
    return -1;
}

int ism_cpuset_check(const char *root, const ism_bitmap_t *cpus, const ism_bitmap_t *mems,
                     ism_error_t *err)
{
    char path[PATH_MAX];
    ism_bitmap_t *online;
    int rc;

    if (!root || !cpus || !mems)
        return ism_err(err, EINVAL, "cpuset check: invalid argument");
    snprintf(path, sizeof(path), "%s/sys/devices/system/cpu/online", root);
    if (!(online = read_list(path, err)))
        return -1;
    rc = check_within("cpus", cpus, online, "cpus", err);
    ism_bitmap_destroy(online);
    if (rc < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/sys/devices/system/node/online", root);
    if (access(path, F_OK) == 0) {
        if (!(online = read_list(path, err)))
            return -1;
    } else {
        /* No NUMA in this kernel: all memory is node 0. */
        if (!(online = ism_bitmap_create()) || ism_bitmap_set(online, 0) < 0) {
            ism_bitmap_destroy(online);
            return ism_err(err, ENOMEM, "out of memory");
        }
    }
    rc = check_within("memory nodes", mems, online, "nodes", err);
    ism_bitmap_destroy(online);
    return rc;
}

static int write_file(const char *path, const char *text, ism_error_t *err)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    size_t len = strlen(text);
    ssize_t n;
    int e;

    if (fd < 0)
        return ism_err(err, errno, "writing \"%s\" to %s: %s", text, path, strerror(errno));
    do
        n = write(fd, text, len);
    while (n < 0 && errno == EINTR);
    e = errno;
    if (close(fd) < 0 && n >= 0) {
        e = errno;
        n = -1;
    }
    if (n < 0)
        return ism_err(err, e, "writing \"%s\" to %s: %s%s", text, path, strerror(e),
                       e == EINVAL ? " (outside the parent cgroup's cpuset?)" : "");
    if ((size_t)n != len)
        return ism_err(err, EIO, "writing \"%s\" to %s: short write", text, path);
    return 0;
}

/* Write want (canonical list) to dir/name and check that it reads back. */
static int set_list(const char *dir, const char *name, const ism_bitmap_t *want,
                    ism_error_t *err)
{
    char path[PATH_MAX + 32], *text;
    ism_bitmap_t *got;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(text = ism_bitmap_format_list(want)))
        return ism_err(err, ENOMEM, "out of memory");
    if (write_file(path, text, err) < 0)
        goto out;
    if (!(got = read_list(path, err)))
        goto out;
    if (!ism_bitmap_equal(got, want)) {
        char *g = ism_bitmap_format_list(got);

        ism_err(err, EIO, "%s: wrote \"%s\" but it reads \"%s\"", path, text, g ? g : "?");
        free(g);
    } else {
        rc = 0;
    }
    ism_bitmap_destroy(got);
out:
    free(text);
    return rc;
}

int ism_cpuset_apply(const struct ism_cgroup *cg, const ism_bitmap_t *cpus,
                     const ism_bitmap_t *mems, ism_error_t *err)
{
    char path[PATH_MAX + 32];
    ism_bitmap_t *old_mems;

    if (!cg || !cpus || !mems)
        return ism_err(err, EINVAL, "cpuset apply: invalid argument");
    snprintf(path, sizeof(path), "%s/cpuset.mems", cg->dir);
    if (!(old_mems = read_list(path, err)))
        return -1;
    if (set_list(cg->dir, "cpuset.mems", mems, err) < 0)
        goto fail;
    if (set_list(cg->dir, "cpuset.cpus", cpus, err) < 0) {
        char *old = ism_bitmap_format_list(old_mems);

        /* Best effort: the error already says what failed.  An empty old
         * list (v2: "inherit the parent's") is written back as it was. */
        if (old) {
            int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

            if (fd >= 0) {
                ssize_t n = write(fd, old[0] ? old : "\n", old[0] ? strlen(old) : 1);
                (void)n;
                close(fd);
            }
        }
        free(old);
        goto fail;
    }
    ism_bitmap_destroy(old_mems);
    return 0;
fail:
    ism_bitmap_destroy(old_mems);
    return -1;
}
