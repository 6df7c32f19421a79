#!/bin/bash
# sysctl-apply: applies wg-relay's sysctl file one setting at a time. Installed by wg-relay as it is; the sysctl step
# runs it after writing the file.
#
#   sysctl-apply FILE NOT_SET
#
# `sysctl -p FILE` (procps 4.0.2, Debian 12) skips a '-' line only when the key cannot be opened: a write the kernel
# refuses (bbr on a kernel without tcp_bbr, a container's read-only key) makes it exit 1, and it never says which
# setting stayed as it was. Here every line is tried:
#   - "-KEY = VALUE" may stay unset: it is named on stdout and in NOT_SET (one "KEY = VALUE: why" line each, which
#     the doctor reads), and the run goes on;
#   - "KEY = VALUE" must be set (forwarding): each one that is not is named on stderr, and the exit status is 1.
# NOT_SET is removed when everything was set.
set -uo pipefail

if [ $# -ne 2 ]; then
    echo "usage: sysctl-apply FILE NOT_SET" >&2
    exit 2
fi
file=$1 not_set_file=$2

trim() { # TEXT
    local text=$1
    text=${text#"${text%%[![:space:]]*}"}
    printf '%s' "${text%"${text##*[![:space:]]}"}"
}

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
    if ! current=$(sysctl -n "$key" 2>/dev/null); then
        why="this kernel has no such setting (or not in this network namespace)"
    elif [ "$(tr -s ' \t' ' ' <<<"$current")" = "$value" ]; then
        continue
    elif ! error=$(sysctl -q -w "$key=$value" 2>&1); then
        why="the kernel refused it: ${error:-no reason given}"
    else
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
exit "$required_failed"
