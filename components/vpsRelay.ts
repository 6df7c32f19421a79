// VpsRelay: the public VPS. wstunnel terminates wss:// on TCP 443 and forwards only to the local WireGuard port;
// WireGuard has a peer per gateway (its tunnel address and LANs) and per roaming client.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { RelayConfig, relayPublicAddress, TunnelConfig, WstunnelConfig } from "./config";
import { Connection, Host, sshConnection } from "./host";
import { parseCidr } from "./net";
import { firewallHooks, FirewallRule, renderWgQuickConf, WgPeer } from "./render/wireguard";
import { relayPresharedKeyPath, serverCertificatePath, serverPrivateKeyPath, wireguardKeyPath, wstunnelServerUnit } from "./render/paths";
import { hostPackages } from "./peerHost";
import { createRelayPki } from "./relayPki";
import { WireguardKey } from "./wireguardKey";
import { deployPresharedKey, deployWireguardInterface } from "./wireguardInterface";
import { deployWstunnelServer, installWstunnelBinary } from "./wstunnelService";

export interface RelayPeer {
    name: string;
    role: "gateway" | "client";
    tunnelAddress: string;
    /** LAN subnets behind a gateway. */
    lanSubnets: string[];
    publicKey: pulumi.Input<string>;
    presharedKey?: pulumi.Input<string>;
}

export interface VpsRelayArgs {
    relay: RelayConfig;
    tunnel: TunnelConfig;
    wstunnel: WstunnelConfig;
    /** Names the CA and the trust-store file. */
    stack: string;
    tunnelAddress: string;
    key: WireguardKey;
    peers: RelayPeer[];
    /** Some client sends all its traffic through the relay: forward and masquerade onto the public interface. */
    internetEgress: boolean;
    sshPrivateKey: pulumi.Input<string>;
}

export interface RelayFirewallSpec {
    tunnelSubnet: string;
    publicInterface: string;
    wireguardPort: number;
    allowDirectUdp: boolean;
    internetEgress: boolean;
}

export function relayFirewallRules(spec: RelayFirewallSpec): FirewallRule[] {
    const rules: FirewallRule[] = [
        // Clients reach gateways (and each other) through the relay.
        { table: "filter", chain: "FORWARD", spec: "-i %i -o %i -j ACCEPT" },
    ];
    if (spec.internetEgress) {
        rules.push(
            { table: "filter", chain: "FORWARD", spec: `-i %i -o ${spec.publicInterface} -j ACCEPT` },
            { table: "filter", chain: "FORWARD", spec: `-i ${spec.publicInterface} -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT` },
            { table: "nat", chain: "POSTROUTING", spec: `-s ${spec.tunnelSubnet} -o ${spec.publicInterface} -j MASQUERADE` },
        );
    }
    if (!spec.allowDirectUdp) {
        // WireGuard listens on every address; only wstunnel, over loopback, may reach it.
        rules.push({ table: "filter", chain: "INPUT", insert: true, spec: `-i ${spec.publicInterface} -p udp --dport ${spec.wireguardPort} -j DROP` });
    }
    return rules;
}

export function relayPeerAllowedIps(peer: Pick<RelayPeer, "tunnelAddress" | "lanSubnets">): string[] {
    return [`${peer.tunnelAddress}/32`, ...peer.lanSubnets];
}

export class VpsRelay extends pulumi.ComponentResource {
    readonly publicKey: pulumi.Output<string>;
    /** The wss:// URL clients dial. */
    readonly endpoint: pulumi.Output<string>;
    /** PEM of the stack's CA, trusted by gateways and clients; undefined with user-supplied certificate files. */
    readonly caCertPem: pulumi.Output<string> | undefined;
    /** When the stack's CA and server certificate expire (RFC 3339); undefined with user-supplied files. */
    readonly certificateExpiry: { ca: pulumi.Output<string>; server: pulumi.Output<string> } | undefined;
    /** The HTTP upgrade path prefix the server requires (secret). */
    readonly pathPrefix: pulumi.Output<string>;
    readonly wireguardConf: pulumi.Output<string>;
    /** SSH settings, for gateways and clients reached through the relay as a jump host. */
    readonly connection: Connection;
    /** What a wstunnel client dials, and the WireGuard port it asks the server to forward to. */
    readonly dialTarget: { host: string; port: number; wireguardPort: number };

    constructor(name: string, args: VpsRelayArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:VpsRelay", name, {}, opts);
        const { relay, tunnel, wstunnel } = args;
        const publicAddress = relayPublicAddress(relay);
        this.connection = sshConnection(relay.ssh, args.sshPrivateKey);
        this.dialTarget = { host: publicAddress, port: relay.wstunnelPort, wireguardPort: relay.wireguardPort };
        const host = new Host(name, this.connection, relay.ssh.user, this);

        const prefix = new random.RandomPassword(`${name}-path-prefix`, { length: 32, special: false }, { parent: this });
        this.pathPrefix = pulumi.secret(prefix.result);

        // The stack's own CA and server certificate, unless the user brings certificate files.
        const pki = wstunnel.tls === undefined ? createRelayPki(name, { stack: args.stack, publicAddress }, this) : undefined;
        this.caCertPem = pki?.caCertPem;
        this.certificateExpiry = pki?.expiry;

        const packages = host.installPackages("packages", hostPackages);
        const binary = installWstunnelBinary(host, wstunnel, wstunnelServerUnit, [packages]);
        const server = deployWstunnelServer(host, {
            spec: {
                listenPort: relay.wstunnelPort,
                wireguardPort: relay.wireguardPort,
                certificateFile: wstunnel.tls?.certificateFile ?? serverCertificatePath,
                privateKeyFile: wstunnel.tls?.privateKeyFile ?? serverPrivateKeyPath,
            },
            pathPrefix: this.pathPrefix,
            certificate: pki?.server,
            dependsOn: [binary],
        });

        const prefixLength = parseCidr(tunnel.subnet)!.prefix;
        const presharedKeys = args.peers
            .filter((peer) => peer.presharedKey !== undefined)
            .map((peer) =>
                deployPresharedKey(host, `preshared-key-${peer.name}`, {
                    path: relayPresharedKeyPath(peer.name),
                    content: peer.presharedKey!,
                    peerPublicKey: peer.publicKey,
                    dependsOn: [packages],
                }),
            );
        const peers = pulumi.all(
            args.peers.map((peer) =>
                pulumi.output(peer.publicKey).apply(
                    (publicKey): WgPeer => ({
                        description: `${peer.name} (${peer.role})`,
                        publicKey,
                        presharedKey: peer.presharedKey !== undefined ? { file: relayPresharedKeyPath(peer.name) } : undefined,
                        allowedIps: relayPeerAllowedIps(peer),
                    }),
                ),
            ),
        );
        this.wireguardConf = peers.apply((wgPeers) =>
            renderWgQuickConf({
                title: `wg-relay relay ${relay.name}`,
                interface: {
                    address: `${args.tunnelAddress}/${prefixLength}`,
                    listenPort: relay.wireguardPort,
                    mtu: tunnel.mtu,
                    privateKey: { file: wireguardKeyPath },
                    hooks: firewallHooks(
                        relayFirewallRules({
                            tunnelSubnet: tunnel.subnet,
                            publicInterface: relay.publicInterface,
                            wireguardPort: relay.wireguardPort,
                            allowDirectUdp: relay.allowDirectUdp,
                            internetEgress: args.internetEgress,
                        }),
                    ),
                },
                peers: wgPeers,
            }),
        );
        deployWireguardInterface(host, {
            privateKey: args.key.privateKey,
            conf: this.wireguardConf,
            forwarding: true,
            dependsOn: [packages, server, ...presharedKeys],
        });

        this.publicKey = args.key.publicKey;
        this.endpoint = pulumi.output(`wss://${publicAddress}:${relay.wstunnelPort}`);
        this.registerOutputs({
            publicKey: this.publicKey,
            endpoint: this.endpoint,
            caCertPem: this.caCertPem,
            certificateExpiry: this.certificateExpiry,
            pathPrefix: this.pathPrefix,
            wireguardConf: this.wireguardConf,
        });
    }
}
