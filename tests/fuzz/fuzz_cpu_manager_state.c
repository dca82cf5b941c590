/* Fuzz target: the kubelet's CPU manager checkpoint as the kubelet plugin
 * reads it at start (dra/cpu_manager.h): any file may sit at that path.
 * A policy read must be a short name of the allowed characters, and only
 * "none" may pass the check; a refusal must say why. */
#include <config.h>
#include <string.h>

#include "dra/cpu_manager.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ism_error_t err = ISM_ERROR_INIT;
    char policy[64];
    size_t n;

    if (ism_cpu_manager_parse((const char *)data, size, policy, sizeof(policy), &err) < 0) {
        if (!err.text[0])
            abort();
        return 0;
    }
    n = strlen(policy);
    if (n == 0 || n >= sizeof(policy) || strspn(policy, "abcdefghijklmnopqrstuvwxyz"
                                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != n)
        abort();
    if ((ism_cpu_manager_check(policy, "/x", &err) == 0) != (strcmp(policy, "none") == 0))
        abort();
    return 0;
}
