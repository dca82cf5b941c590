#!/bin/bash
# isthmus-oci-hook's run time inside the real runc: the figure of the node
# side's issue note that bench_oci_hook gives without a runtime.  Not a
# test: it asserts nothing.
#
#   tests/bench/oci_hook_runc.sh BUILDDIR [N]     (root; N containers, default 200)
#
# N times `runc run` of a busybox container whose createRuntime hook is
# bench_oci_hook --wrap around isthmus-oci-hook (--cpus= the first online
# cpu, --mems= the online nodes): the hook reads runc's OCI state and
# writes the container's own cgroup; the wrapper logs the hook's time from
# fork to exit.  Also N runs of the same container without the hook, in
# turn with the hooked ones, for the whole `runc run` wall time of both.
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR [N]}" && pwd)
n=${2:-200}
hook=$build/dra/isthmus-oci-hook
wrapper=$build/tests/bench/bench_oci_hook
die() { echo "oci_hook_runc: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (runc creates cgroups)"
for t in runc jq; do command -v $t >/dev/null || die "needs $t"; done
busybox=$(command -v busybox) || die "needs busybox-static"
[ -x "$hook" ] && [ -x "$wrapper" ] || die "build $build first (make -C tests/bench bench_oci_hook)"

dir=$(mktemp -d "${TMPDIR:-/tmp}/isthmus-bench-runc.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/hooked" "$dir/plain"
cp "$busybox" "$dir/rootfs/bin/busybox"
(cd "$dir" && runc spec) || die "runc spec failed"
online=$(cat /sys/devices/system/cpu/online)
nodes=$(cat /sys/devices/system/node/online 2>/dev/null || echo 0)
cpu=${online%%[-,]*}
for b in plain hooked; do
    jq --arg root "$dir/rootfs" --arg b "$b" --arg w "$wrapper" --arg log "$dir/hook.log" \
        --arg hook "$hook" --arg pid "$$" --arg cpus "--cpus=$cpu" --arg mems "--mems=$nodes" '
        .process.terminal = false
        | .process.args = ["/bin/busybox", "true"]
        | .root = {path: $root, readonly: true}
        | .linux.cgroupsPath = "/isthmus-bench-runc-\($b)-\($pid)"
        | if $b == "hooked" then .hooks.createRuntime = [{path: $w,
              args: ["bench_oci_hook", "--wrap", $log, $hook, "isthmus-oci-hook", $cpus, $mems, "--claim=bench"]}]
          else . end' "$dir/config.json" >"$dir/$b/config.json"
done

# run B: one `runc run` of bundle B; its wall seconds appended to B.wall.
run() {
    local t0 t1
    t0=$(date +%s%N)
    runc --root "$dir/state" run --bundle "$dir/$1" "bench-$1-$$" >>"$dir/runc.log" 2>&1 ||
        die "runc run $1 failed: $(tail -3 "$dir/runc.log")"
    t1=$(date +%s%N)
    echo "$(((t1 - t0) / 1000))" >>"$dir/$1.wall"
}
for ((i = 0; i < 5; i++)); do run hooked; run plain; done # warm-up
: >"$dir/hook.log"
: >"$dir/hooked.wall"
: >"$dir/plain.wall"
for ((i = 0; i < n; i++)); do run hooked; run plain; done

# stats FILE SCALE: "p50 X ms  p99 Y ms  max Z ms" of FILE's numbers / SCALE.
stats() {
    sort -g "$1" | awk -v s="$2" '{ v[NR] = $1 / s }
        END { printf "p50 %.3f ms  p99 %.3f ms  max %.3f ms  (n=%d)", v[int(0.5 * (NR - 1)) + 1],
              v[int(0.99 * (NR - 1)) + 1], v[NR], NR }'
}
echo "# runc $(runc --version | head -1 | awk '{print $3}'), container on cpu $cpu of $online, mems $nodes"
echo "isthmus-oci-hook inside runc, fork to exit:  $(stats "$dir/hook.log" 0.001)"
echo "runc run, with the hook:                    $(stats "$dir/hooked.wall" 1000)"
echo "runc run, without it:                       $(stats "$dir/plain.wall" 1000)"
