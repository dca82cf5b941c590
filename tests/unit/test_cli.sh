#!/bin/sh
# Unit tests: the isthmus-topology command line (exit codes, outputs, errors).
# Prints TAP.  Needs ISTHMUS_TOPOLOGY (the binary) and ISTHMUS_TOPOLOGIES.
tool=${ISTHMUS_TOPOLOGY:?}
xml=${ISTHMUS_TOPOLOGIES:?}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

# check DESCRIPTION EXPECTED_STATUS STDERR_PATTERN -- COMMAND...
check() {
    desc=$1 want=$2 pattern=$3
    shift 4
    n=$((n + 1))
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "not ok $n - $desc (exit $got, wanted $want: $(head -c 300 "$tmp/err"))"
        failed=$((failed + 1))
    elif [ -n "$pattern" ] && ! grep -q -- "$pattern" "$tmp/err" "$tmp/out"; then
        echo "not ok $n - $desc (no '$pattern' in: $(head -c 300 "$tmp/err"))"
        failed=$((failed + 1))
    else
        echo "ok $n - $desc"
    fi
}

# same DESCRIPTION FILE_A FILE_B
same() {
    n=$((n + 1))
    if cmp -s "$2" "$3"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=$((failed + 1)); fi
}

echo "1..34"
check "--help prints usage" 0 "Usage: isthmus-topology" -- "$tool" --help
check "--version prints the version" 0 "isthmus-topology (isthmus)" -- "$tool" --version
check "no command is a usage error" 2 "missing COMMAND" -- "$tool"
check "unknown command is a usage error" 2 "unknown command 'frobnicate'" -- "$tool" frobnicate
check "unknown option is a usage error" 2 "unknown or incomplete option" -- "$tool" show --bogus
check "two sources is a usage error" 2 "at most one of" -- "$tool" show --xml a --json b
check "extra argument is a usage error" 2 "unexpected argument 'more'" -- "$tool" show more
check "missing XML file is bad input" 1 "nonexistent.xml" -- "$tool" show --xml "$tmp/nonexistent.xml"
: >"$tmp/empty.xml"
check "empty XML is bad input" 1 "empty.xml" -- "$tool" json --xml "$tmp/empty.xml"
check "show summarises corona" 0 "2 sockets, 2 NUMA nodes (2 with cpus), 16 L3 caches, 48 cores, 96 cpus" \
    -- "$tool" show --xml "$xml/corona.xml"
check "show lists offline cpus" 0 "offline     4,7-11" -- "$tool" show --xml "$xml/16amd64-8n2c-cpusets.xml"
check "slurm-conf of corona" 0 "^CPUs=96 Boards=1 SocketsPerBoard=2 CoresPerSocket=24 ThreadsPerCore=2 RealMemory=" \
    -- "$tool" slurm-conf --xml "$xml/corona.xml"
check "slurm-conf --node-name" 0 "^NodeName=n1 CPUs=" -- "$tool" slurm-conf -N n1 --xml "$xml/corona.xml"
check "slurm-conf numa_node_as_socket on Cluster-on-Die" 0 "SocketsPerBoard=4 CoresPerSocket=7" \
    -- "$tool" slurm-conf --numa-node-as-socket --xml "$xml/28intel64-2p2g7c-CoDgroups.v1tov2.xml"
check "slurm-conf warns where slurmd would be irregular" 0 "not spread evenly over 6 sockets" \
    -- "$tool" slurm-conf --xml "$xml/16amd64-8n2c-cpusets.xml"
check "slurm-conf of offline cpus is slurmd's fallback" 0 \
    "^CPUs=4 Boards=1 SocketsPerBoard=4 CoresPerSocket=1 ThreadsPerCore=1 RealMemory=" \
    -- "$tool" slurm-conf --xml "$xml/16em64t-4s2c2t-offlines.xml"
check "slurm-conf says why it rounds down" 0 "Slurm uses the first 1 thread(s) of its first 4 cores" \
    -- "$tool" slurm-conf --xml "$xml/16em64t-4s2c2t-offlines.xml"
"$tool" json --xml "$xml/64intel64-fakeKNL-SNC4-hybrid.xml" >"$tmp/knl.json" 2>/dev/null
check "HBM nodes over the DDR cpus decode" 0 "1 sockets, 8 NUMA nodes (8 with cpus)" \
    -- "$tool" show --json "$tmp/knl.json"
check "slurm-conf on a live machine names the host" 0 "^NodeName=" -- env -u ISTHMUS_HWLOC_XMLFILE "$tool" slurm-conf

"$tool" json --xml "$xml/sierra.xml" >"$tmp/a.json" 2>/dev/null
"$tool" json --json "$tmp/a.json" >"$tmp/b.json" 2>/dev/null
same "json re-encodes byte for byte" "$tmp/a.json" "$tmp/b.json"
"$tool" show --xml "$xml/sierra.xml" >"$tmp/a.show" 2>/dev/null
"$tool" show --json - <"$tmp/a.json" >"$tmp/b.show" 2>/dev/null
same "show reads the JSON from stdin like the XML" "$tmp/a.show" "$tmp/b.show"

# Regression: stdin was read without a bound (and realloc's failure leaked
# the buffer): more than the bound is refused, whatever follows.
check "stdin larger than 16 MiB is bad input" 1 "stdin: larger than 16777216 bytes" \
    -- sh -c "head -c 16777217 /dev/zero | '$tool' show --json -"
check "a file larger than 16 MiB is bad input" 1 "big.json: larger than 16777216 bytes" \
    -- sh -c "head -c 20000000 /dev/zero >'$tmp/big.json' && '$tool' show --json '$tmp/big.json'"
check "a directory as --json is bad input" 1 "$tmp: read error: Is a directory" \
    -- "$tool" show --json "$tmp"
printf '{"version":7}' >"$tmp/bad.json"
check "hostile JSON is bad input, field named" 1 "bad.json: version: 7 is not supported" \
    -- "$tool" show --json "$tmp/bad.json"
printf 'LogLevel=info\nTopologyXML=%s\n' "$xml/tuo.SPX.xml" >"$tmp/good.conf"
check "TopologyXML from the config file" 0 "4 sockets, 4 NUMA nodes" -- "$tool" show --config "$tmp/good.conf"
printf 'LogLevel=info\nTopolgyXML=x\n' >"$tmp/bad.conf"
check "config error names file, line and key" 1 "bad.conf:2: unknown key 'TopolgyXML'" \
    -- "$tool" show --config "$tmp/bad.conf"
check "ISTHMUS_HWLOC_XMLFILE selects the XML" 0 "CPUs=176 " \
    -- env ISTHMUS_HWLOC_XMLFILE="$xml/sierra.xml" "$tool" slurm-conf

# publish --dry-run: exactly the Extra text, and no Slurm needed.
"$tool" json --xml "$xml/corona.xml" >"$tmp/corona.json"
printf '{"isthmus":%s}\n' "$(cat "$tmp/corona.json")" >"$tmp/want-full"
env SLURM_CONF=/nonexistent "$tool" publish --dry-run -N n1 --xml "$xml/corona.xml" >"$tmp/got-full" 2>&1
same "publish --dry-run prints the full value without Slurm" "$tmp/want-full" "$tmp/got-full"
check "publish --dry-run --holder prints a reference" 0 '^{"isthmus":"@[0-9a-f]\{12\}"}$' \
    -- env SLURM_CONF=/nonexistent "$tool" publish --dry-run --holder rack1-n7 --xml "$xml/corona.xml"
"$tool" publish --dry-run --holder a --xml "$xml/corona.xml" >"$tmp/ref-a"
"$tool" publish --dry-run --holder a --json "$tmp/corona.json" >"$tmp/ref-a2"
same "the reference's digest is the encoding's, whatever the source" "$tmp/ref-a" "$tmp/ref-a2"
check "publish --dry-run --full ignores --holder" 0 '^{"isthmus":{"version":1,' \
    -- "$tool" publish --dry-run --full --holder a --xml "$xml/corona.xml"
"$tool" publish --dry-run --holder a --xml "$xml/sierra.xml" >"$tmp/ref-s"
check "another machine has another digest" 1 "" -- cmp -s "$tmp/ref-a" "$tmp/ref-s"
check "--holder is for publish only" 2 "for publish only" -- "$tool" json --holder a
[ "$failed" -eq 0 ]
