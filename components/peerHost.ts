// What a LAN gateway and a provisioned roaming client have in common: pushing its plan (plan/gatewayPlan.ts, plan/clientPlan.ts), a wstunnel
// client towards each relay and a WireGuard interface with a peer per relay, whose endpoint is that relay's wstunnel
// client's local UDP listener (or the relay's UDP port).
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { RelayPeerAddresses, TunnelNetwork, WstunnelSettings } from "./config";
import { Connection, Host, hostPackages } from "./host/host";
import { InterfaceSetting } from "./host/interfaces";
import { clientCertificatePath, peerPresharedKeyPath, publicKeysPath, relayCaPath, systemdUnitPath, WstunnelClientFiles } from "./host/paths";
import { stagedPath } from "./failover/stagedSwitch";
import { ClientCertificate } from "./pki/relayPki";
import { DeclaredHost, declaredHostOfPlan } from "./plan/declaredHosts";
import { renderWgQuickConf } from "./wireguard/render";
import { HostLayout, HostPlan, PlannedFile } from "./plan/hostPlan";
import type { PeerPlanSettings, RelayAddress, RelayView } from "./plan/peerPlan";
import { WireguardKey } from "./wireguard/key";
import { deployWireguardInterface, publicKeysContent } from "./wireguard/interface";
import { wstunnelClientSettings, wstunnelClientUnitContent } from "./wstunnel/render";
import { clientCertificateFileContent, deployWstunnelClient, installWstunnelBinary } from "./wstunnel/service";

export type { RelayAddress, RelayView };

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

/** A relay once its address is known. */
function relayView(relay: RelayAccess): pulumi.Output<RelayView> {
    const { peerName, tunnelAddress, tunnelSubnet, wstunnelLocalPort, peers } = relay;
    return relay.address.apply((address): RelayView => ({ peerName, tunnelAddress, tunnelSubnet, wstunnelLocalPort, peers, address }));
}

/** Every relay once its address is known: what a peer's files are rendered from. */
export function relayViews(relays: RelayAccess[]): pulumi.Output<RelayView[]> {
    return pulumi.all(relays.map(relayView));
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

/** What a gateway's or client's plan takes beside its own settings, from what its component is given. */
export function peerPlanSettings(args: PeerComponentArgs): PeerPlanSettings {
    return { tunnel: args.tunnel, wstunnel: args.wstunnel, stackCa: args.relays[0].caCertPem !== undefined, presharedKey: args.key.presharedKey !== undefined };
}

export interface PeerHostArgs extends Omit<PeerComponentArgs, "tunnel" | "sshPrivateKey" | "repair"> {
    /** Its files, units and forwarding, known before the relays' addresses (plan/peerPlan.ts: peerLayout). */
    layout: HostLayout;
    /** Its whole plan, once the relays' addresses are known: wg0's template is rendered from it (no keys in it). */
    plan: pulumi.Output<HostPlan>;
    /** Debian packages beyond every host's. */
    packages?: string[];
    /** Interface names the host's rules and sysctl file use, checked before anything changes on the host. */
    interfaces?: InterfaceSetting[];
}

/** The peer's wg0 template, its staged relay settings (failover/stagedSwitch.ts), and what the doctor checks. */
export interface ProvisionedPeer {
    /** The wg0 template pushed to the host. */
    template: pulumi.Output<string>;
    /** What the relays' switching steps wait for: empty for a peer on plain UDP. */
    staged: pulumi.Resource[];
    /** What the host should have, from its plan, for the doctor. */
    declared: pulumi.Output<DeclaredHost>;
}

/** Pushes a gateway's or client's plan: its wstunnel clients, staged relay settings, wg0 and the plan's files. */
export function provisionPeerHost(host: Host, args: PeerHostArgs): ProvisionedPeer {
    const { layout } = args;
    const interfaces = args.interfaces ? [host.checkInterfaces("interfaces", args.interfaces)] : [];
    const wstunnelClients = layout.wstunnelClients ?? [];
    const pathPrefix = args.pathPrefix;
    if (wstunnelClients.length > 0 && pathPrefix === undefined) {
        throw new Error(`${host.name}: a peer that reaches its relays through wstunnel needs its pathPrefix`);
    }
    // ping: the staged switch's and the transport unit's probe of the relay.
    const packages = host.installPackages("packages", [...new Set([...hostPackages, ...(args.packages ?? []), ...(wstunnelClients.length > 0 ? ["iputils-ping"] : [])])], {
        dependsOn: interfaces,
    });
    // One CA signs every relay's certificate: the first relay's client puts it in place for all (and the peer's
    // certificate), and the others start after it (wstunnel reads both when it starts) and restart when either
    // changes.
    const tls = { mutualTls: args.clientCertificate !== undefined, stackCa: args.relays[0].caCertPem !== undefined };
    // The layout's wstunnel clients are the relays', in their order.
    const clients = wstunnelClients.map((files, index) => {
        const relay = args.relays[index];
        return { relay, files, unitContent: relayView(relay).apply((view) => wstunnelClientUnitContent(wstunnelClientSettings(view, tls), files)) };
    });
    const relaysSwitched = args.relays.flatMap((relay) => relay.switched);
    const peerPublicKeys = args.relays.map((relay) => ({ name: relay.peerName, publicKey: relay.publicKey }));
    const binary = clients.length > 0 ? installWstunnelBinary(host, args.wstunnel, clients.map(({ files }) => files.unit), [packages]) : undefined;
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
    const firstClient = clients.length > 0 ? deployClient(clients[0], true, [binary!]) : undefined;
    const wstunnel = firstClient ? [firstClient, ...clients.slice(1).map((client) => deployClient(client, false, [binary!, firstClient]))] : [];
    const stagedSettings = clients.length > 0 ? stageRelaySettings(host, args, clients, peerPublicKeys, [packages]) : [];
    const presharedKey = args.key.presharedKey;
    const template = args.plan.apply((plan) => renderWgQuickConf(plan.wireguard));
    const wireguard = deployWireguardInterface(host, {
        unit: layout.wireguardUnit,
        privateKey: args.key.privateKey,
        template,
        peerPublicKeys,
        presharedKeys: presharedKey === undefined ? [] : [{ step: "preshared-key", path: peerPresharedKeyPath, key: presharedKey }],
        forwarding: layout.forwarding !== undefined,
        ipv6Upstream: layout.forwarding?.ipv6UpstreamInterface,
        congestionControl: args.wstunnel.congestionControl,
        dependsOn: [packages, ...wstunnel],
    });
    // The plan's own files: scripts after the packages, the staged switch after the staged settings, the units
    // that work through wg0 after it.
    const waitFor = { "staged-settings": [packages, ...stagedSettings], wireguard: [wireguard] };
    const pushed: { file: PlannedFile; step: command.remote.Command }[] = [];
    for (const file of layout.files) {
        const before = file.unit === undefined ? [] : pushed.filter((earlier) => earlier.file.unit === undefined).map((earlier) => earlier.step);
        pushed.push({ file, step: host.writePlannedFile(file, [...(file.after === undefined ? [packages] : waitFor[file.after]), ...before]) });
    }
    const declared = args.plan.apply((plan) =>
        declaredHostOfPlan(plan, {
            publicKey: args.key.publicKey,
            peerPublicKeys: Object.fromEntries(peerPublicKeys.map((relay) => [relay.name, relay.publicKey])),
            wstunnel: clients.length > 0 ? args.wstunnel : undefined,
        }),
    );
    const staged = [...stagedSettings, ...pushed.filter(({ file }) => file.after === "staged-settings").map(({ step }) => step)];
    return { template, staged, declared };
}

/**
 * Stages, before any relay changes, every file of this peer that comes from the relays' settings (their public keys,
 * the wstunnel client units with the relays' addresses, the client certificate, the trusted CA), for the unit that
 * switches to them when the first relay stops answering (failover/stagedSwitch.ts, its script and unit in the plan).
 * The relays' switching steps wait for these steps; the installed files are written for good after them
 * (deployWstunnelClient, public-keys).
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
    return [
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
}
