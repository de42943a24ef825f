#!/usr/bin/env bash
# Makes the image's base here, from Debian's own packages (no container registry is needed):
# a minimal Debian root filesystem (debootstrap, variant minbase) with python3 and python3-venv
# (the venv module builds the operator's environment in the image), trimmed of docs, man pages,
# locales and apt's lists, with the operator's non-root user (uid 10001) in /etc/passwd.
# Cached under ~/.cache/capliquify like the control plane (a change to this script remakes it);
# prints the root filesystem archive's path last. Needs root (debootstrap, chroot).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE="${CAPLIQUIFY_IMAGE_SUITE:-bookworm}"
MIRROR="${CAPLIQUIFY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache_root="${CAPLIQUIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capliquify}"
stamp="$( (cat "$here/base.sh"; echo "$SUITE") | sha256sum | cut -c1-16)"
out="$cache_root/image-base-$stamp"
archive="$out/rootfs.tar"

if [ ! -s "$archive" ]; then
  [ "$(id -u)" = 0 ] || { echo "base.sh: debootstrap needs root (run make image as root or with sudo)" >&2; exit 1; }
  command -v debootstrap >/dev/null || { echo "base.sh: debootstrap is required (make apt installs it)" >&2; exit 1; }
  started=$SECONDS
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  root="$out.tmp/rootfs"
  echo "base.sh: debootstrap $SUITE (minbase + python3) into $root: first time only, a few minutes" >&2
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$root" "$MIRROR" >"$out.tmp/debootstrap.log" 2>&1 \
    || { tail -20 "$out.tmp/debootstrap.log" >&2; exit 1; }
  # Nothing at run time reads these; they are a third of a minbase root.
  rm -rf "$root"/usr/share/{doc,man,info,locale,lintian} "$root"/var/lib/apt/lists/* \
         "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old "$root"/var/log/*
  # The operator's user (no home, no login shell): the image runs as it, never as root.
  echo "capliquify:x:10001:10001:capliquify operator:/nonexistent:/usr/sbin/nologin" >>"$root/etc/passwd"
  echo "capliquify:x:10001:" >>"$root/etc/group"
  # numeric-owner: the archive's owners are the root fs's own ids, whatever this host maps.
  tar --numeric-owner -C "$root" -cf "$out.tmp/rootfs.tar" .
  rm -rf "$root"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "base.sh: base root filesystem made in $(( SECONDS - started )) s ($(du -h "$archive" | cut -f1))" >&2
fi
echo "$archive"
