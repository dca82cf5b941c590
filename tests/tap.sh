# shellcheck shell=sh
# TAP output for the shell tests; sourced by sh and bash scripts alike.
#
#   ok DESC                     a passing test
#   not_ok DESC [LINE...]       a failing test; each LINE becomes "#   " diagnostics
#   check DESC GOT WANT         passes when the two strings are equal
#   ok_if DESC CMD...           passes when CMD succeeds
#   bail MESSAGE                "Bail out!" and exit 1
#   tap_plan                    the "1..N" line for the tests so far
#   until_ok CMD...             poll CMD (its output discarded) every half
#                               second until it succeeds, at most 120 s;
#                               fails when it never did
#
# count is the number of tests so far, failed the number that failed.
# Diagnostics are prefixed line by line, so output that starts with "ok"
# can never pass for a result.

count=0
failed=0

ok() {
    count=$((count + 1))
    printf 'ok %d - %s\n' "$count" "$1"
}

not_ok() {
    count=$((count + 1))
    failed=$((failed + 1))
    printf 'not ok %d - %s\n' "$count" "$1"
    shift
    for tap_line in "$@"; do
        printf '%s\n' "$tap_line" | sed 's/^/#   /'
    done
}

check() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got:  $2" "want: $3"; fi
}

ok_if() {
    tap_desc=$1
    shift
    if "$@"; then ok "$tap_desc"; else not_ok "$tap_desc"; fi
}

bail() {
    printf 'Bail out! %s\n' "$*"
    exit 1
}

tap_plan() {
    printf '1..%d\n' "$count"
}

until_ok() {
    tap_tries=240
    while [ "$tap_tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        tap_tries=$((tap_tries - 1))
        sleep 0.5
    done
    return 1
}
