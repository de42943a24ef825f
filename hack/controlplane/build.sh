#!/usr/bin/env bash
# Builds the local control plane once and caches it outside the repository:
# kube-apiserver, kube-controller-manager, kube-scheduler and etcd from the pinned
# modules in ./kube, and kwok at KWOK_VERSION. Prints the bin directory last.
# The cache key is a hash of this script and the module files, so a version bump rebuilds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KWOK_VERSION=v0.7.0
cache_root="${CAPLIQUIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capliquify}"
stamp="$(cat "$here/build.sh" "$here/kube/go.mod" "$here/kube/go.sum" "$here/kube/cmd/etcd/main.go" | sha256sum | cut -c1-16)"
bin="$cache_root/controlplane-$stamp/bin"
binaries=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

complete() {
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
}

if ! complete; then
  command -v go >/dev/null || { echo "build.sh: the machine's Go is required (go not on PATH)" >&2; exit 1; }
  mkdir -p "$bin.tmp"
  started=$SECONDS
  step() { echo "build.sh: [$1/3] $2 ($(( SECONDS - started )) s so far)" >&2; }
  echo "build.sh: building the control plane into $bin: first time only, about 12 minutes on 2 cores," \
       "then cached (a change to hack/controlplane/ rebuilds)" >&2
  step 1 "kube-apiserver, kube-controller-manager, kube-scheduler from the pinned k8s.io/kubernetes (the long one)"
  (cd "$here/kube" && go build -trimpath -ldflags="-s -w" -o "$bin.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler) >&2
  step 2 "etcd from the pinned go.etcd.io/etcd"
  (cd "$here/kube" && go build -trimpath -ldflags="-s -w" -o "$bin.tmp/etcd" ./cmd/etcd) >&2
  # kwok is meant to be `go install`ed at a version; GOBIN puts it beside the others.
  step 3 "kwok $KWOK_VERSION"
  (cd "$bin.tmp" && GOFLAGS= GOBIN="$bin.tmp" go install -trimpath -ldflags="-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") >&2
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
  echo "build.sh: control plane built in $(( SECONDS - started )) s" >&2
fi
echo "$bin"
