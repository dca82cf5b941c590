/* isthmus-oci-hook - confine a container to its claim's cpus and memory nodes.
 *
 * Run by the container runtime as an OCI createRuntime hook, from the CDI
 * spec the kubelet plugin writes for a cpu.isthmus.io claim:
 *
 *     isthmus-oci-hook --cpus=LIST --mems=LIST [--claim=UID] [--sysroot=DIR]
 *
 * reads the OCI state on stdin, finds the cgroup of the container's init
 * process, checks the lists against the node's online cpus and memory
 * nodes and writes cpuset.mems then cpuset.cpus.  Any failure exits 1 with
 * one line on stderr, so the runtime fails the container instead of
 * running it unbound.  See isthmus-oci-hook(8).
 */
#include <config.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util/file.h"
#include "dra/hook.h"
#include "lib/util/bitmap.h"
#include "lib/util/error.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: isthmus-oci-hook --cpus=LIST --mems=LIST [--claim=UID] "
               "[--sysroot=DIR] < OCI-STATE\n"
               "Confine the container named by the OCI state on stdin to the cpus and\n"
               "NUMA memory nodes LIST (kernel cpu-list syntax, e.g. 0-3,8).\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "cpus", required_argument, NULL, 'c' },
        { "mems", required_argument, NULL, 'm' },
        { "claim", required_argument, NULL, 'l' },
        { "sysroot", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *cpus_text = NULL, *mems_text = NULL, *claim = NULL, *root = "";
    ism_error_t err = ISM_ERROR_INIT;
    ism_bitmap_t *cpus = NULL, *mems = NULL;
    struct ism_oci_state st;
    struct ism_cgroup cg;
    char *state = NULL;
    size_t len = 0;
    int c, rc = 1;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cpus_text = optarg; break;
        case 'm': mems_text = optarg; break;
        case 'l': claim = optarg; break;
        case 'r': root = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("isthmus-oci-hook %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !cpus_text || !mems_text) {
        usage(stderr);
        return 2;
    }
    if (!(cpus = ism_bitmap_parse_list(cpus_text, &err))) {
        ism_errprefix(&err, "--cpus");
        goto out;
    }
    if (!(mems = ism_bitmap_parse_list(mems_text, &err))) {
        ism_errprefix(&err, "--mems");
        goto out;
    }
    if (!(state = ism_file_read_fd(STDIN_FILENO, "OCI state on stdin", ISM_OCI_STATE_MAX_BYTES,
                                  &len, &err)) ||
        ism_oci_state_parse(state, len, &st, &err) < 0)
        goto out;
    if (ism_cgroup_find(root, st.pid, &cg, &err) < 0 ||
        ism_cpuset_check(root, cpus, mems, &err) < 0 || ism_cpuset_apply(&cg, cpus, mems, &err) < 0) {
        ism_errprefix(&err, "container %s", st.id);
        goto out;
    }
    rc = 0;
out:
    /* One line, the cause first: the runtime shows it to the user. */
    if (rc != 0)
        fprintf(stderr, "isthmus-oci-hook: %s%s%s%s (the container must not run unbound)\n",
                claim ? "claim " : "", claim ? claim : "", claim ? ": " : "", err.text);
    free(state);
    ism_bitmap_destroy(cpus);
    ism_bitmap_destroy(mems);
    return rc;
}
