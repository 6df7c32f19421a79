#!/usr/bin/env bash
# LAB-ONLY: runs the real Pulumi CLI (up / no-change preview / targeted replace /
# refresh / destroy) on a throwaway Node program against the stand-in random/tls
# plugins built by build.sh. Never a real deployment. Needs the lab's Pulumi CLI
# (${WG_RELAY_CACHE}/pulumi-*/bin or PATH) and node/npm; skips (exit 0) without the
# CLI unless LAB_PROVIDERS_E2E_REQUIRED=1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${WG_RELAY_CACHE:-/var/cache/wg-relay}
log() { printf '[lab-providers e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
start=$(date +%s)

cli_dir=$(ls -d "$cache"/pulumi-*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$cli_dir" ] && [ -x "$cli_dir/pulumi" ] || cli_dir=$(dirname "$(command -v pulumi 2>/dev/null || echo /nonexistent/pulumi)")
if [ ! -x "$cli_dir/pulumi" ]; then
  log "no Pulumi CLI found; skipping"
  [ "${LAB_PROVIDERS_E2E_REQUIRED:-0}" = 1 ] && exit 1 || exit 0
fi
node_dir=$(ls -d "$cache"/node-*/bin 2>/dev/null | sort -V | tail -1 || true)

"$here/build.sh"
work=$(mktemp -d /tmp/lab-providers-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$here"/e2e/{Pulumi.yaml,package.json,index.js,check.js} "$work/"
cd "$work"
export PATH="$cache/lab-providers/bin:$cli_dir${node_dir:+:$node_dir}:$PATH"
export PULUMI_HOME="$work/.pulumi-home" PULUMI_BACKEND_URL="file://$work/.state" PULUMI_CONFIG_PASSPHRASE=lab-only
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
mkdir -p .state
log "pulumi $(pulumi version), node $(node --version); npm install"
npm install --no-audit --no-fund --loglevel=error >/dev/null
pulumi stack init lab >/dev/null 2>&1

passed=0
step() { log "$1"; passed=$((passed + 1)); }
pulumi up --yes --non-interactive --skip-preview >up1.log 2>&1 || { cat up1.log; exit 1; }
pulumi stack output --show-secrets --json >out1.json
node check.js out1.json; step "up: 9 resources created, outputs verified"
pulumi preview --non-interactive --expect-no-changes >pre.log 2>&1 || { cat pre.log; exit 1; }
step "second preview: no changes"
pulumi config set hosts relay,rpi1
pulumi up --yes --non-interactive >up2.log 2>&1 || { cat up2.log; exit 1; }
grep -q 'random:index:RandomBytes psk replaced' up2.log || { cat up2.log; log "psk not replaced"; exit 1; }
if grep -Eq '(tls:index|RandomPassword).*replaced' up2.log; then cat up2.log; log "unexpected replacement"; exit 1; fi
pulumi stack output --show-secrets --json >out2.json
node check.js out2.json
node -e 'const a=require("./out1.json"),b=require("./out2.json");if(a.pskBase64===b.pskBase64||a.password!==b.password||a.cert!==b.cert)process.exit(1)'
step "keepers change: only RandomBytes replaced"
pulumi refresh --yes --non-interactive --expect-no-changes >ref.log 2>&1 || { cat ref.log; exit 1; }
step "refresh: no changes"
pulumi destroy --yes --non-interactive >destroy.log 2>&1 || { cat destroy.log; exit 1; }
step "destroy"
log "done in $(( $(date +%s) - start ))s"
echo "lab-providers e2e: $passed passed, 0 failed"
