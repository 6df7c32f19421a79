#!/bin/bash
# staged-switch: one round of a gateway's or wstunnel client's fallback between the relay settings it runs with and
# the ones `pulumi up` staged for it; wg-relay-staged-switch.service runs it every few seconds. Installed by wg-relay
# as it is.
#
#   staged-switch STATE_DIR STAGED_DIR PREVIOUS_DIR RELAY_ADDRESS UNITS FILE... -- APPLY_COMMAND...
#
# Why: a host reached through the relay (`ssh.via: relay`) must stay reachable while the relay changes what a peer
# needs to reach it (its WireGuard key, its certificate or CA, its address, mutual TLS). `pulumi up` first stages
# the peer's new files (STAGED_DIR/<name of FILE>; absent there: the file goes), then changes the relay, then
# installs them for good. When the relay switches, the tunnel stops and no SSH step could reach the peer: this
# round switches it by itself. Each FILE is an installed file that comes from the relay's settings (the relays'
# public keys, the wstunnel client units, the client certificate, the trusted CA).
#
# Each round pings RELAY_ADDRESS (the first relay's tunnel address, which SSH through the relay crosses):
#   - answered: the settings in place work; once they are the staged ones, the saved previous ones are dropped;
#   - unanswered for 4 rounds in a row: with staged settings that differ from the installed ones, the installed
#     ones are saved to PREVIOUS_DIR and the staged ones installed (the relay switched first); with the staged ones
#     installed and previous ones saved, the previous ones go back (the relay has not switched: a run that failed
#     before the relay's steps); then 4 more rounds. So the peer alternates until one works and stays with it.
# Installing: the files are put in place, systemd reloads its units, UNITS (commas)
# are restarted when running, and APPLY_COMMAND (wg-apply) applies the public keys. Nothing happens before wg0
# exists (the first `pulumi up` has not finished on this host), nor when nothing is staged that differs.
set -euo pipefail

down_after=4

if [ $# -lt 7 ]; then
    echo "usage: staged-switch STATE_DIR STAGED_DIR PREVIOUS_DIR RELAY_ADDRESS UNITS FILE... -- APPLY_COMMAND..." >&2
    exit 2
fi
state_dir=$1 staged_dir=$2 previous_dir=$3 relay_address=$4 units=$5
shift 5
files=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    files+=("$1")
    shift
done
if [ $# -lt 2 ]; then
    echo "staged-switch: no APPLY_COMMAND after --" >&2
    exit 2
fi
shift
apply=("$@")

if ! ip link show wg0 >/dev/null 2>&1 || [ ! -d "$staged_dir" ]; then
    exit 0
fi
mkdir -p "$state_dir"

# Whether FILE has the same content (or the same absence) in two places.
same() { # A B
    if [ -e "$1" ] || [ -e "$2" ]; then
        cmp -s "$1" "$2"
    fi
}

# Whether every FILE in DIR is what is installed.
installed_is() { # DIR
    local file
    for file in "${files[@]}"; do
        same "$1/$(basename "$file")" "$file" || return 1
    done
}

# Puts every FILE from DIR in place (atomically each; absent there: removed), then has it taken into use.
install_from() { # DIR
    local file source tmp
    for file in "${files[@]}"; do
        source=$1/$(basename "$file")
        if [ -e "$source" ]; then
            mkdir -p "$(dirname "$file")"
            tmp=$(mktemp "$file.XXXXXX")
            cp -p "$source" "$tmp"
            mv -f "$tmp" "$file"
        else
            rm -f "$file"
        fi
    done
    systemctl daemon-reload
    local unit
    for unit in ${units//,/ }; do
        systemctl try-restart "$unit"
    done
    "${apply[@]}" >/dev/null
}

# Copies every installed FILE to DIR (absent: absent there too).
save_to() { # DIR
    local file
    rm -rf "$1"
    mkdir -p "$1"
    for file in "${files[@]}"; do
        if [ -e "$file" ]; then
            cp -p "$file" "$1/$(basename "$file")"
        fi
    done
}

count_file=$state_dir/unanswered
if ping -c 1 -W 1 "$relay_address" >/dev/null 2>&1; then
    echo 0 >"$count_file"
    if [ -d "$previous_dir" ] && installed_is "$staged_dir"; then
        rm -rf "$previous_dir"
        echo "staged-switch: the staged relay settings work; the previous ones are dropped"
    fi
    exit 0
fi

count=0
if [ -s "$count_file" ]; then
    read -r count <"$count_file"
fi
count=$((count + 1))
if [ "$count" -lt "$down_after" ]; then
    echo "$count" >"$count_file"
    exit 0
fi
echo 0 >"$count_file"
if ! installed_is "$staged_dir"; then
    save_to "$previous_dir"
    install_from "$staged_dir"
    echo "staged-switch: the relay at $relay_address stopped answering; switched to the staged relay settings"
elif [ -d "$previous_dir" ] && ! installed_is "$previous_dir"; then
    install_from "$previous_dir"
    echo "staged-switch: the relay at $relay_address does not answer with the staged relay settings; back to the previous ones"
fi
