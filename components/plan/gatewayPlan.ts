// A LAN gateway's plan (plan/hostPlan.ts): from its resolved settings and the relays, everything the host should
// have. LanGateway pushes it (peerHost.ts); the doctor checks it (plan/declaredHosts.ts).
import { GatewaySettings, isIpv6Network, relayPeer, TunnelNetwork } from "../config";
import { renderHeartbeatUnit } from "../failover/heartbeat";
import { heartbeatUnit, peerPresharedKeyPath, wireguardKeyPath } from "../host/paths";
import { firewallHooks, FirewallRule, relayAsPeer, WgQuickConf } from "../wireguard/render";
import { HostLayout, HostPlan } from "./hostPlan";
import {
    autoTransportDirectives,
    peerInterfaceAddress,
    peerLayout,
    PeerPlanRelay,
    PeerPlanSettings,
    relayDescription,
    relayEndpoint,
    relayPeers,
    RelayView,
    serviceUnitFile,
} from "./peerPlan";

/** With WireGuard's 15 s of unanswered data before a new handshake: the tunnel is back within about 20 s. */
const heartbeatSeconds = 5;

export interface GatewayFirewallSettings {
    /** Every relay's tunnel subnet, and the gateway's address in it. */
    relays: { tunnelSubnet: string; ownAddress: string }[];
    lanInterface: string;
    lanSubnets: string[];
    /** The other sites' LANs (siteToSite). */
    siteRoutes: string[];
    masquerade: boolean;
    /** With IPv6 inside the tunnel: its prefix, and the gateway's address in it. */
    ipv6?: { tunnelPrefix: string; tunnelAddress: string };
    /** On plain UDP (and auto) wg0 has tunnel.udpMtu, below the LAN's 1500: TCP connections through it get an MSS that fits. */
    clampMss: boolean;
}

export function gatewayFirewallRules(settings: GatewayFirewallSettings): FirewallRule[] {
    // Each rule in the table of its networks' family (ip6tables for IPv6 LANs).
    const family = (network: string) => (isIpv6Network(network) ? { ipv6: true } : {});
    const rules: FirewallRule[] = settings.lanSubnets.map((lan) => ({
        table: "filter" as const,
        chain: "FORWARD",
        rule: `-i %i -o ${settings.lanInterface} -d ${lan} -j ACCEPT`,
        ...family(lan),
    }));
    const reply: FirewallRule = { table: "filter", chain: "FORWARD", rule: `-i ${settings.lanInterface} -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT` };
    rules.push(reply, ...(settings.ipv6 ? [{ ...reply, ipv6: true }] : []));
    // Site to site: this site's LANs may open connections to the other sites' LANs (of the same family) through the tunnel.
    for (const lan of settings.lanSubnets) {
        for (const site of settings.siteRoutes.filter((route) => isIpv6Network(route) === isIpv6Network(lan))) {
            rules.push({ table: "filter", chain: "FORWARD", rule: `-i ${settings.lanInterface} -o %i -s ${lan} -d ${site} -j ACCEPT`, ...family(lan) });
        }
    }
    // The gateway's tunnel addresses are for the tunnel: a LAN neighbour routing to one would reach the gateway's own
    // services (its SSH, say) from an address the tunnel's peers trust.
    for (const relay of settings.relays) {
        rules.push({ table: "filter", chain: "INPUT", insert: true, rule: `-i ${settings.lanInterface} -d ${relay.ownAddress}/32 -j DROP` });
    }
    if (settings.ipv6) {
        rules.push({ table: "filter", chain: "INPUT", insert: true, rule: `-i ${settings.lanInterface} -d ${settings.ipv6.tunnelAddress}/128 -j DROP`, ipv6: true });
    }
    if (settings.clampMss) {
        // SYNs leaving into wg0 (a LAN host's answer to a client, a LAN host opening a connection to another site)
        // announce what wg0's route carries, so no 1500-byte segment depends on ICMP "fragmentation needed".
        const clamp: FirewallRule = { table: "mangle", chain: "FORWARD", rule: "-o %i -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu" };
        rules.push(clamp, ...(settings.ipv6 ? [{ ...clamp, ipv6: true }] : []));
    }
    if (settings.masquerade) {
        // LAN hosts then answer the gateway, which needs no route for the tunnel subnets (or the other sites' LANs)
        // on the home router; for IPv6 the same, with the tunnel's prefix.
        for (const source of [...settings.relays.map((relay) => relay.tunnelSubnet), ...(settings.ipv6 ? [settings.ipv6.tunnelPrefix] : []), ...settings.siteRoutes]) {
            rules.push({ table: "nat", chain: "POSTROUTING", rule: `-s ${source} -o ${settings.lanInterface} -j MASQUERADE`, ...family(source) });
        }
    }
    return rules;
}

/**
 * The gateway's wg0 template: an address in each relay's subnet, and each relay as a peer reached through its local
 * wstunnel client (or, on plain UDP and at first on auto, at its UDP port), with that relay's subnet (clients'
 * packets arrive with their own addresses in it), so a reply to a client goes back through the relay the request
 * came through; the first relay also carries the other sites' LANs. On auto, the transport unit's directive.
 */
export function gatewayWgQuickConf(
    gateway: Omit<GatewaySettings, "ssh">,
    tunnel: TunnelNetwork,
    relays: Pick<RelayView, "peerName" | "tunnelAddress" | "tunnelSubnet" | "wstunnelLocalPort" | "peers" | "address">[],
): WgQuickConf {
    // On auto its packets may cross either path at any time: UDP's MTU and clamp on both.
    const udp = gateway.transport !== "wstunnel";
    const ownAddresses = relays.map((relay) => ({ tunnelSubnet: relay.tunnelSubnet, ownAddress: relayPeer(relay, gateway.name).tunnelAddress }));
    return {
        title: `WireGuard on ${gateway.name}, a LAN gateway`,
        interface: {
            address: peerInterfaceAddress(ownAddresses.map((relay) => relay.ownAddress), gateway.tunnelAddress6, tunnel),
            // On plain UDP its packets cross real networks; inside wstunnel no path MTU applies.
            mtu: udp ? tunnel.udpMtu : tunnel.mtu,
            privateKey: { file: wireguardKeyPath },
            hooks: firewallHooks(
                gatewayFirewallRules({
                    relays: ownAddresses,
                    lanInterface: gateway.lanInterface,
                    lanSubnets: gateway.lanSubnets,
                    siteRoutes: gateway.siteRoutes,
                    masquerade: gateway.masquerade,
                    ipv6: tunnel.ipv6 ? { tunnelPrefix: tunnel.ipv6.prefix, tunnelAddress: gateway.tunnelAddress6! } : undefined,
                    clampMss: udp,
                }),
            ),
        },
        peers: relays.map((relay, index) =>
            relayAsPeer({
                description: relayDescription(relays, index),
                publicKey: { ofPeer: relay.peerName },
                presharedKey: gateway.presharedKey ? { file: peerPresharedKeyPath } : undefined,
                allowedIps: [relay.tunnelSubnet, ...(index === 0 ? [...(tunnel.ipv6 ? [tunnel.ipv6.prefix] : []), ...gateway.siteRoutes] : [])],
                endpoint: relayEndpoint(gateway.transport, relay),
                keepaliveSeconds: tunnel.keepaliveSeconds,
            }),
        ),
        directives: autoTransportDirectives(gateway.transport, relays, gateway.name),
    };
}

/** A gateway's files and units, forwarding included: known before the relays' addresses are. */
export function gatewayLayout(gateway: Omit<GatewaySettings, "ssh">, settings: PeerPlanSettings, relays: PeerPlanRelay[]): HostLayout {
    return {
        ...peerLayout(
            {
                role: "gateway",
                transport: gateway.transport,
                files: [
                    serviceUnitFile(
                        "heartbeat-unit",
                        heartbeatUnit,
                        renderHeartbeatUnit({ relayTunnelAddresses: relays.map((relay) => relay.tunnelAddress), intervalSeconds: heartbeatSeconds }),
                        "wireguard",
                    ),
                ],
            },
            settings,
            relays,
        ),
        // A gateway routes between its LAN and the tunnel.
        forwarding: { ipv6UpstreamInterface: settings.tunnel.ipv6 ? gateway.lanInterface : undefined, congestionControl: settings.wstunnel.congestionControl },
    };
}

/** Everything a LAN gateway should have: its files, units, a peer per relay, wg0, its rules, forwarding. */
export function gatewayPlan(gateway: Omit<GatewaySettings, "ssh">, settings: PeerPlanSettings, relays: RelayView[]): HostPlan {
    const conf = gatewayWgQuickConf({ ...gateway, presharedKey: settings.presharedKey }, settings.tunnel, relays);
    return {
        ...gatewayLayout(gateway, settings, relays),
        peers: relayPeers(conf, relays),
        wireguard: conf,
        // A gateway's hooks are its firewall rules': what they add, as the doctor checks it.
        firewallRules: conf.interface.hooks.map((hook) => hook.up),
    };
}
