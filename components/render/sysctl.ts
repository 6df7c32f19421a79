// /etc/sysctl.d/90-wg-relay.conf: its own file, applied alone with `sysctl -p FILE`
// (`sysctl --system` would re-apply every other file too, and fails where kernel.* is read-only).
export function renderForwardingSysctl(): string {
    return [
        "# Managed by wg-relay: routes between the tunnel and the LAN or the internet.",
        "net.ipv4.ip_forward = 1",
        "# wstunnel asks for 64 MiB buffers on the UDP socket WireGuard sends to, and the kernel caps the request at these",
        "# (208 KiB on Debian 12 and Raspberry Pi OS kernels, about 3 packets at wg0's MTU). 4 MiB, the default of newer",
        "# kernels. A leading '-': a container's network namespace refuses these keys, and keeps its own.",
        "-net.core.rmem_max = 4194304",
        "-net.core.wmem_max = 4194304",
        "",
    ].join("\n");
}
