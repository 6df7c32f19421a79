// What a LAN gateway and a provisioned roaming client have in common: a wstunnel client towards each relay and a
// WireGuard interface with a peer per relay, whose endpoint is that relay's wstunnel client's local UDP listener.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { TunnelNetwork, WstunnelSettings } from "./config";
import { Connection, Host, hostPackages } from "./host";
import { InterfaceSetting } from "./render/interfaces";
import { peerPresharedKeyPath, wstunnelClientFiles } from "./render/paths";
import { ClientCertificate } from "./relayPki";
import { WireguardKey } from "./wireguardKey";
import { deployWireguardInterface } from "./wireguardInterface";
import { deployWstunnelClient, installWstunnelBinary, wstunnelClientSettings } from "./wstunnelService";

/** What a gateway or client needs of a relay (VpsRelay has it). */
export interface RelayAccess {
    peerName: string;
    tunnelAddress: string;
    /** The relay's own tunnel subnet: its peers have an address in each relay's subnet. */
    tunnelSubnet: string;
    /** Where the peer's wstunnel client for this relay listens. */
    wstunnelLocalPort: number;
    publicKey: pulumi.Output<string>;
    peerCredentials: pulumi.Resource;
    caCertPem: pulumi.Output<string> | undefined;
    connection: Connection;
    address: { host: string; wstunnelPort: number; wireguardPort: number; udpPorts: number[] };
}

/** What LanGateway and RoamingClient are both given. */
export interface PeerComponentArgs {
    tunnel: TunnelNetwork;
    wstunnel: WstunnelSettings;
    /** Names the file earlier versions put in the system's trust store. */
    stack: string;
    /** Every relay, the first first: the peer keeps a tunnel to each. */
    relays: RelayAccess[];
    key: WireguardKey;
    /** This peer's own wstunnel path prefix (secret), the same towards every relay; none for a client on plain UDP. */
    pathPrefix?: pulumi.Output<string>;
    /** With mutual TLS (wstunnel.mutualTls): its certificate, whose common name is pathPrefix, for every relay. */
    clientCertificate?: ClientCertificate;
    sshPrivateKey: pulumi.Input<string>;
    /** The stack's `wg-relay:repair` counter. */
    repair: number;
}

export interface PeerHostArgs extends Omit<PeerComponentArgs, "tunnel" | "sshPrivateKey" | "repair"> {
    template: string;
    forwarding: boolean;
    /** With IPv6 inside the tunnel, a forwarding host's interface that keeps its IPv6 autoconfiguration. */
    ipv6Upstream?: string;
    /** Debian packages beyond every host's. */
    packages?: string[];
    /** Interface names the host's rules and sysctl file use, checked before anything changes on the host. */
    interfaces?: InterfaceSetting[];
}

export function provisionPeerHost(host: Host, args: PeerHostArgs): command.remote.Command {
    const interfaces = args.interfaces ? [host.checkInterfaces("interfaces", args.interfaces)] : [];
    const packages = host.installPackages("packages", [...hostPackages, ...(args.packages ?? [])], { dependsOn: interfaces });
    const pathPrefix = args.pathPrefix;
    const clients = args.relays.map((relay, index) => ({ relay, files: wstunnelClientFiles({ name: relay.peerName, index }) }));
    const binary = pathPrefix ? installWstunnelBinary(host, args.wstunnel, clients.map(({ files }) => files.unit), [packages]) : undefined;
    // One CA signs every relay's certificate: the first relay's client puts it in place for all (and the peer's
    // certificate), and the others start after it (wstunnel reads both when it starts) and restart when either
    // changes.
    const tls = { mutualTls: args.clientCertificate !== undefined, stackCa: args.relays[0].caCertPem !== undefined };
    const deployClient = ({ relay, files }: (typeof clients)[number], first: boolean, dependsOn: pulumi.Input<pulumi.Resource>[]) =>
        deployWstunnelClient(host, {
            settings: wstunnelClientSettings(relay, tls),
            files,
            pathPrefix: pathPrefix!,
            relayCredentials: relay.peerCredentials,
            caCertPem: first ? relay.caCertPem : undefined,
            clientCertificate: first ? args.clientCertificate : undefined,
            otherClientUnits: first ? clients.slice(1).map(({ files: others }) => others.unit) : undefined,
            stack: args.stack,
            dependsOn,
        });
    const firstClient = pathPrefix ? deployClient(clients[0], true, [binary!]) : undefined;
    const wstunnel = firstClient ? [firstClient, ...clients.slice(1).map((client) => deployClient(client, false, [binary!, firstClient]))] : [];
    const presharedKey = args.key.presharedKey;
    return deployWireguardInterface(host, {
        privateKey: args.key.privateKey,
        template: args.template,
        peerPublicKeys: args.relays.map((relay) => ({ name: relay.peerName, publicKey: relay.publicKey })),
        presharedKeys: presharedKey === undefined ? [] : [{ step: "preshared-key", path: peerPresharedKeyPath, key: presharedKey }],
        forwarding: args.forwarding,
        ipv6Upstream: args.ipv6Upstream,
        congestionControl: args.wstunnel.congestionControl,
        dependsOn: [packages, ...wstunnel],
    });
}
