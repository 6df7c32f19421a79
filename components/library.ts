// The package's entry point: what a Pulumi program of one's own builds a relay, LAN gateways and roaming clients with.
// index.ts is one such program (the network from the stack config); examples/ holds another, whose relay is a server
// made in the same `pulumi up`.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, Network, parseStackConfig, relayPeer, StackConfigInput } from "./config";
import { isIpv4 } from "./net";
import { LanGateway, LanGatewaySettings } from "./lanGateway";
import { RoamingClient, RoamingClientSettings } from "./roamingClient";
import { VpsRelay, VpsRelaySettings } from "./vpsRelay";
import { WireguardKey, WireguardKeyArgs } from "./wireguard/key";
import { WstunnelCredential } from "./wstunnel/credential";
import { ClientCertificate } from "./pki/relayPki";

export { LanGateway, type LanGatewayArgs, type LanGatewaySettings } from "./lanGateway";
export { RoamingClient, type RoamingClientArgs, type RoamingClientSettings } from "./roamingClient";
export { type RelayPeer, VpsRelay, type VpsRelayArgs, type VpsRelaySettings } from "./vpsRelay";
export type { PeerComponentArgs, RelayAccess, RelayAddress } from "./peerHost";
export type { SshConnectionArgs, WithInputHost } from "./host/host";
export { WireguardKey, type WireguardKeyArgs } from "./wireguard/key";
export { WstunnelCredential } from "./wstunnel/credential";
export type { ClientBundle } from "./clientBundle";
export type { DeclaredHost } from "./plan/declaredHosts";
export type { ClientCertificate } from "./pki/relayPki";
export { ConfigError, parseStackConfig } from "./config";
export type { ClientSettings, GatewaySettings, Network, StackConfigInput, TunnelNetwork, WstunnelSettings } from "./config";

type RelayConfigInput = NonNullable<StackConfigInput["relay"]>;
type GatewayConfigInput = NonNullable<StackConfigInput["gateways"]>[number];
type ClientConfigInput = NonNullable<StackConfigInput["clients"]>[number];

/**
 * A host's `ssh` as the stack config writes it, but its host and user may be outputs: a cloud server's address and
 * its admin user, made in the same `pulumi up`.
 */
export type SshConfig<Ssh extends { host: string; user?: string }> = Omit<Ssh, "host" | "user"> & {
    /** The host's name or address. */
    host: pulumi.Input<string>;
    /** Root (the default), or a user with passwordless sudo. */
    user?: pulumi.Input<string>;
};

/** A relay as the stack config describes it (README, config reference), its address and SSH host and user possibly outputs. */
export type RelayConfig = Omit<RelayConfigInput, "publicAddress" | "ssh"> & {
    /** What gateways and clients dial (wss:// and UDP) and its certificate's name; defaults to ssh.host. May be an output. */
    publicAddress?: pulumi.Input<string>;
    /** How `pulumi up` reaches the relay: host and user may be outputs. */
    ssh: SshConfig<RelayConfigInput["ssh"]>;
};

/** A LAN gateway as the stack config describes it, its SSH host and user possibly outputs (a second server as a site's gateway). */
export type GatewayConfig = Omit<GatewayConfigInput, "ssh"> & {
    /** How `pulumi up` reaches the gateway: host and user may be outputs. */
    ssh: SshConfig<GatewayConfigInput["ssh"]>;
};

/** A roaming client as the stack config describes it, its SSH host and user possibly outputs (say a CI runner made in the same program). */
export type ClientConfig = Omit<ClientConfigInput, "ssh"> & {
    /** When set, the client machine is provisioned over SSH: host and user may be outputs. */
    ssh?: SshConfig<NonNullable<ClientConfigInput["ssh"]>>;
};

/**
 * The network in the stack config's shape (the README's config reference, the keys without `wg-relay:`), but every
 * host's SSH host and user, and the relays' public addresses, may be other resources' outputs.
 */
export type NetworkConfig = Omit<StackConfigInput, "relay" | "relays" | "gateways" | "clients"> & {
    relay?: RelayConfig;
    relays?: RelayConfig[];
    gateways?: GatewayConfig[];
    clients?: ClientConfig[];
};

/** The resolved network the components take: parseNetworkConfig's result, or parseStackConfig's. */
export type LibraryNetwork = Omit<Network, "relays" | "gateways" | "clients"> & { relays: VpsRelaySettings[]; gateways: LanGatewaySettings[]; clients: RoamingClientSettings[] };

/**
 * The text an output stands in as while the schema and rules check the config: an RFC 5737 address, one per
 * relay (the first relay's is its address for the rules); a gateway's or client's SSH host is checked only for its
 * form, and nothing compares them.
 */
const standInAddress = (index: number) => `192.0.2.${(index % 254) + 1}`;
const isText = (value: unknown): value is string => typeof value === "string";

/** `ssh` with each output's stand-in text, for the schema and rules (a user output stands in as root). */
function checkableSsh<Ssh extends SshConfig<{ host: string; user?: string }>>(ssh: Ssh, index: number): Omit<Ssh, "host" | "user"> & { host: string; user?: string } {
    return { ...ssh, host: isText(ssh.host) ? ssh.host : standInAddress(index), user: ssh.user === undefined || isText(ssh.user) ? ssh.user : "root" };
}

/** The resolved `ssh` with the host and user as given (outputs where they were), the user's default where none. */
function givenSsh<Resolved extends { host: string; user: string }>(resolved: Resolved, given: SshConfig<{ host: string; user?: string }>) {
    return { ...resolved, host: given.host, user: given.user ?? resolved.user };
}

/** A problem about the SSH settings of a host whose SSH host is an output names the output, not its stand-in. */
function namingOutputs(problem: string, config: NetworkConfig): string {
    const match = /^wg-relay:(relay|(relays|gateways|clients)\[(\d+)\])\.ssh\./.exec(problem);
    if (!match) {
        return problem;
    }
    const index = match[3] === undefined ? 0 : Number(match[3]);
    const host = match[1] === "relay" ? config.relay?.ssh.host : config[match[2] as "relays" | "gateways" | "clients"]?.[index]?.ssh?.host;
    return host === undefined || isText(host) ? problem : problem.split(standInAddress(index)).join(`<${match[1]}.ssh.host, an output>`);
}

/**
 * Checks and resolves `config` as the stack config is (throws ConfigError naming each bad key, before any resource
 * exists); outputs are checked for their form once known, by the steps that use them. A relay's address that is
 * an output is checked once it is known: a full tunnel needs an IPv4 address; with IPv6 inside the tunnel,
 * `tunnel.ipv6.prefix` must be set (the derived one needs the address up front).
 */
export function parseNetworkConfig(config: NetworkConfig): LibraryNetwork {
    const given = config.relays ?? (config.relay ? [config.relay] : []);
    const checkable = given.map((relay, index) => ({
        ...relay,
        publicAddress: relay.publicAddress === undefined || isText(relay.publicAddress) ? relay.publicAddress : standInAddress(index),
        ssh: checkableSsh(relay.ssh, index),
    }));
    const gateways = config.gateways ?? [];
    const clients = config.clients ?? [];
    let network: Network;
    try {
        network = parseStackConfig({
            ...config,
            ...(config.relays ? { relays: checkable } : config.relay ? { relay: checkable[0] } : {}),
            ...(config.gateways ? { gateways: gateways.map((gateway, index) => ({ ...gateway, ssh: checkableSsh(gateway.ssh, index) })) } : {}),
            ...(config.clients ? { clients: clients.map((client, index) => (client.ssh ? { ...client, ssh: checkableSsh(client.ssh, index) } : client)) } : {}),
        });
    } catch (error) {
        throw error instanceof ConfigError ? new ConfigError(error.problems.map((problem) => namingOutputs(problem, config))) : error;
    }
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
            const ssh = givenSsh(relay.ssh, given[index].ssh);
            return { ...relay, publicAddress, ssh: given[index].publicAddress === undefined ? { ...ssh, host: publicAddress } : ssh };
        }),
        gateways: network.gateways.map((gateway, index) => ({ ...gateway, ssh: givenSsh(gateway.ssh, gateways[index].ssh) })),
        clients: network.clients.map((client, index) => {
            const ssh = clients[index].ssh;
            return client.ssh && ssh ? { ...client, ssh: givenSsh(client.ssh, ssh) } : client;
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
    // change, so a peer reached through a relay stays reachable (failover/stagedSwitch.ts); the peers are made below.
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
