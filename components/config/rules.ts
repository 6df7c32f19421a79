// The cross-field rules: what no single key's own check can see.
import { z } from "zod";
import { Cidr, cidrContains, cidrsOverlap, intToIp, ipToInt, ipv6HostAddress, IpNetwork, isIpv4, isNetworkOrBroadcast, networksOverlap, networkWithin, parseAddressOrNetwork, parseCidr, parseNetwork } from "../net";
import { derivedIpv6Prefix } from "./resolve";
import { wstunnelArchitectures } from "./schema";

// Cross-field checks run even when some fields failed their own checks, so one run reports every problem. They
// read the config through these guards: a malformed part (already reported) is skipped, never dereferenced.
type Loose = Record<string, unknown>;
const looseObject = (value: unknown): Loose => (value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Loose) : {});
const looseList = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const looseString = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

export function checkTopology(value: unknown, ctx: z.RefinementCtx): void {
    const problem = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    const config = looseObject(value);
    // One relay (`relay`) or several (`relays`), each checked under its own key.
    const relayKey = config.relays === undefined ? ["relay"] : undefined;
    if (config.relay !== undefined && config.relays !== undefined) {
        problem(["relays"], "set either relay (one relay) or relays (several), not both");
    } else if (config.relay === undefined && config.relays === undefined) {
        problem(["relay"], "required, but not set in the stack config");
    }
    const relays = (relayKey ? [config.relay] : looseList(config.relays)).map((relay, index) => ({
        relay: looseObject(relay),
        path: relayKey ?? ["relays", index],
    }));
    const relay = relays[0]?.relay ?? {};
    const keyName = (path: (string | number)[]) => path.map((part, index) => (typeof part === "number" ? `[${part}]` : index === 0 ? part : `.${part}`)).join("");
    // Defaults are filled in by now wherever a part parsed.
    const subnetText = looseString(looseObject(config.tunnel).subnet);
    const subnet = subnetText === undefined ? undefined : parseCidr(subnetText);
    const gateways = looseList(config.gateways).map(looseObject);
    const clients = looseList(config.clients).map(looseObject);

    const checkAddress = (path: (string | number)[], address: string | undefined, within = subnet, withinText = subnetText) => {
        if (within === undefined || address === undefined || !isIpv4(address)) {
            return false; // a malformed subnet or address is reported by its own check
        }
        if (!cidrContains(within, address)) {
            problem(path, `${address} is outside the tunnel subnet ${withinText}`);
            return false;
        }
        if (isNetworkOrBroadcast(within, address)) {
            problem(path, `${address} is the network or broadcast address of ${withinText}`);
            return false;
        }
        return true;
    };

    // Every relay's tunnel subnet: tunnel.subnet for the first, its own (of the same size) for each other one.
    const tunnelNetworks: { cidr: Cidr; text: string; key: string }[] = subnet ? [{ cidr: subnet, text: subnetText!, key: "tunnel.subnet" }] : [];
    const relaySubnet = new Map<number, Cidr>(subnet ? [[0, subnet]] : []);
    relays.forEach(({ relay: other, path }, index) => {
        const text = looseString(other.tunnelSubnet);
        const own = text === undefined ? undefined : parseCidr(text);
        if (index === 0) {
            if (text !== undefined && text !== subnetText) {
                problem([...path, "tunnelSubnet"], `the first relay's tunnel subnet is tunnel.subnet (${subnetText}): leave tunnelSubnet out`);
            }
            return;
        }
        if (text === undefined) {
            problem([...path, "tunnelSubnet"], "required for every relay after the first: a tunnel subnet of its own, the size of tunnel.subnet");
            return;
        }
        if (!own) {
            return;
        }
        const key = keyName([...path, "tunnelSubnet"]);
        if (subnet && own.prefix !== subnet.prefix) {
            problem([...path, "tunnelSubnet"], `${text} is not the size of tunnel.subnet ${subnetText}: every peer has the same host part in each relay's subnet`);
            return;
        }
        const clash = tunnelNetworks.find((network) => cidrsOverlap(network.cidr, own));
        if (clash) {
            problem([...path, "tunnelSubnet"], `${text} overlaps ${clash.text} of wg-relay:${clash.key}`);
            return;
        }
        tunnelNetworks.push({ cidr: own, text, key });
        relaySubnet.set(index, own);
    });

    // Host parts: each relay's own address, and every peer's, which it keeps in every relay's subnet.
    const hostPart = (address: string, within: Cidr) => ipToInt(address) - within.network;
    const relayHostParts = new Map<number, string>();
    relays.forEach(({ relay: other, path }, index) => {
        const within = relaySubnet.get(index);
        const configured = looseString(other.tunnelAddress);
        if (within === undefined) {
            return;
        }
        if (configured !== undefined && !checkAddress([...path, "tunnelAddress"], configured, within, `${intToIp(within.network)}/${within.prefix}`)) {
            return;
        }
        relayHostParts.set(configured === undefined ? 1 : hostPart(configured, within), keyName(path));
    });

    const peers = [
        ...gateways.map((peer, index) => ({ peer, path: ["gateways", index] as (string | number)[] })),
        ...clients.map((peer, index) => ({ peer, path: ["clients", index] as (string | number)[] })),
    ];

    for (const { relay: other, path } of relays) {
        const udpPorts = looseList(other.udpPorts);
        if (udpPorts.length > 0 && other.allowDirectUdp !== true) {
            problem([...path, "udpPorts"], "further UDP ports need allowDirectUdp: true, or the relay drops what they bring in");
        }
        const wireguardPort = typeof other.wireguardPort === "number" ? other.wireguardPort : 51820;
        udpPorts.forEach((udpPort, index) => {
            if (udpPort === wireguardPort || udpPorts.indexOf(udpPort) !== index) {
                problem([...path, "udpPorts", index], `${String(udpPort)} is already WireGuard's port or listed before`);
            }
        });
    }

    const namesSeen = new Map<string, string>();
    for (const { relay: other, path } of relays) {
        const relayName = looseString(other.name);
        const earlier = relayName === undefined ? undefined : namesSeen.get(relayName);
        if (earlier) {
            problem([...path, "name"], `name '${relayName}' is already used by ${earlier}`);
        } else if (relayName !== undefined) {
            namesSeen.set(relayName, `${keyName(path)}.name`);
        }
    }
    const addressesSeen = new Map<string, string>();
    for (const { peer, path } of peers) {
        const peerName = looseString(peer.name);
        const earlier = peerName === undefined ? undefined : namesSeen.get(peerName);
        if (earlier) {
            problem([...path, "name"], `name '${peerName}' is already used by ${earlier}`);
        } else if (peerName !== undefined) {
            namesSeen.set(peerName, `${path[0]}[${path[1]}]`);
        }

        const address = looseString(peer.tunnelAddress);
        if (!checkAddress([...path, "tunnelAddress"], address)) {
            continue;
        }
        const relayOwner = relayHostParts.get(hostPart(address!, subnet!));
        if (relayOwner !== undefined) {
            problem(
                [...path, "tunnelAddress"],
                relays.length === 1 || relayOwner === keyName(relays[0].path) ? `${address} is the relay's tunnel address` : `${address} has the host part of ${relayOwner}'s tunnel address`,
            );
            continue;
        }
        const owner = addressesSeen.get(address!);
        if (owner) {
            problem([...path, "tunnelAddress"], `${address} is already used by ${owner}`);
        } else {
            addressesSeen.set(address!, `${path[0]}[${path[1]}]`);
        }
    }

    // IPv6 inside the tunnel: its prefix must leave room for every host part of tunnel.subnet.
    const ipv6 = looseObject(looseObject(config.tunnel).ipv6);
    const ipv6PrefixText = looseString(ipv6.prefix);
    const ipv6Prefix = ipv6PrefixText === undefined ? undefined : parseNetwork(ipv6PrefixText);
    const tunnelNetworks6: { network: IpNetwork; text: string; key: string }[] = [];
    if (ipv6.enabled !== true && ipv6PrefixText !== undefined) {
        problem(["tunnel", "ipv6", "prefix"], "a prefix is set but IPv6 is off: set tunnel.ipv6.enabled: true too");
    }
    if (ipv6.enabled === true && relays.length > 1) {
        problem(["tunnel", "ipv6", "enabled"], "IPv6 inside the tunnel with several relays is not supported yet: use one relay, or leave IPv6 off");
    }
    if (ipv6Prefix && ipv6Prefix.family !== 6) {
        problem(["tunnel", "ipv6", "prefix"], `${ipv6PrefixText} is an IPv4 network: expected an IPv6 prefix like fd12:3456:789a::/64`);
    } else if (ipv6Prefix && subnet && 128 - ipv6Prefix.prefix < 32 - subnet.prefix) {
        problem(["tunnel", "ipv6", "prefix"], `${ipv6PrefixText} has fewer host addresses than tunnel.subnet ${subnetText}: a peer's IPv6 address has the host part of its IPv4 one`);
    } else if (ipv6Prefix) {
        tunnelNetworks6.push({ network: ipv6Prefix, text: ipv6PrefixText!, key: "tunnel.ipv6.prefix" });
    }
    const tunnelClashes = [...tunnelNetworks.map((network) => ({ ...network, network: parseNetwork(network.text)! })), ...tunnelNetworks6];

    // LANs must be told apart from each other and from every tunnel subnet: the error names both keys.
    const lans: { network: IpNetwork; text: string; where: string }[] = [];
    gateways.forEach((gateway, gatewayIndex) => {
        looseList(gateway.lanSubnets).forEach((text, lanIndex) => {
            const lan = typeof text === "string" ? parseNetwork(text) : undefined;
            if (!lan) {
                return;
            }
            const path = ["gateways", gatewayIndex, "lanSubnets", lanIndex];
            if (lan.family === 6 && ipv6.enabled !== true) {
                problem(path, `${text} is an IPv6 network: set tunnel.ipv6.enabled: true to route IPv6 LANs`);
                return;
            }
            const tunnelClash = tunnelClashes.find((network) => networksOverlap(lan, network.network));
            if (tunnelClash) {
                problem(path, `${text} overlaps the tunnel subnet ${tunnelClash.text} of wg-relay:${tunnelClash.key}`);
                return;
            }
            const clash = lans.find((other) => networksOverlap(other.network, lan));
            if (clash) {
                problem(path, `${text} overlaps ${clash.text} of wg-relay:${clash.where}`);
                return;
            }
            lans.push({ network: lan, text: text as string, where: keyName(path) });
        });
    });

    const served = new Set(lans.map((lan) => lan.text));
    // A gateway's own tunnel addresses (IPv4, and IPv6 in the prefix in effect) may be named in access rules too.
    const relayName = looseString(relay.name);
    const relayAddress = looseString(relay.publicAddress) ?? looseString(looseObject(relay.ssh).host);
    const prefixInEffect =
        ipv6.enabled !== true ? undefined : ipv6PrefixText === undefined ? (relayName && relayAddress ? parseNetwork(derivedIpv6Prefix(relayName, relayAddress)) : undefined) : ipv6Prefix;
    const gatewayHosts = gateways.flatMap((gateway) => {
        const address = looseString(gateway.tunnelAddress);
        if (address === undefined || !isIpv4(address) || !subnet) {
            return [];
        }
        const ipv6Address = prefixInEffect?.family === 6 ? [parseAddressOrNetwork(ipv6HostAddress(prefixInEffect, hostPart(address, subnet)))!] : [];
        return [parseAddressOrNetwork(address)!, ...ipv6Address];
    });
    const isGatewayHost = (network: IpNetwork) => gatewayHosts.some((host) => networkWithin(network, host));
    const gatewayNames = new Map(gateways.map((gateway) => [looseString(gateway.name), gateway]));
    const clientNames = new Set(clients.map((client) => looseString(client.name)));
    const relayNames = new Set(relays.map(({ relay: other }) => looseString(other.name) ?? "relay"));
    const checkAccess = (client: Loose, clientIndex: number) => {
        const routes = Array.isArray(client.routes) ? looseList(client.routes) : lans.map((lan) => lan.text);
        const routeNetworks = routes.flatMap((route) => (typeof route === "string" && parseNetwork(route) ? [parseNetwork(route)!] : []));
        const routesText = routes.length === 0 ? "none" : routes.join(", ");
        looseList(client.access).forEach((value, ruleIndex) => {
            const rule = looseObject(value);
            const path = ["clients", clientIndex, "access", ruleIndex];
            const to = looseString(rule.to);
            if (to !== undefined) {
                const gateway = gatewayNames.get(to);
                const network = parseAddressOrNetwork(to);
                if (gateway) {
                    if (!looseList(gateway.lanSubnets).some((lan) => routes.includes(lan))) {
                        problem([...path, "to"], `no LAN of gateway '${to}' is in this client's routes (${routesText})`);
                    }
                } else if (clientNames.has(to)) {
                    if (to === looseString(client.name)) {
                        problem([...path, "to"], "a client always reaches itself: name another client, a gateway or a LAN address");
                    }
                } else if (relayNames.has(to)) {
                    // The relay itself: what the rule names is open on its tunnel addresses.
                } else if (network) {
                    if (!routeNetworks.some((route) => networkWithin(network, route)) && !isGatewayHost(network)) {
                        problem([...path, "to"], `${to} is outside this client's routes (${routesText}); name another client by its name`);
                    }
                } else if (/^[a-z][a-z0-9-]*$/.test(to)) {
                    problem([...path, "to"], `'${to}' is not the name of a gateway, a client or a relay`);
                } else {
                    problem([...path, "to"], "expected a gateway's, client's or relay's name, an IP address or a subnet in CIDR form with no host bits set");
                }
            }
            if (rule.ports !== undefined && rule.protocol !== "tcp" && rule.protocol !== "udp") {
                problem([...path, "ports"], "ports need protocol: tcp or udp");
            }
        });
    };
    const relayPublic = looseString(relay.publicAddress) ?? looseString(looseObject(relay.ssh).host);
    clients.forEach((client, clientIndex) => {
        looseList(client.routes).forEach((route, routeIndex) => {
            if (typeof route === "string" && parseNetwork(route) && !served.has(route)) {
                problem(["clients", clientIndex, "routes", routeIndex], `${route} is not a LAN subnet of any gateway`);
            }
        });
        checkAccess(client, clientIndex);
        if (client.fullTunnel === true && relays.length > 1) {
            problem(["clients", clientIndex, "fullTunnel"], "a full tunnel with several relays is not supported: route the LANs only, or use one relay");
        }
        if (client.platform === "ios" && client.transport !== "udp") {
            problem(["clients", clientIndex, "transport"], "iOS has no wstunnel client: use transport: udp (with the relay's allowDirectUdp, and udpPorts where UDP is filtered)");
        }
        if (client.ssh !== undefined && client.platform !== undefined && client.platform !== "linux") {
            problem(["clients", clientIndex, "ssh"], "only a linux client is provisioned over SSH; leave ssh out for the others, which get their bundle");
        }
        const primary = looseString(client.primaryRelay);
        if (primary !== undefined && !relays.some(({ relay: other }) => other.name === primary)) {
            problem(["clients", clientIndex, "primaryRelay"], `'${primary}' is not the name of a relay`);
        }
        if (client.fullTunnel === true && relayPublic !== undefined && !isIpv4(relayPublic)) {
            // The relay's own address must be routed outside a full tunnel, so it has to be known as an address.
            problem(["clients", clientIndex, "fullTunnel"], "a full tunnel needs relay.publicAddress (or relay.ssh.host) to be an IPv4 address");
        }
    });

    // A peer on plain UDP sends to each relay's WireGuard port, which only allowDirectUdp leaves open.
    for (const { peer, path } of peers) {
        for (const { relay: other, path: relayPath } of relays) {
            if (peer.transport === "udp" && other.allowDirectUdp !== true) {
                problem([...path, "transport"], `'udp' needs ${keyName(relayPath)}.allowDirectUdp: true, or the relay drops the ${path[0] === "gateways" ? "gateway" : "client"}'s packets`);
            }
        }
    }

    const checkExistingKeys = (path: (string | number)[], peer: Loose) => {
        if (peer.existingKeys === undefined) {
            return;
        }
        if (typeof peer.keyRotation === "number" && peer.keyRotation > 0) {
            problem([...path, "keyRotation"], "existing keys are never rotated by the program: replace existingKeys instead, or remove them to have keys generated");
        }
        const hasPresharedKey = looseString(looseObject(peer.existingKeys).presharedKey) !== undefined;
        if (peer.presharedKey === true && !hasPresharedKey) {
            problem([...path, "existingKeys", "presharedKey"], "presharedKey: true with existing keys needs the existing preshared key too");
        }
        if (peer.presharedKey !== true && hasPresharedKey) {
            problem([...path, "presharedKey"], "existingKeys.presharedKey is set: set presharedKey: true to use it");
        }
    };
    for (const { relay: other, path } of relays) {
        checkExistingKeys(path, other);
    }
    for (const { peer, path } of peers) {
        checkExistingKeys(path, peer);
    }

    const wstunnel = looseObject(config.wstunnel);
    const source = wstunnel.source;
    if (source === "local" && !wstunnel.localBinary) {
        problem(["wstunnel", "localBinary"], "source 'local' needs localBinary: the path of a wstunnel binary on this machine");
    }
    if (source === "mirror" && !wstunnel.mirrorBaseUrl) {
        problem(["wstunnel", "mirrorBaseUrl"], "source 'mirror' needs mirrorBaseUrl");
    }
    if ((source === "release" || source === "mirror") && Object.keys(looseObject(wstunnel.sha256)).length === 0) {
        problem(
            ["wstunnel", "sha256"],
            `source '${source}' needs the SHA-256 of wstunnel ${looseString(wstunnel.version) ?? "release"}'s archive for each host architecture (${wstunnelArchitectures.join(", ")}), from the release's checksums.txt`,
        );
    }
}
