#!/bin/sh
# install-packages: installs the Debian packages of a list that are missing; never removes one (other software may
# rely on it). The host layer (components/host/host.ts) carries this file in the packages step's command, as the function
# install_packages: it is the first step on a host, before any of wg-relay's files are there.
#
#   install-packages LOCK_WAIT_SECONDS PACKAGE...
#
# On a fresh cloud image unattended-upgrades holds apt's locks for minutes: it waits up to LOCK_WAIT_SECONDS for
# them, and says so. Any other failure of apt fails at once, with apt's message.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: install-packages LOCK_WAIT_SECONDS PACKAGE..." >&2
    exit 2
fi
lock_wait_seconds=$1
shift

missing=""
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
done
[ -n "$missing" ] || exit 0

export DEBIAN_FRONTEND=noninteractive
echo "installing$missing (waiting up to $lock_wait_seconds s for apt's locks if another apt, such as unattended-upgrades, holds them)"
# DPkg::Lock::Timeout covers dpkg's lock only; `apt-get update` fails at once on the package lists' lock.
waited=0
until errors=$(apt-get update -qq 2>&1 >/dev/null); do
    case $errors in
        *"Could not get lock"*) [ "$waited" -lt "$lock_wait_seconds" ] || { printf '%s\n' "$errors" >&2; exit 1; } ;;
        *) printf '%s\n' "$errors" >&2; exit 1 ;;
    esac
    [ "$waited" -gt 0 ] || echo "another apt holds the package lists' lock: waiting for it"
    sleep 5
    waited=$((waited + 5))
done
[ -z "$errors" ] || printf '%s\n' "$errors" >&2
# shellcheck disable=SC2086 # one word per package: the names have no spaces
apt-get -o DPkg::Lock::Timeout="$lock_wait_seconds" install -y -qq --no-install-recommends $missing
