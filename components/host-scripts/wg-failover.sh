#!/bin/bash
# wg-failover: one round of a roaming client's relay failover; wg-relay-failover.service runs it every few seconds.
# Installed by wg-relay as it is.
#
#   wg-failover STATE_DIR PUBLIC_KEYS INTERFACE TEMPLATE
#
# TEMPLATE is the wg0 template wg-apply installed; its line
#   # wg-relay failover: ROUTES RELAY...
# says what to move. ROUTES: the client's LAN subnets, separated by commas. RELAY: NAME,SUBNET,RELAY_ADDRESS,OWN_ADDRESS
# for each relay in the client's order of preference (its primary first): the relay's tunnel subnet, its address
# there and the client's. PUBLIC_KEYS has one "NAME KEY" line per relay (wg-apply's public-keys file). Reading both
# from what is installed keeps a round in step with the conf: while a `pulumi up` changes the routes or removes a
# relay, nothing the new conf left out is put back. Without the line, or with a relay that has no key (the stack is
# being changed), a round does nothing.
#
# Each round pings every relay's tunnel address from the client's address in that relay's subnet, which goes through
# that relay's own peer and session. A relay counts as down after 2 unanswered rounds in a row and as up again after
# 3 answered ones (STATE_DIR keeps the count); the LAN routes belong to the first relay in order that is up, and stay
# where they are while none is. Moving them puts ROUTES in that relay's peer's AllowedIPs (WireGuard takes them off
# the other peer) and gives each route the client's address in that relay's subnet as its source: the relay accepts
# only that address from the client, and the gateways send the replies back through the relay whose subnet it is in.
set -euo pipefail

down_after=2
up_after=3

if [ $# -ne 4 ]; then
    echo "usage: wg-failover STATE_DIR PUBLIC_KEYS INTERFACE TEMPLATE" >&2
    exit 2
fi
state_dir=$1 public_keys=$2 iface=$3 template=$4
mkdir -p "$state_dir"

directive=$(sed -n 's/^# wg-relay failover: //p' "$template" | head -n 1)
if [ -z "$directive" ]; then
    exit 0
fi
read -r routes relays_text <<<"$directive"
read -r -a relays <<<"$relays_text"

declare -A public_key=()
while read -r name key; do
    [ -n "$name" ] && public_key[$name]=$key
done <"$public_keys"
for relay in "${relays[@]}"; do
    if [ -z "${public_key[${relay%%,*}]:-}" ]; then
        exit 0
    fi
done

# Updates and prints a relay's state ("up" or "down") after this round's probe.
probe() { # NAME RELAY_ADDRESS OWN_ADDRESS
    local file=$state_dir/$1 state=up count=0 answered=0
    if [ -s "$file" ]; then
        read -r state count <"$file"
    fi
    if ping -c 1 -W 1 -I "$3" "$2" >/dev/null 2>&1; then
        answered=1
    fi
    # count: rounds in a row that went against the current state
    if { [ "$state" = up ] && [ "$answered" = 1 ]; } || { [ "$state" = down ] && [ "$answered" = 0 ]; }; then
        count=0
    else
        count=$((count + 1))
    fi
    if [ "$state" = up ] && [ "$count" -ge "$down_after" ]; then
        state=down count=0
        echo "wg-failover: relay $1 stopped answering at $2" >&2
    elif [ "$state" = down ] && [ "$count" -ge "$up_after" ]; then
        state=up count=0
        echo "wg-failover: relay $1 answers again at $2" >&2
    fi
    echo "$state $count" >"$file"
    echo "$state"
}

target=""
for relay in "${relays[@]}"; do
    IFS=, read -r name _ address own <<<"$relay"
    if [ "$(probe "$name" "$address" "$own")" = up ] && [ -z "$target" ]; then
        target=$relay
    fi
done
if [ -z "$target" ]; then
    exit 0 # no relay answers: the routes stay where they are
fi

IFS=, read -r name subnet _ own <<<"$target"
key=${public_key[$name]}
first_route=${routes%%,*}
holder=$(wg show "$iface" allowed-ips | awk -v route="$first_route" '{ for (i = 2; i <= NF; i++) if ($i == route) print $1 }')
in_place=1
[ "$holder" = "$key" ] || in_place=0
for route in ${routes//,/ }; do
    ip -4 route show "$route" dev "$iface" | grep -qw "src $own" || in_place=0
done
if [ "$in_place" = 1 ]; then
    exit 0
fi

wg set "$iface" peer "$key" allowed-ips "$subnet,$routes"
for relay in "${relays[@]}"; do
    IFS=, read -r other other_subnet _ _ <<<"$relay"
    if [ "$other" != "$name" ]; then
        wg set "$iface" peer "${public_key[$other]}" allowed-ips "$other_subnet"
    fi
done
for route in ${routes//,/ }; do
    ip -4 route replace "$route" dev "$iface" src "$own"
done
echo "wg-failover: $routes now through relay $name (from $own)"
