#!/bin/bash
# Differential test of isthmusd's CEL subset (bridge/cel.c) against the
# reference, the DRA CEL environment that kube-scheduler's allocator uses
# (k8s.io/dynamic-resource-allocation/cel at the test world's Kubernetes
# version).  Prints TAP.
#
#   tests/cel/run.sh BUILD_DIR
#
# gen.py writes random cases (seeded: ISTHMUS_CEL_SEEDS, default "1 2 3";
# ISTHMUS_CEL_COUNT expressions per seed, two devices each); celref (this
# directory's Go program) and cel_eval (tests/unit) print each case's
# result.  For every case ours must equal the reference's (true, false,
# runtime error or compile error), or ours must have refused the
# expression at compile time; the counts of each are printed.
#
# The reference binary is cached under ${ISTHMUS_CACHE:-/var/cache/isthmus}
# (else in BUILD_DIR) and rebuilt when go.mod, go.sum or main.go change; on
# a fresh machine the first build downloads its modules through the Go
# module proxy.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/tests/tap.sh"
# k8s_staging_version, k8s_find_go
. "$top/tests/world/k8s/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 2
seeds=${ISTHMUS_CEL_SEEDS:-1 2 3}
exprs=${ISTHMUS_CEL_COUNT:-4000}
work=$build/tests/cel
mkdir -p "$work" || bail "cannot create $work"

# 1. The reference is the test world's Kubernetes, not another.
sv=v$(k8s_staging_version)
pinned=$(awk '$1 == "k8s.io/dynamic-resource-allocation" { print $2 }' "$here/go.mod")
check "the reference is k8s.io/dynamic-resource-allocation $sv, as tests/world/k8s/VERSION" \
    "$pinned" "$sv"

# 2. The reference binary, built once per go.mod + go.sum + main.go.
stamp=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -d' ' -f1)
cache=${ISTHMUS_CACHE:-/var/cache/isthmus}/celref-$sv
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
    cache=$work/celref
    mkdir -p "$cache" || bail "cannot create $cache"
fi
celref=$cache/celref
build_reference() {
    [ -x "$celref" ] && [ "$(cat "$cache/.stamp" 2>/dev/null)" = "$stamp" ] && return 0
    k8s_find_go
    (cd "$here" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
        go build -trimpath -o "$celref.tmp.$$" .) >"$work/celref-build.log" 2>&1 &&
        mv "$celref.tmp.$$" "$celref" && printf '%s\n' "$stamp" >"$cache/.stamp"
}
(
    flock 9
    build_reference
) 9>"$cache/.lock"
if [ -x "$celref" ] && [ "$(cat "$cache/.stamp" 2>/dev/null)" = "$stamp" ]; then
    ok "the reference is built ($celref)"
else
    rm -f "$celref".tmp.*
    not_ok "the reference is built" "$(tail -20 "$work/celref-build.log" 2>/dev/null)"
    tap_plan
    exit 1
fi

cel_eval=$build/tests/unit/cel_eval
[ -x "$cel_eval" ] || make -s -C "$build/tests/unit" cel_eval >/dev/null 2>&1
[ -x "$cel_eval" ] || bail "no $cel_eval (make -C $build/tests/unit cel_eval)"

# 3. Each seed: generate, run both, compare the result words.
total=0 agree=0 refused=0 disagree=0
for seed in $seeds; do
    cases=$work/cases-$seed.jsonl
    python3 "$here/gen.py" --seed "$seed" --count "$exprs" >"$cases" ||
        bail "gen.py --seed $seed failed"
    "$celref" <"$cases" >"$work/ref-$seed.out" 2>"$work/ref-$seed.err" ||
        bail "celref failed: $(head -3 "$work/ref-$seed.err")"
    "$cel_eval" <"$cases" >"$work/ours-$seed.out" 2>"$work/ours-$seed.err" ||
        bail "cel_eval failed: $(head -3 "$work/ours-$seed.err")"
    n=$(wc -l <"$cases")
    check "seed $seed: both printed a result for each of the $n cases" \
        "$(wc -l <"$work/ref-$seed.out") $(wc -l <"$work/ours-$seed.out")" "$n $n"
    # line number, reference word, our word
    paste <(cut -f1 "$work/ref-$seed.out") <(cut -f1 "$work/ours-$seed.out") |
        awk -F'\t' -v seed="$seed" '
            $2 == "refused" { r++; rk[$1]++; next }
            $1 == $2 { a++; ak[$1]++; next }
            { d++; if (d <= 20) bad = bad NR " "; }
            END {
                printf "%d %d %d %s\n", a, r, d, bad
                printf "# seed %s: agree %d (true %d, false %d, error %d, compile-error %d); ", \
                    seed, a, ak["true"], ak["false"], ak["error"], ak["compile-error"] > "/dev/stderr"
                printf "refused %d (the reference: true %d, false %d, error %d, compile-error %d); disagree %d\n", \
                    r, rk["true"], rk["false"], rk["error"], rk["compile-error"], d > "/dev/stderr"
            }' >"$work/counts-$seed" 2>"$work/summary-$seed"
    cat "$work/summary-$seed"
    read -r a r d bad <"$work/counts-$seed"
    total=$((total + n)) agree=$((agree + a)) refused=$((refused + r)) disagree=$((disagree + d))
    diag=()
    for line in $bad; do
        diag+=("case $line: $(sed -n "${line}p" "$cases")")
        diag+=("  reference: $(sed -n "${line}p" "$work/ref-$seed.out")")
        diag+=("  ours:      $(sed -n "${line}p" "$work/ours-$seed.out")")
    done
    if [ "$d" -eq 0 ]; then
        ok "seed $seed: ours equals the reference or refused, for all $n cases"
    else
        not_ok "seed $seed: $d cases where ours differs from the reference" "${diag[@]}"
    fi
    # The test must not pass by refusing: most cases are evaluated.
    ok_if "seed $seed: no more than a quarter of the cases refused ($r of $n)" \
        test $((4 * r)) -le "$n"
done
echo "# all seeds: $total cases, $agree agree, $refused refused, $disagree disagree"
tap_plan
[ "$failed" -eq 0 ]
