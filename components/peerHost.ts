// What a LAN gateway and a provisioned roaming client have in common: a wstunnel client towards each relay and a
// WireGuard interface with a peer per relay, whose endpoint is that relay's wstunnel client's local UDP listener (or
// the relay's UDP port); on transport auto, the unit that moves the relay's endpoint between the two.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { RelayPeerAddresses, relayPeer, TunnelNetwork, WstunnelSettings } from "./config";
import { Connection, Host, hostPackages } from "./host";
import { InterfaceSetting } from "./render/interfaces";
import { autoTransportDirective, renderAutoTransportUnit } from "./render/autoTransport";
import {
    autoTransportUnit,
    clientCertificatePath,
    peerPresharedKeyPath,
    publicKeysPath,
    relayCaPath,
    stagedPreviousDir,
    stagedSwitchScriptPath,
    stagedSwitchUnit,
    systemdUnitPath,
    WstunnelClientFiles,
    wstunnelClientFiles,
    wgTransportScriptPath,
} from "./render/paths";
import { hostScript, wgApplyCommand } from "./render/scripts";
import { renderStagedSwitchUnit, stagedPath } from "./render/stagedSwitch";
import { ClientCertificate } from "./relayPki";
import { DeclaredHost, declareHost, HostRole } from "./declaredHosts";
import { renderWgQuickConf, WgQuickConf } from "./render/wireguard";
import { WireguardKey } from "./wireguardKey";
import { deployWireguardInterface, publicKeysContent } from "./wireguardInterface";
import { clientCertificateFileContent, deployWstunnelClient, installWstunnelBinary, wstunnelClientSettings, wstunnelClientUnitContent } from "./wstunnelService";

/** How often the staged switch checks the first relay: with 4 misses, a switch about 20 s after the relay changed. */
const stagedSwitchSeconds = 5;

/** What a gateway or client needs of a relay (VpsRelay has it). */
export interface RelayAccess {
    peerName: string;
    tunnelAddress: string;
    /** The relay's own tunnel subnet: its peers have an address in each relay's subnet. */
    tunnelSubnet: string;
    /** Where the peer's wstunnel client for this relay listens. */
    wstunnelLocalPort: number;
    /** Every gateway and client at its addresses in this relay's subnet: a peer asks for its own by name (relayPeer). */
    peers: readonly Pick<RelayPeerAddresses, "name" | "tunnelAddress">[];
    publicKey: pulumi.Output<string>;
    peerCredentials: pulumi.Resource;
    /** Its steps that change what peers need to reach it (key, certificate, CA, unit): peers stage first, install after. */
    switched: pulumi.Resource[];
    caCertPem: pulumi.Output<string> | undefined;
    connection: Connection;
    /** Where peers send WireGuard; its host may be another resource's output (a cloud server's address). */
    address: pulumi.Output<RelayAddress>;
}

/** Where gateways and clients send WireGuard: the wss server (host, port) and, for direct UDP, the WireGuard port. */
export interface RelayAddress {
    host: string;
    wstunnelPort: number;
    wireguardPort: number;
    udpPorts: number[];
}

/** A relay as the renderers take it: its address known. */
export type RelayView = Pick<RelayAccess, "peerName" | "tunnelAddress" | "tunnelSubnet" | "wstunnelLocalPort" | "peers"> & { address: RelayAddress };

/** A relay once its address is known. */
function relayView(relay: RelayAccess): pulumi.Output<RelayView> {
    const { peerName, tunnelAddress, tunnelSubnet, wstunnelLocalPort, peers } = relay;
    return relay.address.apply((address): RelayView => ({ peerName, tunnelAddress, tunnelSubnet, wstunnelLocalPort, peers, address }));
}

/** Every relay once its address is known: what a peer's files are rendered from. */
export function relayViews(relays: RelayAccess[]): pulumi.Output<RelayView[]> {
    return pulumi.all(relays.map(relayView));
}

/**
 * How a peer's WireGuard reaches the relays: through a local wstunnel client, straight to their UDP port, or (auto,
 * one relay) over UDP while the relay answers there and through wstunnel when it does not.
 */
export type PeerTransport = "wstunnel" | "udp" | "auto";

/** How often the transport unit (auto) pings the relay: with 2 misses, UDP that stops passing is left within about 6 s. */
const autoTransportCheckSeconds = 2;

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

/** What LanGateway and RoamingClient are both given. */
export interface PeerComponentArgs {
    /** The tunnel's settings (`parseNetworkConfig(...).tunnel`). */
    tunnel: TunnelNetwork;
    /** The stack's wstunnel settings (`parseNetworkConfig(...).wstunnel`). */
    wstunnel: WstunnelSettings;
    /** Names the file earlier versions put in the system's trust store. */
    stack: string;
    /** Every relay, the first first: the peer keeps a tunnel to each. */
    relays: RelayAccess[];
    /** The peer's WireGuard key (and preshared key, if it has one). */
    key: WireguardKey;
    /** This peer's own wstunnel path prefix (secret), the same towards every relay; none for a peer on plain UDP. */
    pathPrefix?: pulumi.Output<string>;
    /** With mutual TLS (wstunnel.mutualTls): its certificate, whose common name is pathPrefix, for every relay. */
    clientCertificate?: ClientCertificate;
    /** The SSH private key (OpenSSH PEM) that reaches the host; may be a secret output of another resource. */
    sshPrivateKey: pulumi.Input<string>;
    /** The stack's `wg-relay:repair` counter. */
    repair: number;
}

export interface PeerHostArgs extends Omit<PeerComponentArgs, "tunnel" | "sshPrivateKey" | "repair"> {
    /** Its wg0, known once the relays' addresses are: the template pushed to the host is rendered from it (no keys in it). */
    conf: pulumi.Output<WgQuickConf>;
    forwarding: boolean;
    /** With IPv6 inside the tunnel, a forwarding host's interface that keeps its IPv6 autoconfiguration. */
    ipv6Upstream?: string;
    /** Debian packages beyond every host's. */
    packages?: string[];
    /** Interface names the host's rules and sysctl file use, checked before anything changes on the host. */
    interfaces?: InterfaceSetting[];
    /** On auto, the transport unit runs after wg0 (conf carries autoTransportDirectives). */
    transport: PeerTransport;
}

/** The peer's wg0 (the step after which it is in place) and its staged relay settings (render/stagedSwitch.ts). */
export interface ProvisionedPeer {
    wireguard: command.remote.Command;
    /** The wg0 template pushed to the host. */
    template: pulumi.Output<string>;
    /** What the relays' switching steps wait for: empty for a peer on plain UDP. */
    staged: command.remote.Command[];
    /** What the host should have, for the doctor: called once the component made its last step on the host. */
    declare(role: Exclude<HostRole, "relay">, failoverRoutes?: string[]): pulumi.Output<DeclaredHost>;
}

export function provisionPeerHost(host: Host, args: PeerHostArgs): ProvisionedPeer {
    const interfaces = args.interfaces ? [host.checkInterfaces("interfaces", args.interfaces)] : [];
    const pathPrefix = args.pathPrefix;
    // ping: the staged switch's and the transport unit's probe of the relay.
    const packages = host.installPackages("packages", [...new Set([...hostPackages, ...(args.packages ?? []), ...(pathPrefix ? ["iputils-ping"] : [])])], {
        dependsOn: interfaces,
    });
    // One CA signs every relay's certificate: the first relay's client puts it in place for all (and the peer's
    // certificate), and the others start after it (wstunnel reads both when it starts) and restart when either
    // changes.
    const tls = { mutualTls: args.clientCertificate !== undefined, stackCa: args.relays[0].caCertPem !== undefined };
    const clients = args.relays.map((relay, index) => {
        const files = wstunnelClientFiles({ name: relay.peerName, index });
        return { relay, files, unitContent: relayView(relay).apply((view) => wstunnelClientUnitContent(wstunnelClientSettings(view, tls), files)) };
    });
    const relaysSwitched = args.relays.flatMap((relay) => relay.switched);
    const peerPublicKeys = args.relays.map((relay) => ({ name: relay.peerName, publicKey: relay.publicKey }));
    const binary = pathPrefix ? installWstunnelBinary(host, args.wstunnel, clients.map(({ files }) => files.unit), [packages]) : undefined;
    const deployClient = ({ relay, files, unitContent }: (typeof clients)[number], first: boolean, dependsOn: pulumi.Input<pulumi.Resource>[]) =>
        deployWstunnelClient(host, {
            unitContent,
            tls,
            files,
            pathPrefix: pathPrefix!,
            relayCredentials: relay.peerCredentials,
            caCertPem: first ? relay.caCertPem : undefined,
            clientCertificate: first ? args.clientCertificate : undefined,
            otherClientUnits: first ? clients.slice(1).map(({ files: others }) => others.unit) : undefined,
            stack: args.stack,
            relaysSwitched,
            dependsOn,
        });
    const firstClient = pathPrefix ? deployClient(clients[0], true, [binary!]) : undefined;
    const wstunnel = firstClient ? [firstClient, ...clients.slice(1).map((client) => deployClient(client, false, [binary!, firstClient]))] : [];
    const staged = pathPrefix ? stageRelaySettings(host, args, clients, peerPublicKeys, [packages]) : [];
    const presharedKey = args.key.presharedKey;
    const template = args.conf.apply(renderWgQuickConf);
    const wireguard = deployWireguardInterface(host, {
        privateKey: args.key.privateKey,
        template,
        peerPublicKeys,
        presharedKeys: presharedKey === undefined ? [] : [{ step: "preshared-key", path: peerPresharedKeyPath, key: presharedKey }],
        forwarding: args.forwarding,
        ipv6Upstream: args.ipv6Upstream,
        congestionControl: args.wstunnel.congestionControl,
        dependsOn: [packages, ...wstunnel],
    });
    if (args.transport === "auto") {
        const script = host.writeFile("wg-transport-script", { path: wgTransportScriptPath, content: hostScript("wg-transport"), mode: "0755" });
        host.installServiceUnit("transport-unit", {
            unit: autoTransportUnit,
            content: renderAutoTransportUnit({ relayName: args.relays[0].peerName, intervalSeconds: autoTransportCheckSeconds }),
            dependsOn: [wireguard, script],
        });
    }
    const declare = (role: Exclude<HostRole, "relay">, failoverRoutes?: string[]) =>
        declareHost({
            role,
            host,
            conf: args.conf,
            publicKey: args.key.publicKey,
            peerPublicKeys: Object.fromEntries(peerPublicKeys.map((relay) => [relay.name, relay.publicKey])),
            alwaysOnPeers: args.relays.map((relay) => relay.peerName),
            forwarding: args.forwarding,
            wstunnel: pathPrefix ? args.wstunnel : undefined,
            failoverRoutes,
        });
    return { wireguard, template, staged, declare };
}

/**
 * Stages, before any relay changes, every file of this peer that comes from the relays' settings (their public keys,
 * the wstunnel client units with the relays' addresses, the client certificate, the trusted CA), and runs the unit
 * that switches to them when the first relay stops answering (render/stagedSwitch.ts). The relays' switching steps
 * wait for these steps; the installed files are written for good after them (deployWstunnelClient, public-keys).
 */
function stageRelaySettings(
    host: Host,
    args: PeerHostArgs,
    clients: { files: WstunnelClientFiles; unitContent: pulumi.Output<string> }[],
    peerPublicKeys: { name: string; publicKey: pulumi.Input<string> }[],
    dependsOn: pulumi.Resource[],
): command.remote.Command[] {
    const certificate = args.clientCertificate;
    const caCertPem = args.relays[0].caCertPem;
    const units = clients.map(({ files: client }) => client.unit);
    // The client certificate is listed also while mutual TLS is off: staged absent, a switch removes it.
    const files = [publicKeysPath, ...units.map(systemdUnitPath), ...(caCertPem ? [relayCaPath] : []), clientCertificatePath];
    const steps = [
        host.writeFile("staged-public-keys", { path: stagedPath(publicKeysPath), content: publicKeysContent(peerPublicKeys), mode: "0644", dependsOn }),
        ...clients.map(({ files: client, unitContent }) =>
            host.writeFile(`staged-wstunnel-client-unit${client.stepSuffix}`, {
                path: stagedPath(systemdUnitPath(client.unit)),
                content: unitContent,
                mode: "0644",
                dependsOn,
            }),
        ),
        ...(caCertPem ? [host.writeFile("staged-trusted-ca", { path: stagedPath(relayCaPath), content: caCertPem, mode: "0644", dependsOn })] : []),
        ...(certificate
            ? [
                  host.writeSecretFile("staged-tls-client-certificate", {
                      path: stagedPath(clientCertificatePath),
                      content: clientCertificateFileContent(certificate),
                      dependsOn,
                  }),
              ]
            : []),
    ];
    const script = host.writeFile("staged-switch-script", {
        path: stagedSwitchScriptPath,
        content: hostScript("staged-switch"),
        mode: "0755",
        afterRemove: `rm -rf ${stagedPreviousDir}`,
        dependsOn,
    });
    const unit = host.installServiceUnit("staged-switch-unit", {
        unit: stagedSwitchUnit,
        content: renderStagedSwitchUnit({
            relayAddress: args.relays[0].tunnelAddress,
            files,
            units,
            applyCommand: wgApplyCommand({ whenComplete: true }),
            intervalSeconds: stagedSwitchSeconds,
        }),
        // Its writable folders exist once the staged files are in place.
        dependsOn: [...dependsOn, script, ...steps],
    });
    return [...steps, script, unit];
}
