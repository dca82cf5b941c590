#!/bin/bash
# isthmusd's gang scheduler against a real Slurm cluster and a real
# Kubernetes control plane (kube-apiserver, kube-controller-manager, which
# makes the claims of templates, and kube-scheduler, which must leave
# isthmus pods alone), in TAP.
#
#   tests/bridge/test_gang.sh BUILDDIR
#
# The world: three Slurm nodes pretending to be a 192-core machine (24 NUMA
# nodes of 8 cores, 2 threads each), each with a Kubernetes Node.  There is
# no kubelet: a pod "finishes" when the test writes its status phase
# through the status subresource, as a kubelet would.
#
# Waits are bounded polls for an outcome (a failure means it never
# happened); nothing asserts on how long something took.
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

xml=$topologies/192em64t-12gr2n8c2t.xml
bridge_world --nodes 3 --xml "$xml" --xml "$xml" --xml "$xml"
for n in n1 n2 n3; do
    "$topo_tool" publish --xml "$xml" -N "$n" >/dev/null || bail "isthmus-topology publish failed"
done
# Gang jobs run as this user: never root.
gang_user=nobody
extra_conf="GangWaitTimeout=20"
loglevel=debug
start_isthmusd a || bail "isthmusd did not start"
for n in n1 n2 n3; do until_ok has_slices "$n" || bail "no slices for $n"; done

# Three nodes of one machine: n1 (first of the partition) holds the
# encoding, n2 and n3 name it by digest, and isthmusd gives them the same
# devices.
extra_of() { scontrol show node "$1" | sed -n 's/^ *Extra=//p'; }
pool_devices() {
    kubectl get resourceslices -o json |
        jq -c --arg n "$1" '[.items[] | select(.spec.pool.name == $n) | .spec.devices[]] | sort_by(.name)'
}
ok_if "n2 and n3 store a 27-byte reference to n1's topology" eval \
    '[[ $(extra_of n2) =~ ^\{\"isthmus\":\"@[0-9a-f]{12}\"\}$ && $(extra_of n3) == "$(extra_of n2)" &&
        $(extra_of n1) == "{\"isthmus\":$("$topo_tool" json --xml "$xml")}" ]]'
ok_if "... and their devices are n1's" eval \
    '[[ $(pool_devices n2) == "$(pool_devices n1)" && $(pool_devices n3) == "$(pool_devices n1)" &&
        $(pool_devices n1 | jq length) == 192 ]]'

# ------------------------------------------------------------ fixtures
# The scheduler-plugins PodGroup CRD, reduced to what isthmus reads.
kubectl apply -f - >>"$dir/apply.log" 2>&1 <<'YAML' || bail "the coscheduling CRD was refused"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: podgroups.scheduling.x-k8s.io
spec:
  group: scheduling.x-k8s.io
  names: {kind: PodGroup, plural: podgroups, singular: podgroup, shortNames: [pg]}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
YAML

# template NS NAME CORES [ALIGN-ATTRIBUTE] [SELECTOR]: a ResourceClaimTemplate
# of CORES cores of cpu.isthmus.io, aligned on the attribute when given.
template() {
    local ns=$1 name=$2 cores=$3 align=${4-} sel=${5-}
    kubectl apply -f - <<YAML
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: $name, namespace: $ns}
spec:
  spec:
    devices:
      requests:
      - name: cores
        exactly:
          deviceClassName: cpu.isthmus.io
          count: $cores
$([[ -n $sel ]] && printf "          selectors:\n          - cel: {expression: '%s'}\n" "$sel")
$([[ -n $align ]] && printf '      constraints:\n      - requests: [cores]\n        matchAttribute: %s\n' "$align")
YAML
}
# claim NS NAME CORES ALIGN-ATTRIBUTE: a ResourceClaim of CORES aligned cores
claim() {
    kubectl apply -f - <<YAML
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: $2, namespace: $1}
spec:
  devices:
    requests:
    - {name: cores, exactly: {deviceClassName: cpu.isthmus.io, count: $3}}
    constraints:
    - {requests: [cores], matchAttribute: $4}
YAML
}
# pod NS NAME TEMPLATE [METADATA-LINES] [SPEC-LINES]: an isthmus pod whose
# cores come from a claim of TEMPLATE (claim:NAME: the claim NAME itself).
pod() {
    local ns=$1 name=$2 tmpl=$3 meta=${4-} spec=${5-} ref
    ref="resourceClaimTemplateName: $tmpl"
    [[ $tmpl == claim:* ]] && ref="resourceClaimName: ${tmpl#claim:}"
    kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: $ns
$meta
spec:
  schedulerName: isthmus
$spec
  resourceClaims:
  - name: cpus
    $ref
  containers:
  - name: main
    image: registry.invalid/none
    resources:
      claims: [{name: cpus}]
YAML
}
# annotated_gang NS GANG N TEMPLATE [SIZE]: N pods of a gang named by annotations
annotated_gang() {
    local i
    for ((i = 0; i < $3; i++)); do
        pod "$1" "$2-$i" "$4" "  annotations: {isthmus.io/gang: $2, isthmus.io/gang-size: \"${5:-$3}\"}"
    done >>"$dir/apply.log" 2>&1
}
# direct_gang NS GANG N SIZE: N pods GANG-i of gang GANG (of SIZE), each
# with its own claim GANG-i of 2 NUMA-aligned cores, named as the pod
direct_gang() {
    local i
    for ((i = 0; i < $3; i++)); do
        claim "$1" "$2-$i" 2 resource.kubernetes.io/numaNode
        pod "$1" "$2-$i" "claim:$2-$i" "  annotations: {isthmus.io/gang: $2, isthmus.io/gang-size: \"$4\"}"
    done >>"$dir/apply.log" 2>&1
}
namespace() { kubectl create namespace "$1" >>"$dir/apply.log" 2>&1; }

# ------------------------------------------------------------ readers
diag() { printf '# %s\n' "$*"; }
# bound NS: how many isthmus pods of NS are bound
bound() { kubectl get pods -n "$1" -o json | jq '[.items[] | select(.spec.nodeName)] | length'; }
all_bound() { [[ $(bound "$1") == "$2" ]]; }
# gang_job NAME: the Slurm job id of gang job NAME ("" when none)
gang_job() { squeue -h -o '%i %j' | awk -v n="$1" '$2 == n {print $1}'; }
has_gang_job() { [[ -n $(gang_job "$1") ]]; }
no_gang_job() { [[ -z $(gang_job "$1") ]]; }
# claim_cores NS [PREFIX]: "POD NODE DEVICES" per pod (named PREFIX...), its
# claims' devices sorted
claim_cores() {
    local ns=$1
    kubectl get resourceclaims -n "$ns" -o json | jq -r --arg p "${2-}" '.items[] | select(.status.allocation)
        | select(.status.reservedFor[0].name | startswith($p))
        | [(.status.reservedFor[0].name), (.status.allocation.devices.results | map(.pool) | unique | join(",")),
           (.status.allocation.devices.results | map(.device | ltrimstr("core-") | tonumber) | sort
            | map(tostring) | join(","))] | join(" ")' | sort
}
# numa_of NODE CORE...: the NUMA nodes of cores, from the published slices
numa_map=$dir/numa.map
numa_of() {
    [[ -s $numa_map ]] || kubectl get resourceslices -o json | jq -r '.items[] | .spec.pool.name as $p
        | .spec.devices[] | "\($p) \(.name | ltrimstr("core-")) \(.attributes["resource.kubernetes.io/numaNode"].int)"' >"$numa_map"
    local node=$1
    shift
    printf '%s\n' "$@" | awk -v n="$node" 'FNR == NR {m[$1 " " $2] = $3; next} {print m[n " " $1]}' "$numa_map" -
}
# job_cores JOB: "NODE CORES" with the cores Slurm lists for the job
# (scontrol -d show job: CPU_IDs are abstract cpus, core = cpu / threads)
job_cores() {
    local nodes ids n
    scontrol -d show job "$1" | sed -n 's/^ *Nodes=\([^ ]*\) CPU_IDs=\([^ ]*\) .*/\1 \2/p' |
        while read -r nodes ids; do
            for n in $(scontrol show hostnames "$nodes"); do echo "$n $ids"; done
        done
}
expand_list() { # "0-3,8" -> 0 1 2 3 8
    local part a b
    for part in ${1//,/ }; do
        a=${part%-*} b=${part#*-}
        seq "$a" "$b"
    done
}
# cores_of_cpu_ids IDS THREADS: the cores (sorted, comma separated) of abstract cpus
cores_of_cpu_ids() { expand_list "$1" | awk -v t="$2" '{print int($1 / t)}' | sort -nu | paste -sd,; }
events_of() { # events_of NS POD: the reasons of the pod's Events
    kubectl get events -n "$1" --field-selector "involvedObject.name=$2" -o json 2>/dev/null |
        jq -r '.items[].reason'
}
has_event() { events_of "$1" "$2" | grep -qx "$3"; }
# event_says NS REASON TEXT: an Event of REASON in NS whose message holds TEXT
event_says() {
    kubectl get events -n "$1" -o json |
        jq -e --arg r "$2" --arg t "$3" '[.items[] | select(.reason == $r and (.message | contains($t)))] | length > 0' >/dev/null
}

# check_gang NS JOBNAME PODS [PREFIX]: every pod (named PREFIX...) bound,
# claims disjoint, each in one NUMA node, and equal to the cores Slurm lists
# for the job.
check_gang() {
    local ns=$1 name=$2 n=$3 job lines pod node devs d numas want have
    job=$(gang_job "$name")
    [[ -n $job ]] || { diag "no Slurm job named $name"; return 1; }
    lines=$(claim_cores "$ns" "${4-}")
    [[ $(wc -l <<<"$lines") == "$n" ]] || { diag "claims: $lines"; return 1; }
    while read -r pod node devs; do
        [[ $(kubectl get pod -n "$ns" "$pod" -o jsonpath='{.spec.nodeName}') == "$node" ]] ||
            { diag "$pod is not on $node"; return 1; }
        numas=$(numa_of "$node" ${devs//,/ } | sort -u | wc -l)
        [[ ${aligned:-1} == 0 || $numas == 1 ]] || { diag "$pod's cores $devs span $numas NUMA nodes"; return 1; }
    done <<<"$lines"
    # disjoint, and together what Slurm granted, node by node
    for node in n1 n2 n3; do
        have=$(awk -v n="$node" '$2 == n {print $3}' <<<"$lines" | tr , '\n' | sort -n)
        [[ -z $(uniq -d <<<"$have") ]] || { diag "cores held twice on $node"; return 1; }
        have=$(paste -sd, <<<"$have")
        want=$(job_cores "$job" | awk -v n="$node" '$1 == n {print $2}')
        want=$([[ -n $want ]] && cores_of_cpu_ids "$want" 2)
        [[ $have == "$want" ]] || { diag "$node: claims hold '$have', Slurm job $job '$want'"; return 1; }
    done
}
# disjoint_from_job JOB NS: no claim of NS holds a core of Slurm job JOB
disjoint_from_job() {
    local job=$1 ns=$2 node ids cores lines
    lines=$(claim_cores "$ns")
    while read -r node ids; do
        cores=$(cores_of_cpu_ids "$ids" 2 | tr , '\n')
        awk -v n="$node" '$2 == n {print $3}' <<<"$lines" | tr , '\n' | grep -qxF -f <(echo "$cores") &&
            { diag "a claim holds a core of job $job on $node"; return 1; }
    done < <(job_cores "$job")
    return 0
}

# ------------------------------------------------------------ an sbatch job beside
sbatch_job=$(sbatch --parsable -N 1 -n 1 -c 16 -w n1 --wrap 'sleep 3000' -o /dev/null) ||
    bail "sbatch refused"
until_ok eval '[[ $(squeue -h -j '"$sbatch_job"' -o %T) == RUNNING ]]' || bail "the sbatch job never ran"

# ------------------------------------------------------------ 1. annotations
namespace ann
template ann numa2 2 resource.kubernetes.io/numaNode >>"$dir/apply.log" 2>&1
annotated_gang ann g 8 numa2
ok_if "an annotated gang of 8 pods of 2 NUMA-aligned cores is bound" until_ok all_bound ann 8
ok_if "squeue shows the gang as one job k8s:ann/g" has_gang_job k8s:ann/g
ok_if "claims: disjoint, one NUMA node each, equal to the cores of the Slurm job" check_gang ann k8s:ann/g 8
ok_if "no claim holds a core of the sbatch job" disjoint_from_job "$sbatch_job" ann
ok_if "each pod's Events say where it went" has_event ann g-0 Scheduled
ok_if "the gang's job runs as $gang_user" eval \
    '[[ $(squeue -h -j "$(gang_job k8s:ann/g)" -o %u) == '"$gang_user"' ]]'

# A gang with a time limit of one minute: its end is checked at the end.
namespace tl
template tl two 2 >>"$dir/apply.log" 2>&1
for ((i = 0; i < 2; i++)); do
    pod tl "t-$i" two "  annotations: {isthmus.io/gang: t, isthmus.io/gang-size: \"2\", isthmus.io/time-limit: \"1\"}"
done >>"$dir/apply.log" 2>&1

# ------------------------------------------------------------ 2. the Workload API
namespace wl
template wl numa2 2 resource.kubernetes.io/numaNode >>"$dir/apply.log" 2>&1
kubectl apply -f - >>"$dir/apply.log" 2>&1 <<'YAML' || bail "the Workload and PodGroup were refused"
apiVersion: scheduling.k8s.io/v1beta1
kind: Workload
metadata: {name: train, namespace: wl}
spec:
  podGroupTemplates:
  - name: workers
    schedulingPolicy: {gang: {minCount: 8}}
---
apiVersion: scheduling.k8s.io/v1beta1
kind: PodGroup
metadata: {name: train-workers, namespace: wl}
spec:
  workloadRef: {workloadName: train, templateName: workers}
  schedulingPolicy: {gang: {minCount: 8}}
YAML
for ((i = 0; i < 8; i++)); do
    pod wl "w-$i" numa2 "" "  schedulingGroup: {podGroupName: train-workers}"
done >>"$dir/apply.log" 2>&1
ok_if "a Workload API PodGroup of 8 pods is bound" until_ok all_bound wl 8
ok_if "... as one job, its claims aligned and equal to Slurm's cores" check_gang wl k8s:wl/train-workers 8
ok_if "... and its PodGroup says it is scheduled" until_ok eval \
    '[[ $(kubectl get podgroups.scheduling.k8s.io -n wl train-workers -o jsonpath="{.status.conditions[?(@.type==\"PodGroupInitiallyScheduled\")].status}") == True ]]'

# ------------------------------------------------------------ 3. scheduler-plugins
namespace co
template co numa2 2 resource.kubernetes.io/numaNode >>"$dir/apply.log" 2>&1
kubectl apply -f - >>"$dir/apply.log" 2>&1 <<'YAML' || bail "the coscheduling PodGroup was refused"
apiVersion: scheduling.x-k8s.io/v1alpha1
kind: PodGroup
metadata: {name: mpi, namespace: co}
spec: {minMember: 8}
YAML
for ((i = 0; i < 8; i++)); do
    pod co "c-$i" numa2 "  labels: {scheduling.x-k8s.io/pod-group: mpi}"
done >>"$dir/apply.log" 2>&1
ok_if "a scheduler-plugins PodGroup of 8 pods is bound" until_ok all_bound co 8
ok_if "... as one job, its claims aligned and equal to Slurm's cores" check_gang co k8s:co/mpi 8

# ------------------------------------------------------------ 4. missing members
namespace miss
template miss two 2 resource.kubernetes.io/numaNode >>"$dir/apply.log" 2>&1
annotated_gang miss m 3 two 4
ok_if "a gang missing a member tells its pods how many are missing" \
    until_ok has_event miss m-0 GangWaiting
ok_if "... and after GangWaitTimeout that it timed out" until_ok has_event miss m-0 GangTimeout
ok_if "... with the pods' PodScheduled condition saying so" eval \
    '[[ $(kubectl get pod -n miss m-0 -o jsonpath="{.status.conditions[?(@.type==\"PodScheduled\")].message}") == *"waited"* ]]'
check "... nothing was submitted to Slurm and nothing bound" "$(gang_job k8s:miss/m)/$(bound miss)" "/0"
pod miss m-3 two "  annotations: {isthmus.io/gang: m, isthmus.io/gang-size: \"4\"}" >>"$dir/apply.log" 2>&1
ok_if "the last member arrives: the gang is bound" until_ok all_bound miss 4

# ------------------------------------------------------------ 5. mixed shapes
namespace mix
template mix four 4 resource.kubernetes.io/numaNode >>"$dir/apply.log" 2>&1
template mix two 2 resource.kubernetes.io/numaNode >>"$dir/apply.log" 2>&1
for ((i = 0; i < 2; i++)); do
    pod mix "big-$i" four "  annotations: {isthmus.io/gang: x, isthmus.io/gang-size: \"5\"}"
done >>"$dir/apply.log" 2>&1
for ((i = 0; i < 3; i++)); do
    pod mix "small-$i" two "  annotations: {isthmus.io/gang: x, isthmus.io/gang-size: \"5\"}"
done >>"$dir/apply.log" 2>&1
ok_if "a gang of pods of 4 and 2 cores is bound" until_ok all_bound mix 5
ok_if "... as one job, each claim aligned, the cores Slurm's" check_gang mix k8s:mix/x 5

# ------------------------------------------------------------ 5b. a claim named as its pod
# Users often name a pod's claim after the pod: isthmusd once took the
# answer to one's write for the other and never bound such a gang.
namespace same
direct_gang same s 3 3
ok_if "a gang whose claims are named as their pods is bound" until_ok all_bound same 3
ok_if "... as one job, each claim aligned, the cores Slurm's" check_gang same k8s:same/s 3

# ------------------------------------------------------------ 5c. held while waiting
# A waiting gang puts isthmusd's finalizer on its members' claims early (the
# commit is then shorter); a member that leaves takes its claim out of the
# hold, and a claim deleted meanwhile is not kept by the finalizer.
namespace hold
direct_gang hold h 3 4
finalized() { kubectl get resourceclaim -n hold "$1" -o json | jq -e '.metadata.finalizers // [] | index("isthmus.io/gang")' >/dev/null; }
ok_if "a waiting gang holds its members' claims" \
    until_ok eval 'finalized h-0 && finalized h-1 && finalized h-2'
kubectl delete pod -n hold h-1 --force --grace-period=0 >>"$dir/apply.log" 2>&1
ok_if "... a member deleted: its claim is let go" until_ok eval '! finalized h-1'
kubectl delete resourceclaim -n hold h-2 --wait=false >>"$dir/apply.log" 2>&1
ok_if "... a held claim deleted: it goes" \
    until_ok eval '! kubectl get resourceclaim -n hold h-2 >/dev/null 2>&1'
check "... nothing was submitted to Slurm" "$(gang_job k8s:hold/h)" ""
kubectl delete pods -n hold --all --force --grace-period=0 >>"$dir/apply.log" 2>&1
ok_if "... the gang gone: no claim keeps the finalizer" until_ok eval '! finalized h-0'

# ------------------------------------------------------------ 6. larger than the cluster
# 20 pods of 32 cores (64 cpus): a node holds 6 such tasks, the cluster 18.
namespace huge
template huge many 32 >>"$dir/apply.log" 2>&1
annotated_gang huge h 20 many
ok_if "a gang larger than the cluster is refused with Slurm's reason in an Event" \
    until_ok has_event huge h-0 SlurmRefused
check "... and nothing of it is bound" "$(bound huge)" 0
kubectl delete pods -n huge --all --wait=false >>"$dir/apply.log" 2>&1
ok_if "... its pods deleted, no job of it is left in Slurm" until_ok no_gang_job k8s:huge/h

# A gang's job found in Slurm (a restart) that can never start, as a crash
# between a submission and its cancel leaves one: isthmusd gives it back.
# hopeless_gang_job NS GANG PODS: such a job, marked as the gang's by hand
# (as root: AdminComment is an operator's field; slurmctld sets it and
# still answers with the job's PartitionConfig error, so the field is
# checked instead of the exit code).
hopeless_gang_job() {
    local job
    job=$(sbatch --parsable -o /dev/null -J "k8s:$1/$2" --comment="isthmus.io/pods=$3,shape=0" \
        -n 20 -c 64 --wrap 'sleep 600' 2>>"$dir/apply.log") || return 1
    scontrol update jobid="$job" AdminComment="isthmus.io/gang=gang:$1/$2" 2>>"$dir/apply.log"
    scontrol show job "$job" | grep -q "AdminComment=isthmus.io/gang=gang:$1/$2"
}
namespace lost
hopeless_gang_job lost none 20 || diag "could not make the job"
ok_if "a pending gang job whose gang has no pods is cancelled" until_ok no_gang_job k8s:lost/none
template lost many 32 >>"$dir/apply.log" 2>&1
annotated_gang lost g 3 many 4
until_ok has_event lost g-0 GangWaiting
hopeless_gang_job lost g 4 || diag "could not make the job"
ok_if "a gang job that can never start is given back, and the pods told why" \
    until_ok event_says lost GangUndone "could never start"
ok_if "... and cancelled" until_ok no_gang_job k8s:lost/g
check "... with nothing of it bound" "$(bound lost)" 0
kubectl delete namespace lost --wait=false >>"$dir/apply.log" 2>&1

# ------------------------------------------------------------ 7. what isthmus does not serve
namespace bad
kubectl apply -f - >>"$dir/apply.log" 2>&1 <<'YAML'
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: gpu, namespace: bad}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly: {deviceClassName: gpu.example.com, count: 1}
YAML
template bad regex 2 "" 'device.attributes["cpu.isthmus.io"].cpus.matches("^0")' >>"$dir/apply.log" 2>&1
template bad many 40 >>"$dir/apply.log" 2>&1
pod bad other gpu >>"$dir/apply.log" 2>&1
pod bad many many >>"$dir/apply.log" 2>&1
pod bad cel regex >>"$dir/apply.log" 2>&1
pod bad size two "  annotations: {isthmus.io/gang: s, isthmus.io/gang-size: \"many\"}" >>"$dir/apply.log" 2>&1
pod bad part numa2x "  annotations: {isthmus.io/partition: nosuch}" >>"$dir/apply.log" 2>&1
template bad numa2x 2 >>"$dir/apply.log" 2>&1
ok_if "a request for another driver: an Event says it is not ours" until_ok has_event bad other NotOurDriver
ok_if "a selector outside the CEL subset: an Event names it" until_ok has_event bad cel GangUnsupported
ok_if "a claim of more cores than an allocation holds (32): an Event says so" \
    until_ok has_event bad many GangUnsupported
ok_if "a malformed gang size: an Event says so" until_ok has_event bad size GangInvalid
ok_if "a partition Slurm refuses: an Event with Slurm's answer" until_ok has_event bad part SlurmRefused
check "... none of them is bound" "$(bound bad)" 0
ok_if "... and isthmusd runs on and serves the next gang" eval 'http a /healthz'

# ------------------------------------------------------------ 8. lifecycle
# finish NS: every pod of NS Succeeded, written as a kubelet would
finish() {
    local p
    for p in $(kubectl get pods -n "$1" -o name); do
        kubectl patch -n "$1" "$p" --subresource=status --type=merge \
            -p '{"status":{"phase":"Succeeded"}}' >/dev/null || return 1
    done
}
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
allocated_claims() { kubectl get resourceclaims -n "$1" -o json | jq '[.items[] | select(.status.allocation)] | length'; }
ann_job=$(gang_job k8s:ann/g)
finish ann || bail "could not mark the pods finished"
ok_if "all pods of a gang finished: its Slurm job is completed" \
    until_ok eval '[[ $(job_state '"$ann_job"') == COMPLETED ]]'
ok_if "... and its claims released" until_ok eval '[[ $(allocated_claims ann) == 0 ]]'

wl_job=$(gang_job k8s:wl/train-workers)
scancel "$wl_job"
# Deleted: with no kubelet to finish the deletion, bound pods stay
# Terminating, so "deleted" is a deletionTimestamp on each.
all_deleted() { [[ $(kubectl get pods -n "$1" -o json | jq '[.items[] | select(.metadata.deletionTimestamp == null)] | length') == 0 ]]; }
ok_if "scancel of a gang's job: its pods are deleted" until_ok all_deleted wl
check "... and no new job is asked for the deleted pods" "$(gang_job k8s:wl/train-workers)" ""
ok_if "... after an Event naming the cause" event_says wl SlurmJobEnded CANCELLED

ok_if "a gang's job reaches its time limit: its pods are deleted" until_ok all_deleted tl
ok_if "... after an Event naming the cause" event_says tl SlurmJobEnded TIMEOUT

# What their kubelet would do: finish the deletions.
for ns in wl tl; do kubectl delete pods -n "$ns" --all --force --grace-period=0 >/dev/null 2>&1; done
ok_if "once the deleted pods are gone, their claims are released" \
    until_ok eval '[[ $(allocated_claims wl) == 0 && $(allocated_claims tl) == 0 ]]'

# ------------------------------------------------------------ 9. two gangs race
for ns in co miss mix same; do finish "$ns"; done
for ns in co miss mix same; do until_ok eval '[[ $(allocated_claims '"$ns"') == 0 ]]'; done
# Each gang: 18 pods of 30 cores, 540 of the cluster's 576 (the sbatch job
# holds 8): one fits, not both.
for g in r1 r2; do
    namespace "$g"
    template "$g" wide 30 >>"$dir/apply.log" 2>&1
done
for ((i = 0; i < 18; i++)); do
    for g in r1 r2; do
        pod "$g" "$g-$i" wide "  annotations: {isthmus.io/gang: $g, isthmus.io/gang-size: \"18\"}"
    done
done >>"$dir/apply.log" 2>&1
one_bound() { [[ $(($(bound r1) + $(bound r2))) == 18 ]] && { all_bound r1 18 || all_bound r2 18; }; }
ok_if "two gangs race for the same nodes: one is bound whole" until_ok one_bound
if all_bound r1 18; then first=r1 second=r2; else first=r2 second=r1; fi
ok_if "... the other waits in Slurm, told Slurm's reason" until_ok has_event "$second" "$second-0" SlurmPending
check "... with none of its pods bound" "$(bound "$second")" 0
finish "$first"
ok_if "the first finishes: the second is bound" until_ok all_bound "$second" 18
ok_if "... on cores that are Slurm's for its job" eval 'aligned=0 check_gang "$second" "k8s:$second/$second" 18'

# ------------------------------------------------------------ 10. kill -9 at each step
finish "$second"
namespace kill
template kill two 2 resource.kubernetes.io/numaNode >>"$dir/apply.log" 2>&1
# crash_and_restart STEP GANG: isthmusd dies by SIGKILL right after STEP;
# a new one must finish the gang
crash_and_restart() {
    local step=$1 g=$2
    kill -9 "${pid[a]}" 2>/dev/null
    wait "${pid[a]}" 2>/dev/null
    start_isthmusd a env ISTHMUSD_CRASH_AT="$step" || return 1
    annotated_gang kill "$g" 4 two
    until_ok eval '! kill -0 '"${pid[a]}"' 2>/dev/null' || { diag "isthmusd did not die at $step"; return 1; }
    wait "${pid[a]}" 2>/dev/null
    start_isthmusd a
}
for step in submitted=1:k1 claims=2:k2 bindings=2:k3; do
    ok_if "isthmusd killed right after ${step%%:*}: a new one starts" crash_and_restart "${step%%:*}" "${step#*:}"
    ok_if "... and binds the gang" until_ok eval '[[ $(kubectl get pods -n kill -l "" -o json | jq --arg g '"${step#*:}"' "[.items[] | select(.metadata.annotations[\"isthmus.io/gang\"] == \$g and .spec.nodeName)] | length") == 4 ]]'
done
check "after three crashes: one Slurm job per gang" \
    "$(squeue -h -o %j | grep -c '^k8s:kill/')" 3
check "... and one allocated claim per pod" "$(allocated_claims kill)" 12
for g in k1 k2 k3; do
    ok_if "... gang $g's claims are aligned and the cores of its job" check_gang kill "k8s:kill/$g" 4 "$g-"
done
finish kill
ok_if "all finished: no gang job is left in Slurm" until_ok eval '[[ $(squeue -h -o %j | grep -c "^k8s:") == 0 ]]'
ok_if "... and no claim stays allocated" until_ok eval \
    '[[ $(kubectl get resourceclaims -A -o json | jq "[.items[] | select(.metadata.namespace != \"isthmus-system\" and .status.allocation)] | length") == 0 ]]'
ok_if "isthmusd is alive and healthy at the end" eval 'http a /healthz'

tap_plan
