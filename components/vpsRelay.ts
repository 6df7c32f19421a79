// VpsRelay: the public VPS. wstunnel terminates wss:// on TCP 443 and forwards only to the local WireGuard port;
// WireGuard has a peer per gateway (its tunnel address and LANs) and per roaming client.
import * as pulumi from "@pulumi/pulumi";
import { RelaySettings, WstunnelSettings } from "./config";
import { Connection, Host, hostPackages, SshConnectionArgs } from "./host";
import { RelayAddress } from "./peerHost";
import { firewallHooks, FirewallRule, renderWgQuickConf, WgPeer } from "./render/wireguard";
import { accessChainHooks, accessRuleCommands, Family, loadAccessRulesScript, RelayRulesSettings, renderAccessRules } from "./render/access";
import { access6RulesPath, accessRulesPath, relayPresharedKeyPath, serverCertificatePath, serverPrivateKeyPath, wgApplyScriptPath, wireguardDir, wireguardKeyPath, wstunnelServerUnit } from "./render/paths";
import { defaultRouteInterface, rulesDefaultRouteInterfaceFilter } from "./render/interfaces";
import { createRelayPki, createStackCa, StackCa } from "./relayPki";
import { DeclaredHost, declareHost } from "./declaredHosts";
import { WireguardKey } from "./wireguardKey";
import { deployWireguardInterface } from "./wireguardInterface";
import { deployWstunnelServer, installWstunnelBinary } from "./wstunnelService";

/** A gateway or client as the relay sees it. */
export interface RelayPeer {
    name: string;
    role: "gateway" | "client";
    tunnelAddress: string;
    /** Its IPv6 tunnel address, with IPv6 inside the tunnel. */
    tunnelAddress6?: string;
    /** LAN subnets behind a gateway (either family). */
    lanSubnets: string[];
    key: Pick<WireguardKey, "publicKey" | "presharedKey">;
    /** Its own wstunnel path prefix (secret); none for a peer on plain UDP. */
    pathPrefix?: pulumi.Output<string>;
    /**
     * How its WireGuard packets reach the relay; a peer on plain UDP gets tunnel.udpMtu on the relay's routes to it
     * (its LANs too), and so does one on auto, whose packets may cross either path at any time.
     */
    transport?: "wstunnel" | "udp" | "auto";
}

/**
 * A relay's resolved settings (one of `parseNetworkConfig(...).relays`), whose public address and SSH connection
 * may be other resources' outputs: a server a cloud provider's Pulumi package creates in the same `pulumi up`.
 */
export type VpsRelaySettings = Omit<RelaySettings, "publicAddress" | "ssh"> & {
    /** What gateways and clients dial (wss:// and UDP), and the name or address its certificate is for. */
    publicAddress: pulumi.Input<string>;
    /** How `pulumi up` reaches the relay; host and user may be outputs. */
    ssh: SshConnectionArgs;
};

export interface VpsRelayArgs {
    /** This relay with its own tunnel subnet, and what each client and site may reach through it. */
    relay: VpsRelaySettings;
    /** The stack's wstunnel settings (`parseNetworkConfig(...).wstunnel`). */
    wstunnel: WstunnelSettings;
    /** Names the CA and the trust-store file. */
    stack: string;
    /** The stack's CA, made with the first relay; absent for the first relay (which makes it). */
    ca?: StackCa;
    /** The relay's WireGuard key. */
    key: WireguardKey;
    /** Every gateway and client, each at its tunnel address in this relay's subnet. */
    peers: RelayPeer[];
    /** The SSH private key (OpenSSH PEM) that reaches the relay; may be a secret output of another resource. */
    sshPrivateKey: pulumi.Input<string>;
    /** The stack's `wg-relay:repair` counter. */
    repair: number;
    /**
     * Every provisioned peer's staged settings (render/stagedSwitch.ts), known once the peers are made after the
     * relay: the relay's key, certificates and wstunnel unit change only after them.
     */
    peersStaged: Promise<pulumi.Resource[]>;
}

export interface RelayFirewallSettings {
    publicInterface: string;
    wireguardPort: number;
    allowDirectUdp: boolean;
    /** Further public UDP ports redirected to WireGuard's (relay.udpPorts), IPv4 only like the relay's public address. */
    udpPorts: number[];
}

/**
 * Beside the relay's chains (render/access.ts), which decide what peers may send: the path back to full-tunnel
 * clients, and WireGuard's port closed on the public interface in both families (kernel WireGuard listens on IPv6
 * too, whether or not the tunnel carries IPv6).
 */
export function relayFirewallRules(settings: RelayFirewallSettings): FirewallRule[] {
    const rules: FirewallRule[] = [
        // wg0's MTU (tunnel.mtu) is far above the internet's: new TCP connections to the internet get the MSS of
        // the public interface's path, so they never depend on ICMP "fragmentation needed" reaching the client.
        { table: "mangle", chain: "FORWARD", rule: `-i %i -o ${settings.publicInterface} -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu` },
        { table: "filter", chain: "FORWARD", rule: `-i ${settings.publicInterface} -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT` },
    ];
    if (!settings.allowDirectUdp) {
        // WireGuard listens on every address; only wstunnel, over loopback, may reach it.
        const drop = { table: "filter" as const, chain: "INPUT", insert: true, rule: `-i ${settings.publicInterface} -p udp --dport ${settings.wireguardPort} -j DROP` };
        rules.push(drop, { ...drop, ipv6: true });
    }
    for (const udpPort of settings.udpPorts) {
        // Before routing, on the public interface only: the port stays free for the relay's own programs on other
        // interfaces, and conntrack gives WireGuard's answers the port the client sent to.
        rules.push({ table: "nat", chain: "PREROUTING", rule: `-i ${settings.publicInterface} -p udp --dport ${udpPort} -j REDIRECT --to-ports ${settings.wireguardPort}` });
    }
    return rules;
}

/** The relay's rules files, one per family (render/access.ts), each loaded by a step of its own. */
export function relayRuleFiles(relay: RelayRulesSettings): { step: string; path: string; family: Family; content: string }[] {
    return [
        { step: "access-rules", path: accessRulesPath, family: "ipv4" as const },
        { step: "access6-rules", path: access6RulesPath, family: "ipv6" as const },
    ].map((file) => ({ ...file, content: renderAccessRules(relay, file.family) }));
}

export function relayPeerAllowedIps(peer: Pick<RelayPeer, "tunnelAddress" | "tunnelAddress6" | "lanSubnets">): string[] {
    return [`${peer.tunnelAddress}/32`, ...(peer.tunnelAddress6 === undefined ? [] : [`${peer.tunnelAddress6}/128`]), ...peer.lanSubnets];
}

/** The relay's wg0 template: a peer per gateway and client, every key named rather than written (render/wireguard.ts). */
export function relayWgQuickConf(relay: Omit<RelaySettings, "publicAddress" | "ssh">, peers: Omit<RelayPeer, "key">[], presharedKeyPeers: Set<string>) {
    const tunnel = relay.tunnel;
    return {
        title: `WireGuard on ${relay.name}, the relay`,
        interface: {
            address: [`${relay.tunnelAddress}/${tunnel.prefixLength}`, ...(tunnel.ipv6 ? [`${relay.tunnelAddress6}/${tunnel.ipv6.prefixLength}`] : [])].join(", "),
            listenPort: relay.wireguardPort,
            mtu: tunnel.mtu,
            privateKey: { file: wireguardKeyPath },
            // The chains' hooks first, so that their jumps are undone after the others.
            hooks: [
                ...accessChainHooks(accessRulesPath),
                ...accessChainHooks(access6RulesPath, "ipv6"),
                // Peers on plain UDP: their routes get tunnel.udpMtu (the peers' "route MTU" lines), so the relay
                // never sends them WireGuard packets that a real path would fragment. wg-apply does the same after
                // a peer change, which needs no restart; this hook covers every start, boot included.
                { up: `${wgApplyScriptPath} --route-mtus ${wireguardDir}/%i.conf` },
                ...firewallHooks(
                    relayFirewallRules({
                        publicInterface: relay.publicInterface,
                        wireguardPort: relay.wireguardPort,
                        allowDirectUdp: relay.allowDirectUdp,
                        udpPorts: relay.udpPorts,
                    }),
                ),
            ],
        },
        peers: peers.map(
            (peer): WgPeer => ({
                description: `${peer.name} (${peer.role})`,
                publicKey: { ofPeer: peer.name },
                presharedKey: presharedKeyPeers.has(peer.name) ? { file: relayPresharedKeyPath(peer.name) } : undefined,
                allowedIps: relayPeerAllowedIps(peer),
                routeMtu: peer.transport === "udp" || peer.transport === "auto" ? tunnel.udpMtu : undefined,
            }),
        ),
    };
}

/** Where gateways and clients send WireGuard: the wss server and, for direct UDP, WireGuard's port. */
export function relayAddress(relay: Pick<RelaySettings, "publicAddress" | "wstunnelPort" | "wireguardPort" | "udpPorts">): RelayAddress {
    return { host: relay.publicAddress, wstunnelPort: relay.wstunnelPort, wireguardPort: relay.wireguardPort, udpPorts: relay.udpPorts };
}

export class VpsRelay extends pulumi.ComponentResource {
    /** The relay's name: how gateways and clients name it among their peers. */
    readonly peerName: string;
    readonly tunnelAddress: string;
    readonly publicKey: pulumi.Output<string>;
    /** The wss:// URL wstunnel clients dial. */
    readonly wssUrl: pulumi.Output<string>;
    /** PEM of the stack's CA, trusted by gateways and clients; undefined with user-supplied certificate files. */
    readonly caCertPem: pulumi.Output<string> | undefined;
    /** When the stack's CA and server certificate expire (RFC 3339); undefined with user-supplied files. */
    readonly certificateExpiry: { ca: pulumi.Output<string>; server: pulumi.Output<string> } | undefined;
    /** The step that puts the peers' path prefixes in the relay's restrictions: a peer uses a new prefix only after it. */
    readonly peerCredentials: pulumi.Resource;
    /**
     * The steps after which the relay has what its peers check it against (its WireGuard key, its wstunnel server
     * with certificate and client CA): peers stage what they will need before these, and install it after.
     */
    readonly switched: pulumi.Resource[];
    /** The rendered wg0 template (no keys in it). */
    readonly wireguardTemplate: string;
    /** What the host should have (units, peers, rules, wstunnel): `npm run doctor` checks it against the host. */
    readonly declared: pulumi.Output<DeclaredHost>;
    /**
     * The stack's CA, for the next relays' server certificates and with mutual TLS the peers' client certificates;
     * undefined with user-supplied certificate files and no mutual TLS.
     */
    readonly ca: StackCa | undefined;
    /** This relay's tunnel subnet, and where gateways and clients have their local wstunnel listener for it. */
    readonly tunnelSubnet: string;
    readonly wstunnelLocalPort: number;
    /** SSH settings, for gateways and clients reached through the relay as a jump host. */
    readonly connection: Connection;
    /** Where gateways and clients send WireGuard: the wss server (host, port) and, for direct UDP, the WireGuard port. */
    readonly address: pulumi.Output<RelayAddress>;

    constructor(name: string, args: VpsRelayArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:VpsRelay", name, {}, opts);
        const { relay, wstunnel } = args;
        this.peerName = relay.name;
        this.tunnelSubnet = relay.tunnel.subnet;
        this.wstunnelLocalPort = relay.wstunnelLocalPort;
        this.tunnelAddress = relay.tunnelAddress;
        const host = Host.overSsh(name, relay.ssh, { privateKey: args.sshPrivateKey, parent: this, repair: args.repair });
        this.connection = host.connection;
        const publicAddress = pulumi.output(relay.publicAddress);
        this.address = publicAddress.apply((address) => relayAddress({ ...relay, publicAddress: address }));

        // The stack's own CA and server certificate, unless the user brings certificate files; the CA also signs the
        // peers' certificates with mutual TLS.
        const ca = wstunnel.tls === undefined || wstunnel.mutualTls ? (args.ca ?? createStackCa(name, args.stack, this)) : undefined;
        const pki = wstunnel.tls === undefined && ca !== undefined ? createRelayPki(name, { publicAddress, ca }, this) : undefined;
        this.ca = ca;
        this.caCertPem = pki?.caCertPem;
        this.certificateExpiry = pki?.expiry;

        // Before anything changes on the host: the interface the rules name exists there.
        const interfaces = host.checkInterfaces("interfaces", [{ key: relay.publicInterfaceKey, name: relay.publicInterface }]);
        const packages = host.installPackages("packages", hostPackages, { dependsOn: [interfaces] });
        const binary = installWstunnelBinary(host, wstunnel, [wstunnelServerUnit], [packages]);
        const server = deployWstunnelServer(host, {
            settings: {
                listenPort: relay.wstunnelPort,
                wireguardPort: relay.wireguardPort,
                certificateFile: wstunnel.tls?.certificateFile ?? serverCertificatePath,
                privateKeyFile: wstunnel.tls?.privateKeyFile ?? serverPrivateKeyPath,
            },
            peers: args.peers.flatMap((peer) => (peer.pathPrefix === undefined ? [] : [{ name: peer.name, pathPrefix: peer.pathPrefix }])),
            certificate: pki?.server,
            clientCaPem: wstunnel.mutualTls ? ca?.certPem : undefined,
            dependsOn: [binary],
            switchAfter: args.peersStaged,
        });
        this.peerCredentials = server.restrictions;

        // Its own step per family, applied live: a change of access rules touches neither the template nor WireGuard.
        const rules = relayRuleFiles(relay);
        const ruleFiles = rules.map((file) =>
            host.writeFile(file.step, {
                path: file.path,
                content: file.content,
                mode: "0644",
                // The egress and NAT chains name the public interface: the default route's, found on the host.
                hostFilter: file.content.includes(defaultRouteInterface) ? rulesDefaultRouteInterfaceFilter : undefined,
                ensure: loadAccessRulesScript(file.path, file.family),
                dependsOn: [packages],
            }),
        );

        // The relay forwards between its peers and to the internet.
        const forwarding = true;
        const withPresharedKey = args.peers.filter((peer) => peer.key.presharedKey !== undefined);
        const conf = relayWgQuickConf(relay, args.peers, new Set(withPresharedKey.map((peer) => peer.name)));
        this.wireguardTemplate = renderWgQuickConf(conf);
        const wireguard = deployWireguardInterface(host, {
            privateKey: args.key.privateKey,
            template: this.wireguardTemplate,
            peerPublicKeys: args.peers.map((peer) => ({ name: peer.name, publicKey: peer.key.publicKey })),
            presharedKeys: withPresharedKey.map((peer) => ({
                step: `preshared-key-${peer.name}`,
                path: relayPresharedKeyPath(peer.name),
                key: peer.key.presharedKey!,
            })),
            forwarding,
            ipv6Upstream: relay.tunnel.ipv6 ? relay.publicInterface : undefined,
            congestionControl: args.wstunnel.congestionControl,
            dependsOn: [packages, server.unit, ...ruleFiles],
            keyAfter: args.peersStaged,
        });
        // The template's step comes after the key's, the unit's after the certificates'.
        this.switched = [wireguard, server.unit];

        this.publicKey = args.key.publicKey;
        this.declared = declareHost({
            role: "relay",
            host,
            conf,
            publicKey: this.publicKey,
            peerPublicKeys: Object.fromEntries(args.peers.map((peer) => [peer.name, peer.key.publicKey])),
            alwaysOnPeers: args.peers.filter((peer) => peer.role === "gateway").map((peer) => peer.name),
            forwarding,
            wstunnel,
            chainRules: rules.flatMap((file) => accessRuleCommands(file.content, file.family)),
        });
        this.wssUrl = pulumi.interpolate`wss://${publicAddress}:${relay.wstunnelPort}`;
        this.registerOutputs({
            publicKey: this.publicKey,
            wssUrl: this.wssUrl,
            caCertPem: this.caCertPem,
            certificateExpiry: this.certificateExpiry,
            wireguardTemplate: this.wireguardTemplate,
        });
    }
}
