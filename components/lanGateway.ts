// LanGateway: the always-on machine in the home LAN (a Raspberry Pi). It dials out to every relay, through a wstunnel
// client of its own or (transport udp) straight to the relay's UDP port, or (auto, one relay) over UDP while it
// passes and through wstunnel when it does not, so CG-NAT never has to let anything in, and routes tunnel traffic
// onto the LAN. With siteToSite it also routes the other sites' LANs through the first relay.
import * as pulumi from "@pulumi/pulumi";
import { GatewaySettings, isIpv6Network, relayPeer, TunnelNetwork } from "./config";
import { Host, WithInputHost } from "./host";
import { firewallHooks, FirewallRule, relayAsPeer, WgQuickConf } from "./render/wireguard";
import { DeclaredHost } from "./declaredHosts";
import { renderHeartbeatUnit } from "./render/heartbeat";
import { heartbeatUnit, peerPresharedKeyPath, wireguardKeyPath } from "./render/paths";
import { autoTransportDirectives, PeerComponentArgs, provisionPeerHost, RelayAccess, relayEndpoint, RelayView, relayViews } from "./peerHost";

/** With WireGuard's 15 s of unanswered data before a new handshake: the tunnel is back within about 20 s. */
const heartbeatSeconds = 5;

/**
 * A gateway's resolved settings (one of `parseNetworkConfig(...).gateways`), whose SSH host and user may be other
 * resources' outputs: a machine a cloud provider's Pulumi package creates in the same `pulumi up`.
 */
export type LanGatewaySettings = Omit<GatewaySettings, "ssh"> & { ssh: WithInputHost<GatewaySettings["ssh"]> };

export interface LanGatewayArgs extends PeerComponentArgs {
    gateway: LanGatewaySettings;
}

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

/** How a peer describes a relay in its template: "the relay" while there is one. */
export function relayDescription(relays: Pick<RelayAccess, "peerName">[], index: number): string {
    return relays.length === 1 ? "the relay" : `the relay ${relays[index].peerName}`;
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
            address: [
                ...ownAddresses.map((relay) => `${relay.ownAddress}/${tunnel.prefixLength}`),
                ...(tunnel.ipv6 ? [`${gateway.tunnelAddress6}/${tunnel.ipv6.prefixLength}`] : []),
            ].join(", "),
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

export class LanGateway extends pulumi.ComponentResource {
    readonly publicKey: pulumi.Output<string>;
    readonly tunnelAddress: pulumi.Output<string>;
    readonly lanSubnets: pulumi.Output<string[]>;
    /** The rendered wg0 template (no keys in it). */
    readonly wireguardTemplate: pulumi.Output<string>;
    /** What the host should have (units, peers, rules, wstunnel): `npm run doctor` checks it against the host. */
    readonly declared: pulumi.Output<DeclaredHost>;
    /** Its staged relay settings: the relays change only after them (render/stagedSwitch.ts). */
    readonly staged: pulumi.Resource[];

    constructor(name: string, args: LanGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:LanGateway", name, {}, opts);
        const { gateway, relays } = args;
        const host = Host.overSsh(name, gateway.ssh, { privateKey: args.sshPrivateKey, parent: this, repair: args.repair, relayConnection: relays[0].connection });

        const { wireguard, template, staged, declare } = provisionPeerHost(host, {
            ...args,
            conf: relayViews(relays).apply((known) => gatewayWgQuickConf(gateway, args.tunnel, known)),
            forwarding: true,
            ipv6Upstream: args.tunnel.ipv6 ? gateway.lanInterface : undefined,
            interfaces: [{ key: gateway.lanInterfaceKey, name: gateway.lanInterface }],
            transport: gateway.transport,
        });
        this.wireguardTemplate = template;
        this.staged = staged;
        host.installServiceUnit("heartbeat-unit", {
            unit: heartbeatUnit,
            content: renderHeartbeatUnit({ relayTunnelAddresses: relays.map((relay) => relay.tunnelAddress), intervalSeconds: heartbeatSeconds }),
            dependsOn: [wireguard],
        });

        this.declared = declare("gateway");
        this.publicKey = args.key.publicKey;
        this.tunnelAddress = pulumi.output(gateway.tunnelAddress);
        this.lanSubnets = pulumi.output(gateway.lanSubnets);
        this.registerOutputs({
            publicKey: this.publicKey,
            tunnelAddress: this.tunnelAddress,
            lanSubnets: this.lanSubnets,
            wireguardTemplate: this.wireguardTemplate,
        });
    }
}
