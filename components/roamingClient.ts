// RoamingClient: a laptop or phone. Always produces a bundle (secret stack output) with its wg-quick conf and the
// wstunnel client that carries WireGuard over wss:443 through networks that drop UDP; when SSH details are given,
// the client machine is provisioned like a gateway without the LAN parts. With several relays it has a peer per
// relay, its LAN routes on its primary's, and (when provisioned) a failover unit that moves them to the next relay
// that answers when the primary stops, and back. On transport auto (one relay, provisioned), a unit moves the relay's
// endpoint between its UDP port and the local wstunnel client, by whether the relay answers over UDP.
import * as pulumi from "@pulumi/pulumi";
import { ClientSettings, TunnelNetwork } from "./config";
import { ClientBundle } from "./clientBundle";
import { Host, WithInputHost } from "./host/host";
import { shellQuote } from "./host/shell";
import { renderWgQuickConf } from "./wireguard/render";
import { wstunnelBinaryPath, wstunnelClientFiles } from "./host/paths";
import { caFileVariable, clientPrefixVariable, renderClientCertificatePem, renderWstunnelClientEnvironment, renderWstunnelClientUnit, wstunnelClientArgs } from "./wstunnel/render";
import { platformWstunnelFiles } from "./wstunnel/clientPlatforms";
import { clientLayout, clientPlan, clientWgQuickConf, confRelays } from "./plan/clientPlan";
import type { RelayView } from "./plan/peerPlan";
import { PeerComponentArgs, peerPlanSettings, provisionPeerHost, relayViews } from "./peerHost";
import { DeclaredHost } from "./plan/declaredHosts";
import { wstunnelClientSettings } from "./wstunnel/render";

/**
 * A client's resolved settings (one of `parseNetworkConfig(...).clients`); with `ssh`, its machine is provisioned, and
 * its SSH host and user may be other resources' outputs (say a CI runner a cloud provider makes in the same `pulumi up`).
 */
export type RoamingClientSettings = Omit<ClientSettings, "ssh"> & { ssh?: WithInputHost<NonNullable<ClientSettings["ssh"]>> };

export interface RoamingClientArgs extends PeerComponentArgs {
    client: RoamingClientSettings;
}

/** What a client's bundle needs of a relay: how it is reached and its public key. */
export type BundleRelay = Pick<RelayView, "peerName" | "tunnelSubnet" | "wstunnelLocalPort" | "peers" | "address"> & { publicKey: string };

export interface ClientBundleInputs {
    client: Omit<ClientSettings, "ssh">;
    tunnel: TunnelNetwork;
    /** Every relay, the first first. */
    relays: BundleRelay[];
    privateKey: string;
    presharedKey?: string;
    /** The client's wstunnel path prefix; none on plain UDP. */
    pathPrefix?: string;
    /** The stack's CA; none when the relay has a publicly trusted certificate. */
    caCertificate?: string;
    clientCertificate?: { certPem: string; keyPem: string };
}

/** A client's bundle: its stock-app confs (keys inline), and the wstunnel client to run beside them. Pure. */
export function renderClientBundle(inputs: ClientBundleInputs): ClientBundle {
    const { tunnel, relays, pathPrefix } = inputs;
    // The stock apps cannot switch: a client on auto gets the confs that work everywhere, through wstunnel.
    const client: Omit<ClientSettings, "ssh"> = inputs.client.transport === "auto" ? { ...inputs.client, transport: "wstunnel" } : inputs.client;
    const wstunnelFiles = (relay: BundleRelay, index: number, prefix: string) => {
        const settings = wstunnelClientSettings(relay, { mutualTls: inputs.clientCertificate !== undefined, stackCa: inputs.caCertificate !== undefined });
        const files = wstunnelClientFiles({ name: relay.peerName, index });
        const caVariable = settings.caFile ? `${caFileVariable}=${shellQuote(settings.caFile)} ` : "";
        return {
            wstunnelCommand: `${clientPrefixVariable}=${shellQuote(prefix)} ${caVariable}${wstunnelBinaryPath} ${wstunnelClientArgs(settings).map(shellQuote).join(" ")}`,
            wstunnelUnit: renderWstunnelClientUnit({ ...settings, environmentFile: files.environmentFile }),
            wstunnelEnvironment: renderWstunnelClientEnvironment(prefix),
        };
    };
    const conf = (relayPreference: string[], udpPort?: number) =>
        renderWgQuickConf(
            clientWgQuickConf({
                client: { ...client, relayPreference },
                tunnel,
                relayHost: relays[0].address.host,
                relays: confRelays(client, relays, (relay) => ({ inline: relay.publicKey }), udpPort),
                privateKey: { inline: inputs.privateKey },
                presharedKey: inputs.presharedKey ? { inline: inputs.presharedKey } : undefined,
                stockApp: true,
            }),
        );
    const udpPorts = client.transport === "udp" ? [...new Set(relays.flatMap((relay) => relay.address.udpPorts))] : [];
    const platform = client.platform;
    const platformFiles =
        pathPrefix !== undefined && platform !== "linux" && platform !== "ios"
            ? relays.flatMap((relay, index) =>
                  platformWstunnelFiles(platform, {
                      ...wstunnelClientSettings(relay, { mutualTls: false, stackCa: false }),
                      pathPrefix,
                      withCa: inputs.caCertificate !== undefined,
                      withClientCertificate: inputs.clientCertificate !== undefined,
                      suffix: index === 0 ? "" : `-${relay.peerName}`,
                  }),
              )
            : undefined;
    const linuxWstunnel = (relay: BundleRelay, index: number, prefix: string) => (platform === "linux" ? wstunnelFiles(relay, index, prefix) : {});
    return {
        name: client.name,
        platform,
        wireguardConf: conf(client.relayPreference),
        ...(platformFiles ? { platformFiles } : {}),
        ...(udpPorts.length > 0 ? { udpPortConfs: udpPorts.map((port) => ({ port, wireguardConf: conf(client.relayPreference, port) })) } : {}),
        ...(pathPrefix !== undefined ? { ...linuxWstunnel(relays[0], 0, pathPrefix), ...(inputs.caCertificate ? { caCertificate: inputs.caCertificate } : {}) } : {}),
        ...(inputs.clientCertificate ? { clientCertificate: renderClientCertificatePem(inputs.clientCertificate.certPem, inputs.clientCertificate.keyPem) } : {}),
        ...(relays.length > 1
            ? {
                  relays: relays.map((relay, index) => ({
                      relay: relay.peerName,
                      wireguardConf: conf([relay.peerName, ...client.relayPreference.filter((name) => name !== relay.peerName)]),
                      ...(pathPrefix !== undefined && index > 0 ? linuxWstunnel(relay, index, pathPrefix) : {}),
                  })),
              }
            : {}),
    };
}

export class RoamingClient extends pulumi.ComponentResource {
    readonly publicKey: pulumi.Output<string>;
    readonly tunnelAddress: pulumi.Output<string>;
    readonly bundle: pulumi.Output<ClientBundle>;
    /** The wg0 template pushed to a client provisioned over SSH (no keys in it). */
    readonly wireguardTemplate: pulumi.Output<string> | undefined;
    /** What a client provisioned over SSH should have, for `npm run doctor`; undefined for a bundle-only client. */
    readonly declared: pulumi.Output<DeclaredHost> | undefined;
    /** A provisioned client's staged relay settings: the relays change only after them (failover/stagedSwitch.ts). */
    readonly staged: pulumi.Resource[] = [];

    constructor(name: string, args: RoamingClientArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:RoamingClient", name, {}, opts);
        const { client, tunnel, relays } = args;
        const views = relayViews(relays);

        this.bundle = pulumi.secret(
            pulumi
                .all([
                    views,
                    pulumi.all(relays.map((relay) => relay.publicKey)),
                    args.key.privateKey,
                    args.key.presharedKey,
                    args.pathPrefix,
                    relays[0].caCertPem,
                    args.clientCertificate?.certPem,
                    args.clientCertificate?.keyPem,
                ])
                .apply(([known, relayKeys, privateKey, presharedKey, pathPrefix, caCertificate, certPem, keyPem]) =>
                    renderClientBundle({
                        client,
                        tunnel,
                        relays: known.map((relay, index) => ({ ...relay, publicKey: relayKeys[index] })),
                        privateKey,
                        presharedKey,
                        pathPrefix,
                        caCertificate,
                        clientCertificate: certPem && keyPem ? { certPem, keyPem } : undefined,
                    }),
                ),
        );

        if (client.ssh) {
            const host = Host.overSsh(name, client.ssh, { privateKey: args.sshPrivateKey, parent: this, repair: args.repair, relayConnection: relays[0].connection });
            // Everything the client should have, but its secrets (plan/clientPlan.ts).
            const settings = peerPlanSettings(args);
            const layout = clientLayout(client, settings, relays);
            const { template, staged, declared } = provisionPeerHost(host, {
                ...args,
                layout,
                plan: views.apply((known) => clientPlan(client, settings, known)),
                // ping: the failover unit's probe of the relays.
                packages: layout.failoverRoutes !== undefined ? ["iputils-ping"] : [],
            });
            this.wireguardTemplate = template;
            this.staged = staged;
            this.declared = declared;
        }

        this.publicKey = args.key.publicKey;
        this.tunnelAddress = pulumi.output(client.tunnelAddress);
        // Not the bundle: the stack output holds it, and a second encrypted copy per client would double the state
        // that every `pulumi up` reads and writes.
        this.registerOutputs({ publicKey: this.publicKey, tunnelAddress: this.tunnelAddress });
    }
}
