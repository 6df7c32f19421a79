#!/bin/bash
# wstunnel-install: puts the wanted wstunnel binary in place, verified by SHA-256, and restarts UNITS (a unit, or
# several separated by commas: a wstunnel client per relay; each if it runs) only when it installed a new one. The old binary stays unless the new one verifies. Installed by wg-relay as it is.
#
#   wstunnel-install UNITS TARGET MARKER download VERSION BASE_URL AMD64_SHA256 ARM64_SHA256 ARMV7_SHA256 ARMV6_SHA256
#   wstunnel-install UNITS TARGET MARKER upload FILE SHA256
#
# download: fetches BASE_URL/vVERSION/wstunnel_VERSION_linux_ARCH.tar.gz (GitHub's release layout) for this host's
# architecture; an empty digest means none was configured for that architecture. MARKER keeps the digest of the
# archive the installed binary came from, so an unchanged release is not fetched again.
# upload: installs FILE, already copied to the host, when its digest is SHA256.
set -euo pipefail

if [ $# -lt 4 ]; then
    echo "usage: wstunnel-install UNITS TARGET MARKER download VERSION BASE_URL AMD64 ARM64 ARMV7 ARMV6 | upload FILE SHA256" >&2
    exit 2
fi
units=$1 target=$2 marker=$3 mode=$4
shift 4

digest() { sha256sum "$1" | cut -d' ' -f1; }

install_verified() { # FILE: put it in place atomically, then restart the services that run it
    local unit
    install -m 0755 "$1" "$target.new"
    chown root:root "$target.new"
    mv -f "$target.new" "$target"
    for unit in ${units//,/ }; do
        if systemctl is-active --quiet "$unit"; then
            systemctl restart "$unit"
        fi
    done
}

case "$mode" in
upload)
    file=$1 want=$2
    if [ -x "$target" ] && [ "$(digest "$target")" = "$want" ]; then
        rm -f "$file"
        echo "wstunnel-install: the uploaded binary ($want) is installed already"
        exit 0
    fi
    got=$(digest "$file")
    if [ "$got" != "$want" ]; then
        echo "wstunnel-install: SHA-256 mismatch for uploaded $file: expected $want, got $got; keeping the installed binary" >&2
        exit 1
    fi
    install_verified "$file"
    rm -f "$file" "$marker"
    echo "wstunnel-install: installed uploaded binary ($want)"
    ;;
download)
    version=$1 base_url=$2
    case "$(uname -m)" in
        x86_64) arch=amd64 want=$3 ;;
        aarch64 | arm64) arch=arm64 want=$4 ;;
        armv7*) arch=armv7 want=$5 ;;
        armv6*) arch=armv6 want=$6 ;;
        *)
            echo "wstunnel-install: unsupported architecture $(uname -m)" >&2
            exit 1
            ;;
    esac
    if [ -z "$want" ]; then
        echo "wstunnel-install: no SHA-256 configured for wstunnel $version on $arch (set wg-relay:wstunnel.sha256.$arch from the release's checksums.txt)" >&2
        exit 1
    fi
    if [ -x "$target" ] && [ "$(cat "$marker" 2>/dev/null)" = "$want" ]; then
        echo "wstunnel-install: wstunnel $version ($arch) is installed already"
        exit 0
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    asset="wstunnel_${version}_linux_$arch.tar.gz"
    curl --fail --silent --show-error --location --proto '=https,http' --retry 3 -o "$work/$asset" "$base_url/v$version/$asset"
    got=$(digest "$work/$asset")
    if [ "$got" != "$want" ]; then
        echo "wstunnel-install: SHA-256 mismatch for $asset: expected $want, got $got; keeping the installed binary" >&2
        exit 1
    fi
    tar -xzf "$work/$asset" -C "$work" wstunnel
    install_verified "$work/wstunnel"
    mkdir -p "$(dirname "$marker")"
    echo "$want" >"$marker"
    echo "wstunnel-install: installed wstunnel $version ($arch)"
    ;;
*)
    echo "wstunnel-install: unknown mode '$mode' (download or upload)" >&2
    exit 2
    ;;
esac
