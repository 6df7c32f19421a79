// The package's entry point: what a Pulumi program of one's own builds a relay, LAN gateways and roaming clients with.
// index.ts is one such program (the network from the stack config); examples/ holds another, whose relay is a server
// made in the same `pulumi up`.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, Network, parseStackConfig, relayPeer, StackConfigInput } from "./config";
import { isIpv4 } from "./net";
import { LanGateway } from "./lanGateway";
import { RoamingClient } from "./roamingClient";
import { VpsRelay, VpsRelaySettings } from "./vpsRelay";
import { WireguardKey, WireguardKeyArgs } from "./wireguardKey";
import { WstunnelCredential } from "./wstunnelCredential";
import { ClientCertificate } from "./relayPki";

export { LanGateway, type LanGatewayArgs } from "./lanGateway";
export { RoamingClient, type RoamingClientArgs } from "./roamingClient";
export { type RelayPeer, VpsRelay, type VpsRelayArgs, type VpsRelaySettings } from "./vpsRelay";
export type { PeerComponentArgs, RelayAccess, RelayAddress } from "./peerHost";
export type { SshConnectionArgs } from "./host";
export { WireguardKey, type WireguardKeyArgs } from "./wireguardKey";
export { WstunnelCredential } from "./wstunnelCredential";
export type { ClientBundle } from "./clientBundle";
export type { DeclaredHost } from "./declaredHosts";
export type { ClientCertificate } from "./relayPki";
export { ConfigError, parseStackConfig } from "./config";
export type { ClientSettings, GatewaySettings, Network, StackConfigInput, TunnelNetwork, WstunnelSettings } from "./config";

type RelayConfigInput = NonNullable<StackConfigInput["relay"]>;

/** A relay as the stack config describes it (README, config reference), its address and SSH host and user possibly outputs. */
export type RelayConfig = Omit<RelayConfigInput, "publicAddress" | "ssh"> & {
    /** What gateways and clients dial (wss:// and UDP) and its certificate's name; defaults to ssh.host. May be an output. */
    publicAddress?: pulumi.Input<string>;
    /** How `pulumi up` reaches the relay: host and user may be outputs (a cloud server's address, its admin user). */
    ssh: Omit<RelayConfigInput["ssh"], "host" | "user"> & { host: pulumi.Input<string>; user?: pulumi.Input<string> };
};

/**
 * The network in the stack config's shape (the README's config reference, the keys without `wg-relay:`), but for
 * the relays, whose public address and SSH host and user may be other resources' outputs.
 */
export type NetworkConfig = Omit<StackConfigInput, "relay" | "relays"> & { relay?: RelayConfig; relays?: RelayConfig[] };

/** The resolved network the components take: parseNetworkConfig's result, or parseStackConfig's. */
export type LibraryNetwork = Omit<Network, "relays"> & { relays: VpsRelaySettings[] };

/** The RFC 5737 address a relay's output stands in as while the schema and rules check the text. */
const standInAddress = (index: number) => `192.0.2.${index + 1}`;
const isText = (value: unknown): value is string => typeof value === "string";

/**
 * Checks and resolves `config` as the stack config is (throws ConfigError naming each bad key, before any resource
 * exists). A relay's address that is an output is checked once it is known: a full tunnel needs an IPv4 address;
 * with IPv6 inside the tunnel, `tunnel.ipv6.prefix` must be set (the derived one needs the address up front).
 */
export function parseNetworkConfig(config: NetworkConfig): LibraryNetwork {
    const given = config.relays ?? (config.relay ? [config.relay] : []);
    const checkable = given.map((relay, index) => ({
        ...relay,
        publicAddress: relay.publicAddress === undefined || isText(relay.publicAddress) ? relay.publicAddress : standInAddress(index),
        ssh: { ...relay.ssh, host: isText(relay.ssh.host) ? relay.ssh.host : standInAddress(index), user: relay.ssh.user === undefined || isText(relay.ssh.user) ? relay.ssh.user : "root" },
    }));
    const network = parseStackConfig({ ...config, ...(config.relays ? { relays: checkable } : config.relay ? { relay: checkable[0] } : {}) });
    const firstAddress = given[0] ? (given[0].publicAddress ?? given[0].ssh.host) : undefined;
    if (firstAddress !== undefined && !isText(firstAddress) && network.tunnel.ipv6 && config.tunnel?.ipv6?.prefix === undefined) {
        throw new ConfigError(["wg-relay:tunnel.ipv6.prefix: required when the relay's address is another resource's output (the derived prefix needs the address before anything is made)"]);
    }
    const fullTunnelClient = network.clients.findIndex((client) => client.fullTunnel);
    return {
        ...network,
        relays: network.relays.map((relay, index) => {
            const address = given[index].publicAddress ?? given[index].ssh.host;
            // The rules checked a text address already; an output's is checked as the stack config's would be.
            const publicAddress =
                isText(address) || index > 0 || fullTunnelClient < 0
                    ? address
                    : pulumi.output(address).apply((known) => {
                          if (!isIpv4(known)) {
                              throw new ConfigError([`wg-relay:clients[${fullTunnelClient}].fullTunnel: a full tunnel needs relay.publicAddress (or relay.ssh.host) to be an IPv4 address, not ${known}`]);
                          }
                          return known;
                      });
            // Without a publicAddress the SSH host is the address: its steps wait for the check too.
            const sshHost = given[index].publicAddress === undefined ? publicAddress : given[index].ssh.host;
            return { ...relay, publicAddress, ssh: { ...relay.ssh, host: sshHost, user: given[index].ssh.user ?? relay.ssh.user } };
        }),
    };
}

/** A gateway or client with what the stack made for it. */
export interface NetworkPeer<Component> {
    name: string;
    /** With mutual TLS, its certificate from the stack's CA. */
    clientCertificate?: ClientCertificate;
    component: Component;
}

export interface NetworkArgs {
    /** The SSH private key (OpenSSH PEM) that reaches every host; may be a secret output of another resource. */
    sshPrivateKey: pulumi.Input<string>;
    /** Names the stack's CA and its file on the hosts; defaults to the stack's name. */
    stack?: string;
}

/**
 * Every relay, gateway and client of `network`, with their keys, wstunnel credentials and certificates, each relay
 * changing what its peers check it against only after they staged it. Its resources are named after the relays and
 * peers, without a parent, as the stack config's program always named them.
 */
export function createNetwork(network: LibraryNetwork, args: NetworkArgs): { relays: VpsRelay[]; gateways: NetworkPeer<LanGateway>[]; clients: NetworkPeer<RoamingClient>[] } {
    const stack = args.stack ?? pulumi.getStack();
    const { sshPrivateKey } = args;
    const { tunnel, wstunnel, repair } = network;
    const keyOf = (peer: { name: string; keyRotation: number; presharedKey?: boolean; existingKeys?: WireguardKeyArgs["existing"] }) =>
        new WireguardKey(`${peer.name}-key`, { rotation: peer.keyRotation, presharedKey: peer.presharedKey, existing: peer.existingKeys });
    /** Each gateway's and wstunnel client's own credential: its upgrade-path prefix, rotating with its key. */
    const credentialOf = (peer: { name: string; keyRotation: number }) => new WstunnelCredential(`${peer.name}-wstunnel`, { rotation: peer.keyRotation });
    // Peers on plain UDP have none; those on auto keep wstunnel for when UDP does not pass.
    const withCredential = <Peer extends { name: string; keyRotation: number; transport: "wstunnel" | "udp" | "auto" }>(peer: Peer) => {
        const credential = peer.transport !== "udp" ? credentialOf(peer) : undefined;
        return { key: keyOf(peer), credential, pathPrefix: credential?.pathPrefix };
    };
    const gateways = network.gateways.map((gateway) => ({ gateway, ...withCredential(gateway) }));
    const clients = network.clients.map((client) => ({ client, ...withCredential(client) }));

    // The relays change what peers check them against only after every provisioned peer has staged its side of the
    // change, so a peer reached through a relay stays reachable (render/stagedSwitch.ts); the peers are made below.
    let resolvePeersStaged: (staged: pulumi.Resource[]) => void = () => undefined;
    const peersStaged = new Promise<pulumi.Resource[]>((resolve) => (resolvePeersStaged = resolve));
    // The first relay makes the stack's CA; every other one has its server certificate signed by it.
    const relays: VpsRelay[] = [];
    network.relays.forEach((settings) => {
        // Each peer at its addresses in this relay's subnet.
        const onRelay = (name: string) => {
            const { tunnelAddress, tunnelAddress6 } = relayPeer(settings, name);
            return { tunnelAddress, tunnelAddress6 };
        };
        relays.push(
            new VpsRelay(settings.name, {
                relay: settings,
                wstunnel,
                stack,
                ca: relays[0]?.ca,
                key: keyOf(settings),
                peers: [
                    ...gateways.map(({ gateway, key, pathPrefix }) => ({ ...gateway, ...onRelay(gateway.name), role: "gateway" as const, key, pathPrefix })),
                    ...clients.map(({ client, key, pathPrefix }) => ({ ...client, ...onRelay(client.name), role: "client" as const, lanSubnets: [], key, pathPrefix })),
                ],
                sshPrivateKey,
                repair,
                peersStaged,
            }),
        );
    });
    const relay = relays[0];

    /** With mutual TLS, each wstunnel peer's certificate from the stack's CA (made by the first relay). */
    const certificateOf = (credential: WstunnelCredential | undefined) => (wstunnel.mutualTls && credential ? credential.clientCertificate(relay.ca!) : undefined);
    const lanGateways = gateways.map(({ gateway, key, credential, pathPrefix }) => {
        const clientCertificate = certificateOf(credential);
        return {
            name: gateway.name,
            clientCertificate,
            component: new LanGateway(gateway.name, { gateway, tunnel, wstunnel, stack, relays, key, pathPrefix, clientCertificate, sshPrivateKey, repair }),
        };
    });
    const roamingClients = clients.map(({ client, key, credential, pathPrefix }) => {
        const clientCertificate = certificateOf(credential);
        return {
            name: client.name,
            clientCertificate,
            component: new RoamingClient(client.name, { client, tunnel, wstunnel, stack, relays, key, pathPrefix, clientCertificate, sshPrivateKey, repair }),
        };
    });

    resolvePeersStaged([...lanGateways, ...roamingClients].flatMap(({ component }) => component.staged));
    return { relays, gateways: lanGateways, clients: roamingClients };
}
