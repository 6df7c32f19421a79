#!/bin/bash
# sysctl-apply: applies wg-relay's sysctl file one setting at a time, and puts back what it changed. Installed by
# wg-relay as it is; the sysctl step runs it after writing the file, and with --restore when it is destroyed.
#
#   sysctl-apply [--restart-when-changed KEY UNITS] FILE NOT_SET BEFORE
#   sysctl-apply --restore BEFORE
#
# `sysctl -p FILE` (procps 4.0.2, Debian 12) skips a '-' line only when the key cannot be opened: a write the kernel
# refuses (bbr on a kernel without tcp_bbr, a container's read-only key) makes it exit 1, and it never says which
# setting stayed as it was. Here every line is tried:
#   - "-KEY = VALUE" may stay unset: it is named on stdout and in NOT_SET (one "KEY = VALUE: why" line each, which
#     the doctor reads), and the run goes on;
#   - "KEY = VALUE" must be set (forwarding): each one that is not is named on stderr, and the exit status is 1.
# NOT_SET is removed when everything was set.
# --restart-when-changed: when KEY's value is another after the run (and every required setting was set), runs
# `systemctl try-restart UNITS` (a pattern): a connection keeps the TCP congestion control it was opened with, so
# wstunnel reconnects under the new one; a run that changed nothing restarts nothing.
# The value a setting had before this script first changed it goes into BEFORE ("KEY = VALUE" lines), once: a later
# run that changes it again keeps the host's own. --restore writes those values back (the file in /etc/sysctl.d is
# gone by then, so a reboot keeps them too) and removes BEFORE; one the kernel refuses is named on stderr, and the
# rest are still restored.
set -uo pipefail

trim() { # TEXT
    local text=$1
    text=${text#"${text%%[![:space:]]*}"}
    printf '%s' "${text%"${text##*[![:space:]]}"}"
}

if [ $# -eq 2 ] && [ "$1" = --restore ]; then
    before_file=$2
    [ -e "$before_file" ] || exit 0
    while IFS= read -r line || [ -n "$line" ]; do
        key=$(trim "${line%%=*}")
        value=$(trim "${line#*=}")
        if error=$(sysctl -q -w "$key=$value" 2>&1); then
            echo "sysctl-apply: restored $key = $value"
        else
            echo "sysctl-apply: could not restore $key = $value: ${error:-no reason given}" >&2
        fi
    done <"$before_file"
    rm -f "$before_file"
    exit 0
fi
restart_key="" restart_units=""
if [ $# -eq 6 ] && [ "$1" = --restart-when-changed ]; then
    restart_key=$2 restart_units=$3
    shift 3
fi
if [ $# -ne 3 ]; then
    echo "usage: sysctl-apply [--restart-when-changed KEY UNITS] FILE NOT_SET BEFORE | --restore BEFORE" >&2
    exit 2
fi
file=$1 not_set_file=$2 before_file=$3

remember() { # KEY VALUE: the host's own value, unless an earlier run recorded it
    if [ -e "$before_file" ] && awk -v key="$1" '$1 == key { found = 1 } END { exit !found }' "$before_file"; then
        return
    fi
    mkdir -p "$(dirname "$before_file")"
    printf '%s = %s\n' "$1" "$2" >>"$before_file"
}

# A key's value as the kernel has it, its fields one space apart (sysctl prints tcp_rmem's with tabs); fails when
# there is no such key (pipefail).
sysctl_value() { # KEY
    sysctl -n "$1" 2>/dev/null | tr -s ' \t' ' '
}

restart_key_before=""
if [ -n "$restart_key" ]; then
    restart_key_before=$(sysctl_value "$restart_key")
fi
not_set=""
required_failed=0
while IFS= read -r line || [ -n "$line" ]; do
    line=$(trim "$line")
    case $line in
        '' | '#'* | ';'*) continue ;;
    esac
    optional=0
    if [ "${line:0:1}" = - ]; then
        optional=1
        line=${line:1}
    fi
    key=$(trim "${line%%=*}")
    value=$(trim "${line#*=}")
    if ! current=$(sysctl_value "$key"); then
        why="this kernel has no such setting (or not in this network namespace)"
    elif [ "$current" = "$value" ]; then
        continue
    elif ! error=$(sysctl -q -w "$key=$value" 2>&1) || [ "$(sysctl_value "$key")" != "$value" ]; then
        # procps 4.0.2 exits 0 when the kernel refuses a write with EINVAL (net.core.rmem_default in a network
        # namespace): what the key reads afterwards decides.
        why="the kernel refused it: ${error:-no reason given}"
    else
        remember "$key" "$current"
        continue
    fi
    if [ "$optional" = 1 ]; then
        echo "sysctl-apply: not set (optional): $key = $value: $why"
        not_set+="$key = $value: $why"$'\n'
    else
        echo "sysctl-apply: $key = $value is required and could not be set: $why" >&2
        required_failed=1
    fi
done <"$file"

if [ -n "$not_set" ]; then
    mkdir -p "$(dirname "$not_set_file")"
    printf '%s' "$not_set" >"$not_set_file"
else
    rm -f "$not_set_file"
fi
if [ "$required_failed" = 0 ] && [ -n "$restart_key" ] && [ "$(sysctl_value "$restart_key")" != "$restart_key_before" ]; then
    systemctl try-restart "$restart_units"
fi
exit "$required_failed"
