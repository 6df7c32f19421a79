// Scripts installed on hosts under /usr/local/lib/wg-relay/. Bash, because both rely on process substitution.
import { stateDir, wireguardDir, wstunnelBinaryPath, wstunnelReleaseMarkerPath } from "./paths";

/**
 * wg-apply IFACE [--key-changed]: brings /etc/wireguard/IFACE.conf (or, with --key-changed, a new private key)
 * into effect with the least disruption.
 * Peers-only changes go through `wg syncconf` without restarting the interface. syncconf treats what
 * it is not given as unset, and the private key lives in its own file, so the key is fed back in
 * beside the stripped config (read by builtins only: it never appears in a process's arguments).
 * The same holds for preshared keys. Changes to the [Interface] part (address, port, MTU, hooks) need wg-quick
 * to restart the interface.
 */
export function renderWgApplyScript(): string {
    return `#!/bin/bash
# Managed by wg-relay.
set -euo pipefail
iface="$1"
conf="${wireguardDir}/$iface.conf"
key="${wireguardDir}/$iface.key"
applied="${stateDir}/$iface.applied.conf"
unit="wg-quick@$iface.service"

if [ "\${2:-}" = "--key-changed" ]; then
    # A new private key takes effect at once; peers kept alive handshake with it now rather than at their
    # next keepalive (switching a keepalive on sends one at once).
    if systemctl is-active --quiet "$unit"; then
        wg set "$iface" private-key "$key"
        wg show "$iface" persistent-keepalive | while read -r peer interval; do
            if [ "$interval" != off ]; then
                wg set "$iface" peer "$peer" persistent-keepalive off
                wg set "$iface" peer "$peer" persistent-keepalive "$interval"
            fi
        done
    fi
    exit 0
fi

# What only a restart applies: the [Interface] part, without the preshared-key hooks (syncconf applies those).
interface_part() { sed -e '/^\\[Peer\\]/,$d' -e '/^PostUp = wg set %i peer [^ ]* preshared-key /d' "$1"; }

mkdir -p "${stateDir}"
systemctl enable --quiet "$unit"
if ! systemctl is-active --quiet "$unit"; then
    echo "wg-apply: starting $iface"
    systemctl restart "$unit"
elif [ ! -f "$applied" ] || [ "$(interface_part "$conf")" != "$(interface_part "$applied")" ]; then
    echo "wg-apply: interface settings changed, restarting $iface"
    systemctl restart "$unit"
else
    echo "wg-apply: syncing peers of $iface without a restart"
    # Preshared keys live in files too (set by "PostUp = wg set %i peer KEY preshared-key FILE"): put each back
    # under its peer, read by awk from the file.
    wg syncconf "$iface" <(
        printf '[Interface]\\nPrivateKey = %s\\n' "$(<"$key")"
        wg-quick strip "$iface" | awk -v conf="$conf" '
            BEGIN {
                while ((getline line < conf) > 0)
                    if (line ~ /^PostUp = wg set %i peer [^ ]+ preshared-key [^ ]+$/) { split(line, word, " "); file[word[7]] = word[9] }
            }
            { print }
            /^PublicKey = / && ($3 in file) { getline psk < file[$3]; print "PresharedKey = " psk }'
    )
    # syncconf does not touch routes. With a full tunnel wg-quick routes through a table of its own (fwmark);
    # otherwise route every allowed network into the interface and drop the routes of removed ones.
    if [ "$(wg show "$iface" fwmark)" = "off" ]; then
        wanted=$(wg show "$iface" allowed-ips | cut -f2- | tr ' \\t' '\\n\\n' | grep -v '^(none)$' | grep . | sort -u || true)
        for net in $wanted; do ip -4 route replace "$net" dev "$iface"; done
        for net in $(ip -4 -o route show dev "$iface" proto boot | cut -d' ' -f1); do
            case $'\\n'"$wanted"$'\\n' in *$'\\n'"$net"$'\\n'*) ;; *) ip -4 route del "$net" dev "$iface" ;; esac
        done
    fi
fi
install -m 0600 "$conf" "$applied"
`;
}

export interface WstunnelInstallSpec {
    version: string;
    /** Base URL of release assets; the asset path is appended as on GitHub: v<version>/<asset>. */
    baseUrl: string;
    /** Per Debian-style architecture name (amd64, arm64, armv7). */
    sha256: Partial<Record<"amd64" | "arm64" | "armv7", string>>;
}

/**
 * wstunnel-install UNIT [--local FILE SHA256]: installs the pinned wstunnel release for this host's architecture,
 * verified by SHA-256, or a binary already uploaded. The old binary stays unless the new one verifies. It does
 * nothing when the wanted binary is already installed, and restarts UNIT (if running) only when it installed one.
 */
export function renderWstunnelInstallScript(spec: WstunnelInstallSpec): string {
    const checksums = (["amd64", "arm64", "armv7"] as const)
        .map((arch) => `    ${arch}) want="${spec.sha256[arch] ?? ""}" ;;`)
        .join("\n");
    return `#!/bin/bash
# Managed by wg-relay.
set -euo pipefail
target="${wstunnelBinaryPath}"
# The digest of the release archive the installed binary came from.
installed_release="${wstunnelReleaseMarkerPath}"
unit="$1"
shift

install_verified() { # FILE: put it in place atomically, then restart the service that runs it
    install -m 0755 -o root -g root "$1" "$target.new"
    mv -f "$target.new" "$target"
    if systemctl is-active --quiet "$unit"; then systemctl restart "$unit"; fi
}

if [ "\${1:-}" = "--local" ]; then
    file="$2" want="$3"
    if [ -x "$target" ] && [ "$(sha256sum "$target" | cut -d' ' -f1)" = "$want" ]; then
        rm -f "$file"
        echo "wstunnel-install: the uploaded binary ($want) is installed already"
        exit 0
    fi
    got=$(sha256sum "$file" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
        echo "wstunnel-install: SHA-256 mismatch for uploaded $file: expected $want, got $got; keeping the installed binary" >&2
        exit 1
    fi
    install_verified "$file"
    rm -f "$file" "$installed_release"
    echo "wstunnel-install: installed uploaded binary ($want)"
    exit 0
fi

case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    armv7l|armv7*) arch=armv7 ;;
    *) echo "wstunnel-install: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
case "$arch" in
${checksums}
esac
if [ -z "$want" ]; then
    echo "wstunnel-install: no SHA-256 configured for wstunnel ${spec.version} on $arch (set wg-relay:wstunnel.sha256.$arch from the release's checksums.txt)" >&2
    exit 1
fi
if [ -x "$target" ] && [ "$(cat "$installed_release" 2>/dev/null)" = "$want" ]; then
    echo "wstunnel-install: wstunnel ${spec.version} ($arch) is installed already"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
asset="wstunnel_${spec.version}_linux_$arch.tar.gz"
curl --fail --silent --show-error --location --proto '=https,http' --retry 3 -o "$work/$asset" "${spec.baseUrl}/v${spec.version}/$asset"
got=$(sha256sum "$work/$asset" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
    echo "wstunnel-install: SHA-256 mismatch for $asset: expected $want, got $got; keeping the installed binary" >&2
    exit 1
fi
tar -xzf "$work/$asset" -C "$work" wstunnel
install_verified "$work/wstunnel"
mkdir -p "$(dirname "$installed_release")"
echo "$want" > "$installed_release"
echo "wstunnel-install: installed wstunnel ${spec.version} ($arch)"
`;
}
