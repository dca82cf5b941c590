#!/bin/bash
# isthmusd's Slurm side on a newer Slurm release, in TAP: the Slurm world
# (munged, slurmctld, three slurmd of that release) and isthmusd built
# against its libslurm run inside the release's Debian root; the
# Kubernetes world runs here, outside it.  Run by tests/slurm/release
# SUITE --bridge, which builds BUILDDIR in the root first; ROOT / runs the
# same tests on this machine's own Slurm (22.05 on Debian 12).
#
#   tests/bridge/test_release.sh ROOT BUILDDIR
#
# The nodes pretend to be corona (2 x 24 cores x 2 threads), a 4-socket
# Xeon (2 cores x 2 threads each) and a Cluster-on-Die Xeon (2 x 14, no
# SMT).  Checked: slices from the published topologies, and sbatch jobs of
# several shapes mirrored as allocated claims whose devices equal
# `scontrol -d show job` on every node of the job, gone once it ends.
# Waits are bounded polls for an outcome; nothing asserts on a duration.
set -uo pipefail
root=$(cd "${1:?usage: $0 ROOT BUILDDIR}" && pwd)
build=$(cd "${2:?usage: $0 ROOT BUILDDIR}" && pwd)
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
die() { bail "$*"; }
note() { printf '# %s\n' "$*"; }
# shellcheck source=../world/debian.sh
. "$top/tests/world/debian.sh"

# in_root CMD...: a command of the release's root (its Slurm clients and
# daemons), with the clone and the worlds' directory at their own paths.
in_root() { debian_root_run "$root" --bind "$top" -- env ${SLURM_CONF:+SLURM_CONF="$SLURM_CONF"} "$@"; }
# The Slurm clients the tests and lib.sh call are the root's: this
# machine's older ones do not speak that release's protocol.
for c in sbatch squeue scontrol scancel; do
    eval "$c() { in_root $c \"\$@\"; }"
done

xml1=$topologies/corona.xml
xml2=$topologies/16em64t-4s2c2t.xml
xml3=$topologies/28intel64-2p2g7c-CoDgroups.v1tov2.xml

# ---- the worlds: Slurm in the root, Kubernetes here
bridge_cleanup() {
    local f=$dir/isthmusd-a.pid
    [[ -f $f ]] && kill -TERM "$(<"$f")" 2>/dev/null
    [[ -f $dir/slurm/slurm.conf ]] && in_root "$world/slurm/stop" "$dir/slurm" >/dev/null 2>&1
    return 0
}
[[ -x $isthmusd && -x $topo_tool ]] || bail "build $build first (no isthmusd or isthmus-topology)"
version=$(in_root slurmctld -V) || bail "no slurmctld in $root"
note "Slurm $version in $root; Kubernetes here"
slurm_env=$(ISTHMUS_TOPOLOGY=$topo_tool in_root "$world/slurm/start" --nodes 3 \
    --xml "$xml1,$xml2,$xml3" "$dir/slurm" 2>"$dir/start.err") || {
    tail -30 "$dir/start.err" | sed 's/^/# /'
    bail "the Slurm world did not start in the root"
}
k8s_env=$(ISTHMUS_K8S_NODE_GRACE_PERIOD=24h "$world/k8s/start" "$dir/k8s" 2>"$dir/start.err") || {
    tail -30 "$dir/start.err" | sed 's/^/# /'
    bail "the Kubernetes world did not start"
}
eval "$(grep '^export' <<<"$slurm_env")"
eval "$(grep '^export' <<<"$k8s_env")"
k8s=$dir/k8s
"$world/k8s/add-nodes" "$KUBECONFIG" --slurm "$dir/slurm" >/dev/null 2>&1 || bail "add-nodes failed"
bridge_apply_contrib

for n in 1 2 3; do
    xml=xml$n
    in_root "$topo_tool" publish --xml "${!xml}" -N "n$n" >/dev/null || bail "publish on n$n failed"
done

# isthmusd of that release, inside the root: pid[a] is the wrapper's, its
# pidfile names the daemon.
start_isthmusd a debian_root_run "$root" --bind "$top" -- || bail "isthmusd did not start"
ok_if "isthmusd ($version) becomes ready and leader" until_ok eval 'http a /readyz && leading a'

# ---- slices
devices_of() { kubectl get resourceslices -o json | jq --arg p "$1" '[.items[] | select(.spec.pool.name == $p) | .spec.devices[]] | length'; }
for n in 1 2 3; do
    xml=xml$n
    cores=$(in_root "$topo_tool" json --xml "${!xml}" | jq '.cores | length')
    ok_if "n$n gets slices with one device per core of its topology ($cores)" \
        until_ok eval '[[ $(devices_of n'"$n"') == '"$cores"' ]]'
done

# ---- jobs of several shapes, mirrored
shapes=(
    "-w n2 -c 4"
    "-N 3 -n 6"
    "-N 2 -w n[1,3] -n 4 -c 3"
    "-w n1 -n 30"
)
# claims_on_every_node JOB "HOST...": JOB has mirrored claims on each HOST
claims_on_every_node() {
    local h
    for h in $2; do [[ -n $(claim_devices "$1" "$h") ]] || return 1; done
}
jobs=()
for shape in "${shapes[@]}"; do
    # shellcheck disable=SC2086  # the shape is several arguments
    job=$(sbatch --parsable -o /dev/null $shape --wrap 'sleep 600') || bail "sbatch $shape failed"
    jobs+=("$job")
    until_ok eval '[[ $(squeue -h -j '"$job"' -o %T) == RUNNING ]]' || bail "job $job ($shape) did not start"
    hosts=$(scontrol show hostnames "$(squeue -h -j "$job" -o %N)" | xargs)
    got= want=
    ok_if "sbatch $shape: job $job gets claims on each of its nodes ($hosts)" \
        until_ok claims_on_every_node "$job" "$hosts"
    for h in $hosts; do
        got+="$h: $(claim_devices "$job" "$h" | xargs)"$'\n'
        want+="$h: $(oracle_cores "$job" "$h" | xargs)"$'\n'
    done
    check "sbatch $shape: the claims name exactly the job's cores on every node (scontrol -d show job)" \
        "$got" "$want"
done

scancel "${jobs[@]}"
for job in "${jobs[@]}"; do
    ok_if "job $job ended: its claims are deleted" until_ok eval '[[ $(mirrored_claims '"$job"') == 0 ]]'
done
ok_if "isthmusd is still healthy" http a /healthz

# ---- a clean stop
kill -TERM "$(<"$dir/isthmusd-a.pid")"
ok_if "SIGTERM stops isthmusd (its pidfile goes)" until_ok eval '[[ ! -e $dir/isthmusd-a.pid ]]'
tap_plan
