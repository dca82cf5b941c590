/* isthmus-kubelet-plugin - the DRA kubelet plugin of driver cpu.isthmus.io.
 *
 * Serves the kubelet's plugin registration service on
 * <registry-dir>/<driver>-reg.sock and the DRA v1 service on
 * <plugin-dir>/dra.sock; prepares claims into CDI specs (node.h) from the
 * node's topology (the same model and cache file as the SPANK plugin) and
 * the claims read from the API server.  See isthmus-kubelet-plugin(8).
 *
 * Runs in the foreground (systemd, a DaemonSet): signals only set a flag;
 * the loop serves gRPC calls and stops cleanly on SIGTERM or SIGINT.
 */
#include <config.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "dra/claim.h"
#include "dra/cpu_manager.h"
#include "dra/node.h"
#include "dra/rpc.h"
#include "dra/services.h"
#include "lib/kube/kube.h"
#include "lib/topology/topology_cache.h"
#include "lib/util/log.h"

#ifndef ISM_SBINDIR
#define ISM_SBINDIR "/usr/sbin"
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

struct opts {
    const char *driver, *node_name, *plugin_dir, *registry_dir, *state_dir, *cdi_dir, *hook;
    const char *topology_cache, *kubeconfig, *log_level, *cpu_manager_state;
    char node_buf[256], cache_buf[512], plugin_buf[512];
    int no_api;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: isthmus-kubelet-plugin [options]\n"
            "  --node-name=NAME       this node's pool (default: $NODE_NAME, else the host name)\n"
            "  --driver=NAME          DRA driver (default " ISM_DRA_DRIVER ")\n"
            "  --plugin-dir=DIR       where dra.sock goes (default /var/lib/kubelet/plugins/DRIVER)\n"
            "  --registry-dir=DIR     the kubelet's registry (default /var/lib/kubelet/plugins_registry)\n"
            "  --state-dir=DIR        the checkpoint (default /var/lib/isthmus/kubelet-plugin)\n"
            "  --cdi-dir=DIR          CDI specs (default /var/run/cdi)\n"
            "  --hook=PATH            isthmus-oci-hook (default " ISM_SBINDIR "/isthmus-oci-hook)\n"
            "  --topology-cache=FILE  (default /run/isthmus/topology-HOST.json)\n"
            "  --cpu-manager-state=FILE  the kubelet's CPU manager checkpoint, read at start\n"
            "                         (default /var/lib/kubelet/cpu_manager_state)\n"
            "  --kubeconfig=FILES     (default $KUBECONFIG, ~/.kube/config, or in-cluster)\n"
            "  --no-api               never read claims (prepare answers from the checkpoint)\n"
            "  --log-level=LEVEL      error, warning, notice, info (default), debug\n"
            "  -f, --foreground       accepted; the plugin always runs in the foreground\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        { "driver", required_argument, NULL, 'd' },
        { "node-name", required_argument, NULL, 'n' },
        { "plugin-dir", required_argument, NULL, 'p' },
        { "registry-dir", required_argument, NULL, 'r' },
        { "state-dir", required_argument, NULL, 's' },
        { "cdi-dir", required_argument, NULL, 'c' },
        { "hook", required_argument, NULL, 'k' },
        { "topology-cache", required_argument, NULL, 't' },
        { "kubeconfig", required_argument, NULL, 'K' },
        { "cpu-manager-state", required_argument, NULL, 'C' },
        { "no-api", no_argument, NULL, 'N' },
        { "log-level", required_argument, NULL, 'l' },
        { "foreground", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct utsname u;
    int c;

    memset(o, 0, sizeof(*o));
    o->driver = ISM_DRA_DRIVER;
    o->registry_dir = "/var/lib/kubelet/plugins_registry";
    o->state_dir = "/var/lib/isthmus/kubelet-plugin";
    o->cdi_dir = "/var/run/cdi";
    o->hook = ISM_SBINDIR "/isthmus-oci-hook";
    o->cpu_manager_state = "/var/lib/kubelet/cpu_manager_state";
    o->log_level = "info";
    while ((c = getopt_long(argc, argv, "fhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o->driver = optarg; break;
        case 'n': o->node_name = optarg; break;
        case 'p': o->plugin_dir = optarg; break;
        case 'r': o->registry_dir = optarg; break;
        case 's': o->state_dir = optarg; break;
        case 'c': o->cdi_dir = optarg; break;
        case 'k': o->hook = optarg; break;
        case 't': o->topology_cache = optarg; break;
        case 'K': o->kubeconfig = optarg; break;
        case 'C': o->cpu_manager_state = optarg; break;
        case 'N': o->no_api = 1; break;
        case 'l': o->log_level = optarg; break;
        case 'f': break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("isthmus-kubelet-plugin %s\n", PACKAGE_VERSION); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return -1;
    }
    if (uname(&u) < 0)
        snprintf(u.nodename, sizeof(u.nodename), "localhost");
    if (!o->node_name)
        o->node_name = getenv("NODE_NAME");
    if (!o->node_name || !o->node_name[0]) {
        snprintf(o->node_buf, sizeof(o->node_buf), "%s", u.nodename);
        o->node_name = o->node_buf;
    }
    if (!o->topology_cache) {
        snprintf(o->cache_buf, sizeof(o->cache_buf), "/run/isthmus/topology-%s.json", u.nodename);
        o->topology_cache = o->cache_buf;
    }
    if (!o->plugin_dir) {
        snprintf(o->plugin_buf, sizeof(o->plugin_buf), "/var/lib/kubelet/plugins/%s", o->driver);
        o->plugin_dir = o->plugin_buf;
    }
    return 0;
}

/* The node's topology: $ISTHMUS_HWLOC_XMLFILE, else the cache file when it
 * still describes this machine, else hwloc (and the cache is refreshed). */
static ism_topo_t *load_topology(const char *cache, ism_error_t *err)
{
    char key[ISM_TOPO_CACHE_KEY_LEN + 1] = "";
    ism_error_t cerr = ISM_ERROR_INIT;
    ism_topo_t *topo;

    if (getenv("ISTHMUS_HWLOC_XMLFILE"))
        return ism_topo_load_default(err);
    if (ism_topo_cache_key("/sys", key, &cerr) == 0 && (topo = ism_topo_cache_read(cache, key, &cerr)))
        return topo;
    ism_log_info("topology cache: %s; asking hwloc", cerr.text);
    if (!(topo = ism_topo_from_live(err)))
        return NULL;
    ism_error_clear(&cerr);
    if (key[0] && ism_topo_cache_write(cache, key, topo, &cerr) < 0)
        ism_log_warn("cannot write the topology cache: %s", cerr.text);
    return topo;
}

/* Refuse to run beside a kubelet whose CPU manager would undo our cpusets
 * (cpu_manager.h).  A missing state file is a kubelet that has not started
 * yet, or one with another root directory: said, and not fatal. */
static int check_cpu_manager(const char *path, ism_error_t *err)
{
    char policy[64];

    if (ism_cpu_manager_read(path, policy, sizeof(policy), err) < 0) {
        if (errno != ENOENT)
            return ism_errprefix(err, "the kubelet's CPU manager state");
        ism_log_warn("%s does not exist: cannot tell the kubelet's CPU manager policy "
                     "(not started yet, or another --root-dir?); only \"none\" works with "
                     "cpu.isthmus.io claims",
                     path);
        ism_error_clear(err);
        return 0;
    }
    if (ism_cpu_manager_check(policy, path, err) < 0)
        return -1;
    ism_log_info("the kubelet's CPU manager policy is %s (%s)", policy, path);
    return 0;
}

/* mkdir -p, mode 0750 for what is created. */
static int mkdir_p(const char *dir, ism_error_t *err)
{
    char path[512], *p;

    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
        return ism_err(err, ENAMETOOLONG, "%s: too long", dir);
    for (p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;

            *p = '\0';
            if (mkdir(path, 0750) < 0 && errno != EEXIST)
                return ism_err(err, errno, "%s: %s", path, strerror(errno));
            *p = c;
            if (!c)
                return 0;
        }
    }
}

static const ism_kube_resource_t claims_resource = { "resource.k8s.io", "v1", "resourceclaims",
                                                     true };

/* ism_claim_fetch_f over the Kubernetes client. */
static char *fetch_claim(void *arg, const char *ns, const char *name, size_t *len,
                         ism_error_t *err)
{
    ism_kube_status_t st;
    json_t *obj = NULL;
    char *text;

    if (ism_kube_get(arg, &claims_resource, ns, name, &obj, &st, err) < 0) {
        if (errno == ENOENT)
            return ism_err(err, ENOENT, "deleted (the API server has no such claim)"), NULL;
        return NULL;
    }
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text)
        return ism_err(err, ENOMEM, "out of memory"), NULL;
    *len = strlen(text);
    return text;
}

/* One GET per claim the node has not seen: the kubelet waits on it, so no
 * client-side throttling to speak of (client-go's 5 QPS would add 200 ms
 * to each prepare of a busy node); few retries, well within the kubelet's
 * 45 s deadline. */
static const ism_kube_options_t kube_opts = { 100.0, 200, 4, 100, 5000, 10000,
                                              "isthmus-kubelet-plugin" };

int main(int argc, char **argv)
{
    ism_error_t err = ISM_ERROR_INIT;
    struct opts o;
    enum ism_log_level level;
    ism_topo_t *topo = NULL;
    ism_node_t *node = NULL;
    ism_kube_config_t *cfg = NULL;
    ism_kube_t *kube = NULL;
    ism_rpc_t *rpc = NULL;
    struct ism_plugin plugin;
    struct ism_rpc_method reg_methods[4], dra_methods[4];
    char reg_sock[512], dra_sock[512];
    struct sigaction sa;
    int rc = 1, nreg, ndra;

    if (parse(argc, argv, &o) < 0)
        return 2;
    if (ism_log_level_parse(o.log_level, &level, &err) < 0) {
        fprintf(stderr, "isthmus-kubelet-plugin: --log-level: %s\n", err.text);
        return 2;
    }
    ism_log_open("isthmus-kubelet-plugin", level, ISM_LOG_STDERR);
    if (snprintf(reg_sock, sizeof(reg_sock), "%s/%s-reg.sock", o.registry_dir, o.driver) >=
            (int)sizeof(reg_sock) ||
        snprintf(dra_sock, sizeof(dra_sock), "%s/dra.sock", o.plugin_dir) >= (int)sizeof(dra_sock)) {
        ism_log_error("socket paths too long");
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (check_cpu_manager(o.cpu_manager_state, &err) < 0) {
        ism_log_error("refusing to run: %s", err.text);
        goto out;
    }
    if (!(topo = load_topology(o.topology_cache, &err))) {
        ism_log_error("this node's topology: %s", err.text);
        goto out;
    }
    {
        struct ism_node_opts no = { o.state_dir, o.cdi_dir, o.hook, o.driver, o.node_name, topo };

        if (!(node = ism_node_create(&no, &err))) {
            ism_log_error("%s", err.text);
            goto out;
        }
    }
    if (ism_node_warning(node)[0])
        ism_log_error("%s", ism_node_warning(node));
    if (!o.no_api) {
        if (!(cfg = o.kubeconfig ? ism_kube_config_load(o.kubeconfig, NULL, &err)
                                 : ism_kube_config_default(NULL, &err)) ||
            !(kube = ism_kube_create(cfg, &kube_opts, &err))) {
            ism_log_error("Kubernetes client: %s", err.text);
            goto out;
        }
    }
    memset(&plugin, 0, sizeof(plugin));
    plugin.driver = o.driver;
    plugin.dra_socket = dra_sock;
    plugin.node = node;
    plugin.fetch = kube ? fetch_claim : NULL;
    plugin.fetch_arg = kube;
    nreg = ism_plugin_registration_methods(&plugin, reg_methods);
    ndra = ism_plugin_dra_methods(&plugin, dra_methods);
    if (!(rpc = ism_rpc_create(&err)) ||
        mkdir_p(o.plugin_dir, &err) < 0 || mkdir_p(o.registry_dir, &err) < 0 ||
        ism_rpc_listen(rpc, dra_sock, dra_methods, ndra, &err) < 0 ||
        ism_rpc_listen(rpc, reg_sock, reg_methods, nreg, &err) < 0 ||
        ism_rpc_start(rpc, &err) < 0) {
        ism_log_error("%s", err.text);
        goto out;
    }
    ism_log_notice("serving %s for pool %s: %s, registration %s; %d claims prepared", o.driver,
                   o.node_name, dra_sock, reg_sock, ism_ckpt_count(ism_node_checkpoint(node)));
    while (!stop) {
        ism_error_clear(&err);
        if (ism_rpc_run(rpc, 500, &err) < 0) {
            ism_log_error("%s", err.text);
            goto out;
        }
    }
    ism_log_notice("stopping (%lu calls, %lu claims prepared, %lu unprepared, %lu failed)",
                   ism_rpc_calls(rpc), plugin.prepared, plugin.unprepared, plugin.failed);
    rc = 0;
out:
    ism_rpc_destroy(rpc);
    ism_kube_destroy(kube);
    ism_kube_config_destroy(cfg);
    ism_node_destroy(node);
    ism_topo_destroy(topo);
    return rc;
}
