// RoamingClient: a laptop or phone. Always produces a bundle (secret stack output) with its wg-quick conf and the
// wstunnel client that carries WireGuard over wss:443 through networks that drop UDP; when SSH details are given,
// the client machine is provisioned like a gateway without the LAN parts.
import * as pulumi from "@pulumi/pulumi";
import { ClientConfig } from "./config";
import { Host, shellQuote, sshConnection } from "./host";
import { parseCidr } from "./net";
import { Hook, KeySource, relayAsPeer, renderWgQuickConf, WgQuickConf } from "./render/wireguard";
import { peerPresharedKeyPath, wireguardKeyPath, wstunnelBinaryPath, wstunnelClientEnvPath } from "./render/paths";
import { clientPrefixVariable, renderWstunnelClientEnvironment, renderWstunnelClientUnit, wstunnelClientArgs } from "./render/wstunnel";
import { PeerComponentArgs, provisionPeerHost } from "./peerHost";
import { wstunnelClientSpec } from "./wstunnelService";

export interface RoamingClientArgs extends PeerComponentArgs {
    client: ClientConfig;
    /** LAN subnets routed into the tunnel (split tunnel). */
    routes: string[];
}

/** Everything a user needs to connect one client by hand. A secret: it holds the private key and the path prefix. */
export interface ClientBundle {
    name: string;
    /** wg-quick conf with the private key inline, for `wg-quick up` or a WireGuard app. */
    wireguardConf: string;
    /** The wstunnel client to run beside it (the prefix comes from the environment, as in the unit); absent with transport udp. */
    wstunnelCommand?: string;
    /** systemd unit and its environment file for Linux clients. */
    wstunnelUnit?: string;
    wstunnelEnvironment?: string;
    /** The stack's CA to add to the client's trust store; absent when the relay has a publicly trusted certificate. */
    caCertificate?: string;
}

export interface ClientConfSpec {
    name: string;
    tunnelAddress: string;
    tunnelSubnet: string;
    mtu: number;
    keepaliveSeconds: number;
    relayPublicKey: string;
    relayPublicAddress: string;
    /** Where WireGuard sends its packets: the local wstunnel listener, or the relay's UDP port. */
    endpoint: string;
    routes: string[];
    fullTunnel: boolean;
    privateKey: KeySource;
    presharedKey?: KeySource;
}

/** With a full tunnel, the relay's own address must keep using the real default route, or wstunnel loops into WireGuard. */
export function fullTunnelHooks(relayAddress: string): Hook[] {
    const rule = `to ${relayAddress}/32 lookup main priority 100`;
    return [{ up: `ip -4 rule add ${rule}`, down: `ip -4 rule del ${rule}` }];
}

export function clientWgQuickConf(spec: ClientConfSpec): WgQuickConf {
    return {
        title: `wg-relay roaming client ${spec.name}`,
        interface: {
            address: `${spec.tunnelAddress}/${parseCidr(spec.tunnelSubnet)!.prefix}`,
            mtu: spec.mtu,
            privateKey: spec.privateKey,
            hooks: spec.fullTunnel ? fullTunnelHooks(spec.relayPublicAddress) : [],
        },
        peers: [
            relayAsPeer({
                publicKey: spec.relayPublicKey,
                presharedKey: spec.presharedKey,
                allowedIps: spec.fullTunnel ? ["0.0.0.0/0"] : [spec.tunnelSubnet, ...spec.routes],
                endpoint: spec.endpoint,
                keepaliveSeconds: spec.keepaliveSeconds,
            }),
        ],
    };
}

export class RoamingClient extends pulumi.ComponentResource {
    readonly publicKey: pulumi.Output<string>;
    readonly tunnelAddress: pulumi.Output<string>;
    readonly bundle: pulumi.Output<ClientBundle>;

    constructor(name: string, args: RoamingClientArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:RoamingClient", name, {}, opts);
        const { client, tunnel, wstunnel, relay } = args;
        const useWstunnel = client.transport === "wstunnel";
        const wstunnelSpec = wstunnelClientSpec(relay, wstunnel.localPort);
        const confSpec = (relayPublicKey: string, privateKey: KeySource, presharedKey?: KeySource): ClientConfSpec => ({
            name: client.name,
            tunnelAddress: client.tunnelAddress,
            tunnelSubnet: tunnel.subnet,
            mtu: tunnel.mtu,
            keepaliveSeconds: tunnel.keepaliveSeconds,
            relayPublicKey,
            relayPublicAddress: relay.dialTarget.host,
            endpoint: useWstunnel ? `127.0.0.1:${wstunnel.localPort}` : `${relay.dialTarget.host}:${relay.dialTarget.wireguardPort}`,
            routes: args.routes,
            fullTunnel: client.fullTunnel,
            privateKey,
            presharedKey,
        });

        this.bundle = pulumi.secret(
            pulumi
                .all([relay.publicKey, args.key.privateKey, args.key.presharedKey, relay.pathPrefix, relay.caCertPem])
                .apply(([relayKey, privateKey, presharedKey, prefix, ca]) => ({
                    name: client.name,
                    wireguardConf: renderWgQuickConf(
                        clientWgQuickConf(confSpec(relayKey, { inline: privateKey }, presharedKey ? { inline: presharedKey } : undefined)),
                    ),
                    ...(useWstunnel
                        ? {
                              wstunnelCommand: `${clientPrefixVariable}=${shellQuote(prefix)} ${wstunnelBinaryPath} ${wstunnelClientArgs(wstunnelSpec).map(shellQuote).join(" ")}`,
                              wstunnelUnit: renderWstunnelClientUnit({ ...wstunnelSpec, environmentFile: wstunnelClientEnvPath }),
                              wstunnelEnvironment: renderWstunnelClientEnvironment(prefix),
                              ...(ca ? { caCertificate: ca } : {}),
                          }
                        : {}),
                })),
        );

        if (client.ssh) {
            const proxy = client.ssh.via === "relay" ? relay.connection : undefined;
            const host = new Host(name, sshConnection(client.ssh, args.sshPrivateKey, proxy), client.ssh.user, this);
            provisionPeerHost(host, {
                wstunnel,
                relay,
                stack: args.stack,
                privateKey: args.key.privateKey,
                presharedKey: args.key.presharedKey,
                useWstunnel,
                conf: relay.publicKey.apply((relayKey) =>
                    renderWgQuickConf(
                        clientWgQuickConf(
                            confSpec(relayKey, { file: wireguardKeyPath }, args.key.presharedKey ? { file: peerPresharedKeyPath } : undefined),
                        ),
                    ),
                ),
                forwarding: false,
            });
        }

        this.publicKey = args.key.publicKey;
        this.tunnelAddress = pulumi.output(client.tunnelAddress);
        this.registerOutputs({ publicKey: this.publicKey, tunnelAddress: this.tunnelAddress, bundle: this.bundle });
    }
}
