#!/bin/bash
# isthmusd against a real Slurm cluster and a real Kubernetes control plane
# (kube-apiserver, kube-controller-manager, kube-scheduler), in TAP.
#
#   tests/bridge/test_isthmusd.sh BUILDDIR
#
# The world: three Slurm nodes pretending to be corona (48 cores, SMT),
# a 4-socket Xeon (8 cores, SMT) and a 192-core machine, each with a
# Kubernetes Node of the same name.  isthmusd runs as the world's
# least-privilege user "isthmusd" with contrib's RBAC, as two replicas; the
# standby runs under valgrind and must exit clean.
#
# Waits are bounded polls for an outcome (a failure means it never
# happened); nothing asserts on how long something took.
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

xml1=$topologies/corona.xml
xml2=$topologies/16em64t-4s2c2t.xml
xml3=$topologies/192em64t-12gr2n8c2t.xml
bridge_world --nodes 3 --xml "$xml1" --xml "$xml2" --xml "$xml3"
# No taint here (test_policy.sh tests it): isthmusd then reads Nodes by
# their metadata alone, and its Events must still name the Nodes.
extra_conf="TaintBridgedNodes=no"

# --- topologies: n1 and n2 published; n3 not yet
"$topo_tool" publish --xml "$xml1" -N n1 >/dev/null && "$topo_tool" publish --xml "$xml2" -N n2 >/dev/null ||
    bail "isthmus-topology publish failed"

versions() { kubectl get resourceslices,resourceclaims -A -o json |
    jq -r '.items[] | "\(.kind) \(.metadata.name) \(.metadata.uid) \(.metadata.resourceVersion)"' | sort; }
event_reasons() { kubectl get events.events.k8s.io -A -o json |
    jq -r --arg n "$1" '[.items[] | select(.regarding.name == $n and .regarding.kind == "Node") | .reason] | unique | join(",")'; }
has_event() { [[ ,$(event_reasons "$1"), == *,$2,* ]]; }
writes() { metric "$1" isthmus_kube_writes_total; }

# ============================================================ replica a
start_isthmusd a || bail "isthmusd did not start"
ok_if "isthmusd becomes ready and leader" until_ok eval 'http a /readyz && leading a'
until_ok has_slices n1
until_ok has_slices n2
check "n1's devices equal the topology of corona.xml (48 cores)" "$(slice_devices n1)" "$(topology_devices "$xml1")"
check "n2's devices equal the topology of the 4-socket Xeon (8 cores)" "$(slice_devices n2)" "$(topology_devices "$xml2")"
check "every slice names its node, is owned by the Node, and is labelled" \
    "$(kubectl get resourceslices,nodes -o json | jq -r '.items as $all
        | ([$all[] | select(.kind == "Node") | {(.metadata.name): .metadata.uid}] | add) as $uid
        | [$all[] | select(.kind == "ResourceSlice") | (.spec.nodeName == .spec.pool.name
          and .metadata.ownerReferences == [{apiVersion: "v1", kind: "Node", name: .spec.pool.name, uid: $uid[.spec.pool.name], controller: true}]
          and .metadata.labels["isthmus.io/slurm-node"] == .spec.pool.name and .spec.driver == "cpu.isthmus.io")] | unique | tostring')" \
    "[true]"
ok_if "n3 has no topology: no slices, and an Event NoTopology on Node n3" until_ok eval 'no_slices n3 && has_event n3 NoTopology'

# --- n3's topology arrives: 192 cores in two slices
"$topo_tool" publish --xml "$xml3" -N n3 >/dev/null
until_ok has_slices n3
until_ok eval '[[ $(slice_devices n3 | wc -l) == 192 ]]'
check "n3's 192 devices equal its topology" "$(slice_devices n3)" "$(topology_devices "$xml3")"
check "n3's pool is split 128 + 64, in core order, one generation, count 2" \
    "$(kubectl get resourceslices -o json | jq -c '[.items[] | select(.spec.pool.name == "n3")] | sort_by(.metadata.name)
        | map([.metadata.name, (.spec.devices | length), .spec.devices[0].name, .spec.pool.generation, .spec.pool.resourceSliceCount])')" \
    '[["n3-cpu.isthmus.io-0",128,"core-0",1,2],["n3-cpu.isthmus.io-1",64,"core-128",1,2]]'

# --- steady state: nothing changes, nothing is written
sleep 3
w0=$(writes a)
before=$(versions)
sleep 6 # six Slurm polls and a Lease renewal each second
check "no write in a steady state (isthmus_kube_writes_total stays $w0)" "$(writes a)" "$w0"
check "no object changed in a steady state" "$(versions)" "$before"
ok_if "Slurm was polled meanwhile" test "$(metric a isthmus_slurm_polls_total)" -gt 12

# --- someone deletes a slice: put back, same generation and content
gen() { kubectl get resourceslice "$1" -o jsonpath='{.spec.pool.generation}'; }
want=$(slice_devices n3)
kubectl delete resourceslice n3-cpu.isthmus.io-1 >/dev/null
ok_if "a deleted slice is put back" until_ok kubectl get resourceslice n3-cpu.isthmus.io-1
check "... with the same content and generation" "$(slice_devices n3) $(gen n3-cpu.isthmus.io-1)" "$want 1"

# --- someone edits a slice: put back, at a new generation for the whole pool
kubectl patch resourceslice n2-cpu.isthmus.io-0 --type=json \
    -p '[{"op": "replace", "path": "/spec/devices/0/attributes/cpu.isthmus.io~1socket", "value": {"int": 7}}]' >/dev/null
ok_if "an edited slice is put back" until_ok eval '[[ "$(slice_devices n2)" == "$(topology_devices "$xml2")" ]]'
check "... at generation 2" "$(gen n2-cpu.isthmus.io-0)" 2

# --- a Slurm job: mirrored as allocated claims
job=$(sbatch --parsable -o /dev/null -w n2 -c 12 --wrap 'sleep 600') || bail "sbatch failed"
until_ok eval '[[ $(squeue -h -j '"$job"' -o %T) == RUNNING ]]' || bail "job $job did not start"
ok_if "job $job gets claims in isthmus-system" until_ok eval '[[ -n $(claim_devices '"$job"') ]]'
check "the claims name exactly the job's cores (scontrol -d show job)" "$(claim_devices "$job")" "$(oracle_cores "$job" n2)"
check "claims: finalizer, labels, pool n2, node-local allocation" \
    "$(kubectl get resourceclaims -n isthmus-system -l "isthmus.io/slurm-job=$job" -o json | jq -c '[.items[] |
        [.metadata.finalizers, .metadata.labels["isthmus.io/slurm-node"], (.status.allocation.devices.results | map(.pool) | unique),
         .status.allocation.nodeSelector.nodeSelectorTerms[0].matchFields[0].values]] | unique')" \
    '[[["isthmus.io/slurm-job"],"n2",["n2"],["n2"]]]'

# --- kube-scheduler must not hand out the job's cores
free=$((8 - $(oracle_cores "$job" n2 | wc -l)))
pod_with_cores() { # pod_with_cores NAME COUNT: a pod on n2 asking for COUNT cores of cpu.isthmus.io
    # (it tolerates the taint of bridged Nodes: kube-scheduler is the oracle here)
    kubectl apply -f - >/dev/null <<EOF
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: $1, namespace: default}
spec:
  devices:
    requests:
    - name: cores
      exactly: {deviceClassName: cpu.isthmus.io, allocationMode: ExactCount, count: $2}
---
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: n2}
  tolerations: [{key: isthmus.io/bridged, operator: Exists, effect: NoSchedule}]
  containers: [{name: c, image: local/none, resources: {claims: [{name: cores}]}}]
  resourceClaims: [{name: cores, resourceClaimName: $1}]
EOF
}
pod_with_cores too-many $((free + 1))
pod_with_cores fits "$free"
ok_if "kube-scheduler places a pod asking for the $free free cores" \
    until_ok eval '[[ $(kubectl get pod fits -o jsonpath="{.spec.nodeName}") == n2 ]]'
fits_devices=$(kubectl get resourceclaim fits -o json | jq -r '.status.allocation.devices.results[]?.device' | sort)
check "... and gives it $free cores, none of them the job's" \
    "$(wc -l <<<"$fits_devices") $(comm -12 <(echo "$fits_devices") <(claim_devices "$job") | xargs)" "$free "
ok_if "a pod asking for $((free + 1)) cores stays unschedulable" until_ok eval \
    '[[ $(kubectl get pod too-many -o jsonpath="{.status.conditions[?(@.type==\"PodScheduled\")].reason}") == Unschedulable ]]'
check "the mirrored claims are still allocated with kube-controller-manager running" \
    "$(claim_devices "$job")" "$(oracle_cores "$job" n2)"

# --- restart: no duplicate, no orphan, no write
before=$(versions)
kill -TERM "${pid[a]}"
wait "${pid[a]}"
check "SIGTERM stops isthmusd cleanly (exit 0, pidfile removed)" "$? $(test -e "$dir/isthmusd-a.pid" && echo kept)" "0 "
check "the Lease is given up on a clean stop" \
    "$(kubectl get lease -n isthmus-system isthmusd -o jsonpath='{.spec.holderIdentity}')" ""
start_isthmusd a || bail "isthmusd did not start again"
until_ok eval 'http a /readyz && leading a'
sleep 4
check "after a restart: the same objects, untouched" "$(versions)" "$before"
check "after a restart: no write at all" "$(writes a)" 0

# --- a standby under valgrind; the leader is killed; the standby takes over
start_isthmusd b valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
    --suppressions="$top/tests/slurm/valgrind.supp" || bail "the standby did not start"
until_ok eval 'http b /readyz' || bail "the standby is not ready"
check "the standby does not lead while a leads" "$(metric b isthmus_leader) $(writes b)" "0 0"
kill -9 "${pid[a]}"
wait "${pid[a]}" 2>/dev/null
unset 'pid[a]'
ok_if "after the leader's kill -9 the standby leads" until_ok leading b
kubectl delete resourceslice n1-cpu.isthmus.io-0 >/dev/null
ok_if "the new leader puts a deleted slice back" until_ok kubectl get resourceslice n1-cpu.isthmus.io-0

# --- the job ends: its claims go
scancel "$job"
ok_if "the claims of an ended job are deleted (finalizer removed)" \
    until_ok eval '[[ $(mirrored_claims '"$job"') == 0 ]]'

# --- a Node leaves Kubernetes: its slices go
kubectl delete pod fits too-many --wait=false >/dev/null
kubectl delete node n1 >/dev/null
ok_if "a removed Node's slices are deleted" until_ok no_slices n1

# --- corrupt topology: no slices, an Event, the daemon keeps going
scontrol update nodename=n3 extra='{"isthmus": {"version": 99, "cores": "x"}}'
ok_if "a corrupt topology removes n3's slices and gives an Event BadTopology" \
    until_ok eval 'no_slices n3 && has_event n3 BadTopology'
ok_if "isthmusd is still healthy and ready" eval 'http b /healthz && http b /readyz'
check "slices of the other nodes stay" "$(slices_of n2)" 1

# --- the standby (now leader) under valgrind stops clean
kill -TERM "${pid[b]}"
wait "${pid[b]}"
check "isthmusd under valgrind exits 0 with no error or definite leak" "$?" 0
unset 'pid[b]'

tap_plan
