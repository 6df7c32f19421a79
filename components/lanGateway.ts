// LanGateway: the always-on machine in the home LAN (a Raspberry Pi). It dials out to every relay, through a wstunnel
// client of its own or (transport udp) straight to the relay's UDP port, or (auto, one relay) over UDP while it
// passes and through wstunnel when it does not, so CG-NAT never has to let anything in, and routes tunnel traffic
// onto the LAN. With siteToSite it also routes the other sites' LANs through the first relay.
import * as pulumi from "@pulumi/pulumi";
import { GatewaySettings } from "./config";
import { Host, WithInputHost } from "./host/host";
import { DeclaredHost } from "./plan/declaredHosts";
import { gatewayLayout, gatewayPlan } from "./plan/gatewayPlan";
import { PeerComponentArgs, peerPlanSettings, provisionPeerHost, relayViews } from "./peerHost";

/**
 * A gateway's resolved settings (one of `parseNetworkConfig(...).gateways`), whose SSH host and user may be other
 * resources' outputs: a machine a cloud provider's Pulumi package creates in the same `pulumi up`.
 */
export type LanGatewaySettings = Omit<GatewaySettings, "ssh"> & { ssh: WithInputHost<GatewaySettings["ssh"]> };

export interface LanGatewayArgs extends PeerComponentArgs {
    gateway: LanGatewaySettings;
}

export class LanGateway extends pulumi.ComponentResource {
    readonly publicKey: pulumi.Output<string>;
    readonly tunnelAddress: pulumi.Output<string>;
    readonly lanSubnets: pulumi.Output<string[]>;
    /** The rendered wg0 template (no keys in it). */
    readonly wireguardTemplate: pulumi.Output<string>;
    /** What the host should have (units, peers, rules, wstunnel): `npm run doctor` checks it against the host. */
    readonly declared: pulumi.Output<DeclaredHost>;
    /** Its staged relay settings: the relays change only after them (failover/stagedSwitch.ts). */
    readonly staged: pulumi.Resource[];

    constructor(name: string, args: LanGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:LanGateway", name, {}, opts);
        const { gateway, relays } = args;
        const host = Host.overSsh(name, gateway.ssh, { privateKey: args.sshPrivateKey, parent: this, repair: args.repair, relayConnection: relays[0].connection });

        // Everything the gateway should have, but its secrets (plan/gatewayPlan.ts).
        const settings = peerPlanSettings(args);
        const { template, staged, declared } = provisionPeerHost(host, {
            ...args,
            layout: gatewayLayout(gateway, settings, relays),
            plan: relayViews(relays).apply((known) => gatewayPlan(gateway, settings, known)),
            interfaces: [{ key: gateway.lanInterfaceKey, name: gateway.lanInterface }],
        });
        this.wireguardTemplate = template;
        this.staged = staged;
        this.declared = declared;
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
