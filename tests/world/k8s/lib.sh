# Shared helpers for the Kubernetes test world scripts (build, pin, start,
# stop, add-nodes, smoke).  Sourced, never executed.
#
# The Kubernetes version lives in ONE place, the file VERSION next to this
# one.  go.mod is derived from it by ./pin and checked against it by
# k8s_check_pin before every build.

K8S_WORLD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../ports.sh
. "$K8S_WORLD_DIR/../ports.sh"
# shellcheck source=../debian.sh
. "$K8S_WORLD_DIR/../debian.sh"

die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# The pinned Kubernetes version, e.g. 1.37.2 (no leading v).
k8s_version() {
    local v
    v=$(tr -d ' \t\r\n' <"$K8S_WORLD_DIR/VERSION") ||
        die "cannot read $K8S_WORLD_DIR/VERSION"
    [[ $v =~ ^1\.[0-9]+\.[0-9]+$ ]] ||
        die "VERSION must hold a release like 1.37.2, not '$v'"
    printf '%s\n' "$v"
}

# Staging modules (k8s.io/api, client-go, ...) are tagged v0.<minor>.<patch>
# for Kubernetes v1.<minor>.<patch>.
k8s_staging_version() {
    local v
    v=$(k8s_version)
    printf '0.%s\n' "${v#1.}"
}

# Where the binaries of this version are cached: outside the clone, so a
# fresh clone, `git clean` or a second work tree reuse them.
k8s_cache_dir() {
    printf '%s/k8s-%s\n' "${ISTHMUS_CACHE:-/var/cache/isthmus}" "$(k8s_version)"
}

k8s_bin_dir() {
    printf '%s/bin\n' "$(k8s_cache_dir)"
}

# Go is not on the default PATH of a fresh machine when installed from the
# upstream tarball; look in the usual place before giving up.
k8s_find_go() {
    if ! command -v go >/dev/null 2>&1; then
        if [[ -x /usr/local/go/bin/go ]]; then
            PATH=/usr/local/go/bin:$PATH
        else
            die "no 'go' on PATH (Go $(k8s_go_wanted) or newer is needed to build Kubernetes)"
        fi
    fi
    # Never let the go command fetch a different toolchain behind our back:
    # the only network it may use is the module proxy for modules.
    export GOTOOLCHAIN=local
    local have want
    have=$(go env GOVERSION) || die "'go env GOVERSION' failed"
    have=${have#go}
    want=$(k8s_go_wanted)
    if ! k8s_version_ge "$have" "$want"; then
        die "Go $have is too old: k8s.io/kubernetes v$(k8s_version) needs Go $want or newer"
    fi
}

# The go directive of our go.mod, which `go mod tidy` raises to what
# k8s.io/kubernetes itself declares.
k8s_go_wanted() {
    awk '$1 == "go" { print $2; exit }' "$K8S_WORLD_DIR/go.mod"
}

# k8s_version_ge A B: true when dotted version A >= B.
k8s_version_ge() {
    [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$2" ]]
}

# Fail unless go.mod matches VERSION: k8s.io/kubernetes required at
# v<VERSION> and every k8s.io replace pointing at v0.<minor>.<patch>.
k8s_check_pin() {
    local v sv gomod bad
    v=$(k8s_version)
    sv=$(k8s_staging_version)
    gomod=$K8S_WORLD_DIR/go.mod
    [[ -f $gomod ]] || die "$gomod is missing; run $K8S_WORLD_DIR/pin"
    grep -Eq "^[[:space:]]*k8s\.io/kubernetes v$v([[:space:]]|$)" "$gomod" ||
        die "go.mod does not require k8s.io/kubernetes v$v (VERSION says $v); run $K8S_WORLD_DIR/pin"
    bad=$(awk -v sv="v$sv" '
        $1 ~ /^k8s\.io\// && $2 == "=>" && $4 != sv { print $1 " => " $4 }
    ' "$gomod")
    [[ -z $bad ]] ||
        die "go.mod replaces staging modules at a version other than v$sv: $bad; run $K8S_WORLD_DIR/pin"
    grep -q '=> k8s.io/api v' "$gomod" ||
        die "go.mod has no staging replace directives; run $K8S_WORLD_DIR/pin"
}

# Install Debian packages that are missing; quiet when all are present.
k8s_need_pkgs() {
    debian_need_pkgs "$@"
}

# The kubectl to use: the one built with the pinned version when present
# (so tests need no Debian kubectl), else whatever is on PATH.
k8s_kubectl() {
    local k
    k=$(k8s_bin_dir)/kubectl
    if [[ -x $k ]]; then
        printf '%s\n' "$k"
    elif command -v kubectl >/dev/null 2>&1; then
        command -v kubectl
    else
        die "no kubectl: run $K8S_WORLD_DIR/build first"
    fi
}

