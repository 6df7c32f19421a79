// The resolved model: the config parsed once, with everything derived from it resolved, so components take it as
// it is and parse nothing. Its types are what the components use.
import { z } from "zod";
import { defaultRouteInterface } from "../host/interfaces";
import { Cidr, formatNetwork, hostAddress, intToIp, ipToInt, ipv6HostAddress, IpNetwork, isIpv4, isIpv6, parseCidr, parseNetwork, uniqueLocalPrefix } from "../net";
import { accessRule, ParsedConfig } from "./schema";

export const githubReleaseBaseUrl = "https://github.com/erebe/wstunnel/releases/download";

/** The relays as configured: `relay` (one) or `relays` (several); checkTopology makes sure exactly one is set. */
function configuredRelays(config: ParsedConfig) {
    return config.relays ?? [config.relay!];
}

/** `address` (in tunnel.subnet) moved into `subnet`, keeping its host part. */
function addressIn(subnet: Cidr, tunnelSubnet: Cidr, address: string): string {
    return intToIp(subnet.network + (ipToInt(address) - tunnelSubnet.network));
}

/**
 * The tunnel's IPv6 prefix when IPv6 is on: the configured one, or a unique local /64 of the stack's own, derived
 * from what names its relay (so it stays the same at every run without being stored).
 */
function tunnelIpv6Prefix(config: ParsedConfig): IpNetwork | undefined {
    if (!config.tunnel.ipv6.enabled) {
        return undefined;
    }
    const relay = configuredRelays(config)[0];
    return parseNetwork(config.tunnel.ipv6.prefix ?? derivedIpv6Prefix(relay.name, relay.publicAddress ?? relay.ssh.host))!;
}

export const derivedIpv6Prefix = (relayName: string, publicAddress: string) => uniqueLocalPrefix(`wg-relay ${relayName} ${publicAddress}`);

/** How every tunnel address derives from its host part in tunnel.subnet: the tunnel's settings and its IPv6 twin. */
function tunnelAddressing(config: ParsedConfig) {
    const tunnelSubnet = parseCidr(config.tunnel.subnet)!;
    // With IPv6 (one relay), every tunnel address has a twin in the IPv6 prefix with the same host part.
    const ipv6Prefix = tunnelIpv6Prefix(config);
    const { ipv6: _ipv6, ...tunnel } = config.tunnel;
    return {
        tunnelSubnet,
        tunnel,
        ipv6: ipv6Prefix ? { prefix: formatNetwork(ipv6Prefix), prefixLength: ipv6Prefix.prefix } : undefined,
        ipv6AddressOf: (address: string) => (ipv6Prefix ? ipv6HostAddress(ipv6Prefix, ipToInt(address) - tunnelSubnet.network) : undefined),
    };
}

/** A client routes every gateway's LAN unless it names its own. */
function clientRoutes(config: ParsedConfig, client: ParsedConfig["clients"][number]): string[] {
    return client.routes ?? config.gateways.flatMap((gateway) => gateway.lanSubnets);
}

/** Site-to-site traffic goes through the first relay, between every pair of gateways that opted in. */
function siteLinksOf(config: ParsedConfig) {
    const sites = config.gateways.filter((gateway) => gateway.siteToSite);
    return sites.flatMap((from) =>
        sites
            .filter((to) => to !== from)
            .flatMap((to) =>
                from.lanSubnets.flatMap((source) =>
                    to.lanSubnets.filter((destination) => isIpv6Network(destination) === isIpv6Network(source)).map((destination) => ({ from: from.name, to: to.name, source, destination })),
                ),
            ),
    );
}

/** The relay at `index` with its own subnet, addresses and port, and every gateway's and client's addresses in it. */
function resolveRelay(config: ParsedConfig, addressing: ReturnType<typeof tunnelAddressing>, { tunnelSubnet: configuredSubnet, ...relay }: ReturnType<typeof configuredRelays>[number], index: number) {
    const { tunnelSubnet, tunnel, ipv6, ipv6AddressOf } = addressing;
    // The first relay's subnet is tunnel.subnet. A peer has an address in each relay's subnet, with the same
    // host part in each, so a reply always goes back through the relay whose subnet its destination is in.
    const subnet = index === 0 ? tunnelSubnet : parseCidr(configuredSubnet!)!;
    const subnetText = `${intToIp(subnet.network)}/${subnet.prefix}`;
    const tunnelAddress = relay.tunnelAddress ?? hostAddress(subnet, 1);
    const tunnelAddress6 = ipv6AddressOf(relay.tunnelAddress ?? hostAddress(tunnelSubnet, 1));
    const thisRelay = { name: relay.name, networks: [`${tunnelAddress}/32`, ...optional(tunnelAddress6, "/128")] };
    /** A peer's addresses here: its configured address (in tunnel.subnet) moved into this relay's subnet. */
    const addressesHere = (address: string) => ({ tunnelAddress: addressIn(subnet, tunnelSubnet, address), tunnelAddress6: ipv6AddressOf(address) });
    const networksHere = (address: string) => {
        const here = addressesHere(address);
        return [`${here.tunnelAddress}/32`, ...optional(here.tunnelAddress6, "/128")];
    };
    return {
        ...relay,
        // The name firewall rules and the sysctl file use: the configured one, or the default route's, found on the host.
        publicInterface: relay.publicInterface ?? defaultRouteInterface,
        publicInterfaceKey: `wg-relay:${config.relays === undefined ? "relay" : `relays[${index}]`}.publicInterface`,
        tunnel: { ...tunnel, subnet: subnetText, prefixLength: subnet.prefix, ipv6 },
        publicAddress: relay.publicAddress ?? relay.ssh.host,
        tunnelAddress,
        tunnelAddress6,
        /** Where every gateway and client has its local wstunnel listener for this relay. */
        wstunnelLocalPort: config.wstunnel.localPort + index,
        /**
         * Every gateway, then every client, at its addresses in this relay's subnet (relayPeer asks for one by
         * name); with each client what it may reach through this relay and on it, and whether a full tunnel
         * takes it to the internet.
         */
        peers: [
            ...config.gateways.map((gateway) => ({ name: gateway.name, role: "gateway" as const, ...addressesHere(gateway.tunnelAddress) })),
            ...config.clients.map((client) => ({
                name: client.name,
                role: "client" as const,
                ...addressesHere(client.tunnelAddress),
                fullTunnel: client.fullTunnel,
                access: resolveAccess(client.access, clientRoutes(config, client), config, thisRelay, networksHere),
            })),
        ],
        // The first relay carries site-to-site traffic.
        siteLinks: index === 0 ? siteLinksOf(config) : [],
    };
}

export function resolveNetwork(config: ParsedConfig) {
    const addressing = tunnelAddressing(config);
    const { ipv6AddressOf } = addressing;
    const { source, mirrorBaseUrl, localBinary, sha256, ...wstunnel } = config.wstunnel;
    const binary =
        source === "local"
            ? { kind: "upload" as const, localBinary: localBinary! }
            : { kind: "download" as const, baseUrl: source === "mirror" ? mirrorBaseUrl!.replace(/\/+$/, "") : githubReleaseBaseUrl, sha256 };
    const relays = configuredRelays(config);
    const relayNames = relays.map((relay) => relay.name);
    const sites = config.gateways.filter((gateway) => gateway.siteToSite);
    return {
        tunnel: { ...addressing.tunnel, prefixLength: addressing.tunnelSubnet.prefix, ipv6: addressing.ipv6 },
        // The first relay is every client's default primary and carries site-to-site traffic.
        relays: relays.map((relay, index) => resolveRelay(config, addressing, relay, index)),
        wstunnel: { ...wstunnel, binary },
        gateways: config.gateways.map((gateway, index) => ({
            ...gateway,
            lanInterface: gateway.lanInterface ?? defaultRouteInterface,
            lanInterfaceKey: `wg-relay:gateways[${index}].lanInterface`,
            tunnelAddress6: ipv6AddressOf(gateway.tunnelAddress),
            /** The other sites' LANs, routed through the first relay. */
            siteRoutes: gateway.siteToSite ? sites.filter((other) => other !== gateway).flatMap((other) => other.lanSubnets) : [],
        })),
        // A client may reach every LAN it routes unless its access rules say otherwise.
        clients: config.clients.map((client) => {
            const { access: _rules, primaryRelay, ...settings } = client;
            const primary = primaryRelay ?? relayNames[0];
            return {
                ...settings,
                routes: clientRoutes(config, client),
                tunnelAddress6: ipv6AddressOf(client.tunnelAddress),
                /** Relay names in the order the client prefers them: its primary, then the others as configured. */
                relayPreference: [primary, ...relayNames.filter((relayName) => relayName !== primary)],
            };
        }),
        repair: config.repair,
    };
}

/**
 * A client's access rules with every `to` resolved to the networks it stands for: a gateway's name to its LANs
 * in the client's routes, a client's name to its tunnel addresses (in the relay's subnet and, with IPv6, the tunnel's
 * IPv6 prefix, by `tunnelNetworksOnRelay`), this relay's name to its own tunnel addresses (another relay's to nothing
 * here: that relay enforces it), an address to a /32 or /128. Ports in iptables' form.
 */
function resolveAccess(
    access: z.output<typeof accessRule>[] | undefined,
    routes: string[],
    config: ParsedConfig,
    thisRelay: { name: string; networks: string[] },
    tunnelNetworksOnRelay: (address: string) => string[],
) {
    const rules: z.output<typeof accessRule>[] = access ?? routes.map((route) => ({ to: route }));
    const relays = configuredRelays(config);
    return rules.map((rule) => {
        const gateway = config.gateways.find((candidate) => candidate.name === rule.to);
        const client = config.clients.find((candidate) => candidate.name === rule.to);
        const relay = relays.find((candidate) => candidate.name === rule.to);
        const destinations = gateway
            ? gateway.lanSubnets.filter((lan) => routes.includes(lan))
            : client
              ? tunnelNetworksOnRelay(client.tunnelAddress)
              : relay
                ? relay.name === thisRelay.name
                    ? thisRelay.networks
                    : []
                : [isIpv4(rule.to) ? `${rule.to}/32` : isIpv6(rule.to) ? `${rule.to}/128` : rule.to];
        return {
            to: rule.to,
            kind: gateway ? ("gateway" as const) : client ? ("client" as const) : relay ? ("relay" as const) : ("network" as const),
            destinations,
            protocol: rule.protocol,
            ports: rule.ports?.map((entry) => String(entry).replace("-", ":")),
        };
    });
}

/** The peer named `peerName` as `relay` has it (its addresses in the relay's subnet): how a consumer asks a relay. */
export function relayPeer<Peer extends { name: string }>(relay: { peers: readonly Peer[] }, peerName: string): Peer {
    const peer = relay.peers.find((candidate) => candidate.name === peerName);
    if (peer === undefined) {
        throw new Error(`${peerName} is no gateway or client of this relay`);
    }
    return peer;
}

/** The clients among a relay's peers, in config order. */
export const relayClients = (relay: { peers: readonly RelayPeerAddresses[] }) => relay.peers.filter((peer): peer is ClientAccess => peer.role === "client");

const optional = (value: string | undefined, suffix: string) => (value === undefined ? [] : [`${value}${suffix}`]);
export const isIpv6Network = (text: string) => text.includes(":");

/** The resolved network: what the program builds. */
export type Network = ReturnType<typeof resolveNetwork>;
export type TunnelNetwork = Network["tunnel"];
export type RelaySettings = Network["relays"][number];
export type WstunnelSettings = Network["wstunnel"];
export type WstunnelBinarySource = WstunnelSettings["binary"];
export type GatewaySettings = Network["gateways"][number];
export type ClientSettings = Network["clients"][number];
/** A gateway or client as a relay has it: at its addresses in that relay's subnet. */
export type RelayPeerAddresses = RelaySettings["peers"][number];
/** A client as a relay has it: its addresses there, and what it may reach through the relay and on it. */
export type ClientAccess = Extract<RelayPeerAddresses, { role: "client" }>;
export type AccessGrant = ClientAccess["access"][number];
export type SiteLink = RelaySettings["siteLinks"][number];
