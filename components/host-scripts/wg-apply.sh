#!/bin/bash
# wg-apply: brings a WireGuard interface in line with the template wg-relay pushed, with the least disruption.
# Installed by wg-relay as it is; `pulumi up` runs it after writing the template or a key.
#
#   wg-apply [--when-complete] TEMPLATE PUBLIC_KEYS CONF APPLIED
#
# TEMPLATE is a wg-quick conf without key material. Its key lines say where each key is:
#     PrivateKey = <from FILE>        PresharedKey = <from FILE>        PublicKey = <public key of NAME>
# FILEs are root-only key files; PUBLIC_KEYS has one "NAME KEY" line per peer. %default-route-dev (an interface
# the config left to the host) stands for the interface of the host's default route. wg-apply writes CONF (the conf
# wg-quick reads; the interface is named after it) with the keys and that interface filled in, then:
#   - interface down: enables and starts it;
#   - [Interface] settings changed (address, port, MTU, hooks; a new private key is not one): restarts it, setting
#     the endpoints its peers without an Endpoint of their own had roamed to again and handshaking with them at once;
#   - otherwise `wg syncconf` applies peers, keys and preshared keys without a restart (and removes peers added by
#     hand), and the interface's routes follow the peers' AllowedIPs; the endpoint of a relay's peer on transport
#     auto stays the one wg-transport set. After a new private key, or towards a peer
#     whose public key is new (the other side rotated its key), peers kept alive are told at once (a keepalive
#     switched on is sent at once), so they handshake now rather than at their next keepalive; and the firewall
#     rules the template's PostUp lines add are put back if one is missing (PostUp runs only when wg0 starts).
# APPLIED keeps a copy of what was last applied. With --when-complete a template that names a key not there yet is
# left alone (exit 0): the step that writes a key runs this before the one that writes the template.
#
#   wg-apply --route-mtus CONF
#
# Routes every AllowedIPs network of each peer marked `# wg-relay route MTU: N` (a comment before its AllowedIPs)
# into the interface with that MTU: the relay's clients on plain UDP, below wg0's own MTU. The relay's PostUp runs
# it at every start; wg-apply runs it again after syncing peers, whose routes it adds without an MTU.
#
#   wg-apply --check-rules INTERFACE
#
# Reads firewall rules on stdin, one per line as a PostUp line writes them (`iptables|ip6tables [-t TABLE] -A|-I
# CHAIN RULE`, %i for INTERFACE, %default-route-dev for the default route's interface), and prints "N present",
# "N missing" or "N unknown" (not in that form) for the Nth line from 0: the doctor's check, by the same reading
# of a rule that puts a missing one back.
set -euo pipefail

# "NETWORK MTU" for each AllowedIPs network of a peer with a route MTU.
route_mtus() { # CONF
    awk '/^\[Peer\]/ { mtu = "" }
        /^# wg-relay route MTU: [0-9]+$/ { mtu = $NF }
        /^AllowedIPs = / && mtu != "" { sub(/^AllowedIPs = /, ""); n = split($0, nets, /, */); for (i = 1; i <= n; i++) print nets[i], mtu }' "$1"
}

# ip's family option for a network: -6 for IPv6, -4 for IPv4.
family_of() { # NETWORK
    case $1 in
        *:*) echo -6 ;;
        *) echo -4 ;;
    esac
}

set_route_mtus() { # CONF INTERFACE
    local net mtu
    route_mtus "$1" | while read -r net mtu; do
        ip "$(family_of "$net")" route replace "$net" dev "$2" mtu "$mtu"
    done
}

if [ "${1:-}" = "--route-mtus" ]; then
    if [ $# -ne 2 ]; then
        echo "usage: wg-apply --route-mtus CONF" >&2
        exit 2
    fi
    set_route_mtus "$2" "$(basename "$2" .conf)"
    exit 0
fi

# The interface of the default route (IPv4's, else IPv6's), for %default-route-dev; as the interface check step
# finds it (components/host/interfaces.ts).
default_route_dev() {
    { ip -4 -o route show default; ip -6 -o route show default; } 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }' || true
}

# The command that checks a firewall rule (`iptables|ip6tables [-t TABLE] -A|-I CHAIN RULE`) is in place, for the
# interface and default route's interface given; fails for a line not of that form. The one reading of a rule's
# text, for the restore below and --check-rules.
rule_check_command() { # RULE INTERFACE DEFAULT_DEV
    [[ $1 =~ ^(ip6?tables)(\ -t\ [a-z]+)?\ -[AI]\ ([A-Za-z0-9\ %/.,:_=-]+)$ ]] || return 1
    local check="${BASH_REMATCH[1]} -w${BASH_REMATCH[2]} -C ${BASH_REMATCH[3]//%i/$2}"
    printf '%s\n' "${check//%default-route-dev/$3}"
}

if [ "${1:-}" = "--check-rules" ]; then
    if [ $# -ne 2 ]; then
        echo "usage: wg-apply --check-rules INTERFACE" >&2
        exit 2
    fi
    index=0 check_dev=$(default_route_dev)
    while IFS= read -r rule; do
        if ! check=$(rule_check_command "$rule" "$2" "$check_dev"); then
            echo "$index unknown"
        elif (eval "$check") 2>/dev/null; then
            echo "$index present"
        else
            echo "$index missing"
        fi
        index=$((index + 1))
    done
    exit 0
fi

when_complete=0
if [ "${1:-}" = "--when-complete" ]; then
    when_complete=1
    shift
fi
if [ $# -ne 4 ]; then
    echo "usage: wg-apply [--when-complete] TEMPLATE PUBLIC_KEYS CONF APPLIED" >&2
    exit 2
fi
template=$1 public_keys=$2 conf=$3 applied=$4
iface=$(basename "$conf" .conf)
unit="wg-quick@$iface.service"

if [ ! -f "$template" ]; then
    echo "wg-apply: no template $template yet; nothing to apply"
    exit 0
fi

# One wg-apply per interface at a time: a host's steps run side by side.
mkdir -p "$(dirname "$applied")"
exec 9>"$applied.lock"
flock 9

declare -A public_key=()
if [ -f "$public_keys" ]; then
    while read -r name key; do
        [ -n "$name" ] && public_key[$name]=$key
    done <"$public_keys"
fi

not_there() { # WHAT
    if [ "$when_complete" = 1 ]; then
        echo "wg-apply: $1 is not there yet; the template's own step applies it" >&2
        exit 0
    fi
    echo "wg-apply: $template needs $1, which is not there" >&2
    exit 1
}

default_dev=""
if grep -qF '%default-route-dev' "$template"; then
    default_dev=$(default_route_dev)
    if [ -z "$default_dev" ]; then
        echo "wg-apply: $template names %default-route-dev, the interface of the default route, and this host has no default route" >&2
        exit 1
    fi
fi

# Keys are read by builtins only, so they never appear in a process's arguments.
fill_in_keys() {
    local line file name
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line =~ ^(PrivateKey|PresharedKey)\ =\ \<from\ (/[^\>]+)\>$ ]]; then
            file=${BASH_REMATCH[2]}
            [ -s "$file" ] || not_there "the key file $file"
            printf '%s = %s\n' "${BASH_REMATCH[1]}" "$(<"$file")"
        elif [[ $line =~ ^PublicKey\ =\ \<public\ key\ of\ ([a-z][a-z0-9-]*)\>$ ]]; then
            name=${BASH_REMATCH[1]}
            [ -n "${public_key[$name]:-}" ] || not_there "the public key of $name (in $public_keys)"
            printf 'PublicKey = %s\n' "${public_key[$name]}"
        else
            printf '%s\n' "${line//%default-route-dev/$default_dev}"
        fi
    done <"$template"
}

umask 077
filled=$(mktemp "$conf.XXXXXX")
trap 'rm -f "$filled"' EXIT
fill_in_keys >"$filled"

# What only a restart applies: the [Interface] part without the private key (syncconf applies that).
interface_part() { sed -e '/^\[Peer\]/,$d' -e '/^PrivateKey = /d' "$1"; }
private_key_line() { grep '^PrivateKey = ' "$1" || true; }
peer_public_keys() { sed -n 's/^PublicKey = //p' "$1" | sort; }
# The public keys of the peers CONF gives no Endpoint: those it learns from their packets (a relay's gateways and
# clients), wherever they roam.
roaming_peer_keys() {
    awk 'function flush() { if (key != "" && !endpoint) print key }
        /^\[/ { flush(); key = ""; endpoint = 0; peer = ($0 == "[Peer]") }
        peer && /^PublicKey = / { key = $3 }
        peer && /^Endpoint = / { endpoint = 1 }
        END { flush() }' "$1"
}

# Has the interface handshake with PEER now rather than when traffic or a keepalive next asks for it: switching a
# keepalive on sends one at once (the kernel's rule), which needs a session; the peer's INTERVAL is put back.
handshake_now() { # PEER INTERVAL
    if [ "$2" = off ]; then
        wg set "$iface" peer "$1" persistent-keepalive 25
        wg set "$iface" peer "$1" persistent-keepalive off
    else
        wg set "$iface" peer "$1" persistent-keepalive off
        wg set "$iface" peer "$1" persistent-keepalive "$2"
    fi
}

# PostUp's iptables and ip6tables rules, each added again when its check misses it (CONF has the default route's
# interface filled in already).
restore_firewall_rules() {
    local line check add
    while IFS= read -r line; do
        [[ $line == "PostUp = "* ]] || continue
        add=${line#PostUp = }
        check=$(rule_check_command "$add" "$iface" "") || continue
        if ! (eval "$check") 2>/dev/null; then
            echo "wg-apply: re-adding a missing firewall rule: ${add//%i/$iface}"
            (eval "${add//%i/$iface}")
        fi
    done <"$conf"
}

systemctl enable --quiet "$unit"
if ! systemctl is-active --quiet "$unit"; then
    mv -f "$filled" "$conf"
    echo "wg-apply: starting $iface"
    systemctl restart "$unit"
elif [ ! -f "$applied" ] || [ "$(interface_part "$filled")" != "$(interface_part "$applied")" ]; then
    echo "wg-apply: interface settings changed, restarting $iface"
    # A restart forgets every session and where the roaming peers are (a relay's gateways and clients): a peer
    # still sends on its old session, which the new interface drops, until it gives up on it (WireGuard's 15 s).
    # Their endpoints are set again and the interface handshakes with them at once.
    roamed=$(wg show "$iface" endpoints | grep -v '(none)$' || true)
    # wg-quick's PostDown must undo what the running interface's PostUp did (a rule the new conf no longer has,
    # say), and wg-quick reads the conf when it stops: stop with the conf it started with, then start the new one.
    systemctl stop "$unit"
    mv -f "$filled" "$conf"
    systemctl start "$unit"
    roaming=$(roaming_peer_keys "$conf")
    intervals=$(wg show "$iface" persistent-keepalive)
    while read -r peer endpoint; do
        if [ -n "$peer" ] && grep -qxF -- "$peer" <<<"$roaming"; then
            wg set "$iface" peer "$peer" endpoint "$endpoint"
            handshake_now "$peer" "$(awk -v key="$peer" '$1 == key { print $2 }' <<<"$intervals")"
        fi
    done <<<"$roamed"
else
    mv -f "$filled" "$conf"
    echo "wg-apply: syncing peers and keys of $iface without a restart"
    # A relay's peer on transport auto: wg-transport moves its endpoint between the two the directive names, and
    # syncconf would put the template's back; the live one of the two is kept.
    read -r auto_name auto_udp auto_wstunnel _ <<<"$(sed -n 's/^# wg-relay transport auto: //p' "$conf" | head -n 1)" || true
    auto_key="" auto_endpoint=""
    if [ -n "${auto_name:-}" ] && [ -n "${public_key[$auto_name]:-}" ]; then
        auto_key=${public_key[$auto_name]}
        auto_endpoint=$(wg show "$iface" endpoints | awk -v key="$auto_key" '$1 == key { print $2 }')
    fi
    wg syncconf "$iface" <(wg-quick strip "$conf")
    if [ -n "$auto_endpoint" ] && { [ "$auto_endpoint" = "$auto_udp" ] || [ "$auto_endpoint" = "$auto_wstunnel" ]; }; then
        wg set "$iface" peer "$auto_key" endpoint "$auto_endpoint"
    fi
    # syncconf does not touch routes. With a full tunnel wg-quick routes through a table of its own (fwmark);
    # otherwise route every allowed network into the interface that no route of the interface covers yet (as
    # wg-quick does: the subnet of each of its addresses keeps its own route, with that address as the source,
    # and so does a route the failover unit gave a source), and drop the routes of removed ones.
    if [ "$(wg show "$iface" fwmark)" = "off" ]; then
        wanted=$(wg show "$iface" allowed-ips | cut -f2- | tr -s ' \t' '\n' | grep -v '^(none)$' | grep . | sort -u || true)
        for net in $wanted; do
            family=$(family_of "$net")
            [ -n "$(ip "$family" route show dev "$iface" match "$net")" ] || ip "$family" route replace "$net" dev "$iface"
        done
        for family in -4 -6; do
            for net in $(ip "$family" -o route show dev "$iface" proto boot | cut -d' ' -f1); do
                case $'\n'"$wanted"$'\n' in
                    *$'\n'"$net"$'\n'*) ;;
                    *) ip "$family" route del "$net" dev "$iface" ;;
                esac
            done
        done
        set_route_mtus "$conf" "$iface"
    fi
    # A new private key clears every session; a peer's new public key (its own rotation) makes a new peer.
    rearm_all=0
    if [ "$(private_key_line "$conf")" != "$(private_key_line "$applied")" ]; then
        rearm_all=1
    fi
    new_peers=$(comm -13 <(peer_public_keys "$applied") <(peer_public_keys "$conf"))
    wg show "$iface" persistent-keepalive | while read -r peer interval; do
        if [ "$interval" != off ] && { [ "$rearm_all" = 1 ] || grep -qxF -- "$peer" <<<"$new_peers"; }; then
            handshake_now "$peer" "$interval"
        fi
    done
    restore_firewall_rules
fi
install -m 0600 "$conf" "$applied"
