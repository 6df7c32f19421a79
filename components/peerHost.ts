// What a LAN gateway and a provisioned roaming client have in common: a wstunnel client towards the relay
// and a WireGuard interface whose endpoint is that client's local UDP listener.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { TunnelConfig, WstunnelConfig } from "./config";
import { Host } from "./host";
import { peerPresharedKeyPath, wstunnelClientUnit } from "./render/paths";
import { VpsRelay } from "./vpsRelay";
import { WireguardKey } from "./wireguardKey";
import { deployPresharedKey, deployWireguardInterface } from "./wireguardInterface";
import { deployWstunnelClient, installWstunnelBinary, wstunnelClientSpec } from "./wstunnelService";

/** Debian packages every wg-relay host needs (curl and CA certificates fetch a wstunnel release). */
export const hostPackages = ["wireguard-tools", "iptables", "curl", "ca-certificates"];

/** What LanGateway and RoamingClient are both given. */
export interface PeerComponentArgs {
    tunnel: TunnelConfig;
    wstunnel: WstunnelConfig;
    /** Names the trust-store file of the stack's CA. */
    stack: string;
    relay: VpsRelay;
    key: WireguardKey;
    sshPrivateKey: pulumi.Input<string>;
}

export interface PeerHostArgs {
    wstunnel: WstunnelConfig;
    relay: VpsRelay;
    stack: string;
    privateKey: pulumi.Input<string>;
    presharedKey?: pulumi.Input<string>;
    /** Whether WireGuard reaches the relay through a local wstunnel client (else straight over UDP). */
    useWstunnel: boolean;
    conf: pulumi.Input<string>;
    forwarding: boolean;
}

export function provisionPeerHost(host: Host, args: PeerHostArgs): command.remote.Command {
    const packages = host.installPackages("packages", hostPackages);
    const wstunnel = args.useWstunnel
        ? [
              deployWstunnelClient(host, {
                  spec: wstunnelClientSpec(args.relay, args.wstunnel.localPort),
                  pathPrefix: args.relay.pathPrefix,
                  caCertPem: args.relay.caCertPem,
                  stack: args.stack,
                  dependsOn: [installWstunnelBinary(host, args.wstunnel, wstunnelClientUnit, [packages])],
              }),
          ]
        : [];
    const presharedKey =
        args.presharedKey === undefined
            ? []
            : [
                  deployPresharedKey(host, "preshared-key", {
                      path: peerPresharedKeyPath,
                      content: args.presharedKey,
                      peerPublicKey: args.relay.publicKey,
                      dependsOn: [packages],
                  }),
              ];
    return deployWireguardInterface(host, {
        privateKey: args.privateKey,
        conf: args.conf,
        forwarding: args.forwarding,
        dependsOn: [packages, ...wstunnel, ...presharedKey],
    });
}
