#!/bin/bash
# isthmus-kubelet-plugin reading claims from a real kube-apiserver, driven
# by the kubelet's own gRPC client code, in TAP.  Claims are made with
# kubectl and allocated by patching their status, as a scheduler would.
# The cpus of a prepared claim are checked against hwloc-calc.
#
#   tests/dra/test_kubelet_plugin_api.sh BUILDDIR
#
# Also prints (as # lines, never asserted) prepare latencies through gRPC
# for a claim of 32 cores, with and without the API read, and the RSS.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
plugin=$build/dra/isthmus-kubelet-plugin

# shellcheck source=../tap.sh
. "$top/tests/tap.sh"
for t in go jq hwloc-calc lstopo-no-graphics; do command -v $t >/dev/null || bail "needs $t"; done
[ -x "$plugin" ] || bail "no $plugin"

dir=$(mktemp -d "${TMPDIR:-/tmp}/isthmus-plugin-api.XXXXXX")
pid=
finish() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    "$top/tests/world/k8s/stop" "$dir/k8s" >/dev/null 2>&1
    rm -rf "$dir"
}
trap finish EXIT

client=$dir/kubelet-client
(cd "$here/kubelet-client" && GOFLAGS=-mod=readonly go build -o "$client" .) >"$dir/go-build.log" 2>&1 ||
    bail "building the kubelet client failed: $(tail -5 "$dir/go-build.log")"
env_lines=$("$top/tests/world/k8s/start" "$dir/k8s" 2>"$dir/k8s-start.log") ||
    bail "no control plane: $(tail -5 "$dir/k8s-start.log")"
eval "$env_lines"

reg=$dir/registry/cpu.isthmus.io-reg.sock
dra=$dir/plugins/cpu.isthmus.io/dra.sock
cdi=$dir/cdi
log=$dir/plugin.log

start() {
    "$plugin" --node-name=n1 --kubeconfig="$KUBECONFIG" --registry-dir="$dir/registry" \
        --plugin-dir="$dir/plugins/cpu.isthmus.io" --state-dir="$dir/state" --cdi-dir="$cdi" \
        --hook=/usr/sbin/isthmus-oci-hook --topology-cache="$dir/topology.json" \
        --cpu-manager-state="$dir/cpu_manager_state" >>"$log" 2>&1 &
    pid=$!
    local i
    for ((i = 0; i < 600; i++)); do
        "$client" info "$reg" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
quiet() { "$@" >/dev/null 2>&1; }
stop() { kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=; return $rc; }

# claim NAME N: a claim for N cores; allocate NAME POOL DEVICE...: its
# allocation; uid NAME.
claim() {
    kubectl -n ns apply -f - >/dev/null <<YAML
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: $1, namespace: ns, labels: {isthmus.io/slurm-job: "4242"}}
spec:
  devices:
    requests:
    - name: cpus
      exactly: {deviceClassName: cpu.isthmus.io, allocationMode: ExactCount, count: $2}
YAML
}
allocate() {
    local name=$1 pool=$2 results
    shift 2
    results=$(printf '%s\n' "$@" | jq -R --arg pool "$pool" '{request: "cpus", driver: "cpu.isthmus.io", pool: $pool, device: .}' | jq -sc .)
    kubectl -n ns patch resourceclaim "$name" --subresource=status --type=merge \
        -p "{\"status\":{\"allocation\":{\"devices\":{\"results\":$results}}}}" >/dev/null
}
uid() { kubectl -n ns get resourceclaim "$1" -o jsonpath='{.metadata.uid}'; }
# expand LIST: a cpu list as hwloc-calc prints it, "0,1,2".
expand() { echo "$1" | tr ',' '\n' | awk -F- '{ if (NF == 2) for (i = $1; i <= $2; i++) print i; else print $1 }' | paste -sd, -; }
error_of() { "$client" prepare "$dra" "ns/$1/$2" 2>&1 | jq -r ".[\"$2\"].error"; }

kubectl create namespace ns >/dev/null || bail "kubectl cannot create a namespace"
ok_if "the plugin starts with the API server's kubeconfig" start || {
    tail -20 "$log" | sed 's/^/# /'
    bail "the plugin did not start"
}

claim good 2 && allocate good n1 core-0 core-1
u=$(uid good)
out=$("$client" prepare "$dra" "ns/good/$u" 2>&1)
check "prepare reads the claim and answers its two devices" \
    "$(echo "$out" | jq -c ".[\"$u\"] | [.error, [.devices[].device]]" 2>&1)" "[\"\",[\"core-0\",\"core-1\"]]"
spec=$cdi/cpu.isthmus.io-claim-$u.json
want=$(hwloc-calc --physical-output --intersect PU core:0 core:1)
got=$(jq -r '.devices[0].containerEdits.env[] | select(startswith("ISTHMUS_CPUS="))' "$spec" 2>&1)
check "the spec's cpus are hwloc's PUs of cores 0 and 1 ($want)" "$(expand "${got#ISTHMUS_CPUS=}")" "$want"
check "the spec names the claim's Slurm job" \
    "$(jq -r '.devices[0].containerEdits.env[] | select(startswith("ISTHMUS_SLURM"))' "$spec" 2>&1)" "ISTHMUS_SLURM_JOB_ID=4242"

claim other 1 && allocate other n2 core-0
check "a claim allocated to another node: refused" "$(error_of other "$(uid other)")" \
    "claim ns/other: claim $(uid other): status.allocation.devices: results[0]: device core-0 is allocated in pool n2, not this node's pool n1"
claim gpu 1 && allocate gpu n1 gpu-0
check "an unknown device: refused" "$(error_of gpu "$(uid gpu)")" \
    "claim ns/gpu: claim $(uid gpu): status.allocation.devices: results[0]: unknown device gpu-0 (want core-<N>)"
claim far 1 && allocate far n1 core-9999
check "a core this node does not have: refused" "$(error_of far "$(uid far)")" \
    "claim ns/far: claim $(uid far): device core-9999: this node has no core 9999"
claim pending 1
check "a claim not allocated: refused" "$(error_of pending "$(uid pending)")" \
    "claim ns/pending: claim $(uid pending): not allocated (status.allocation is missing)"
claim again 1 && allocate again n1 core-0
old=$(uid again)
kubectl -n ns delete resourceclaim again >/dev/null
out=$(error_of again "$old")
check "a deleted claim: the API server's NotFound" "$(echo "$out" | grep -c 'NotFound')" 1
claim again 1 && allocate again n1 core-0
check "a claim deleted and made again under the same name: refused" "$(error_of again "$old")" \
    "claim ns/again: claim $old: the API server has UID $(uid again) under this name (deleted and created again?)"
check "no spec but the good claim's is left" "$(ls "$cdi")" "cpu.isthmus.io-claim-$u.json"
ok_if "still serving" quiet "$client" info "$reg"
kubectl -n ns delete resourceclaim good >/dev/null
check "a claim deleted after prepare is still unprepared" "$("$client" unprepare "$dra" "ns/good/$u" 2>&1)" \
    "{\"$u\":{\"error\":\"\"}}"
ok_if "its spec is removed" test ! -e "$spec"
ok_if "stops cleanly" stop

# Figures: a claim of 32 cores on a 64-core, 4-node machine (hwloc XML).
lstopo-no-graphics --input "pack:2 numa:2 core:16 pu:2" --of xml "$dir/64.xml"
claim big 32 && allocate big n1 $(seq -f core-%g 0 2 62)
ISTHMUS_HWLOC_XMLFILE=$dir/64.xml start || bail "the plugin did not start on the 64-core machine"
out=$("$client" bench "$dra" 200 "ns/big/$(uid big)" 2>&1)
echo "# prepare of 32 cores through gRPC, 200 times: $out"
echo "# plugin RSS: $(awk '/^VmRSS/ {print $2, $3}' "/proc/$pid/status")"
env=$(jq -r '.devices[0].containerEdits.env[0:2] | join(" ")' "$cdi"/cpu.isthmus.io-claim-*.json 2>&1)
cpus=${env%% *}
check "the 32-core claim maps to hwloc's 64 PUs of those cores" "$(expand "${cpus#ISTHMUS_CPUS=}")" \
    "$(hwloc-calc --input "$dir/64.xml" --physical-output --intersect PU $(seq -f core:%g 0 2 62))"
check "and to the machine's 4 NUMA nodes" "${env#* }" "ISTHMUS_MEMS=0-3"
ok_if "stops cleanly" stop

tap_plan
[ "$failed" -eq 0 ]
