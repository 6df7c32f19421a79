// wg-relay: turns the stack config into a relay, LAN gateways and roaming clients, and exports what users need.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, configNamespace, parseStackConfig, stackConfigValues } from "./components/config";
import { LanGateway } from "./components/lanGateway";
import { RoamingClient } from "./components/roamingClient";
import { VpsRelay } from "./components/vpsRelay";
import { WireguardKey, WireguardKeyArgs } from "./components/wireguardKey";
import { WstunnelCredential } from "./components/wstunnelCredential";

const network = readStackConfig();
const sshPrivateKey = new pulumi.Config(configNamespace).requireSecret("sshPrivateKey");
const stack = pulumi.getStack();
const { tunnel, wstunnel } = network;

const keyOf = (peer: { name: string; keyRotation: number; presharedKey?: boolean; existingKeys?: WireguardKeyArgs["existing"] }) =>
    new WireguardKey(`${peer.name}-key`, { rotation: peer.keyRotation, presharedKey: peer.presharedKey, existing: peer.existingKeys });
/** Each gateway's and wstunnel client's own upgrade-path prefix, rotating with its key. */
const prefixOf = (peer: { name: string; keyRotation: number }) => new WstunnelCredential(`${peer.name}-wstunnel`, { rotation: peer.keyRotation }).pathPrefix;
const gateways = network.gateways.map((gateway) => ({ gateway, key: keyOf(gateway), pathPrefix: prefixOf(gateway) }));
const clients = network.clients.map((client) => ({ client, key: keyOf(client), pathPrefix: client.transport === "wstunnel" ? prefixOf(client) : undefined }));

const relay = new VpsRelay(network.relay.name, {
    relay: network.relay,
    tunnel,
    wstunnel,
    stack,
    key: keyOf(network.relay),
    peers: [
        ...gateways.map(({ gateway, key, pathPrefix }) => ({ ...gateway, role: "gateway" as const, key, pathPrefix })),
        ...clients.map(({ client, key, pathPrefix }) => ({ ...client, role: "client" as const, lanSubnets: [], key, pathPrefix })),
    ],
    clientAccess: network.clients,
    sshPrivateKey,
});

const lanGateways = gateways.map(({ gateway, key, pathPrefix }) => ({
    name: gateway.name,
    component: new LanGateway(gateway.name, { gateway, tunnel, wstunnel, stack, relay, key, pathPrefix, sshPrivateKey }),
}));
const roamingClients = clients.map(({ client, key, pathPrefix }) => ({
    name: client.name,
    component: new RoamingClient(client.name, { client, tunnel, wstunnel, stack, relay, key, pathPrefix, sshPrivateKey }),
}));

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
export const gatewayPublicKeys = Object.fromEntries(lanGateways.map(({ name, component }) => [name, component.publicKey]));
/** Secret: read one with `pulumi stack output --show-secrets clientBundles` or `npm run client-files -- NAME DIR`. */
export const clientBundles = Object.fromEntries(roamingClients.map(({ name, component }) => [name, component.bundle]));
