// LanGateway: the always-on machine in the home LAN (a Raspberry Pi). It dials out to the relay through its own
// wstunnel client, so CG-NAT never has to let anything in, and routes tunnel traffic onto the LAN.
import * as pulumi from "@pulumi/pulumi";
import { GatewaySettings, TunnelNetwork, WstunnelSettings } from "./config";
import { Host, sshConnection } from "./host";
import { firewallHooks, FirewallRule, relayAsPeer, renderWgQuickConf, WgQuickConf } from "./render/wireguard";
import { renderHeartbeatUnit } from "./render/heartbeat";
import { heartbeatUnit, peerPresharedKeyPath, wireguardKeyPath } from "./render/paths";
import { PeerComponentArgs, provisionPeerHost } from "./peerHost";

/** With WireGuard's 15 s of unanswered data before a new handshake: the tunnel is back within about 20 s. */
const heartbeatSeconds = 5;

export interface LanGatewayArgs extends PeerComponentArgs {
    gateway: GatewaySettings;
    /** A gateway always dials the relay through wstunnel. */
    pathPrefix: pulumi.Output<string>;
}

export interface GatewayFirewallSettings {
    tunnelSubnet: string;
    tunnelAddress: string;
    lanInterface: string;
    lanSubnets: string[];
    masquerade: boolean;
}

export function gatewayFirewallRules(settings: GatewayFirewallSettings): FirewallRule[] {
    const rules: FirewallRule[] = settings.lanSubnets.map((lan) => ({
        table: "filter" as const,
        chain: "FORWARD",
        rule: `-i %i -o ${settings.lanInterface} -d ${lan} -j ACCEPT`,
    }));
    rules.push({ table: "filter", chain: "FORWARD", rule: `-i ${settings.lanInterface} -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT` });
    // The gateway's tunnel address is for the tunnel: a LAN neighbour routing to it would reach the gateway's own
    // services (its SSH, say) from an address the tunnel's peers trust.
    rules.push({ table: "filter", chain: "INPUT", insert: true, rule: `-i ${settings.lanInterface} -d ${settings.tunnelAddress}/32 -j DROP` });
    if (settings.masquerade) {
        // LAN hosts then answer the gateway, which needs no route for the tunnel subnet on the home router.
        rules.push({ table: "nat", chain: "POSTROUTING", rule: `-s ${settings.tunnelSubnet} -o ${settings.lanInterface} -j MASQUERADE` });
    }
    return rules;
}

/** The gateway's wg0 template: the relay as its one peer, reached through the local wstunnel client. */
export function gatewayWgQuickConf(gateway: GatewaySettings, tunnel: TunnelNetwork, wstunnel: Pick<WstunnelSettings, "localPort">, relayName: string): WgQuickConf {
    return {
        title: `WireGuard on ${gateway.name}, a LAN gateway`,
        interface: {
            address: `${gateway.tunnelAddress}/${tunnel.prefixLength}`,
            mtu: tunnel.mtu,
            privateKey: { file: wireguardKeyPath },
            hooks: firewallHooks(
                gatewayFirewallRules({
                    tunnelSubnet: tunnel.subnet,
                    tunnelAddress: gateway.tunnelAddress,
                    lanInterface: gateway.lanInterface,
                    lanSubnets: gateway.lanSubnets,
                    masquerade: gateway.masquerade,
                }),
            ),
        },
        peers: [
            relayAsPeer({
                publicKey: { ofPeer: relayName },
                presharedKey: gateway.presharedKey ? { file: peerPresharedKeyPath } : undefined,
                // The whole tunnel subnet: clients' packets arrive through the relay with their own addresses.
                allowedIps: [tunnel.subnet],
                endpoint: `127.0.0.1:${wstunnel.localPort}`,
                keepaliveSeconds: tunnel.keepaliveSeconds,
            }),
        ],
    };
}

export class LanGateway extends pulumi.ComponentResource {
    readonly publicKey: pulumi.Output<string>;
    readonly tunnelAddress: pulumi.Output<string>;
    readonly lanSubnets: pulumi.Output<string[]>;
    /** The rendered wg0 template (no keys in it). */
    readonly wireguardTemplate: string;

    constructor(name: string, args: LanGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:LanGateway", name, {}, opts);
        const { gateway, relay } = args;
        const proxy = gateway.ssh.via === "relay" ? relay.connection : undefined;
        const host = new Host(name, sshConnection(gateway.ssh, args.sshPrivateKey, proxy), gateway.ssh.user, this, args.repair);

        this.wireguardTemplate = renderWgQuickConf(gatewayWgQuickConf(gateway, args.tunnel, args.wstunnel, relay.peerName));
        const wireguard = provisionPeerHost(host, { ...args, template: this.wireguardTemplate, forwarding: true });
        host.installServiceUnit("heartbeat-unit", {
            unit: heartbeatUnit,
            content: renderHeartbeatUnit({ relayTunnelAddress: relay.tunnelAddress, intervalSeconds: heartbeatSeconds }),
            dependsOn: [wireguard],
        });

        this.publicKey = args.key.publicKey;
        this.tunnelAddress = pulumi.output(gateway.tunnelAddress);
        this.lanSubnets = pulumi.output(gateway.lanSubnets);
        this.registerOutputs({
            publicKey: this.publicKey,
            tunnelAddress: this.tunnelAddress,
            lanSubnets: this.lanSubnets,
            wireguardTemplate: this.wireguardTemplate,
        });
    }
}
