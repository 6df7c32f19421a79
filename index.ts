// wg-relay: turns the stack config into a relay, LAN gateways and roaming clients, and exports what users need.
import * as pulumi from "@pulumi/pulumi";
import { lightStackTraces } from "./components/stackTraces";
import { ConfigError, configNamespace, parseStackConfig, stackConfigValues } from "./components/config";
import { LanGateway } from "./components/lanGateway";
import { RoamingClient } from "./components/roamingClient";
import { VpsRelay } from "./components/vpsRelay";
import { WireguardKey, WireguardKeyArgs } from "./components/wireguardKey";
import { WstunnelCredential } from "./components/wstunnelCredential";

lightStackTraces();
const network = readStackConfig();
const sshPrivateKey = new pulumi.Config(configNamespace).requireSecret("sshPrivateKey");
const stack = pulumi.getStack();
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
network.relays.forEach((settings, index) => {
    const onRelay = (addresses: string[]) => addresses[index];
    relays.push(
        new VpsRelay(settings.name, {
            relay: settings,
            wstunnel,
            stack,
            ca: relays[0]?.ca,
            key: keyOf(settings),
            peers: [
                ...gateways.map(({ gateway, key, pathPrefix }) => ({ ...gateway, tunnelAddress: onRelay(gateway.tunnelAddresses), role: "gateway" as const, key, pathPrefix })),
                ...clients.map(({ client, key, pathPrefix }) => ({ ...client, tunnelAddress: onRelay(client.tunnelAddresses), role: "client" as const, lanSubnets: [], key, pathPrefix })),
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

/** Every `wg-relay:` key, checked by the schema; a mistake stops the program with just the problems, no stack trace. */
function readStackConfig() {
    try {
        return parseStackConfig(stackConfigValues(pulumi.runtime.allConfig()));
    } catch (error) {
        throw error instanceof ConfigError ? new pulumi.RunError(error.message) : error;
    }
}

/** The wss:// URL wstunnel clients dial. */
export const relayUrl = relay.wssUrl;
export const relayPublicKey = relay.publicKey;
export const relayCaCertificate = relay.caCertPem;
/** Renewed by the first `pulumi up` in each certificate's last 30 days. */
export const relayCertificateExpiry = relay.certificateExpiry;
/** Every relay by name (the ones above are the first's): its wss:// URL, WireGuard public key and certificate expiry. */
export const relayEndpoints = Object.fromEntries(
    relays.map((each) => [each.peerName, { url: each.wssUrl, publicKey: each.publicKey, ...(each.certificateExpiry ? { certificateExpiry: each.certificateExpiry } : {}) }]),
);
/**
 * With mutual TLS, when each gateway's and wstunnel client's certificate was made and when it expires (not secret):
 * the stack renews it in its last 30 days, but a device without SSH keeps the file it was given (`npm run doctor`
 * warns, naming the `npm run client-files` command).
 */
export const clientCertificateExpiry = pulumi.all(
    Object.fromEntries([...lanGateways, ...roamingClients].flatMap(({ name, clientCertificate }) => (clientCertificate ? [[name, clientCertificate.validity]] : []))),
);
export const gatewayPublicKeys = Object.fromEntries(lanGateways.map(({ name, component }) => [name, component.publicKey]));
/** Secret: read one with `pulumi stack output --show-secrets clientBundles` or `npm run client-files -- NAME DIR`. */
export const clientBundles = Object.fromEntries(roamingClients.map(({ name, component }) => [name, component.bundle]));
/** What each host should have (public keys, AllowedIPs, units, firewall rules, wstunnel's checksum): `npm run doctor` checks the hosts against it. */
export const declaredHosts = pulumi.all(
    Object.fromEntries([...relays.map((each) => [each.peerName, each.declared]), ...[...lanGateways, ...roamingClients].flatMap(({ name, component }) => (component.declared ? [[name, component.declared]] : []))]),
);
