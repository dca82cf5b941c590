#!/bin/bash
# Who may allocate bridged cores, and who may spend which Slurm account, in
# TAP: contrib's ValidatingAdmissionPolicy on the real kube-apiserver,
# isthmusd's taint of bridged Nodes, and its GangPolicy, against real
# Slurm (with slurmdbd, so accounts are enforced, when it is installed).
#
#   tests/bridge/test_policy.sh BUILDDIR [--without-policy]
#
# --without-policy leaves contrib/kubernetes/allocation-policy.yaml out:
# then kube-scheduler allocates a cpu.isthmus.io claim itself, an sbatch job
# takes the same cores, and the tests that say no core is held twice fail.
# That run shows the policy is what prevents the double booking.
#
# The world: two Slurm nodes, each a 4-socket machine of 8 cores with 2
# threads (16 cpus), partitions "debug" (MaxTime 60 min, the default) and
# "long"; a Kubernetes Node per Slurm node; no kubelet (a pod "ends" when
# the test writes its status phase).  isthmusd runs as the world's user
# isthmusd, with exactly contrib's RBAC.
#
# Waits are bounded polls for an outcome; nothing asserts on time.
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR [--without-policy]}" && pwd)
with_policy=1
[[ ${2-} == --without-policy ]] && with_policy=0
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ------------------------------------------------------------ the world
# Accounting first (slurmctld with enforcement will not start without it);
# stopped after the worlds, with the rest of the test's directory.
acct=$dir/acct
accounting=0
extras=()
eval "lib_$(declare -f bridge_cleanup)"
bridge_cleanup() {
    lib_bridge_cleanup
    ((accounting)) && "$top/tests/slurm/accounting" stop "$acct" >/dev/null 2>&1
    return 0
}
if command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null; then
    lines=$("$top/tests/slurm/accounting" start "$acct" 2>"$dir/acct.log") || {
        sed 's/^/# /' "$dir/acct.log"
        bail "slurmdbd did not start"
    }
    accounting=1
    while IFS= read -r line; do extras+=(--extra "$line"); done <<<"$lines"
else
    printf '# slurmdbd or mariadbd missing (contrib/install-deps): Slurm does not check accounts\n'
fi

xml=$topologies/16em64t-4s2c2t.xml
bridge_world --nodes 2 --xml "$xml" --partition debug --partition long "${extras[@]}"
for n in n1 n2; do
    "$topo_tool" publish --xml "$xml" -N "$n" >/dev/null || bail "isthmus-topology publish failed"
done
scontrol update PartitionName=debug MaxTime=60 || bail "scontrol refused MaxTime"
if ((accounting)); then
    sa=(env SLURM_CONF="$acct/dbd/slurm.conf" sacctmgr -i)
    { "${sa[@]}" add account phys,chem,other &&
        "${sa[@]}" add user nobody account=phys,chem DefaultAccount=phys; } >>"$dir/apply.log" 2>&1 ||
        bail "sacctmgr refused the accounts"
fi
if ((with_policy)); then
    kubectl apply -f "$top/contrib/kubernetes/allocation-policy.yaml" >>"$dir/apply.log" 2>&1 ||
        bail "allocation-policy.yaml was refused"
fi

gang_user=nobody
extra_conf="GangWaitTimeout=0
GangPolicy=physics Partitions=debug,long Accounts=phys QOS=normal DefaultAccount=phys MaxTime=2:00:00
GangPolicy=chem Accounts=chem,other DefaultAccount=chem"
start_isthmusd a || bail "isthmusd did not start"
for n in n1 n2; do until_ok has_slices "$n" || bail "no slices for $n"; done

# ------------------------------------------------------------ helpers
diag() { printf '# %s\n' "$*"; }
namespace() { kubectl create namespace "$1" >>"$dir/apply.log" 2>&1; }
# cores_template NS N: the ResourceClaimTemplate "cores-N" of N cores
cores_template() {
    kubectl apply -f - >>"$dir/apply.log" 2>&1 <<YAML
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: cores-$2, namespace: $1}
spec:
  spec:
    devices:
      requests:
      - {name: cores, exactly: {deviceClassName: cpu.isthmus.io, count: $2}}
YAML
}
# gang NS GANG N CORES [ANNOTATION...]: N isthmus pods (no toleration) of
# gang GANG, each with a claim of the namespace's template "cores-CORES"
gang() {
    local ns=$1 g=$2 n=$3 cores=$4 i a extra=
    shift 4
    for a in "$@"; do extra+=", $a"; done
    for ((i = 0; i < n; i++)); do
        kubectl apply -f - >>"$dir/apply.log" 2>&1 <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $g-$i
  namespace: $ns
  annotations: {isthmus.io/gang: $g, isthmus.io/gang-size: "$n"$extra}
spec:
  schedulerName: isthmus
  resourceClaims: [{name: cpus, resourceClaimTemplateName: cores-$cores}]
  containers: [{name: main, image: registry.invalid/none, resources: {claims: [{name: cpus}]}}]
YAML
    done
}
bound() { kubectl get pods -n "$1" -o json | jq --arg p "${2-}" '[.items[] | select(.metadata.name | startswith($p)) | select(.spec.nodeName)] | length'; }
all_bound() { [[ $(bound "$1" "${3-}") == "$2" ]]; }
# event_says NS REASON TEXT: an Event of REASON in NS whose message holds TEXT
event_says() {
    kubectl get events -n "$1" -o json |
        jq -e --arg r "$2" --arg t "$3" '[.items[] | select(.reason == $r and (.message | contains($t)))] | length > 0' >/dev/null
}
gang_job() { squeue -h -o '%i %j' | awk -v n="$1" '$2 == n {print $1}'; }
next_job_id() { scontrol show config | awk '$1 == "NEXT_JOB_ID" {print $3}'; }
job_state() { squeue -h -j "$1" -o %T 2>/dev/null; }
tainted() { # tainted NODE: the Node has isthmus.io/bridged:NoSchedule
    kubectl get node "$1" -o json |
        jq -e '[.spec.taints[]? | select(.key == "isthmus.io/bridged" and .effect == "NoSchedule")] | length == 1' >/dev/null
}

# held: "OWNER NODE CORE" for every core anything holds.  Slurm's running
# jobs (owner "job:ID:NAME", from scontrol -d show job: CPU_IDs are
# abstract cpus, core = cpu / 2 here) and every claim in every namespace
# with cpu.isthmus.io results (owner "claim:NS/NAME").
held() {
    local id name nodes ids n
    squeue -h -t R -o '%i %j' | while read -r id name; do
        scontrol -d show job "$id" | sed -n 's/^ *Nodes=\([^ ]*\) CPU_IDs=\([^ ]*\) .*/\1 \2/p' |
            while read -r nodes ids; do
                for n in $(scontrol show hostnames "$nodes"); do
                    tr , '\n' <<<"$ids" | awk -F- -v o="job:$id:$name" -v n="$n" \
                        '{b = NF == 2 ? $2 : $1; for (c = $1; c <= b; c++) print o, n, int(c / 2)}'
                done
            done
    done | sort -u
    kubectl get resourceclaims -A -o json | jq -r '.items[] | select(.status.allocation)
        | "claim:\(.metadata.namespace)/\(.metadata.name)" as $o
        | .status.allocation.devices.results[] | select(.driver == "cpu.isthmus.io")
        | "\($o) \(.pool) \(.device | ltrimstr("core-"))"'
}
# no_double_booking: each core is held by one Slurm job at most; a claim
# in isthmus-system holds only cores of the Slurm job it mirrors; any
# other claim only cores of its namespace's gang job (k8s:NS/...).  So a
# claim that kube-scheduler allocated, under an sbatch job, fails.
no_double_booking() {
    local rows bad
    rows=$(held)
    printf '%s\n' "$rows" >"$dir/held.txt"
    bad=$(awk '$1 ~ /^job:/ { n = $2 " " $3; if (n in job) print "two jobs hold " n; job[n] = $1 }
               $1 ~ /^claim:/ { c[NR] = $0 }
               END { for (i in c) { split(c[i], f, " "); n = f[2] " " f[3]; owner = f[1]
                        ns = owner; sub(/^claim:/, "", ns); sub(/\/.*/, "", ns)
                        if (!(n in job)) { print owner " holds " n " which no Slurm job holds"; continue }
                        if (ns == "isthmus-system") {
                            split(job[n], j, ":"); if (owner !~ "^claim:isthmus-system/slurm-" j[2] "-")
                                print owner " holds " n " of " job[n]
                        } else if (job[n] !~ "^job:[0-9]+:k8s:" ns "/") print owner " holds " n " of " job[n] } }' \
        <<<"$rows" | sort)
    [[ -z $bad ]] && return 0
    diag "$bad"
    return 1
}

# ------------------------------------------------------------ 1. bridged Nodes tainted
ok_if "isthmusd taints every bridged Node isthmus.io/bridged:NoSchedule" \
    until_ok eval 'tainted n1 && tainted n2'

# RBAC: the verb "patch" on nodes is what the taint needs.  Without it
# the taint does not come back, with it again it does.
kubectl get clusterrole isthmus:isthmusd -o json |
    jq '(.rules[] | select(.resources == ["nodes"]) | .verbs) |= map(select(. != "patch"))' |
    kubectl replace -f - >>"$dir/apply.log" 2>&1
kubectl taint node n2 isthmus.io/bridged:NoSchedule- >>"$dir/apply.log" 2>&1
ok_if "RBAC: without nodes patch, isthmusd cannot taint n2 (and says so)" \
    until_ok grep -qi "Node n2: adding the taint isthmus.io/bridged: .*forbidden" "$dir/isthmusd-a.log"
ok_if "... so n2 stays untainted" eval '! tainted n2'
kubectl apply -f "$top/contrib/kubernetes/rbac.yaml" >>"$dir/apply.log" 2>&1
ok_if "... with contrib's RBAC again, the taint is back" until_ok tainted n2

# An ordinary pod, no toleration, the default scheduler: it stays off.
namespace plain
kubectl apply -f - >>"$dir/apply.log" 2>&1 <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: ordinary, namespace: plain}
spec:
  containers: [{name: main, image: registry.invalid/none}]
YAML
ok_if "kube-scheduler does not place an ordinary pod on a bridged Node (untolerated taint)" \
    until_ok eval '[[ $(kubectl get pod -n plain ordinary -o jsonpath="{.status.conditions[?(@.type==\"PodScheduled\")].message}") == *isthmus.io/bridged* ]]'
check "... it is not bound" "$(kubectl get pod -n plain ordinary -o jsonpath='{.spec.nodeName}')" ""

# ------------------------------------------------------------ 2. only isthmusd allocates
# A claim of 4 cores on n1 for a pod of the default scheduler, which
# tolerates the taint: only the admission policy stands in its way.
namespace rogue
kubectl apply -f - >>"$dir/apply.log" 2>&1 <<'YAML'
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: four, namespace: rogue}
spec:
  devices:
    requests:
    - {name: cores, exactly: {deviceClassName: cpu.isthmus.io, count: 4}}
---
apiVersion: v1
kind: Pod
metadata: {name: grab, namespace: rogue}
spec:
  nodeSelector: {kubernetes.io/hostname: n1}
  tolerations: [{key: isthmus.io/bridged, operator: Exists, effect: NoSchedule}]
  resourceClaims: [{name: cores, resourceClaimName: four}]
  containers: [{name: main, image: registry.invalid/none, resources: {claims: [{name: cores}]}}]
YAML
ok_if "a pod of the default scheduler with a cpu.isthmus.io claim is told, in its Events, to use schedulerName: isthmus" \
    until_ok eval 'kubectl get events -n rogue --field-selector involvedObject.name=grab -o json |
        jq -e "[.items[] | select(.message | contains(\"only isthmusd allocates cpu.isthmus.io\") and contains(\"schedulerName: isthmus\"))] | length > 0"'
kubectl describe pod -n rogue grab | grep -m1 "only isthmusd" | sed 's/^/#   describe: /'
check "... it stays pending, its claim unallocated" \
    "$(kubectl get pod -n rogue grab -o jsonpath='{.spec.nodeName}')/$(kubectl get resourceclaim -n rogue four -o jsonpath='{.status.allocation.devices.results[*].device}')" "/"

# An sbatch job on all of n1, then an isthmus gang (on n2, then).
sbatch_job=$(sbatch --parsable -w n1 -c 16 -o /dev/null -J filler --wrap 'sleep 3600' 2>>"$dir/apply.log")
ok_if "an sbatch job takes all of n1's 16 cpus and runs" until_ok eval '[[ $(job_state "$sbatch_job") == RUNNING ]]'
until_ok eval '[[ $(mirrored_claims "$sbatch_job") -gt 0 ]]' || diag "no mirrored claims for job $sbatch_job"
namespace physics
cores_template physics 2
gang physics ok 2 2
ok_if "an isthmus gang of 2 pods without the toleration is bound on the tainted Nodes" \
    until_ok all_bound physics 2 ok-
ok_if "no core is held twice: every claim (all namespaces) against scontrol -d show job" no_double_booking
check "no claim holding cpu.isthmus.io devices was written by kube-scheduler" \
    "$(kubectl get resourceclaims -A -o json | jq -r '[.items[] | select(any(.status.allocation.devices.results[]?; .driver == "cpu.isthmus.io"))
        | select(any(.metadata.managedFields[]?; .manager == "kube-scheduler" and .subresource == "status")) | .metadata.name] | join(",")')" ""

# ------------------------------------------------------------ 3. the writes that pass
# As the cluster admin (not isthmusd: the policy holds for it), and as
# user isthmusd, straight at the status subresource of a claim.
namespace writes
claim() { # claim NAME: an unallocated claim of one core in "writes"
    kubectl apply -f - >>"$dir/apply.log" 2>&1 <<YAML
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: $1, namespace: writes}
spec:
  devices:
    requests:
    - {name: cores, exactly: {deviceClassName: cpu.isthmus.io, count: 1}}
YAML
}
# set_status NAME JQ [KUBECTL-ARGS]: replace the claim's status with JQ applied
set_status() {
    local name=$1 filter=$2
    shift 2
    kubectl get resourceclaim -n writes "$name" -o json | jq "$filter" |
        kubectl "$@" replace --subresource=status -f - >"$dir/write.out" 2>&1
}
alloc() { # alloc DRIVER: the filter giving the claim one result of DRIVER, reserved for a pod
    printf '.status = {allocation: {devices: {results: [{request: "cores", driver: "%s", pool: "n2", device: "core-7"}]}},
        reservedFor: [{resource: "pods", name: "someone", uid: "00000000-0000-0000-0000-000000000001"}]}' "$1"
}
claim a
ok_if "the cluster admin may not allocate a cpu.isthmus.io device" eval '! set_status a "$(alloc cpu.isthmus.io)"'
ok_if "... and is told by the policy (names isthmus, says schedulerName: isthmus)" \
    grep -q "only isthmusd allocates cpu.isthmus.io devices.*schedulerName: isthmus" "$dir/write.out"
ok_if "a claim of another driver is allocated by the admin" set_status a "$(alloc other.example.com)"
claim b
ok_if "user isthmusd allocates a cpu.isthmus.io device" \
    set_status b "$(alloc cpu.isthmus.io)" --kubeconfig "$k8s/isthmusd.kubeconfig"
ok_if "the admin clears reservedFor, the allocation unchanged" set_status b '.status.reservedFor = []'
ok_if "the admin adds a reservation back" \
    set_status b '.status.reservedFor = [{resource: "pods", name: "other", uid: "00000000-0000-0000-0000-000000000002"}]'
ok_if "the admin clears reservedFor again" set_status b '.status.reservedFor = []'
ok_if "the admin deallocates it" set_status b '.status = {}'
ok_if "... and may not allocate it again" eval '! set_status b "$(alloc cpu.isthmus.io)"'

# kube-scheduler allocating another driver's device passes.
kubectl apply -f - >>"$dir/apply.log" 2>&1 <<'YAML'
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata: {name: other.example.com}
spec:
  selectors: [{cel: {expression: 'device.driver == "other.example.com"'}}]
---
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
metadata: {name: other-n2}
spec:
  driver: other.example.com
  nodeName: n2
  pool: {name: n2, generation: 1, resourceSliceCount: 1}
  devices: [{name: gadget}]
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: gadget, namespace: writes}
spec:
  devices:
    requests:
    - {name: g, exactly: {deviceClassName: other.example.com}}
---
apiVersion: v1
kind: Pod
metadata: {name: gadget, namespace: writes}
spec:
  tolerations: [{key: isthmus.io/bridged, operator: Exists, effect: NoSchedule}]
  resourceClaims: [{name: g, resourceClaimName: gadget}]
  containers: [{name: main, image: registry.invalid/none, resources: {claims: [{name: g}]}}]
YAML
ok_if "kube-scheduler allocates another driver's claim and binds its pod" \
    until_ok eval '[[ $(kubectl get pod -n writes gadget -o jsonpath="{.spec.nodeName}") == n2 ]]'
kubectl delete pod -n writes gadget --grace-period=0 --force >>"$dir/apply.log" 2>&1
ok_if "... its pod gone, kube-controller-manager clears reservedFor and deallocates it" \
    until_ok eval '[[ -z $(kubectl get resourceclaim -n writes gadget -o jsonpath="{.status.allocation}") ]]'

# The gang's pods end: kube-controller-manager prunes reservedFor of
# claims isthmusd allocated (a status write that keeps the allocation),
# and the claims are released.
for p in ok-0 ok-1; do
    kubectl patch pod -n physics "$p" --subresource=status --type=merge \
        -p '{"status":{"phase":"Succeeded"}}' >>"$dir/apply.log" 2>&1
done
ok_if "a gang's pods end: its claims are released (reservedFor pruned by kube-controller-manager)" \
    until_ok eval '[[ $(kubectl get resourceclaims -n physics -o json | jq "[.items[] | select(.status.allocation)] | length") == 0 ]]'
ok_if "... and its Slurm job completed" until_ok eval '[[ -z $(gang_job k8s:physics/ok) ]]'
grep -h "isthmus-cpu-allocations" "$k8s"/logs/kube-controller-manager.log 2>/dev/null | head -3 | sed 's/^/# kcm: /'
check "kube-controller-manager was never refused by the policy" \
    "$(grep -c "isthmus-cpu-allocations" "$k8s"/logs/kube-controller-manager.log 2>/dev/null)" 0

# ------------------------------------------------------------ 4. GangPolicy
# Each refused gang: an Event naming the namespace, the field and what is
# allowed; nothing submitted (Slurm's next job id does not move).
next=$(next_job_id)
submitted=$(metric a isthmus_gangs_submitted_total)
namespace stranger
cores_template stranger 1
gang stranger s 1 1
cores_template physics 1
gang physics acct 1 1 "isthmus.io/account: chem"
gang physics part 1 1 "isthmus.io/partition: batch"
gang physics qos 1 1 "isthmus.io/qos: high"
gang physics long 1 1 "isthmus.io/partition: long" "isthmus.io/time-limit: \"3:00:00\""
gang physics debug 1 1 "isthmus.io/time-limit: \"90\""
ok_if "a namespace without a GangPolicy: Event, the gang refused" \
    until_ok event_says stranger PolicyRefused "namespace stranger may not run gangs: no GangPolicy"
ok_if "an account the namespace may not use: Event names namespace, field, allowed" \
    until_ok event_says physics PolicyRefused "namespace physics may not use account 'chem' (isthmus.io/account); allowed: phys"
ok_if "a partition it may not use: Event" \
    until_ok event_says physics PolicyRefused "namespace physics may not use partition 'batch' (isthmus.io/partition); allowed: debug, long"
ok_if "a qos it may not use: Event" \
    until_ok event_says physics PolicyRefused "namespace physics may not use qos 'high' (isthmus.io/qos); allowed: normal"
ok_if "a time limit above the policy's MaxTime: Event" \
    until_ok event_says physics PolicyRefused "may not use time limit 180 min (isthmus.io/time-limit); allowed: at most 120 min"
ok_if "a time limit above the partition's MaxTime: Event" \
    until_ok event_says physics PolicyRefused "time limit 90 min (isthmus.io/time-limit) is above partition debug's MaxTime; allowed: at most 60 min"
check "... nothing was submitted: Slurm's next job id, isthmusd's submissions" \
    "$(next_job_id) $(metric a isthmus_gangs_submitted_total)" "$next $submitted"
check "... the refused gangs' pods stay pending" \
    "$(bound stranger) $(bound physics acct-) $(bound physics part-) $(bound physics qos-) $(bound physics long-) $(bound physics debug-)" \
    "0 0 0 0 0 0"
ok_if "... and isthmusd counts the refusals" eval '(( $(metric a isthmus_gangs_refused_total) >= 6 ))'
gang physics fine 2 1
ok_if "the daemon serves other gangs: an allowed gang of the same namespace is bound" \
    until_ok all_bound physics 2 fine-
check "... its job is charged to the namespace's default account" \
    "$(squeue -h -j "$(gang_job k8s:physics/fine)" -o %a)" phys

# Slurm's own refusal: an account the policy allows but the gang user is
# not associated with.
namespace chem
cores_template chem 1
if ((accounting)); then
    gang chem other 1 1 "isthmus.io/account: other"
    ok_if "an account Slurm refuses (user not associated) is told in an Event" \
        until_ok event_says chem SlurmRefused "Slurm refused the allocation for gang other"
    kubectl get events -n chem -o json | jq -r '.items[] | select(.reason == "SlurmRefused") | .message' |
        head -1 | sed 's/^/#   /'
    check "... no job of it is left in Slurm" "$(gang_job k8s:chem/other)" ""
fi
gang chem mine 1 1
ok_if "the namespace's own account passes" until_ok all_bound chem 1 mine-

scancel "$sbatch_job" 2>/dev/null
kill -0 "${pid[a]}" 2>/dev/null
check "isthmusd is still running" "$?" 0
tap_plan
