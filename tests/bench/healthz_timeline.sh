#!/bin/bash
# How long /healthz waits while the Kubernetes API server is frozen or
# silent, for one or more builds of isthmusd side by side: the figures of
# the issue note "isthmusd never stalls".  Not a test: it asserts nothing.
#
#   tests/bench/healthz_timeline.sh [--hold SECONDS] BUILDDIR [BUILDDIR...]
#
# For each build, on a fresh hybrid world (two Slurm nodes, real
# kube-apiserver behind tests/bridge/blackhole_proxy.py): isthmusd ready,
# then the API server frozen with SIGSTOP for --hold seconds (default 20),
# SIGCONT and 10 s to recover, the relay a black hole for --hold seconds,
# relay again and 10 s.  /healthz is asked ten times a second (each probe
# may take up to 60 s); the timeline per stretch is printed.  Config keys
# a build does not know are left out, so older builds run too.
set -uo pipefail
hold=20
if [[ ${1:-} == --hold ]]; then
    hold=$2
    shift 2
fi
(($# >= 1)) || { echo "usage: $0 [--hold SECONDS] BUILDDIR [BUILDDIR...]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
for b in "$@"; do
    printf '# ==== %s\n' "$b"
    (
        build=$(cd "$b" && pwd)
        # shellcheck source=../bridge/lib.sh
        . "$here/../bridge/lib.sh"
        xml=$topologies/16em64t-4s2c2t.xml
        bridge_world --nodes 2 --xml "$xml" --xml "$xml"
        for n in n1 n2; do "$topo_tool" publish --xml "$xml" -N "$n" >/dev/null; done
        bridge_relay
        start_isthmusd a || bail "isthmusd did not start"
        until_ok eval 'http a /readyz && leading a' || bail "isthmusd did not become ready"
        probe_start
        sleep 2
        probe_mark "apiserver SIGSTOP"
        kill -STOP "$apiserver_pid"
        sleep "$hold"
        probe_mark "apiserver SIGCONT"
        kill -CONT "$apiserver_pid"
        sleep 10
        probe_mark "black hole"
        kill -USR1 "$relay_pid"
        sleep "$hold"
        probe_mark "relay again"
        kill -USR2 "$relay_pid"
        sleep 10
        probe_stop
        probe_report
        ok "timeline of $b"
        tap_plan
    ) 2>&1 | grep -E '^(#|Bail)'
done
