#!/usr/bin/env bash
# Builds the wstunnel LAB TEST DOUBLE (a static Go binary, CGO_ENABLED=0) into the shared cache:
#
#   ${WG_RELAY_CACHE:-/var/cache/wg-relay}/wstunnel-double/<source-hash>/wstunnel
#
# and prints that path (only that, on stdout). If the file is already there it is not
# rebuilt. The hash covers the non-test sources, go.mod, this script, the Go version and
# the target GOOS/GOARCH (GOARCH=arm64 ./build.sh builds for arm64 hosts).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${WG_RELAY_CACHE:-/var/cache/wg-relay}"

GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
  else echo "build.sh: no Go toolchain found (set GO=/path/to/go)" >&2; exit 1
  fi
fi

export GOTOOLCHAIN=local CGO_ENABLED=0
goos="${GOOS:-$("$GO" env GOOS)}"
goarch="${GOARCH:-$("$GO" env GOARCH)}"

cd "$here"
mapfile -t files < <(ls -1 -- *.go go.mod build.sh go.sum 2>/dev/null | grep -v '_test\.go$' | LC_ALL=C sort)
hash="$(
  {
    for f in "${files[@]}"; do
      printf '%s\n' "$f"
      sha256sum < "$f"
    done
    "$GO" version
    printf '%s/%s\n' "$goos" "$goarch"
  } | sha256sum | cut -c1-16
)"

out_dir="$cache/wstunnel-double/$hash"
out="$out_dir/wstunnel"
if [[ -x "$out" ]]; then
  printf '%s\n' "$out"
  exit 0
fi

mkdir -p "$out_dir"
tmp="$(mktemp "$out_dir/.wstunnel.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
echo "build.sh: building wstunnel test double for $goos/$goarch -> $out" >&2
GOOS="$goos" GOARCH="$goarch" "$GO" build -trimpath -buildvcs=false -ldflags='-s -w -buildid=' -o "$tmp" .
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
printf '%s\n' "$out"
