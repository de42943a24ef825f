#!/usr/bin/env bash
# Builds the real exporters the metric-source tests run against, once, cached outside the
# repository like the control plane: metrics-server at a pinned version from the Go module
# proxy (`go install` of a tagged module, as its README installs it). Prints the bin directory last.
# The cache key is a hash of this script, so a version bump rebuilds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
METRICS_SERVER_VERSION=v0.8.0
cache_root="${CAPLIQUIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capliquify}"
stamp="$(sha256sum "$here/build.sh" | cut -c1-16)"
bin="$cache_root/exporters-$stamp/bin"

if ! [ -x "$bin/metrics-server" ]; then
  command -v go >/dev/null || { echo "build.sh: the machine's Go is required (go not on PATH)" >&2; exit 1; }
  mkdir -p "$bin.tmp"
  echo "build.sh: building metrics-server $METRICS_SERVER_VERSION into $bin (first time only; ~3 min on 2 cores)" >&2
  (cd "$bin.tmp" && GOFLAGS= GOBIN="$bin.tmp" go install -trimpath -ldflags="-s -w" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION") >&2
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
fi
echo "$bin"
