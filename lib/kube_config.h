/* kube_config.h - where the Kubernetes API server is and how to prove who
 * we are to it.
 *
 * Two sources, as client-go has them:
 *  - kubeconfig files (YAML, read with libyaml), several of them merged the
 *    way kubectl merges $KUBECONFIG: for clusters, users and contexts the
 *    first file that defines a name wins, current-context comes from the
 *    first file that sets it, files in the list that do not exist are
 *    skipped.  Relative file names inside a kubeconfig are relative to the
 *    directory of the file that names them.
 *  - in-cluster: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT and the
 *    service-account directory (token, ca.crt, namespace).
 *
 * Supported credentials: client certificate and key (file or inline data),
 * bearer token (inline, or a file re-read when it changes).  exec plugins,
 * auth-provider and basic auth are refused with an error naming the user
 * entry.  TLS is always verified unless the kubeconfig says
 * insecure-skip-tls-verify: true (the client then warns once).
 *
 * Ownership: a config is created by one of the load functions and owned by
 * the caller, who frees it with ism_kube_config_destroy().  Every string
 * and buffer in it belongs to it.  Not thread-safe; read-only after load.
 */
#ifndef ISTHMUS_KUBE_CONFIG_H
#define ISTHMUS_KUBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Where a service account's files are mounted in a pod. */
#define ISM_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct {
    char *server;          /* "https://host:port[/prefix]", never ends in '/' */
    char *context;         /* context used; NULL for in-cluster */
    char *namespace_;      /* the context's namespace, else "default" */

    /* Trust.  ca_file or ca_data (PEM), at most one; neither = system CAs. */
    char *ca_file;
    char *ca_data;
    size_t ca_data_len;
    char *tls_server_name; /* name to verify instead of the server's host */
    bool insecure;         /* insecure-skip-tls-verify: true */
    char *proxy_url;       /* proxy-url of the cluster, or NULL */

    /* Client certificate: *_file or *_data (PEM) each, or none. */
    char *cert_file;
    char *cert_data;
    size_t cert_data_len;
    char *key_file;
    char *key_data;
    size_t key_data_len;

    /* Bearer token: token, or token_file (read by the client at each use
     * when it has changed), or neither. */
    char *token;
    char *token_file;
} ism_kube_config_t;

/* Load from kubeconfig files.  paths is a colon-separated list as in
 * $KUBECONFIG; NULL means $KUBECONFIG, or ~/.kube/config when that is unset
 * or empty.  context NULL means the merged current-context.  Fails (EINVAL,
 * ENOENT, ...) when no listed file exists, when a file is not a valid
 * kubeconfig (the message names the file, and the line when libyaml gives
 * one), when the context, its cluster or its user is missing, or when the
 * user's credentials are of an unsupported kind. */
ism_kube_config_t *ism_kube_config_load(const char *paths, const char *context,
                                        ism_error_t *err);

/* Parse one kubeconfig held in memory; origin names it in messages and
 * relative paths in it are taken relative to dir (NULL: the current
 * directory).  The same rules as ism_kube_config_load(). */
ism_kube_config_t *ism_kube_config_parse(const char *text, size_t len, const char *origin,
                                         const char *dir, const char *context,
                                         ism_error_t *err);

/* In-cluster config: server from KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT (IPv6 hosts bracketed), token_file, ca_file and
 * namespace from sa_dir (NULL: ISM_KUBE_SA_DIR).  Fails with ENOENT when not
 * running in a pod. */
ism_kube_config_t *ism_kube_config_in_cluster(const char *sa_dir, ism_error_t *err);

/* What a daemon wants: the kubeconfig files when $KUBECONFIG is set or
 * ~/.kube/config exists, else the in-cluster config. */
ism_kube_config_t *ism_kube_config_default(const char *context, ism_error_t *err);

/* Free a config; NULL is fine; errno is kept. */
void ism_kube_config_destroy(ism_kube_config_t *cfg);

#endif
