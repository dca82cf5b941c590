#!/bin/sh
# Unit tests: bad XML under each of hwloc's two XML readers.  Prints TAP.
#
# hwloc reads XML with libxml2 when its plugin (Debian: libhwloc-plugins)
# is installed, else with its own built-in reader; HWLOC_LIBXML_IMPORT
# (0 or 1) chooses, once per process.  isthmus relies on the built-in
# reader, which every hwloc has (contrib/install-deps does not install the
# plugin, on purpose), but a machine may have the plugin, so the bad-input
# cases of test_topology run under both: HWLOC_LIBXML_IMPORT=0 always, =1
# only where the plugin is there (a SKIP says so otherwise: hwloc would
# quietly fall back to the built-in reader).
#
# ISTHMUS_TEST_WRAPPER runs the program under a checker (check-valgrind sets
# it to valgrind with tests/valgrind.supp); the sanitizer tree needs none.
tool=${ISTHMUS_TOPOLOGY:?}
prog=./test_topology
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

have_libxml_plugin() {
    HWLOC_PLUGINS_VERBOSE=1 "$tool" json --synthetic pu:1 2>&1 >/dev/null |
        grep -q "descriptor .hwloc_xml_libxml' ready"
}

# reader NAME VALUE: the bad-input cases, renumbered, then one test for the
# program's exit status (a leak or error valgrind reports makes it fail).
reader() {
    name=$1 value=$2
    # In the sanitizer tree, the slow unwinder: libhwloc has no frame
    # pointers, so the fast one stops inside it, before hwloc_topology_load,
    # which tests/lsan.supp names.  Ignored elsewhere.
    # shellcheck disable=SC2086 # the wrapper is a command with its options
    HWLOC_LIBXML_IMPORT=$value CK_RUN_CASE=xml_bad_input CK_FORK=no \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0" \
        $ISTHMUS_TEST_WRAPPER "$prog" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    awk -v base="$n" -v tag="$name" '
        /^(not )?ok / { k++; sub(/ok [0-9]+/, "ok " base + k); print $0 " [" tag "]" }
        END { exit k == 0 }' "$tmp/out" >"$tmp/tap" || rc=98
    cat "$tmp/tap"
    n=$((n + $(wc -l <"$tmp/tap")))
    failed=$((failed + $(grep -c '^not ok' "$tmp/tap")))
    n=$((n + 1))
    if [ "$rc" -eq 0 ]; then
        echo "ok $n - $name reader: test_topology exited 0"
    else
        echo "not ok $n - $name reader: test_topology exited $rc: $(grep -m3 -E 'lost|ERROR|Leak' "$tmp/err" | tr '\n' ' ')"
        sed 's/^/# /' "$tmp/err" | head -40
        failed=$((failed + 1))
    fi
}

reader built-in 0
if have_libxml_plugin; then
    reader libxml2 1
else
    n=$((n + 1))
    echo "ok $n - libxml2 reader # SKIP hwloc's libxml2 plugin (libhwloc-plugins) is not installed"
fi
echo "1..$n"
[ "$failed" -eq 0 ]
