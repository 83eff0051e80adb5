#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kubectl and CoreDNS at the versions in
# versions.env, from the Go module proxy, into a cache directory named after those versions,
# puts the Multi-Cluster Services API's CRDs beside them (mcs-api-<version>/), and prints the
# directory. A second run with the same versions builds nothing.
#
#   tests/real_cluster/build.sh          # build (or find) the binaries; print their directory
#   tests/real_cluster/build.sh --pin    # after editing versions.env: rewrite the Go modules
#
# The cache is $HDNS_REAL_CLUSTER_CACHE, else ~/.cache/headless-dns/real-cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
staging="v0${KUBERNETES_VERSION#v1}"
cache=${HDNS_REAL_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headless-dns/real-cluster}
bin="$cache/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-coredns-$COREDNS_VERSION"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"

say() { echo "build.sh: $*" >&2; }

# The k8s.io modules that k8s.io/kubernetes replaces with its staging directories.
staging_modules() {
  go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" >/dev/null
  sed -n 's|^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' \
    "$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod"
}

pin() {
  say "pinning the Go modules to versions.env"
  (
    cd "$here/go/kubernetes"
    go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
    for module in $(staging_modules); do
      go mod edit -replace="$module=$module@$staging"
    done
    go mod tidy
  )
  (
    cd "$here/go/etcd"
    go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go mod tidy
  )
}

# Each module must require what versions.env says; a mismatch is a versions.env edited without
# --pin, and building would silently use the old versions.
check() {
  local module=$1 path=$2 version=$3
  if ! grep -Eq "^[[:space:]]*(require[[:space:]]+)?$path $version\b" "$here/go/$module/go.mod"; then
    say "go/$module/go.mod does not require $path $version as versions.env says; run $0 --pin"
    exit 1
  fi
}

if [ "${1:-}" = "--pin" ]; then
  pin
  exit 0
fi
check kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
check etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"

mkdir -p "$bin"
if [ ! -x "$bin/etcd" ]; then
  say "building etcd $ETCD_VERSION"
  (cd "$here/go/etcd" && go build -ldflags="-s -w" -o "$bin/etcd.tmp" . && mv "$bin/etcd.tmp" "$bin/etcd")
fi
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/kube-controller-manager" ] || [ ! -x "$bin/kubectl" ]; then
  say "building kube-apiserver, kube-controller-manager and kubectl $KUBERNETES_VERSION"
  minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  version_flags="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  version_flags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  (
    cd "$here/go/kubernetes"
    go build -ldflags="-s -w $version_flags" -o "$bin/tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl
    mv "$bin/tmp/kube-apiserver" "$bin/tmp/kube-controller-manager" "$bin/tmp/kubectl" "$bin/"
    rmdir "$bin/tmp"
  )
fi
if [ ! -x "$bin/coredns" ]; then
  say "building CoreDNS $COREDNS_VERSION"
  # CoreDNS's module replaces nothing, so `go install` takes it as it is published.
  GOBIN="$bin/tmp" go install -ldflags="-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  mv "$bin/tmp/coredns" "$bin/coredns"
  rmdir "$bin/tmp"
fi
# The MCS API's CRDs, taken from its module (no build): beside the binaries, by version.
crds="$bin/mcs-api-$MCS_API_VERSION"
if [ ! -f "$crds/multicluster.x-k8s.io_serviceimports.yaml" ]; then
  say "taking the CRDs of sigs.k8s.io/mcs-api $MCS_API_VERSION"
  outside=$(mktemp -d)  # outside any module: the download changes no go.mod
  module=$(cd "$outside" && go mod download -json "sigs.k8s.io/mcs-api@$MCS_API_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rmdir "$outside"
  rm -rf "$crds.tmp" && mkdir -p "$crds.tmp"
  cp "$module"/config/crd/multicluster.x-k8s.io_*.yaml "$crds.tmp/"
  mv "$crds.tmp" "$crds"
fi
echo "$bin"
