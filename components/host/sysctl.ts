// /etc/sysctl.d/90-wg-relay.conf: its own file, applied alone, setting by setting, by sysctl-apply
// (components/host-scripts/sysctl-apply.sh): a '-' setting the host lacks or refuses is named and left as it is, any
// other fails the step. `sysctl --system` would re-apply every other file too, and fails where kernel.* is read-only.
import type { WstunnelSettings } from "../config";

export const congestionControlKey = "net.ipv4.tcp_congestion_control";

export interface ForwardingSysctlSettings {
    /** With IPv6 inside the tunnel: the interface the host has its own IPv6 address on. */
    ipv6UpstreamInterface?: string;
    /** The host's TCP congestion control, which wstunnel's connections (and everything else on the host) use. */
    congestionControl: WstunnelSettings["congestionControl"];
}

export function renderForwardingSysctl(settings: ForwardingSysctlSettings): string {
    const upstream = settings.ipv6UpstreamInterface;
    return [
        "# Managed by wg-relay: routes between the tunnel and the LAN or the internet.",
        "net.ipv4.ip_forward = 1",
        ...(upstream !== undefined
            ? [
                  "net.ipv6.conf.all.forwarding = 1",
                  // A router ignores router advertisements unless told otherwise: the host would lose the IPv6 address
                  // and default route it autoconfigures (a VPS's, a Raspberry Pi's from the home router).
                  "# Forwarding turns off router advertisements (SLAAC); 2 keeps them on the host's own uplink.",
                  // sysctl writes a '.' in an interface name (a VLAN such as eth0.10) as '/'.
                  `net.ipv6.conf.${upstream.replace(/\./g, "/")}.accept_ra = 2`,
              ]
            : []),
        "# wstunnel asks for 64 MiB buffers on the UDP socket WireGuard sends to, and the kernel caps the request at these",
        "# (208 KiB on Debian 12 and Raspberry Pi OS kernels, about 3 packets at wg0's MTU). 4 MiB, the default of newer",
        "# kernels. A leading '-': may stay unset (a container's network namespace has no such keys); the step names it.",
        "-net.core.rmem_max = 4194304",
        "-net.core.wmem_max = 4194304",
        "# wstunnel's socket towards WireGuard (the relay's server, a peer's client) sizes no buffer and gets this default:",
        "# at 208 KiB it dropped datagrams under load on a real kernel, at 4 MiB none. Every socket that sizes no buffer",
        "# may then hold up to 4 MiB of unread data; memory is used only while data waits.",
        "-net.core.rmem_default = 4194304",
        ...(settings.congestionControl === "bbr"
            ? [
                  "# WireGuard rides inside wstunnel's TCP connections: a loss-based congestion control (Debian's cubic) halves",
                  "# their rate at each lost packet, for every peer inside; BBR does not back off on random loss. Machine-wide: the",
                  "# kernel has no per-program setting. A leading '-': a kernel without tcp_bbr keeps its own; the step names it.",
                  `-${congestionControlKey} = bbr`,
              ]
            : []),
        "",
    ].join("\n");
}
