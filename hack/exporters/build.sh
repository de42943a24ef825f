#!/usr/bin/env bash
# Builds the real exporters the metric-source tests run against, once, cached outside the
# repository like the control plane: metrics-server at a pinned version from the Go module
# proxy (`go install` of a tagged module, as its README installs it), and kube-state-metrics
# from the pinned module in ./ksm (go.sum holds every hash). Prints the bin directory last.
# The cache key is a hash of this script and the module files, so a version bump rebuilds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
METRICS_SERVER_VERSION=v0.8.0
cache_root="${CAPLIQUIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capliquify}"
stamp="$(cat "$here/build.sh" "$here/ksm/go.mod" "$here/ksm/go.sum" | sha256sum | cut -c1-16)"
bin="$cache_root/exporters-$stamp/bin"

if ! [ -x "$bin/metrics-server" ] || ! [ -x "$bin/kube-state-metrics" ]; then
  command -v go >/dev/null || { echo "build.sh: the machine's Go is required (go not on PATH)" >&2; exit 1; }
  mkdir -p "$bin.tmp"
  echo "build.sh: building metrics-server $METRICS_SERVER_VERSION and kube-state-metrics into $bin" \
    "(first time only; ~5 min on 2 cores)" >&2
  (cd "$bin.tmp" && GOFLAGS= GOBIN="$bin.tmp" go install -trimpath -ldflags="-s -w" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION") >&2
  (cd "$here/ksm" && GOFLAGS= go build -trimpath -ldflags="-s -w" -o "$bin.tmp/" k8s.io/kube-state-metrics/v2) >&2
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
fi
echo "$bin"
