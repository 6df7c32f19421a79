// wg-relay as a library: a program of one's own builds the relay, the LAN gateways and the roaming clients, the relay
// and the first gateway being servers that other resources make in the same `pulumi up`. Here local commands stand
// in for a cloud provider's servers (say `new hcloud.Server(...)` and its `ipv4Address`: the relay, and a second
// machine as a site's gateway) and for the key their admin user accepts (say a `tls.PrivateKey` whose public half
// the servers are created with): only their outputs matter to wg-relay.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createNetwork, NetworkConfig, parseNetworkConfig } from "wg-relay";

const config = new pulumi.Config();

// Prints the server's public IPv4 address.
const server = new command.local.Command("relay-server", { create: config.require("relayAddressCommand") });
// Prints the first gateway's address.
const gatewayServer = new command.local.Command("gateway-server", { create: config.require("gatewayAddressCommand") });
// Prints the SSH private key; a secret in the state.
const adminKey = new command.local.Command("relay-ssh-key", { create: config.require("relaySshKeyCommand"), logging: "stderr" }, { additionalSecretOutputs: ["stdout"] });

// The network as the stack config would describe it (README, config reference), but the relay's SSH host (the
// server's address, which is also what gateways and clients dial) and the first gateway's.
const network = config.requireObject<NetworkConfig>("network");
const relay = network.relay!;
const [gateway, ...otherGateways] = network.gateways!;
const addressOf = (server: command.local.Command) => server.stdout.apply((text) => text.trim());
const { relays, gateways, clients } = createNetwork(
    parseNetworkConfig({
        ...network,
        relay: { ...relay, ssh: { ...relay.ssh, host: addressOf(server) } },
        gateways: [{ ...gateway, ssh: { ...gateway.ssh, host: addressOf(gatewayServer) } }, ...otherGateways],
    }),
    { sshPrivateKey: adminKey.stdout },
);

export const relayUrl = relays[0].wssUrl;
export const relayPublicKey = relays[0].publicKey;
export const gatewayPublicKeys = Object.fromEntries(gateways.map(({ name, component }) => [name, component.publicKey]));
/** Secret: each client's wg-quick conf and wstunnel files. */
export const clientBundles = Object.fromEntries(clients.map(({ name, component }) => [name, component.bundle]));
