# shellcheck shell=bash
# Debian helpers the test worlds share: installing this machine's missing
# packages, finding its Debian mirror, and building a cached Debian root of
# another release with debootstrap.  Sourced, never executed; the sourcing
# script defines die and note.
#
# Roots are kept in ${ISTHMUS_CACHE:-/var/cache/isthmus}/<name>, outside the
# clone, so a fresh clone or a second work tree reuses them.  Users:
# tests/world/node/rootfs (containerd 1.7 from Debian 13) and
# tests/world/slurm/debian-root (a newer Slurm release to build and test
# against).

# debian_need_pkgs PKG...: install the packages this machine is missing;
# quiet when all are present.
debian_need_pkgs() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) == 0 ]] ||
        die "missing Debian packages: ${missing[*]} (install them, or run as root)"
    note "installing ${missing[*]}"
    # Another apt (a second root being built) may hold dpkg's lock: wait.
    local wait=(-o DPkg::Lock::Timeout=300)
    DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null ||
        { apt-get "${wait[@]}" update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y -qq \
                --no-install-recommends "${missing[@]}" >/dev/null; } ||
        die "apt-get install ${missing[*]} failed"
}

# debian_mirror: the Debian mirror this machine's apt uses:
# ISTHMUS_DEBIAN_MIRROR, else the first URI of a Debian archive (not
# -security) in its sources lists, in either format (deb822 .sources files
# or one-line .list files).  Every suite (bookworm, trixie, sid) is on it.
debian_mirror() {
    if [[ -n ${ISTHMUS_DEBIAN_MIRROR-} ]]; then
        printf '%s\n' "$ISTHMUS_DEBIAN_MIRROR"
        return
    fi
    local f uri=
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        uri=$(awk '$1 == "URIs:" { for (i = 2; i <= NF; i++)
                                       if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$f")
        [[ -n $uri ]] && break
    done
    if [[ -z $uri ]]; then
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {
                                   if ($i ~ /\/debian\/?$/) { print $i; exit } break } }')
    fi
    [[ -n $uri ]] ||
        die "cannot find a Debian mirror in this machine's apt sources; set ISTHMUS_DEBIAN_MIRROR"
    printf '%s\n' "$uri"
}

# debian_root CACHE SUITE PACKAGES REVISION VERIFY [FILE...]
#
# Print the directory of a minimal ("minbase") Debian SUITE root holding
# PACKAGES (comma separated), built with debootstrap into CACHE/root when
# it is not there yet.  CACHE/.stamp holds a hash of the recipe (suite,
# variant, packages, REVISION: raise it when the recipe changes in a way
# the rest does not show): an unchanged recipe whose FILEs (paths inside
# the root) all exist reuses the root; anything else builds a new one
# beside it and swaps it in only once VERIFY ROOT (a function of the
# caller) succeeded, so a failed build leaves the old root in place.
# VERIFY prints one line for the log (the version it found).  Builds are
# serialised by a lock in CACHE; building needs root.  The build runs at
# low CPU and I/O priority: it is background work for the machine.
debian_root() {
    local cache=$1 suite=$2 packages=$3 revision=$4 verify=$5
    shift 5
    local variant=minbase root stamp_want log tmp start have
    root=$cache/root
    stamp_want=$(debian_root_stamp "$suite" "$packages" "$revision")
    if debian_root_cached "$cache" "$stamp_want" "$@"; then
        printf '%s\n' "$root"
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "building the Debian $suite root needs root (debootstrap)"
    mkdir -p "$cache" || die "cannot create $cache (set ISTHMUS_CACHE to a writable directory)"
    (
        exec 9>"$cache/.build.lock"
        flock 9
        if debian_root_cached "$cache" "$stamp_want" "$@"; then
            exit 0
        fi
        debian_need_pkgs debootstrap debian-archive-keyring
        [[ -e /usr/share/debootstrap/scripts/$suite ]] ||
            die "this debootstrap does not know Debian $suite (/usr/share/debootstrap/scripts/$suite is missing)"
        mirror=$(debian_mirror)
        log=$cache/build.log
        tmp=$cache/root.tmp.$$
        rm -rf "$tmp"
        trap 'rm -rf "$tmp"' EXIT
        note "building a Debian $suite root into $root (log: $log)"
        start=$SECONDS
        if ! nice -n 19 ionice -c3 debootstrap --variant="$variant" --include="$packages" \
            "$suite" "$tmp" "$mirror" >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            die "debootstrap of Debian $suite from $mirror failed (whole output in $log)"
        fi
        local f
        for f in "$@"; do
            [[ -e $tmp/$f ]] || die "the new $suite root has no /$f (see $log)"
        done
        have=$("$verify" "$tmp") || die "the new Debian $suite root does not work here: $have"
        rm -rf "$root.old"
        [[ -d $root ]] && mv "$root" "$root.old"
        mv "$tmp" "$root"
        trap - EXIT
        rm -rf "$root.old"
        printf '%s\n' "$stamp_want" >"$cache/.stamp"
        note "built the Debian $suite root in $((SECONDS - start))s: $have"
    ) || exit 1
    printf '%s\n' "$root"
}

# debian_root_stamp SUITE PACKAGES REVISION: the hash of a root's recipe
# (a minbase debootstrap of SUITE with PACKAGES), kept in CACHE/.stamp.
debian_root_stamp() {
    printf 'suite=%s variant=minbase include=%s recipe=%s\n' "$1" "$2" "$3" |
        sha256sum | cut -d' ' -f1
}

# debian_root_cached CACHE STAMP [FILE...]: is CACHE/root built from the
# recipe whose hash is STAMP, with every FILE in it?
debian_root_cached() {
    local cache=$1 stamp=$2 f
    shift 2
    [[ -f $cache/.stamp && $(<"$cache/.stamp") == "$stamp" ]] || return 1
    for f in "$@"; do
        [[ -e $cache/root/$f ]] || return 1
    done
}

# debian_root_run ROOT [--bind DIR]... -- COMMAND [ARG...]
#
# Run COMMAND chrooted in ROOT, in a mount namespace of its own: /proc,
# /sys, /dev, /tmp and /etc/hosts (localhost) of this machine are mounted
# in it, and every DIR at
# the same path (so paths mean the same inside and out), and all of it
# goes away with the command, whatever way it ends.  The environment is
# reset to PATH, HOME, LANG and the ISTHMUS_* variables.  Returns the
# command's status.
debian_root_run() {
    local root=$1 binds=() d
    shift
    while [[ $# -gt 0 && $1 != -- ]]; do
        [[ $1 == --bind && -n ${2-} ]] || die "debian_root_run: bad option $1"
        binds+=("$(cd "$2" && pwd)") || die "debian_root_run: no directory $2"
        shift 2
    done
    [[ ${1-} == -- ]] && shift
    (($# > 0)) || die "debian_root_run: no command"
    [[ -x $root/bin/sh ]] || die "debian_root_run: $root is not a root"
    local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
        LANG=C.UTF-8)
    local v
    while IFS= read -r v; do
        env+=("$v=${!v}")
    done < <(compgen -e | grep '^ISTHMUS_' || true)
    # The mount script gets its paths as arguments: none is quoted into it.
    unshare --mount --propagation private -- /bin/bash -c '
        set -e
        root=$1; nbinds=$2; shift 2
        mount -t proc proc "$root/proc"
        mount --rbind /sys "$root/sys"
        mount --rbind /dev "$root/dev"
        mount --bind /tmp "$root/tmp"
        [[ -e $root/etc/hosts ]] || : >"$root/etc/hosts"
        mount --bind /etc/hosts "$root/etc/hosts"
        for ((i = 0; i < nbinds; i++)); do
            mkdir -p "$root$1"
            mount --bind "$1" "$root$1"
            shift
        done
        exec chroot "$root" "$@"
    ' debian-root "$root" "${#binds[@]}" "${binds[@]}" /usr/bin/env -i "${env[@]}" "$@"
}
