#!/usr/bin/env bash
# LAB-ONLY: builds the wg-relay lab's stand-ins for the Pulumi random, tls and command
# provider plugins (pulumi-resource-random 4.21.2, pulumi-resource-tls 5.6.1,
# pulumi-resource-command 1.2.1). They exist only because the real providers cannot be
# built in the lab; they are never used for a real deployment. (The command stand-in
# execs a real pulumi-resource-command installed in the Pulumi plugin cache, if any.)
#
# Output: ${WG_RELAY_CACHE:-/var/cache/wg-relay}/lab-providers/bin/ — put it on PATH
# so the Pulumi CLI picks the plugins up as ambient plugins.
# Idempotent: skipped when a marker keyed by the hash of the sources (and the Go
# version) says these exact sources were already built.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${WG_RELAY_CACHE:-/var/cache/wg-relay}
root=$cache/lab-providers
bin=$root/bin
bins=(pulumi-resource-random pulumi-resource-tls pulumi-resource-command)

log() { printf '[lab-providers %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

command -v go >/dev/null || { log "go not found on PATH"; exit 1; }
mkdir -p "$bin" "$root/markers"

# Sources that go into the binaries (this module's packages they import, tests
# excluded; other packages of the module do not count), plus go.mod/go.sum, this
# script and the toolchain.
hash=$(
  cd "$here"
  dirs=$(go list -deps -f '{{if not .Standard}}{{.Dir}}{{end}}' "${bins[@]/#/./cmd/}" | grep -F "$here" | sort -u)
  { go version
    # shellcheck disable=SC2086
    find go.mod go.sum build.sh $dirs -maxdepth 1 -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum -o -name build.sh \) -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
)
tag=$(IFS=+; echo "${bins[*]#pulumi-resource-}")
marker=$root/markers/$tag-$hash

exec 9>"$root/.lock"
flock 9

ok=1
for b in "${bins[@]}"; do [ -x "$bin/$b" ] || ok=0; done
if [ "$ok" = 1 ] && [ -f "$marker" ]; then
  log "up to date (sources $hash): $bin — skipping build"
  exit 0
fi

start=$(date +%s)
log "building ${bins[*]} (sources $hash) into $bin"
tmp=$(mktemp -d "$root/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(
  cd "$here"
  for b in "${bins[@]}"; do
    log "go build ./cmd/$b"
    go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$tmp/$b" "./cmd/$b"
  done
)
for b in "${bins[@]}"; do
  "$tmp/$b" --version | grep -q 'LAB-ONLY' || { log "$b --version lacks the lab-only notice"; exit 1; }
  mv -f "$tmp/$b" "$bin/$b"
done
rm -f "$root/markers/$tag"-*
: >"$marker"
for b in "${bins[@]}"; do log "$("$bin/$b" --version)"; done
log "done in $(( $(date +%s) - start ))s; use: PATH=$bin:\$PATH"
