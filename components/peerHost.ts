// What a LAN gateway and a provisioned roaming client have in common: a wstunnel client towards the relay
// and a WireGuard interface whose endpoint is that client's local UDP listener.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { TunnelNetwork, WstunnelSettings } from "./config";
import { Connection, Host, hostPackages } from "./host";
import { peerPresharedKeyPath, wstunnelClientUnit } from "./render/paths";
import { WireguardKey } from "./wireguardKey";
import { deployWireguardInterface } from "./wireguardInterface";
import { deployWstunnelClient, installWstunnelBinary, wstunnelClientSettings } from "./wstunnelService";

/** What a gateway or client needs of the relay (VpsRelay has it). */
export interface RelayAccess {
    peerName: string;
    tunnelAddress: string;
    publicKey: pulumi.Output<string>;
    peerCredentials: pulumi.Resource;
    caCertPem: pulumi.Output<string> | undefined;
    connection: Connection;
    address: { host: string; wstunnelPort: number; wireguardPort: number };
}

/** What LanGateway and RoamingClient are both given. */
export interface PeerComponentArgs {
    tunnel: TunnelNetwork;
    wstunnel: WstunnelSettings;
    /** Names the trust-store file of the stack's CA. */
    stack: string;
    relay: RelayAccess;
    key: WireguardKey;
    /** This peer's own wstunnel path prefix (secret); none for a client on plain UDP. */
    pathPrefix?: pulumi.Output<string>;
    sshPrivateKey: pulumi.Input<string>;
    /** The stack's `wg-relay:repair` counter. */
    repair: number;
}

export interface PeerHostArgs extends Omit<PeerComponentArgs, "tunnel" | "sshPrivateKey" | "repair"> {
    template: string;
    forwarding: boolean;
}

export function provisionPeerHost(host: Host, args: PeerHostArgs): command.remote.Command {
    const packages = host.installPackages("packages", hostPackages);
    const pathPrefix = args.pathPrefix;
    const wstunnel = pathPrefix
        ? [
              deployWstunnelClient(host, {
                  settings: wstunnelClientSettings(args.relay, args.wstunnel.localPort),
                  pathPrefix,
                  relayCredentials: args.relay.peerCredentials,
                  caCertPem: args.relay.caCertPem,
                  stack: args.stack,
                  dependsOn: [installWstunnelBinary(host, args.wstunnel, wstunnelClientUnit, [packages])],
              }),
          ]
        : [];
    const presharedKey = args.key.presharedKey;
    return deployWireguardInterface(host, {
        privateKey: args.key.privateKey,
        template: args.template,
        peerPublicKeys: [{ name: args.relay.peerName, publicKey: args.relay.publicKey }],
        presharedKeys: presharedKey === undefined ? [] : [{ step: "preshared-key", path: peerPresharedKeyPath, key: presharedKey }],
        forwarding: args.forwarding,
        dependsOn: [packages, ...wstunnel],
    });
}
