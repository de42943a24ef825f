#!/usr/bin/env bash
# Builds Shopify's toxiproxy server once, from the Go module proxy at a pinned version, and
# caches it outside the repository like the control plane (hack/controlplane/build.sh).
# The soak (bench/soak.py) puts it between the operator and each of its endpoints.
# Prints the binary's path last. The cache key is a hash of this script.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOXIPROXY_VERSION=v2.5.0
cache_root="${CAPLIQUIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capliquify}"
stamp="$(sha256sum "$here/build.sh" | cut -c1-16)"
bin="$cache_root/toxiproxy-$stamp/bin"

if [ ! -x "$bin/toxiproxy-server" ]; then
  command -v go >/dev/null || { echo "build.sh: the machine's Go is required (go not on PATH)" >&2; exit 1; }
  echo "build.sh: building toxiproxy $TOXIPROXY_VERSION into $bin (about a minute, once)" >&2
  rm -rf "$bin.tmp" && mkdir -p "$bin.tmp"
  (cd "$bin.tmp" && GOFLAGS= GOBIN="$bin.tmp" go install -trimpath -ldflags="-s -w" \
      "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION") >&2
  mv "$bin.tmp/server" "$bin.tmp/toxiproxy-server"
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
fi
echo "$bin/toxiproxy-server"
