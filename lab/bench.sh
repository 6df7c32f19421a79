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
#     It is removed again on exit, also on failure;
#   - end to end: RTT and HTTP throughput from the laptop to the LAN host through wss:443, next to the same from
#     the Pi on the LAN itself (the baseline without the tunnel).
# Traffic tools (ping, curl, bash's /dev/tcp, a python3 TCP sink) run in the hosts' network namespaces
# (ip netns exec), outside the containers. Traffic stays inside the lab's namespaces. MB = 10^6 bytes.
#
# Env: BENCH_RUNS (3: runs per timing and per throughput figure, the median is printed), BENCH_PAYLOAD_MB (64: the
# end-to-end HTTP download), BENCH_HOP_MB (256: bytes sent per hop throughput run), BENCH_PINGS (50).
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

lab() { bash "$HERE/lab.sh" "$@"; }

status=$(lab status 2>/dev/null || true)
if [ ! -s "$LAB/inventory.json" ] || [ "$(grep -cE "^$LAB_NAME-(relay|rpi1|laptop) .*: (running|degraded)\$" <<<"$status")" != 3 ]; then
    lab up >&2
fi
# The lab must be converged before timing no-change runs.
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
    rm -rf "$tmp"
    bench_if_down relay || rc=1
    bench_if_down rpi1 || rc=1
    exit "$rc"
}

# ---- the direct WireGuard pair, on the hosts themselves (their own wireguard-go, keys made there) ----------------
# Prints the host's throwaway public key.
bench_if_up() { # host address mtu [listen-port]
    lab ssh "$1" sudo bash -s -- "$BENCH_IF" "$2/$BENCH_PREFIX" "$3" "${4:-}" <<'EOF'
set -euo pipefail
ifname=$1 cidr=$2 mtu=$3 port=${4:-}
key=/run/wg-relay-bench.key
(umask 077; wg genkey >"$key")
WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go "$ifname" >/dev/null 2>&1
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

bench_peer() { # host peer-public-key allowed-ip [endpoint]
    lab ssh "$1" sudo wg set "$BENCH_IF" peer "$2" allowed-ips "$3/32" ${4:+endpoint "$4" persistent-keepalive 25}
}

# ---- measuring ------------------------------------------------------------------------------------------------
seconds() { # command... -> wall seconds
    local start=$EPOCHREALTIME
    "$@" >/dev/null
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

rtt() { # namespace address -> average ms
    ip netns exec "$LAB_NAME-$1" ping -n -q -c "$PINGS" -i 0.05 -W 2 "$2" | awk -F/ '/^rtt/ { print $5 }'
}

# A TCP sink in the receiver's namespace: time from accepting to end of stream, in MB/s.
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

tcp_throughput() { # sender-ns receiver-ns receiver-address -> MB/s (one run)
    : >"$tmp/sink.out"
    ip netns exec "$LAB_NAME-$2" python3 "$tmp/sink.py" "$3" "$SINK_PORT" >"$tmp/sink.out" &
    local sink_pid=$!
    echo "$sink_pid" >"$tmp/sink.pid"
    for _ in $(seq 50); do grep -q ready "$tmp/sink.out" && break; sleep 0.1; done
    grep -q ready "$tmp/sink.out" || { echo "bench: the TCP sink in $LAB_NAME-$2 did not start" >&2; return 1; }
    # shellcheck disable=SC2016  # expanded by the inner bash
    ip netns exec "$LAB_NAME-$1" timeout 120 bash -c 'exec 3>"/dev/tcp/$0/$1" && head -c "$2" /dev/zero >&3' \
        "$3" "$SINK_PORT" "$((HOP_MB * 1000000))"
    wait "$sink_pid"
    rm -f "$tmp/sink.pid"
    sed -n 2p "$tmp/sink.out"
}

median_of_runs() { # command... -> median of RUNS results; fails when a run fails
    local out=()
    for _ in $(seq "$RUNS"); do out+=("$("$@")"); done
    printf '%s\n' "${out[@]}" | median
}

http_throughput() { # namespace -> MB/s
    ip netns exec "$LAB_NAME-$1" curl --silent --show-error --output /dev/null --max-time 300 --write-out '%{speed_download}' \
        "http://$LAN_HOST/bench.bin" | awk '{ printf "%.1f", $1 / 1e6 }'
}

figure() { printf '%s: %s %s\n' "$1" "$2" "$3"; }

# ---- the run --------------------------------------------------------------------------------------------------
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "# wg-relay lab benchmark, $(date -u +%Y-%m-%dT%H.%M.%SZ); medians of $RUNS runs; MB = 10^6 bytes"
figure "machine cores" "$(nproc)" cores

v=$(median_of_runs seconds bash "$HERE/lab.sh" pulumi preview --stack lab --expect-no-changes)
figure "pulumi preview no changes (median of $RUNS)" "$v" s
v=$(median_of_runs seconds bash "$HERE/lab.sh" pulumi up --stack lab --yes --skip-preview)
figure "pulumi up no changes (median of $RUNS)" "$v" s

# The hop. Same MTU as wg0, so the two differ only in how WireGuard's packets travel.
mtu=$(ip netns exec "$LAB_NAME-rpi1" cat /sys/class/net/wg0/mtu)
bench_if_down relay >/dev/null 2>&1 || true   # left over from an interrupted run
bench_if_down rpi1 >/dev/null 2>&1 || true
relay_pub=$(bench_if_up relay "$BENCH_RELAY_ADDR" "$mtu" "$BENCH_PORT")
pi_pub=$(bench_if_up rpi1 "$BENCH_PI_ADDR" "$mtu")
bench_peer relay "$pi_pub" "$BENCH_PI_ADDR"
bench_peer rpi1 "$relay_pub" "$BENCH_RELAY_ADDR" "$RELAY_PUBLIC:$BENCH_PORT"
for _ in $(seq 20); do
    ip netns exec "$LAB_NAME-rpi1" ping -n -q -c 1 -W 1 "$BENCH_RELAY_ADDR" >/dev/null 2>&1 && break
done
ip netns exec "$LAB_NAME-rpi1" ping -n -q -c 1 -W 1 "$BENCH_RELAY_ADDR" >/dev/null ||
    { echo "bench: the direct WireGuard pair ($BENCH_IF, UDP $RELAY_PUBLIC:$BENCH_PORT) does not carry traffic" >&2; exit 1; }
ip netns exec "$LAB_NAME-rpi1" ping -n -q -c 1 -W 2 "$RELAY_TUNNEL" >/dev/null ||
    { echo "bench: rpi1 does not reach the relay's tunnel address $RELAY_TUNNEL over wg0" >&2; exit 1; }

figure "hop MTU of both WireGuard interfaces" "$mtu" bytes
v=$(rtt rpi1 "$BENCH_RELAY_ADDR")
figure "hop rpi1 -> relay ping WireGuard direct UDP (avg of $PINGS)" "$v" ms
v=$(rtt rpi1 "$RELAY_TUNNEL")
figure "hop rpi1 -> relay ping WireGuard through wstunnel (avg of $PINGS)" "$v" ms
direct=$(median_of_runs tcp_throughput rpi1 relay "$BENCH_RELAY_ADDR")
tunnel=$(median_of_runs tcp_throughput rpi1 relay "$RELAY_TUNNEL")
figure "hop rpi1 -> relay TCP ${HOP_MB} MB WireGuard direct UDP (median of $RUNS)" "$direct" MB/s
figure "hop rpi1 -> relay TCP ${HOP_MB} MB WireGuard through wstunnel (median of $RUNS)" "$tunnel" MB/s
printf 'hop throughput ratio wstunnel/direct: %s\n' "$(awk -v a="$tunnel" -v b="$direct" 'BEGIN { printf "%.2f", a / b }')"
bench_if_down relay
bench_if_down rpi1

# End to end.
v=$(rtt laptop "$LAN_HOST")
figure "ping laptop -> LAN host through the tunnel (avg of $PINGS)" "$v" ms
v=$(rtt rpi1 "$LAN_HOST")
figure "ping rpi1 -> LAN host on the LAN (avg of $PINGS, baseline)" "$v" ms
head -c "$((PAYLOAD_MB * 1000000))" /dev/urandom >"$WWW/bench.bin"
v=$(median_of_runs http_throughput laptop)
figure "HTTP ${PAYLOAD_MB} MB laptop <- LAN host through the tunnel (median of $RUNS)" "$v" MB/s
v=$(median_of_runs http_throughput rpi1)
figure "HTTP ${PAYLOAD_MB} MB rpi1 <- LAN host on the LAN (median of $RUNS, baseline)" "$v" MB/s
