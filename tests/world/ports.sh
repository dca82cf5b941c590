# shellcheck shell=bash
# Local TCP ports for the test worlds; sourced by tests/world/*/start.
#
# Both worlds pick their ports the same way and under the same machine-wide
# lock, so a Slurm cluster and a Kubernetes control plane (or two of either)
# started at the same moment never choose the same port.  The caller takes
# the lock before choosing and keeps it until its daemons have bound the
# ports; its daemons must not inherit the lock's descriptor 8 (launch them
# with "8<&-"), or the lock would live as long as the world.

WORLD_PORT_LOCK=${ISTHMUS_PORT_LOCK:-/tmp/isthmus-world-ports.lock}

# world_port_lock: take the lock on descriptor 8 (blocks while another
# world is choosing its ports).  Returns non-zero if the lock file cannot be
# opened.
world_port_lock() {
    [[ -e $WORLD_PORT_LOCK ]] || (umask 022 && : >>"$WORLD_PORT_LOCK") 2>/dev/null || true
    exec 8<"$WORLD_PORT_LOCK" || return 1
    flock 8
}

# world_port_unlock: release it (closing the descriptor is enough).
world_port_unlock() {
    exec 8<&-
}

# world_used_ports: every local TCP port in any state (listening, connected,
# TIME_WAIT), IPv4 and IPv6, one per line.  From /proc, so no ss or netstat
# is needed.
world_used_ports() {
    local f
    for f in /proc/net/tcp /proc/net/tcp6; do
        [[ -r $f ]] || continue
        # Column 2 is ADDR:PORT with the port in hex; line 1 is a header.
        awk 'NR > 1 { split($2, a, ":"); print a[2] }' "$f"
    done | sort -u | while read -r hex; do
        printf '%d\n' "0x$hex"
    done
}

# world_port_listening PORT: true when something listens on PORT.
world_port_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 }
                     END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# world_pick_ports N: print N distinct free ports, one per line.  They come
# from 20000-32767, below Linux's default ephemeral range (32768-60999), so
# no outgoing connection can be handed one while the world runs.  Prints a
# message on stderr and returns 1 when it cannot find N.
world_pick_ports() {
    local n=$1 tries=0 p
    local -A used=()
    while read -r p; do used[$p]=1; done < <(world_used_ports)
    while ((n > 0)); do
        if ((tries++ >= 10000)); then
            echo "no free TCP port found in 20000-32767" >&2
            return 1
        fi
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
        [[ -n ${used[$p]-} ]] && continue
        used[$p]=1
        printf '%s\n' "$p"
        n=$((n - 1))
    done
}
