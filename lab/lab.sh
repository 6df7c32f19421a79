#!/usr/bin/env bash
# The lab: `pulumi up` of wg-relay against real Debian hosts in network namespaces (lab/README.md).
#
#   npm run lab                 toolchain, image, hosts, `pulumi up`, proof that the laptop reaches the LAN
#   npm run lab -- prepare      everything before `pulumi up`: bare hosts and the lab stack's config
#   npm run lab -- down         destroy the hosts, namespaces, mounts and the lab stack's state
#   npm run lab -- status       one line per host
#   npm run lab -- proof        only the traffic proof
#   npm run lab -- pulumi ARGS  any pulumi command on the lab stack, from the operator's namespace
#   npm run lab -- doctor [--json]      npm run doctor on the lab stack, from the operator's namespace
#   npm run lab -- repair       npm run repair on the lab stack (bumps wg-relay:repair, then `pulumi up --yes`)
#   npm run lab -- forget-client NAME   npm run forget-client on the lab stack (then `pulumi up --yes`)
#   npm run lab -- import-wg-easy FILE [options]   npm run import:wg-easy on the lab stack
#   npm run lab -- ssh HOST [COMMAND]   relay, rpi1 or laptop, with the pinned host key
#   npm run lab -- host stop HOST       power a host off, as a power loss (lab/hosts.sh; its disk is kept)
#   npm run lab -- host start HOST      boot it again as `npm run lab` does; returns once its sshd answers
#   npm run lab -- sites        add the second relay (relay2) and site (cgnat2, rpi2, lanhost2) to the lab
#   npm run lab -- versions     the Pulumi CLI, language host, plugins and wstunnel in use
#   npm run lab -- mirror       pack the lab's wstunnel as a release (tar.gz + checksums.txt) served from the internet
#
#   npm run lab -- --vm [COMMAND]   the same with the relay (amd64) and rpi1 (arm64) as QEMU virtual machines running
#                               Debian 13 with their own kernels (WG_RELAY_LAB_HOSTS=vm; lab/README.md, "VM hosts");
#                               once booted, they stay part of the lab until `down`
#
# The real Pulumi parts and wstunnel come from lab/toolchain.sh (built from ../shared/third-party, or installed).
# WG_RELAY_WSTUNNEL_BINARY=/path/to/wstunnel runs the lab with another wstunnel binary.
set -euo pipefail
# The lab's namespaces and machines are NAME-*: WG_RELAY_LAB_NAME (default wgr) lets two checkouts run a lab each.
LAB_NAME=${WG_RELAY_LAB_NAME:-wgr}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAB=$REPO/.lab
STACK=lab
LAN_SERVICE=http://192.168.1.20/
MIRROR_URL=http://198.51.100.1

phase() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

require_root() {
    [ "$(id -u)" = 0 ] || { echo "lab: needs root (namespaces, mounts, systemd-nspawn)" >&2; exit 1; }
}

load_toolchain() {
    bash "$HERE/toolchain.sh"
    eval "$(bash "$HERE/toolchain.sh" --env)"
}

pulumi_env() {
    mkdir -p "$LAB/pulumi-state"
    chmod 700 "$LAB"
    if [ ! -s "$LAB/passphrase" ]; then
        (umask 077; head -c 24 /dev/urandom | base64 > "$LAB/passphrase")
    fi
    export PULUMI_BACKEND_URL="file://$LAB/pulumi-state"
    export PULUMI_CONFIG_PASSPHRASE_FILE="$LAB/passphrase"
    # Plugins built here go into a PULUMI_HOME of the lab's own; installed ones stay in the user's.
    if [ "$WG_RELAY_PLUGINS" = built ]; then
        export PULUMI_HOME="$LAB/pulumi-home"
        bash "$HERE/toolchain.sh" --install-plugins
    fi
}

# pulumi runs in the operator's namespace: it reaches the relay over the "internet", rpi1 from the home LAN,
# the laptop over its management link.
lab_pulumi() {
    ip netns exec "$LAB_NAME-op" pulumi --cwd "$REPO" --non-interactive "$@"
}

# SSH to a lab host from the operator's namespace, with its pinned host key.
lab_ssh() {
    ip netns exec "$LAB_NAME-op" ssh -F "$LAB/ssh/config" "$@"
}

# LAB_STACK_CHANGES (JSON, see lab/stack-config.ts) changes the stack as the e2e tests do. With the relay as a VM,
# the hosts download wstunnel from the lab's release mirror, as a fresh VPS does, unless the changes say otherwise.
write_stack_config() {
    local changes=${LAB_STACK_CHANGES:-{\}} version
    if [ "$(jq -r '.hosts.relay.kind // "nspawn"' "$LAB/inventory.json")" = vm ]; then
        mirror >/dev/null
        version=$("$WG_RELAY_WSTUNNEL_BINARY" --version | awk '{ print $NF }')
        # Each archive's SHA-256 by its architecture, from checksums.txt (wstunnel_VERSION_linux_ARCH.tar.gz).
        changes=$(jq -c --arg url "$MIRROR_URL" --arg version "$version" \
            --argjson sha256 "$(jq -R -s -c 'split("\n") | map(select(. != "") | split("  ") | {key: (.[1] | capture("_linux_(?<a>[a-z0-9]+)[.]tar[.]gz$").a), value: .[0]}) | from_entries' \
                "$LAB/hosts/mirror/www/v$version/checksums.txt")" \
            '{wstunnelMirror: {baseUrl: $url, version: $version, sha256: $sha256}} + .' <<<"$changes")
    fi
    (cd "$REPO" && npx --no-install ts-node --transpile-only lab/stack-config.ts \
        "$LAB/inventory.json" "$WG_RELAY_WSTUNNEL_BINARY" "$REPO/Pulumi.$STACK.yaml" "$changes")
    lab_pulumi stack select --create "$STACK" >/dev/null
    lab_pulumi config set --stack "$STACK" --secret wg-relay:sshPrivateKey < "$LAB/ssh/id_ed25519"
}

prepare() {
    require_root
    phase "toolchain"
    load_toolchain
    phase "host image"
    bash "$HERE/image.sh"
    if [ "${WG_RELAY_LAB_HOSTS:-}" = vm ]; then
        phase "virtual machine images (the relay amd64, the Pi arm64), Debian mirrors and the Pi's wstunnel"
        bash "$HERE/vm-image.sh" --arch amd64
        bash "$HERE/vm-image.sh" --arch arm64
        bash "$HERE/toolchain.sh" --wstunnel-arm64
    fi
    phase "hosts"
    bash "$HERE/hosts.sh" up
    pulumi_env
    write_stack_config
}

proof() {
    phase "proof: the laptop reaches the LAN service through wss:443"
    local body
    body=$(ip netns exec "$LAB_NAME-laptop" curl --silent --show-error --max-time 10 "$LAN_SERVICE")
    echo "laptop -> $LAN_SERVICE through the tunnel: $body"
    local before after
    before=$(udp_drops)
    ip netns exec "$LAB_NAME-laptop" bash -c 'echo probe > /dev/udp/198.51.100.10/51820'
    sleep 0.5
    after=$(udp_drops)
    [ "$after" -gt "$before" ] || { echo "lab: the hotel firewall did not drop the laptop's UDP" >&2; exit 1; }
    echo "laptop -> 198.51.100.10:51820/udp directly: dropped by the hotel firewall (drop counter $before -> $after)"
}

# Packets the hotel firewall dropped because they were UDP.
udp_drops() {
    ip netns exec "$LAB_NAME-hotel" iptables -w -t filter -L FORWARD -v -x -n | awk '/hotel-drop-udp/ { n += $1 } END { print n + 0 }'
}

versions() {
    phase "versions in use"
    bash "$HERE/toolchain.sh" --versions
    echo "on the relay: $(lab_ssh relay /usr/local/bin/wstunnel --version)"
}

# The lab's wstunnel packed as its releases ship (a bare `wstunnel` at the top of the archive, and checksums.txt),
# in the folder the internet namespace serves over HTTP (lab/hosts.sh): the amd64 build, and with the Pi as an
# arm64 VM the aarch64-unknown-linux-musl one cross-built from the same source (lab/toolchain.sh).
mirror() {
    local version dir arch binary stage assets=()
    version=$("$WG_RELAY_WSTUNNEL_BINARY" --version | awk '{ print $NF }')
    dir=$LAB/hosts/mirror/www/v$version
    mkdir -p "$dir"
    declare -A binaries=([amd64]=$WG_RELAY_WSTUNNEL_BINARY)
    if [ "$(jq -r '.hosts.rpi1.kind // "nspawn"' "$LAB/inventory.json" 2>/dev/null)" = vm ]; then
        binaries[arm64]=$(bash "$HERE/toolchain.sh" --wstunnel-arm64)
    fi
    for arch in amd64 arm64; do
        binary=${binaries[$arch]:-}
        [ -n "$binary" ] || continue
        assets+=("wstunnel_${version}_linux_$arch.tar.gz")
        stage=$(mktemp -d)
        install -m 0755 "$binary" "$stage/wstunnel"
        # Reproducible (no timestamps): the same binary gives the same archive and checksum, so a stack config that
        # names it (write_stack_config) stays the same from one write to the next.
        tar -cf - -C "$stage" --owner=0 --group=0 --mtime=@0 wstunnel | gzip -n > "$dir/${assets[-1]}"
        rm -rf "$stage"
    done
    (cd "$dir" && sha256sum "${assets[@]}" > checksums.txt)
    while read -r sha256 asset; do
        echo "lab: wstunnel $version served at $MIRROR_URL/v$version/$asset (SHA-256 $sha256)"
    done < "$dir/checksums.txt"
}

usage_hints() {
    phase "the lab is up"
    cat <<EOT
Enter a host:      npm run lab -- ssh relay|rpi1|laptop        (or: ip netns exec "$LAB_NAME-op" ssh -F $LAB/ssh/config relay)
Run pulumi:        npm run lab -- pulumi preview --diff --stack $STACK
Client files:      npm run lab -- client-files laptop          (writes $LAB/client-files/laptop)
Tear down:         npm run lab -- down
EOT
}

cmd_up() {
    local t0=$SECONDS
    prepare
    phase "pulumi up"
    # The hosts leave the state the e2e tests last converged them to (test/e2e/lab.ts).
    rm -f "$LAB/pulumi-state/e2e-converged"
    lab_pulumi up --stack "$STACK" --yes --skip-preview
    proof
    versions
    usage_hints
    echo "lab: done in $((SECONDS - t0)) s"
}

cmd_down() {
    require_root
    phase "lab down"
    bash "$HERE/hosts.sh" down
    rm -rf "$LAB/pulumi-state" "$LAB/pulumi-home" "$LAB/passphrase" "$LAB/client-files" "$REPO/Pulumi.$STACK.yaml"
}

main() {
    if [ "${1:-}" = --vm ]; then
        export WG_RELAY_LAB_HOSTS=vm
        shift
    fi
    local command=${1:-up}
    shift || true
    case "$command" in
        up) cmd_up ;;
        prepare) prepare ;;
        down) cmd_down ;;
        status) bash "$HERE/hosts.sh" status ;;
        proof) proof ;;
        pulumi)
            require_root; eval "$(bash "$HERE/toolchain.sh" --env)"; pulumi_env
            lab_pulumi "$@" ;;
        stack-config)
            require_root; eval "$(bash "$HERE/toolchain.sh" --env)"; pulumi_env
            write_stack_config ;;
        doctor)
            require_root; eval "$(bash "$HERE/toolchain.sh" --env)"; pulumi_env
            (cd "$REPO" && ip netns exec "$LAB_NAME-op" npx --no-install ts-node --transpile-only scripts/doctor.ts --stack "$STACK" "$@") ;;
        repair)
            require_root; eval "$(bash "$HERE/toolchain.sh" --env)"; pulumi_env
            (cd "$REPO" && ip netns exec "$LAB_NAME-op" npx --no-install ts-node --transpile-only scripts/repair.ts \
                --stack "$STACK" --non-interactive --yes --skip-preview "$@") ;;
        forget-client)
            require_root; eval "$(bash "$HERE/toolchain.sh" --env)"; pulumi_env
            (cd "$REPO" && ip netns exec "$LAB_NAME-op" npx --no-install ts-node --transpile-only scripts/forget-client.ts \
                "${1:-}" --stack "$STACK" --non-interactive --yes --skip-preview "${@:2}") ;;
        import-wg-easy)
            require_root; eval "$(bash "$HERE/toolchain.sh" --env)"; pulumi_env
            (cd "$REPO" && ip netns exec "$LAB_NAME-op" npx --no-install ts-node --transpile-only scripts/import-wg-easy.ts "$@" --stack "$STACK") ;;
        client-files)
            require_root; eval "$(bash "$HERE/toolchain.sh" --env)"; pulumi_env
            (cd "$REPO" && ip netns exec "$LAB_NAME-op" npx --no-install ts-node --transpile-only scripts/client-files.ts "$1" "$LAB/client-files/$1") ;;
        versions)
            require_root; eval "$(bash "$HERE/toolchain.sh" --env)"; pulumi_env; versions ;;
        mirror)
            require_root; eval "$(bash "$HERE/toolchain.sh" --env)"; mirror ;;
        host)
            require_root; bash "$HERE/hosts.sh" host "$@" ;;
        ssh)
            local host=$1; shift
            lab_ssh "$host" "$@" ;;
        sites)
            require_root; WG_RELAY_LAB_SITES=2 bash "$HERE/hosts.sh" up ;;
        *) sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 2 ;;
    esac
}

main "$@"
