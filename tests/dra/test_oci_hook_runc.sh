#!/bin/bash
# isthmus-oci-hook run by the real runc as a createRuntime hook, in TAP.
#
#   tests/dra/test_oci_hook_runc.sh BUILDDIR
#
# Each case builds a bundle (a busybox rootfs, `runc spec`, the hook added
# with its --cpus and --mems), runs it with runc, and reads what the
# container's first process reports in /proc/self/status: that process is
# the workload itself (busybox grep as pid 1), so what it sees is what the
# workload's first instruction ran under.  Needs root, runc, busybox-static
# and jq; cgroup v1 or v2.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
hook=$build/dra/isthmus-oci-hook

# shellcheck source=../tap.sh
. "$top/tests/tap.sh"

[ "$(id -u)" -eq 0 ] || bail "needs root (runc creates cgroups)"
for t in runc jq; do command -v $t >/dev/null || bail "needs $t"; done
busybox=$(command -v busybox) || bail "needs busybox-static"
[ -x "$hook" ] || bail "no $hook"

dir=$(mktemp -d "${TMPDIR:-/tmp}/isthmus-runc.XXXXXX")
state=$dir/runc-state
ids=()
finish() {
    local id
    for id in "${ids[@]+"${ids[@]}"}"; do runc --root "$state" delete -f "$id" >/dev/null 2>&1; done
    rm -rf "$dir"
}
trap finish EXIT

mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev"
cp "$busybox" "$dir/rootfs/bin/busybox"
(cd "$dir" && runc spec) || bail "runc spec failed"
online_cpus=$(cat /sys/devices/system/cpu/online)
online_nodes=$(cat /sys/devices/system/node/online 2>/dev/null || echo 0)
first_cpu=${online_cpus%%[-,]*}
last_cpu=${online_cpus##*[-,]}
first_node=${online_nodes%%[-,]*}
echo "# online cpus $online_cpus, memory nodes $online_nodes; runc $(runc --version | head -1)"

# bundle NAME CPUS MEMS: a bundle whose hook confines the container to CPUS
# and MEMS; with $wrap set (valgrind), the hook runs under it.
wrap=
bundle() {
    local b=$dir/$1 path=$hook args
    mkdir -p "$b"
    args=$(jq -n --arg hook "$hook" --arg cpus "--cpus=$2" --arg mems "--mems=$3" \
        '["isthmus-oci-hook", $cpus, $mems, "--claim=test"]')
    if [ -n "$wrap" ]; then
        path=$wrap
        args=$(jq -n --arg w "$wrap" --arg hook "$hook" --argjson a "$args" \
            '[$w, "--quiet", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect", $hook] + $a[1:]')
    fi
    jq --arg root "$dir/rootfs" --arg path "$path" --argjson args "$args" --arg cg "/isthmus-test-$1-$$" '
        .process.terminal = false
        | .process.args = ["/bin/busybox", "grep", "-E", "^(Cpus|Mems)_allowed_list", "/proc/self/status"]
        | .root = {path: $root, readonly: true}
        | .linux.cgroupsPath = $cg
        | .hooks.createRuntime = [{path: $path, args: $args}]
    ' "$dir/config.json" >"$b/config.json"
}

# run NAME: run the bundle, its output in $dir/NAME.out, runc's status returned.
run() {
    ids+=("$1-$$")
    (cd "$dir/$1" && runc --root "$state" run "$1-$$") >"$dir/$1.out" 2>&1
}

not_in() { ! grep -q -- "$2" "$1"; }

field() { awk -v k="$1:" '$1 == k {print $2}' "$2"; }

# cgroup_gone NAME: no cgroup of the container is left (v1 cpuset or v2).
cgroup_gone() {
    [ ! -e "/sys/fs/cgroup/cpuset/isthmus-test-$1-$$" ] && [ ! -e "/sys/fs/cgroup/isthmus-test-$1-$$" ]
}

confined() {
    local name=$1 cpus=$2 mems=$3
    bundle "$name" "$cpus" "$mems"
    if ! run "$name"; then
        not_ok "$name: runc run succeeds with --cpus=$cpus --mems=$mems" "$(cat "$dir/$name.out")"
        return
    fi
    check "$name: the workload's Cpus_allowed_list is $cpus" "$(field Cpus_allowed_list "$dir/$name.out")" "$cpus"
    check "$name: the workload's Mems_allowed_list is $mems" "$(field Mems_allowed_list "$dir/$name.out")" "$mems"
}

confined last-cpu "$last_cpu" "$first_node"
confined first-cpu "$first_cpu" "$first_node"
confined all-cpus "$online_cpus" "$online_nodes"

# Values outside the node: the container does not start, the message says why.
refused() {
    local name=$1 cpus=$2 mems=$3 want=$4
    bundle "$name" "$cpus" "$mems"
    if run "$name"; then
        not_ok "$name: runc refuses to start the container" "$(cat "$dir/$name.out")"
    else
        ok "$name: runc refuses to start the container"
    fi
    if grep -q -- "$want" "$dir/$name.out"; then
        ok "$name: the error says '$want'"
    else
        not_ok "$name: the error says '$want'" "$(cat "$dir/$name.out")"
    fi
    ok_if "$name: the workload did not run" not_in "$dir/$name.out" _allowed_list
    [ -z "$wrap" ] || ok_if "$name: valgrind reports nothing" not_in "$dir/$name.out" '==[0-9][0-9]*=='
    runc --root "$state" delete -f "$name-$$" >/dev/null 2>&1
    ok_if "$name: no cgroup is left behind" cgroup_gone "$name"
}
refused cpu-offline "$((last_cpu + 1))" "$first_node" "cpus $((last_cpu + 1)) not online on this node"
refused node-offline "$first_cpu" "$((${online_nodes##*[-,]} + 1))" "memory nodes .* not online on this node"
refused bad-list "$first_cpu-" "$first_node" "--cpus"

# Under valgrind: no memory error, no leak, on success and on refusal.
if valgrind=$(command -v valgrind); then
    wrap=$valgrind
    confined valgrind "$last_cpu" "$first_node"
    refused valgrind-refused "$((last_cpu + 1))" "$first_node" "not online on this node"
    wrap=
fi

# The hook alone, fed garbage: exit 1 with one clear line, nothing written.
out=$(echo 'garbage{' | "$hook" --cpus=0 --mems=0 2>&1)
rc=$?
check "garbage on stdin: exit status 1" "$rc" 1
check "garbage on stdin: one line naming the problem" "$(echo "$out" | grep -c 'OCI state: not JSON')" 1
out=$(head -c 2000000 /dev/zero | tr '\0' ' ' | "$hook" --cpus=0 --mems=0 2>&1)
check "2 MB on stdin: refused as too large" "$(echo "$out" | grep -c 'larger than')" 1

tap_plan
[ "$failed" -eq 0 ]
