// A provisioned roaming client's plan (plan/hostPlan.ts), and the wg0 conf every client has, provisioned or in its
// bundle for the WireGuard apps: from its resolved settings and the relays, everything the host should have.
// RoamingClient pushes it (peerHost.ts); the doctor checks it (plan/declaredHosts.ts).
import { ClientSettings, isIpv6Network, relayPeer, TunnelNetwork } from "../config";
import { ipv4AllBut } from "../net";
import { failoverDirective, renderFailoverUnit } from "../failover/failover";
import { failoverUnit, peerPresharedKeyPath, wgFailoverScriptPath, wireguardKeyPath } from "../host/paths";
import { Hook, KeySource, PublicKeySource, relayAsPeer, WgQuickConf } from "../wireguard/render";
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
    scriptFile,
    serviceUnitFile,
} from "./peerPlan";

/** How often the failover unit checks the relays: with 2 misses to go down, a dead primary is left within about 6 s. */
const failoverCheckSeconds = 2;

/** A relay as a client's conf names it. */
export interface ClientConfRelay {
    name: string;
    tunnelSubnet: string;
    /** The client's own address in this relay's subnet. */
    ownAddress: string;
    publicKey: PublicKeySource;
    /** WireGuard's Endpoint: the local wstunnel listener for this relay, or the relay's UDP port. */
    endpoint: string;
}

export interface ClientConfSettings {
    client: Pick<ClientSettings, "name" | "tunnelAddress6" | "routes" | "fullTunnel" | "relayPreference" | "transport">;
    tunnel: TunnelNetwork;
    /** The (only) relay's public address, kept outside a full tunnel. */
    relayHost: string;
    /** Every relay, in the stack's order. */
    relays: ClientConfRelay[];
    privateKey: KeySource;
    presharedKey?: KeySource;
    /**
     * A conf for the WireGuard apps (Android, iOS, macOS, Windows) as much as for wg-quick: their parsers refuse
     * PostUp/PostDown, so a full tunnel keeps the relay's address out of AllowedIPs instead of by an ip rule (with
     * wstunnel, whose TCP connection to the relay must not enter the tunnel; on plain UDP the apps and wg-quick
     * already keep WireGuard's own socket out).
     */
    stockApp: boolean;
}

/** With a full tunnel, the relay's own address must keep using the real default route, or wstunnel loops into WireGuard. */
export function fullTunnelHooks(relayAddress: string): Hook[] {
    const rule = `to ${relayAddress}/32 lookup main priority 100`;
    return [{ up: `ip -4 rule add ${rule}`, down: `ip -4 rule del ${rule}` }];
}

/** A client's conf: an address in each relay's subnet, a peer per relay, its routes on its primary relay's peer. */
export function clientWgQuickConf(settings: ClientConfSettings): WgQuickConf {
    const { client, tunnel } = settings;
    const primary = client.relayPreference[0];
    const ipv6Prefix = tunnel.ipv6 ? [tunnel.ipv6.prefix] : [];
    // Only a full tunnel needs the relay's address as an IPv4 address (a config rule); others may dial a DNS name.
    const allIpv4 = () => (settings.stockApp && client.transport !== "udp" ? ipv4AllBut(settings.relayHost) : ["0.0.0.0/0"]);
    return {
        title: `WireGuard on ${client.name}, a roaming client`,
        interface: {
            address: peerInterfaceAddress(settings.relays.map((relay) => relay.ownAddress), client.tunnelAddress6, tunnel),
            // On plain UDP its packets cross real networks; inside wstunnel no path MTU applies. On auto, the
            // smaller on both paths: the relay routes to the client at one MTU, whichever path it takes.
            mtu: client.transport === "wstunnel" ? tunnel.mtu : tunnel.udpMtu,
            privateKey: settings.privateKey,
            hooks: client.fullTunnel && !settings.stockApp ? fullTunnelHooks(settings.relayHost) : [],
        },
        peers: settings.relays.map((relay, index) =>
            relayAsPeer({
                description: relayDescription(settings.relays.map(({ name }) => ({ peerName: name })), index),
                publicKey: relay.publicKey,
                presharedKey: settings.presharedKey,
                // IPv6 (one relay only) to the tunnel's prefix and IPv6 LANs; a full tunnel is IPv4's, as the relay
                // forwards to the internet over IPv4 only.
                allowedIps: client.fullTunnel
                    ? [...allIpv4(), ...ipv6Prefix, ...client.routes.filter(isIpv6Network)]
                    : [relay.tunnelSubnet, ...(index === 0 ? ipv6Prefix : []), ...(relay.name === primary ? client.routes : [])],
                endpoint: relay.endpoint,
                keepaliveSeconds: tunnel.keepaliveSeconds,
            }),
        ),
    };
}

/**
 * Each relay as the client's conf names it, its Endpoint the local wstunnel listener or the relay's UDP port (on
 * auto, UDP first: the transport unit moves it to wstunnel when UDP does not pass).
 */
export function confRelays<Relay extends Pick<RelayView, "peerName" | "tunnelSubnet" | "wstunnelLocalPort" | "peers" | "address">>(
    client: Pick<ClientSettings, "name" | "transport">,
    relays: Relay[],
    publicKey: (relay: Relay, index: number) => PublicKeySource,
    /** One of relay.udpPorts to send to instead of WireGuard's port, at each relay that opens it. */
    udpPort?: number,
): ClientConfRelay[] {
    return relays.map((relay, index) => ({
        name: relay.peerName,
        tunnelSubnet: relay.tunnelSubnet,
        ownAddress: relayPeer(relay, client.name).tunnelAddress,
        publicKey: publicKey(relay, index),
        endpoint: relayEndpoint(client.transport, relay, udpPort),
    }));
}

/** Only the LAN routes move: a client without any stays on each relay's own subnet. */
function clientFailover(client: Pick<ClientSettings, "routes">, relays: unknown[]): boolean {
    return relays.length > 1 && client.routes.length > 0;
}

/** A provisioned client's files and units: known before the relays' addresses are. */
export function clientLayout(client: Omit<ClientSettings, "ssh">, settings: PeerPlanSettings, relays: PeerPlanRelay[]): HostLayout {
    const failover = clientFailover(client, relays);
    return {
        ...peerLayout(
            {
                role: "client",
                transport: client.transport,
                files: failover
                    ? [
                          scriptFile("wg-failover-script", wgFailoverScriptPath, "wg-failover"),
                          serviceUnitFile("failover-unit", failoverUnit, renderFailoverUnit({ relayNames: client.relayPreference, intervalSeconds: failoverCheckSeconds }), "wireguard"),
                      ]
                    : [],
            },
            settings,
            relays,
        ),
        ...(failover ? { failoverRoutes: client.routes } : {}),
    };
}

/**
 * A provisioned client's wg0: its conf as the stock apps take it, keys by file, and the lines its own units read
 * (failover between relays, the transport on auto).
 */
function provisionedClientConf(client: Omit<ClientSettings, "ssh">, settings: PeerPlanSettings, relays: RelayView[]): WgQuickConf {
    const failoverRelays = client.relayPreference.map((relayName) => {
        const relay = relays.find((candidate) => candidate.peerName === relayName)!;
        return { name: relayName, tunnelSubnet: relay.tunnelSubnet, relayAddress: relay.tunnelAddress, ownAddress: relayPeer(relay, client.name).tunnelAddress };
    });
    return {
        ...clientWgQuickConf({
            client,
            tunnel: settings.tunnel,
            relayHost: relays[0].address.host,
            relays: confRelays(client, relays, (relay) => ({ ofPeer: relay.peerName })),
            privateKey: { file: wireguardKeyPath },
            presharedKey: settings.presharedKey ? { file: peerPresharedKeyPath } : undefined,
            stockApp: true,
        }),
        directives: [
            ...(clientFailover(client, relays) ? [failoverDirective({ routes: client.routes, relays: failoverRelays })] : []),
            ...autoTransportDirectives(client.transport, relays, client.name),
        ],
    };
}

/** Everything a provisioned roaming client should have: its files, units, a peer per relay, wg0; no rule, no forwarding. */
export function clientPlan(client: Omit<ClientSettings, "ssh">, settings: PeerPlanSettings, relays: RelayView[]): HostPlan {
    const conf = provisionedClientConf(client, settings, relays);
    return {
        ...clientLayout(client, settings, relays),
        peers: relayPeers(conf, relays),
        wireguard: conf,
        // Its conf is the stock apps' too, which refuse PostUp: it has no hook, so no rule.
        firewallRules: [],
    };
}
