#!/bin/bash
# Leader election between two real processes on the test world, in TAP.
#
#   ISTHMUS_K8S_DIR=... tests/kube/test_leader.sh BUILD/tests/kube/leader_candidate
#
# A leads; B follows.  A is frozen (SIGSTOP): B takes over.  A is thawed:
# it must notice it lost the lease without writing again.  B is killed
# (SIGKILL): A takes over.  Every write both made is checked: no write of
# one falls inside the other's reign.
set -uo pipefail
cand=$1
here=$(cd "$(dirname "$0")" && pwd)
world=${ISTHMUS_K8S_DIR:?ISTHMUS_K8S_DIR is not set}
kubectl=$("$here/../world/k8s/build" 2>/dev/null)/kubectl
kc() { "$kubectl" --kubeconfig="$world/admin.kubeconfig" --request-timeout=30s "$@"; }
export ISTHMUS_TEST_NS=leader-$$
tmp=$(mktemp -d)
# shellcheck source=../tap.sh
. "$here/../tap.sh"
pids=()
finish() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
    wait 2>/dev/null
    kc delete namespace "$ISTHMUS_TEST_NS" --wait=false >/dev/null 2>&1
    if ((failed)); then
        echo "# candidate logs:"; sed 's/^/#   A: /' "$tmp/A"; sed 's/^/#   B: /' "$tmp/B"
    fi
    rm -rf "$tmp"
    tap_plan
    exit $((failed != 0))
}
trap finish EXIT

# until_line FILE WORD [AFTER-LINE-COUNT]: wait (at most 60 s) for a line
# "<ms> WORD" in FILE beyond its first AFTER lines; print its time.
until_line() {
    local i
    for ((i = 0; i < 600; i++)); do
        local t
        t=$(tail -n +"$((${3:-0} + 1))" "$1" | awk -v w="$2" '$2 == w && NF == 2 {print $1; exit}')
        [[ -n $t ]] && { echo "$t"; return 0; }
        sleep 0.1
    done
    return 1
}
now_ms() { date +%s%3N; }
# writes FILE FROM TO: times of the successful writes in [FROM, TO]
writes() { awk -v a="$2" -v b="$3" '$2 == "write" && $4 == "ok" && $1 >= a && $1 <= b {print $1}' "$1"; }

kc create namespace "$ISTHMUS_TEST_NS" >/dev/null &&
    kc -n "$ISTHMUS_TEST_NS" create configmap log >/dev/null || { echo "Bail out! cannot prepare"; exit 1; }

"$cand" A lease log >"$tmp/A" 2>&1 & pids+=($!); a=$!
if ta=$(until_line "$tmp/A" leading); then ok "A becomes the leader"; else not_ok "A becomes the leader"; exit 1; fi
"$cand" B lease log >"$tmp/B" 2>&1 & pids+=($!); b=$!
if until_line "$tmp/B" following >/dev/null && ! grep -q ' leading$' "$tmp/B"; then
    ok "B follows while A holds the lease"
else
    not_ok "B follows while A holds the lease"
fi

# Freeze A: it can neither renew nor notice; B must take over, and A must
# have stopped writing before B's first write.
t_stop=$(now_ms)
kill -STOP "$a"
if tb=$(until_line "$tmp/B" leading); then
    ok "B takes over from a frozen A (after $((tb - t_stop)) ms; lease 4000 ms)"
else
    not_ok "B takes over from a frozen A"
fi
sleep 1
lines_a=$(wc -l <"$tmp/A")
kill -CONT "$a"
if until_line "$tmp/A" stopped "$lines_a" >/dev/null || grep -q ' stopped$' "$tmp/A"; then
    ok "A, thawed, knows it is no longer the leader"
else
    not_ok "A, thawed, knows it is no longer the leader"
fi
sleep 1
first_b=$(writes "$tmp/B" 0 99999999999999 | head -1)
late_a=$(writes "$tmp/A" "${first_b:-0}" 99999999999999 | wc -l)
last_a=$(writes "$tmp/A" 0 99999999999999 | tail -1)
if [[ -n $first_b && -n $last_a && $last_a -lt $first_b && $late_a == 0 ]]; then
    ok "never both: A's last write ($last_a) precedes B's first ($first_b)"
else
    not_ok "never both: A's last write precedes B's first" "A last: $last_a  B first: $first_b  A writes after: $late_a"
fi

# Kill B outright: A takes over again.
lines_a=$(wc -l <"$tmp/A")
t_kill=$(now_ms)
kill -KILL "$b"
wait "$b" 2>/dev/null
if ta2=$(until_line "$tmp/A" leading "$lines_a"); then
    ok "A takes over from a killed B (after $((ta2 - t_kill)) ms; lease 4000 ms)"
else
    not_ok "A takes over from a killed B"
fi
last_b=$(writes "$tmp/B" 0 99999999999999 | tail -1)
first_a2=$(writes "$tmp/A" "${ta2:-0}" 99999999999999 | head -1)
if [[ -n $last_b && -n $first_a2 && $last_b -lt $first_a2 && $last_b -lt $t_kill ]]; then
    ok "never both: B's last write ($last_b) precedes A's first as leader again ($first_a2)"
else
    not_ok "never both after the kill" "B last: $last_b  A first: $first_a2"
fi
holder=$(kc -n "$ISTHMUS_TEST_NS" get lease lease -o 'jsonpath={.spec.holderIdentity} {.spec.leaseTransitions}')
if [[ $holder == "A 2" ]]; then ok "the Lease names A, after 2 transitions"; else not_ok "the Lease names A, after 2 transitions" "got: $holder"; fi
