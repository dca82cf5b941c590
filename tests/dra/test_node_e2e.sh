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
# Mems_allowed_list, and the cgroup files are read on the host.  Then bad
# input: a claim allocated in another node's pool; and a kubelet with
# cpuManagerPolicy static, beside which the plugin refuses to start.  The
# setup is in node_lib.sh.
#
# Waits are bounded polls for an outcome; nothing asserts on time.
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
# shellcheck source=node_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/node_lib.sh"

node_world_up
# --- a pod with a claim for one core
{
    pod pinned "resourceClaimTemplateName: one-core"
    echo "{apiVersion: resource.k8s.io/v1, kind: ResourceClaimTemplate,
           metadata: {name: one-core, namespace: e2e}, spec: {spec: {$one_core}}}"
} | kubectl apply -f - >/dev/null || bail "the pod or its template was refused"
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
want_cpus=$(hwloc-calc --physical-output --intersect PU "core:$core")
want_mems=$(hwloc-calc --physical-output --intersect NUMAnode "core:$core")
all_cpus=$(hwloc-calc --physical-output --intersect PU machine:0)
until_ok eval '[[ -n $(allowed pinned Cpus) ]]'
check "inside the container: Cpus_allowed_list = hwloc's PUs of core $core ($want_cpus of $all_cpus)" \
    "$(expand "$(allowed pinned Cpus)")" "$want_cpus"
check "inside the container: Mems_allowed_list = hwloc's NUMA nodes of core $core" \
    "$(expand "$(allowed pinned Mems)")" "$want_mems"
cg=$(cpuset_of pinned)
check "the container's cgroup cpuset.cpus holds the same" "$(expand "$(cat "$cg/cpuset.cpus" 2>&1)")" "$want_cpus"
check "the container's cgroup cpuset.mems holds the same" "$(expand "$(cat "$cg/cpuset.mems" 2>&1)")" "$want_mems"
spec=$ISTHMUS_NODE_CDI_DIR/cpu.isthmus.io-claim-$uid.json
check "the CDI spec of the claim runs our hook" "$(jq -r '.devices[0].containerEdits.hooks[0] | "\(.hookName) \(.path)"' "$spec" 2>&1)" \
    "createRuntime $hook"

# --- deleting the pod unprepares the claim
kubectl -n e2e delete pod pinned --wait=false >/dev/null
ok_if "deleting the pod unprepares the claim: its CDI spec is gone" until_ok test ! -e "$spec"
ok_if "... and the plugin logged it" grep -q "unprepared claim e2e/$claim ($uid)" "$dir/plugin.log"

# --- a claim allocated to another node: the kubelet reports our refusal.
# The pod is bound by hand and its claim allocated (in n2's pool) and
# reserved for it once it exists; the kubelet, which failed the pod while
# the claim was not allocated, tries again when the pod changes.
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
    \"reservedFor\": [{\"resource\": \"pods\", \"name\": \"astray\", \"uid\": \"$puid\"}]}}" >/dev/null &&
    kubectl -n e2e annotate pod astray isthmus.io/test=claim-allocated >/dev/null ||
    bail "cannot allocate the astray claim"
refusal="device core-0 is allocated in pool n2, not this node's pool n1"
events() { kubectl -n e2e get events --field-selector involvedObject.name=astray -o json | jq -r '.items[].message'; }
ok_if "a claim allocated to another node: the pod's events carry the plugin's refusal" \
    until_ok eval 'events | grep -qF "$refusal"'
check "... the pod does not run" "$(phase astray)" Pending
ok_if "... and no CDI spec was written for it" test ! -e "$ISTHMUS_NODE_CDI_DIR/cpu.isthmus.io-claim-$auid.json"
ok_if "the plugin is still serving" kill -0 "${pid[plugin]}"
ok_if "it read the real kubelet's CPU manager policy, none, at start" \
    grep -qF "the kubelet's CPU manager policy is none ($ISTHMUS_NODE_KUBELET_DIR/cpu_manager_state)" "$dir/plugin.log"

# --- a kubelet with cpuManagerPolicy static: the plugin refuses to start
kill "${pid[plugin]}" && wait "${pid[plugin]}"
unset "pid[plugin]"
"$world/node/stop" "$dir/node" >/dev/null 2>&1
node_env=$("$world/node/start" --cpu-manager-policy static "$dir/node" "$k8s" n1 2>"$dir/node-start.err") ||
    bail "the node world did not start with cpuManagerPolicy static: $(tail -5 "$dir/node-start.err")"
eval "$node_env"
start_plugin static
wait "${pid[static]}"
check "beside cpuManagerPolicy static the plugin exits at start, status 1" "$?" 1
unset "pid[static]"
check "... saying why" "$(grep -o 'refusing to run: the kubelet runs CPU manager policy "static" ([^)]*)' "$dir/static.log")" \
    "refusing to run: the kubelet runs CPU manager policy \"static\" ($ISTHMUS_NODE_KUBELET_DIR/cpu_manager_state)"
ok_if "... before it registered: no socket in the kubelet's registry" \
    test ! -e "$ISTHMUS_NODE_KUBELET_DIR/plugins_registry/cpu.isthmus.io-reg.sock"

tap_plan
