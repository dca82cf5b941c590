/* cpu_manager.c - see cpu_manager.h */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dra/cpu_manager.h"
#include "lib/util/file.h"

int ism_cpu_manager_parse(const char *text, size_t len, char *policy, size_t size,
                          ism_error_t *err)
{
    json_error_t jerr;
    json_t *root, *name;
    const char *s;
    size_t n, i;

    if (!text || !policy || size < 2)
        return ism_err(err, EINVAL, "invalid arguments");
    if (!(root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)))
        return ism_err(err, EINVAL, "not JSON (line %d: %s)", jerr.line, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return ism_err(err, EINVAL, "not a JSON object");
    }
    name = json_object_get(root, "policyName");
    if (!json_is_string(name)) {
        json_decref(root);
        return ism_err(err, EINVAL, "policyName: %s", name ? "not a string" : "missing");
    }
    s = json_string_value(name);
    n = json_string_length(name);
    for (i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && s[i] != '-' && s[i] != '_')
            break;
    if (n == 0 || n >= size || i < n) {
        json_decref(root);
        return ism_err(err, EINVAL, "policyName: not a policy name (1 to %zu letters, digits, '-', '_')",
                       size - 1);
    }
    memcpy(policy, s, n + 1);
    json_decref(root);
    return 0;
}

int ism_cpu_manager_read(const char *path, char *policy, size_t size, ism_error_t *err)
{
    size_t len;
    char *text;
    int rc;

    if (!path)
        return ism_err(err, EINVAL, "invalid arguments");
    if (!(text = ism_file_read(path, ISM_CPU_MANAGER_STATE_MAX, &len, err)))
        return -1;
    rc = ism_cpu_manager_parse(text, len, policy, size, err);
    free(text);
    if (rc < 0)
        return ism_errprefix(err, "%s", path);
    return 0;
}

int ism_cpu_manager_check(const char *policy, const char *path, ism_error_t *err)
{
    if (!policy || !path)
        return ism_err(err, EINVAL, "invalid arguments");
    if (strcmp(policy, "none") == 0)
        return 0;
    return ism_err(err, EPERM,
                   "the kubelet runs CPU manager policy \"%s\" (%s): it writes its own cpusets over "
                   "the cores of cpu.isthmus.io claims; run this node's kubelet with "
                   "cpuManagerPolicy: none (removing %s when changing it), or do not run "
                   "isthmus-kubelet-plugin on this node",
                   policy, path, path);
}
