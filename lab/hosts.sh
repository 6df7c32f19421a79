#!/usr/bin/env bash
# The wg-relay lab: network namespaces + systemd-nspawn hosts on one machine.
# Topology: lab/README.md.  Needs root, debootstrap, systemd-container,
# iproute2, iptables, openssh-client, python3 (or node) on the machine.
#
#   lab/hosts.sh up                     build/complete the lab (idempotent)
#   lab/hosts.sh down [--keep-keys|--purge]
#                                       stop and remove it (safe on a partial lab, re-runnable)
#                                       --keep-keys: keep each host's SSH host key for the next up
#                                       --purge:     also remove the operator key .lab/ssh
#   lab/hosts.sh status                 one line per namespace / host
#   lab/hosts.sh host stop HOST...      power a host off (power loss: links down, SIGKILL to its PID 1,
#                                       its kernel state reset; namespace and overlay kept)
#   lab/hosts.sh host start HOST...     boot it again as `up` does and wait for its sshd (no-op if running)
#   lab/hosts.sh host reset HOST...     a virtual machine host only: a hard reset from QEMU's monitor (the
#                                       reset button: no shutdown, the same disk boots again)
#
# WG_RELAY_LAB_SITES=2 (at `up`) adds a second relay (relay2) on the internet and a second site behind its own
# CG-NAT router (cgnat2, gateway rpi2, LAN host lanhost2 with an HTTP service): two more booted hosts. Once they
# exist, every command (down, status, host) includes them without the variable.
#
# WG_RELAY_LAB_GATEWAYS=5 (at `up`) adds four more gateway hosts on the home LAN, gw2..gw5 (for the bench's scale
# figure); like the second site, they stay part of the lab once they exist.
#
# WG_RELAY_LAB_HOSTS=vm (at `up`) makes the relay and rpi1 QEMU virtual machines (TCG) booting Debian 13 with
# Debian's own kernel from lab/vm-image.sh, instead of nspawn containers: the relay amd64, rpi1 arm64
# (qemu-system-aarch64 -M virt); same namespaces and addresses, each NIC a tap device bridged with the namespace's
# link. The relay's public interface is ens3, with 2001:db8:100::10 beside its IPv4 address. Once they exist,
# every command includes them without the variable.
#
# Every lab address lives inside the wgr-* namespaces; nothing is added to the
# root namespace.  Processes are tracked by PID files under .lab/hosts/ and
# stopped only by those PIDs.
# shellcheck disable=SC2016  # single-quoted snippets run by an inner bash/ssh on purpose
set -euo pipefail
# The lab's namespaces and machines are NAME-*: WG_RELAY_LAB_NAME (default wgr) lets two checkouts run a lab each.
LAB_NAME=${WG_RELAY_LAB_NAME:-wgr}
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAB=$REPO/.lab
SSHDIR=$LAB/ssh
HOSTSDIR=$LAB/hosts
KEY=$SSHDIR/id_ed25519
KNOWN=$SSHDIR/known_hosts
BOOT_TIMEOUT=${WG_RELAY_LAB_BOOT_TIMEOUT:-180}
# A TCG virtual machine's first boot took over 180 s to sshd on this 2-core machine under load, the arm64 Pi's
# (every instruction translated from a foreign set) 11 min beside the relay's (lab/README.md).
VM_BOOT_TIMEOUT=${WG_RELAY_LAB_VM_BOOT_TIMEOUT:-1200}

NAMESPACES=(inet relay cgnat rpi1 lanhost hotel laptop op side)
ROUTERS=(inet cgnat hotel)
HOSTS=(relay rpi1 laptop)
declare -A H_USER=([relay]=ops [rpi1]=pi [laptop]=root)
declare -A H_ADDR=([relay]=198.51.100.10 [rpi1]=192.168.1.130 [laptop]=10.254.1.2)

# veth pairs: "nsA devA nsB devB"
LINKS=(
  "inet to-relay relay eth0"
  "inet to-cgnat cgnat wan"
  "inet to-hotel hotel wan"
  "inet to-op op up0"
  "cgnat lan-rpi1 rpi1 eth0"
  "cgnat lan-lanhost lanhost eth0"
  "cgnat lan-op op lan0"
  "hotel lan laptop eth0"
  "op mgmt0 laptop mgmt1"
  # The relay's second interface (test/e2e/hostile.test.ts): a port of its bridge br-side, with a host behind it.
  "relay side0 side eth0"
)
BRIDGE_PORTS=("cgnat lan-rpi1" "cgnat lan-lanhost" "cgnat lan-op")   # "router dev": on the router's br-lan
# addresses: "ns dev cidr"
ADDRS=(
  "inet to-relay 198.51.100.1/24"
  "inet to-cgnat 100.64.0.1/24"
  "inet to-hotel 203.0.113.1/24"
  "inet to-op 10.254.0.1/30"
  "relay eth0 198.51.100.10/24"
  # The relay is dual-stack on its public side, as many VPSes are (test/e2e/hostile.test.ts: WireGuard's port on IPv6).
  "inet to-relay 2001:db8:51::1/64"
  "relay eth0 2001:db8:51::10/64"
  # Two web servers on the internet side for test/e2e/hostile.test.ts, each logging who asked: a web site, and a
  # stand-in for a cloud provider's metadata service at its real address (the relay's default route leads here).
  "inet lo 198.18.0.80/32"
  "inet lo 169.254.169.254/32"
  "relay br-side 172.31.0.1/24"
  "side eth0 172.31.0.10/24"
  "cgnat wan 100.64.0.2/24"
  "cgnat br-lan 192.168.1.1/24"
  "rpi1 eth0 192.168.1.130/24"
  "lanhost eth0 192.168.1.20/24"
  # The home LAN's IPv6 (unique local) prefix, for IPv6 inside the tunnel (test/e2e/ipv6.test.ts).
  "cgnat br-lan fd00:192:168:1::1/64"
  "rpi1 eth0 fd00:192:168:1::130/64"
  "lanhost eth0 fd00:192:168:1::20/64"
  "hotel wan 203.0.113.2/24"
  "hotel lan 172.30.0.1/24"
  "laptop eth0 172.30.0.10/24"
  "laptop mgmt1 10.254.1.2/30"
  "op up0 10.254.0.2/30"
  "op lan0 192.168.1.250/24"
  "op mgmt0 10.254.1.1/30"
)
# default routes: "ns gateway"
DEFAULTS=(
  "relay 198.51.100.1"
  "cgnat 100.64.0.1"
  "rpi1 192.168.1.1"
  "lanhost 192.168.1.1"
  "hotel 203.0.113.1"
  "laptop 172.30.0.1"
  "op 10.254.0.1"
  "side 172.31.0.1"
)

log() { printf '[hosts.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
ns_exists() { [[ -e /run/netns/$LAB_NAME-$1 ]]; }

# The second site and relay (lab/README.md): asked for at `up`, or there already.
if [[ ${WG_RELAY_LAB_SITES:-1} == 2 ]] || ns_exists relay2 || ns_exists cgnat2; then
  NAMESPACES+=(relay2 cgnat2 rpi2 lanhost2)
  ROUTERS+=(cgnat2)
  HOSTS+=(relay2 rpi2)
  H_USER+=([relay2]=ops [rpi2]=pi)
  H_ADDR+=([relay2]=192.0.2.20 [rpi2]=192.168.2.130)
  LINKS+=(
    "inet to-relay2 relay2 eth0"
    "inet to-cgnat2 cgnat2 wan"
    "cgnat2 lan-rpi2 rpi2 eth0"
    "cgnat2 lan-lanhost2 lanhost2 eth0"
    "cgnat2 lan-op op lan2"
  )
  BRIDGE_PORTS+=("cgnat2 lan-rpi2" "cgnat2 lan-lanhost2" "cgnat2 lan-op")
  ADDRS+=(
    "inet to-relay2 192.0.2.1/24"
    "inet to-cgnat2 100.64.1.1/24"
    "relay2 eth0 192.0.2.20/24"
    "cgnat2 wan 100.64.1.2/24"
    "cgnat2 br-lan 192.168.2.1/24"
    "rpi2 eth0 192.168.2.130/24"
    "lanhost2 eth0 192.168.2.20/24"
    "op lan2 192.168.2.250/24"
  )
  DEFAULTS+=(
    "relay2 192.0.2.1"
    "cgnat2 100.64.1.1"
    "rpi2 192.168.2.1"
    "lanhost2 192.168.2.1"
  )
fi
# Four more gateways on the home LAN (`npm run bench` boots them for its scale figure; lab/README.md): gw2..gw5,
# each a gateway host like rpi1 (user pi), at 192.168.1.132..135.
if [[ ${WG_RELAY_LAB_GATEWAYS:-1} == 5 ]] || ns_exists gw2; then
  for i in 2 3 4 5; do
    NAMESPACES+=("gw$i")
    HOSTS+=("gw$i")
    H_USER+=(["gw$i"]=pi)
    H_ADDR+=(["gw$i"]=192.168.1.$((130 + i)))
    LINKS+=("cgnat lan-gw$i gw$i eth0")
    BRIDGE_PORTS+=("cgnat lan-gw$i")
    ADDRS+=("gw$i eth0 192.168.1.$((130 + i))/24")
    DEFAULTS+=("gw$i 192.168.1.1")
  done
fi
# The virtual-machine hosts (lab/README.md, "VM hosts"): asked for at `up`, or there already (their disk): the
# relay (Debian 13 amd64, as a VPS) and rpi1 (Debian 13 arm64, as a 64-bit Pi).
VM_HOSTS=()
for h in relay rpi1; do
  if [[ ${WG_RELAY_LAB_HOSTS:-} == vm ]] || [[ -e $HOSTSDIR/$h/disk.img ]]; then VM_HOSTS+=("$h"); fi
done
# A VM holds its host's addresses; the namespace only carries the wire (a bridge of eth0 and the tap).
for h in "${VM_HOSTS[@]}"; do
  for i in "${!ADDRS[@]}"; do [[ ${ADDRS[$i]} == "$h eth0 "* ]] && unset "ADDRS[$i]"; done
  for i in "${!DEFAULTS[@]}"; do [[ ${DEFAULTS[$i]} == "$h "* ]] && unset "DEFAULTS[$i]"; done
done
[[ " ${VM_HOSTS[*]} " != *" relay "* ]] || ADDRS+=("inet to-relay 2001:db8:100::1/64")
declare -A H_IFACE=()   # a host's public / LAN interface as its OS names it (eth0 unless listed)
declare -A VM_ADDRS=([relay]="198.51.100.10/24 2001:db8:100::10/64" [rpi1]="192.168.1.130/24 fd00:192:168:1::130/64")
declare -A VM_GATEWAYS=([relay]="198.51.100.1 2001:db8:100::1" [rpi1]="192.168.1.1")
# Each VM's architecture (lab/vm-image.sh --arch) and its NIC's name there: udev's name from the PCI slot (ens3 in
# slot 3 of the relay's `pc` machine, as on a KVM VPS; enp0s1 in slot 1 of the Pi's `virt` machine's PCIe bus).
declare -A VM_ARCH=([relay]=amd64 [rpi1]=arm64)
declare -A VM_IFACE=([relay]=ens3 [rpi1]=enp0s1)
for h in "${VM_HOSTS[@]}"; do H_IFACE[$h]=${VM_IFACE[$h]}; done
is_vm() { [[ " ${VM_HOSTS[*]} " == *" $1 "* ]]; }
routers_with_lan() { local port; for port in "${BRIDGE_PORTS[@]}"; do echo "${port%% *}"; done | sort -u; }
nsx() { local ns=$1; shift; ip netns exec "$LAB_NAME-$ns" "$@"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- processes
# A PID from one of our pid files counts as ours only while its command line
# still contains the marker we started it with (guards against PID reuse).
pid_alive_ours() { # pidfile marker -> echoes pid
  local f=$1 marker=$2 pid cmdline
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  pid_running "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$marker"* ]] || return 1
  echo "$pid"
}
pid_running() { # exists and is not a zombie waiting to be reaped (no fork: polled often)
  local st
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st=${st##*) }
  [[ -n $st && ${st:0:1} != Z && ${st:0:1} != X ]]
}

# The process that is the host: systemd-nspawn, or QEMU for a virtual machine host.
host_pid() { # host -> echoes pid
  if is_vm "$1"; then pid_alive_ours "$HOSTSDIR/$1/qemu.pid" "$HOSTSDIR/$1/disk.img"; else pid_alive_ours "$HOSTSDIR/$1/nspawn.pid" "$HOSTSDIR/$1/root"; fi
}
host_running() { host_pid "$1" >/dev/null; }

# The container's PID 1 (recorded in leader.pid). It counts as ours only while
# it is the init of a PID namespace and its root directory is our overlay mount.
# It can outlive a SIGKILLed nspawn (an orphaned container).
leader_alive_ours() { # host -> echoes pid
  local d=$HOSTSDIR/$1 pid
  [[ -s $d/leader.pid ]] || return 1
  pid=$(<"$d/leader.pid")
  [[ $pid =~ ^[0-9]+$ ]] && pid_running "$pid" || return 1
  grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$pid/status" 2>/dev/null || return 1
  mountpoint -q "$d/root" || return 1
  [[ $(stat -L -c %d:%i "/proc/$pid/root" 2>/dev/null) == "$(stat -L -c %d:%i "$d/root")" ]] || return 1
  echo "$pid"
}

wait_gone() { # seconds pid... : wait until none of the pids runs
  local n=$(($1 * 10)) p alive; shift
  while ((n-- > 0)); do
    alive=0
    for p in "$@"; do pid_running "$p" && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- network
net_up() {
  local ns a b c d dev cidr gw created=()
  for ns in "${NAMESPACES[@]}"; do
    if ! ns_exists "$ns"; then
      ip netns add "$LAB_NAME-$ns"
      created+=("$ns")
    fi
    ip -n "$LAB_NAME-$ns" link set lo up
  done
  # Forwarding is set on non-routers only when their namespace is created: the
  # product may turn it on inside relay/rpi1 and a re-run must not undo that.
  for ns in "${created[@]}"; do
    local v=0
    [[ " ${ROUTERS[*]} " == *" $ns "* ]] && v=1
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=$v
  done
  for ns in "${ROUTERS[@]}"; do
    [[ $(nsx "$ns" sysctl -n net.ipv4.ip_forward) == 1 ]] || nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
  done

  for ns in $(routers_with_lan); do
    ip -n "$LAB_NAME-$ns" link show br-lan >/dev/null 2>&1 || ip -n "$LAB_NAME-$ns" link add br-lan type bridge
  done
  for l in "${LINKS[@]}"; do
    read -r a b c d <<<"$l"
    if ! ip -n "$LAB_NAME-$a" link show "$b" >/dev/null 2>&1 || ! ip -n "$LAB_NAME-$c" link show "$d" >/dev/null 2>&1; then
      ip -n "$LAB_NAME-$a" link del "$b" 2>/dev/null || true
      ip -n "$LAB_NAME-$c" link del "$d" 2>/dev/null || true
      ip -n "$LAB_NAME-$a" link add "$b" type veth peer name "$d" netns "$LAB_NAME-$c"
    fi
  done
  for l in "${BRIDGE_PORTS[@]}"; do
    read -r ns dev <<<"$l"
    ip -n "$LAB_NAME-$ns" link set "$dev" master br-lan
  done
  # The relay's second interface: a bridge (as Docker's or a private network's), not its public one.
  ip -n "$LAB_NAME-relay" link show br-side >/dev/null 2>&1 || ip -n "$LAB_NAME-relay" link add br-side type bridge
  ip -n "$LAB_NAME-relay" link set side0 master br-side
  ip -n "$LAB_NAME-relay" link set br-side up
  for l in "${LINKS[@]}"; do
    read -r a b c d <<<"$l"
    ip -n "$LAB_NAME-$a" link set "$b" up
    ip -n "$LAB_NAME-$c" link set "$d" up
  done
  for ns in $(routers_with_lan); do ip -n "$LAB_NAME-$ns" link set br-lan up; done
  for h in "${VM_HOSTS[@]}"; do vm_wire_up "$h"; done
  for l in "${ADDRS[@]}"; do
    read -r ns dev cidr <<<"$l"
    if [[ $cidr == *:* ]]; then
      # nodad: usable at once, not "tentative" for a second or two. The listing is read whole before it is
      # matched: `ip | grep -q` under pipefail fails when grep quits before ip's second line (SIGPIPE).
      [[ $(ip -n "$LAB_NAME-$ns" -6 -o addr show dev "$dev") == *" inet6 $cidr "* ]] ||
        ip -n "$LAB_NAME-$ns" addr add "$cidr" dev "$dev" nodad
    else
      [[ $(ip -n "$LAB_NAME-$ns" -4 -o addr show dev "$dev") == *" inet $cidr "* ]] ||
        ip -n "$LAB_NAME-$ns" addr add "$cidr" dev "$dev"
    fi
  done
  for l in "${DEFAULTS[@]}"; do
    read -r ns gw <<<"$l"
    [[ $(ip -n "$LAB_NAME-$ns" -4 route show table main default) == *"default via $gw "* ]] ||
      ip -n "$LAB_NAME-$ns" route replace default via "$gw"
  done
  firewall_up
}

# ensure_chain NS TABLE CHAIN POLICY "rule" ...: when any rule is missing or the
# order could be wrong, flush the chain and append all rules in order.
ensure_chain() {
  local ns=$1 table=$2 chain=$3 policy=$4 r ok=1; shift 4
  local -a rule
  for r in "$@"; do
    read -r -a rule <<<"$r"
    nsx "$ns" iptables -w -t "$table" -C "$chain" "${rule[@]}" 2>/dev/null || { ok=0; break; }
  done
  if [[ $ok == 1 ]] && [[ $(nsx "$ns" iptables -w -t "$table" -S "$chain" | grep -c '^-A') == "$#" ]]; then
    :
  else
    nsx "$ns" iptables -w -t "$table" -F "$chain"
    for r in "$@"; do
      read -r -a rule <<<"$r"
      nsx "$ns" iptables -w -t "$table" -A "$chain" "${rule[@]}"
    done
  fi
  [[ $policy == - ]] || nsx "$ns" iptables -w -t "$table" -P "$chain" "$policy"
}

firewall_up() {
  local router
  # CG-NAT (each site's): masquerade out of wan; nothing NEW comes in from wan.
  for router in $(routers_with_lan); do
    ensure_chain "$router" nat POSTROUTING ACCEPT \
      "-o wan -j MASQUERADE"
    ensure_chain "$router" filter FORWARD ACCEPT \
      "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" \
      "-i wan -m conntrack --ctstate NEW -m comment --comment cgnat-drop-new-from-wan -j DROP" \
      "-i wan -m comment --comment cgnat-drop-other-from-wan -j DROP"
  done
  # Hotel: masquerade out of wan; UDP only to port 53; TCP only to web ports (80, 443).
  ensure_chain hotel nat POSTROUTING ACCEPT \
    "-o wan -j MASQUERADE"
  ensure_chain hotel filter FORWARD DROP \
    "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" \
    "-i lan -o wan -p udp -m udp --dport 53 -m comment --comment hotel-allow-dns -j ACCEPT" \
    "-i lan -o wan -p tcp -m multiport --dports 80,443 -m comment --comment hotel-allow-web -j ACCEPT" \
    "-p udp -m comment --comment hotel-drop-udp -j DROP" \
    "-m comment --comment hotel-drop-rest -j DROP"
}

net_down() {
  local ns pids
  for ns in "${NAMESPACES[@]}"; do
    ns_exists "$ns" || continue
    pids=$(ip netns pids "$LAB_NAME-$ns" 2>/dev/null | tr '\n' ' ' || true)
    [[ -z $pids ]] || log "warning: $LAB_NAME-$ns still has processes not started by hosts.sh (pids: $pids); deleting the name anyway"
    ip netns del "$LAB_NAME-$ns"
  done
}

# ---------------------------------------------------------------- operator key
ensure_operator_key() {
  mkdir -p "$SSHDIR"
  chmod 700 "$SSHDIR"
  if [[ ! -s $KEY ]]; then
    ssh-keygen -q -t ed25519 -N '' -C "wg-relay-lab-operator" -f "$KEY"
    log "generated operator key $KEY"
  fi
}

write_ssh_files() {
  local h tmp
  tmp=$(mktemp "$KNOWN.XXXXXX")
  for h in "${HOSTS[@]}"; do
    printf '%s %s\n' "${H_ADDR[$h]}" "$(host_pubkey "$h")" >>"$tmp"
  done
  mv "$tmp" "$KNOWN"
  tmp=$(mktemp "$SSHDIR/config.XXXXXX")
  {
    echo "# generated by lab/hosts.sh; use: ip netns exec $LAB_NAME-op ssh -F $SSHDIR/config relay|rpi1|laptop"
    for h in "${HOSTS[@]}"; do
      printf 'Host %s\n  HostName %s\n  User %s\n' "$h" "${H_ADDR[$h]}" "${H_USER[$h]}"
    done
    printf 'Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n' "$KEY" "$KNOWN"
    printf '  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n'
  } >"$tmp"
  mv "$tmp" "$SSHDIR/config"
}

# ssh from the operator namespace with the pinned host key
op_ssh() { # host cmd...
  local h=$1; shift
  ip netns exec "$LAB_NAME-op" ssh -F /dev/null -i "$KEY" -o IdentitiesOnly=yes \
    -o UserKnownHostsFile="$KNOWN" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
    -o BatchMode=yes -o ConnectTimeout=3 -o LogLevel=ERROR \
    "${H_USER[$h]}@${H_ADDR[$h]}" "$@"
}

# ---------------------------------------------------------------- hosts
host_pubkey() { cut -d' ' -f1,2 "$HOSTSDIR/$1/upper/etc/ssh/ssh_host_ed25519_key.pub"; }

mounts_under() { # print mount points under $1, deepest first
  local prefix=$1
  awk '{ print $2 }' /proc/mounts | while read -r m; do
    m=$(printf '%b' "${m//\\/\\0}")   # /proc/mounts escapes: \040 -> \0040 for %b
    [[ $m == "$prefix" || $m == "$prefix"/* ]] && echo "$m"
  done | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-
}

host_prepare() { # mount the overlay and provision /etc (host not running)
  local h=$1 rootfs=$2 d=$HOSTSDIR/$1 u r
  u=$d/upper
  r=$d/root
  mkdir -p "$d"
  if [[ -s $d/lower && $(<"$d/lower") != "$rootfs" ]]; then
    log "$h: image changed ($(<"$d/lower") -> $rootfs): resetting its overlay (host key kept)"
    umount_tree "$r"
    stash_hostkey "$h"
    rm -rf --one-file-system "$d/upper" "$d/work"
  fi
  mkdir -p "$u/etc/ssh" "$d/work" "$r"
  echo "$rootfs" >"$d/lower"
  if [[ ! -s $u/etc/ssh/ssh_host_ed25519_key ]]; then
    if [[ -s $d/keys/ssh_host_ed25519_key ]]; then
      cp -p "$d/keys/ssh_host_ed25519_key" "$d/keys/ssh_host_ed25519_key.pub" "$u/etc/ssh/"
    else
      ssh-keygen -q -t ed25519 -N '' -C "root@$h" -f "$u/etc/ssh/ssh_host_ed25519_key"
    fi
  fi
  host_mount "$h"

  echo "$h" >"$r/etc/hostname"
  cat >"$r/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$h
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF
  [[ -s $r/etc/machine-id ]] || tr -d '-' </proc/sys/kernel/random/uuid >"$r/etc/machine-id"

  local user=${H_USER[$h]} home
  if [[ $user == root ]]; then
    home=/root
  else
    chroot "$r" id -u "$user" >/dev/null 2>&1 ||
      chroot "$r" useradd --create-home --shell /bin/bash --groups sudo --password '*' "$user"
    home=/home/$user
    printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" >"$r/etc/sudoers.d/90-wg-relay-lab"
    chmod 0440 "$r/etc/sudoers.d/90-wg-relay-lab"
  fi
  install -d -m 0700 "$r$home/.ssh"
  install -m 0600 "$KEY.pub" "$r$home/.ssh/authorized_keys"
  chroot "$r" chown -R "$user:" "$home/.ssh"
}

# The host's disk: its overlay on the image recorded in $d/lower.
host_mount() { # host
  local h=$1 d=$HOSTSDIR/$1
  mountpoint -q "$d/root" ||
    mount -t overlay "$LAB_NAME-lab-$h" -o "lowerdir=$(<"$d/lower"),upperdir=$d/upper,workdir=$d/work" "$d/root"
}

host_boot() {
  local h=$1 d=$HOSTSDIR/$1
  rm -f "$d/nspawn.pid" "$d/leader.pid"
  printf '\n===== %s boot %s =====\n' "$h" "$(date -Is)" >>"$d/console.log"
  # setsid: own session, so it survives the calling shell; the inner bash
  # records its PID and execs nspawn in place (same PID).
  (
    cd /
    exec 8>&- # do not hand the hosts.sh lock to a long-lived child
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$d/nspawn.pid" \
      env SYSTEMD_NSPAWN_API_VFS_WRITABLE=network \
      systemd-nspawn --quiet -D "$d/root" --boot \
      --register=no --keep-unit \
      --network-namespace-path="/run/netns/$LAB_NAME-$h" \
      --machine="$LAB_NAME-$h" --hostname="$h" \
      --bind=/dev/net/tun \
      --capability=CAP_NET_ADMIN,CAP_NET_RAW \
      --console=read-only --link-journal=no --resolv-conf=off
  ) </dev/null >>"$d/console.log" 2>&1 &
  for _ in $(seq 50); do [[ -s $d/nspawn.pid ]] && break; sleep 0.1; done
  [[ -s $d/nspawn.pid ]] || die "$h: nspawn did not start (see $d/console.log)"
}

# wait until sshd answers with the pinned key and systemd is running/degraded
host_wait() {
  local h=$1 d=$HOSTSDIR/$1 deadline state pid leader timeout=$BOOT_TIMEOUT
  is_vm "$h" && timeout=$VM_BOOT_TIMEOUT
  deadline=$(($(date +%s) + timeout))
  while :; do
    if ! pid=$(host_pid "$h"); then
      tail -n 30 "$d/console.log" >&2 || true
      die "$h: the host's process exited (log: $d/console.log)"
    fi
    state=$(op_ssh "$h" systemctl is-system-running 2>/dev/null || true)
    # the container's PID 1 (a child of nspawn), for the SIGKILL fallback in down
    if ! is_vm "$h" && [[ -n $state && ! -s $d/leader.pid ]] && leader=$(pgrep -P "$pid" | head -n1) && [[ -n $leader ]]; then
      echo "$leader" >"$d/leader.pid"
    fi
    case $state in
      running) return 0 ;;
      starting | initializing)
        # A VM is up once its sshd lets us in, as a provider's VPS is: its boot goes on with apt's first-boot jobs,
        # which keep systemd "starting" for minutes under TCG (and which the program's apt step must wait for).
        if is_vm "$h"; then
          log "$h: sshd answers; systemd still $state (jobs: $(op_ssh "$h" systemctl list-jobs --no-legend 2>/dev/null | awk '{print $2}' | tr '\n' ' '))"
          return 0
        fi ;;
      degraded)
        log "$h: systemd is degraded; failed units: $(op_ssh "$h" systemctl --failed --no-legend --plain 2>/dev/null | awk '{print $1}' | tr '\n' ' ')"
        return 0 ;;
    esac
    (($(date +%s) < deadline)) || die "$h: not up after ${timeout}s (last state: '${state:-no ssh}', log: $d/console.log)"
    sleep 0.5
  done
}

# Stop the given hosts: SIGTERM to systemd-nspawn (it asks the container's
# systemd for an orderly shutdown: SIGRTMIN+3), or SIGRTMIN+3 straight to an
# orphaned container's PID 1; wait; then SIGKILL (PID 1 first, then nspawn).
host_stop() { # host...
  local h pid leader watch=() names=()
  for h in "$@"; do
    if is_vm "$h"; then vm_stop "$h" TERM; continue; fi
    pid=$(pid_alive_ours "$HOSTSDIR/$h/nspawn.pid" "$HOSTSDIR/$h/root") || pid=
    leader=$(leader_alive_ours "$h") || leader=
    if [[ -n $pid ]]; then
      kill -TERM "$pid" 2>/dev/null || true
    elif [[ -n $leader ]]; then
      log "$h: orphaned container (PID 1 = $leader, no nspawn): SIGRTMIN+3"
      kill -s SIGRTMIN+3 "$leader" 2>/dev/null || true
    else
      continue
    fi
    names+=("$h")
    [[ -z $pid ]] || watch+=("$pid")
    [[ -z $leader ]] || watch+=("$leader")
  done
  ((${#watch[@]})) || return 0
  log "stopping ${names[*]}"
  wait_gone 30 "${watch[@]}" && return 0
  for h in "${names[@]}"; do
    if leader=$(leader_alive_ours "$h"); then
      log "$h: container still running after 30s, SIGKILL to its PID 1 ($leader)"
      kill -KILL "$leader" 2>/dev/null || true
      if pid=$(pid_alive_ours "$HOSTSDIR/$h/nspawn.pid" "$HOSTSDIR/$h/root"); then
        wait_gone 3 "$pid" || true   # nspawn exits by itself once its container is gone
      fi
    fi
    if pid=$(pid_alive_ours "$HOSTSDIR/$h/nspawn.pid" "$HOSTSDIR/$h/root"); then
      log "$h: systemd-nspawn still running, SIGKILL ($pid)"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait_gone 10 "${watch[@]}" || log "warning: still running: ${watch[*]}"
}

# ---------------------------------------------------------------- virtual machine hosts
VM_MEMORY=${WG_RELAY_LAB_VM_MEMORY:-512}
VM_CPUS=${WG_RELAY_LAB_VM_CPUS:-1}

# The VM's NIC: a tap device in the host's namespace, bridged with the namespace's link, so the VM sits where a
# container host's eth0 would (same address, same wire to the router).
vm_wire_up() { # host
  local ns=$LAB_NAME-$1
  ip -n "$ns" link show br0 >/dev/null 2>&1 || ip -n "$ns" link add br0 type bridge
  ip -n "$ns" link show tap0 >/dev/null 2>&1 || ip netns exec "$ns" ip tuntap add dev tap0 mode tap
  ip -n "$ns" link set eth0 master br0
  ip -n "$ns" link set tap0 master br0
  ip -n "$ns" link set tap0 up
  ip -n "$ns" link set br0 up
}

# The VM's disk: the image's rootfs with the host's own /etc (host_prepare, as a container host's overlay gets),
# its network for ens3, made into an ext4 file system once. It is the VM's from then on: `host start`, a reset
# and a reboot boot the same disk; `down` removes it.
vm_prepare() { # host image-dir
  local h=$1 image=$2 d=$HOSTSDIR/$1 r a gw
  [[ -e $d/disk.img ]] && return 0
  host_prepare "$h" "$image/rootfs"
  r=$d/root
  mkdir -p "$r/etc/systemd/network"
  {
    printf '# wg-relay lab: the provider'"'"'s static addresses (lab/hosts.sh)\n[Match]\nName=%s\n\n[Network]\n' "${H_IFACE[$h]}"
    for a in ${VM_ADDRS[$h]}; do printf 'Address=%s\n' "$a"; done
    for gw in ${VM_GATEWAYS[$h]}; do printf 'Gateway=%s\n' "$gw"; done
    printf 'IPv6AcceptRA=no\n'
  } >"$r/etc/systemd/network/10-lab.network"
  echo "$image" >"$d/image"
  mkfs.ext4 -q -F -L root -d "$r" "$d/disk.img.new" 4G >/dev/null
  umount_tree "$r"
  mv "$d/disk.img.new" "$d/disk.img"
}

vm_boot() { # host
  local h=$1 d=$HOSTSDIR/$1 image machine
  image=$(<"$d/image")
  rm -f "$d/qemu.pid"
  printf '\n===== %s boot %s =====\n' "$h" "$(date -Is)" >>"$d/console.log"
  # TCG (KVM guests hang on this machine: lab/README.md); virtio disk and NIC. Debian's kernel and initramfs are
  # booted directly (no bootloader).
  if [[ ${VM_ARCH[$h]} == arm64 ]]; then
    # The Pi: QEMU's `virt` board with a Cortex-A72, the Pi 4's core (`-cpu max` adds pointer authentication,
    # which TCG emulates slowly: lab/README.md); its NIC in slot 1 of the PCIe bus, the PL011 serial console.
    machine=(qemu-system-aarch64 -machine virt -cpu cortex-a72 -append "console=ttyAMA0 root=/dev/vda rw quiet"
      -drive "file=$d/disk.img,format=raw,if=none,id=disk0" -device "virtio-blk-pci,drive=disk0,addr=0x2"
      -device "virtio-net-pci,netdev=net0,mac=52:54:00:00:00:$(printf %02x "${#h}"),addr=0x1")
  else
    # The relay: the NIC in PCI slot 3 of the `pc` machine, as on a KVM VPS, where udev names it ens3.
    machine=(qemu-system-x86_64 -machine pc -cpu max -append "console=ttyS0 root=/dev/vda rw quiet"
      -drive "file=$d/disk.img,format=raw,if=virtio"
      -device "virtio-net-pci,netdev=net0,mac=52:54:00:00:00:$(printf %02x "${#h}"),addr=0x3")
  fi
  (
    cd /
    exec 8>&- # do not hand the hosts.sh lock to a long-lived child
    exec ip netns exec "$LAB_NAME-$h" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$d/qemu.pid" \
      "${machine[@]}" -name "$LAB_NAME-$h" -nodefaults -accel tcg,thread=multi \
      -smp "$VM_CPUS" -m "$VM_MEMORY" -display none \
      -chardev "file,id=console,path=$d/console.log,append=on" -serial chardev:console \
      -monitor "unix:$d/monitor.sock,server=on,wait=off" \
      -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
      -netdev tap,id=net0,ifname=tap0,script=no,downscript=no \
      -device virtio-rng-pci
  ) </dev/null >>"$d/qemu.log" 2>&1 &
  for _ in $(seq 50); do [[ -s $d/qemu.pid ]] && break; sleep 0.1; done
  [[ -s $d/qemu.pid ]] || die "$h: QEMU did not start (see $d/qemu.log)"
}

vm_monitor() { # host command: one command on QEMU's human monitor; waits for its prompt before and after
  /usr/bin/python3 - "$HOSTSDIR/$1/monitor.sock" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
def until_prompt():
    seen = b""
    while not seen.endswith(b"(qemu) "):
        chunk = s.recv(4096)
        if not chunk:
            break
        seen += chunk
until_prompt()
s.sendall(sys.argv[2].encode() + b"\n")
until_prompt()
s.close()
PY
}

vm_stop() { # host signal: QEMU exits at once (SIGTERM or SIGKILL: the guest gets no shutdown either way)
  local h=$1 pid
  pid=$(host_pid "$h") || return 0
  kill "-$2" "$pid" 2>/dev/null || true
  wait_gone 10 "$pid" || { kill -KILL "$pid" 2>/dev/null || true; wait_gone 5 "$pid" || die "$h: QEMU ($pid) still running"; }
  rm -f "$HOSTSDIR/$h/qemu.pid"
}

# ---------------------------------------------------------------- power (lab/hosts.sh host stop|start)
# Power loss, as a VPS or a Pi losing power (not a clean shutdown: no unit stops, no PostDown runs):
#   1. the host's network links go down first, so nothing it had open says goodbye (no FIN or RST from a
#      dying process) and from outside it answers nothing, not even ARP, as a machine without power;
#   2. SIGKILL to the container's PID 1: the kernel kills every process of its PID namespace at once;
#   3. what lives in the kernel and a reboot loses is reset to how `up` creates it: iptables and ip6tables
#      rules, net.ipv4.ip_forward=0, policy routing rules; interfaces such as wg0 (a tun device) vanish with
#      their process. The network namespace with its links and addresses (the provider's side) and the
#      overlay (the disk) stay, so `host start` boots the same disk again.
host_links() { # host -> "dev" per line: the lab's links inside the host's namespace
  local l a b c d
  for l in "${LINKS[@]}"; do
    read -r a b c d <<<"$l"
    [[ $a == "$1" ]] && echo "$b"
    [[ $c == "$1" ]] && echo "$d"
  done
  return 0
}

host_poweroff() { # host
  local h=$1 d=$HOSTSDIR/$1 pid leader dev t ipt p
  if is_vm "$h"; then   # links down, then QEMU killed: the guest's kernel state goes with it
    host_running "$h" || { log "$h: already powered off (nothing to stop)"; return 0; }
    while read -r dev; do ip -n "$LAB_NAME-$h" link set "$dev" down; done < <(host_links "$h")
    vm_stop "$h" KILL
    printf '\n===== %s power off %s =====\n' "$h" "$(date -Is)" >>"$d/console.log"
    log "$h: powered off (SIGKILL to QEMU, links down; host start $h boots it)"
    return 0
  fi
  pid=$(pid_alive_ours "$d/nspawn.pid" "$d/root") || pid=
  leader=$(leader_alive_ours "$h") || leader=
  if [[ -z $leader && -n $pid ]]; then
    leader=$(pgrep -P "$pid" | head -n1) || leader=
  fi
  if [[ -z $pid && -z $leader ]]; then
    log "$h: already powered off (nothing to stop)"
    return 0
  fi
  while read -r dev; do ip -n "$LAB_NAME-$h" link set "$dev" down; done < <(host_links "$h")
  if [[ -n $leader ]]; then
    kill -KILL "$leader" 2>/dev/null || true
    wait_gone 10 "$leader" || die "$h: PID 1 ($leader) still running 10s after SIGKILL"
  fi
  if [[ -n $pid ]] && ! wait_gone 5 "$pid"; then   # nspawn exits by itself once its container is gone
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone 5 "$pid" || die "$h: systemd-nspawn ($pid) still running after SIGKILL"
  fi
  rm -f "$d/nspawn.pid" "$d/leader.pid"
  printf '\n===== %s power off %s =====\n' "$h" "$(date -Is)" >>"$d/console.log"
  for ipt in iptables ip6tables; do
    for t in $(nsx "$h" "$ipt-save" | sed -n 's/^\*//p'); do
      nsx "$h" "$ipt" -w -t "$t" -F
      nsx "$h" "$ipt" -w -t "$t" -X
      for p in $(nsx "$h" "$ipt" -w -t "$t" -S | awk '$1 == "-P" { print $2 }'); do
        nsx "$h" "$ipt" -w -t "$t" -P "$p" ACCEPT
      done
    done
  done
  nsx "$h" sysctl -qw net.ipv4.ip_forward=0
  for p in $(ip -n "$LAB_NAME-$h" rule show | awk -F: '$1 != 0 && $1 != 32766 && $1 != 32767 { print $1 }'); do
    ip -n "$LAB_NAME-$h" rule del pref "$p"
  done
  log "$h: powered off (SIGKILL to PID 1 ${leader:-?}, links down; host start $h boots it)"
}

# Power on: the links come up (net_up, as `up` does) and the host boots from its overlay with host_boot, the
# one place that holds the nspawn flags; returns once sshd answers with the pinned key and systemd is up.
hosts_poweron() { # host...
  local h t0 waits=() failed=0 w booted=()
  t0=$(now)
  for h in "$@"; do
    if host_running "$h"; then
      log "$h: already running (nothing to start)"
      continue
    fi
    booted+=("$h")
  done
  ((${#booted[@]})) || return 0
  net_up
  for h in "${booted[@]}"; do
    if is_vm "$h"; then vm_boot "$h"; continue; fi
    host_stop "$h"   # an orphaned container of a SIGKILLed nspawn
    host_mount "$h"
    host_boot "$h"
  done
  log "booting ${booted[*]}"
  for h in "${booted[@]}"; do
    (host_wait "$h" && log "$h: up (sshd answers, systemd running) $(elapsed "$t0")s after power on") &
    waits+=($!)
  done
  for w in "${waits[@]}"; do wait "$w" || failed=1; done
  ((failed == 0)) || die "host start: ${booted[*]} did not all come up (logs: $HOSTSDIR/HOST/console.log)"
}

umount_tree() {
  local m
  while read -r m; do
    [[ -n $m ]] || continue
    umount "$m" 2>/dev/null || { log "warning: $m busy, lazy unmount"; umount -l "$m"; }
  done < <(mounts_under "$1")
}

stash_hostkey() {
  local h=$1 d=$HOSTSDIR/$1
  if [[ -s $d/upper/etc/ssh/ssh_host_ed25519_key ]]; then
    mkdir -p "$d/keys"
    chmod 700 "$d/keys"
    cp -p "$d/upper/etc/ssh/ssh_host_ed25519_key" "$d/upper/etc/ssh/ssh_host_ed25519_key.pub" "$d/keys/"
  fi
}

# ---------------------------------------------------------------- HTTP servers
# Static HTTP servers inside namespaces: the LAN host's service, and the internet's wstunnel release mirror
# (lab.sh mirror fills it). Each lives in $HOSTSDIR/NAME: www/ is served, http.pid is its PID.
LANHOST_DIR=$HOSTSDIR/lanhost
MIRROR_DIR=$HOSTSDIR/mirror
# test/e2e/hostile.test.ts: what peers must not reach through the relay. Each http.log names who asked.
WEB_DIR=$HOSTSDIR/web
METADATA_DIR=$HOSTSDIR/metadata
SIDE_DIR=$HOSTSDIR/side
http_up() { # dir namespace address
  local d=$1 ns=$2 address=$3
  pid_alive_ours "$d/http.pid" "$d/www" >/dev/null && return 0
  mkdir -p "$d/www"
  rm -f "$d/http.pid"
  [[ -x /usr/bin/python3 ]] || die "the lab's HTTP servers need /usr/bin/python3"
  (
    cd /
    exec 8>&- # do not hand the hosts.sh lock to a long-lived child
    exec ip netns exec "$LAB_NAME-$ns" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$d/http.pid" \
      /usr/bin/python3 -m http.server 80 --bind "$address" --directory "$d/www"
  ) </dev/null >>"$d/http.log" 2>&1 &
  for _ in $(seq 100); do
    if [[ -s $d/http.pid ]] && ip netns exec "$LAB_NAME-$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$address/80" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "HTTP server in $LAB_NAME-$ns did not answer on $address:80 (log: $d/http.log)"
}

http_down() { # dir
  local pid
  pid=$(pid_alive_ours "$1/http.pid" "$1/www") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone 3 "$pid" && return 0
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone 3 "$pid" || true
}

LANHOST2_DIR=$HOSTSDIR/lanhost2
lanhost_up() {
  mkdir -p "$LANHOST_DIR/www"
  echo "hello from lanhost" >"$LANHOST_DIR/www/index.html"
  http_up "$LANHOST_DIR" lanhost 192.168.1.20
  if ns_exists lanhost2; then
    mkdir -p "$LANHOST2_DIR/www"
    echo "hello from lanhost2" >"$LANHOST2_DIR/www/index.html"
    http_up "$LANHOST2_DIR" lanhost2 192.168.2.20
  fi
}

# The internet's web site, the metadata stand-in and the host behind the relay's bridge (test/e2e/hostile.test.ts).
hostile_targets_up() {
  mkdir -p "$WEB_DIR/www" "$METADATA_DIR/www" "$SIDE_DIR/www"
  echo "hello from the internet" >"$WEB_DIR/www/index.html"
  echo "hello from the metadata service" >"$METADATA_DIR/www/index.html"
  echo "hello from behind the relay's bridge" >"$SIDE_DIR/www/index.html"
  http_up "$WEB_DIR" inet 198.18.0.80
  http_up "$METADATA_DIR" inet 169.254.169.254
  http_up "$SIDE_DIR" side 172.31.0.10
}

# ---------------------------------------------------------------- inventory
write_inventory() {
  local tmp h entries=()
  tmp=$(mktemp "$LAB/inventory.json.XXXXXX")
  for h in "${HOSTS[@]}"; do
    entries+=("    \"$h\": {\"ns\": \"$LAB_NAME-$h\", \"address\": \"${H_ADDR[$h]}\", \"user\": \"${H_USER[$h]}\", \"hostKey\": \"$(host_pubkey "$h")\", \"interface\": \"${H_IFACE[$h]:-eth0}\", \"kind\": \"$(is_vm "$h" && echo vm || echo nspawn)\"}")
  done
  cat >"$tmp" <<EOF
{
  "hosts": {
$(IFS=$'\n'; printf '%s\n' "${entries[@]}" | sed '$!s/$/,/')
  },
  "lanhost": {"ns": "$LAB_NAME-lanhost", "address": "192.168.1.20", "address6": "fd00:192:168:1::20", "httpPort": 80},
  "sshPrivateKeyPath": ".lab/ssh/id_ed25519"
}
EOF
  chmod 644 "$tmp"
  if cmp -s "$tmp" "$LAB/inventory.json"; then rm -f "$tmp"; else mv "$tmp" "$LAB/inventory.json"; fi
}

# ---------------------------------------------------------------- commands
lock() {
  mkdir -p "$LAB"
  exec 8>"$LAB/.hosts.lock"
  flock 8
}

# The NAME-* names are machine-wide: one checkout's lab per name at a time.
OWNER_FILE=/run/wg-relay-lab-$LAB_NAME.owner
check_owner() {
  local owner ns any=0
  for ns in "${NAMESPACES[@]}"; do ns_exists "$ns" && any=1; done
  [[ -s $OWNER_FILE ]] || return 0
  owner=$(<"$OWNER_FILE")
  [[ $owner == "$REPO" ]] && return 0
  if ((any)); then
    die "the $LAB_NAME-* lab on this machine belongs to the checkout $owner: run its lab/hosts.sh down first (or, if that checkout is gone, remove $OWNER_FILE and run down here)"
  fi
}

cmd_up() {
  local t0 rootfs h booted=()
  t0=$(now)
  [[ $(id -u) == 0 ]] || die "must run as root"
  for c in ip iptables systemd-nspawn ssh ssh-keygen mountpoint setsid pgrep; do
    command -v "$c" >/dev/null || die "missing command: $c"
  done
  [[ -c /dev/net/tun ]] || die "/dev/net/tun missing"
  lock
  check_owner
  echo "$REPO" >"$OWNER_FILE"
  rootfs=$("$HERE/image.sh")
  local -A vm_image=()
  for h in "${VM_HOSTS[@]}"; do
    [[ -n ${vm_image[${VM_ARCH[$h]}]:-} ]] || vm_image[${VM_ARCH[$h]}]=$("$HERE/vm-image.sh" --arch "${VM_ARCH[$h]}")
  done
  ensure_operator_key
  net_up
  lanhost_up
  http_up "$MIRROR_DIR" inet 198.51.100.1
  hostile_targets_up
  # The VM hosts' Debian mirror (lab/vm-image.sh), beside the wstunnel releases: one tree per architecture.
  local arch
  for arch in "${!vm_image[@]}"; do
    [[ ! -L $MIRROR_DIR/www/debian ]] || rm -f "$MIRROR_DIR/www/debian"   # a lab made before arm64: one tree
    mkdir -p "$MIRROR_DIR/www/debian"
    ln -sfn "${vm_image[$arch]}/mirror/debian" "$MIRROR_DIR/www/debian/$arch"
  done
  for h in "${HOSTS[@]}"; do
    host_running "$h" && continue
    if is_vm "$h"; then
      vm_prepare "$h" "${vm_image[${VM_ARCH[$h]}]}"
      vm_boot "$h"
      booted+=("$h")
      continue
    fi
    host_stop "$h"   # an orphaned container of a SIGKILLed nspawn
    host_prepare "$h" "$rootfs"
    host_boot "$h"
    booted+=("$h")
  done
  write_ssh_files
  ((${#booted[@]})) && log "booting ${booted[*]}"
  local waits=() failed=0 w
  for h in "${HOSTS[@]}"; do host_wait "$h" & waits+=($!); done
  for w in "${waits[@]}"; do wait "$w" || failed=1; done
  ((failed == 0)) || die "some hosts did not come up; the lab is left as it is (lab/hosts.sh down removes it)"
  write_inventory
  log "lab up in $(elapsed "$t0")s (inventory: $LAB/inventory.json)"
}

cmd_down() {
  local keep_keys=0 purge=0 t0 h
  t0=$(now)
  for a in "$@"; do
    case $a in
      --keep-keys) keep_keys=1 ;;
      --purge) purge=1 ;;
      *) die "down: unknown option $a" ;;
    esac
  done
  [[ $(id -u) == 0 ]] || die "must run as root"
  lock
  check_owner
  http_down "$LANHOST_DIR"
  http_down "$LANHOST2_DIR"
  http_down "$MIRROR_DIR"
  http_down "$WEB_DIR"
  http_down "$METADATA_DIR"
  http_down "$SIDE_DIR"
  host_stop "${HOSTS[@]}"
  [[ -d $HOSTSDIR ]] && umount_tree "$HOSTSDIR"
  [[ -z $(mounts_under "$HOSTSDIR") ]] || die "mounts remain under $HOSTSDIR: $(mounts_under "$HOSTSDIR" | tr '\n' ' ')"
  net_down
  for h in "${HOSTS[@]}"; do
    [[ -d $HOSTSDIR/$h ]] || continue
    if ((keep_keys)); then
      stash_hostkey "$h"
      find "$HOSTSDIR/$h" -mindepth 1 -maxdepth 1 ! -name keys -exec rm -rf --one-file-system {} +
    else
      rm -rf --one-file-system "${HOSTSDIR:?}/$h"
    fi
  done
  rm -rf --one-file-system "$LANHOST_DIR" "$LANHOST2_DIR" "$MIRROR_DIR" "$WEB_DIR" "$METADATA_DIR" "$SIDE_DIR"
  rm -f "$LAB/inventory.json" "$SSHDIR/config"
  ((keep_keys)) || rm -f "$KNOWN"
  ((purge)) && rm -rf --one-file-system "$SSHDIR"
  rmdir "$HOSTSDIR" 2>/dev/null || true
  rm -f "$OWNER_FILE"
  log "lab down in $(elapsed "$t0")s"
}

cmd_host() { # start|stop host...
  local action=${1:-} h
  shift || true
  if [[ $action != start && $action != stop && $action != reset ]] || (($# == 0)); then
    die "usage: $0 host start|stop|reset HOST... (${HOSTS[*]})"
  fi
  for h in "$@"; do
    [[ " ${HOSTS[*]} " == *" $h "* ]] || die "host $action: no host $h (hosts: ${HOSTS[*]})"
  done
  [[ $(id -u) == 0 ]] || die "must run as root"
  lock
  check_owner
  for h in "$@"; do
    if ! ns_exists "$h" || [[ ! -s $HOSTSDIR/$h/lower ]]; then die "$h: the lab is not up (npm run lab)"; fi
  done
  if [[ $action == stop ]]; then
    for h in "$@"; do host_poweroff "$h"; done
  elif [[ $action == reset ]]; then
    for h in "$@"; do
      is_vm "$h" || die "host reset: $h is not a virtual machine (host stop and host start power-cycle it)"
      host_running "$h" || die "host reset: $h is powered off (host start $h)"
      vm_monitor "$h" system_reset
      log "$h: hard reset (system_reset on QEMU's monitor)"
    done
  else
    hosts_poweron "$@"
  fi
}

cmd_status() {
  local ns h pid state line
  if [[ -s $OWNER_FILE && $(<"$OWNER_FILE") != "$REPO" ]]; then
    echo "note: the $LAB_NAME-* lab was started by the checkout $(<"$OWNER_FILE"), not this one"
  fi
  for ns in "${NAMESPACES[@]}"; do
    line=$(printf '%-12s' "$LAB_NAME-$ns")
    if ! ns_exists "$ns"; then
      echo "$line absent"
      continue
    fi
    if is_vm "$ns"; then
      h=$ns
      if pid=$(host_pid "$h"); then
        state=$(op_ssh "$h" systemctl is-system-running 2>/dev/null || true)
        echo "$line VM host      qemu pid $pid  ssh ${H_USER[$h]}@${H_ADDR[$h]}: ${state:-no answer}"
      else
        echo "$line VM host      not running (powered off? host start $h boots it)"
      fi
    elif [[ " ${HOSTS[*]} " == *" $ns "* ]]; then
      h=$ns
      if pid=$(pid_alive_ours "$HOSTSDIR/$h/nspawn.pid" "$HOSTSDIR/$h/root"); then
        state=$(op_ssh "$h" systemctl is-system-running 2>/dev/null || true)
        echo "$line nspawn host  pid $pid  ssh ${H_USER[$h]}@${H_ADDR[$h]}: ${state:-no answer}"
      elif pid=$(leader_alive_ours "$h"); then
        echo "$line nspawn host  ORPHANED container (PID 1 = $pid, nspawn gone; up or down stops it)"
      else
        echo "$line nspawn host  not running (powered off? host start $h boots it)"
      fi
    elif [[ $ns == lanhost || $ns == lanhost2 ]]; then
      if pid=$(pid_alive_ours "$HOSTSDIR/$ns/http.pid" "$HOSTSDIR/$ns/www"); then
        echo "$line bare ns      http pid $pid on port 80"
      else
        echo "$line bare ns      http server not running"
      fi
    elif [[ $ns == inet ]]; then
      echo "$line router       ip_forward=$(nsx "$ns" sysctl -n net.ipv4.ip_forward); release mirror http $(pid_alive_ours "$MIRROR_DIR/http.pid" "$MIRROR_DIR/www" || echo 'not running') on 198.51.100.1:80"
    elif [[ " ${ROUTERS[*]} " == *" $ns "* ]]; then
      echo "$line router       ip_forward=$(nsx "$ns" sysctl -n net.ipv4.ip_forward)"
    else
      echo "$line operator     ip_forward=$(nsx "$ns" sysctl -n net.ipv4.ip_forward)"
    fi
  done
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  host) shift; cmd_host "$@" ;;
  *) echo "usage: $0 up | down [--keep-keys|--purge] | status | host start|stop|reset HOST..." >&2; exit 2 ;;
esac
