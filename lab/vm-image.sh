#!/usr/bin/env bash
# Build (once) what the lab's virtual-machine hosts boot (WG_RELAY_LAB_HOSTS=vm; lab/README.md, "VM hosts"):
# a Debian 13 (trixie) root filesystem for one architecture (amd64: the relay; arm64: the Pi) as a fresh image
# holds it, Debian's own kernel and a small initramfs beside it, and a partial Debian mirror with what the
# program's apt step installs.
#
#   lab/vm-image.sh [--arch amd64|arm64]          build if missing, print the image folder on stdout
#   lab/vm-image.sh [--arch amd64|arm64] --path   print the image folder only (no build, exit 1 if missing)
#
# A foreign architecture's image (arm64 here) is debootstrapped and tweaked in a chroot whose programs run under
# qemu-user-static (binfmt_misc, registered here when missing).
#
# Cached outside the checkout, keyed by a hash of the package lists, this script's settings and tweaks, and the
# packages the program installs (hostPackages in components/host/host.ts):
#   ${WG_RELAY_CACHE:-/var/cache/wg-relay}/vm-image/trixie-<arch>-<hash>/
#     rootfs/                 the image (hosts.sh makes each VM's disk from it with mkfs.ext4 -d)
#     vmlinuz, initrd.img     Debian's kernel and its initramfs (virtio modules only), booted by QEMU directly
#     mirror/debian/          Debian's own signed InRelease and Packages.xz of trixie main <arch> (the snapshot the
#                             image was built from) and the .deb files the program's apt step needs, at their pool
#                             paths: served by the lab's internet namespace, verified by the image's own
#                             debian-archive-keyring as a real mirror would be
#
# Not in the image (the program installs them): wireguard-tools, iptables, curl. Lab-only tweaks: apt sources
# on the lab's mirror, apt's first-boot jobs started a few seconds after boot (a fresh cloud image's
# unattended-upgrades holding the dpkg lock), sshd keys only. Env: WG_RELAY_CACHE, WG_RELAY_DEBIAN_MIRROR.
set -euo pipefail

ARCH=amd64
if [[ ${1:-} == --arch ]]; then
  ARCH=${2:-}
  shift 2 || true
fi
case $ARCH in
  amd64 | arm64) ;;
  *) echo "vm-image.sh: --arch amd64 or arm64, not '$ARCH'" >&2; exit 2 ;;
esac
SUITE=trixie
VARIANT=minbase
# What a provider's fresh Debian image holds, and no more (no wireguard-tools, iptables, curl).
PACKAGES=(
  systemd systemd-sysv dbus udev kmod iproute2 procps openssh-server sudo ca-certificates
  unattended-upgrades initramfs-tools "linux-image-$ARCH"
)
# The lab's mirror is served on the internet namespace's router address (lab/hosts.sh), one tree per architecture:
# each image's mirror holds the signed InRelease its own debootstrap fetched.
LAB_MIRROR_URL=http://198.51.100.1/debian/$ARCH
UPSTREAM=${WG_RELAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${WG_RELAY_CACHE:-/var/cache/wg-relay}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/image-sshd.sh
source "$HERE/image-sshd.sh"
REPO=$(cd "$HERE/.." && pwd)

# The Debian packages the program installs on every host: the one list, hostPackages in components/host/host.ts.
read -r -a MIRROR_PACKAGES <<<"$(sed -n 's/^export const hostPackages = \[\(.*\)\];$/\1/p' "$REPO/components/host/host.ts" | tr -d '"' | tr ',' ' ')"
((${#MIRROR_PACKAGES[@]})) || { echo "vm-image.sh: hostPackages not found in components/host/host.ts" >&2; exit 1; }
# The roaming client's failover adds iputils-ping (components/roamingClient.ts).
MIRROR_PACKAGES+=(iputils-ping)

# Everything below writes into the fresh rootfs ($1). Its text is part of the cache key.
apply_tweaks() {
  local r=$1
  printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$r/etc/fstab"
  # A small initramfs: QEMU's virtio disk and NIC only (Debian's default, MODULES=most, is several times larger,
  # and TCG spends seconds unpacking it).
  printf 'MODULES=list\n' >"$r/etc/initramfs-tools/conf.d/lab-vm.conf"
  printf '%s\n' virtio_pci virtio_blk virtio_net ext4 >>"$r/etc/initramfs-tools/modules"
  chroot "$r" update-initramfs -u -k all >/dev/null
  # The network: systemd-networkd (hosts.sh writes each VM's .network file for ens3).
  chroot "$r" systemctl enable --quiet systemd-networkd.service
  lab_sshd_config "$r"
  printf 'LANG=C.UTF-8\n' >"$r/etc/default/locale"
  : >"$r/etc/machine-id"
  # apt: Debian's trixie main from the lab's mirror (Debian's signature, checked with the image's keyring).
  rm -f "$r/etc/apt/sources.list"
  cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $LAB_MIRROR_URL
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # unattended-upgrades on, as Debian's cloud images have it; its jobs run right after boot (not at a random
  # time of day), so the program's apt step meets the dpkg lock held as on a fresh VPS's first minutes.
  printf 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\nAPT::Periodic::RandomSleep "0";\n' \
    >"$r/etc/apt/apt.conf.d/20auto-upgrades"
  local t
  for t in apt-daily apt-daily-upgrade; do
    mkdir -p "$r/etc/systemd/system/$t.timer.d"
    printf '[Timer]\nOnBootSec=5s\nRandomizedDelaySec=0\n' >"$r/etc/systemd/system/$t.timer.d/lab-first-boot.conf"
  done
  # No DNS in the lab.
  rm -f "$r/etc/resolv.conf"
  printf '# wg-relay lab: no DNS server in the lab\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$r/etc/resolv.conf"
  mkdir -p "$r/etc/systemd/system.conf.d"
  printf '[Manager]\nDefaultTimeoutStopSec=10s\n' >"$r/etc/systemd/system.conf.d/lab.conf"
  rm -rf "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*_Packages "$r"/var/lib/apt/lists/*Release
}

# The partial mirror: Debian's InRelease and Packages.xz that the rootfs's apt used, and the .deb files (with the
# dependencies the image lacks) that `apt-get install MIRROR_PACKAGES` in the image would fetch, checked against
# the SHA-256 that the signed index gives.
build_mirror() {
  local r=$1 m=$2 lists inrelease url file sha
  lists=$r/var/lib/apt/lists
  inrelease=$(ls "$lists"/*_dists_"${SUITE}"_InRelease)
  mkdir -p "$m/debian/dists/$SUITE"
  cp "$inrelease" "$m/debian/dists/$SUITE/InRelease"
  # The indexes apt fetches (packages, and the English descriptions: a missing one fails `apt-get update`), each
  # as the signed InRelease names it, at its path and its by-hash path, as Debian's mirrors serve them.
  local index path dir hash
  for index in "main/binary-$ARCH/Packages" main/i18n/Translation-en; do
    for path in "$index.xz" "$index.bz2"; do
      hash=$(awk -v f="$path" '/^SHA256:/ { s = 1; next } /^[A-Za-z]/ { s = 0 } s && $3 == f { print $1 }' "$inrelease")
      [[ -n $hash ]] && break
    done
    [[ -n $hash ]] || { echo "vm-image.sh: no $index in $inrelease" >&2; return 1; }
    dir=$m/debian/dists/$SUITE/$(dirname "$path")
    mkdir -p "$dir/by-hash/SHA256"
    curl -fsS -o "$dir/by-hash/SHA256/$hash" "$UPSTREAM/dists/$SUITE/$(dirname "$path")/by-hash/SHA256/$hash"
    echo "$hash  $dir/by-hash/SHA256/$hash" | sha256sum --quiet -c - || { echo "vm-image.sh: digest mismatch for $path" >&2; return 1; }
    ln "$dir/by-hash/SHA256/$hash" "$m/debian/dists/$SUITE/$path"
  done
  chroot "$r" apt-get install --print-uris -y -qq --no-install-recommends "${MIRROR_PACKAGES[@]}" >"$m/uris"
  # The .deb files' SHA-256 from the signed index (--print-uris gives only MD5).
  awk '/^Filename: / { f = $2 } /^SHA256: / { print f, $2 }' "$lists"/*_dists_"${SUITE}"_main_binary-"${ARCH}"_Packages >"$m/sha256"
  while read -r url _; do
    url=${url//\'/}
    file=${url#"$UPSTREAM"/}
    file=$(printf '%b' "${file//%/\\x}")   # the URI is percent-encoded (+ is %2b)
    [[ $file == pool/* ]] || { echo "vm-image.sh: unexpected URI $url" >&2; return 1; }
    sha=$(awk -v f="$file" '$1 == f { print $2 }' "$m/sha256")
    [[ -n $sha ]] || { echo "vm-image.sh: $file is not in the index" >&2; return 1; }
    mkdir -p "$m/debian/$(dirname "$file")"
    curl -fsS -o "$m/debian/$file" "$url"
    echo "$sha  $m/debian/$file" | sha256sum --quiet -c - || { echo "vm-image.sh: digest mismatch for $url" >&2; return 1; }
  done <"$m/uris"
}

# Two levels: the debootstrapped base with its mirror (minutes; keyed by packages and mirror recipe), and the image
# made from a copy of it with the tweaks (seconds), so a changed tweak does not download Debian again.
base_key() {
  {
    printf 'suite=%s\narch=%s\nvariant=%s\nupstream=%s\n' "$SUITE" "$ARCH" "$VARIANT" "$UPSTREAM"
    printf 'pkg=%s\n' "${PACKAGES[@]}"
  } | sha256sum | cut -c1-12
}
BASE_DIR="$CACHE/vm-image/base-$SUITE-$ARCH-$(base_key)"
MIRROR_DIR="$BASE_DIR/mirror-$( { printf 'mirror-pkg=%s\n' "${MIRROR_PACKAGES[@]}"; declare -f build_mirror; } | sha256sum | cut -c1-12)"
IMAGE_DIR="$CACHE/vm-image/$SUITE-$ARCH-$( { echo "${MIRROR_DIR#"$CACHE"/}"; echo "$LAB_MIRROR_URL"; declare -f apply_tweaks lab_sshd_config; } | sha256sum | cut -c1-12)"

if [[ ${1:-} == --path ]]; then
  echo "$IMAGE_DIR"
  [[ -d $IMAGE_DIR/rootfs ]]
  exit
fi
[[ $(id -u) == 0 ]] || { echo "vm-image.sh: must run as root" >&2; exit 1; }
# A foreign architecture's programs in the chroot run under qemu-user-static: its binfmt_misc entry, with the F
# flag (the interpreter opened now, so the chroot needs no copy of it). Also for a cached image: lab/hosts.sh
# makes each VM's /etc in a chroot of it.
if [[ $ARCH != "$(dpkg --print-architecture)" ]]; then
  qemu_arch=${ARCH/arm64/aarch64}
  [[ -e /usr/lib/binfmt.d/qemu-$qemu_arch.conf ]] || { echo "vm-image.sh: the $ARCH image needs qemu-user-static (apt-get install qemu-user-static)" >&2; exit 1; }
  [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [[ -e /proc/sys/fs/binfmt_misc/qemu-$qemu_arch ]] || cat "/usr/lib/binfmt.d/qemu-$qemu_arch.conf" >/proc/sys/fs/binfmt_misc/register
fi
if [[ -d $IMAGE_DIR/rootfs ]]; then
  echo "$IMAGE_DIR"
  exit 0
fi

command -v debootstrap >/dev/null || { echo "vm-image.sh: debootstrap not installed (apt-get install debootstrap)" >&2; exit 1; }
mkdir -p "$CACHE/vm-image"
exec 9>"$CACHE/vm-image/.lock"
flock 9
if [[ -d $IMAGE_DIR/rootfs ]]; then
  echo "$IMAGE_DIR"
  exit 0
fi

t0=$(date +%s.%N)
if [[ ! -d $BASE_DIR/rootfs ]]; then
  tmp=$(mktemp -d "$CACHE/vm-image/.build.XXXXXX")
  trap 'rm -rf --one-file-system "$tmp"' EXIT
  include=$(IFS=,; echo "${PACKAGES[*]}")
  echo "vm-image.sh: debootstrap $SUITE $ARCH ($VARIANT) into $tmp ..." >&2
  debootstrap --arch="$ARCH" --variant="$VARIANT" --include="$include" "$SUITE" "$tmp/rootfs" "$UPSTREAM" \
    >"$tmp/debootstrap.log" 2>&1 || {
      echo "vm-image.sh: debootstrap failed; last lines of its log:" >&2
      tail -n 30 "$tmp/debootstrap.log" >&2
      exit 1
    }
  # apt's view of the snapshot the image was built from, for the mirror (resolv.conf is the build machine's here).
  printf 'deb %s %s main\n' "$UPSTREAM" "$SUITE" >"$tmp/rootfs/etc/apt/sources.list"
  chroot "$tmp/rootfs" apt-get update -qq
  mkdir -p "$BASE_DIR"
  mv "$tmp/debootstrap.log" "$BASE_DIR/"
  mv "$tmp/rootfs" "$BASE_DIR/rootfs"
  rm -rf --one-file-system "$tmp"
  trap - EXIT
fi
if [[ ! -d $MIRROR_DIR ]]; then
  tmp=$(mktemp -d "$CACHE/vm-image/.build.XXXXXX")
  trap 'rm -rf --one-file-system "$tmp"' EXIT
  build_mirror "$BASE_DIR/rootfs" "$tmp/mirror"
  mv "$tmp/mirror" "$MIRROR_DIR"
  rm -rf --one-file-system "$tmp"
  trap - EXIT
fi
t1=$(date +%s.%N)
tmp=$(mktemp -d "$CACHE/vm-image/.build.XXXXXX")
trap 'umount "$tmp/rootfs/proc" 2>/dev/null || true; rm -rf --one-file-system "$tmp"' EXIT
cp -a "$BASE_DIR/rootfs" "$tmp/rootfs"
mount -t proc proc "$tmp/rootfs/proc"
apply_tweaks "$tmp/rootfs"
umount "$tmp/rootfs/proc"
cp "$(find "$tmp/rootfs/boot" -name "vmlinuz-*" | sort -V | tail -n1)" "$tmp/vmlinuz"
cp "$(find "$tmp/rootfs/boot" -name "initrd.img-*" | sort -V | tail -n1)" "$tmp/initrd.img"
cp -al "$MIRROR_DIR" "$tmp/mirror"
mkdir -p "$IMAGE_DIR"
mv "$tmp/mirror" "$tmp/vmlinuz" "$tmp/initrd.img" "$IMAGE_DIR/"
mv "$tmp/rootfs" "$IMAGE_DIR/rootfs"
rmdir "$tmp"
trap - EXIT
t2=$(date +%s.%N)
awk -v r="$IMAGE_DIR" -v s="$(du -sh --one-file-system "$IMAGE_DIR" | cut -f1)" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "vm-image.sh: built %s (%s): debootstrap and mirror %.1fs, image %.1fs\n", r, s, b - a, c - b }' >&2
echo "$IMAGE_DIR"
