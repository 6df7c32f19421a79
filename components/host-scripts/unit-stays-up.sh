#!/bin/bash
# unit-stays-up: succeeds once a service has stayed up for a few seconds; fails with its last journal lines when it
# does not. Installed by wg-relay as it is; steps run it after they start or restart one of wg-relay's units.
#
#   unit-stays-up UNIT [STABLE_SECONDS [LIMIT_SECONDS]]
#
# wg-relay's units are Type=simple with Restart=always: `systemctl start` succeeds as soon as the process is forked,
# even when it exits at once (port 443 taken by a web server, a bad certificate, an unreadable file) and systemd
# then restarts it every second. So: the unit must be seen active, with the same start time (systemd's
# ActiveEnterTimestampMonotonic), for STABLE_SECONDS (default 3) in a row, within LIMIT_SECONDS (default 30).
# On failure the unit's last journal lines go to stderr, with the values of its EnvironmentFile= files (wg-relay
# keeps secrets there) replaced by <redacted>.
set -uo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    echo "usage: unit-stays-up UNIT [STABLE_SECONDS [LIMIT_SECONDS]]" >&2
    exit 2
fi
unit=$1 stable_seconds=${2:-3} limit_seconds=${3:-30}
poll_tenths=5

property() { # NAME
    systemctl show -p "$1" --value "$unit"
}

# Lines "VALUE" of every VAR=VALUE in the unit's environment files, longest first so no value hides part of another.
secret_values() {
    local entry path line
    for entry in $(property EnvironmentFiles); do
        case $entry in /*) path=$entry ;; *) continue ;; esac
        [ -r "$path" ] || continue
        while IFS= read -r line || [ -n "$line" ]; do
            case $line in '#'* | '') continue ;; *=*) printf '%s\n' "${line#*=}" ;; esac
        done <"$path"
    done | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

redacted_journal() {
    local values
    values=$(secret_values)
    journalctl -u "$unit" -n 15 --no-pager -o cat 2>&1 |
        awk -v values="$values" '
            BEGIN { count = split(values, secret, "\n") }
            {
                for (i = 1; i <= count; i++) {
                    if (secret[i] == "") continue
                    while ((at = index($0, secret[i])) > 0) {
                        $0 = substr($0, 1, at - 1) "<redacted>" substr($0, at + length(secret[i]))
                    }
                }
                print "    " $0
            }'
}

waited_tenths=0 stable_since_tenths=-1 last_start=""
while :; do
    state=$(property ActiveState)
    start=$(property ActiveEnterTimestampMonotonic)
    if [ "$state" = active ] && [ "$start" = "$last_start" ]; then
        if [ $((waited_tenths - stable_since_tenths)) -ge $((stable_seconds * 10)) ]; then
            exit 0
        fi
    elif [ "$state" = active ]; then
        last_start=$start stable_since_tenths=$waited_tenths
    else
        last_start="" stable_since_tenths=-1
    fi
    if [ "$waited_tenths" -ge $((limit_seconds * 10)) ]; then
        break
    fi
    sleep "0.$poll_tenths"
    waited_tenths=$((waited_tenths + poll_tenths))
done

{
    echo "unit-stays-up: $unit did not stay up for ${stable_seconds} s within ${limit_seconds} s (now $(property ActiveState)/$(property SubState), restarted $(property NRestarts) times); its last journal lines:"
    redacted_journal
} >&2
exit 1
