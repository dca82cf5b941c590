#!/bin/sh
# Unit tests: the kubeconfig reader against kubectl, the reference.  For
# each $KUBECONFIG list and context, what ism_kube_config_load() picks
# (through kube_config_show) must be what
# `kubectl config view --minify --flatten` shows: context, server,
# namespace, token, TLS settings, and the CA, client certificate and key
# bytes (kubectl inlines the files, so relative paths are checked too).
# kubectl is $ISTHMUS_KUBECTL or the one on PATH; without it every case is
# skipped.  Prints TAP.
show=${ISTHMUS_KUBE_CONFIG_SHOW:-./kube_config_show}
kubectl=${ISTHMUS_KUBECTL:-$(command -v kubectl)}
if [ -z "$kubectl" ] || ! [ -x "$kubectl" ]; then
    echo "1..0 # SKIP kubectl not found (set ISTHMUS_KUBECTL; tests/world/k8s/build prints its directory)"
    exit 0
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=../tap.sh
. "$(dirname "$0")/../tap.sh"

pem() { printf -- '-----BEGIN %s-----\n%s\n-----END %s-----\n' "$1" "$2" "$1"; }
b64() { base64 -w0; }

for d in a b c; do
    mkdir "$tmp/$d"
    pem CERTIFICATE "ca-$d" >"$tmp/$d/ca.crt"
    pem CERTIFICATE "client-$d" >"$tmp/$d/client.crt"
    pem "PRIVATE KEY" "key-$d" >"$tmp/$d/client.key"
done
cat >"$tmp/a/config" <<YAML
apiVersion: v1
kind: Config
current-context: a-ctx
contexts:
- name: a-ctx
  context: {cluster: common, user: ua}
- name: shared
  context: {cluster: common, user: ua, namespace: from-a}
clusters:
- name: common
  cluster: {server: 'https://a.example:6443', certificate-authority: ca.crt}
- name: insecure
  cluster:
    server: https://i.example
    insecure-skip-tls-verify: true
    tls-server-name: sni.example
    proxy-url: http://proxy.example:3128
users:
- name: ua
  user: {token: token-a}
- name: certs
  user: {client-certificate: client.crt, client-key: client.key}
YAML
cat >"$tmp/b/config" <<YAML
{"apiVersion": "v1", "kind": "Config", "current-context": "b-ctx",
 "contexts": [
  {"name": "shared", "context": {"cluster": "cb", "user": "ub", "namespace": "from-b"}},
  {"name": "b-ctx", "context": {"cluster": "common", "user": "ub"}},
  {"name": "b-own", "context": {"cluster": "cb", "user": "ua"}},
  {"name": "b-insecure", "context": {"cluster": "insecure", "user": "certs"}},
  {"name": "b-data", "context": {"cluster": "cdata", "user": "udata"}},
  {"name": "b-nouser", "context": {"cluster": "cb"}},
  {"name": "b-lost", "context": {"cluster": "cb", "user": "nobody"}}],
 "clusters": [
  {"name": "common", "cluster": {"server": "https://b-common.example"}},
  {"name": "cb", "cluster": {"server": "https://b.example/prefix", "certificate-authority": "ca.crt"}},
  {"name": "cdata", "cluster": {"server": "https://d.example",
    "certificate-authority-data": "$(pem CERTIFICATE data-ca | b64)"}}],
 "users": [
  {"name": "ua", "user": {"token": "token-b-ua"}},
  {"name": "ub", "user": {"token": "token-b"}},
  {"name": "certs", "user": {"client-certificate": "client.crt", "client-key": "client.key"}},
  {"name": "udata", "user": {"client-certificate-data": "$(pem CERTIFICATE data-cert | b64)",
    "client-key-data": "$(pem 'PRIVATE KEY' data-key | b64)"}}]}
YAML
cat >"$tmp/c/config" <<YAML
current-context: ""
contexts:
- name: c-ctx
  context:
    cluster: cc
    user: uc
    namespace: from-c
- name: c-certs
  context: {cluster: common, user: certs}
clusters:
- name: cc
  cluster:
    server: https://c.example
    certificate-authority: ../c/ca.crt
users:
- name: uc
  user:
    client-certificate: $tmp/c/client.crt
    client-key: ./client.key
- name: certs
  user: {client-certificate: client.crt, client-key: client.key}
YAML
printf 'current-context: x\nclusters:\n- name: k\n  cluster: {server: https://1}\n- name: k\n  cluster: {server: https://2}\n' >"$tmp/dup"

# W: a kubeconfig written by kubectl itself (its own formatting), with
# embedded and referenced credentials.
w=$tmp/w/config
mkdir "$tmp/w"
{
    KUBECONFIG=$w
    export KUBECONFIG
    "$kubectl" config set-cluster emb --server=https://127.0.0.1:6443 \
        --certificate-authority="$tmp/a/ca.crt" --embed-certs=true &&
        "$kubectl" config set-cluster ref --server=https://[::1]:6443 \
            --certificate-authority="$tmp/b/ca.crt" --tls-server-name=kubernetes &&
        "$kubectl" config set-credentials emb --client-certificate="$tmp/a/client.crt" \
            --client-key="$tmp/a/client.key" --embed-certs=true &&
        "$kubectl" config set-credentials tok --token=written.by.kubectl &&
        "$kubectl" config set-context w-emb --cluster=emb --user=emb --namespace=kube-system &&
        "$kubectl" config set-context w-ref --cluster=ref --user=tok &&
        "$kubectl" config use-context w-emb
} >"$tmp/w.log" 2>&1 || { echo "Bail out! kubectl config set-* failed: $(cat "$tmp/w.log")"; exit 1; }

# "A:B" -> "<tmp>/a/config:<tmp>/b/config"; M is a missing file, D one
# that kubectl refuses (a name used twice).
paths() {
    echo "$1" | tr ':' '\n' | while read -r f; do
        case $f in
        A | B | C) printf '%s/%s/config' "$tmp" "$(echo "$f" | tr ABC abc)" ;;
        M) printf '%s/missing' "$tmp" ;;
        D) printf '%s/dup' "$tmp" ;;
        W) printf '%s' "$w" ;;
        esac
        printf ':'
    done | sed 's/:$//'
}

jsonpath='{.current-context}|{.clusters[0].cluster.server}|{.contexts[0].context.namespace}|{.users[0].user.token}|{.clusters[0].cluster.insecure-skip-tls-verify}|{.clusters[0].cluster.tls-server-name}|{.clusters[0].cluster.proxy-url}'

# same SPEC CONTEXT: ours and kubectl's views agree
same() {
    spec=$1 ctx=$2 desc="KUBECONFIG=$1${2:+ --context $2}"
    set -- ${ctx:+--context "$ctx"}
    KUBECONFIG=$(paths "$spec")
    export KUBECONFIG
    if ! theirs=$("$kubectl" config view --minify --flatten "$@" -o jsonpath="$jsonpath" 2>"$tmp/err"); then
        not_ok "$desc: kubectl failed" "$(cat "$tmp/err")"
        return
    fi
    theirs=$(echo "$theirs" | awk -F'|' -v OFS='|' '{ if ($3 == "") $3 = "default"; if ($5 == "") $5 = "false"; print }')
    if ! ours=$("$show" ${ctx:+-c "$ctx"} summary 2>&1); then
        not_ok "$desc: kube_config_show failed" "$ours"
        return
    fi
    ours=$(echo "$ours" | cut -d'|' -f1-7)
    if [ "$ours" != "$theirs" ]; then
        not_ok "$desc: summary differs" "ours:    $ours" "kubectl: $theirs"
        return
    fi
    for what in ca:certificate-authority-data cert:client-certificate-data key:client-key-data; do
        field=${what#*:}
        case $field in
        certificate-authority-data) jp="{.clusters[0].cluster.$field}" ;;
        *) jp="{.users[0].user.$field}" ;;
        esac
        "$kubectl" config view --minify --flatten "$@" -o jsonpath="$jp" 2>/dev/null | base64 -d >"$tmp/theirs" &&
            "$show" ${ctx:+-c "$ctx"} "${what%%:*}" >"$tmp/ours" || { not_ok "$desc: ${what%%:*} failed"; return; }
        if ! cmp -s "$tmp/ours" "$tmp/theirs"; then
            not_ok "$desc: ${what%%:*} differs" "ours:    $(tr '\n' ' ' <"$tmp/ours")" "kubectl: $(tr '\n' ' ' <"$tmp/theirs")"
            return
        fi
    done
    ok "$desc: same as kubectl ($ours)"
}

# both_fail SPEC CONTEXT: kubectl and we both refuse
both_fail() {
    spec=$1 ctx=$2 desc="KUBECONFIG=$1${2:+ --context $2}"
    KUBECONFIG=$(paths "$spec")
    export KUBECONFIG
    if "$kubectl" config view --minify --flatten ${ctx:+--context "$ctx"} >/dev/null 2>&1; then
        not_ok "$desc: kubectl accepted it"
    elif ours=$("$show" ${ctx:+-c "$ctx"} summary 2>&1); then
        not_ok "$desc: accepted, kubectl refuses" "$ours"
    else
        ok "$desc: refused like kubectl ($ours)"
    fi
}

echo "1..22"
echo "# kubectl: $kubectl, $("$kubectl" version --client 2>/dev/null | head -1)"
same A ""
same A:B ""
same B:A ""
same A:B shared
same B:A shared
same A:B b-own
same A:B b-insecure
same B:A b-insecure
same B b-data
same B b-nouser
same C:A:B ""
same B:C:A c-ctx
same A:C:B c-certs
same C:B:A c-certs
same "::M:C::B:" ""
same W ""
same W w-ref
same W:A:B b-data
both_fail A:B zz
both_fail D ""
both_fail C ""
both_fail B b-lost
