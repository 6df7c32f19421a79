#!/bin/sh
# interface-check: the first step on a relay or gateway. A configured interface name must be one of the host's, and
# where the config leaves one to the default route, the host must have one: iptables takes any name, and a rule on
# a missing interface never matches. It changes nothing, so a wrong name stops the run before anything changed.
# The host layer (components/host/host.ts) carries this file in the step's command, as the function interface_check,
# with the caller's functions default_route_dev and host_interfaces (components/host/interfaces.ts).
#
#   interface-check [--named KEY NAME | --default-route KEY]...
#
# KEY is the config key the setting comes from: each failure names it, and the host's interfaces.
set -eu

interfaces=$(host_interfaces)
while [ $# -gt 0 ]; do
    case $1 in
        --named)
            if [ ! -e "/sys/class/net/$3" ]; then
                echo "$2: $3 is not an interface of this host; it has: $interfaces" >&2
                exit 1
            fi
            shift 3
            ;;
        --default-route)
            dev=$(default_route_dev)
            if [ -z "$dev" ]; then
                echo "$2 is not set and this host has no default route to take it from; set it to one of this host's interfaces: $interfaces" >&2
                exit 1
            fi
            echo "$2 is not set: $dev, the interface of the default route"
            shift 2
            ;;
        *)
            echo "usage: interface-check [--named KEY NAME | --default-route KEY]..." >&2
            exit 2
            ;;
    esac
done
