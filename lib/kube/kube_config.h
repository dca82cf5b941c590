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
 * bearer token (inline, or a file re-read when it changes), or none (a
 * context without a user).  exec plugins, auth-provider, basic auth
 * (username/password) and impersonation (as, as-uid, as-groups,
 * as-user-extra) are refused with ENOTSUP and a message naming the user
 * entry.  TLS is always verified unless the kubeconfig says
 * insecure-skip-tls-verify: true (the client then warns once).
 *
 * How a kubeconfig is read (kubectl's rules, stricter where kubectl would
 * only fail later or guess):
 *  - YAML 1.1 as kubectl takes it: block or flow style, or JSON; anchors
 *    and aliases are resolved; merge keys (<<) are refused.  One document.
 *  - Unknown keys are ignored.  A known key of the wrong type, anywhere in
 *    the file (even in entries not used), fails the file with
 *    "file:line: key: expected ...".  A known key given twice in one
 *    mapping, and two entries of one list with the same name (kubectl
 *    refuses those too), are errors.  An empty string or null is unset.
 *  - Booleans are plain true/false/yes/no/on/off (any of the YAML 1.1
 *    spellings); a quoted "true" is a type error, as in kubectl.  Any
 *    scalar is taken where a string is expected (kubectl refuses a plain
 *    number there, e.g. "server: 12345"; the server check then fails).
 *  - *-data values are standard padded base64 (line breaks allowed) that
 *    must decode to PEM text; the decoded buffers are NUL-terminated.
 *  - certificate-authority, client-certificate, client-key and tokenFile
 *    are made absolute against the directory of the file that names them
 *    (the current directory for ism_kube_config_parse without dir) and
 *    must be readable when the config is loaded.
 *  - server: http:// or https:// URL; a bare host[:port][/prefix] means
 *    https; trailing slashes are dropped.  server, token, tls-server-name
 *    and proxy-url may not hold spaces or control characters (they end up
 *    in URLs and headers); a context's namespace must be an RFC 1123
 *    label (it goes into request paths).
 *  - Refused as contradictions: certificate-authority with its -data,
 *    client-certificate (or -key) with its -data, token with tokenFile,
 *    a certificate without a key or the reverse, insecure-skip-tls-verify
 *    with a certificate authority, a cluster without a server.
 *  - Hostile input: files over 1 MiB (EFBIG), nesting deeper than 64, more
 *    than 100 anchors, and alias trees that would expand past 2,000,000
 *    nodes are refused.
 *
 * errno on failure: ENOENT when there is no kubeconfig (or, in-cluster,
 * no pod environment or token), EINVAL for a file that is not a valid
 * kubeconfig or names something it does not define, ENOTSUP for
 * unsupported credentials, EFBIG, EISDIR, EACCES and ENOMEM as they come.
 *
 * Ownership: a config is created by one of the load functions and owned by
 * the caller, who frees it with ism_kube_config_destroy().  Every string
 * and buffer in it belongs to it.  Not thread-safe; read-only after load.
 */
#ifndef ISTHMUS_KUBE_CONFIG_H
#define ISTHMUS_KUBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/util/error.h"

/* Where a service account's files are mounted in a pod. */
#define ISM_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct {
    char *server;          /* "https://host[:port][/prefix]" (or http://), no '/' at the end */
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
 * $KUBECONFIG (empty entries and files that do not exist are skipped);
 * NULL or "" means $KUBECONFIG, or ~/.kube/config when that is unset or
 * empty.  context NULL means the merged current-context.  Fails with ENOENT
 * when no listed file exists; with EINVAL, ENOTSUP, ... when any listed
 * file is not a valid kubeconfig (the message names the file, and the line
 * when there is one), when no context is named or current, when the
 * context, its cluster or its user is missing, or when the user's
 * credentials are of an unsupported kind. */
ism_kube_config_t *ism_kube_config_load(const char *paths, const char *context,
                                        ism_error_t *err);

/* Parse one kubeconfig held in memory; origin names it in messages and
 * relative paths in it are taken relative to dir (NULL: the current
 * directory).  The same rules as ism_kube_config_load(). */
ism_kube_config_t *ism_kube_config_parse(const char *text, size_t len, const char *origin,
                                         const char *dir, const char *context,
                                         ism_error_t *err);

/* In-cluster config: server https://HOST:PORT from KUBERNETES_SERVICE_HOST
 * and KUBERNETES_SERVICE_PORT (IPv6 hosts bracketed), token_file (must be
 * readable), ca_file (NULL with a logged warning when ca.crt is missing, as
 * client-go does: system CAs) and namespace (the namespace file, trimmed;
 * "default" when absent or empty) from sa_dir (NULL: ISM_KUBE_SA_DIR).
 * Fails with ENOENT when not running in a pod (variables unset, no token),
 * EINVAL for a malformed host, port or namespace. */
ism_kube_config_t *ism_kube_config_in_cluster(const char *sa_dir, ism_error_t *err);

/* What a daemon wants: the kubeconfig files when $KUBECONFIG is set or
 * ~/.kube/config exists, else the in-cluster config.  A context named
 * when there is no kubeconfig is an error (ENOENT): a pod has no contexts. */
ism_kube_config_t *ism_kube_config_default(const char *context, ism_error_t *err);

/* A deep copy of cfg (the caller owns it), or NULL with errno set. */
ism_kube_config_t *ism_kube_config_copy(const ism_kube_config_t *cfg);

/* Free a config; NULL is fine; errno is kept. */
void ism_kube_config_destroy(ism_kube_config_t *cfg);

#endif
