#!/usr/bin/env bash
# Builds the real node's binaries once and caches them outside the repository: the kubelet
# from the same pinned k8s.io/kubernetes module as the control plane (hack/controlplane/kube),
# and the pod sandbox's pause binary (static, ./pause). Prints the bin directory last.
# The kubelet needs modules the control plane's go.sum does not list: it is built in a copy of
# that module folder with -mod=mod, so the checked-in go.mod/go.sum stay as they are.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kube="$here/../controlplane/kube"
cache_root="${CAPLIQUIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capliquify}"
stamp="$(cat "$here/build.sh" "$here/pause/main.go" "$kube/go.mod" "$kube/go.sum" | sha256sum | cut -c1-16)"
bin="$cache_root/node-$stamp/bin"

if [ ! -x "$bin/kubelet" ] || [ ! -x "$bin/pause" ]; then
  command -v go >/dev/null || { echo "node/build.sh: the machine's Go is required (go not on PATH)" >&2; exit 1; }
  started=$SECONDS
  rm -rf "$bin.tmp" && mkdir -p "$bin.tmp"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp -r "$kube/." "$work/"
  echo "node/build.sh: building the kubelet into $bin: first time only, a few minutes on 2 cores" >&2
  # The version the Node reports (kubectl get nodes), as a release build stamps it.
  version="$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$kube/go.mod")"
  minor="$(echo "$version" | cut -d. -f2)"
  stamp_flags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1"
  stamp_flags="$stamp_flags -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  (cd "$work" && go build -mod=mod -trimpath -ldflags="-s -w $stamp_flags" -o "$bin.tmp/kubelet" k8s.io/kubernetes/cmd/kubelet) >&2
  (cd "$here/pause" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$bin.tmp/pause" main.go) >&2
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
  echo "node/build.sh: node binaries built in $(( SECONDS - started )) s" >&2
fi
echo "$bin"
