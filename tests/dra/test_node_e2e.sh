#!/bin/bash
# End to end on a real node, in TAP: a pod's claim for one core, from the
# Slurm node's topology to the container's cpuset.
#
#   tests/dra/test_node_e2e.sh BUILDDIR
#
# The world: a Slurm cluster with one node n1 that describes this machine
# and a Kubernetes control plane (tests/world/hybrid); the node world
# (tests/world/node: the pinned kubelet, containerd 1.7 with CDI, runc)
# registered as Node n1; isthmusd publishing n1's cores, and
# isthmus-kubelet-plugin registered with that kubelet, both running as
# the ServiceAccounts of contrib/kubernetes with its RBAC.  A pod asks for
# one core through a ResourceClaimTemplate; kube-scheduler allocates it
# and binds the pod; the kubelet has the plugin prepare the claim;
# containerd applies the CDI spec, whose hook runc runs.  The oracle is
# independent of our code: hwloc-calc on this machine gives the core's OS
# cpus and NUMA nodes; the container reports its own Cpus_allowed_list and
# Mems_allowed_list, and the cgroup files are read on the host.
#
# Waits are bounded polls for an outcome; nothing asserts on time.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
world=$top/tests/world
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
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
    if ((failed == 0 && rc == 0)); then
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

# --- the worlds: Slurm node n1 is this machine; the node world is Node n1
env_lines=$("$world/hybrid/start" "$dir" 2>"$dir/start.err") || {
    tail -30 "$dir/start.err" | sed 's/^/# /'
    bail "the hybrid world did not start"
}
eval "$env_lines"
k8s=$ISTHMUS_K8S_WORLD
node_env=$("$world/node/start" "$dir/node" "$k8s" n1 2>"$dir/node-start.err") || {
    tail -40 "$dir/node-start.err" | sed 's/^/# /'
    bail "the node world did not start"
}
eval "$node_env"
ok "the kubelet runs Node n1 (the Slurm node that describes this machine), Ready"

# --- contrib's objects; each daemon runs as its ServiceAccount, by a token
kubectl apply -f "$top/contrib/kubernetes/namespace.yaml" -f "$top/contrib/kubernetes/deviceclass.yaml" \
    -f "$top/contrib/kubernetes/rbac.yaml" -f "$top/contrib/kubernetes/kubelet-plugin-rbac.yaml" \
    >"$dir/apply.log" 2>&1 || bail "contrib manifests refused: $(tail -3 "$dir/apply.log")"
sa_kubeconfig() { # sa_kubeconfig NAME: DIR/NAME.kubeconfig, as ServiceAccount isthmus-system:NAME
    local f=$dir/$1.kubeconfig token
    token=$(kubectl -n isthmus-system create token "$1" --duration=2h) || return 1
    kubectl config view --raw --minify -o json |
        jq --arg t "$token" --arg n "$1" '.users = [{name: $n, user: {token: $t}}]
            | .contexts[0].context.user = $n' >"$f"
}
sa_kubeconfig isthmusd && sa_kubeconfig isthmus-kubelet-plugin || bail "no ServiceAccount tokens"

# --- isthmusd publishes n1's real topology
"$topo_tool" publish -N n1 >"$dir/publish.log" 2>&1 || bail "isthmus-topology publish -N n1 failed"
printf '%s\n' "SlurmConf=$SLURM_CONF" "Kubeconfig=$dir/isthmusd.kubeconfig" "HttpListen=127.0.0.1:0" \
    "PidFile=$dir/isthmusd.pid" "LogLevel=info" >"$dir/isthmusd.conf"
"$isthmusd" --foreground --config "$dir/isthmusd.conf" >"$dir/isthmusd.log" 2>&1 &
pid[isthmusd]=$!
devices() { kubectl get resourceslices -o json |
    jq -r '[.items[] | select(.spec.pool.name == "n1") | .spec.devices[].name] | sort | join(" ")'; }
ncores=$(hwloc-calc --number-of core machine:0)
want_devices=$(seq -f 'core-%g' 0 $((ncores - 1)) | paste -sd' ')
ok_if "isthmusd publishes n1's $ncores cores" until_ok eval '[[ $(devices) == "$want_devices" ]]'

# --- the plugin, registered with the kubelet
"$plugin" --node-name=n1 --kubeconfig="$dir/isthmus-kubelet-plugin.kubeconfig" \
    --registry-dir="$ISTHMUS_NODE_KUBELET_DIR/plugins_registry" \
    --plugin-dir="$ISTHMUS_NODE_KUBELET_DIR/plugins/cpu.isthmus.io" \
    --state-dir="$dir/plugin-state" --cdi-dir="$ISTHMUS_NODE_CDI_DIR" --hook="$hook" \
    --topology-cache="$dir/topology.json" >"$dir/plugin.log" 2>&1 &
pid[plugin]=$!
ok_if "the kubelet registers the plugin" until_ok grep -q "registered with the kubelet as cpu.isthmus.io" "$dir/plugin.log"

# --- a pod with a claim for one core
kubectl create namespace e2e >/dev/null
until_ok kubectl -n e2e get serviceaccount default || bail "no default ServiceAccount in e2e"
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
{
    pod pinned "resourceClaimTemplateName: one-core"
    echo "{apiVersion: resource.k8s.io/v1, kind: ResourceClaimTemplate,
           metadata: {name: one-core, namespace: e2e}, spec: {spec: {$one_core}}}"
} | kubectl apply -f - >/dev/null || bail "the pod or its template was refused"
phase() { kubectl -n e2e get pod "$1" -o jsonpath='{.status.phase}'; }
ok_if "the pod is bound to n1 and runs" until_ok eval '[[ $(phase pinned) == Running ]]' || {
    kubectl -n e2e describe pod pinned | tail -15 | sed 's/^/# /'
    bail "the pod never ran"
}
claim=$(kubectl -n e2e get pod pinned -o jsonpath='{.status.resourceClaimStatuses[0].resourceClaimName}')
uid=$(kubectl -n e2e get resourceclaim "$claim" -o jsonpath='{.metadata.uid}')
alloc=$(kubectl -n e2e get resourceclaim "$claim" -o json |
    jq -r '.status.allocation.devices.results | map("\(.driver) \(.pool) \(.device)") | join(",")')
core=${alloc##*core-}
check "kube-scheduler allocated one core of n1 from isthmusd's slices" "${alloc% core-*}" "cpu.isthmus.io n1"

# The oracle: hwloc on this machine.  Lists compared as expanded sets.
expand() { tr ',' '\n' <<<"$1" | awk -F- '$1 != "" { if (NF == 2) for (i = $1; i <= $2; i++) print i; else print $1 }' |
    sort -n | paste -sd,; }
want_cpus=$(hwloc-calc --physical-output --intersect PU "core:$core")
want_mems=$(hwloc-calc --physical-output --intersect NUMAnode "core:$core")
all_cpus=$(hwloc-calc --physical-output --intersect PU machine:0)
allowed() { kubectl -n e2e logs "$1" | sed -n "s/^$2_allowed_list:[[:space:]]*//p"; }
until_ok eval '[[ -n $(allowed pinned Cpus) ]]'
check "inside the container: Cpus_allowed_list = hwloc's PUs of core $core ($want_cpus of $all_cpus)" \
    "$(expand "$(allowed pinned Cpus)")" "$want_cpus"
check "inside the container: Mems_allowed_list = hwloc's NUMA nodes of core $core" \
    "$(expand "$(allowed pinned Mems)")" "$want_mems"

# The container's cgroup, read on the host: its init's cpuset cgroup.
cid=$(kubectl -n e2e get pod pinned -o jsonpath='{.status.containerStatuses[0].containerID}')
cpid=$($ISTHMUS_NODE_CTR task ls | awk -v id="${cid#containerd://}" '$1 == id { print $2 }')
cg=/sys/fs/cgroup/cpuset$(awk -F: '$2 == "cpuset" { print $3 }' "/proc/$cpid/cgroup" 2>/dev/null)
check "the container's cgroup cpuset.cpus holds the same" "$(expand "$(cat "$cg/cpuset.cpus" 2>&1)")" "$want_cpus"
check "the container's cgroup cpuset.mems holds the same" "$(expand "$(cat "$cg/cpuset.mems" 2>&1)")" "$want_mems"
spec=$ISTHMUS_NODE_CDI_DIR/cpu.isthmus.io-claim-$uid.json
check "the CDI spec of the claim runs our hook" "$(jq -r '.devices[0].containerEdits.hooks[0] | "\(.hookName) \(.path)"' "$spec" 2>&1)" \
    "createRuntime $hook"

# --- deleting the pod unprepares the claim
kubectl -n e2e delete pod pinned --wait=false >/dev/null
ok_if "deleting the pod unprepares the claim: its CDI spec is gone" until_ok test ! -e "$spec"
ok_if "... and the plugin logged it" grep -q "unprepared claim e2e/$claim ($uid)" "$dir/plugin.log"

# --- a claim allocated to another node: the kubelet reports our refusal
{
    pod astray "resourceClaimName: astray" "nodeName: n1"
    echo "{apiVersion: resource.k8s.io/v1, kind: ResourceClaim, metadata: {name: astray, namespace: e2e},
           spec: {$one_core}}"
} | kubectl apply -f - >/dev/null || bail "the astray pod or claim was refused"
puid=$(kubectl -n e2e get pod astray -o jsonpath='{.metadata.uid}')
auid=$(kubectl -n e2e get resourceclaim astray -o jsonpath='{.metadata.uid}')
kubectl -n e2e patch resourceclaim astray --subresource=status --type=merge -p "{\"status\": {
    \"allocation\": {\"devices\": {\"results\": [{\"request\": \"cpus\", \"driver\": \"cpu.isthmus.io\",
        \"pool\": \"n2\", \"device\": \"core-0\"}]}},
    \"reservedFor\": [{\"resource\": \"pods\", \"name\": \"astray\", \"uid\": \"$puid\"}]}}" >/dev/null ||
    bail "cannot allocate the astray claim"
refusal="device core-0 is allocated in pool n2, not this node's pool n1"
events() { kubectl -n e2e get events --field-selector involvedObject.name=astray -o json | jq -r '.items[].message'; }
ok_if "a claim allocated to another node: the pod's events carry the plugin's refusal" \
    until_ok eval 'events | grep -qF "$refusal"'
check "... the pod does not run" "$(phase astray)" Pending
ok_if "... and no CDI spec was written for it" test ! -e "$ISTHMUS_NODE_CDI_DIR/cpu.isthmus.io-claim-$auid.json"
ok_if "the plugin is still serving" kill -0 "${pid[plugin]}"

tap_plan
