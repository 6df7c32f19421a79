#!/usr/bin/env bash
# npm run bench: figures for the lab (brings it up first when needed). Prints, does not judge:
#   - how long a no-change `pulumi preview` and `pulumi up` take (what a user waits for on every run),
#   - round-trip time and HTTP throughput from the laptop to the LAN host through wss:443,
#     next to the same from the Pi on the LAN itself (the baseline without the tunnel).
# Traffic stays inside the lab's namespaces.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAB=$REPO/.lab
RUNS=${BENCH_RUNS:-3}
PAYLOAD_MB=${BENCH_PAYLOAD_MB:-64}
WWW=$LAB/hosts/lanhost/www

if ! [ -s "$LAB/inventory.json" ] || ! bash "$HERE/lab.sh" status >/dev/null 2>&1; then
    bash "$HERE/lab.sh" up
fi
# The lab must be converged before timing no-change runs.
bash "$HERE/lab.sh" pulumi up --stack lab --yes --skip-preview >/dev/null

seconds() { # command... -> wall seconds
    local start=$EPOCHREALTIME
    "$@" >/dev/null
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "wg-relay lab benchmark ($(date -u +%FT%TZ), $(nproc) cores)"
printf '%-52s' "pulumi preview, no changes (median of $RUNS):"
for _ in $(seq "$RUNS"); do seconds bash "$HERE/lab.sh" pulumi preview --stack lab --expect-no-changes; echo; done | median | sed 's/$/ s/'
printf '%-52s' "pulumi up, no changes (median of $RUNS):"
for _ in $(seq "$RUNS"); do seconds bash "$HERE/lab.sh" pulumi up --stack lab --yes --skip-preview; echo; done | median | sed 's/$/ s/'

rtt() { # namespace -> average ms
    ip netns exec "wgr-$1" ping -n -q -c 20 -i 0.1 192.168.1.20 | awk -F/ '/^rtt/ { print $5 }'
}
printf '%-52s%s ms\n' "ping laptop -> LAN host through the tunnel (avg):" "$(rtt laptop)"
printf '%-52s%s ms\n' "ping Pi -> LAN host on the LAN (avg, baseline):" "$(rtt rpi1)"

trap 'rm -f "$WWW/bench.bin"' EXIT
head -c "$((PAYLOAD_MB * 1024 * 1024))" /dev/urandom > "$WWW/bench.bin"
throughput() { # namespace -> MB/s
    ip netns exec "wgr-$1" curl --silent --output /dev/null --max-time 300 --write-out '%{speed_download}' http://192.168.1.20/bench.bin |
        awk '{ printf "%.1f", $1 / 1048576 }'
}
printf '%-52s%s MB/s\n' "HTTP ${PAYLOAD_MB} MiB laptop <- LAN host through the tunnel:" "$(throughput laptop)"
printf '%-52s%s MB/s\n' "HTTP ${PAYLOAD_MB} MiB Pi <- LAN host on the LAN (baseline):" "$(throughput rpi1)"
