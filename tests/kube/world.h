/* world.h - a client config for the Kubernetes test world named by
 * ISTHMUS_K8S_DIR (tests/world/k8s/start), for the programs in tests/kube.
 */
#ifndef ISTHMUS_TEST_KUBE_WORLD_H
#define ISTHMUS_TEST_KUBE_WORLD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kube/kube_config.h"

/* The config of the world's user "admin" or "isthmusd", read from the
 * kubeconfig the world wrote for it (DIR/USER.kubeconfig) by the project's
 * own reader.  Loaded once per user and kept for the life of the process;
 * callers copy the struct to change a field.  NULL when the world cannot be
 * read (the message is on stderr). */
static inline ism_kube_config_t *world_config(const char *user)
{
    static ism_kube_config_t *loaded[2];
    const char *world = getenv("ISTHMUS_K8S_DIR");
    int slot = strcmp(user, "admin") == 0 ? 0 : 1;
    ism_error_t err = ISM_ERROR_INIT;
    char path[512];

    if (loaded[slot])
        return loaded[slot];
    if (!world) {
        fprintf(stderr, "ISTHMUS_K8S_DIR is not set: run tests/kube/run\n");
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/%s.kubeconfig", world, user);
    if (!(loaded[slot] = ism_kube_config_load(path, NULL, &err)))
        fprintf(stderr, "%s\n", err.text);
    return loaded[slot];
}

#endif
