/* services.h - the kubelet plugin's gRPC services, as rpc.h handlers.
 *
 *   /pluginregistration.Registration/GetInfo, .../NotifyRegistrationStatus
 *       on the registration socket the kubelet watches;
 *   /k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources,
 *   .../NodeUnprepareResources on the DRA socket.
 *
 * Messages are the kubelet's own .proto files of the pinned version,
 * compiled at build time with protoc-c.  Every claim of a request gets an
 * entry in the response (the kubelet retries the missing ones); a claim
 * that cannot be prepared carries its error there and the others go on.
 */
#ifndef ISTHMUS_DRA_SERVICES_H
#define ISTHMUS_DRA_SERVICES_H

#include <stdbool.h>
#include <stddef.h>

#include "dra/node.h"
#include "dra/rpc.h"
#include "lib/util/error.h"

#define ISM_DRA_SUPPORTED_VERSION "v1.DRAPlugin"

/* Read claim namespace/name from the API server: its JSON (caller frees)
 * and length, or NULL with err (not found, forbidden, unreachable). */
typedef char *(*ism_claim_fetch_f)(void *arg, const char *ns, const char *name, size_t *len,
                                   ism_error_t *err);

struct ism_plugin {
    const char *driver;     /* ISM_DRA_DRIVER */
    const char *dra_socket; /* endpoint told to the kubelet */
    ism_node_t *node;       /* borrowed */
    ism_claim_fetch_f fetch;
    void *fetch_arg;
    /* What the kubelet said in NotifyRegistrationStatus. */
    bool registered;
    char registration_error[256];
    unsigned long prepared, unprepared, failed; /* claims, for the log */
};

/* The method tables for ism_rpc_listen, bound to plugin (which must
 * outlive the server).  Each fills methods and returns how many. */
int ism_plugin_registration_methods(struct ism_plugin *plugin, struct ism_rpc_method *methods);
int ism_plugin_dra_methods(struct ism_plugin *plugin, struct ism_rpc_method *methods);

#endif
