// What a LAN gateway's and a provisioned roaming client's plans (gatewayPlan.ts, clientPlan.ts) have in common: the
// relays as a peer sees them, the endpoint and transport it uses for each, and the files and units every such peer
// gets (peerLayout). Those do not depend on where the relays are: the components make their steps before the
// relays' addresses, which may be other resources' outputs, are known.
import { RelayPeerAddresses, relayPeer, TunnelNetwork, WstunnelSettings } from "../config";
import { autoTransportDirective, renderAutoTransportUnit } from "../failover/autoTransport";
import {
    autoTransportUnit,
    clientCertificatePath,
    publicKeysPath,
    relayCaPath,
    stagedPreviousDir,
    stagedSwitchScriptPath,
    stagedSwitchUnit,
    systemdUnitPath,
    wgQuickUnit,
    wgTransportScriptPath,
    wstunnelClientFiles,
} from "../host/paths";
import { hostScript, wgApplyCommand } from "../host/scripts";
import { renderStagedSwitchUnit } from "../failover/stagedSwitch";
import { WgQuickConf } from "../wireguard/render";
import { HostLayout, PlannedFile, PlannedPeer } from "./hostPlan";

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

/** A gateway's or client's wg0 addresses: its own in each relay's subnet, and with IPv6 inside the tunnel its IPv6 one. */
export function peerInterfaceAddress(ownAddresses: string[], tunnelAddress6: string | undefined, tunnel: TunnelNetwork): string {
    return [...ownAddresses.map((address) => `${address}/${tunnel.prefixLength}`), ...(tunnel.ipv6 ? [`${tunnelAddress6}/${tunnel.ipv6.prefixLength}`] : [])].join(", ");
}

/** How a peer describes a relay in its template: "the relay" while there is one. */
export function relayDescription(relays: Pick<PeerPlanRelay, "peerName">[], index: number): string {
    return relays.length === 1 ? "the relay" : `the relay ${relays[index].peerName}`;
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
export function serviceUnitFile(step: string, unit: string, content: string, after: PlannedFile["after"]): PlannedFile {
    return { step, path: systemdUnitPath(unit), mode: "0644", owner: "root", content, unit, after };
}

/** One of host-scripts/, as it is. */
export function scriptFile(step: string, path: string, script: Parameters<typeof hostScript>[0], extra: Pick<PlannedFile, "after" | "afterRemove"> = {}): PlannedFile {
    return { step, path, mode: "0755", owner: "root", content: hostScript(script), ...extra };
}

/**
 * What every gateway and client gets beside its role's own files: through wstunnel, a client unit per relay and the
 * staged switch (failover/stagedSwitch.ts) with the files it switches; on auto, the transport unit.
 */
export function peerLayout(peer: PeerRole, settings: PeerPlanSettings, relays: PeerPlanRelay[]): Omit<HostLayout, "forwarding" | "failoverRoutes"> {
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
export function relayPeers(conf: WgQuickConf, relays: PeerPlanRelay[]): PlannedPeer[] {
    return conf.peers.map((peer, index) => ({
        name: relays[index].peerName,
        description: peer.description,
        allowedIps: peer.allowedIps,
        // Every relay is always on from a peer's side: a stale handshake is a problem.
        alwaysOn: true,
        presharedKeyFile: peer.presharedKey !== undefined && "file" in peer.presharedKey ? peer.presharedKey.file : undefined,
    }));
}

