/* topology_cache.c - the topology model in a file (see topology_cache.h). */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/topology/topology_cache.h"
#include "lib/util/file.h"
#include "lib/util/hash.h"

#define HEADER "isthmus-topology-cache 1 "

/* FNV-1a (lib/util/hash.h): a change detector, not a defence against
 * forgery (the cache lives in a root-owned directory). */
#define hash_bytes ism_fnv1a_add

/* Hash the name and contents of root/rel; a missing file hashes as such.
 * Returns 1 when the file was read, 0 when missing. */
static int hash_file(uint64_t *h, const char *root, const char *rel, char *buf, size_t size)
{
    char path[512];
    ssize_t n = -1;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    hash_bytes(h, rel, strlen(rel) + 1);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, buf, size - 1);
        close(fd);
    }
    if (n < 0) {
        hash_bytes(h, "-", 1);
        buf[0] = '\0';
        return 0;
    }
    buf[n] = '\0';
    hash_bytes(h, buf, (size_t)n + 1);
    return 1;
}

/* Hash <dir><id>/<file> for every id of the cpu list in list and every
 * file of files. */
static int hash_each(uint64_t *h, const char *root, const char *list, const char *dir,
                     const char *const *files, int nfiles, ism_error_t *err)
{
    ism_bitmap_t *ids = ism_bitmap_parse_list(list, err);
    char rel[128], buf[4096];
    int id;

    if (!ids)
        return -1;
    ism_bitmap_foreach(id, ids) {
        for (int r = 0; r < nfiles; r++) {
            snprintf(rel, sizeof(rel), "%s%d/%s", dir, id, files[r]);
            hash_file(h, root, rel, buf, sizeof(buf));
        }
    }
    ism_bitmap_destroy(ids);
    return 0;
}

int ism_topo_cache_key(const char *sysfs_root, char *key, ism_error_t *err)
{
    static const char *const cpu_files[] = {
        "topology/core_id",
        "topology/physical_package_id",
        "topology/thread_siblings_list",
    };
    static const char *const node_files[] = { "cpulist" };
    uint64_t h = ISM_FNV1A_INIT;
    char online[4096], nodes[4096], scratch[4096];
    char version[32];

    snprintf(version, sizeof(version), "encoding %d", ISM_TOPO_VERSION);
    hash_bytes(&h, version, strlen(version));
    hash_file(&h, sysfs_root, "devices/system/cpu/possible", scratch, sizeof(scratch));
    if (!hash_file(&h, sysfs_root, "devices/system/cpu/online", online, sizeof(online)))
        return ism_err(err, ENOENT, "cannot read %s/devices/system/cpu/online", sysfs_root);
    hash_file(&h, sysfs_root, "devices/system/node/possible", scratch, sizeof(scratch));
    /* Without NUMA support there is no node directory: the key still works. */
    if (!hash_file(&h, sysfs_root, "devices/system/node/online", nodes, sizeof(nodes)))
        strcpy(nodes, "");
    if (hash_each(&h, sysfs_root, online, "devices/system/cpu/cpu", cpu_files, 3, err) < 0 ||
        hash_each(&h, sysfs_root, nodes, "devices/system/node/node", node_files, 1, err) < 0)
        return ism_errprefix(err, "%s", sysfs_root);
    snprintf(key, ISM_TOPO_CACHE_KEY_LEN + 1, "%016" PRIx64, h);
    return 0;
}

ism_topo_t *ism_topo_cache_read(const char *path, const char *key, ism_error_t *err)
{
    ism_topo_t *topo = NULL;
    char *buf, *json;
    size_t hl = strlen(HEADER), kl = strlen(key);

    if (!(buf = ism_file_read(path, ISM_TOPO_CACHE_MAX_BYTES, NULL, err)))
        return NULL;
    json = buf + hl + kl + 1;
    if (strncmp(buf, HEADER, hl) != 0 || strlen(buf) < hl + kl + 1 || buf[hl + kl] != '\n' ||
        strspn(buf + hl, "0123456789abcdef") != kl) {
        ism_err(err, EINVAL, "%s: not a topology cache (bad first line)", path);
    } else if (strncmp(buf + hl, key, kl) != 0) {
        ism_err(err, ESTALE, "%s: stale (key %.*s, the machine now has %s)", path, (int)kl,
                buf + hl, key);
    } else if (!(topo = ism_topo_decode(json, err))) {
        ism_errprefix(err, "%s", path);
        errno = EINVAL;
    }
    free(buf);
    return topo;
}

static int mkdir_parent(const char *path, ism_error_t *err)
{
    char *dir = strdup(path), *slash;
    int rc = 0;

    if (!dir)
        return ism_err(err, ENOMEM, "out of memory");
    if ((slash = strrchr(dir, '/')) && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            rc = ism_err(err, errno, "%s: %s", dir, strerror(errno));
    }
    free(dir);
    return rc;
}

int ism_topo_cache_write(const char *path, const char *key, const ism_topo_t *topo,
                         ism_error_t *err)
{
    char *json = NULL, *tmp = NULL;
    FILE *f = NULL;
    int fd = -1, rc = -1;

    if (mkdir_parent(path, err) < 0 || !(json = ism_topo_encode(topo, err)))
        goto out;
    if (!(tmp = malloc(strlen(path) + 8))) {
        ism_err(err, ENOMEM, "out of memory");
        goto out;
    }
    sprintf(tmp, "%s.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0 || fchmod(fd, 0644) < 0 || !(f = fdopen(fd, "w"))) {
        ism_err(err, errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    /* Close whatever the write did: a failed fprintf must not keep f. */
    {
        int wrote = fprintf(f, HEADER "%s\n%s\n", key, json) >= 0;
        int write_errno = errno;
        int closed = fclose(f) == 0;

        f = NULL;
        if (!wrote || !closed) {
            int e = !wrote ? write_errno : errno;
            ism_err(err, e ? e : EIO, "%s: write failed: %s", tmp, strerror(e ? e : EIO));
            goto out;
        }
    }
    if (rename(tmp, path) < 0) {
        ism_err(err, errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    rc = 0;
out:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(json);
    return rc;
}
