// wg-relay: turns the stack config into a relay, LAN gateways and roaming clients (the library, components/library.ts),
// and exports what users need.
import * as pulumi from "@pulumi/pulumi";
import { lightStackTraces } from "./components/stackTraces";
import { ConfigError, configNamespace, parseStackConfig, stackConfigValues } from "./components/config";
import { createNetwork } from "./components/library";

lightStackTraces();
const sshPrivateKey = new pulumi.Config(configNamespace).requireSecret("sshPrivateKey");
const { relays, gateways: lanGateways, clients: roamingClients } = createNetwork(readStackConfig(), { sshPrivateKey, stack: pulumi.getStack() });
const relay = relays[0];

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
