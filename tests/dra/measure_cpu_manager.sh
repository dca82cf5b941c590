#!/bin/bash
# What the kubelet's CPU manager does to a container whose cpuset
# isthmus-oci-hook wrote: a measurement on the node world, not a test.
#
#   tests/dra/measure_cpu_manager.sh BUILDDIR none|static
#
# The node world runs the kubelet with the given cpuManagerPolicy (static
# reserves cpu 0).  The plugin is told to look for the kubelet's state in
# a file that does not exist, so it runs whatever the policy.  A pod
# claims the last core; then, watching that container's cgroup cpuset for
# 30 s after each step (three of the kubelet's 10 s reconcile periods):
#   1. nothing happens;
#   2. a Guaranteed pod with one whole cpu and no claim starts;
#   3. the kubelet restarts.
# Prints the cpuset after every change with the seconds since the step,
# and the kubelet's cpu_manager_state at the end of each step, as # lines.
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR none|static}" && pwd)
policy=${2:?usage: $0 BUILDDIR none|static}
node_opts=(--cpu-manager-policy "$policy")
plugin_opts=(--cpu-manager-state=/nonexistent/cpu_manager_state)
# shellcheck source=node_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/node_lib.sh"

node_world_up
last=$(($(hwloc-calc --number-of core machine:0) - 1))
{
    pod claimed "resourceClaimTemplateName: last-core"
    echo "{apiVersion: resource.k8s.io/v1, kind: ResourceClaimTemplate,
           metadata: {name: last-core, namespace: e2e}, spec: {spec: {devices: {requests: [{name: cpus,
           exactly: {deviceClassName: cpu.isthmus.io, count: 1, selectors: [{cel:
           {expression: 'device.attributes[\"cpu.isthmus.io\"].core == $last'}}]}}]}}}}"
} | kubectl apply -f - >/dev/null || bail "the pod or its template was refused"
ok_if "the claimed pod runs" until_ok eval '[[ $(phase claimed) == Running ]]' || bail "no pod"
echo "# policy $policy; claimed core-$last = cpus $(hwloc-calc --physical-output --intersect PU "core:$last");" \
    "the container printed Cpus_allowed_list $(allowed claimed Cpus)"

# watch STEP: the claimed container's cpuset.cpus every second for 30 s
watch() {
    local t seen= now cg
    for ((t = 0; t <= 30; t++)); do
        cg=$(cpuset_of claimed) && now=$(cat "$cg/cpuset.cpus" 2>/dev/null) || now="(no container)"
        [[ $now != "$seen" ]] && echo "# $1: t=${t}s cpuset.cpus=$now"
        seen=$now
        sleep 1
    done
    echo "# $1: cpu_manager_state $(cat "$ISTHMUS_NODE_KUBELET_DIR/cpu_manager_state" 2>&1)"
}
watch "1 nothing"
kubectl apply -f - >/dev/null <<YAML
{apiVersion: v1, kind: Pod, metadata: {name: exclusive, namespace: e2e}, spec: {hostNetwork: true,
 containers: [{name: c, image: "isthmus.test/busybox:latest", imagePullPolicy: Never,
  command: [/bin/sh, -c, "grep Cpus_allowed_list: /proc/self/status; sleep 1d"],
  resources: {requests: {cpu: "1", memory: 32Mi}, limits: {cpu: "1", memory: 32Mi}}}]}}
YAML
until_ok eval '[[ $(phase exclusive) == Running ]]' && echo "# the Guaranteed pod runs: $(kubectl -n e2e logs exclusive)"
watch "2 Guaranteed pod"
"$world/node/restart" "$dir/node" kubelet || bail "the kubelet did not restart"
watch "3 kubelet restarted"
tap_plan
