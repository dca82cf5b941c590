/* services.c - see services.h */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dra/cdi.h"
#include "dra/claim.h"
#include "dra/services.h"
#include "lib/util/log.h"

#include "dra/v1/api.pb-c.h"
#include "pluginregistration/v1/api.pb-c.h"

/* Short names for the generated ones. */
typedef Pluginregistration__PluginInfo PluginInfo;
typedef Pluginregistration__RegistrationStatus RegistrationStatus;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesRequest PrepareReq;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesResponse PrepareResp;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourcesResponse__ClaimsEntry PrepareEntry;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodePrepareResourceResponse PrepareOne;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__Device Device;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourcesRequest UnprepareReq;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourcesResponse UnprepareResp;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourcesResponse__ClaimsEntry UnprepareEntry;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__NodeUnprepareResourceResponse UnprepareOne;
typedef K8s__Io__Kubelet__Pkg__Apis__Dra__V1__Claim Claim;

/* Free a string field, which protobuf-c's init points at a shared "". */
static void free_str(char *s)
{
    if (s != protobuf_c_empty_string)
        free(s);
}

/* Pack a message into a malloc'ed buffer; ISM_RPC_OK or INTERNAL. */
static int pack(const ProtobufCMessage *m, uint8_t **out, size_t *len, char *msg, size_t size)
{
    *len = protobuf_c_message_get_packed_size(m);
    if (!(*out = malloc(*len ? *len : 1))) {
        snprintf(msg, size, "out of memory");
        return ISM_RPC_INTERNAL;
    }
    protobuf_c_message_pack(m, *out);
    return ISM_RPC_OK;
}

/* ---- registration ------------------------------------------------------- */

static int get_info(void *arg, const uint8_t *req, size_t len, uint8_t **resp, size_t *resp_len,
                    char *msg, size_t size)
{
    struct ism_plugin *p = arg;
    PluginInfo info = PLUGINREGISTRATION__PLUGIN_INFO__INIT;
    char *versions[] = { (char *)ISM_DRA_SUPPORTED_VERSION };

    (void)req;
    (void)len; /* InfoRequest is empty */
    info.type = (char *)"DRAPlugin";
    info.name = (char *)p->driver;
    info.endpoint = (char *)p->dra_socket;
    info.n_supported_versions = 1;
    info.supported_versions = versions;
    ism_log_debug("kubelet asked for the plugin's info");
    return pack(&info.base, resp, resp_len, msg, size);
}

static int notify_registration(void *arg, const uint8_t *req, size_t len, uint8_t **resp,
                               size_t *resp_len, char *msg, size_t size)
{
    struct ism_plugin *p = arg;
    RegistrationStatus *st = pluginregistration__registration_status__unpack(NULL, len, req);

    if (!st) {
        snprintf(msg, size, "cannot decode RegistrationStatus");
        return ISM_RPC_INVALID_ARGUMENT;
    }
    p->registered = st->plugin_registered;
    snprintf(p->registration_error, sizeof(p->registration_error), "%s",
             st->error ? st->error : "");
    if (st->plugin_registered)
        ism_log_notice("registered with the kubelet as %s", p->driver);
    else
        ism_log_error("the kubelet refused the registration: %s",
                      st->error && st->error[0] ? st->error : "(no reason given)");
    pluginregistration__registration_status__free_unpacked(st, NULL);
    *resp = NULL; /* RegistrationStatusResponse is empty */
    *resp_len = 0;
    return ISM_RPC_OK;
}

int ism_plugin_registration_methods(struct ism_plugin *plugin, struct ism_rpc_method *m)
{
    m[0] = (struct ism_rpc_method){ "/pluginregistration.Registration/GetInfo", get_info, plugin };
    m[1] = (struct ism_rpc_method){ "/pluginregistration.Registration/NotifyRegistrationStatus",
                                    notify_registration, plugin };
    return 2;
}

/* ---- DRA ---------------------------------------------------------------- */

/* One claim: prepared (devices filled, all pointing into rec and the
 * strings given) or an error message into one->error (malloc'ed). */
static void prepare_one(struct ism_plugin *p, const Claim *c, PrepareOne *one, char *cdi_id,
                        size_t cdi_size)
{
    ism_error_t err = ISM_ERROR_INIT;
    const struct ism_prepared *rec;
    char *json = NULL;
    size_t len = 0;
    int i;

    if (!c->uid || !c->namespace_ || !c->name || !c->uid[0] || !c->namespace_[0] || !c->name[0]) {
        ism_err(&err, EINVAL, "claim without namespace, name or UID");
        goto fail;
    }
    if (!ism_dra_uid_valid(c->uid)) {
        ism_err(&err, EINVAL, "prepare: claim UID is not a UID");
        goto fail;
    }
    if (!(rec = ism_node_find(p->node, c->uid))) {
        if (!p->fetch) {
            ism_err(&err, ENOTSUP, "claim %s/%s: no API server to read it from", c->namespace_,
                    c->name);
            goto fail;
        }
        if (!(json = p->fetch(p->fetch_arg, c->namespace_, c->name, &len, &err))) {
            ism_errprefix(&err, "claim %s/%s", c->namespace_, c->name);
            goto fail;
        }
    }
    if (ism_node_prepare(p->node, c->namespace_, c->name, c->uid, json, len, &rec, &err) < 0)
        goto fail;
    free(json);
    json = NULL; /* the failures below free it again otherwise */
    if (ism_cdi_device_id(rec->alloc.uid, cdi_id, cdi_size) < 0) {
        ism_err(&err, ENAMETOOLONG, "CDI device id too long");
        goto fail;
    }
    /* Copies: rec moves when the next claim of the request is recorded. */
    one->devices = calloc((size_t)rec->alloc.ndevs, sizeof(*one->devices));
    for (i = 0; one->devices && i < rec->alloc.ndevs; i++) {
        Device *d = calloc(1, sizeof(*d));

        if (!d)
            break;
        k8s__io__kubelet__pkg__apis__dra__v1__device__init(d);
        one->devices[i] = d;
        one->n_devices = (size_t)i + 1;
        d->request_names = calloc(1, sizeof(char *));
        d->cdi_device_ids = calloc(1, sizeof(char *));
        if (!d->request_names || !d->cdi_device_ids ||
            !(d->request_names[0] = strdup(rec->alloc.devs[i].request)) ||
            !(d->pool_name = strdup(rec->alloc.devs[i].pool)) ||
            !(d->device_name = strdup(rec->alloc.devs[i].device)))
            break;
        d->n_request_names = 1;
        d->cdi_device_ids[0] = cdi_id;
        d->n_cdi_device_ids = 1;
    }
    if (!one->devices || i < rec->alloc.ndevs) {
        ism_err(&err, ENOMEM, "out of memory");
        goto fail;
    }
    p->prepared++;
    ism_log_info("prepared claim %s/%s (%s): cpus %s, memory nodes %s", c->namespace_, c->name,
                 c->uid, rec->cpus, rec->mems);
    return;
fail:
    free(json);
    p->failed++;
    one->error = strdup(err.text);
    ism_log_warn("prepare: %s", err.text);
}

static void free_one(PrepareOne *one)
{
    size_t i;

    for (i = 0; i < one->n_devices && one->devices; i++) {
        Device *d = one->devices[i];

        if (d->request_names)
            free(d->request_names[0]);
        free(d->request_names);
        free(d->cdi_device_ids);
        free_str(d->pool_name);
        free_str(d->device_name);
        free(d);
    }
    free(one->devices);
    free_str(one->error);
}

static int node_prepare(void *arg, const uint8_t *req, size_t len, uint8_t **resp,
                        size_t *resp_len, char *msg, size_t size)
{
    struct ism_plugin *p = arg;
    PrepareReq *rq = k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__unpack(
        NULL, len, req);
    PrepareResp out = K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_PREPARE_RESOURCES_RESPONSE__INIT;
    PrepareEntry *entries = NULL, **ptrs = NULL;
    PrepareOne *ones = NULL;
    char (*ids)[160] = NULL;
    size_t i;
    int rc;

    if (!rq) {
        snprintf(msg, size, "cannot decode NodePrepareResourcesRequest");
        return ISM_RPC_INVALID_ARGUMENT;
    }
    if (rq->n_claims > 0 &&
        (!(entries = calloc(rq->n_claims, sizeof(*entries))) ||
         !(ptrs = calloc(rq->n_claims, sizeof(*ptrs))) ||
         !(ones = calloc(rq->n_claims, sizeof(*ones))) ||
         !(ids = calloc(rq->n_claims, sizeof(*ids))))) {
        rc = ISM_RPC_INTERNAL;
        snprintf(msg, size, "out of memory");
        goto out;
    }
    for (i = 0; i < rq->n_claims; i++) {
        k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_response__claims_entry__init(
            &entries[i]);
        k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resource_response__init(&ones[i]);
        prepare_one(p, rq->claims[i], &ones[i], ids[i], sizeof(ids[i]));
        entries[i].key = rq->claims[i]->uid ? rq->claims[i]->uid : (char *)"";
        entries[i].value = &ones[i];
        ptrs[i] = &entries[i];
    }
    out.n_claims = rq->n_claims;
    out.claims = ptrs;
    rc = pack(&out.base, resp, resp_len, msg, size);
out:
    for (i = 0; ones && i < rq->n_claims; i++)
        free_one(&ones[i]);
    free(ones);
    free(ids);
    free(ptrs);
    free(entries);
    k8s__io__kubelet__pkg__apis__dra__v1__node_prepare_resources_request__free_unpacked(rq, NULL);
    return rc;
}

static int node_unprepare(void *arg, const uint8_t *req, size_t len, uint8_t **resp,
                          size_t *resp_len, char *msg, size_t size)
{
    struct ism_plugin *p = arg;
    UnprepareReq *rq =
        k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_request__unpack(NULL, len,
                                                                                      req);
    UnprepareResp out =
        K8S__IO__KUBELET__PKG__APIS__DRA__V1__NODE_UNPREPARE_RESOURCES_RESPONSE__INIT;
    UnprepareEntry *entries = NULL, **ptrs = NULL;
    UnprepareOne *ones = NULL;
    size_t i;
    int rc;

    if (!rq) {
        snprintf(msg, size, "cannot decode NodeUnprepareResourcesRequest");
        return ISM_RPC_INVALID_ARGUMENT;
    }
    if (rq->n_claims > 0 && (!(entries = calloc(rq->n_claims, sizeof(*entries))) ||
                             !(ptrs = calloc(rq->n_claims, sizeof(*ptrs))) ||
                             !(ones = calloc(rq->n_claims, sizeof(*ones))))) {
        rc = ISM_RPC_INTERNAL;
        snprintf(msg, size, "out of memory");
        goto out;
    }
    for (i = 0; i < rq->n_claims; i++) {
        const Claim *c = rq->claims[i];
        ism_error_t err = ISM_ERROR_INIT;

        k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_response__claims_entry__init(
            &entries[i]);
        k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resource_response__init(&ones[i]);
        if (ism_node_unprepare(p->node, c->uid ? c->uid : "", &err) < 0) {
            ones[i].error = strdup(err.text);
            p->failed++;
            ism_log_warn("unprepare: %s", err.text);
        } else {
            p->unprepared++;
            ism_log_info("unprepared claim %s/%s (%s)", c->namespace_ ? c->namespace_ : "",
                         c->name ? c->name : "", c->uid);
        }
        entries[i].key = c->uid ? c->uid : (char *)"";
        entries[i].value = &ones[i];
        ptrs[i] = &entries[i];
    }
    out.n_claims = rq->n_claims;
    out.claims = ptrs;
    rc = pack(&out.base, resp, resp_len, msg, size);
out:
    for (i = 0; ones && i < rq->n_claims; i++)
        free_str(ones[i].error);
    free(ones);
    free(ptrs);
    free(entries);
    k8s__io__kubelet__pkg__apis__dra__v1__node_unprepare_resources_request__free_unpacked(rq, NULL);
    return rc;
}

int ism_plugin_dra_methods(struct ism_plugin *plugin, struct ism_rpc_method *m)
{
    m[0] = (struct ism_rpc_method){ "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources",
                                    node_prepare, plugin };
    m[1] = (struct ism_rpc_method){
        "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodeUnprepareResources", node_unprepare, plugin
    };
    return 2;
}
