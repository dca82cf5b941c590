#!/bin/sh
# The kubelet API the plugin is compiled against (dra/proto/go.mod), the
# one its test client uses (tests/dra/kubelet-client/go.mod) and the
# kubelet the test worlds build (tests/world/k8s/go.mod) are one version.
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/tap.sh"
version() { awk '($1 == "require" && $2 == "k8s.io/kubelet") || ($1 == "k8s.io/kubelet" && $2 ~ /^v/) { print ($1 == "require") ? $3 : $2; exit }' "$1"; }
# A release tarball carries no test worlds: nothing to compare with.
if [ ! -f "$top/tests/world/k8s/go.mod" ]; then
    echo "1..0 # SKIP no tests/world/k8s (a release tarball)"
    exit 0
fi
world=$(version "$top/tests/world/k8s/go.mod")
[ -n "$world" ] || bail "no k8s.io/kubelet in tests/world/k8s/go.mod"
check "dra/proto/go.mod pins the world's k8s.io/kubelet" "$(version "$top/dra/proto/go.mod")" "$world"
check "the test client pins the world's k8s.io/kubelet" "$(version "$top/tests/dra/kubelet-client/go.mod")" "$world"
for f in dra/proto/go.sum; do
    check "$f holds the world's hash of k8s.io/kubelet $world" \
        "$(grep "^k8s.io/kubelet $world " "$top/$f")" "$(grep "^k8s.io/kubelet $world " "$top/tests/world/k8s/go.sum")"
done
tap_plan
[ "$failed" -eq 0 ]
