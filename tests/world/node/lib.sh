# shellcheck shell=bash
# Shared helpers of the node world scripts (rootfs, start, stop).  Sourced,
# never executed.  Builds on the Kubernetes world's helpers (die, note,
# k8s_need_pkgs, the binary cache, the port lock) and ../debian.sh (the
# cached Debian root).
NODE_WORLD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../k8s/lib.sh
. "$NODE_WORLD_DIR/../k8s/lib.sh"

# Where the Debian 13 root is cached: outside the clone, like the
# Kubernetes binaries.
node_cache_dir() {
    printf '%s/node-root\n' "${ISTHMUS_CACHE:-/var/cache/isthmus}"
}

# node_ours DIR PID: is PID still a process of the node world in DIR (its
# command line names a path under DIR)?
node_ours() {
    [[ $2 =~ ^[0-9]+$ && -r /proc/$2/cmdline ]] &&
        tr '\0' '\n' 2>/dev/null <"/proc/$2/cmdline" | grep -qF "$1/"
}

# node_stop_pid DIR PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (10)
# if it is still running; returns once it is gone.
node_stop_pid() {
    local dir=$1 pid=$2 grace=${3:-10} i
    node_ours "$dir" "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        node_ours "$dir" "$pid" || return 0
        sleep 0.1
    done
    note "pid $pid did not stop on SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        node_ours "$dir" "$pid" || return 0
        sleep 0.1
    done
}

# The host sysctls the kubelet sets at start unless they already have its
# values (pkg/kubelet/cm: vm.overcommit_memory=1, vm.panic_on_oom=0,
# kernel.panic=10, kernel.panic_on_oops=1, kernel.keys.root_maxkeys=1000000,
# kernel.keys.root_maxbytes=25000000).  start saves them, stop puts them back.
NODE_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
    kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

# Paths the kubelet and containerd create on the host whatever their
# settings say (constants in the pinned kubelet: the device plugin
# socket's directory and the container log links; in containerd 1.7: its
# shims' socket directory).  start records those that did not exist; stop
# removes what the world put there and, when empty, the directories.
NODE_HOST_DIRS=(/var/lib/kubelet/device-plugins /var/log/containers /run/containerd/s)

# One node world per machine: the paths above (and the sysctls) are the
# machine's.  This file names the directory of the one that runs.
NODE_WORLD_MARK=${ISTHMUS_NODE_MARK:-/tmp/isthmus-node-world}
