#!/bin/bash
# How fast a gang of pods is bound, isthmusd against the real kube-scheduler
# (its own gang scheduling and DRA allocator, the same slices, the same API
# server), side by side in one world.  Not a test: it asserts nothing.
#
#   tests/bench/gang_bind.sh [--runs N] [--pods N] [--cores N] [--claims template|direct] BUILDDIR
#
# The world: three Slurm nodes pretending to be a 192-core machine, each with
# a Kubernetes Node and isthmusd publishing its cores.  Each run creates, in
# a fresh namespace, a Workload API PodGroup of --pods pods (default 64), each
# with a claim of --cores NUMA-aligned cpu.isthmus.io cores (default 4) from
# a template (--claims template, the default) or made with the pods
# (--claims direct: one ResourceClaim per pod, created before it in the same
# apply), in one kubectl apply; then waits until every pod is bound, and
# deletes the namespace.  Runs alternate: isthmus (schedulerName isthmus),
# then kube-scheduler (the default scheduler), --runs times each (default 20).
#
# A watch (kubectl get pods -w, each event stamped as it arrives) gives the
# time from the last pod's creation to the last binding, and the
# scheduler's own part of it: from the moment the last pod could be placed
# (created, and with a template its claim made by kube-controller-manager,
# as the pod's status.resourceClaimStatuses shows) to the last binding.  The API server's
# apiserver_request_total gives the mutating requests (POST, PUT, PATCH,
# DELETE) made while the gang was placed, creates of pods and claims
# included, per bound pod; isthmusd's own writes per pod come from its
# metrics.
set -uo pipefail
runs=20 pods=64 cores=4 claims=template
while [[ ${1:-} == --* ]]; do
    case $1 in
    --runs) runs=$2 ;;
    --pods) pods=$2 ;;
    --cores) cores=$2 ;;
    --claims) claims=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
(($# == 1)) && [[ $claims == template || $claims == direct ]] ||
    { echo "usage: $0 [--runs N] [--pods N] [--cores N] [--claims template|direct] BUILDDIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../bridge/lib.sh
. "$here/../bridge/lib.sh"

xml=$topologies/192em64t-12gr2n8c2t.xml
bridge_world --nodes 3 --xml "$xml" --xml "$xml" --xml "$xml"
for n in n1 n2 n3; do "$topo_tool" publish --xml "$xml" -N "$n" >/dev/null || bail "publish failed"; done
loglevel=notice
# The kube-scheduler runs place pods on these Nodes: no taint.
extra_conf="TaintBridgedNodes=no"
start_isthmusd a || bail "isthmusd did not start"
for n in n1 n2 n3; do until_ok has_slices "$n" || bail "no slices for $n"; done

# gang_yaml NS SCHEDULER: the template, the Workload, its PodGroup and the pods
gang_yaml() {
    local ns=$1 sched=$2 i ref
    local devices="
      devices:
        requests:
        - {name: cores, exactly: {deviceClassName: cpu.isthmus.io, count: $cores}}
        constraints:
        - {requests: [cores], matchAttribute: resource.kubernetes.io/numaNode}"
    cat <<YAML
apiVersion: v1
kind: List
items:
- apiVersion: resource.k8s.io/v1
  kind: ResourceClaimTemplate
  metadata: {name: cores, namespace: $ns}
  spec:
    spec:$devices
- apiVersion: scheduling.k8s.io/v1beta1
  kind: Workload
  metadata: {name: bench, namespace: $ns}
  spec:
    podGroupTemplates:
    - {name: workers, schedulingPolicy: {gang: {minCount: $pods}}}
- apiVersion: scheduling.k8s.io/v1beta1
  kind: PodGroup
  metadata: {name: bench-workers, namespace: $ns}
  spec:
    workloadRef: {workloadName: bench, templateName: workers}
    schedulingPolicy: {gang: {minCount: $pods}}
YAML
    for ((i = 0; i < pods; i++)); do
        ref="resourceClaimTemplateName: cores"
        if [[ $claims == direct ]]; then
            ref="resourceClaimName: w-$i"
            cat <<YAML
- apiVersion: resource.k8s.io/v1
  kind: ResourceClaim
  metadata: {name: w-$i, namespace: $ns}
  spec:$(printf '%s' "$devices" | sed 's/^  //')
YAML
        fi
        cat <<YAML
- apiVersion: v1
  kind: Pod
  metadata: {name: w-$i, namespace: $ns}
  spec:
    schedulerName: $sched
    schedulingGroup: {podGroupName: bench-workers}
    resourceClaims: [{name: cpus, $ref}]
    containers:
    - {name: main, image: registry.invalid/none, resources: {claims: [{name: cpus}]}}
YAML
    done
}
# Each watch event as one line: TIME ["TYPE","NAME","NODE",CLAIM-STATUSES];
# the last resourceVersion seen goes to the file named by argv[1].
stamp='
import json, sys, time
for line in sys.stdin:
    t = time.time()
    e = json.loads(line)
    o = e.get("object") or {}
    m = o.get("metadata") or {}
    if e.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
        continue
    st = (o.get("status") or {}).get("resourceClaimStatuses") or []
    print("%.6f %s" % (t, json.dumps([e["type"], m.get("name"),
          (o.get("spec") or {}).get("nodeName") or "", len(st)], separators=(",", ":"))))
    with open(sys.argv[1], "w") as f:
        f.write(m.get("resourceVersion", ""))
'
# watch_pods NS: the pods of NS, event by event, until $dir/watching-NS goes.
# A busy kube-apiserver closes a watcher that falls behind ("Forcing
# watcher close due to unresponsiveness", seen in kube-scheduler runs):
# the watch resumes from the last resourceVersion, so no event is lost,
# though one that came during the gap is stamped when the watch resumes.
watch_pods() {
    local ns=$1 rv=
    while [[ -e $dir/watching-$ns ]]; do
        kubectl get --raw "/api/v1/namespaces/$ns/pods?watch=true${rv:+&resourceVersion=$rv}" 2>/dev/null |
            python3 -u -c "$stamp" "$dir/rv-$ns"
        rv=$(cat "$dir/rv-$ns" 2>/dev/null)
    done
}
mutating() {
    kubectl get --raw /metrics | awk '/^apiserver_request_total\{/ && /verb="(POST|PUT|PATCH|DELETE)"/ {s += $NF} END {printf "%d\n", s}'
}
isthmus_writes() { metric a isthmus_kube_writes_total; }

# one_run KIND N: prints "KIND SECONDS REQUESTS-PER-POD ISTHMUSD-WRITES-PER-POD OWN-SECONDS"
one_run() {
    local kind=$1 ns=b-$1-$2 sched w0 r0 r1 i0 i1 t
    sched=$([[ $kind == isthmus ]] && echo isthmus || echo default-scheduler)
    kubectl create namespace "$ns" >/dev/null
    touch "$dir/watching-$ns"
    watch_pods "$ns" >"$dir/watch-$ns" 2>/dev/null &
    w0=$!
    sleep 1 # the watch is established
    r0=$(mutating) i0=$(isthmus_writes)
    gang_yaml "$ns" "$sched" | kubectl apply -f - >/dev/null || bail "the gang was refused"
    if ! until_ok eval '[[ $(kubectl get pods -n '"$ns"' -o json | jq "[.items[] | select(.spec.nodeName)] | length") == '"$pods"' ]]'; then
        echo "# $kind run $2: not every pod was bound; the world is kept" >&2
        return 1
    fi
    sleep 1 # the last events reach the watch
    r1=$(mutating) i1=$(isthmus_writes)
    rm -f "$dir/watching-$ns"
    pkill -f "namespaces/$ns/pods[?]watch=true" 2>/dev/null
    wait "$w0" 2>/dev/null
    t=$(awk -v pods="$pods" -v direct=$([[ $claims == direct ]] && echo 1 || echo 0) '
             { n = split($2, f, ","); name = f[2]
               if (f[1] == "[\"ADDED\"") last_add = $1
               if (!(name in ready) && (direct || f[4] + 0 > 0)) { ready[name] = $1; last_ready = $1 }
               if (f[3] != "\"\"" && !(name in bound)) { bound[name] = $1; last_bind = $1; nb++ } }
             END { from = last_ready > last_add ? last_ready : last_add
                   if (nb != pods) { print "the watch missed bindings"; exit 1 }
                   printf "%.3f %.3f", last_bind - last_add, last_bind - from }' "$dir/watch-$ns") ||
        { echo "# $kind run $2: $t; the world is kept" >&2; return 1; }
    awk -v k="$kind" -v t="${t% *}" -v own="${t#* }" -v r=$((r1 - r0)) -v i=$((i1 - i0)) -v n="$pods" \
        'BEGIN {printf "%s %s %.1f %.1f %s\n", k, t, r / n, i / n, own}'
    # There is no kubelet to confirm a graceful deletion: force it, as
    # test_gang.sh does.
    kubectl delete pods -n "$ns" --all --force --grace-period=0 >/dev/null 2>&1
    kubectl delete namespace "$ns" --wait=false >/dev/null
    # isthmusd completes the job once the pods are gone; wait for Slurm to be free
    until_ok eval '[[ $(squeue -h | wc -l) == 0 && $(kubectl get pods -A -o name | grep -c "b-") == 0 ]]'
}
results=$dir/results
for ((r = 1; r <= runs; r++)); do
    one_run isthmus "$r" | tee -a "$results" || { failed=1; break; }
    one_run kube "$r" | tee -a "$results" || { failed=1; break; }
done
summary() {
    awk -v k="$1" '$1 == k {print $2}' "$results" | sort -n | awk -v k="$1" -v pods="$pods" '
        {v[NR] = $1; s += $1} END {p50 = v[int((NR + 1) / 2)]; p99 = v[int(NR * 0.99 + 0.999)]
         printf "# %-8s runs %d: last pod created -> last bound: p50 %.3f s, p99 %.3f s, max %.3f s; %.0f pods/s at p50\n",
                k, NR, p50, p99, v[NR], pods / p50}'
    awk -v k="$1" '$1 == k {print $5}' "$results" | sort -n | awk '
        {v[NR] = $1} END {printf "#          the scheduler alone (last pod placeable -> last bound): p50 %.3f s, p99 %.3f s, max %.3f s\n",
                          v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.999)], v[NR]}'
    awk -v k="$1" '$1 == k {r += $3; w += $4; n++} END {printf "#          mutating API requests per bound pod (creates included): %.1f; isthmusd writes per pod: %.1f\n", r / n, w / n}' "$results"
}
echo "# claims: $claims; $pods pods x $cores cores, numaNode-aligned"
summary isthmus
summary kube
