// The cross-field rules: what no key's own check can see. Each rule reads the typed parts that parsed (salvage.ts)
// and names the key each of its problems is about; a rule that establishes something later rules need (the tunnel
// subnets, the relays' host parts, the LANs) returns the sound part of it.
import { z } from "zod";
import { Cidr, cidrContains, cidrsOverlap, intToIp, ipToInt, ipv6HostAddress, IpNetwork, isIpv4, isNetworkOrBroadcast, networksOverlap, networkWithin, parseAddressOrNetwork, parseCidr, parseNetwork } from "../net";
import { derivedIpv6Prefix } from "./resolve";
import { isSet, salvage, Salvaged } from "./salvage";
import { clientSchema, gatewaySchema, ParsedConfig, relaySchema, stackConfigObject, wstunnelArchitectures } from "./schema";

type Path = (string | number)[];
type Report = (path: Path, message: string) => void;
type Relay = Salvaged<z.output<typeof relaySchema>>;
type Gateway = Salvaged<z.output<typeof gatewaySchema>>;
type Client = Salvaged<z.output<typeof clientSchema>>;

/** A part of the config with where it is: `path` for issues, `key` as messages name it (relays[1]). */
interface Located<Part> {
    value: Part;
    path: Path;
    key: string;
}

interface Parts {
    config: Salvaged<ParsedConfig>;
    /** `relay` (one) or each of `relays` (several); `relay` even when neither is set. */
    relays: Located<Relay>[];
    gateways: Located<Gateway>[];
    clients: Located<Client>[];
    /** Gateways, then clients. */
    peers: Located<Gateway | Client>[];
    /** tunnel.subnet, where it parsed. */
    subnet?: KnownSubnet;
}

interface KnownSubnet {
    cidr: Cidr;
    text: string;
}

/** A network some key claims, by the key that claims it. */
interface ClaimedNetwork {
    network: IpNetwork;
    text: string;
    key: string;
}

const keyName = (path: Path) => path.map((part, index) => (typeof part === "number" ? `[${part}]` : index === 0 ? part : `.${part}`)).join("");
const located = <Part>(value: Part, path: Path): Located<Part> => ({ value, path, key: keyName(path) });
const hostPart = (address: string, within: Cidr) => ipToInt(address) - within.network;

function partsOf(value: unknown): Parts {
    const config = salvage(stackConfigObject, value) ?? {};
    // An item that is no object at all is one of which nothing is known (every key of a salvaged part is optional).
    const listed = <Part>(key: string, items: (Part | undefined)[] | undefined) => (items ?? []).map((item, index) => located(item ?? ({} as Part), [key, index]));
    const relays = isSet(config, "relays") ? listed<Relay>("relays", config.relays) : [located<Relay>(config.relay ?? {}, ["relay"])];
    const gateways = listed<Gateway>("gateways", config.gateways);
    const clients = listed<Client>("clients", config.clients);
    const subnetText = config.tunnel?.subnet;
    const subnetCidr = subnetText === undefined ? undefined : parseCidr(subnetText);
    return { config, relays, gateways, clients, peers: [...gateways, ...clients], subnet: subnetCidr && { cidr: subnetCidr, text: subnetText! } };
}

/**
 * Every cross-field rule, run on the config as far as it parsed. `when: () => true` in the schema runs this also
 * after field problems, so the user sees every problem in one run.
 */
export function checkTopology(value: unknown, ctx: z.RefinementCtx): void {
    const report: Report = (path, message) => ctx.addIssue({ code: "custom", path, message });
    const parts = partsOf(value);
    checkRelayOrRelays(parts, report);
    const relaySubnets = checkRelaySubnets(parts, report);
    const relayHostParts = checkRelayAddresses(parts, relaySubnets, report);
    checkUdpPorts(parts, report);
    checkNames(parts, report);
    checkPeerAddresses(parts, relayHostParts, report);
    const ipv6Prefix = checkIpv6(parts, report);
    const tunnelNetworks = [...[...relaySubnets.values()].map(({ text, key }) => ({ network: parseNetwork(text)!, text, key })), ...(ipv6Prefix ? [ipv6Prefix] : [])];
    const lans = checkLans(parts, tunnelNetworks, report);
    checkRoutes(parts, lans, report);
    checkAccess(parts, lans, report);
    checkClientSettings(parts, report);
    checkTransports(parts, report);
    checkExistingKeys(parts, report);
    checkWstunnelSource(parts, report);
}

/** One relay (`relay`) or several (`relays`), never both. */
function checkRelayOrRelays({ config }: Parts, report: Report): void {
    if (isSet(config, "relay") && isSet(config, "relays")) {
        report(["relays"], "set either relay (one relay) or relays (several), not both");
    } else if (!isSet(config, "relay") && !isSet(config, "relays")) {
        report(["relay"], "required, but not set in the stack config");
    }
}

/** Every relay's tunnel subnet: tunnel.subnet for the first, its own (of the same size) for each other one. Returns the sound ones by relay index. */
function checkRelaySubnets({ relays, subnet }: Parts, report: Report): Map<number, KnownSubnet & { key: string }> {
    const subnets = new Map<number, KnownSubnet & { key: string }>(subnet ? [[0, { ...subnet, key: "tunnel.subnet" }]] : []);
    relays.forEach(({ value: relay, path }, index) => {
        const text = relay.tunnelSubnet;
        const key = [...path, "tunnelSubnet"];
        if (index === 0) {
            if (subnet && isSet(relay, "tunnelSubnet") && text !== subnet.text) {
                report(key, `the first relay's tunnel subnet is tunnel.subnet (${subnet.text}): leave tunnelSubnet out`);
            }
            return;
        }
        if (!isSet(relay, "tunnelSubnet")) {
            report(key, "required for every relay after the first: a tunnel subnet of its own, the size of tunnel.subnet");
            return;
        }
        if (text === undefined) {
            return;
        }
        const own = parseCidr(text)!;
        if (subnet && own.prefix !== subnet.cidr.prefix) {
            report(key, `${text} is not the size of tunnel.subnet ${subnet.text}: every peer has the same host part in each relay's subnet`);
            return;
        }
        const clash = [...subnets.values()].find((other) => cidrsOverlap(other.cidr, own));
        if (clash) {
            report(key, `${text} overlaps ${clash.text} of wg-relay:${clash.key}`);
            return;
        }
        subnets.set(index, { cidr: own, text, key: keyName(key) });
    });
    return subnets;
}

/** Why `address` cannot be a host's in `subnet`, if it cannot. */
function addressProblem(address: string, subnet: KnownSubnet): string | undefined {
    if (!cidrContains(subnet.cidr, address)) {
        return `${address} is outside the tunnel subnet ${subnet.text}`;
    }
    if (isNetworkOrBroadcast(subnet.cidr, address)) {
        return `${address} is the network or broadcast address of ${subnet.text}`;
    }
    return undefined;
}

/** Each relay's own tunnel address lies in its subnet. Returns the relays' host parts (which no peer may have), by the relay's key. */
function checkRelayAddresses({ relays }: Parts, relaySubnets: Map<number, KnownSubnet>, report: Report): Map<number, string> {
    const hostParts = new Map<number, string>();
    relays.forEach(({ value: relay, path, key }, index) => {
        const within = relaySubnets.get(index);
        const configured = relay.tunnelAddress;
        if (within === undefined || (configured === undefined && isSet(relay, "tunnelAddress"))) {
            return;
        }
        const problem = configured === undefined ? undefined : addressProblem(configured, { cidr: within.cidr, text: `${intToIp(within.cidr.network)}/${within.cidr.prefix}` });
        if (problem) {
            report([...path, "tunnelAddress"], problem);
            return;
        }
        hostParts.set(configured === undefined ? 1 : hostPart(configured, within.cidr), key);
    });
    return hostParts;
}

/** Further UDP ports are opened only with allowDirectUdp, and each differs from WireGuard's own port and the others. */
function checkUdpPorts({ relays }: Parts, report: Report): void {
    for (const { value: relay, path } of relays) {
        const udpPorts = relay.udpPorts ?? [];
        if (udpPorts.length > 0 && relay.allowDirectUdp !== true) {
            report([...path, "udpPorts"], "further UDP ports need allowDirectUdp: true, or the relay drops what they bring in");
        }
        udpPorts.forEach((udpPort, index) => {
            if (udpPort !== undefined && (udpPort === relay.wireguardPort || udpPorts.indexOf(udpPort) !== index)) {
                report([...path, "udpPorts", index], `${udpPort} is already WireGuard's port or listed before`);
            }
        });
    }
}

/** Names are unique across relays, gateways and clients: they name files, units and access rules. */
function checkNames({ relays, peers }: Parts, report: Report): void {
    const seen = new Map<string, string>();
    const claim = ({ value, path }: Located<{ name?: string }>, owner: string) => {
        const earlier = value.name === undefined ? undefined : seen.get(value.name);
        if (earlier) {
            report([...path, "name"], `name '${value.name}' is already used by ${earlier}`);
        } else if (value.name !== undefined) {
            seen.set(value.name, owner);
        }
    };
    relays.forEach((relay) => claim(relay, `${relay.key}.name`));
    peers.forEach((peer) => claim(peer, peer.key));
}

/** A peer's tunnel address lies in tunnel.subnet, is its own, and has no relay's host part (it keeps it in every relay's subnet). */
function checkPeerAddresses({ relays, peers, subnet }: Parts, relayHostParts: Map<number, string>, report: Report): void {
    const seen = new Map<string, string>();
    for (const { value: peer, path, key } of peers) {
        const address = peer.tunnelAddress;
        if (subnet === undefined || address === undefined) {
            continue;
        }
        const where = [...path, "tunnelAddress"];
        const problem = addressProblem(address, subnet);
        if (problem) {
            report(where, problem);
            continue;
        }
        const relayOwner = relayHostParts.get(hostPart(address, subnet.cidr));
        if (relayOwner !== undefined) {
            report(where, relays.length === 1 || relayOwner === relays[0].key ? `${address} is the relay's tunnel address` : `${address} has the host part of ${relayOwner}'s tunnel address`);
            continue;
        }
        const owner = seen.get(address);
        if (owner) {
            report(where, `${address} is already used by ${owner}`);
        } else {
            seen.set(address, key);
        }
    }
}

/** IPv6 inside the tunnel: on to have a prefix, one relay only, and a prefix with room for every host part of tunnel.subnet. Returns the prefix when sound. */
function checkIpv6({ config, relays, subnet }: Parts, report: Report): ClaimedNetwork | undefined {
    const ipv6 = config.tunnel?.ipv6 ?? {};
    const text = ipv6.prefix;
    const prefix = text === undefined ? undefined : parseNetwork(text);
    if (ipv6.enabled !== true && isSet(ipv6, "prefix")) {
        report(["tunnel", "ipv6", "prefix"], "a prefix is set but IPv6 is off: set tunnel.ipv6.enabled: true too");
    }
    if (ipv6.enabled === true && relays.length > 1) {
        report(["tunnel", "ipv6", "enabled"], "IPv6 inside the tunnel with several relays is not supported yet: use one relay, or leave IPv6 off");
    }
    if (prefix && prefix.family !== 6) {
        report(["tunnel", "ipv6", "prefix"], `${text} is an IPv4 network: expected an IPv6 prefix like fd12:3456:789a::/64`);
    } else if (prefix && subnet && 128 - prefix.prefix < 32 - subnet.cidr.prefix) {
        report(["tunnel", "ipv6", "prefix"], `${text} has fewer host addresses than tunnel.subnet ${subnet.text}: a peer's IPv6 address has the host part of its IPv4 one`);
    } else if (prefix) {
        return { network: prefix, text: text!, key: "tunnel.ipv6.prefix" };
    }
    return undefined;
}

/** LANs must be told apart from each other and from every tunnel subnet: the problem names both keys. Returns the LANs that are. */
function checkLans({ config, gateways }: Parts, tunnelNetworks: ClaimedNetwork[], report: Report): ClaimedNetwork[] {
    const lans: ClaimedNetwork[] = [];
    for (const gateway of gateways) {
        (gateway.value.lanSubnets ?? []).forEach((text, index) => {
            const lan = text === undefined ? undefined : parseNetwork(text);
            if (!lan) {
                return;
            }
            const path = [...gateway.path, "lanSubnets", index];
            if (lan.family === 6 && config.tunnel?.ipv6?.enabled !== true) {
                report(path, `${text} is an IPv6 network: set tunnel.ipv6.enabled: true to route IPv6 LANs`);
                return;
            }
            const tunnelClash = tunnelNetworks.find((network) => networksOverlap(lan, network.network));
            if (tunnelClash) {
                report(path, `${text} overlaps the tunnel subnet ${tunnelClash.text} of wg-relay:${tunnelClash.key}`);
                return;
            }
            const clash = lans.find((other) => networksOverlap(other.network, lan));
            if (clash) {
                report(path, `${text} overlaps ${clash.text} of wg-relay:${clash.key}`);
                return;
            }
            lans.push({ network: lan, text: text!, key: keyName(path) });
        });
    }
    return lans;
}

/** A client routes only LANs that some gateway serves. */
function checkRoutes({ clients }: Parts, lans: ClaimedNetwork[], report: Report): void {
    const served = new Set(lans.map((lan) => lan.text));
    for (const { value: client, path } of clients) {
        (client.routes ?? []).forEach((route, index) => {
            if (route !== undefined && !served.has(route)) {
                report([...path, "routes", index], `${route} is not a LAN subnet of any gateway`);
            }
        });
    }
}

/** What the first relay is dialled at: its publicAddress, or its SSH host; undefined where that did not parse. */
function firstRelayAddress({ relays }: Parts): string | undefined {
    const relay = relays[0]?.value ?? {};
    return isSet(relay, "publicAddress") ? relay.publicAddress : relay.ssh?.host;
}

/** The gateways' own tunnel addresses: IPv4, and IPv6 in the prefix in effect (the configured one, or the one derived from the first relay). */
function gatewayTunnelHosts(parts: Parts): IpNetwork[] {
    const { config, relays, gateways, subnet } = parts;
    const ipv6 = config.tunnel?.ipv6 ?? {};
    const relayName = relays[0]?.value.name;
    const relayAddress = firstRelayAddress(parts);
    const derived = relayName && relayAddress ? derivedIpv6Prefix(relayName, relayAddress) : undefined;
    const prefixText = isSet(ipv6, "prefix") ? ipv6.prefix : derived;
    const prefix = ipv6.enabled === true && prefixText !== undefined ? parseNetwork(prefixText) : undefined;
    return gateways.flatMap(({ value: gateway }) => {
        const address = gateway.tunnelAddress;
        if (address === undefined || !subnet) {
            return [];
        }
        const address6 = prefix?.family === 6 ? [parseAddressOrNetwork(ipv6HostAddress(prefix, hostPart(address, subnet.cidr)))!] : [];
        return [parseAddressOrNetwork(address)!, ...address6];
    });
}

/** Each access rule names a gateway, client or relay, or a network the client routes (or a gateway's own tunnel address); ports only with tcp or udp. */
function checkAccess(parts: Parts, lans: ClaimedNetwork[], report: Report): void {
    const gatewayHosts = gatewayTunnelHosts(parts);
    const known = {
        gateways: new Map(parts.gateways.map(({ value: gateway }) => [gateway.name, gateway])),
        clientNames: new Set(parts.clients.map(({ value: client }) => client.name)),
        relayNames: new Set(parts.relays.map(({ value: relay }) => relay.name ?? "relay")),
        isGatewayHost: (network: IpNetwork) => gatewayHosts.some((host) => networkWithin(network, host)),
    };
    for (const { value: client, path: clientPath } of parts.clients) {
        const routes = client.routes === undefined ? lans.map((lan) => lan.text) : client.routes.filter((route) => route !== undefined);
        (client.access ?? []).forEach((rule, index) => {
            const path = [...clientPath, "access", index];
            const problem = rule?.to === undefined ? undefined : accessTargetProblem(rule.to, client, routes, known);
            if (problem) {
                report([...path, "to"], problem);
            }
            if (rule && isSet(rule, "ports") && rule.protocol !== "tcp" && rule.protocol !== "udp") {
                report([...path, "ports"], "ports need protocol: tcp or udp");
            }
        });
    }
}

/** Why `to` cannot be what a client's access rule names, if it cannot. */
function accessTargetProblem(
    to: string,
    client: Client,
    routes: string[],
    known: { gateways: Map<string | undefined, Gateway>; clientNames: Set<string | undefined>; relayNames: Set<string>; isGatewayHost: (network: IpNetwork) => boolean },
): string | undefined {
    const routesText = routes.length === 0 ? "none" : routes.join(", ");
    const gateway = known.gateways.get(to);
    const network = parseAddressOrNetwork(to);
    if (gateway) {
        return (gateway.lanSubnets ?? []).some((lan) => lan !== undefined && routes.includes(lan)) ? undefined : `no LAN of gateway '${to}' is in this client's routes (${routesText})`;
    }
    if (known.clientNames.has(to)) {
        return to === client.name ? "a client always reaches itself: name another client, a gateway or a LAN address" : undefined;
    }
    if (known.relayNames.has(to)) {
        return undefined; // the relay itself: what the rule names is open on its tunnel addresses
    }
    if (network) {
        const routed = routes.some((route) => networkWithin(network, parseNetwork(route)!));
        return routed || known.isGatewayHost(network) ? undefined : `${to} is outside this client's routes (${routesText}); name another client by its name`;
    }
    return /^[a-z][a-z0-9-]*$/.test(to)
        ? `'${to}' is not the name of a gateway, a client or a relay`
        : "expected a gateway's, client's or relay's name, an IP address or a subnet in CIDR form with no host bits set";
}

/** A client's full tunnel, platform, SSH and primary relay fit together and with the relays. */
function checkClientSettings(parts: Parts, report: Report): void {
    const { relays, clients } = parts;
    const relayAddress = firstRelayAddress(parts);
    for (const { value: client, path } of clients) {
        if (client.fullTunnel === true && relays.length > 1) {
            report([...path, "fullTunnel"], "a full tunnel with several relays is not supported: route the LANs only, or use one relay");
        }
        if (client.platform === "ios" && client.transport !== "udp") {
            report([...path, "transport"], "iOS has no wstunnel client: use transport: udp (with the relay's allowDirectUdp, and udpPorts where UDP is filtered)");
        }
        if (client.transport === "auto" && !isSet(client, "ssh")) {
            report([...path, "transport"], "'auto' switches on the client machine, which needs ssh to provision it; a bundle's stock apps cannot switch: use wstunnel or udp");
        }
        if (isSet(client, "ssh") && client.platform !== "linux") {
            report([...path, "ssh"], "only a linux client is provisioned over SSH; leave ssh out for the others, which get their bundle");
        }
        const primary = client.primaryRelay;
        if (primary !== undefined && !relays.some(({ value: relay }) => relay.name === primary)) {
            report([...path, "primaryRelay"], `'${primary}' is not the name of a relay`);
        }
        if (client.fullTunnel === true && relayAddress !== undefined && !isIpv4(relayAddress)) {
            // The relay's own address must be routed outside a full tunnel, so it has to be known as an address.
            report([...path, "fullTunnel"], "a full tunnel needs relay.publicAddress (or relay.ssh.host) to be an IPv4 address");
        }
    }
}

/**
 * A peer on plain UDP (or auto, while UDP passes) sends to each relay's WireGuard port, which only allowDirectUdp
 * leaves open; auto moves one relay's endpoint.
 */
function checkTransports({ relays, peers }: Parts, report: Report): void {
    for (const { value: peer, path } of peers) {
        if (peer.transport === "auto" && relays.length > 1) {
            report([...path, "transport"], "'auto' works with one relay only so far: use wstunnel or udp with several relays");
        }
        for (const relay of relays) {
            if ((peer.transport === "udp" || peer.transport === "auto") && relay.value.allowDirectUdp !== true) {
                report([...path, "transport"], `'${peer.transport}' needs ${relay.key}.allowDirectUdp: true, or the relay drops the ${path[0] === "gateways" ? "gateway" : "client"}'s packets`);
            }
        }
    }
}

/** Existing keys are never rotated, and a peer's preshared key is either both wanted and given, or neither. */
function checkExistingKeys({ relays, peers }: Parts, report: Report): void {
    const checkRotation = ({ value, path }: Located<Relay | Gateway | Client>) => {
        if (isSet(value, "existingKeys") && (value.keyRotation ?? 0) > 0) {
            report([...path, "keyRotation"], "existing keys are never rotated by the program: replace existingKeys instead, or remove them to have keys generated");
        }
    };
    relays.forEach(checkRotation);
    for (const peer of peers) {
        checkRotation(peer);
        const { value, path } = peer;
        const hasPresharedKey = value.existingKeys !== undefined && isSet(value.existingKeys, "presharedKey");
        if (isSet(value, "existingKeys") && value.presharedKey === true && !hasPresharedKey) {
            report([...path, "existingKeys", "presharedKey"], "presharedKey: true with existing keys needs the existing preshared key too");
        }
        if (value.presharedKey !== true && hasPresharedKey) {
            report([...path, "presharedKey"], "existingKeys.presharedKey is set: set presharedKey: true to use it");
        }
    }
}

/** Where the wstunnel binary comes from needs what that source reads. */
function checkWstunnelSource({ config }: Parts, report: Report): void {
    const wstunnel = config.wstunnel ?? {};
    const source = wstunnel.source;
    if (source === "local" && !isSet(wstunnel, "localBinary")) {
        report(["wstunnel", "localBinary"], "source 'local' needs localBinary: the path of a wstunnel binary on this machine");
    }
    if (source === "mirror" && !isSet(wstunnel, "mirrorBaseUrl")) {
        report(["wstunnel", "mirrorBaseUrl"], "source 'mirror' needs mirrorBaseUrl");
    }
    const sha256 = wstunnel.sha256 ?? {};
    if ((source === "release" || source === "mirror") && !wstunnelArchitectures.some((architecture) => isSet(sha256, architecture))) {
        report(
            ["wstunnel", "sha256"],
            `source '${source}' needs the SHA-256 of wstunnel ${wstunnel.version ?? "release"}'s archive for each host architecture (${wstunnelArchitectures.join(", ")}), from the release's checksums.txt`,
        );
    }
}
