/* isthmus-topology - show a node's CPU topology the way isthmus and Slurm
 * model it.  See isthmus-topology(1).
 *
 * Exit status: 0 success, 1 bad input (topology, file), 2 usage error,
 * 3 Slurm refused or could not be reached (publish, fetch), 4 no usable
 * slurm.conf (publish, fetch).
 */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util/file.h"
#include "lib/util/log.h"
#include "lib/topology/node_extra.h"
#include "lib/util/settings.h"
#include "lib/slurm/slurm_adapter.h"
#include "lib/slurm/slurm_conf.h"
#include "lib/topology/topology.h"

enum { EXIT_BAD_INPUT = 1, EXIT_USAGE = 2, EXIT_SLURM = 3, EXIT_SLURM_CONF = 4 };

struct options {
    const char *command;
    const char *xml;
    const char *synthetic;
    const char *json;
    const char *config;
    const char *node_name;
    const char *fetch_node; /* fetch's NODE argument */
    int numa_node_as_socket; /* -1: take it from the config */
    bool force;
    bool full;              /* publish: never a reference */
    bool dry_run;           /* publish: print the value, do not contact Slurm */
    const char *holders[9]; /* publish: --holder NODE, NULL-terminated */
    int nholders;
};

#define MAX_HOLDERS ((int)(sizeof(((struct options *)0)->holders) / sizeof(char *)) - 1)

static const char usage_text[] =
    "Usage: isthmus-topology COMMAND [OPTIONS]\n"
    "\n"
    "Show this node's CPU topology the way isthmus and Slurm see it.\n"
    "\n"
    "Commands:\n"
    "  show         a readable summary and one line per core\n"
    "  json         the versioned JSON encoding isthmus publishes\n"
    "  slurm-conf   the slurm.conf NodeName hardware fields (as slurmd -C)\n"
    "  publish      store the topology in this Slurm node's Extra field (key\n"
    "               \"isthmus\"; other keys are kept; no update when equal): a\n"
    "               reference to a node holding the same encoding, else in full\n"
    "  fetch NODE   print the JSON encoding NODE's Extra field holds or names\n"
    "\n"
    "Topology source (default: this machine, or $ISTHMUS_HWLOC_XMLFILE):\n"
    "  -x, --xml FILE          an hwloc XML export (lstopo --of xml)\n"
    "  -s, --synthetic DESC    an hwloc synthetic description, e.g. 'pack:2 core:4 pu:2'\n"
    "  -j, --json FILE         a JSON encoding made by 'isthmus-topology json' (- for stdin)\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE       read FILE instead of " ISM_CONF_DEFAULT_PATH "\n"
    "  -n, --numa-node-as-socket  slurm-conf: as with SlurmdParameters=numa_node_as_socket\n"
    "  -N, --node-name NAME    slurm-conf: start the line with NodeName=NAME;\n"
    "                          publish: the Slurm node (default: the short host name)\n"
    "  -f, --force             publish: replace an Extra field that is not a JSON object\n"
    "  -H, --holder NODE       publish: try NODE first as the holder (repeatable)\n"
    "      --full              publish: store the full encoding, never a reference\n"
    "      --dry-run           publish: print the Extra value to store and exit, without\n"
    "                          contacting Slurm (a reference if a --holder is given,\n"
    "                          assumed to hold the same encoding; else the full one)\n"
    "  -h, --help              this text\n"
    "  -V, --version           the version\n";

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "isthmus-topology: %s%s%s%s\nTry 'isthmus-topology --help'.\n", what,
            arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        { "xml", required_argument, NULL, 'x' },
        { "synthetic", required_argument, NULL, 's' },
        { "json", required_argument, NULL, 'j' },
        { "config", required_argument, NULL, 'c' },
        { "numa-node-as-socket", no_argument, NULL, 'n' },
        { "node-name", required_argument, NULL, 'N' },
        { "force", no_argument, NULL, 'f' },
        { "holder", required_argument, NULL, 'H' },
        { "full", no_argument, NULL, 'F' },
        { "dry-run", no_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    o->numa_node_as_socket = -1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "x:s:j:c:nN:fH:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'x': o->xml = optarg; break;
        case 's': o->synthetic = optarg; break;
        case 'j': o->json = optarg; break;
        case 'c': o->config = optarg; break;
        case 'n': o->numa_node_as_socket = 1; break;
        case 'N': o->node_name = optarg; break;
        case 'f': o->force = true; break;
        case 'F': o->full = true; break;
        case 'D': o->dry_run = true; break;
        case 'H':
            if (o->nholders == MAX_HOLDERS)
                return usage_error("too many --holder options", optarg);
            o->holders[o->nholders++] = optarg;
            break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case 'V': printf("isthmus-topology (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION); exit(0);
        default:
            return usage_error("unknown or incomplete option", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("missing COMMAND", NULL);
    o->command = argv[optind++];
    if (strcmp(o->command, "fetch") == 0) {
        if (optind >= argc)
            return usage_error("fetch needs a NODE", NULL);
        o->fetch_node = argv[optind++];
    }
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    if (!!o->xml + !!o->synthetic + !!o->json > 1)
        return usage_error("give at most one of --xml, --synthetic and --json", NULL);
    return 0;
}

/* A JSON encoding read whole (a 16384-core model is < 4 MiB): more is not
 * one, and endless input must not exhaust memory. */
#define JSON_MAX_BYTES (16 * 1024 * 1024)

/* Read a whole file (or stdin for "-") into a string the caller frees.  Any
 * readable file may be named (a pipe such as /dev/stdin too), within the
 * bound. */
static char *read_all(const char *path, ism_error_t *err)
{
    char *text;
    int fd;

    if (strcmp(path, "-") == 0)
        return ism_file_read_fd(STDIN_FILENO, "stdin", JSON_MAX_BYTES, NULL, err);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        ism_err(err, errno, "%s: %s", path, strerror(errno));
        return NULL;
    }
    text = ism_file_read_fd(fd, path, JSON_MAX_BYTES, NULL, err);
    close(fd);
    return text;
}

static ism_topo_t *load_topology(const struct options *o, const ism_config_t *cfg,
                                 ism_error_t *err)
{
    const char *conf_xml = ism_config_get(cfg, "TopologyXML");

    if (o->xml)
        return ism_topo_from_xml(o->xml, err);
    if (o->synthetic)
        return ism_topo_from_synthetic(o->synthetic, err);
    if (o->json) {
        char *text = read_all(o->json, err);
        ism_topo_t *topo = text ? ism_topo_decode(text, err) : NULL;
        if (text && !topo)
            ism_errprefix(err, "%s", o->json);
        free(text);
        return topo;
    }
    if (!getenv("ISTHMUS_HWLOC_XMLFILE") && conf_xml)
        return ism_topo_from_xml(conf_xml, err);
    return ism_topo_load_default(err);
}

/* "12.5 GiB" into buf. */
static const char *gib(char *buf, size_t len, uint64_t bytes)
{
    snprintf(buf, len, "%.1f GiB", (double)bytes / (1024.0 * 1024 * 1024));
    return buf;
}

static void print_hw(FILE *f, const struct ism_slurm_hw *hw)
{
    fprintf(f, "CPUs=%d Boards=%d SocketsPerBoard=%d CoresPerSocket=%d ThreadsPerCore=%d "
               "RealMemory=%llu",
            hw->cpus, hw->boards, hw->sockets_per_board, hw->cores_per_socket,
            hw->threads_per_core, (unsigned long long)hw->real_memory);
}

static void print_list_line(const char *label, const ism_bitmap_t *b)
{
    char *s = ism_bitmap_format_list(b);
    if (s && *s)
        printf("%-11s %s\n", label, s);
    free(s);
}

static int cmd_show(const ism_topo_t *topo)
{
    ism_bitmap_t *cpus = ism_topo_cpus(topo);
    char size[32];
    int with_cpus = 0;

    for (int i = 0; i < topo->nnuma; i++)
        with_cpus += !ism_bitmap_empty(topo->numa[i].cpus);
    printf("%d sockets, %d NUMA nodes (%d with cpus), %d L3 caches, %d cores, %d cpus, %s\n",
           topo->sockets, topo->nnuma, with_cpus, topo->l3_caches, topo->ncores,
           ism_bitmap_count(cpus), gib(size, sizeof(size), topo->memory));
    printf("slurm.conf  ");
    print_hw(stdout, &topo->slurm);
    printf("\n");
    print_list_line("offline", topo->offline);
    print_list_line("disallowed", topo->disallowed);
    printf("\n%-6s %-12s %s\n", "NUMA", "memory", "cpus");
    for (int i = 0; i < topo->nnuma; i++) {
        char *list = ism_bitmap_format_list(topo->numa[i].cpus);
        printf("%-6d %-12s %s\n", topo->numa[i].os_index,
               gib(size, sizeof(size), topo->numa[i].memory),
               list && *list ? list : "(memory only)");
        free(list);
    }
    printf("\n%-7s %-6s %-5s %-4s %-4s %-12s %s\n", "core", "socket", "numa", "l3", "os",
           "kind", "cpus");
    for (int i = 0; i < topo->ncores; i++) {
        const struct ism_core *c = &topo->cores[i];
        char *list = ism_bitmap_format_list(c->cpus);
        printf("%-7d %-6d %-5d %-4d %-4d %-12s %s\n", c->index, c->socket, c->numa, c->l3,
               c->os_index, ism_core_kind_name(c->kind), list ? list : "?");
        free(list);
    }
    ism_bitmap_destroy(cpus);
    return 0;
}

static int cmd_json(const ism_topo_t *topo)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *s = ism_topo_encode(topo, &err);

    if (!s) {
        ism_log_error("%s", err.text);
        return EXIT_BAD_INPUT;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

static int cmd_slurm_conf(const ism_topo_t *topo, const struct options *o,
                          const ism_config_t *cfg)
{
    bool numa = o->numa_node_as_socket >= 0 ? o->numa_node_as_socket
                                             : ism_config_get_bool(cfg, "NumaNodeAsSocket");
    const struct ism_slurm_hw *hw = numa ? &topo->slurm_numa : &topo->slurm;
    const char *note = numa ? topo->slurm_numa_note : topo->slurm_note;
    ism_error_t err = ISM_ERROR_INIT;
    char host[256];

    if (ism_slurm_hw_check(topo, hw, &err) < 0) {
        ism_log_error("Slurm cannot describe this topology: %s%s%s", note, *note ? "; " : "",
                      err.text);
        return EXIT_BAD_INPUT;
    }
    if (*note)
        ism_log_warn("slurmd -C would not describe this topology regularly (%s)", note);
    if (o->node_name)
        printf("NodeName=%s ", o->node_name);
    else if (!o->xml && !o->synthetic && !o->json && !getenv("ISTHMUS_HWLOC_XMLFILE") &&
             gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        host[strcspn(host, ".")] = '\0';
        printf("NodeName=%s ", host);
    }
    print_hw(stdout, hw);
    printf("\n");
    return 0;
}

/* The Slurm node name publish writes: --node-name, else the short host
 * name (what slurmd uses unless started with -N). */
static const char *publish_node(const struct options *o, char *buf, size_t len)
{
    if (o->node_name)
        return o->node_name;
    if (gethostname(buf, len) != 0)
        return NULL;
    buf[len - 1] = '\0';
    buf[strcspn(buf, ".")] = '\0';
    return buf;
}

/* publish --dry-run: the Extra text publish would store in an empty field:
 * a reference when a --holder is given (assumed to hold the same encoding)
 * unless --full, else the full encoding. */
static int publish_dry_run(const char *json, const struct options *o)
{
    ism_error_t err = ISM_ERROR_INIT;
    char digest[ISM_EXTRA_DIGEST_LEN + 1], *ref = NULL, *merged = NULL;
    int rc = EXIT_BAD_INPUT;

    ism_extra_digest(json, digest);
    if (o->nholders && !o->full && !(ref = ism_extra_ref_format(digest, &err)))
        rc = EXIT_BAD_INPUT;
    else if (ism_extra_merge("", ref ? ref : json, false, &merged, &err) == 1)
        rc = printf("%s\n", merged) < 0 ? EXIT_BAD_INPUT : 0;
    if (rc != 0)
        ism_log_error("%s", err.text);
    free(merged);
    free(ref);
    return rc;
}

static int cmd_publish(const ism_topo_t *topo, const struct options *o)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_t *s = NULL;
    char *json = NULL, host[256];
    const char *node = publish_node(o, host, sizeof(host));
    struct ism_publish p = { .holders = o->holders, .full = o->full, .force = o->force };
    int rc = EXIT_SLURM;

    if (!node) {
        ism_log_error("cannot read the host name; give --node-name");
        return EXIT_USAGE;
    }
    if (!(json = ism_topo_encode(topo, &err))) {
        rc = EXIT_BAD_INPUT;
    } else if (o->dry_run) {
        rc = publish_dry_run(json, o);
        free(json);
        return rc;
    } else if (ism_slurm_conf_check(NULL, NULL, 0, &err) < 0) {
        rc = EXIT_SLURM_CONF;
    } else if ((s = ism_slurm_create(NULL, &err)) &&
               ism_slurm_publish_topology(s, node, json, &p, &err) == 0) {
        ism_log_notice("node %s: %s%s%s", node,
                       !p.changed ? "topology already up to date"
                       : p.holder[0] ? "topology published as a reference to node "
                                     : "topology published in full",
                       p.changed && p.holder[0] ? p.holder : "",
                       !p.changed && p.holder[0] ? " (a reference)" : "");
        rc = 0;
    } else if (errno == EEXIST || errno == E2BIG) {
        rc = EXIT_BAD_INPUT;
    }
    if (rc != 0)
        ism_log_error("%s", err.text);
    ism_slurm_destroy(s);
    free(json);
    return rc;
}

static int cmd_fetch(const struct options *o)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_slurm_t *s;
    char *json;
    int rc = 0;

    if (ism_slurm_conf_check(NULL, NULL, 0, &err) < 0) {
        ism_log_error("%s", err.text);
        return EXIT_SLURM_CONF;
    }
    s = ism_slurm_create(NULL, &err);
    json = s ? ism_slurm_fetch_topology(s, o->fetch_node, &err) : NULL;

    if (!json) {
        ism_log_error("%s", err.text);
        rc = errno == ENOENT || errno == EINVAL ? EXIT_BAD_INPUT : EXIT_SLURM;
    } else {
        printf("%s\n", json);
    }
    free(json);
    ism_slurm_destroy(s);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    ism_error_t err = ISM_ERROR_INIT;
    ism_config_t *cfg = NULL;
    ism_topo_t *topo = NULL;
    enum ism_log_level level;
    int rc;

    ism_log_open("isthmus-topology", ISM_LOG_NOTICE, ISM_LOG_STDERR);
    if ((rc = parse_args(argc, argv, &o)) != 0)
        return rc;
    if (strcmp(o.command, "show") != 0 && strcmp(o.command, "json") != 0 &&
        strcmp(o.command, "slurm-conf") != 0 && strcmp(o.command, "publish") != 0 &&
        strcmp(o.command, "fetch") != 0)
        return usage_error("unknown command", o.command);
    if ((o.force || o.full || o.dry_run || o.nholders) && strcmp(o.command, "publish") != 0)
        return usage_error("--force, --full, --holder and --dry-run are for publish only",
                           NULL);
    if (!(cfg = ism_settings_load(o.config, &err))) {
        ism_log_error("%s", err.text);
        return EXIT_BAD_INPUT;
    }
    if (ism_log_level_parse(ism_config_get(cfg, "LogLevel"), &level, NULL) == 0)
        ism_log_set_level(level);
    if (strcmp(o.command, "fetch") == 0) {
        rc = cmd_fetch(&o);
    } else if (!(topo = load_topology(&o, cfg, &err))) {
        ism_log_error("%s", err.text);
        rc = EXIT_BAD_INPUT;
    } else if (strcmp(o.command, "show") == 0) {
        rc = cmd_show(topo);
    } else if (strcmp(o.command, "json") == 0) {
        rc = cmd_json(topo);
    } else if (strcmp(o.command, "publish") == 0) {
        rc = cmd_publish(topo, &o);
    } else {
        rc = cmd_slurm_conf(topo, &o, cfg);
    }
    if (fflush(stdout) != 0 && rc == 0) {
        ism_log_error("cannot write the output");
        rc = EXIT_BAD_INPUT;
    }
    ism_topo_destroy(topo);
    ism_config_destroy(cfg);
    return rc;
}
