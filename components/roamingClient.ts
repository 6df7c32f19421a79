// RoamingClient: a laptop or phone. Always produces a bundle (secret stack output) with its wg-quick conf and the
// wstunnel client that carries WireGuard over wss:443 through networks that drop UDP; when SSH details are given,
// the client machine is provisioned like a gateway without the LAN parts. With several relays it has a peer per
// relay, its LAN routes on its primary's, and (when provisioned) a failover unit that moves them to the next relay
// that answers when the primary stops, and back. On transport auto (one relay, provisioned), a unit moves the relay's
// endpoint between its UDP port and the local wstunnel client, by whether the relay answers over UDP.
import * as pulumi from "@pulumi/pulumi";
import { ClientSettings, isIpv6Network, relayPeer, TunnelNetwork } from "./config";
import { ClientBundle } from "./clientBundle";
import { ipv4AllBut } from "./net";
import { Host, WithInputHost } from "./host";
import { shellQuote } from "./shell";
import { Hook, KeySource, PublicKeySource, relayAsPeer, renderWgQuickConf, WgQuickConf } from "./render/wireguard";
import { failoverUnit, peerPresharedKeyPath, wgFailoverScriptPath, wireguardKeyPath, wstunnelBinaryPath, wstunnelClientFiles } from "./render/paths";
import { caFileVariable, clientPrefixVariable, renderClientCertificatePem, renderWstunnelClientEnvironment, renderWstunnelClientUnit, wstunnelClientArgs } from "./render/wstunnel";
import { failoverDirective, renderFailoverUnit } from "./render/failover";
import { platformWstunnelFiles } from "./render/clientPlatforms";
import { hostScript } from "./render/scripts";
import { relayDescription } from "./lanGateway";
import { autoTransportDirectives, PeerComponentArgs, provisionPeerHost, relayEndpoint, RelayView, relayViews } from "./peerHost";
import { DeclaredHost } from "./declaredHosts";
import { wstunnelClientSettings } from "./wstunnelService";

/** How often the failover unit checks the relays: with 2 misses to go down, a dead primary is left within about 6 s. */
const failoverCheckSeconds = 2;

/**
 * A client's resolved settings (one of `parseNetworkConfig(...).clients`); with `ssh`, its machine is provisioned, and
 * its SSH host and user may be other resources' outputs (say a CI runner a cloud provider makes in the same `pulumi up`).
 */
export type RoamingClientSettings = Omit<ClientSettings, "ssh"> & { ssh?: WithInputHost<NonNullable<ClientSettings["ssh"]>> };

export interface RoamingClientArgs extends PeerComponentArgs {
    client: RoamingClientSettings;
}

/** A relay as a client's conf names it. */
export interface ClientConfRelay {
    name: string;
    tunnelSubnet: string;
    /** The client's own address in this relay's subnet. */
    ownAddress: string;
    publicKey: PublicKeySource;
    /** WireGuard's Endpoint: the local wstunnel listener for this relay, or the relay's UDP port. */
    endpoint: string;
}

export interface ClientConfSettings {
    client: Pick<ClientSettings, "name" | "tunnelAddress6" | "routes" | "fullTunnel" | "relayPreference" | "transport">;
    tunnel: TunnelNetwork;
    /** The (only) relay's public address, kept outside a full tunnel. */
    relayHost: string;
    /** Every relay, in the stack's order. */
    relays: ClientConfRelay[];
    privateKey: KeySource;
    presharedKey?: KeySource;
    /**
     * A conf for the WireGuard apps (Android, iOS, macOS, Windows) as much as for wg-quick: their parsers refuse
     * PostUp/PostDown, so a full tunnel keeps the relay's address out of AllowedIPs instead of by an ip rule (with
     * wstunnel, whose TCP connection to the relay must not enter the tunnel; on plain UDP the apps and wg-quick
     * already keep WireGuard's own socket out).
     */
    stockApp: boolean;
}

/** With a full tunnel, the relay's own address must keep using the real default route, or wstunnel loops into WireGuard. */
export function fullTunnelHooks(relayAddress: string): Hook[] {
    const rule = `to ${relayAddress}/32 lookup main priority 100`;
    return [{ up: `ip -4 rule add ${rule}`, down: `ip -4 rule del ${rule}` }];
}

/** A client's conf: an address in each relay's subnet, a peer per relay, its routes on its primary relay's peer. */
export function clientWgQuickConf(settings: ClientConfSettings): WgQuickConf {
    const { client, tunnel } = settings;
    const primary = client.relayPreference[0];
    const ipv6Prefix = tunnel.ipv6 ? [tunnel.ipv6.prefix] : [];
    // Only a full tunnel needs the relay's address as an IPv4 address (a config rule); others may dial a DNS name.
    const allIpv4 = () => (settings.stockApp && client.transport !== "udp" ? ipv4AllBut(settings.relayHost) : ["0.0.0.0/0"]);
    return {
        title: `WireGuard on ${client.name}, a roaming client`,
        interface: {
            address: [
                ...settings.relays.map((relay) => `${relay.ownAddress}/${tunnel.prefixLength}`),
                ...(tunnel.ipv6 ? [`${client.tunnelAddress6}/${tunnel.ipv6.prefixLength}`] : []),
            ].join(", "),
            // On plain UDP its packets cross real networks; inside wstunnel no path MTU applies. On auto, the
            // smaller on both paths: the relay routes to the client at one MTU, whichever path it takes.
            mtu: client.transport === "wstunnel" ? tunnel.mtu : tunnel.udpMtu,
            privateKey: settings.privateKey,
            hooks: client.fullTunnel && !settings.stockApp ? fullTunnelHooks(settings.relayHost) : [],
        },
        peers: settings.relays.map((relay, index) =>
            relayAsPeer({
                description: relayDescription(settings.relays.map(({ name }) => ({ peerName: name })), index),
                publicKey: relay.publicKey,
                presharedKey: settings.presharedKey,
                // IPv6 (one relay only) to the tunnel's prefix and IPv6 LANs; a full tunnel is IPv4's, as the relay
                // forwards to the internet over IPv4 only.
                allowedIps: client.fullTunnel
                    ? [...allIpv4(), ...ipv6Prefix, ...client.routes.filter(isIpv6Network)]
                    : [relay.tunnelSubnet, ...(index === 0 ? ipv6Prefix : []), ...(relay.name === primary ? client.routes : [])],
                endpoint: relay.endpoint,
                keepaliveSeconds: tunnel.keepaliveSeconds,
            }),
        ),
    };
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

/**
 * Each relay as the client's conf names it, its Endpoint the local wstunnel listener or the relay's UDP port (on
 * auto, UDP first: the transport unit moves it to wstunnel when UDP does not pass).
 */
function confRelays<Relay extends Pick<RelayView, "peerName" | "tunnelSubnet" | "wstunnelLocalPort" | "peers" | "address">>(
    client: Pick<ClientSettings, "name" | "transport">,
    relays: Relay[],
    publicKey: (relay: Relay, index: number) => PublicKeySource,
    /** One of relay.udpPorts to send to instead of WireGuard's port, at each relay that opens it. */
    udpPort?: number,
): ClientConfRelay[] {
    return relays.map((relay, index) => ({
        name: relay.peerName,
        tunnelSubnet: relay.tunnelSubnet,
        ownAddress: relayPeer(relay, client.name).tunnelAddress,
        publicKey: publicKey(relay, index),
        endpoint: relayEndpoint(client.transport, relay, udpPort),
    }));
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
    /** A provisioned client's staged relay settings: the relays change only after them (render/stagedSwitch.ts). */
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
            // Only the LAN routes move: a client without any stays on each relay's own subnet.
            const failover = relays.length > 1 && client.routes.length > 0;
            const failoverRelays = client.relayPreference.map((relayName) => {
                const relay = relays.find((candidate) => candidate.peerName === relayName)!;
                return { name: relayName, tunnelSubnet: relay.tunnelSubnet, relayAddress: relay.tunnelAddress, ownAddress: relayPeer(relay, client.name).tunnelAddress };
            });
            const conf = views.apply((known): WgQuickConf => ({
                ...clientWgQuickConf({
                    client,
                    tunnel,
                    relayHost: known[0].address.host,
                    relays: confRelays(client, known, (relay) => ({ ofPeer: relay.peerName })),
                    privateKey: { file: wireguardKeyPath },
                    presharedKey: args.key.presharedKey ? { file: peerPresharedKeyPath } : undefined,
                    stockApp: true,
                }),
                directives: [
                    ...(failover ? [failoverDirective({ routes: client.routes, relays: failoverRelays })] : []),
                    ...autoTransportDirectives(client.transport, known, client.name),
                ],
            }));
            const { wireguard, template, staged, declare } = provisionPeerHost(host, {
                ...args,
                conf,
                forwarding: false,
                transport: client.transport,
                packages: failover ? ["iputils-ping"] : [],
            });
            this.wireguardTemplate = template;
            this.staged = staged;
            if (failover) {
                const script = host.writeFile("wg-failover-script", { path: wgFailoverScriptPath, content: hostScript("wg-failover"), mode: "0755" });
                host.installServiceUnit("failover-unit", {
                    unit: failoverUnit,
                    content: renderFailoverUnit({ relayNames: client.relayPreference, intervalSeconds: failoverCheckSeconds }),
                    dependsOn: [wireguard, script],
                });
            }
            this.declared = declare("client", failover ? client.routes : []);
        }

        this.publicKey = args.key.publicKey;
        this.tunnelAddress = pulumi.output(client.tunnelAddress);
        // Not the bundle: the stack output holds it, and a second encrypted copy per client would double the state
        // that every `pulumi up` reads and writes.
        this.registerOutputs({ publicKey: this.publicKey, tunnelAddress: this.tunnelAddress });
    }
}
