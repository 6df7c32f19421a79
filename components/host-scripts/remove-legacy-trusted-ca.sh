#!/bin/sh
# remove-legacy-trusted-ca: takes the stack's CA out of the system's trust store, where earlier versions of wg-relay
# put it (curl, apt, Python and Go trusted it there); a no-op once it is gone. The trusted-CA step carries this file
# in its command, as the function remove_legacy_trusted_ca.
#
#   remove-legacy-trusted-ca PATH
set -eu

if [ $# -ne 1 ]; then
    echo "usage: remove-legacy-trusted-ca PATH" >&2
    exit 2
fi
if [ -e "$1" ]; then
    rm -f "$1"
    update-ca-certificates --fresh >/dev/null
fi
