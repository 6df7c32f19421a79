// A LAN gateway's and a provisioned roaming client's plans (plan/hostPlan.ts): from the peer's resolved settings and
// the relays, everything the host should have. LanGateway and RoamingClient push it (peerHost.ts); the doctor checks
// it (plan/declaredHosts.ts). Its files and units do not depend on where the relays are (peerLayout): the components
// make those steps before the relays' addresses, which may be other resources' outputs, are known.
import { ClientSettings, GatewaySettings, isIpv6Network, RelayPeerAddresses, relayPeer, TunnelNetwork, WstunnelSettings } from "../config";
import { ipv4AllBut } from "../net";
import { autoTransportDirective, renderAutoTransportUnit } from "../failover/autoTransport";
import { failoverDirective, renderFailoverUnit } from "../failover/failover";
import { renderHeartbeatUnit } from "../failover/heartbeat";
import {
    autoTransportUnit,
    clientCertificatePath,
    failoverUnit,
    heartbeatUnit,
    peerPresharedKeyPath,
    publicKeysPath,
    relayCaPath,
    stagedPreviousDir,
    stagedSwitchScriptPath,
    stagedSwitchUnit,
    systemdUnitPath,
    wgFailoverScriptPath,
    wgQuickUnit,
    wgTransportScriptPath,
    wireguardKeyPath,
    wstunnelClientFiles,
} from "../host/paths";
import { hostScript, wgApplyCommand } from "../host/scripts";
import { renderStagedSwitchUnit } from "../failover/stagedSwitch";
import { firewallHooks, FirewallRule, Hook, KeySource, PublicKeySource, relayAsPeer, WgQuickConf } from "../wireguard/render";
import { HostLayout, HostPlan, PlannedFile, PlannedPeer } from "./hostPlan";

/** With WireGuard's 15 s of unanswered data before a new handshake: the tunnel is back within about 20 s. */
const heartbeatSeconds = 5;
/** How often the failover unit checks the relays: with 2 misses to go down, a dead primary is left within about 6 s. */
const failoverCheckSeconds = 2;
/** How often the transport unit (auto) pings the relay: with 2 misses, UDP that stops passing is left within about 6 s. */
const autoTransportCheckSeconds = 2;
/** How often the staged switch checks the first relay: with 4 misses, a switch about 20 s after the relay changed. */
const stagedSwitchSeconds = 5;

/** Where gateways and clients send WireGuard: the wss server (host, port) and, for direct UDP, the WireGuard port. */
export interface RelayAddress {
    host: string;
    wstunnelPort: number;
    wireguardPort: number;
    udpPorts: number[];
}

/** A relay as a peer's plan sees it before its address is known: what names it and where it is in the tunnel. */
export interface PeerPlanRelay {
    peerName: string;
    tunnelAddress: string;
    /** The relay's own tunnel subnet: its peers have an address in each relay's subnet. */
    tunnelSubnet: string;
    /** Where the peer's wstunnel client for this relay listens. */
    wstunnelLocalPort: number;
    /** Every gateway and client at its addresses in this relay's subnet: a peer asks for its own by name (relayPeer). */
    peers: readonly Pick<RelayPeerAddresses, "name" | "tunnelAddress">[];
}

/** A relay as the renderers take it: its address known. */
export type RelayView = PeerPlanRelay & { address: RelayAddress };

/**
 * How a peer's WireGuard reaches the relays: through a local wstunnel client, straight to their UDP port, or (auto,
 * one relay) over UDP while the relay answers there and through wstunnel when it does not.
 */
export type PeerTransport = "wstunnel" | "udp" | "auto";

/**
 * A peer's WireGuard Endpoint for a relay: its local wstunnel client's listener, or the relay's public UDP port
 * (`udpPort`, one of relay.udpPorts, where the relay opens it; its WireGuard port otherwise). On auto, the UDP
 * port: the transport unit moves the endpoint to wstunnel when UDP does not pass.
 */
export function relayEndpoint(transport: PeerTransport, relay: Pick<RelayView, "wstunnelLocalPort" | "address">, udpPort?: number): string {
    return transport === "wstunnel"
        ? `127.0.0.1:${relay.wstunnelLocalPort}`
        : `${relay.address.host}:${udpPort !== undefined && relay.address.udpPorts.includes(udpPort) ? udpPort : relay.address.wireguardPort}`;
}

/**
 * On auto (one relay, a config rule), the template's line that tells the transport unit what to switch between (and
 * wg-apply which endpoint to keep as it is live); none on the other transports.
 */
export function autoTransportDirectives(
    transport: PeerTransport,
    relays: Pick<RelayView, "peerName" | "tunnelAddress" | "wstunnelLocalPort" | "peers" | "address">[],
    peerName: string,
): string[] {
    if (transport !== "auto") {
        return [];
    }
    const [relay] = relays;
    return [
        autoTransportDirective({
            relayName: relay.peerName,
            udpEndpoint: relayEndpoint("udp", relay),
            wstunnelEndpoint: relayEndpoint("wstunnel", relay),
            relayAddress: relay.tunnelAddress,
            ownAddress: relayPeer(relay, peerName).tunnelAddress,
        }),
    ];
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

/** A gateway's or client's wg0 addresses: its own in each relay's subnet, and with IPv6 inside the tunnel its IPv6 one. */
function peerInterfaceAddress(ownAddresses: string[], tunnelAddress6: string | undefined, tunnel: TunnelNetwork): string {
    return [...ownAddresses.map((address) => `${address}/${tunnel.prefixLength}`), ...(tunnel.ipv6 ? [`${tunnelAddress6}/${tunnel.ipv6.prefixLength}`] : [])].join(", ");
}

/** How a peer describes a relay in its template: "the relay" while there is one. */
export function relayDescription(relays: Pick<PeerPlanRelay, "peerName">[], index: number): string {
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

/** What a gateway's or client's plan takes beside its own settings. */
export interface PeerPlanSettings {
    tunnel: TunnelNetwork;
    wstunnel: Pick<WstunnelSettings, "congestionControl">;
    /** The relays' certificates are the stack's (its CA is on the first relay): the peer trusts that CA's file. */
    stackCa: boolean;
    /** The peer's key has a preshared one, in its own root-only file (written by a step of its own). */
    presharedKey: boolean;
}

/** A gateway or client as its plan's files and units see it. */
interface PeerRole {
    role: "gateway" | "client";
    transport: PeerTransport;
    /** Files of its own role, after the ones every peer gets (heartbeat, failover). */
    files: PlannedFile[];
}

/** A systemd service unit whose file the plan holds: its step installs, starts and keeps it running. */
function serviceUnitFile(step: string, unit: string, content: string, after: PlannedFile["after"]): PlannedFile {
    return { step, path: systemdUnitPath(unit), mode: "0644", owner: "root", content, unit, after };
}

/** One of host-scripts/, as it is. */
function scriptFile(step: string, path: string, script: Parameters<typeof hostScript>[0], extra: Pick<PlannedFile, "after" | "afterRemove"> = {}): PlannedFile {
    return { step, path, mode: "0755", owner: "root", content: hostScript(script), ...extra };
}

/**
 * What every gateway and client gets beside its role's own files: through wstunnel, a client unit per relay and the
 * staged switch (failover/stagedSwitch.ts) with the files it switches; on auto, the transport unit.
 */
function peerLayout(peer: PeerRole, settings: PeerPlanSettings, relays: PeerPlanRelay[]): Omit<HostLayout, "forwarding" | "failoverRoutes"> {
    const wstunnelClients = peer.transport === "udp" ? [] : relays.map((relay, index) => wstunnelClientFiles({ name: relay.peerName, index }));
    const clientUnits = wstunnelClients.map((client) => client.unit);
    // The client certificate is listed also while mutual TLS is off: staged absent, a switch removes it.
    const stagedFiles = [publicKeysPath, ...clientUnits.map(systemdUnitPath), ...(settings.stackCa ? [relayCaPath] : []), clientCertificatePath];
    const files: PlannedFile[] = [
        ...(wstunnelClients.length > 0
            ? [
                  scriptFile("staged-switch-script", stagedSwitchScriptPath, "staged-switch", { after: "staged-settings", afterRemove: `rm -rf ${stagedPreviousDir}` }),
                  // Its writable folders exist once the staged files are in place.
                  serviceUnitFile(
                      "staged-switch-unit",
                      stagedSwitchUnit,
                      renderStagedSwitchUnit({
                          relayAddress: relays[0].tunnelAddress,
                          files: stagedFiles,
                          units: clientUnits,
                          applyCommand: wgApplyCommand({ whenComplete: true }),
                          intervalSeconds: stagedSwitchSeconds,
                      }),
                      "staged-settings",
                  ),
              ]
            : []),
        ...(peer.transport === "auto"
            ? [
                  scriptFile("wg-transport-script", wgTransportScriptPath, "wg-transport"),
                  serviceUnitFile("transport-unit", autoTransportUnit, renderAutoTransportUnit({ relayName: relays[0].peerName, intervalSeconds: autoTransportCheckSeconds }), "wireguard"),
              ]
            : []),
        ...peer.files,
    ];
    return {
        role: peer.role,
        files,
        // wg-quick's through wg-apply, a wstunnel client per relay, and the units of the plan's files.
        units: [wgQuickUnit, ...clientUnits, ...files.flatMap((file) => (file.unit === undefined ? [] : [file.unit]))].sort(),
        wireguardUnit: wgQuickUnit,
        wstunnelClients,
    };
}

/** Each relay as a gateway's or client's peer, from its wg0 conf's peer for it (the relays in the conf's order). */
function relayPeers(conf: WgQuickConf, relays: PeerPlanRelay[]): PlannedPeer[] {
    return conf.peers.map((peer, index) => ({
        name: relays[index].peerName,
        description: peer.description,
        allowedIps: peer.allowedIps,
        // Every relay is always on from a peer's side: a stale handshake is a problem.
        alwaysOn: true,
        presharedKeyFile: peer.presharedKey !== undefined && "file" in peer.presharedKey ? peer.presharedKey.file : undefined,
    }));
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
