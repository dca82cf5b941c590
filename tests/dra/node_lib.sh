# shellcheck shell=bash
# What the tests on a real node share: the hybrid world with one Slurm
# node n1 that describes this machine, the node world (tests/world/node)
# as Node n1, contrib's objects, isthmusd publishing n1's real topology,
# and isthmus-kubelet-plugin registered with the kubelet; isthmusd and the
# plugin run as contrib's ServiceAccounts (by tokens), so its RBAC is
# what they have.  Sourced by tests/dra/*.sh after they set
#
#   build        the build tree
#   node_opts    (array, optional) options of tests/world/node/start
#   plugin_opts  (array, optional) more options of the plugin
#
# node_world_up starts it all (printing TAP lines); finish stops it on exit
# and removes the directory, unless a test failed or ISTHMUS_KEEP is set.
[[ -v node_opts ]] || node_opts=()
[[ -v plugin_opts ]] || plugin_opts=()
node_lib_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$node_lib_here/../.." && pwd)
world=$top/tests/world
plugin=$build/dra/isthmus-kubelet-plugin
hook=$build/dra/isthmus-oci-hook
isthmusd=$build/bridge/isthmusd
topo_tool=$build/topology/isthmus-topology
export ISTHMUS_TOPOLOGY=$topo_tool

# shellcheck source=../tap.sh
. "$top/tests/tap.sh"
for t in jq hwloc-calc curl; do command -v $t >/dev/null || bail "needs $t"; done
for f in "$plugin" "$hook" "$isthmusd" "$topo_tool"; do [[ -x $f ]] || bail "build $build first (no $f)"; done
[[ $(id -u) == 0 ]] || bail "needs root (a kubelet, containerd, runc)"

dir=$(mktemp -d "${TMPDIR:-/tmp}/isthmus-node-e2e.XXXXXX")
chmod 0755 "$dir" # munged runs as its own user and must reach its socket
declare -A pid
finish() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${!pid[@]}"; do kill "${pid[$p]}" 2>/dev/null && wait "${pid[$p]}" 2>/dev/null; done
    "$world/node/stop" "$dir/node" >/dev/null 2>&1
    "$world/hybrid/stop" "$dir" >/dev/null 2>&1
    if ((failed == 0 && rc == 0)) && [[ -z ${ISTHMUS_KEEP-} ]]; then
        rm -rf "$dir"
    else
        printf '# directory kept for its logs: %s\n' "$dir"
        for p in plugin isthmusd node/logs/kubelet node/logs/containerd; do
            [[ -f $dir/$p.log ]] || continue
            printf '# --- %s (last lines)\n' "$p"
            tail -15 "$dir/$p.log" | sed 's/^/# /'
        done
    fi
    exit $((rc != 0 ? rc : failed != 0))
}
trap finish EXIT
trap 'bail interrupted' INT TERM

# sa_kubeconfig NAME: DIR/NAME.kubeconfig, as ServiceAccount isthmus-system:NAME
sa_kubeconfig() {
    local f=$dir/$1.kubeconfig token
    token=$(kubectl -n isthmus-system create token "$1" --duration=2h) || return 1
    kubectl config view --raw --minify -o json |
        jq --arg t "$token" --arg n "$1" '.users = [{name: $n, user: {token: $t}}]
            | .contexts[0].context.user = $n' >"$f"
}

# start_plugin NAME [OPTIONS...]: isthmus-kubelet-plugin for Node n1 with
# the node world's directories and log DIR/NAME.log; pid[NAME].
start_plugin() {
    local name=$1
    shift
    "$plugin" --node-name=n1 --kubeconfig="$dir/isthmus-kubelet-plugin.kubeconfig" \
        --registry-dir="$ISTHMUS_NODE_KUBELET_DIR/plugins_registry" \
        --plugin-dir="$ISTHMUS_NODE_KUBELET_DIR/plugins/cpu.isthmus.io" \
        --state-dir="$dir/plugin-state" --cdi-dir="$ISTHMUS_NODE_CDI_DIR" --hook="$hook" \
        --topology-cache="$dir/topology.json" \
        --cpu-manager-state="$ISTHMUS_NODE_KUBELET_DIR/cpu_manager_state" "$@" >"$dir/$name.log" 2>&1 &
    pid[$name]=$!
}

devices() { # n1's published devices, sorted
    kubectl get resourceslices -o json |
        jq -r '[.items[] | select(.spec.pool.name == "n1") | .spec.devices[].name] | sort | join(" ")'
}

node_world_up() {
    # --- the worlds: Slurm node n1 is this machine; the node world is Node n1
    env_lines=$("$world/hybrid/start" "$dir" 2>"$dir/start.err") || {
        tail -30 "$dir/start.err" | sed 's/^/# /'
        bail "the hybrid world did not start"
    }
    eval "$env_lines"
    k8s=$ISTHMUS_K8S_WORLD
    node_env=$("$world/node/start" "${node_opts[@]}" "$dir/node" "$k8s" n1 2>"$dir/node-start.err") || {
        tail -40 "$dir/node-start.err" | sed 's/^/# /'
        bail "the node world did not start"
    }
    eval "$node_env"
    ok "the kubelet runs Node n1 (the Slurm node that describes this machine), Ready"

    # --- contrib's objects; each daemon runs as its ServiceAccount, by a token
    kubectl apply -f "$top/contrib/kubernetes/namespace.yaml" -f "$top/contrib/kubernetes/deviceclass.yaml" \
        -f "$top/contrib/kubernetes/rbac.yaml" -f "$top/contrib/kubernetes/kubelet-plugin-rbac.yaml" \
        >"$dir/apply.log" 2>&1 || bail "contrib manifests refused: $(tail -3 "$dir/apply.log")"
    sa_kubeconfig isthmusd && sa_kubeconfig isthmus-kubelet-plugin || bail "no ServiceAccount tokens"

    # --- isthmusd publishes n1's real topology
    "$topo_tool" publish -N n1 >"$dir/publish.log" 2>&1 || bail "isthmus-topology publish -N n1 failed"
    printf '%s\n' "SlurmConf=$SLURM_CONF" "Kubeconfig=$dir/isthmusd.kubeconfig" "HttpListen=127.0.0.1:0" \
        "PidFile=$dir/isthmusd.pid" "LogLevel=info" "GangUser=nobody" \
        "TaintBridgedNodes=no" >"$dir/isthmusd.conf" # kube-scheduler places the test's pods
    "$isthmusd" --foreground --config "$dir/isthmusd.conf" >"$dir/isthmusd.log" 2>&1 &
    pid[isthmusd]=$!
    ncores=$(hwloc-calc --number-of core machine:0)
    want_devices=$(seq -f 'core-%g' 0 $((ncores - 1)) | paste -sd' ')
    ok_if "isthmusd publishes n1's $ncores cores" until_ok eval '[[ $(devices) == "$want_devices" ]]'

    # --- the plugin, registered with the kubelet
    start_plugin plugin "${plugin_opts[@]}"
    ok_if "the kubelet registers the plugin" until_ok grep -q "registered with the kubelet as cpu.isthmus.io" "$dir/plugin.log"
    kubectl create namespace e2e >/dev/null
    until_ok kubectl -n e2e get serviceaccount default || bail "no default ServiceAccount in e2e"
}

# pod NAME CLAIM [SPEC-LINE]: a host-network pod that prints its own
# allowed lists, then waits; its claim "cpus" is CLAIM (a claim source).
pod() {
    cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: e2e}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 5
  ${3:-}
  resourceClaims: [{name: cpus, $2}]
  containers:
  - name: work
    image: isthmus.test/busybox:latest
    imagePullPolicy: Never
    command: [/bin/sh, -c, "grep _allowed_list: /proc/self/status; trap 'exit 0' TERM; while :; do sleep 1; done"]
    resources: {claims: [{name: cpus}]}
---
YAML
}
one_core="devices: {requests: [{name: cpus, exactly: {deviceClassName: cpu.isthmus.io, count: 1}}]}"

phase() { kubectl -n e2e get pod "$1" -o jsonpath='{.status.phase}'; }
# allowed POD Cpus|Mems: the list the pod's container printed
allowed() { kubectl -n e2e logs "$1" | sed -n "s/^$2_allowed_list:[[:space:]]*//p"; }
# expand LIST: a cpu or node list as one number per element, "0,1,2"
expand() {
    tr ',' '\n' <<<"$1" | awk -F- '$1 != "" { if (NF == 2) for (i = $1; i <= $2; i++) print i; else print $1 }' |
        sort -n | paste -sd,
}
# cpuset_of POD: the cpuset cgroup directory of the pod's container, read
# on the host from its init process's /proc/PID/cgroup
cpuset_of() {
    local cid cpid
    cid=$(kubectl -n e2e get pod "$1" -o jsonpath='{.status.containerStatuses[0].containerID}')
    cpid=$($ISTHMUS_NODE_CTR task ls | awk -v id="${cid#containerd://}" '$1 == id { print $2 }')
    [[ -n $cpid ]] || return 1
    printf '/sys/fs/cgroup/cpuset%s\n' "$(awk -F: '$2 == "cpuset" { print $3 }' "/proc/$cpid/cgroup")"
}
