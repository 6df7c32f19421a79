#!/bin/bash
# tls-renewal: restarts the relay's wstunnel server when the user's own certificate or key file (wstunnel.tls, e.g.
# certbot's) holds something other than what the server started with. Installed by wg-relay as it is; a systemd
# path unit runs it whenever those files or their folders change.
#
#   tls-renewal UNIT CREDENTIALS_DIR CERTIFICATE_FILE PRIVATE_KEY_FILE
#
# The server gets the files as systemd credentials, copies taken at each start (CREDENTIALS_DIR/tls.crt and tls.key,
# i.e. /run/credentials/UNIT), so wstunnel's own watch of its files never sees a renewal: a restart takes new copies.
# Nothing changes while the copies equal the files (an unrelated file changed in the folder) or the unit is stopped
# (it reads the files when it starts). A renewal writes several files within moments: the restart waits a second for
# the rest, and restarts again while a copy still differs (a file written during the restart).
set -uo pipefail

if [ $# -ne 4 ]; then
    echo "usage: tls-renewal UNIT CREDENTIALS_DIR CERTIFICATE_FILE PRIVATE_KEY_FILE" >&2
    exit 2
fi
unit=$1 credentials=$2 certificate=$3 private_key=$4

served() {
    cmp -s "$credentials/tls.crt" "$certificate" && cmp -s "$credentials/tls.key" "$private_key"
}

if ! systemctl is-active --quiet "$unit" || served; then
    exit 0
fi
for attempt in 1 2 3; do
    sleep 1
    echo "tls-renewal: $certificate or $private_key changed: restarting $unit (attempt $attempt)"
    systemctl restart "$unit"
    if served; then
        exit 0
    fi
done
echo "tls-renewal: $unit still started with other files than $certificate and $private_key after 3 restarts" >&2
exit 1
