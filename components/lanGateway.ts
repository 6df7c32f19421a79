// LanGateway: the always-on machine in the home LAN (a Raspberry Pi). It dials out to the relay through its own
// wstunnel client, so CG-NAT never has to let anything in, and routes tunnel traffic onto the LAN.
import * as pulumi from "@pulumi/pulumi";
import { GatewayConfig } from "./config";
import { Host, sshConnection } from "./host";
import { parseCidr } from "./net";
import { firewallHooks, FirewallRule, relayAsPeer, renderWgQuickConf } from "./render/wireguard";
import { peerPresharedKeyPath, wireguardKeyPath } from "./render/paths";
import { PeerComponentArgs, provisionPeerHost } from "./peerHost";

export interface LanGatewayArgs extends PeerComponentArgs {
    gateway: GatewayConfig;
}

export interface GatewayFirewallSpec {
    tunnelSubnet: string;
    lanInterface: string;
    lanSubnets: string[];
    masquerade: boolean;
}

export function gatewayFirewallRules(spec: GatewayFirewallSpec): FirewallRule[] {
    const rules: FirewallRule[] = spec.lanSubnets.map((lan) => ({
        table: "filter" as const,
        chain: "FORWARD",
        spec: `-i %i -o ${spec.lanInterface} -d ${lan} -j ACCEPT`,
    }));
    rules.push({ table: "filter", chain: "FORWARD", spec: `-i ${spec.lanInterface} -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT` });
    if (spec.masquerade) {
        // LAN hosts then answer the gateway, which needs no route for the tunnel subnet on the home router.
        rules.push({ table: "nat", chain: "POSTROUTING", spec: `-s ${spec.tunnelSubnet} -o ${spec.lanInterface} -j MASQUERADE` });
    }
    return rules;
}

export class LanGateway extends pulumi.ComponentResource {
    readonly publicKey: pulumi.Output<string>;
    readonly tunnelAddress: pulumi.Output<string>;
    readonly lanSubnets: pulumi.Output<string[]>;
    readonly wireguardConf: pulumi.Output<string>;

    constructor(name: string, args: LanGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:LanGateway", name, {}, opts);
        const { gateway, tunnel, wstunnel } = args;
        const proxy = gateway.ssh.via === "relay" ? args.relay.connection : undefined;
        const host = new Host(name, sshConnection(gateway.ssh, args.sshPrivateKey, proxy), gateway.ssh.user, this);

        const prefixLength = parseCidr(tunnel.subnet)!.prefix;
        this.wireguardConf = args.relay.publicKey.apply((relayKey) =>
            renderWgQuickConf({
                title: `wg-relay LAN gateway ${gateway.name}`,
                interface: {
                    address: `${gateway.tunnelAddress}/${prefixLength}`,
                    mtu: tunnel.mtu,
                    privateKey: { file: wireguardKeyPath },
                    hooks: firewallHooks(
                        gatewayFirewallRules({
                            tunnelSubnet: tunnel.subnet,
                            lanInterface: gateway.lanInterface,
                            lanSubnets: gateway.lanSubnets,
                            masquerade: gateway.masquerade,
                        }),
                    ),
                },
                peers: [
                    relayAsPeer({
                        publicKey: relayKey,
                        presharedKey: args.key.presharedKey ? { file: peerPresharedKeyPath } : undefined,
                        // The whole tunnel subnet: clients' packets arrive through the relay with their own addresses.
                        allowedIps: [tunnel.subnet],
                        endpoint: `127.0.0.1:${wstunnel.localPort}`,
                        keepaliveSeconds: tunnel.keepaliveSeconds,
                    }),
                ],
            }),
        );
        provisionPeerHost(host, {
            wstunnel,
            relay: args.relay,
            stack: args.stack,
            privateKey: args.key.privateKey,
            presharedKey: args.key.presharedKey,
            useWstunnel: true,
            conf: this.wireguardConf,
            forwarding: true,
        });

        this.publicKey = args.key.publicKey;
        this.tunnelAddress = pulumi.output(gateway.tunnelAddress);
        this.lanSubnets = pulumi.output(gateway.lanSubnets);
        this.registerOutputs({
            publicKey: this.publicKey,
            tunnelAddress: this.tunnelAddress,
            lanSubnets: this.lanSubnets,
            wireguardConf: this.wireguardConf,
        });
    }
}
