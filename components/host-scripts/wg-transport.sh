#!/bin/bash
# wg-transport: one round of a client's `transport: auto`; wg-relay-transport.service runs it every few seconds.
# Installed by wg-relay as it is.
#
#   wg-transport STATE_DIR PUBLIC_KEYS INTERFACE TEMPLATE
#
# TEMPLATE is the wg0 template wg-apply installed; its line
#   # wg-relay transport auto: NAME UDP_ENDPOINT WSTUNNEL_ENDPOINT RELAY_ADDRESS OWN_ADDRESS
# names the relay's peer (its key is NAME's line in PUBLIC_KEYS, wg-apply's public-keys file), its two endpoints
# (the relay's own UDP port, and the local wstunnel client's listener that carries WireGuard over wss), and the
# relay's and the client's tunnel addresses. Without the line, or without NAME's key, a round does nothing.
#
# Only the peer's endpoint moves: the session keys stay valid, and the relay learns the new source from the first
# authenticated packet. On UDP, each round pings the relay's tunnel address; after 2 unanswered rounds in a row the
# endpoint goes to wstunnel. On wstunnel, UDP is tried again 60 s after the move: the endpoint goes back to UDP and
# stays there if a ping answers within 3 tries of 1 s each; otherwise back to wstunnel, and the next try waits twice
# as long (at most 480 s). A first round (no counts in STATE_DIR yet) on wstunnel tries UDP at once. Any other
# endpoint (set by hand) is left alone. STATE_DIR keeps the counts.
set -euo pipefail

down_after=2
first_retry_seconds=60
max_retry_seconds=480
udp_tries=3

if [ $# -ne 4 ]; then
    echo "usage: wg-transport STATE_DIR PUBLIC_KEYS INTERFACE TEMPLATE" >&2
    exit 2
fi
state_dir=$1 public_keys=$2 iface=$3 template=$4
mkdir -p "$state_dir"

directive=$(sed -n 's/^# wg-relay transport auto: //p' "$template" | head -n 1)
if [ -z "$directive" ]; then
    exit 0
fi
read -r name udp wstunnel relay own <<<"$directive"
key=$(awk -v name="$name" '$1 == name { print $2 }' "$public_keys")
if [ -z "$key" ]; then
    exit 0
fi

now=$(date +%s)
# misses: unanswered rounds in a row on UDP; since: when the endpoint last went to wstunnel; retry: the wait from then.
# A unit that starts (boot, a `pulumi up`) on wstunnel tries UDP at once.
misses=0 since=$((now - first_retry_seconds)) retry=$first_retry_seconds
if [ -s "$state_dir/transport" ]; then
    read -r misses since retry <"$state_dir/transport"
fi

answers() { ping -c 1 -W 1 -I "$own" "$relay" >/dev/null 2>&1; }
move_to() { # ENDPOINT
    wg set "$iface" peer "$key" endpoint "$1"
}

live=$(wg show "$iface" endpoints | awk -v key="$key" '$1 == key { print $2 }')
case $live in
    "$udp")
        if answers; then
            misses=0
        else
            misses=$((misses + 1))
        fi
        if [ "$misses" -ge "$down_after" ]; then
            move_to "$wstunnel"
            misses=0 since=$now retry=$first_retry_seconds
            echo "wg-transport: $name stopped answering over UDP ($udp): now through wstunnel ($wstunnel)"
        fi
        ;;
    "$wstunnel")
        if [ $((now - since)) -ge "$retry" ]; then
            move_to "$udp"
            answered=0
            for _ in $(seq "$udp_tries"); do
                if answers; then
                    answered=1
                    break
                fi
            done
            if [ "$answered" = 1 ]; then
                misses=0 retry=$first_retry_seconds
                echo "wg-transport: $name answers over UDP ($udp): now over UDP"
            else
                move_to "$wstunnel"
                since=$(date +%s)
                retry=$((retry * 2 > max_retry_seconds ? max_retry_seconds : retry * 2))
                echo "wg-transport: $name does not answer over UDP ($udp) yet: back through wstunnel ($wstunnel), next try in $retry s"
            fi
        fi
        ;;
    *)
        exit 0
        ;;
esac
echo "$misses $since $retry" >"$state_dir/transport"
