#!/usr/bin/env bash
# `make image`: the operator's image built with buildah (no container daemon, vfs storage,
# chroot isolation) from a base made here (base.sh), written as a docker-archive that
# `ctr images import` and `kind load image-archive` accept. Prints the archive's path last.
#   CAPLIQUIFY_IMAGE   the image's name (default localhost/capliquify-operator:<version>)
#   IMAGE_ARCHIVE      where the archive goes (default dist/capliquify-operator-<version>.tar);
#                      the examples' workload goes beside it (capliquify-demo-web-<version>.tar)
# The buildah store and the base are cached under ~/.cache/capliquify; the dependency layer is
# downloaded once into ~/.cache/capliquify/image-wheels (the base's python is 3.11: BASE_PYTHON).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
PY="${PY:-$repo/.venv/bin/python}"
version="$("$PY" -c 'import tomllib,sys; print(tomllib.load(open(sys.argv[1],"rb"))["project"]["version"])' "$repo/pyproject.toml")"
image="${CAPLIQUIFY_IMAGE:-localhost/capliquify-operator:$version}"
archive="${IMAGE_ARCHIVE:-$repo/dist/capliquify-operator-$version.tar}"
cache_root="${CAPLIQUIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capliquify}"
command -v buildah >/dev/null || { echo "build.sh: buildah is required (make apt installs it)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "build.sh: buildah's vfs store and chroot isolation need root here" >&2; exit 1; }
B=(buildah --root "$cache_root/buildah/root" --runroot "$cache_root/buildah/run" --storage-driver vfs)
started=$SECONDS

base_tar="$(bash "$here/base.sh")"
base="localhost/capliquify-base:$(basename "$(dirname "$base_tar")" | sed 's/^image-base-//')"
if ! "${B[@]}" inspect --type image "$base" >/dev/null 2>&1; then
  echo "build.sh: importing the base root filesystem as $base" >&2
  ctr="$("${B[@]}" from scratch)"
  "${B[@]}" add "$ctr" "$base_tar" / >/dev/null
  "${B[@]}" config --env PATH=/usr/local/bin:/usr/bin:/bin --cmd '["/usr/bin/python3"]' "$ctr"
  "${B[@]}" commit --quiet --rm "$ctr" "$base" >/dev/null
fi

# Skip the build when the archive was made from these very inputs (the integration tests call
# this every run): the base, the Containerfile, the pins, and the package's sources (not the
# README, which the wheel carries only as its description).
inputs="$( (echo "$base $image"; cat "$repo/Dockerfile" "$repo/pyproject.toml" "$here/testapp.py"; "$PY" "$here/pins.py";
           cd "$repo" && find controller -name '*.py' -o -name '*.yaml' -o -name '*.json' | LC_ALL=C sort | xargs cat) \
         | sha256sum | cut -c1-16)"
if [ -s "$archive" ] && [ "$(cat "$archive.inputs" 2>/dev/null)" = "$inputs" ]; then
  echo "build.sh: $archive is up to date" >&2
  echo "$archive"
  exit 0
fi
rm -f "$archive.inputs"

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/wheelhouse/deps" "$context/wheelhouse/project" "$context/wheelhouse/app"
cp "$here/testapp.py" "$context/wheelhouse/app/"
cp "$repo/Dockerfile" "$context/Containerfile"
# The project's wheel, built from this checkout; its dependencies pinned to the venv's versions
# and downloaded as binary wheels for the base's interpreter and platform, whatever this host's
# python is (the build stage installs with --no-index: no network inside the build, whose
# TLS trust store would be the base's, not this machine's).
"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$context/wheelhouse/project" "$repo" >&2
"$PY" "$here/pins.py" >"$context/wheelhouse/deps/requirements.txt"
wheels="$cache_root/image-wheels"
mkdir -p "$wheels"
# pip does not widen an explicit manylinux_2_36 to the older glibc tags it implies: list them
# (bookworm's glibc is 2.36).
platforms=()
for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_$(uname -m)"); done
"$PY" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --dest "$wheels" \
  --python-version "${BASE_PYTHON:-3.11}" --implementation cp "${platforms[@]}" \
  -r "$context/wheelhouse/deps/requirements.txt" >&2
# Only the pinned ones: a stale wheel in the cache would change the layer for nothing.
while IFS="=" read -r pin_name _ pin_version; do
  found="$(ls "$wheels"/*.whl | grep -i "/$(echo "$pin_name" | tr - _)-$pin_version-" || true)"
  [ -n "$found" ] || { echo "build.sh: no wheel of $pin_name $pin_version in $wheels" >&2; exit 1; }
  cp $found "$context/wheelhouse/deps/"
done <"$context/wheelhouse/deps/requirements.txt"

echo "build.sh: building $image on $base" >&2
"${B[@]}" bud --quiet --layers --pull-never --isolation chroot \
  --build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version" \
  -f "$context/Containerfile" -t "$image" "$context" >&2
# The examples' workload, beside it: dist/capliquify-demo-web-<version>.tar.
demo="${image%%/*}/capliquify-demo-web:$version"
demo_archive="$(dirname "$archive")/capliquify-demo-web-$version.tar"
"${B[@]}" bud --quiet --layers --pull-never --isolation chroot --target demo-web \
  --build-arg "BASE_IMAGE=$base" -f "$context/Containerfile" -t "$demo" "$context" >&2
mkdir -p "$(dirname "$archive")"
rm -f "$archive" "$demo_archive"
"${B[@]}" push --quiet "$image" "docker-archive:$archive:$image" >&2
"${B[@]}" push --quiet "$demo" "docker-archive:$demo_archive:$demo" >&2
echo "$inputs" >"$archive.inputs"
# vfs keeps a full copy of every layer: the previous builds' images, untagged now, are removed
# (18 GB after a day of rebuilds without this). The dependency layer's cache goes with them.
"${B[@]}" rmi --prune >/dev/null 2>&1 || true
echo "build.sh: $image -> $archive ($(du -h "$archive" | cut -f1)) in $(( SECONDS - started )) s" >&2
echo "$archive"
