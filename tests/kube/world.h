/* world.h - a client for the Kubernetes test world named by
 * ISTHMUS_K8S_DIR (tests/world/k8s/start), for the programs in tests/kube.
 */
#ifndef ISTHMUS_TEST_KUBE_WORLD_H
#define ISTHMUS_TEST_KUBE_WORLD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kube.h"

/* A config for the world's user (admin, isthmusd) from its files; the
 * strings live in static buffers until the next call.  NULL when the
 * world cannot be read (the message is on stderr). */
static inline ism_kube_config_t *world_config(const char *user)
{
    static char server[64], ca[512], cert[512], key[512];
    static ism_kube_config_t cfg;
    const char *world = getenv("ISTHMUS_K8S_DIR");
    char path[512], line[256];
    int port = 0;
    FILE *f;

    if (!world) {
        fprintf(stderr, "ISTHMUS_K8S_DIR is not set: run tests/kube/run\n");
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/ports", world);
    if (!(f = fopen(path, "r"))) {
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    while (fgets(line, sizeof(line), f)) {
        char *p = strstr(line, "apiserver=");
        if (p)
            port = atoi(p + strlen("apiserver="));
    }
    fclose(f);
    if (port <= 0) {
        fprintf(stderr, "%s names no apiserver port\n", path);
        return NULL;
    }
    snprintf(server, sizeof(server), "https://127.0.0.1:%d", port);
    snprintf(ca, sizeof(ca), "%s/pki/ca.crt", world);
    snprintf(cert, sizeof(cert), "%s/pki/%s.crt", world, user);
    snprintf(key, sizeof(key), "%s/pki/%s.key", world, user);
    memset(&cfg, 0, sizeof(cfg));
    cfg.server = server;
    cfg.ca_file = ca;
    cfg.cert_file = cert;
    cfg.key_file = key;
    return &cfg;
}

#endif
