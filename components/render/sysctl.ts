// /etc/sysctl.d/90-wg-relay.conf: its own file, applied alone with `sysctl -p FILE`
// (`sysctl --system` would re-apply every other file too, and fails where kernel.* is read-only).
export function renderForwardingSysctl(): string {
    return ["# Managed by wg-relay: routes between the tunnel and the LAN or the internet.", "net.ipv4.ip_forward = 1", ""].join("\n");
}
