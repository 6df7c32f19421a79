// wg-relay: turns the stack config into a relay, LAN gateways and roaming clients, and exports what users need.
import * as pulumi from "@pulumi/pulumi";
import { clientRoutes, ConfigError, configNamespace, parseStackConfig, relayTunnelAddress, stackConfigValues } from "./components/config";
import { LanGateway } from "./components/lanGateway";
import { RoamingClient } from "./components/roamingClient";
import { VpsRelay } from "./components/vpsRelay";
import { WireguardKey } from "./components/wireguardKey";

const config = readStackConfig();
const sshPrivateKey = new pulumi.Config(configNamespace).requireSecret("sshPrivateKey");
const stack = pulumi.getStack();

const relayKey = new WireguardKey(`${config.relay.name}-key`, { rotation: config.relay.keyRotation });
const peerKey = (peer: { name: string; keyRotation: number; presharedKey: boolean }) =>
    new WireguardKey(`${peer.name}-key`, { rotation: peer.keyRotation, presharedKey: peer.presharedKey });
const gatewayKeys = config.gateways.map(peerKey);
const clientKeys = config.clients.map(peerKey);

const relay = new VpsRelay(config.relay.name, {
    relay: config.relay,
    tunnel: config.tunnel,
    wstunnel: config.wstunnel,
    stack,
    tunnelAddress: relayTunnelAddress(config),
    key: relayKey,
    peers: [
        ...config.gateways.map((gateway, index) => ({
            name: gateway.name,
            role: "gateway" as const,
            tunnelAddress: gateway.tunnelAddress,
            lanSubnets: gateway.lanSubnets,
            publicKey: gatewayKeys[index].publicKey,
            presharedKey: gatewayKeys[index].presharedKey,
        })),
        ...config.clients.map((client, index) => ({
            name: client.name,
            role: "client" as const,
            tunnelAddress: client.tunnelAddress,
            lanSubnets: [],
            publicKey: clientKeys[index].publicKey,
            presharedKey: clientKeys[index].presharedKey,
        })),
    ],
    internetEgress: config.clients.some((client) => client.fullTunnel),
    sshPrivateKey,
});

const gateways = config.gateways.map(
    (gateway, index) =>
        new LanGateway(gateway.name, {
            gateway,
            tunnel: config.tunnel,
            wstunnel: config.wstunnel,
            stack,
            relay,
            key: gatewayKeys[index],
            sshPrivateKey,
        }),
);

const clients = config.clients.map(
    (client, index) =>
        new RoamingClient(client.name, {
            client,
            routes: clientRoutes(config, client),
            tunnel: config.tunnel,
            wstunnel: config.wstunnel,
            stack,
            relay,
            key: clientKeys[index],
            sshPrivateKey,
        }),
);

/** Every `wg-relay:` key, checked by the schema; a mistake stops the program with just the problems, no stack trace. */
function readStackConfig() {
    try {
        return parseStackConfig(stackConfigValues(pulumi.runtime.allConfig()));
    } catch (error) {
        throw error instanceof ConfigError ? new pulumi.RunError(error.message) : error;
    }
}

export const relayEndpoint = relay.endpoint;
export const relayPublicKey = relay.publicKey;
export const relayCaCertificate = relay.caCertPem;
/** Renewed by the first `pulumi up` in each certificate's last 30 days. */
export const relayCertificateExpiry = relay.certificateExpiry;
export const gatewayPublicKeys = Object.fromEntries(gateways.map((gateway, index) => [config.gateways[index].name, gateway.publicKey]));
/** Secret: read one with `pulumi stack output --show-secrets clientBundles` or `npm run client-files -- NAME DIR`. */
export const clientBundles = Object.fromEntries(clients.map((client, index) => [config.clients[index].name, client.bundle]));
