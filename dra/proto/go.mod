// The kubelet API this plugin speaks: the .proto files of this module's
// version are fetched at build time (fetch-kubelet-protos) and compiled
// with protoc-c.  Keep the version equal to tests/world/k8s's pin
// (tests/unit/test_dra_pin.sh checks it).
module isthmus.invalid/dra/proto

go 1.22

require k8s.io/kubelet v0.37.2
