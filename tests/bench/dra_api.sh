#!/bin/bash
# isthmus-kubelet-plugin's prepare with the API read, and its memory: the
# figures of the node side's issue note.  Not a test: it asserts nothing.
#
#   tests/bench/dra_api.sh BUILDDIR [N]        (N claims, default 300)
#
# On a private control plane (tests/world/k8s), 2N ResourceClaims of 32
# cores each are made and allocated to node n1 of a 64-core, 4-NUMA-node
# machine (an hwloc synthetic topology, cores 0, 2, ... 62).  The plugin
# is driven through its gRPC socket by the stand-in kubelet client built
# from the kubelet's own stubs (tests/dra/kubelet-client), a call per
# claim; latencies are the client's, from the call to the answer.
#  - cycle: N claims in turn, each prepared (the plugin reads it from the
#    API server), prepared again (from its checkpoint) and unprepared, so
#    the checkpoint holds one claim at most, as on a node where claims
#    come and go (two claims of 32 cores fill this machine);
#  - keep: N other claims prepared one after the other and kept, then
#    each prepared again: the checkpoint, rewritten whole by each
#    prepare, grows to N claims (far more than fit on one node).
# The plugin's VmRSS and VmHWM (/proc/PID/status) are read idle after
# start, after the cycle, with the N claims kept and after unprepare.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILDDIR [N]}" && pwd)
n=${2:-300}
plugin=$build/dra/isthmus-kubelet-plugin
for t in go jq kubectl lstopo-no-graphics; do
    command -v $t >/dev/null || { echo "dra_api: needs $t" >&2; exit 1; }
done
[ -x "$plugin" ] || { echo "dra_api: no $plugin" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/isthmus-bench-dra.XXXXXX")
pid=
finish() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    "$top/tests/world/k8s/stop" "$dir/k8s" >/dev/null 2>&1
    rm -rf "$dir"
}
trap finish EXIT
die() { echo "dra_api: $*" >&2; exit 1; }

client=$dir/kubelet-client
(cd "$top/tests/dra/kubelet-client" && GOFLAGS=-mod=readonly go build -o "$client" .) >"$dir/go.log" 2>&1 ||
    die "building the kubelet client failed: $(tail -5 "$dir/go.log")"
env_lines=$("$top/tests/world/k8s/start" "$dir/k8s" 2>"$dir/k8s.log") || die "no control plane: $(tail -5 "$dir/k8s.log")"
eval "$env_lines"
kubectl create namespace ns >/dev/null || die "kubectl cannot create a namespace"

# The claims, made in one request and allocated in one status update.
devices=$(seq -f core-%g 0 2 62 | jq -R '{request: "cpus", driver: "cpu.isthmus.io", pool: "n1", device: .}' | jq -sc .)
jq -n --argjson n "$((2 * n))" '{apiVersion: "v1", kind: "List", items: [range($n) | {
    apiVersion: "resource.k8s.io/v1", kind: "ResourceClaim",
    metadata: {name: "c\(.)", namespace: "ns", labels: {"isthmus.io/slurm-job": "4242"}},
    spec: {devices: {requests: [{name: "cpus", exactly: {deviceClassName: "cpu.isthmus.io",
        allocationMode: "ExactCount", count: 32}}]}}}]}' | kubectl create -f - >/dev/null ||
    die "cannot create the claims"
kubectl -n ns get resourceclaims -o json |
    jq --argjson r "$devices" '.items[].status = {allocation: {devices: {results: $r}}}' |
    kubectl replace --subresource=status -f - >/dev/null || die "cannot allocate the claims"
mapfile -t claims < <(kubectl -n ns get resourceclaims -o json |
    jq -r '.items[] | select(.status.allocation) | "ns/\(.metadata.name)/\(.metadata.uid)"')
[ "${#claims[@]}" -eq "$((2 * n))" ] || die "${#claims[@]} of $((2 * n)) claims allocated"

lstopo-no-graphics --input "pack:2 numa:2 core:16 pu:2" --of xml "$dir/64.xml"
reg=$dir/registry/cpu.isthmus.io-reg.sock
dra=$dir/plugins/cpu.isthmus.io/dra.sock
ISTHMUS_HWLOC_XMLFILE=$dir/64.xml "$plugin" --node-name=n1 --kubeconfig="$KUBECONFIG" \
    --registry-dir="$dir/registry" --plugin-dir="$dir/plugins/cpu.isthmus.io" --state-dir="$dir/state" \
    --cdi-dir="$dir/cdi" --hook=/usr/sbin/isthmus-oci-hook --topology-cache="$dir/topology.json" \
    --cpu-manager-state="$dir/cpu_manager_state" >"$dir/plugin.log" 2>&1 &
pid=$!
for ((i = 0; i < 600; i++)); do
    "$client" info "$reg" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "the plugin exited: $(tail -5 "$dir/plugin.log")"
    sleep 0.1
done
((i < 600)) || die "the plugin did not answer in 60 s"
mem() { awk '/^VmRSS|^VmHWM/ {printf "%s %s %s  ", $1, $2, $3}' "/proc/$pid/status"; }

echo "# kubelet plugin, claims of 32 cores, 64-core 4-node machine, real kube-apiserver"
sleep 1
echo "RSS idle after start:             $(mem)"
show() {
    jq -r --arg what "$1" '"prepare, new claim (API read), \($what):  p50 \(.new_p50_ms) ms  p99 \(.new_p99_ms) ms  max \(.new_max_ms) ms  (n=\(.n))",
        "prepare, already prepared, \($what):      p50 \(.again_p50_ms) ms  p99 \(.again_p99_ms) ms  max \(.again_max_ms) ms"'
}
out=$("$client" bench-claims "$dra" cycle "${claims[@]:0:n}") || die "bench-claims cycle failed"
echo "$out" | show "cycle"
echo "RSS after $n prepare/unprepare:  $(mem)"
out=$("$client" bench-claims "$dra" keep "${claims[@]:n}") || die "bench-claims keep failed"
echo "$out" | show "keep "
echo "RSS with $n claims prepared:     $(mem)"
"$client" unprepare "$dra" "${claims[@]:n}" >"$dir/unprepare.json" || die "unprepare failed"
[ "$(jq '[.[] | select(.error != "")] | length' "$dir/unprepare.json")" = 0 ] || die "unprepare: $(head -c 300 "$dir/unprepare.json")"
[ -z "$(ls "$dir/cdi")" ] || die "specs left after unprepare"
echo "RSS after unprepare of all:       $(mem)"
