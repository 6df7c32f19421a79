// VpsRelay: the public VPS. wstunnel terminates wss:// on TCP 443 and forwards only to the local WireGuard port;
// WireGuard has a peer per gateway (its tunnel address and LANs) and per roaming client.
import * as pulumi from "@pulumi/pulumi";
import { RelaySettings, WstunnelSettings } from "./config";
import { Connection, Host, hostPackages, SshConnectionArgs } from "./host/host";
import { RelayAddress } from "./peerHost";
import { renderWgQuickConf } from "./wireguard/render";
import { serverCertificatePath, serverPrivateKeyPath } from "./host/paths";
import { createRelayPki, createStackCa, StackCa } from "./pki/relayPki";
import { DeclaredHost, declaredHostOfPlan } from "./plan/declaredHosts";
import { relayPlan, RelayPlanPeer } from "./plan/relayPlan";
import { WireguardKey } from "./wireguard/key";
import { deployWireguardInterface } from "./wireguard/interface";
import { deployWstunnelServer, installWstunnelBinary } from "./wstunnel/service";

/** A gateway or client as the relay sees it: as its plan does (plan/relayPlan.ts), with its keys and path prefix. */
export interface RelayPeer extends Omit<RelayPlanPeer, "presharedKey"> {
    key: Pick<WireguardKey, "publicKey" | "presharedKey">;
    /** Its own wstunnel path prefix (secret); none for a peer on plain UDP. */
    pathPrefix?: pulumi.Output<string>;
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
     * Every provisioned peer's staged settings (failover/stagedSwitch.ts), known once the peers are made after the
     * relay: the relay's key, certificates and wstunnel unit change only after them.
     */
    peersStaged: Promise<pulumi.Resource[]>;
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
    /** Every gateway and client at its addresses in this relay's subnet. */
    readonly peers: RelaySettings["peers"];
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
        this.peers = relay.peers;
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

        // Everything the relay should have, but its secrets (plan/relayPlan.ts).
        const plan = relayPlan(
            relay,
            args.peers.map((peer) => ({ ...peer, presharedKey: peer.key.presharedKey !== undefined })),
            wstunnel,
        );
        // Before anything changes on the host: the interface the rules name exists there.
        const interfaces = host.checkInterfaces("interfaces", [{ key: relay.publicInterfaceKey, name: relay.publicInterface }]);
        const packages = host.installPackages("packages", hostPackages, { dependsOn: [interfaces] });
        const binary = installWstunnelBinary(host, wstunnel, [plan.wstunnelServer.unit], [packages]);
        const server = deployWstunnelServer(host, {
            ...plan.wstunnelServer,
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

        const files = plan.files.map((file) => host.writePlannedFile(file, [packages]));

        const presharedKeys = new Map(args.peers.map((peer) => [peer.name, peer.key.presharedKey]));
        this.wireguardTemplate = renderWgQuickConf(plan.wireguard);
        const wireguard = deployWireguardInterface(host, {
            unit: plan.wireguardUnit,
            privateKey: args.key.privateKey,
            template: this.wireguardTemplate,
            peerPublicKeys: args.peers.map((peer) => ({ name: peer.name, publicKey: peer.key.publicKey })),
            // At the files the plan names for them.
            presharedKeys: plan.peers.flatMap((peer) => {
                const key = presharedKeys.get(peer.name);
                return peer.presharedKeyFile === undefined || key === undefined ? [] : [{ step: `preshared-key-${peer.name}`, path: peer.presharedKeyFile, key }];
            }),
            forwarding: plan.forwarding !== undefined,
            ipv6Upstream: plan.forwarding?.ipv6UpstreamInterface,
            congestionControl: args.wstunnel.congestionControl,
            dependsOn: [packages, server.unit, ...files],
            keyAfter: args.peersStaged,
        });
        // The template's step comes after the key's, the unit's after the certificates'.
        this.switched = [wireguard, server.unit];

        this.publicKey = args.key.publicKey;
        this.declared = declaredHostOfPlan(plan, {
            publicKey: this.publicKey,
            peerPublicKeys: Object.fromEntries(args.peers.map((peer) => [peer.name, peer.key.publicKey])),
            wstunnel,
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
