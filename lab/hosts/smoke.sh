#!/usr/bin/env bash
# Smoke check of the lab itself (not of the product), run by hand as root:
#
#   lab/hosts/smoke.sh            up (if needed) -> checks -> down -> verify nothing is left
#   lab/hosts/smoke.sh --keep     up -> checks, leave the lab running
#
# All test traffic stays inside the wgr-* namespaces.
# shellcheck disable=SC2016  # single-quoted snippets run on the lab hosts on purpose
set -euo pipefail
# The lab's namespaces and machines are NAME-*: WG_RELAY_LAB_NAME (default wgr) lets two checkouts run a lab each.
LAB_NAME=${WG_RELAY_LAB_NAME:-wgr}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
HOSTS_SH=$REPO/lab/hosts.sh
LAB=$REPO/.lab
CFG=$LAB/ssh/config
KEEP=0
[[ ${1:-} == --keep ]] && KEEP=1

pass=0 fail=0
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
ko() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { # description command...
  local d=$1; shift
  if "$@" >"/tmp/$LAB_NAME-smoke.out" 2>&1; then ok "$d"; else ko "$d"; sed 's/^/       /' "/tmp/$LAB_NAME-smoke.out" | tail -n 5; fi
}
check_not() { # description command... (must fail)
  local d=$1; shift
  if "$@" >"/tmp/$LAB_NAME-smoke.out" 2>&1; then ko "$d"; sed 's/^/       /' "/tmp/$LAB_NAME-smoke.out" | tail -n 5; else ok "$d"; fi
}
op() { ip netns exec "$LAB_NAME-op" ssh -F "$CFG" -o ConnectTimeout=5 "$@"; }
counter() { # ns table chain comment -> packets
  ip netns exec "$LAB_NAME-$1" iptables -w -t "$2" -L "$3" -v -x -n | awk -v c="$4" '$0 ~ ("/\\* " c " \\*/") { print $1 }'
}
tcp_probe() { # host dst port -> prints open|closed (ssh itself must work)
  op "$1" "if timeout 4 bash -c 'exec 3<>/dev/tcp/$2/$3' 2>/dev/null; then echo open; else echo closed; fi"
}
tcp_open() { [[ $(tcp_probe "$@") == open ]]; }
tcp_closed() { [[ $(tcp_probe "$@") == closed ]]; }

# temporary listener on relay:443 (python from the machine, inside wgr-relay's namespace)
LISTENER_PID=
cleanup() {
  [[ -z $LISTENER_PID ]] || { kill "$LISTENER_PID" 2>/dev/null || true; wait "$LISTENER_PID" 2>/dev/null || true; }
  ip -n "$LAB_NAME-inet" route del 192.168.1.0/24 via 100.64.0.2 2>/dev/null || true
  if ((KEEP == 0)); then "$HOSTS_SH" down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

t0=$(date +%s.%N)
"$HOSTS_SH" up
echo "up took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"

echo "# ssh with pinned host keys, sudo"
check "relay: ssh ops@198.51.100.10 + passwordless sudo" op relay 'sudo -n true && [ "$(sudo -n id -u)" = 0 ]'
check "rpi1: ssh pi@192.168.1.130 + passwordless sudo" op rpi1 'sudo -n true && [ "$(sudo -n id -u)" = 0 ]'
check "laptop: ssh root@10.254.1.2" op laptop '[ "$(id -u)" = 0 ]'
: >"/tmp/$LAB_NAME-smoke-empty-known-hosts"
check_not "pinning: ssh refuses relay with an empty known_hosts" \
  op -o "UserKnownHostsFile=/tmp/$LAB_NAME-smoke-empty-known-hosts" relay true
check "inventory hostKey matches relay's key" bash -c \
  "[ \"\$(jq -r .hosts.relay.hostKey $LAB/inventory.json)\" = \"\$(ip netns exec $LAB_NAME-op ssh-keyscan -t ed25519 198.51.100.10 2>/dev/null | cut -d' ' -f2,3)\" ]"

echo "# CG-NAT"
m0=$(ip netns exec "$LAB_NAME-cgnat" iptables -w -t nat -L POSTROUTING -v -x -n | awk '/MASQUERADE/ { print $1 }')
check "rpi1 -> 198.51.100.10:22 (TCP, via CG-NAT)" op rpi1 "timeout 4 bash -c 'exec 3<>/dev/tcp/198.51.100.10/22; head -c 7 <&3' | grep -q SSH-2.0"
m1=$(ip netns exec "$LAB_NAME-cgnat" iptables -w -t nat -L POSTROUTING -v -x -n | awk '/MASQUERADE/ { print $1 }')
check "  ... was masqueraded by $LAB_NAME-cgnat (MASQUERADE packets $m0 -> $m1)" test "$m1" -gt "$m0"
check "relay -/-> 192.168.1.130:22" tcp_closed relay 192.168.1.130 22
check "relay -/-> 100.64.0.2:22" tcp_closed relay 100.64.0.2 22
# even with a route to the LAN in the 'internet', the CG-NAT drops NEW inbound
ip -n "$LAB_NAME-inet" route add 192.168.1.0/24 via 100.64.0.2
n0=$(counter cgnat filter FORWARD cgnat-drop-new-from-wan)
check "relay -/-> 192.168.1.130:22 even when $LAB_NAME-inet routes 192.168.1.0/24 to the CG-NAT" tcp_closed relay 192.168.1.130 22
n1=$(counter cgnat filter FORWARD cgnat-drop-new-from-wan)
ip -n "$LAB_NAME-inet" route del 192.168.1.0/24 via 100.64.0.2
check "  ... dropped by cgnat-drop-new-from-wan (packets $n0 -> $n1)" test "$n1" -gt "$n0"

echo "# hotel firewall"
ip netns exec "$LAB_NAME-relay" /usr/bin/python3 -m http.server 443 --bind 198.51.100.10 --directory /var/empty >/dev/null 2>&1 &
LISTENER_PID=$!
for _ in $(seq 50); do ip netns exec "$LAB_NAME-relay" bash -c 'exec 3<>/dev/tcp/198.51.100.10/443' 2>/dev/null && break; sleep 0.1; done
check "laptop -> 198.51.100.10:443 (TCP allowed)" tcp_open laptop 198.51.100.10 443
check "laptop -/-> 198.51.100.10:22 (TCP not allowed)" tcp_closed laptop 198.51.100.10 22
check "laptop -/-> 100.64.0.2:443 (443 only to the relay)" tcp_closed laptop 100.64.0.2 443
u0=$(counter hotel filter FORWARD hotel-drop-udp)
op laptop 'echo probe >/dev/udp/198.51.100.10/51820'
u1=$(counter hotel filter FORWARD hotel-drop-udp)
check "laptop UDP -> 198.51.100.10:51820 dropped by $LAB_NAME-hotel (hotel-drop-udp packets $u0 -> $u1)" test "$u1" -gt "$u0"
kill "$LISTENER_PID"; wait "$LISTENER_PID" 2>/dev/null || true; LISTENER_PID=

echo "# lanhost"
check "rpi1: curl http://192.168.1.20/ = 'hello from lanhost'" op rpi1 'curl -fsS -m 5 http://192.168.1.20/ | grep -qx "hello from lanhost"'
check "lanhost: 10.10.0.0/24 only via the default route to 192.168.1.1" bash -c \
  "ip -n $LAB_NAME-lanhost route get 10.10.0.5 | grep -q 'via 192.168.1.1 dev eth0'"
check "op: ip_forward stays 0" bash -c '[ "$(ip netns exec "$LAB_NAME-op" sysctl -n net.ipv4.ip_forward)" = 0 ]'

echo "# wireguard-go inside relay"
check "relay: wg-quick up/down (wireguard-go) by hand" op relay 'set -e
  umask 077
  sudo -n mkdir -p /etc/wireguard
  printf "[Interface]\nPrivateKey = %s\nAddress = 10.99.0.1/24\nListenPort = 51999\n" "$(wg genkey)" | sudo -n tee /etc/wireguard/wgsmoke.conf >/dev/null
  sudo -n env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wg-quick up wgsmoke
  sudo -n wg show wgsmoke | grep -q "listening port: 51999"
  ip -4 addr show wgsmoke | grep -q 10.99.0.1/24
  sudo -n wg-quick down wgsmoke
  ! ip link show wgsmoke 2>/dev/null'
check "relay: systemctl start/stop wg-quick@wgsmoke (lab drop-in)" op relay 'set -e
  sudo -n systemctl start wg-quick@wgsmoke
  sudo -n wg show wgsmoke | grep -q "listening port: 51999"
  sudo -n systemctl stop wg-quick@wgsmoke
  sudo -n rm -f /etc/wireguard/wgsmoke.conf
  ! ip link show wgsmoke 2>/dev/null'

if ((KEEP == 0)); then
  echo "# down"
  pids=$(cat "$LAB"/hosts/*/nspawn.pid "$LAB"/hosts/*/leader.pid "$LAB"/hosts/lanhost/http.pid 2>/dev/null | tr '\n' ' ')
  t0=$(date +%s.%N)
  check "hosts.sh down" "$HOSTS_SH" down
  echo "down took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
  check "down twice" "$HOSTS_SH" down
  check_not "no $LAB_NAME-* namespace left" bash -c 'ip netns list | grep -q "^$0-"' "$LAB_NAME"
  check_not "no mount under .lab/hosts left" grep -qF "$LAB/hosts" /proc/mounts
  # (an exited process may stay a zombie for a moment until the machine's PID 1 reaps it)
  check "no process left of those started ($pids)" bash -c "for p in $pids; do
    s=\$(sed 's/.*) //' /proc/\$p/stat 2>/dev/null | cut -c1); case \$s in ''|Z|X) ;; *) echo alive \$p; exit 1;; esac; done"
fi
echo "$pass passed, $fail failed"
((fail == 0))
