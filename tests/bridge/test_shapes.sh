#!/bin/bash
# Every machine in tests/topologies through publish -> isthmusd -> slices,
# in TAP (issue 18, machines of unusual shape).
#
#   tests/bridge/test_shapes.sh BUILDDIR
#
# One Slurm node per XML file of the folder (a file added there joins by
# itself), each with its Kubernetes Node.  Each node's topology is published
# with isthmus-topology; isthmusd must publish, for every node, exactly the
# devices `isthmus-topology json` gives for the same file, attribute by
# attribute.  On the machine whose cores have different thread counts
# (offline cpus), a job's cores must come back as claims naming the very
# cores Slurm reports in CPU_IDs, all of them devices of the node's slices.
# A claim that asks for HBM ({"mem": "hbm"}) gets its config into the
# allocation isthmusd writes.
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mapfile -t xmls < <(cd "$topologies" && ls -- *.xml)
((${#xmls[@]} > 0)) || bail "no XML in $topologies"
args=()
for x in "${xmls[@]}"; do args+=(--xml "$topologies/$x"); done
bridge_world --nodes "${#xmls[@]}" "${args[@]}"
for i in "${!xmls[@]}"; do
    "$topo_tool" publish --xml "$topologies/${xmls[$i]}" -N "n$((i + 1))" >/dev/null ||
        bail "isthmus-topology publish failed for ${xmls[$i]}"
done

device_count() { topology_devices "$1" | wc -l; }
# all_published: every node has as many devices in its slices as its topology has cores
all_published() {
    local i
    for i in "${!xmls[@]}"; do
        [[ $(slice_devices "n$((i + 1))" | wc -l) == "${want_count[$i]}" ]] || return 1
    done
}

start_isthmusd a || bail "isthmusd did not start"
ok_if "isthmusd becomes ready and leader" until_ok eval 'http a /readyz && leading a'
want_count=()
for i in "${!xmls[@]}"; do want_count[$i]=$(device_count "$topologies/${xmls[$i]}"); done
ok_if "every node of the ${#xmls[@]} machines gets its slices" until_ok all_published
for i in "${!xmls[@]}"; do
    check "n$((i + 1)) (${xmls[$i]}): its devices equal its topology" \
        "$(slice_devices "n$((i + 1))")" "$(topology_devices "$topologies/${xmls[$i]}")"
done
check "no node was refused its topology (no BadTopology event)" \
    "$(kubectl get events.events.k8s.io -A -o json | jq -r '[.items[] | select(.reason == "BadTopology")
        | .regarding.name] | unique | join(",")')" ""

# ------------------------------------------------------------ slurmd's fallback
# The machine with offline cpus: Slurm has 4 single-thread cores; a job of all
# of them is mirrored as claims on exactly the cores of its CPU_IDs.
off=
for i in "${!xmls[@]}"; do [[ ${xmls[$i]} == 16em64t-4s2c2t-offlines.xml ]] && off=n$((i + 1)); done
[[ -n $off ]] || bail "16em64t-4s2c2t-offlines.xml is not in $topologies"
job=$(sbatch --parsable -o /dev/null -w "$off" -n 4 --wrap 'sleep 600') || bail "sbatch failed"
ok_if "offline cpus: a job of 4 tasks runs on $off" \
    until_ok eval '[[ $(squeue -h -j '"$job"' -o %T) == RUNNING ]]'
# expand_ids LIST: "0-2,5" as "core-0 core-1 core-2 core-5"
expand_ids() {
    local part out=()
    local -a parts
    IFS=, read -r -a parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then out+=($(seq -f 'core-%g' "${part%-*}" "${part#*-}")); else out+=("core-$part"); fi
    done
    printf '%s\n' "${out[@]}" | sort | paste -sd' '
}
claimed() {
    kubectl get resourceclaims -n isthmus-system -l "isthmus.io/slurm-job=$job" -o json |
        jq -r '[.items[].status.allocation.devices.results[]?.device] | sort | join(" ")'
}
cpu_ids=$(scontrol -d show job "$job" | sed -n 's/.*CPU_IDs=\([^ ]*\).*/\1/p' | head -1)
want=$(expand_ids "$cpu_ids")
ok_if "offline cpus: the job's claims name the cores of CPU_IDs=$cpu_ids" \
    until_ok eval '[[ "$(claimed)" == "$want" ]]'
check "offline cpus: every claimed core is a device of $off's slices" \
    "$(comm -23 <(tr ' ' '\n' <<<"$want" | sort) <(slice_devices "$off" | cut -d' ' -f1 | sort))" ""
scancel "$job"

# ------------------------------------------------------------ a claim that asks for HBM
# isthmusd serves a claim whose config is ours ({"mem": "hbm"}) and writes that
# config into the allocation, where the kubelet plugin reads it; the API server
# must accept the write.
kubectl create namespace hbm >>"$dir/apply.log" 2>&1
kubectl apply -f - >>"$dir/apply.log" 2>&1 <<'YAML' || bail "the HBM claim or its pod was refused"
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: fast, namespace: hbm}
spec:
  devices:
    requests:
    - {name: cores, exactly: {deviceClassName: cpu.isthmus.io, count: 2}}
    config:
    - requests: [cores]
      opaque: {driver: cpu.isthmus.io, parameters: {mem: hbm}}
---
apiVersion: v1
kind: Pod
metadata: {name: fast, namespace: hbm}
spec:
  schedulerName: isthmus
  resourceClaims: [{name: cpus, resourceClaimName: fast}]
  containers:
  - name: main
    image: registry.invalid/none
    resources: {claims: [{name: cpus}]}
YAML
alloc_config() { kubectl get resourceclaim -n hbm fast -o json | jq -S -c '.status.allocation.devices.config // empty'; }
bound_to() { kubectl get pod -n hbm fast -o jsonpath='{.spec.nodeName}'; }
ok_if "a claim asking {\"mem\": \"hbm\"}: its pod is bound" until_ok eval '[[ -n $(bound_to) ]]'
check "... and the allocation carries the claim's config" "$(alloc_config)" \
    '[{"opaque":{"driver":"cpu.isthmus.io","parameters":{"mem":"hbm"}},"requests":["cores"],"source":"FromClaim"}]'

tap_plan
