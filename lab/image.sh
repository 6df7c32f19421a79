#!/usr/bin/env bash
# Build (once) the Debian 12 root filesystem the lab's nspawn hosts boot from.
#
#   lab/image.sh           build if missing, print the rootfs path on stdout
#   lab/image.sh --path    print the rootfs path only (no build, exit 1 if missing)
#   lab/image.sh --prune   remove older images of the cache that no lab host uses
#
# The image lives outside the checkout, keyed by a hash of the package list and
# of this script's settings/tweaks, so fresh clones on the same machine reuse it:
#   ${WG_RELAY_CACHE:-/var/cache/wg-relay}/image/bookworm-<hash>/rootfs
# It is built into a temporary directory and renamed into place (atomic); an
# existing image is never modified (hosts use it read-only as an overlay lower).
#
# Lab-only content (never installed by the product on real hosts):
#   - wireguard-go (no WireGuard kernel module on the lab machine): the current one,
#     built from the Go module proxy by lab/toolchain.sh --wireguard-go (pinned there,
#     cached in $WG_RELAY_CACHE/built), in /usr/local/bin; not Debian's wireguard-go
#     0.0.20220316, which is several times slower. Its cache folder (a key of version,
#     hash, Go version and recipe) is part of this image's key. And the drop-in
#     /etc/systemd/system/wg-quick@.service.d/lab-wireguard-go.conf
#   - wireguard-tools is pre-installed: the lab namespaces have no route to the
#     package mirrors, so the product's "apt-get install wireguard-tools when
#     missing" step is a no-op in the lab.
#   - iputils-ping (debugging / smoke checks only).
# Env: WG_RELAY_CACHE, WG_RELAY_DEBIAN_MIRROR (default: debootstrap's default mirror).
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
PACKAGES=(
  systemd systemd-sysv dbus openssh-server iproute2 iptables
  wireguard-tools procps ca-certificates curl sudo less iputils-ping
)
MIRROR=${WG_RELAY_DEBIAN_MIRROR:-}   # empty: debootstrap's built-in default for $SUITE
CACHE=${WG_RELAY_CACHE:-/var/cache/wg-relay}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/image-sshd.sh
source "$HERE/image-sshd.sh"
WIREGUARD_GO_DIR=$(bash "$HERE/toolchain.sh" --wireguard-go-dir)

# Units that cannot work (or are pointless) inside an nspawn container with no
# console tty, no udev and no route to the mirrors.
MASK_UNITS=(
  getty.target getty@.service serial-getty@.service console-getty.service container-getty@.service
  systemd-networkd-wait-online.service
  apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
  e2scrub_all.timer e2scrub_reap.service fstrim.timer
  systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
  systemd-journald-audit.socket
  systemd-timesyncd.service
  systemd-firstboot.service
)

# Everything below writes into the fresh rootfs ($1). Its text is part of the
# cache key, so changing a tweak builds a new image.
apply_tweaks() {
  local r=$1
  # wireguard-go for wg-quick (lab only: there is no kernel module).
  install -m 0755 "$WIREGUARD_GO_DIR/wireguard-go" "$r/usr/local/bin/wireguard-go"
  mkdir -p "$r/etc/systemd/system/wg-quick@.service.d"
  cat >"$r/etc/systemd/system/wg-quick@.service.d/lab-wireguard-go.conf" <<'EOF'
# wg-relay lab image only: no WireGuard kernel module on the lab machine.
[Service]
Environment=WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
EOF
  lab_sshd_config "$r"
  # Locale-free defaults (C.UTF-8 is built into glibc; no locales package).
  printf 'LANG=C.UTF-8\n' >"$r/etc/default/locale"
  printf 'LANG=C.UTF-8\n' >"$r/etc/locale.conf"
  # Each host gets its own machine-id (hosts.sh writes it).
  : >"$r/etc/machine-id"
  rm -f "$r/var/lib/dbus/machine-id"
  ln -s /etc/machine-id "$r/var/lib/dbus/machine-id"
  # Units that do not work in a container.
  local u
  for u in "${MASK_UNITS[@]}"; do ln -sfn /dev/null "$r/etc/systemd/system/$u"; done
  # No DNS in the lab: do not point the hosts at the build machine's resolver
  # (debootstrap copied it); lookups fail fast on loopback.  Names go in /etc/hosts.
  rm -f "$r/etc/resolv.conf"
  printf '# wg-relay lab: no DNS server in the lab\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$r/etc/resolv.conf"
  # Journal in memory: nothing to keep after a lab host stops.
  mkdir -p "$r/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' >"$r/etc/systemd/journald.conf.d/lab.conf"
  # Quieter, faster shutdown of the lab hosts.
  mkdir -p "$r/etc/systemd/system.conf.d"
  printf '[Manager]\nDefaultTimeoutStopSec=10s\nShowStatus=no\n' >"$r/etc/systemd/system.conf.d/lab.conf"
  # Smaller image: apt lists and package cache are not usable from the lab anyway.
  rm -rf "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*_Packages
  # Debian's apt sources stay as debootstrap wrote them (unreachable from the lab).
}

settings_key() {
  {
    printf 'suite=%s\nvariant=%s\nmirror=%s\n' "$SUITE" "$VARIANT" "$MIRROR"
    printf 'pkg=%s\n' "${PACKAGES[@]}"
    printf 'mask=%s\n' "${MASK_UNITS[@]}"
    printf 'wireguard-go=%s\n' "${WIREGUARD_GO_DIR##*/}"
    declare -f apply_tweaks lab_sshd_config
  } | sha256sum | cut -c1-12
}

IMAGE_DIR="$CACHE/image/$SUITE-$(settings_key)"
ROOTFS="$IMAGE_DIR/rootfs"

if [[ ${1:-} == --prune ]]; then
  # remove other images of this cache that no overlay mount uses as its lower
  for d in "$CACHE"/image/*/; do
    d=${d%/}
    [[ $d == "$IMAGE_DIR" ]] && continue
    if grep -qF "lowerdir=$d/rootfs" /proc/mounts; then
      echo "image.sh: keeping $d (in use)" >&2
    else
      echo "image.sh: removing $d" >&2
      rm -rf --one-file-system "$d"
    fi
  done
  exit 0
fi

if [[ ${1:-} == --path ]]; then
  echo "$ROOTFS"
  [[ -d $ROOTFS ]]
  exit
fi

if [[ -d $ROOTFS ]]; then
  echo "$ROOTFS"
  exit 0
fi

[[ $(id -u) == 0 ]] || { echo "image.sh: must run as root" >&2; exit 1; }
bash "$HERE/toolchain.sh" --wireguard-go >/dev/null
command -v debootstrap >/dev/null || { echo "image.sh: debootstrap not installed (apt-get install debootstrap)" >&2; exit 1; }

mkdir -p "$IMAGE_DIR"
exec 9>"$IMAGE_DIR/.lock"
flock 9
if [[ -d $ROOTFS ]]; then   # built by someone else while we waited
  echo "$ROOTFS"
  exit 0
fi

t0=$(date +%s.%N)
tmp=$(mktemp -d "$IMAGE_DIR/.build.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
include=$(IFS=,; echo "${PACKAGES[*]}")
echo "image.sh: debootstrap $SUITE ($VARIANT) into $tmp ..." >&2
# shellcheck disable=SC2086
debootstrap --variant="$VARIANT" --include="$include" "$SUITE" "$tmp/rootfs" $MIRROR \
  >"$tmp/debootstrap.log" 2>&1 || {
    echo "image.sh: debootstrap failed; last lines of its log:" >&2
    tail -n 30 "$tmp/debootstrap.log" >&2
    exit 1
  }
t1=$(date +%s.%N)
apply_tweaks "$tmp/rootfs"
mv "$tmp/debootstrap.log" "$IMAGE_DIR/debootstrap.log"
mv "$tmp/rootfs" "$ROOTFS"
rmdir "$tmp"
trap - EXIT
t2=$(date +%s.%N)
size=$(du -sh --one-file-system "$ROOTFS" | cut -f1)
awk -v r="$ROOTFS" -v s="$size" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "image.sh: built %s (%s): debootstrap %.1fs, tweaks %.1fs, total %.1fs\n", r, s, b - a, c - b, c - a }' >&2
echo "$ROOTFS"
