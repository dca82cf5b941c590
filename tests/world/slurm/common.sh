# shellcheck shell=bash
# Shared helpers for tests/world/slurm/{start,stop,smoke}.  Sourced, not run.
#
# The pid file DIR/pids has one line per process we started:
#     <pid> <start time in clock ticks since boot> <name>
# The start time (field 22 of /proc/PID/stat) lets stop tell our process from an
# unrelated one that reused the pid after ours died, so stop can never kill a stranger.

# shellcheck source=../ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../ports.sh"

# Print a message on stderr, prefixed with the calling script's name.
note() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# die MESSAGE: report and exit 1. Sets died=1 so start's exit trap knows the failure
# was already explained.
die() {
    note "error: $*"
    # shellcheck disable=SC2034  # read by start's exit trap
    died=1
    exit 1
}

# proc_stat PID: set proc_state and proc_start to the state (field 3) and start time
# (field 22) of PID; fail if there is no such process. Uses only builtins, no subshell:
# a Ctrl-C reaches every process of the group, and a killed $(cat ...) would make us
# record a live daemon as dead, and then never stop it.
proc_stat() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    # Field 2 (comm) may hold spaces and parentheses: cut after the last ") ".
    stat=${stat##*) }
    local -a f
    read -r -a f <<<"$stat"
    proc_state=${f[0]}
    proc_start=${f[19]}
}

# proc_starttime PID: print the start time of PID, fail if there is no such process.
proc_starttime() {
    proc_stat "$1" || return 1
    printf '%s\n' "$proc_start"
}

# pid_is_ours PID STARTTIME: true if PID runs and is the process we recorded. A zombie
# (dead, not yet reaped by its new parent) counts as gone.
pid_is_ours() {
    proc_stat "$1" || return 1
    [ "$proc_state" != Z ] && [ "$proc_start" = "$2" ]
}

# record_pid DIR PID NAME: append a process to DIR/pids.
record_pid() {
    local st=0
    # A process that already died has no start time; 0 makes stop skip it.
    proc_stat "$2" && st=$proc_start
    printf '%s %s %s\n' "$2" "$st" "$3" >>"$1/pids"
}

# log_tails DIR [LINES]: print the end of every log of the cluster in DIR on stderr:
# each daemon's log file, or its captured stdout+stderr (*.out) when it wrote no log
# file (munged in the foreground; a daemon that died parsing its config). Known harmless
# noise (Debian's mpi/pmix plugin failing to load PMIx) is left out.
log_tails() {
    local f lines=${2:-15} text
    for f in "$1"/log/*.log "$1"/log/*.out; do
        [ -s "$f" ] || continue
        [[ $f == *.out ]] && [ -s "${f%.out}.log" ] && continue
        text=$(grep -v -E 'pmix|PMIx|MPI: Cannot create context' "$f" | tail -n "$lines") || true
        [ -n "$text" ] || continue
        printf '\n===== %s (last %s lines) =====\n%s\n' "$f" "$lines" "$text" >&2
    done
}

# TAP for the test scripts (smoke, spank): ok, not_ok, check, bail; count and failed
# say how many ran and failed.
# shellcheck source=../../tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../tap.sh"
