// RoamingClient: a laptop or phone. Always produces a bundle (secret stack output) with its wg-quick conf and the
// wstunnel client that carries WireGuard over wss:443 through networks that drop UDP; when SSH details are given,
// the client machine is provisioned like a gateway without the LAN parts.
import * as pulumi from "@pulumi/pulumi";
import { ClientSettings, TunnelNetwork } from "./config";
import { ClientBundle } from "./clientBundle";
import { Host, sshConnection } from "./host";
import { shellQuote } from "./shell";
import { Hook, KeySource, PublicKeySource, relayAsPeer, renderWgQuickConf, WgQuickConf } from "./render/wireguard";
import { peerPresharedKeyPath, wireguardKeyPath, wstunnelBinaryPath, wstunnelClientEnvPath } from "./render/paths";
import { clientPrefixVariable, renderWstunnelClientEnvironment, renderWstunnelClientUnit, wstunnelClientArgs } from "./render/wstunnel";
import { PeerComponentArgs, provisionPeerHost } from "./peerHost";
import { wstunnelClientSettings } from "./wstunnelService";

export interface RoamingClientArgs extends PeerComponentArgs {
    client: ClientSettings;
}

export interface ClientConfSettings {
    client: Pick<ClientSettings, "name" | "tunnelAddress" | "routes" | "fullTunnel" | "transport">;
    tunnel: TunnelNetwork;
    /** The relay's public address, kept outside a full tunnel. */
    relayHost: string;
    relayPublicKey: PublicKeySource;
    /** WireGuard's Endpoint: the local wstunnel listener, or the relay's UDP port. */
    wireguardEndpoint: string;
    privateKey: KeySource;
    presharedKey?: KeySource;
}

/** With a full tunnel, the relay's own address must keep using the real default route, or wstunnel loops into WireGuard. */
export function fullTunnelHooks(relayAddress: string): Hook[] {
    const rule = `to ${relayAddress}/32 lookup main priority 100`;
    return [{ up: `ip -4 rule add ${rule}`, down: `ip -4 rule del ${rule}` }];
}

export function clientWgQuickConf(settings: ClientConfSettings): WgQuickConf {
    const { client, tunnel } = settings;
    return {
        title: `WireGuard on ${client.name}, a roaming client`,
        interface: {
            address: `${client.tunnelAddress}/${tunnel.prefixLength}`,
            // On plain UDP its packets cross real networks; inside wstunnel no path MTU applies.
            mtu: client.transport === "udp" ? tunnel.udpMtu : tunnel.mtu,
            privateKey: settings.privateKey,
            hooks: client.fullTunnel ? fullTunnelHooks(settings.relayHost) : [],
        },
        peers: [
            relayAsPeer({
                publicKey: settings.relayPublicKey,
                presharedKey: settings.presharedKey,
                allowedIps: client.fullTunnel ? ["0.0.0.0/0"] : [tunnel.subnet, ...client.routes],
                endpoint: settings.wireguardEndpoint,
                keepaliveSeconds: tunnel.keepaliveSeconds,
            }),
        ],
    };
}

export class RoamingClient extends pulumi.ComponentResource {
    readonly publicKey: pulumi.Output<string>;
    readonly tunnelAddress: pulumi.Output<string>;
    readonly bundle: pulumi.Output<ClientBundle>;
    /** The wg0 template pushed to a client provisioned over SSH (no keys in it). */
    readonly wireguardTemplate: string | undefined;

    constructor(name: string, args: RoamingClientArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:RoamingClient", name, {}, opts);
        const { client, tunnel, wstunnel, relay } = args;
        const useWstunnel = client.transport === "wstunnel";
        const wstunnelSettings = wstunnelClientSettings(relay, wstunnel.localPort);
        const confSettings = { client, tunnel, relayHost: relay.address.host };
        const wireguardEndpoint = useWstunnel ? `127.0.0.1:${wstunnel.localPort}` : `${relay.address.host}:${relay.address.wireguardPort}`;

        this.bundle = pulumi.secret(
            pulumi
                .all([relay.publicKey, args.key.privateKey, args.key.presharedKey, args.pathPrefix, relay.caCertPem])
                .apply(([relayKey, privateKey, presharedKey, prefix, ca]) => ({
                    name: client.name,
                    wireguardConf: renderWgQuickConf(
                        clientWgQuickConf({
                            ...confSettings,
                            relayPublicKey: { inline: relayKey },
                            wireguardEndpoint,
                            privateKey: { inline: privateKey },
                            presharedKey: presharedKey ? { inline: presharedKey } : undefined,
                        }),
                    ),
                    ...(prefix !== undefined
                        ? {
                              wstunnelCommand: `${clientPrefixVariable}=${shellQuote(prefix)} ${wstunnelBinaryPath} ${wstunnelClientArgs(wstunnelSettings).map(shellQuote).join(" ")}`,
                              wstunnelUnit: renderWstunnelClientUnit({ ...wstunnelSettings, environmentFile: wstunnelClientEnvPath }),
                              wstunnelEnvironment: renderWstunnelClientEnvironment(prefix),
                              ...(ca ? { caCertificate: ca } : {}),
                          }
                        : {}),
                })),
        );

        if (client.ssh) {
            const proxy = client.ssh.via === "relay" ? relay.connection : undefined;
            const host = new Host(name, sshConnection(client.ssh, args.sshPrivateKey, proxy), client.ssh.user, this, args.repair);
            this.wireguardTemplate = renderWgQuickConf(
                clientWgQuickConf({
                    ...confSettings,
                    relayPublicKey: { ofPeer: relay.peerName },
                    wireguardEndpoint,
                    privateKey: { file: wireguardKeyPath },
                    presharedKey: args.key.presharedKey ? { file: peerPresharedKeyPath } : undefined,
                }),
            );
            provisionPeerHost(host, { ...args, template: this.wireguardTemplate, forwarding: false });
        }

        this.publicKey = args.key.publicKey;
        this.tunnelAddress = pulumi.output(client.tunnelAddress);
        this.registerOutputs({ publicKey: this.publicKey, tunnelAddress: this.tunnelAddress, bundle: this.bundle });
    }
}
