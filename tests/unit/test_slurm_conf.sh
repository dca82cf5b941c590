#!/bin/bash
# Unit tests: every Slurm-facing program answers at once, with one line
# naming the file and the problem and exit status 4, when the slurm.conf
# libslurm would read is missing, garbage or not a file.  libslurm itself
# would retry for 60 s and then leave through its fatal() ("ClusterName
# needs to be specified"), so each case must be over before its first
# retry, 1 s in; the measured time is printed.  Prints TAP.  Needs
# ISTHMUS_TOPOLOGY and ISTHMUSD (the built programs) and
# ISTHMUS_TOPOLOGIES.
tool=${ISTHMUS_TOPOLOGY:?}
daemon=${ISTHMUSD:?}
xml=${ISTHMUS_TOPOLOGIES:?}/corona.xml
. "$(dirname "$0")/../tap.sh"

tmp=$(mktemp -d) || bail "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
printf '# isthmus.conf of the isthmusd cases: SLURM_CONF decides\n' >"$tmp/isthmus.conf"
head -c 4096 /dev/urandom | tr -d '\0' >"$tmp/garbage.conf"
printf 'ClusterName=t\n' >"$tmp/no-controller.conf"
mkdir "$tmp/dir.conf"

# expect_fast DESC CONF PROBLEM CMD...: CMD with SLURM_CONF=CONF exits 4
# within 1 s, and its standard error is one line naming CONF and PROBLEM.
expect_fast() {
    local desc=$1 conf=$2 problem=$3 t0 ms rc=0 lines
    shift 3
    t0=${EPOCHREALTIME/[.,]/}
    SLURM_CONF=$conf "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
    ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" -ne 4 ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$conf" "$tmp/err" ||
        ! grep -qF -- "$problem" "$tmp/err" || [ "$ms" -ge 1000 ]; then
        not_ok "$desc" "exit $rc (want 4), $ms ms (want < 1000), $lines line(s) (want 1)," \
            "want '$conf' and '$problem' in:" "$(head -c 600 "$tmp/err")"
    else
        ok "$desc ($ms ms)"
    fi
}

for case in "missing:$tmp/none.conf:No such file or directory" \
    "garbage:$tmp/garbage.conf:no ClusterName= line" \
    "directory:$tmp/dir.conf:not a regular file" \
    "no SlurmctldHost:$tmp/no-controller.conf:no SlurmctldHost="; do
    IFS=: read -r what conf problem <<<"$case"
    expect_fast "publish, slurm.conf $what" "$conf" "$problem" \
        "$tool" publish --xml "$xml" --node-name n1
    expect_fast "fetch, slurm.conf $what" "$conf" "$problem" "$tool" fetch n1
    expect_fast "isthmusd --check-config, slurm.conf $what" "$conf" "$problem" \
        "$daemon" --check-config --config "$tmp/isthmus.conf"
    expect_fast "isthmusd start, slurm.conf $what" "$conf" "$problem" \
        "$daemon" --foreground --config "$tmp/isthmus.conf"
done

# SlurmConf= in isthmus.conf wins over SLURM_CONF, as libslurm's argument does.
printf 'SlurmConf=%s\n' "$tmp/garbage.conf" >"$tmp/slurmconf.conf"
expect_fast "isthmusd --check-config, SlurmConf= garbage" "$tmp/garbage.conf" "no ClusterName=" \
    "$daemon" --check-config --config "$tmp/slurmconf.conf"

# What libslurm accepts passes: keys in any case, spaces around '=',
# comments, and keys found through an Include.
printf 'clustername = t   # the cluster\nInclude part.conf\n' >"$tmp/main.conf"
printf 'SlurmctldHost=localhost\n' >"$tmp/part.conf"
quiet() { "$@" >/dev/null 2>&1; }
ok_if "isthmusd --check-config accepts a valid slurm.conf with an Include" \
    quiet env SLURM_CONF="$tmp/main.conf" "$daemon" --check-config --config "$tmp/isthmus.conf"
printf 'ClusterName=t\nInclude gone.conf\n' >"$tmp/broken-include.conf"
expect_fast "a missing Include is named with the file that includes it" \
    "$tmp/broken-include.conf" "gone.conf (included by $tmp/broken-include.conf" \
    "$daemon" --check-config --config "$tmp/isthmus.conf"

tap_plan
[ "$failed" -eq 0 ]
