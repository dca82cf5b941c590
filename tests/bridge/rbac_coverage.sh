#!/bin/bash
# isthmusd's RBAC is the least it needs: every verb contrib/kubernetes/rbac.yaml
# grants was used by a test, in TAP.
#
#   tests/bridge/rbac_coverage.sh FILE
#
# FILE collects what the bridge tests recorded (tests/bridge/lib.sh,
# rbac_record, when ISTHMUS_RBAC_USED names it): "granted GROUP RESOURCE
# SUBRESOURCE VERB" from the roles, "used ..." from the API server's audit
# log of the user isthmusd (requests it was allowed to make).  tests/run
# runs the bridge tests with it, then this.  One test per granted verb.
#
# One permission is checked without a request of its own: "update" on
# resourceclaims/binding, which Kubernetes 1.37 asks for when a status
# write sets an allocation; it counts as used when a status update was.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tap.sh
. "$here/../tap.sh"
file=${1:?usage: $0 FILE}
[[ -s $file ]] || bail "nothing recorded in $file (run the bridge tests with ISTHMUS_RBAC_USED=$file)"

used=$(awk '$1 == "used" {print $2, $3, $4, $5}' "$file" | sort -u)
grep -qx "resource.k8s.io resourceclaims status update" <<<"$used" &&
    used+=$'\n'"resource.k8s.io resourceclaims binding update"
while read -r group res sub verb; do
    name="$verb $group/$res"
    [[ $sub != - ]] && name+="/$sub"
    if grep -qxF "$group $res $sub $verb" <<<"$used"; then
        ok "isthmusd used $name"
    else
        not_ok "isthmusd used $name" "granted by rbac.yaml, never used by a test: remove it, or test what needs it"
    fi
done < <(awk '$1 == "granted" {print $2, $3, $4, $5}' "$file" | sort -u)
tap_plan
((failed == 0))
