#!/bin/bash
# isthmusd keeps serving while the Kubernetes API server is degraded, in
# TAP (issue "isthmusd never stalls").
#
#   tests/bridge/test_stall.sh BUILDDIR
#
# The world: two Slurm nodes with Kubernetes Nodes, a real kube-apiserver
# reached through a relay (blackhole_proxy.py) that can become a peer that
# accepts and never answers.  Two faults, one after the other:
#   1. the real kube-apiserver frozen with SIGSTOP, then SIGCONT;
#   2. the relay turned into a black hole, then back.
# Throughout, a prober asks /healthz ten times a second.  Every probe must
# be answered: a loop that waits on a request would leave the probe
# unanswered for the client's per-try timeout (5 s) or longer.  The only
# time bound is that generous one (1 s, ten times the 100 ms target); the
# figures (median, 99th percentile, maximum) are printed for the notes.
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

xml=$topologies/16em64t-4s2c2t.xml
bridge_world --nodes 2 --xml "$xml" --xml "$xml"
for n in n1 n2; do
    "$topo_tool" publish --xml "$xml" -N "$n" >/dev/null || bail "isthmus-topology publish failed"
done

bridge_relay

extra_conf=ReadyFailingTime=3
start_isthmusd a || bail "isthmusd did not start"
ok_if "isthmusd becomes ready and leader through the relay" until_ok eval 'http a /readyz && leading a'
ok_if "... and publishes both nodes" until_ok eval 'has_slices n1 && has_slices n2'

probe_start
polls() { metric a isthmus_slurm_polls_total; }
# polls_rise N: the Slurm poll counter goes up by N from now
polls_rise() {
    local want
    want=$(($(polls) + $1))
    until_ok eval '[[ $(polls) -ge '"$want"' ]]'
}
not_ready() { ! http a /readyz; }

# ============================================================ 1. SIGSTOP
probe_mark "apiserver SIGSTOP"
kill -STOP "$apiserver_pid"
ok_if "frozen API server: /readyz turns false (ReadyFailingTime=3)" until_ok not_ready
ok_if "frozen API server: Slurm is still polled" polls_rise 4
job=$(sbatch --parsable -o /dev/null -w n1 -c 4 --wrap 'sleep 600') || bail "sbatch failed"
ok_if "frozen API server: the job started meanwhile is seen by Slurm" \
    until_ok eval '[[ $(squeue -h -j '"$job"' -o %T) == RUNNING ]]'
polls_rise 2
ok_if "frozen API server: isthmusd is alive and /healthz answers" http a /healthz
probe_mark "apiserver SIGCONT"
kill -CONT "$apiserver_pid"
ok_if "thawed API server: /readyz true again" until_ok eval 'http a /readyz && leading a'
ok_if "thawed API server: the job started during the freeze gets its claim" \
    until_ok eval '[[ $(mirrored_claims '"$job"') -ge 1 ]]'
probe_mark "recovered"

# ============================================================ 2. a black hole
probe_mark "black hole"
kill -USR1 "$relay_pid"
ok_if "black hole: /readyz turns false" until_ok not_ready
ok_if "black hole: Slurm is still polled" polls_rise 4
scancel "$job"
ok_if "black hole: the job ends in Slurm" until_ok eval '[[ -z $(squeue -h -j '"$job"' -o %T) ]]'
polls_rise 2
ok_if "black hole: isthmusd is alive and /healthz answers" http a /healthz
probe_mark "relay"
kill -USR2 "$relay_pid"
ok_if "relay restored: /readyz true again" until_ok eval 'http a /readyz && leading a'
ok_if "relay restored: the ended job's claims are deleted" until_ok eval '[[ $(mirrored_claims '"$job"') == 0 ]]'
probe_mark "recovered"
sleep 1
probe_stop

# --- what the prober saw
probe_report
ok_if "the prober ran throughout ($total probes)" test "$total" -ge 50
check "every /healthz probe answered 200 (none timed out)" "$bad" 0
[[ $bad == 0 ]] || awk '$2 != 200' "$probes" | head -5 | sed 's/^/#   /'
ok_if "the slowest /healthz answer took under 1 s (target 100 ms; got $max ms)" \
    awk -v m="$max" 'BEGIN {exit !(m < 1000)}'

kill -TERM "${pid[a]}"
wait "${pid[a]}"
check "isthmusd stops cleanly after both faults" "$?" 0
unset 'pid[a]'
tap_plan
