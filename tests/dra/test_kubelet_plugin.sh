#!/bin/bash
# isthmus-kubelet-plugin's gRPC services, called by the kubelet's own
# client code (tests/dra/kubelet-client: k8s.io/kubelet's stubs and
# grpc-go, the pinned versions), in TAP.  No API server: claims come from
# a checkpoint the test writes, as a restarted plugin finds them.
#
#   tests/dra/test_kubelet_plugin.sh BUILDDIR [--valgrind]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILDDIR [--valgrind]}" && pwd)
plugin=$build/dra/isthmus-kubelet-plugin
wrap=()
if [ "${2:-}" = --valgrind ]; then
    wrap=(valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite
        --errors-for-leak-kinds=definite --log-file="%q{VGLOG}")
fi

# shellcheck source=../tap.sh
. "$top/tests/tap.sh"
command -v go >/dev/null || bail "needs go (to build the kubelet's client)"
[ -x "$plugin" ] || bail "no $plugin"

dir=$(mktemp -d "${TMPDIR:-/tmp}/isthmus-plugin.XXXXXX")
pid=
finish() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap finish EXIT

client=$dir/kubelet-client
(cd "$here/kubelet-client" && GOFLAGS=-mod=readonly go build -o "$client" .) >"$dir/go-build.log" 2>&1 ||
    bail "building the kubelet client failed: $(tail -5 "$dir/go-build.log")"

reg=$dir/registry/cpu.isthmus.io-reg.sock
dra=$dir/plugins/cpu.isthmus.io/dra.sock
state=$dir/state
cdi=$dir/cdi
log=$dir/plugin.log
export VGLOG=$dir/valgrind.log

start() {
    "${wrap[@]}" "$plugin" --node-name=n1 --no-api --registry-dir="$dir/registry" \
        --plugin-dir="$dir/plugins/cpu.isthmus.io" --state-dir="$state" --cdi-dir="$cdi" \
        --hook=/usr/sbin/isthmus-oci-hook --topology-cache="$dir/topology.json" \
        --cpu-manager-state="$dir/cpu_manager_state" --log-level=debug >>"$log" 2>&1 &
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

stop() {
    kill -TERM "$pid"
    wait "$pid"
    local rc=$?
    pid=
    return $rc
}

uid=0b7e7a52-3c1f-4e1e-9d7a-5f0c2a1b9e11
cpus=$(cat /sys/devices/system/cpu/online)
mkdir -p "$state"
cat >"$state/checkpoint.json" <<JSON
{"version":1,"claims":[{"uid":"$uid","namespace":"ns","name":"c","cpus":"$cpus","mems":"0","slurmJob":77,
 "devices":[{"request":"cpus","pool":"n1","device":"core-0"}]}]}
JSON

ok_if "the plugin starts and answers on its registration socket" start || {
    tail -20 "$log" | sed 's/^/# /'
    bail "the plugin did not start"
}

out=$("$client" info "$reg" 2>&1)
check "GetInfo: type, name, endpoint and version" "$out" \
    "{\"endpoint\":\"$dra\",\"name\":\"cpu.isthmus.io\",\"type\":\"DRAPlugin\",\"versions\":[\"v1.DRAPlugin\"]}"
check "NotifyRegistrationStatus(registered) answers" "$("$client" notify "$reg" true 2>&1)" '{"ok":true}'
"$client" notify "$reg" false "version v9 not supported" >/dev/null 2>&1
ok_if "a refused registration is logged with the kubelet's reason" grep -q "refused the registration: version v9 not supported" "$log"

out=$("$client" prepare "$dra" "ns/c/$uid" 2>&1)
check "prepare a claim known from the checkpoint: its devices and CDI id" "$out" \
    "{\"$uid\":{\"devices\":[{\"cdi\":[\"cpu.isthmus.io/claim=claim-$uid\"],\"device\":\"core-0\",\"pool\":\"n1\",\"requests\":[\"cpus\"]}],\"error\":\"\"}}"
spec=$cdi/cpu.isthmus.io-claim-$uid.json
ok_if "the claim's CDI spec is written" test -f "$spec"
check "the spec's hook gets the claim's cpus" "$(jq -c '.devices[0].containerEdits.hooks[0].args' "$spec" 2>&1)" \
    "[\"isthmus-oci-hook\",\"--cpus=$cpus\",\"--mems=0\",\"--claim=$uid\"]"
check "the spec's environment names the Slurm job" \
    "$(jq -r '.devices[0].containerEdits.env[]' "$spec" 2>&1 | grep SLURM)" "ISTHMUS_SLURM_JOB_ID=77"

out=$("$client" prepare "$dra" "ns/other/1111-2222" "ns/c/$uid" "ns/bad/../../x" 2>&1)
check "every claim of a request gets an answer" "$(echo "$out" | jq -c 'keys' 2>&1)" "[\"../../x\",\"$uid\",\"1111-2222\"]"
check "an unknown claim without an API server: its error" \
    "$(echo "$out" | jq -r '.["1111-2222"].error' 2>&1)" "claim ns/other: no API server to read it from"
check "a UID that is not a UID: refused" "$(echo "$out" | jq -r '.["../../x"].error' 2>&1)" \
    "prepare: claim UID is not a UID"
check "the good claim of the same request is prepared" "$(echo "$out" | jq -r ".[\"$uid\"].error" 2>&1)" ""

out=$("$client" raw "$dra" /k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources ffffffff 2>&1)
check "garbage instead of a request: InvalidArgument" "$out" \
    "kubelet-client: InvalidArgument: cannot decode NodePrepareResourcesRequest"
out=$("$client" raw "$dra" /k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodeGrowResources 00 2>&1)
check "an unknown method: Unimplemented" "$out" "kubelet-client: Unimplemented: no such method"
out=$("$client" raw "$reg" /k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources "" 2>&1)
check "the DRA service is not on the registration socket" "$out" "kubelet-client: Unimplemented: no such method"

ok_if "still serving after bad calls" quiet "$client" info "$reg"
ok_if "stops cleanly on SIGTERM (no valgrind error)" stop
ok_if "its sockets are removed" test ! -e "$dra" -a ! -e "$reg"

# Restart between prepare and unprepare: the record is still there.
ok_if "restarts" start
check "a restarted plugin prepares the claim again, the same way" \
    "$("$client" prepare "$dra" "ns/c/$uid" 2>&1 | jq -c ".[\"$uid\"].devices[0].cdi" 2>&1)" \
    "[\"cpu.isthmus.io/claim=claim-$uid\"]"
check "unprepare: no error" "$("$client" unprepare "$dra" "ns/c/$uid" 2>&1)" "{\"$uid\":{\"error\":\"\"}}"
ok_if "unprepare removes the spec" test ! -e "$spec"
check "the checkpoint no longer holds the claim" "$(jq -c '.claims' "$state/checkpoint.json" 2>&1)" "[]"
check "unprepare of an unknown claim is a success" "$("$client" unprepare "$dra" "ns/c/$uid" 2>&1)" \
    "{\"$uid\":{\"error\":\"\"}}"
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null)
echo "# plugin RSS after the calls: ${rss:-?} kB${wrap:+ (under valgrind)}"
ok_if "stops cleanly again" stop

# A corrupt checkpoint: moved aside, logged, and the plugin serves.
echo '{"version":1,"claims":[{"uid":' >"$state/checkpoint.json"
ok_if "starts with a corrupt checkpoint" start
ok_if "says the checkpoint was corrupt and moved aside" grep -q "checkpoint.json.corrupt, starting with no claim" "$log"
ok_if "serves GetInfo" quiet "$client" info "$reg"
ok_if "stops cleanly" stop
if [ ${#wrap[@]} -gt 0 ]; then
    ok_if "valgrind reports nothing" test ! -s "$VGLOG"
    [ -s "$VGLOG" ] && sed 's/^/# /' "$VGLOG" | head -30
fi

tap_plan
[ "$failed" -eq 0 ]
