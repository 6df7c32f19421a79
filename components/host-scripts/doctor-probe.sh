#!/bin/sh
# doctor-probe: what `npm run doctor` (scripts/doctor.ts) asks a host, as root. It prints one tab-separated fact per
# line, which parseProbe reads, and never a secret: unit states, WireGuard's public key, allowed IPs and handshakes
# (never `wg show` whole, which lists the preshared keys), rule checks, forwarding, digests. The doctor carries this
# file in what it sends to the host's `sh -s`, as the function doctor_probe; it installs nothing.
#
#   doctor-probe --wireguard INTERFACE --client-units PATTERN [--interfaces] [--rules WG_APPLY]
#                [--forwarding SYSCTL_FILE NOT_SET_FILE] [--wstunnel BINARY RELEASE_MARKER] -- UNIT...
#
#   now TIME                          the host's clock
#   unit UNIT STATE                   `systemctl is-active` of each declared UNIT
#   running-unit UNIT                 each running unit of PATTERN (the wstunnel clients), declared or not
#   wg-public-key KEY, wg-allowed-ips KEY CIDRS, wg-handshake KEY TIME   when INTERFACE is up
#   interfaces DEFAULT_ROUTE_DEV NAMES    with --interfaces: the caller's default_route_dev and host_interfaces
#   rule INDEX STATE | rules-unchecked STATUS   with --rules: the declared rules on stdin, as the host's wg-apply
#                                     reads them when it puts a missing one back (one grammar, on the host)
#   forwarding IP_FORWARD present|missing, sysctl-not-set LINE   with --forwarding: what sysctl-apply could not set
#   wstunnel SHA256 RELEASE_SHA256 MACHINE   with --wstunnel
set -u

wg="" client_units="" interfaces=0 wg_apply="" sysctl_file="" not_set_file="" binary="" release_marker=""
while [ $# -gt 0 ]; do
    case $1 in
        --wireguard) wg=$2; shift 2 ;;
        --client-units) client_units=$2; shift 2 ;;
        --interfaces) interfaces=1; shift ;;
        --rules) wg_apply=$2; shift 2 ;;
        --forwarding) sysctl_file=$2 not_set_file=$3; shift 3 ;;
        --wstunnel) binary=$2 release_marker=$3; shift 3 ;;
        --) shift; break ;;
        *) echo "doctor-probe: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "$wg" ] || [ -z "$client_units" ]; then
    echo "usage: doctor-probe --wireguard INTERFACE --client-units PATTERN [OPTIONS] -- UNIT..." >&2
    exit 2
fi

printf 'now\t%s\n' "$(date +%s)"
for unit in "$@"; do
    printf 'unit\t%s\t%s\n' "$unit" "$(systemctl is-active "$unit" 2>/dev/null)"
done
# wstunnel clients running beside the declared ones: left from an earlier config (a peer moved to plain UDP).
systemctl list-units --type=service --state=active --plain --no-legend "$client_units" 2>/dev/null | while read -r unit _; do
    printf 'running-unit\t%s\n' "$unit"
done
if wg show "$wg" public-key >/dev/null 2>&1; then
    printf 'wg-public-key\t%s\n' "$(wg show "$wg" public-key)"
    wg show "$wg" allowed-ips | sed 's/^/wg-allowed-ips\t/'
    wg show "$wg" latest-handshakes | sed 's/^/wg-handshake\t/'
fi
# A rule on an interface the host does not have is accepted by iptables and never matches.
if [ "$interfaces" = 1 ]; then
    printf 'interfaces\t%s\t%s\n' "$(default_route_dev)" "$(host_interfaces)"
fi
if [ -n "$wg_apply" ]; then
    if rule_states=$("$wg_apply" --check-rules "$wg" 2>/dev/null); then
        printf '%s\n' "$rule_states" | sed 's/^/rule\t/; s/ /\t/'
    else
        printf 'rules-unchecked\t%s\n' "$?"
    fi
fi
if [ -n "$sysctl_file" ]; then
    printf 'forwarding\t%s\t%s\n' "$(sysctl -n net.ipv4.ip_forward 2>/dev/null)" "$(if [ -f "$sysctl_file" ]; then echo present; else echo missing; fi)"
    # What sysctl-apply could not set (optional settings; a required one fails the step).
    if [ -f "$not_set_file" ]; then sed 's/^/sysctl-not-set\t/' "$not_set_file"; fi
fi
if [ -n "$binary" ]; then
    printf 'wstunnel\t%s\t%s\t%s\n' "$(sha256sum "$binary" 2>/dev/null | cut -d" " -f1)" "$(cat "$release_marker" 2>/dev/null)" "$(uname -m)"
fi
