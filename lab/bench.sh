#!/usr/bin/env bash
# npm run bench: figures for the lab, in one run on the same hosts (brings the lab up first when needed).
# Prints, does not judge, one `name: value unit` line per figure:
#   - the machine's core count;
#   - how long a no-change `pulumi preview` and `pulumi up` take (what a user waits for on every run);
#   - the Pi -> relay hop, WireGuard straight over UDP next to WireGuard through wstunnel (the real wg0, towards
#     the relay's tunnel address): ping RTT, TCP throughput from the Pi to the relay, and their ratio. The direct
#     baseline is a second WireGuard pair (wgbench) this script sets up on rpi1 and the relay with throwaway keys
#     made on the hosts, its own /30, the same MTU as wg0 and a UDP port of its own on the relay (the program's
#     firewall drops UDP to the WireGuard port only); rpi1 dials the relay's public address through the CG-NAT.
#     It is removed again on exit, also on failure. The same again with the sender's MSS at 1460, as a LAN host
#     sends on a 1500-byte LAN: what a client <-> LAN host flow carries whatever the tunnel's MTU;
#   - end to end: RTT and HTTP throughput from the laptop to the LAN host through wss:443, next to the same from
#     the Pi on the LAN itself (the baseline without the tunnel);
#   - end to end on plain WireGuard over UDP on both legs through the same relay (BENCH_E2E_UDP, 1; 0 skips it):
#     the stack with the relay's allowDirectUdp and rpi1 and the laptop on `transport: udp`, the hotel passing UDP to
#     the relay's WireGuard port for the run (a rule of the bench's own, first in its FORWARD chain), the same HTTP
#     download, its UDP receive-buffer drops per host, and `end-to-end ratio wstunnel/udp`; then the same download
#     with both legs on `transport: auto` while UDP passes, and `end-to-end ratio auto/udp`. The stack goes back to
#     the lab's own config afterwards, also when a run stops half-way, and the hotel's rule is removed on exit.
# Traffic tools (ping, curl, a python3 TCP source and sink) run in the hosts' network namespaces (ip netns exec),
# outside the containers; on a VM host (`npm run lab -- --vm`), whose network stack is its own kernel's, they run
# inside it over SSH. Every traffic figure names the kinds of hosts it crosses ([relay TCG VM/kernel WireGuard,
# ...]: container or TCG VM, and what runs its wg0), read from the inventory and the hosts' wg0 at the start.
# Traffic stays inside the lab's namespaces and VMs. MB = 10^6 bytes.
#
# Env: BENCH_RUNS (3: runs per timing and per throughput figure, the median is printed), BENCH_PAYLOAD_MB (64: the
# end-to-end HTTP download), BENCH_HOP_MB (256: bytes sent per hop throughput run), BENCH_PINGS (50),
# BENCH_PULUMI (1; 0 skips the pulumi timings, for quicker throughput runs), BENCH_DIRECT_MTU (1420, the default
# tunnel.udpMtu: the MTU a client on direct UDP uses, since its packets cross real paths).
#
# Scale (BENCH_SCALE_CLIENTS, "200 1000"; 0 skips it): a no-change `pulumi up` of the lab stack as it is (one
# client besides the gateway), then for each count in turn: the stack with that many more bundle-only clients and four
# more gateways, gw2..gw5 (booted on the home LAN by `WG_RELAY_LAB_GATEWAYS=5 lab/hosts.sh up`; they stay part of the
# lab until `down`), the `pulumi up` that applies it (from the previous count; past 200 clients it also grows the
# tunnel subnet to /21, lab/stack-config.ts) and a no-change `pulumi up` of it, beside the one-client time as
# `no-op up ratio 200 clients/1: N.NN`. The stack goes back to the lab's own config at the end (that `pulumi up`, and
# only that one, skips Pulumi's per-step checkpoints: PULUMI_SKIP_CHECKPOINTS), also when a run stops half-way (the
# config only: the next `pulumi up` converges).
#
# --wan (or BENCH_WAN=1): the lab's internet router (the inet namespace) gets a WAN's latency and loss for the run,
# on every packet to or from the relay: BENCH_WAN_DELAY_MS (10) each way, so 20 ms more RTT, by lab/wan-delay (an
# NFQUEUE program built with Go into .lab/; the lab kernel has no netem), and BENCH_WAN_LOSS (0.005) random loss
# each way (iptables' statistic match). Both are removed on exit.
set -euo pipefail
# The lab's namespaces and machines are NAME-*: WG_RELAY_LAB_NAME (default wgr) lets two checkouts run a lab each.
LAB_NAME=${WG_RELAY_LAB_NAME:-wgr}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAB=$REPO/.lab
RUNS=${BENCH_RUNS:-3}
PAYLOAD_MB=${BENCH_PAYLOAD_MB:-64}
HOP_MB=${BENCH_HOP_MB:-256}
PINGS=${BENCH_PINGS:-50}
TIME_PULUMI=${BENCH_PULUMI:-1}
DIRECT_MTU=${BENCH_DIRECT_MTU:-1420}
SCALE_CLIENTS=${BENCH_SCALE_CLIENTS:-200 1000}
E2E_UDP=${BENCH_E2E_UDP:-1}
WAN=${BENCH_WAN:-0}
if [ "${1:-}" = "--wan" ]; then WAN=1; fi
WAN_DELAY_MS=${BENCH_WAN_DELAY_MS:-10}
WAN_LOSS=${BENCH_WAN_LOSS:-0.005}
WAN_QUEUE=7
WAN_RULE_COMMENT=wg-relay-bench-wan
WWW=$LAB/hosts/lanhost/www
LAN_HOST=192.168.1.20
RELAY_PUBLIC=198.51.100.10
RELAY_TUNNEL=10.10.0.1
# The direct baseline: its own interface, /30 and relay port (not the WireGuard port the relay's firewall drops).
BENCH_IF=wgbench
BENCH_PORT=51999
BENCH_RELAY_ADDR=10.99.0.1
BENCH_PI_ADDR=10.99.0.2
BENCH_PREFIX=30
SINK_PORT=5201
# Seconds a TCP source or sink may run: a hop run through a TCG VM moves a few MB/s.
SEND_TIMEOUT=600
# A 1500-byte LAN's TCP segments.
LAN_MSS=1460

lab() { bash "$HERE/lab.sh" "$@"; }

status=$(lab status 2>/dev/null || true)
if [ ! -s "$LAB/inventory.json" ] || [ "$(grep -cE "^$LAB_NAME-(relay|rpi1|laptop) .*: (running|degraded)\$" <<<"$status")" != 3 ]; then
    lab up >&2
fi
# The lab's own config (an e2e test may have left another: rpi1 on auto, say), converged before timing no-change runs.
lab stack-config >/dev/null
rm -f "$LAB/pulumi-state/e2e-converged"   # the e2e tests' mark of the config last applied (test/e2e/lab.ts)
lab pulumi up --stack lab --yes --skip-preview >/dev/null

tmp=$(mktemp -d)
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    # the TCP sink, if a run stopped half-way (its PID is in a file: runs happen in subshells)
    if [ -s "$tmp/sink.pid" ]; then
        pid=$(<"$tmp/sink.pid")
        if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$WWW/bench.bin"
    hotel_udp_rule -D || rc=1
    if [ -e "$tmp/on-udp" ]; then
        { lab stack-config && lab pulumi up --stack lab --yes --skip-preview; } >/dev/null 2>&1 || rc=1
    fi
    if [ -e "$tmp/scaled" ]; then lab stack-config >/dev/null 2>&1 || rc=1; fi
    wan_down
    rm -rf "$tmp"
    bench_if_down relay || rc=1
    bench_if_down rpi1 || rc=1
    sink_rule -D || rc=1
    exit "$rc"
}

# ---- the direct WireGuard pair, on the hosts themselves (keys made there) ---------------------------------------
# Run by what runs the host's wg0 (WG_IMPL: the kernel's module, or wireguard-go), so both sides of a ratio use the
# same WireGuard. Prints the host's throwaway public key.
bench_if_up() { # host address mtu [listen-port]
    # (the optional port last: ssh joins the arguments into one command line, where an empty one vanishes)
    lab ssh "$1" sudo bash -s -- "$BENCH_IF" "$2/$BENCH_PREFIX" "$3" "${WG_IMPL[$1]}" "${4:-}" <<'EOF'
set -euo pipefail
ifname=$1 cidr=$2 mtu=$3 impl=$4 port=${5:-}
key=/run/wg-relay-bench.key
(umask 077; wg genkey >"$key")
if [ "$impl" = kernel ]; then
    ip link add "$ifname" type wireguard
else
    WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go "$ifname" >/dev/null 2>&1
fi
wg set "$ifname" private-key "$key" ${port:+listen-port "$port"}
ip address add "$cidr" dev "$ifname"
ip link set "$ifname" mtu "$mtu" up
wg pubkey <"$key"
EOF
}

bench_if_down() { # host: remove the interface (its wireguard-go exits with it) and the key
    lab ssh "$1" sudo bash -s -- "$BENCH_IF" <<'EOF'
ifname=$1
if ip link show "$ifname" >/dev/null 2>&1; then ip link delete "$ifname"; fi
rm -f /run/wg-relay-bench.key /var/run/wireguard/"$ifname".sock
for _ in $(seq 50); do pgrep -f "^wireguard-go $ifname\$" >/dev/null || exit 0; sleep 0.1; done
echo "bench: wireguard-go $ifname still running on $(hostname)" >&2
exit 1
EOF
}

# The relay's own chain (WG-RELAY-INPUT) refuses what peers send to its services unless an access rule grants it:
# the TCP sink on its tunnel address gets a rule of the bench's own for the run, first in the chain.
SINK_RULE=(WG-RELAY-INPUT -i wg0 -p tcp --dport "$SINK_PORT" -m comment --comment wg-relay-bench -j ACCEPT)
sink_rule() { # -I|-D
    if [ "$1" = -D ]; then
        lab ssh relay sudo iptables -C "${SINK_RULE[@]}" >/dev/null 2>&1 || return 0
        lab ssh relay sudo iptables -D "${SINK_RULE[@]}"
    else
        lab ssh relay sudo iptables -I "${SINK_RULE[0]}" 1 "${SINK_RULE[@]:1}"
    fi
}

# The hotel passes UDP to port 53 only: for the end-to-end run on plain UDP it also passes the relay's WireGuard port.
HOTEL_UDP_RULE=(FORWARD -i lan -o wan -p udp -d "$RELAY_PUBLIC" --dport 51820 -m comment --comment wg-relay-bench-udp -j ACCEPT)
hotel_udp_rule() { # -I|-D
    if [ "$1" = -D ]; then
        ip netns exec "$LAB_NAME-hotel" iptables -w -C "${HOTEL_UDP_RULE[@]}" >/dev/null 2>&1 || return 0
        ip netns exec "$LAB_NAME-hotel" iptables -w -D "${HOTEL_UDP_RULE[@]}"
    else
        ip netns exec "$LAB_NAME-hotel" iptables -w -I "${HOTEL_UDP_RULE[0]}" 1 "${HOTEL_UDP_RULE[@]:1}"
    fi
}

bench_peer() { # host peer-public-key allowed-ip [endpoint]
    lab ssh "$1" sudo wg set "$BENCH_IF" peer "$2" allowed-ips "$3/32" ${4:+endpoint "$4" persistent-keepalive 25}
}

# ---- the WAN profile (--wan), on the internet router ----------------------------------------------------------
wan_rules() { # -A|-D: both directions of the relay's traffic: random loss first, then the delay queue
    local dir
    for dir in -s -d; do
        ip netns exec "$LAB_NAME-inet" iptables "$1" FORWARD "$dir" "$RELAY_PUBLIC/32" -m statistic --mode random --probability "$WAN_LOSS" \
            -m comment --comment "$WAN_RULE_COMMENT" -j DROP
        ip netns exec "$LAB_NAME-inet" iptables "$1" FORWARD "$dir" "$RELAY_PUBLIC/32" -m comment --comment "$WAN_RULE_COMMENT" \
            -j NFQUEUE --queue-num "$WAN_QUEUE" --queue-bypass
    done
}

# Senders hand the kernel segments of up to 64 KB (GSO), which cross the lab's veths whole: one random drop would
# take 45 packets at once, one loss event where a WAN has 45. The links into the internet router carry single
# packets while the profile is on (gso_max_segs 1 makes the kernel segment before the link).
WAN_LINKS=("relay eth0" "cgnat wan" "hotel wan")
wan_gso_max_segs() { # N
    local l ns dev
    for l in "${WAN_LINKS[@]}"; do
        read -r ns dev <<<"$l"
        ip -n "$LAB_NAME-$ns" link set dev "$dev" gso_max_segs "$1"
    done
}

wan_up() {
    local bin=$LAB/wan-delay/wan-delay
    mkdir -p "$LAB/wan-delay"
    (cd "$HERE/wan-delay" && CGO_ENABLED=0 go build -o "$bin" .) >&2
    ip netns exec "$LAB_NAME-inet" "$bin" "$WAN_QUEUE" "$WAN_DELAY_MS" >"$tmp/wan.out" 2>&1 &
    echo $! >"$tmp/wan.pid"
    for _ in $(seq 50); do grep -q ready "$tmp/wan.out" && break; sleep 0.1; done
    grep -q ready "$tmp/wan.out" || { echo "bench: wan-delay did not start: $(cat "$tmp/wan.out")" >&2; return 1; }
    wan_gso_max_segs 1
    wan_rules -A
}

wan_down() {
    local pid
    if [ -s "$tmp/wan.pid" ]; then
        while [[ $(ip netns exec "$LAB_NAME-inet" iptables -S FORWARD 2>/dev/null) == *"--comment $WAN_RULE_COMMENT"* ]]; do
            wan_rules -D 2>/dev/null || break
        done
        pid=$(<"$tmp/wan.pid")
        if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
        rm -f "$tmp/wan.pid"
        wan_gso_max_segs 65535 || true
    fi
}

# ---- the hosts: where a command runs, and what each host is ----------------------------------------------------
declare -A KIND WG_IMPL
for h in relay rpi1 laptop; do KIND[$h]=$(jq -r --arg h "$h" '.hosts[$h].kind // "nspawn"' "$LAB/inventory.json"); done

on_host() { # host command...: in a container's network namespace (this machine's kernel), or inside a VM over SSH
    local host=$1
    shift
    if [ "${KIND[$host]}" = vm ]; then lab ssh "$host" "$@"; else ip netns exec "$LAB_NAME-$host" "$@"; fi
}

wg_impl() { # host -> kernel | wireguard-go: what runs its wg0 (a kernel link's details start with `wireguard`)
    if [[ $(on_host "$1" ip -details link show wg0) =~ $'\n'\ +wireguard\  ]]; then echo kernel; else echo wireguard-go; fi
}

host_system() { # host -> its Debian and kernel (a container's is this machine's)
    # shellcheck disable=SC2016  # expanded on the host
    lab ssh "$1" 'echo "Debian $(cat /etc/debian_version), Linux $(uname -r)"'
}

host_label() { # host -> its kind as the figures name it
    printf '%s/%s' "$([ "${KIND[$1]}" = vm ] && echo "TCG VM" || echo container)" \
        "$([ "${WG_IMPL[$1]}" = kernel ] && echo "kernel WireGuard" || echo wireguard-go)"
}

# The hosts the figures that follow cross, appended to their names: figure_hosts HOST...
FIGURE_HOSTS=
figure_hosts() {
    local h
    FIGURE_HOSTS=
    for h in "$@"; do FIGURE_HOSTS+="${FIGURE_HOSTS:+, }$h $(host_label "$h")"; done
}

# ---- measuring ------------------------------------------------------------------------------------------------
seconds() { # command... -> wall seconds
    local start=$EPOCHREALTIME
    "$@" >/dev/null
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

rtt() { # host address -> average ms
    on_host "$1" ping -n -q -c "$PINGS" -i 0.05 -W 2 "$2" | awk -F/ '/^rtt/ { print $5 }'
}

# A TCP sink on the receiver: time from accepting to end of stream, in MB/s. Both scripts reach the host on stdin
# (`python3 -`), so a VM needs nothing but its own python3 (Debian's unattended-upgrades brings it).
cat >"$tmp/sink.py" <<'EOF'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
t0, n = time.monotonic(), 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    n += len(b)
print("%.1f" % (n / (time.monotonic() - t0) / 1e6), flush=True)
EOF

# The sender: BYTES of zeros to HOST:PORT; with MSS (not 0), its segments carry at most MSS bytes, as a LAN host's do
# (MSS 1460 on a 1500-byte LAN) whatever the tunnel's MTU.
cat >"$tmp/source.py" <<'EOF'
import socket, sys
host, port, size, mss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket()
if mss:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
s.connect((host, port))
chunk = bytes(1 << 20)
while size > 0:
    size -= s.send(chunk[:min(size, len(chunk))])
s.close()
EOF

# A sink over SSH is bounded by `timeout` on the host itself: killing the local ssh leaves a remote process running.
tcp_throughput() { # sender-host receiver-host receiver-address [mss] -> MB/s (one run)
    : >"$tmp/sink.out"
    on_host "$2" timeout "$SEND_TIMEOUT" python3 - "$3" "$SINK_PORT" <"$tmp/sink.py" >"$tmp/sink.out" &
    local sink_pid=$!
    echo "$sink_pid" >"$tmp/sink.pid"
    for _ in $(seq 300); do grep -q ready "$tmp/sink.out" && break; sleep 0.1; done
    grep -q ready "$tmp/sink.out" || { echo "bench: the TCP sink on $2 did not start" >&2; return 1; }
    if ! on_host "$1" timeout "$SEND_TIMEOUT" python3 - "$3" "$SINK_PORT" "$((HOP_MB * 1000000))" "${4:-0}" <"$tmp/source.py"; then
        kill "$sink_pid" 2>/dev/null || true
        wait "$sink_pid" 2>/dev/null || true
        rm -f "$tmp/sink.pid"
        echo "bench: sending from $LAB_NAME-$1 to $3:$SINK_PORT failed" >&2
        return 1
    fi
    wait "$sink_pid"
    rm -f "$tmp/sink.pid"
    sed -n 2p "$tmp/sink.out"
}

median_of_runs() { # command... -> median of RUNS results; fails when a run fails
    local out=()
    for _ in $(seq "$RUNS"); do out+=("$("$@")"); done
    printf '%s\n' "${out[@]}" | median
}

http_throughput() { # host -> MB/s
    on_host "$1" curl --silent --show-error --output /dev/null --max-time 300 --write-out '%{speed_download}' \
        "http://$LAN_HOST/bench.bin" | awk '{ printf "%.1f", $1 / 1e6 }'
}

figure() { printf '%s%s: %s%s\n' "$1" "${FIGURE_HOSTS:+ [$FIGURE_HOSTS]}" "$2" "${3:+ $3}"; }

ratio() { # name numerator denominator
    figure "$1" "$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", a / b }')" ""
}

# UDP datagrams a host's network stack dropped because a socket's receive buffer was full (/proc/net/snmp).
udp_rcvbuf_errors() { # host
    on_host "$1" cat /proc/net/snmp |
        awk '/^Udp:/ { if (!n) { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") n = i } else print $n }'
}

udp_rcvbuf_snapshot() { echo "$(udp_rcvbuf_errors relay) $(udp_rcvbuf_errors rpi1) $(udp_rcvbuf_errors laptop)"; }

laptop_reaches_lan_host() { # seconds to wait
    local _
    for _ in $(seq "$1"); do
        on_host laptop ping -n -q -c 1 -W 1 "$LAN_HOST" >/dev/null 2>&1 && return 0
    done
    on_host laptop ping -n -q -c 1 -W 2 "$LAN_HOST" >/dev/null ||
        { echo "bench: the laptop does not reach the LAN host $LAN_HOST through the tunnel" >&2; return 1; }
}

drops_since() { # snapshot -> "relay N, rpi1 N, laptop N"
    local relay rpi1 laptop
    read -r relay rpi1 laptop <<<"$1"
    echo "relay $(($(udp_rcvbuf_errors relay) - relay)), rpi1 $(($(udp_rcvbuf_errors rpi1) - rpi1)), laptop $(($(udp_rcvbuf_errors laptop) - laptop))"
}

# ---- the run --------------------------------------------------------------------------------------------------
# A step that fails says where: a figure missing from the output is not silent.
trap 'echo "bench: line $LINENO failed (exit $?): $BASH_COMMAND" >&2' ERR
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "# wg-relay lab benchmark, $(date -u +%Y-%m-%dT%H.%M.%SZ); medians of $RUNS runs; MB = 10^6 bytes"
if [ "$WAN" = 1 ]; then
    wan_up
    echo "# WAN profile: ${WAN_DELAY_MS} ms delay and ${WAN_LOSS} random loss each way on the relay's internet link"
fi
figure "machine cores" "$(nproc)" cores
for h in relay rpi1 laptop; do
    WG_IMPL[$h]=$(wg_impl "$h")
    echo "# $h: $(host_label "$h"), $(host_system "$h")"
done

if [ "$TIME_PULUMI" != 0 ]; then
    v=$(median_of_runs seconds bash "$HERE/lab.sh" pulumi preview --stack lab --expect-no-changes)
    figure "pulumi preview no changes (median of $RUNS)" "$v" s
    v=$(median_of_runs seconds bash "$HERE/lab.sh" pulumi up --stack lab --yes --skip-preview)
    figure "pulumi up no changes (median of $RUNS)" "$v" s
fi

# The hop. wg0 has the MTU of the wstunnel path (tunnel.mtu); the direct pair has the one WireGuard straight over
# UDP can use on a real path (tunnel.udpMtu), since that is the alternative a user has.
mtu=$(on_host rpi1 cat /sys/class/net/wg0/mtu)
bench_if_down relay >/dev/null 2>&1 || true   # left over from an interrupted run
bench_if_down rpi1 >/dev/null 2>&1 || true
relay_pub=$(bench_if_up relay "$BENCH_RELAY_ADDR" "$DIRECT_MTU" "$BENCH_PORT")
pi_pub=$(bench_if_up rpi1 "$BENCH_PI_ADDR" "$DIRECT_MTU")
bench_peer relay "$pi_pub" "$BENCH_PI_ADDR"
bench_peer rpi1 "$relay_pub" "$BENCH_RELAY_ADDR" "$RELAY_PUBLIC:$BENCH_PORT"
for _ in $(seq 20); do
    on_host rpi1 ping -n -q -c 1 -W 1 "$BENCH_RELAY_ADDR" >/dev/null 2>&1 && break
done
on_host rpi1 ping -n -q -c 1 -W 1 "$BENCH_RELAY_ADDR" >/dev/null ||
    { echo "bench: the direct WireGuard pair ($BENCH_IF, UDP $RELAY_PUBLIC:$BENCH_PORT) does not carry traffic" >&2; exit 1; }
# After a restart of the relay's wg0 (a config change), rpi1 handshakes again at its next keepalive (25 s).
for _ in $(seq 30); do
    on_host rpi1 ping -n -q -c 1 -W 1 "$RELAY_TUNNEL" >/dev/null 2>&1 && break
done
on_host rpi1 ping -n -q -c 1 -W 2 "$RELAY_TUNNEL" >/dev/null ||
    { echo "bench: rpi1 does not reach the relay's tunnel address $RELAY_TUNNEL over wg0" >&2; exit 1; }

sink_rule -I
figure_hosts rpi1 relay
figure "hop MTU of WireGuard through wstunnel (wg0)" "$mtu" bytes
figure "hop MTU of WireGuard direct UDP (wgbench)" "$DIRECT_MTU" bytes
v=$(rtt rpi1 "$BENCH_RELAY_ADDR")
figure "hop rpi1 -> relay ping WireGuard direct UDP (avg of $PINGS)" "$v" ms
v=$(rtt rpi1 "$RELAY_TUNNEL")
figure "hop rpi1 -> relay ping WireGuard through wstunnel (avg of $PINGS)" "$v" ms
snap=$(udp_rcvbuf_snapshot)
direct=$(median_of_runs tcp_throughput rpi1 relay "$BENCH_RELAY_ADDR")
direct_drops=$(drops_since "$snap")
snap=$(udp_rcvbuf_snapshot)
tunnel=$(median_of_runs tcp_throughput rpi1 relay "$RELAY_TUNNEL")
tunnel_drops=$(drops_since "$snap")
figure "hop rpi1 -> relay TCP ${HOP_MB} MB WireGuard direct UDP (median of $RUNS)" "$direct" MB/s
figure "hop rpi1 -> relay TCP ${HOP_MB} MB WireGuard through wstunnel (median of $RUNS)" "$tunnel" MB/s
figure "hop UDP receive-buffer drops, direct runs" "$direct_drops" datagrams
figure "hop UDP receive-buffer drops, wstunnel runs" "$tunnel_drops" datagrams
ratio "hop throughput ratio wstunnel/direct" "$tunnel" "$direct"
# The same hop with the segments of a LAN host's flow: a client <-> LAN host flow carries 1500-byte packets whatever
# the tunnel's MTU, so each pays wstunnel's per-packet cost.
snap=$(udp_rcvbuf_snapshot)
direct=$(median_of_runs tcp_throughput rpi1 relay "$BENCH_RELAY_ADDR" "$LAN_MSS")
direct_drops=$(drops_since "$snap")
snap=$(udp_rcvbuf_snapshot)
tunnel=$(median_of_runs tcp_throughput rpi1 relay "$RELAY_TUNNEL" "$LAN_MSS")
tunnel_drops=$(drops_since "$snap")
figure "hop rpi1 -> relay TCP ${HOP_MB} MB at MSS $LAN_MSS WireGuard direct UDP (median of $RUNS)" "$direct" MB/s
figure "hop rpi1 -> relay TCP ${HOP_MB} MB at MSS $LAN_MSS WireGuard through wstunnel (median of $RUNS)" "$tunnel" MB/s
figure "hop UDP receive-buffer drops at MSS $LAN_MSS, direct runs" "$direct_drops" datagrams
figure "hop UDP receive-buffer drops at MSS $LAN_MSS, wstunnel runs" "$tunnel_drops" datagrams
ratio "hop throughput ratio wstunnel/direct at MSS $LAN_MSS" "$tunnel" "$direct"
bench_if_down relay
bench_if_down rpi1
sink_rule -D

# End to end. A restart of the relay's wg0 (a config change, as the bench's first `pulumi up` may apply) leaves the
# laptop's session unanswered until it handshakes again (WireGuard's 15 s without a reply): wait for it, or the
# first ping run loses every packet.
laptop_reaches_lan_host 30
figure_hosts laptop relay rpi1
v=$(rtt laptop "$LAN_HOST")
figure "ping laptop -> LAN host through the tunnel (avg of $PINGS)" "$v" ms
v=$(rtt rpi1 "$LAN_HOST")
figure "ping rpi1 -> LAN host on the LAN (avg of $PINGS, baseline)" "$v" ms
head -c "$((PAYLOAD_MB * 1000000))" /dev/urandom >"$WWW/bench.bin"
snap=$(udp_rcvbuf_snapshot)
wstunnel_e2e=$(median_of_runs http_throughput laptop)
figure "HTTP ${PAYLOAD_MB} MB laptop <- LAN host through the tunnel (median of $RUNS)" "$wstunnel_e2e" MB/s
figure "HTTP through the tunnel, UDP receive-buffer drops" "$(drops_since "$snap")" datagrams
v=$(median_of_runs http_throughput rpi1)
figure "HTTP ${PAYLOAD_MB} MB rpi1 <- LAN host on the LAN (median of $RUNS, baseline)" "$v" MB/s

# End to end on plain WireGuard over UDP, both legs, through the same relay.
if [ "$E2E_UDP" != 0 ]; then
    hotel_udp_rule -I
    touch "$tmp/on-udp"
    LAB_STACK_CHANGES='{"relayDirectUdp":{"udpPorts":[]},"rpi1Transport":"udp","laptopTransport":"udp"}' lab stack-config >/dev/null
    rm -f "$LAB/pulumi-state/e2e-converged"   # the e2e tests' mark of the config last applied (test/e2e/lab.ts)
    lab pulumi up --stack lab --yes --skip-preview >/dev/null
    laptop_reaches_lan_host 30
    both_legs_on_udp() {
        local host
        for host in rpi1 laptop; do
            [[ $(lab ssh "$host" sudo wg show wg0 endpoints) == *"$RELAY_PUBLIC:51820"* ]] ||
                { echo "bench: $host's wg0 does not send to the relay's UDP port" >&2; return 1; }
        done
    }
    both_legs_on_udp
    snap=$(udp_rcvbuf_snapshot)
    udp_e2e=$(median_of_runs http_throughput laptop)
    figure "HTTP ${PAYLOAD_MB} MB laptop <- LAN host, WireGuard over UDP on both legs (median of $RUNS, baseline)" "$udp_e2e" MB/s
    figure "HTTP over UDP on both legs, UDP receive-buffer drops" "$(drops_since "$snap")" datagrams
    ratio "end-to-end ratio wstunnel/udp" "$wstunnel_e2e" "$udp_e2e"
    # Both legs on `transport: auto` while UDP passes (their transport units ping the relay every 2 s): on UDP
    # before and after the runs, so the figure is auto's UDP path beside plain UDP's.
    LAB_STACK_CHANGES='{"relayDirectUdp":{"udpPorts":[]},"rpi1Transport":"auto","laptopTransport":"auto"}' lab stack-config >/dev/null
    lab pulumi up --stack lab --yes --skip-preview >/dev/null
    laptop_reaches_lan_host 30
    both_legs_on_udp
    auto_e2e=$(median_of_runs http_throughput laptop)
    both_legs_on_udp
    figure "HTTP ${PAYLOAD_MB} MB laptop <- LAN host, transport auto on both legs while UDP passes (median of $RUNS)" "$auto_e2e" MB/s
    ratio "end-to-end ratio auto/udp" "$auto_e2e" "$udp_e2e"
    lab stack-config >/dev/null
    lab pulumi up --stack lab --yes --skip-preview >/dev/null
    rm -f "$tmp/on-udp"
    hotel_udp_rule -D
fi

# Scale: the same no-change `pulumi up`, with SCALE_CLIENTS more clients and five gateways.
if [ "$SCALE_CLIENTS" != 0 ]; then
    FIGURE_HOSTS=
    WG_RELAY_LAB_GATEWAYS=5 bash "$HERE/hosts.sh" up >&2
    rm -f "$LAB/pulumi-state/e2e-converged"   # the e2e tests' mark of the config last applied (test/e2e/lab.ts)
    one=$(median_of_runs seconds lab pulumi up --stack lab --yes --skip-preview)
    figure "pulumi up no changes, 1 client and 1 gateway (median of $RUNS, baseline)" "$one" s
    touch "$tmp/scaled"
    for clients in $SCALE_CLIENTS; do
        LAB_STACK_CHANGES="{\"scale\":{\"clients\":$clients}}" lab stack-config >/dev/null
        v=$(seconds lab pulumi up --stack lab --yes --skip-preview)
        figure "pulumi up applying the stack with $clients more clients and 4 gateways, from the previous count" "$v" s
        many=$(median_of_runs seconds lab pulumi up --stack lab --yes --skip-preview)
        figure "pulumi up no changes, $((clients + 1)) clients and 5 gateways (median of $RUNS)" "$many" s
        printf 'no-op up ratio %s clients/1: %s\n' "$clients" "$(awk -v a="$many" -v b="$one" 'BEGIN { printf "%.2f", a / b }')"
    done
    lab stack-config >/dev/null
    PULUMI_SKIP_CHECKPOINTS=true lab pulumi up --stack lab --yes --skip-preview >/dev/null
    rm -f "$tmp/scaled"
fi
