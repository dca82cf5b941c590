# shellcheck shell=bash
# What the isthmusd tests share: a hybrid world (real Slurm + real
# Kubernetes) with contrib's objects, replicas of isthmusd on it, and
# bounded waits.  Sourced by tests/bridge/test_*.sh after they set
#
#   build   the build tree (isthmusd and isthmus-topology in it)
#
# and before they call bridge_world.  Sets top, world, isthmusd,
# topo_tool, topologies, dir; keeps pid[] and port[] per replica.
bridge_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$bridge_here/../.." && pwd)
world=$top/tests/world
isthmusd=$build/bridge/isthmusd
topo_tool=$build/topology/isthmus-topology
topologies=${ISTHMUS_TOPOLOGIES:-$top/tests/topologies}
export ISTHMUS_TOPOLOGY=$topo_tool

# shellcheck source=../tap.sh
. "$top/tests/tap.sh"

dir=$(mktemp -d "${TMPDIR:-/tmp}/isthmus-bridge.XXXXXX")
chmod 0755 "$dir" # munged runs as its own user and must reach its socket
declare -A pid port
bridge_finish() {
    local rc=$? r
    trap - EXIT INT TERM
    bridge_cleanup
    [[ -n ${ISTHMUS_RBAC_USED-} && -n ${k8s-} ]] && rbac_record >>"$ISTHMUS_RBAC_USED" 2>/dev/null
    for r in "${!pid[@]}"; do kill -9 "${pid[$r]}" 2>/dev/null; done
    "$world/hybrid/stop" "$dir" >/dev/null 2>&1 || true
    if ((failed == 0 && rc == 0)); then
        rm -rf "$dir"
    else
        printf '# directory kept for its logs: %s\n' "$dir"
        for r in "${!pid[@]}"; do
            printf '# --- isthmusd %s (last lines)\n' "$r"
            tail -25 "$dir/isthmusd-$r.log" | sed 's/^/# /'
        done
    fi
    exit $((rc != 0 ? rc : failed != 0))
}
trap bridge_finish EXIT
trap 'bail interrupted' INT TERM

# rbac_record: what isthmusd's RBAC grants ("granted GROUP RESOURCE
# SUBRESOURCE VERB", from the roles as they are now) and what its user
# did with it ("used ...", from the API server's audit log), for
# rbac_coverage.sh.  tests/run names the file in ISTHMUS_RBAC_USED.
rbac_record() {
    { kubectl get clusterrole isthmus:isthmusd -o json && kubectl get role -n isthmus-system isthmus:isthmusd -o json; } |
        jq -r '.rules[] | .apiGroups[] as $g | .resources[] as $r | .verbs[] as $v
               | "granted \(if $g == "" then "core" else $g end) \($r | split("/")[0]) \($r | split("/")[1] // "-") \($v)"'
    jq -r 'select(.user.username == "isthmusd" and .objectRef.resource
                  and .annotations["authorization.k8s.io/decision"] == "allow")
           | "used \(if (.objectRef.apiGroup // "") == "" then "core" else .objectRef.apiGroup end) \(.objectRef.resource) \(.objectRef.subresource // "-") \(.verb)"' \
        "$k8s/logs/audit.jsonl"
}

# bridge_world START-ARGS...: start the hybrid world (tests/world/hybrid/start
# arguments after the directory), apply contrib's namespace, DeviceClass and
# RBAC, and give the world's user "isthmusd" the roles of the ServiceAccount.
# Sets k8s (the Kubernetes world's directory) and the world's environment.
bridge_world() {
    [[ -x $isthmusd && -x $topo_tool ]] || bail "build $build first (no isthmusd or isthmus-topology)"
    local env_lines
    # every request of the user isthmusd is audited (rbac_record)
    export ISTHMUS_K8S_AUDIT_USER=isthmusd
    env_lines=$("$world/hybrid/start" "$dir" "$@" 2>"$dir/start.err") || {
        tail -30 "$dir/start.err" | sed 's/^/# /'
        bail "the hybrid world did not start"
    }
    eval "$env_lines"
    k8s=$ISTHMUS_K8S_WORLD
    bridge_apply_contrib
}

# bridge_apply_contrib: contrib's namespace, DeviceClass and RBAC on the
# Kubernetes world $k8s (KUBECONFIG set), with the ServiceAccount's roles
# given to the world's user "isthmusd" too.
bridge_apply_contrib() {
    local b kind role
    kubectl apply -f "$top/contrib/kubernetes/namespace.yaml" -f "$top/contrib/kubernetes/deviceclass.yaml" \
        -f "$top/contrib/kubernetes/rbac.yaml" >"$dir/apply.log" 2>&1 || bail "contrib manifests refused"
    kubectl get clusterrolebindings,rolebindings -A -o json |
        jq -c '.items[] | select(any(.subjects[]?; .kind == "ServiceAccount" and .name == "isthmusd"))
                        | {kind, name: .metadata.name, ns: .metadata.namespace, roleRef}' |
        while read -r b; do
            kind=$(jq -r .kind <<<"$b")
            role=$(jq -r .roleRef.name <<<"$b")
            if [[ $kind == ClusterRoleBinding ]]; then
                kubectl create clusterrolebinding "test-user-$role" --clusterrole="$role" --user=isthmusd
            else
                kubectl -n "$(jq -r .ns <<<"$b")" create rolebinding "test-user-$role" \
                    --"$(jq -r '.roleRef.kind | ascii_downcase' <<<"$b")"="$role" --user=isthmusd
            fi
        done >>"$dir/apply.log" 2>&1
}

# start_isthmusd NAME [WRAPPER...]: a replica with a test configuration
# (LogLevel $loglevel or info, a short lease, a one-second Slurm poll, gang
# jobs as $gang_user or nobody);
# lines in $extra_conf are added to it.  Returns once it listens.
extra_conf=
start_isthmusd() {
    local r=$1 i
    shift
    cat >"$dir/isthmusd-$r.conf" <<CONF
LogLevel=${loglevel:-info}
SlurmConf=$SLURM_CONF
Kubeconfig=${kubeconfig:-$k8s/isthmusd.kubeconfig}
SlurmPollInterval=1
SlurmNodePollInterval=1
HttpListen=127.0.0.1:0
PidFile=$dir/isthmusd-$r.pid
LeaseDuration=4
RenewDeadline=3
RetryPeriod=1
GangUser=${gang_user:-nobody}
$extra_conf
CONF
    # a restart appends to the replica's log: read what this run writes
    local from=$(($(cat "$dir/isthmusd-$r.log" 2>/dev/null | wc -l) + 1))
    "$@" "$isthmusd" --foreground --config "$dir/isthmusd-$r.conf" >>"$dir/isthmusd-$r.log" 2>&1 &
    pid[$r]=$!
    for ((i = 0; i < 240; i++)); do
        port[$r]=$(tail -n "+$from" "$dir/isthmusd-$r.log" | sed -n 's/.*HTTP on port \([0-9]*\).*/\1/p' | head -1)
        [[ -n ${port[$r]} ]] && return 0
        kill -0 "${pid[$r]}" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}
http() { curl -sf -o /dev/null "http://127.0.0.1:${port[$1]}$2"; }
metric() { curl -s "http://127.0.0.1:${port[$1]}/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
leading() { [[ $(metric "$1" isthmus_leader) == 1 ]]; }
slices_of() { kubectl get resourceslices -o json | jq -r --arg p "$1" '[.items[] | select(.spec.pool.name == $p)] | length'; }
has_slices() { [[ $(slices_of "$1") -gt 0 ]]; }
no_slices() { [[ $(slices_of "$1") == 0 ]]; }
# slice_devices POOL: "name numa socket l3 core cpus threads kind" per device
# of the pool's slices, sorted
slice_devices() {
    kubectl get resourceslices -o json | jq -r --arg p "$1" '.items[] | select(.spec.pool.name == $p)
        | .spec.devices[] | .attributes as $a | [.name,
          ($a["resource.kubernetes.io/numaNode"].int // -1), $a["cpu.isthmus.io/socket"].int,
          ($a["cpu.isthmus.io/l3cache"].int // -1), $a["cpu.isthmus.io/core"].int,
          $a["cpu.isthmus.io/cpus"].string, $a["cpu.isthmus.io/threads"].int,
          $a["cpu.isthmus.io/coreType"].string] | map(tostring) | join(" ")' | sort
}
# topology_devices XML: the same, from isthmus-topology json for the XML
topology_devices() {
    "$topo_tool" json --xml "$1" 2>/dev/null | jq -r '.cores[] | ["core-\(.[0])", .[3], .[2], .[4], .[0],
        .[5], (.[5] | split(",") | map(if test("-") then (split("-") | (.[1] | tonumber) - (.[0] | tonumber) + 1)
                                      else 1 end) | add), .[6]] | map(tostring) | join(" ")' | sort
}
# mirrored_claims JOB: how many claims isthmus-system holds for Slurm job JOB
mirrored_claims() { kubectl get resourceclaims -n isthmus-system -l "isthmus.io/slurm-job=$1" -o name | wc -l; }
# oracle_cores JOB NODE: the job's abstract cores on NODE as devices
# ("core-N" lines), from scontrol -d (CPU_IDs are core x ThreadsPerCore +
# thread); scontrol groups nodes with equal ids into one hostlist
oracle_cores() {
    local ids threads line nodes r
    while read -r line; do
        nodes=${line%% *}
        scontrol show hostnames "${nodes#Nodes=}" | grep -qx "$2" || continue
        ids=${line##*CPU_IDs=}
        break
    done < <(scontrol -d show job "$1" | grep -o 'Nodes=[^ ]* CPU_IDs=[^ ]*')
    threads=$(scontrol show node "$2" | sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p')
    for r in ${ids//,/ }; do
        if [[ $r == *-* ]]; then seq "${r%-*}" "${r#*-}"; else echo "$r"; fi
    done | awk -v t="$threads" '{print "core-" int($1 / t)}' | sort -u
}
# claim_devices JOB [NODE]: the devices of the claims mirroring JOB (on NODE)
claim_devices() {
    kubectl get resourceclaims -n isthmus-system -l "isthmus.io/slurm-job=$1" -o json |
        jq -r --arg n "${2-}" '.items[].status.allocation.devices.results[]?
            | select($n == "" or .pool == $n) | .device' | sort
}

# ------------------------------------------------------------ faults
# bridge_relay: put blackhole_proxy.py between isthmusd and the real
# kube-apiserver (kubeconfig then names the relay for start_isthmusd).
# Sets relay_pid (SIGUSR1: black hole, SIGUSR2: relay again) and
# apiserver_pid (for SIGSTOP/SIGCONT).  Call after bridge_world.
bridge_relay() {
    local api_port relay_port
    api_port=$(sed -n 's#^ *server: https://127.0.0.1:\([0-9]*\).*#\1#p' "$k8s/isthmusd.kubeconfig" | head -1)
    [[ -n $api_port ]] || bail "no server port in $k8s/isthmusd.kubeconfig"
    coproc relay { exec python3 "$bridge_here/blackhole_proxy.py" "$api_port"; }
    relay_pid=$relay_PID
    read -r -t 10 relay_port <&"${relay[0]}" || bail "the relay did not start"
    sed "s#https://127.0.0.1:$api_port#https://127.0.0.1:$relay_port#" "$k8s/isthmusd.kubeconfig" \
        >"$dir/relayed.kubeconfig"
    kubeconfig=$dir/relayed.kubeconfig
    apiserver_pid=$(<"$k8s/pids/kube-apiserver.pid")
}

# probe_start: ask replica a's /healthz ten times a second, each answer
# "SECONDS.NANOS HTTP-CODE SECONDS-TAKEN" into $probes; probe_mark NAME
# starts a stretch of the timeline; probe_stop ends it; probe_report
# prints the figures (and sets total, bad, p50, p99, max in ms).
probes=$dir/probes
marks=$dir/marks
prober_pid=
probe_start() {
    while :; do
        printf '%s %s\n' "$(date +%s.%N)" \
            "$(curl -s -o /dev/null -m 60 -w '%{http_code} %{time_total}' "http://127.0.0.1:${port[a]}/healthz")"
        sleep 0.1
    done >"$probes" &
    prober_pid=$!
}
probe_mark() { printf '%s %s\n' "$(date +%s.%N)" "$1" >>"$marks"; }
probe_stop() {
    [[ -n $prober_pid ]] || return 0
    kill "$prober_pid"
    wait "$prober_pid" 2>/dev/null
    prober_pid=
}
probe_report() {
    local stats
    total=$(wc -l <"$probes")
    bad=$(awk '$2 != 200' "$probes" | wc -l)
    stats=$(awk '{print $3}' "$probes" | sort -n | awk '{v[NR] = $1} END {
        printf "%.1f %.1f %.1f", v[int((NR + 1) / 2)] * 1000, v[int(NR * 0.99 + 0.999)] * 1000, v[NR] * 1000}')
    read -r p50 p99 max <<<"$stats"
    printf '# /healthz over %d probes (%d not answered 200): median %s ms, p99 %s ms, max %s ms\n' \
        "$total" "$bad" "$p50" "$p99" "$max"
    # the timeline: per stretch, its probes, the slowest and the failed ones
    awk 'FNR == NR {t[NR] = $1; $1 = ""; name[NR] = substr($0, 2); n = NR; next}
         {i = 0; for (k = 1; k <= n; k++) if ($1 >= t[k]) i = k
          if ($3 > slow[i]) slow[i] = $3; cnt[i]++; if ($2 != 200) bad[i]++}
         END {for (k = 0; k <= n; k++) printf "#   from %-18s %4d probes, slowest %8.1f ms, %d not answered\n",
              k ? name[k] : "start", cnt[k], slow[k] * 1000, bad[k]}' "$marks" "$probes"
}
bridge_cleanup() {
    [[ -n ${apiserver_pid:-} ]] && kill -CONT "$apiserver_pid" 2>/dev/null
    probe_stop
    [[ -n ${relay_pid:-} ]] && kill "$relay_pid" 2>/dev/null
    return 0
}
