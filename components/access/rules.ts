// The relay's rules for everything its peers send, in chains of the program's own: WG-RELAY-ACCESS decides what
// passes from one peer to another (to gateways' LANs, and to other clients when allowed), WG-RELAY-INPUT what a peer
// may open on the relay itself, WG-RELAY-EGRESS what leaves wg0 for any other interface (the internet, for full-tunnel
// clients only) and WG-RELAY-NAT whose traffic is masqueraded there. Each ends in a drop: what no rule grants is
// refused, and counted by the chain that refused it. The rules live in one file per family, loaded with
// `iptables-restore --noflush`, which replaces the chains' rules in one go and touches no other chain; wg0's template
// holds only stable jumps into the chains and the same load on PostUp, so a changed rule never restarts WireGuard.
// Both families always: kernel WireGuard takes IPv6 whether or not the tunnel carries it.
import { AccessGrant, ClientAccess, isIpv6Network, relayClients, RelaySettings, SiteLink } from "../config";
import { wireguardInterface } from "../host/paths";
import { Hook } from "../wireguard/render";

export const accessChain = "WG-RELAY-ACCESS";
export const inputChain = "WG-RELAY-INPUT";
export const egressChain = "WG-RELAY-EGRESS";
export const natChain = "WG-RELAY-NAT";

/** What the relay's rules are made of: its peers (the clients with their grants), the site links, its own addresses. */
export type RelayRulesSettings = Pick<RelaySettings, "peers" | "siteLinks" | "tunnelAddress" | "tunnelAddress6" | "publicInterface" | "tunnel">;

/** Which of iptables' two tables a rules file is for. */
export type Family = "ipv4" | "ipv6";
const tools = {
    ipv4: { iptables: "iptables", restore: "iptables-restore", hostPrefix: "/32", icmp: "icmp" },
    ipv6: { iptables: "ip6tables", restore: "ip6tables-restore", hostPrefix: "/128", icmp: "ipv6-icmp" },
};
const ofFamily = (family: Family) => (network: string) => isIpv6Network(network) === (family === "ipv6");

function describeGrant(grant: AccessGrant, destinations: string[]): string {
    const what = grant.kind === "network" ? grant.to : `${grant.to} (${grant.kind}: ${destinations.join(", ") || "nothing in its routes"})`;
    const protocol = grant.protocol ? `, ${grant.protocol}` : "";
    const ports = grant.ports ? ` port${grant.ports.length > 1 ? "s" : ""} ${grant.ports.map((port) => port.replace(":", "-")).join(", ")}` : "";
    return `${what}${protocol}${ports}`;
}

function grantRules(chain: string, client: string, source: string, grant: AccessGrant, destinations: string[], family: Family): string[] {
    const protocol = grant.protocol ? ` -p ${grant.protocol === "icmp" ? tools[family].icmp : grant.protocol}` : "";
    const ports = grant.ports ? ` -m multiport --dports ${grant.ports.join(",")}` : "";
    return destinations.map((destination) => `-A ${chain} -s ${source} -d ${destination}${protocol}${ports} -m comment --comment wg-relay:${client} -j ACCEPT`);
}

function siteRule(link: SiteLink): string {
    return `-A ${accessChain} -s ${link.source} -d ${link.destination} -m comment --comment wg-relay:${link.from} -j ACCEPT`;
}

/** WG-RELAY-ACCESS: replies, each client's grants towards peers in config order, the site links, then a drop. */
function accessChainLines(clients: ClientAccess[], siteLinks: SiteLink[], family: Family): string[] {
    const inFamily = ofFamily(family);
    const lines = [
        `# Traffic between wg0's peers through the relay (FORWARD -i wg0 -o wg0 jumps to ${accessChain}):`,
        "# replies to allowed connections, what each client may open, and nothing else.",
        `:${accessChain} - [0:0]`,
        `-A ${accessChain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ];
    if (family === "ipv6") {
        // ICMPv6 errors must pass for IPv6 to work at all (RFC 4890: there is no fragmentation on the way, a too-big
        // packet is answered with packet-too-big); they carry no new connection. Neighbour discovery is never forwarded.
        lines.push("# ICMPv6 errors (RFC 4890), even when conntrack does not link them to a connection:", ...icmpErrorRules(accessChain, family));
    }
    for (const client of clients) {
        const address = family === "ipv6" ? client.tunnelAddress6 : client.tunnelAddress;
        if (address === undefined) {
            continue;
        }
        const grants = client.access.filter((grant) => grant.kind !== "relay");
        if (grants.length === 0) {
            lines.push(`# ${client.name} (${address}) may open nothing`);
        }
        for (const grant of grants) {
            const destinations = grant.destinations.filter(inFamily);
            // A grant with networks of the other family only belongs to the other file; one without any, to IPv4's.
            if (destinations.length === 0 && (grant.destinations.length > 0 || family === "ipv6")) {
                continue;
            }
            lines.push(`# ${client.name} (${address}) to ${describeGrant(grant, destinations)}`, ...grantRules(accessChain, client.name, `${address}${tools[family].hostPrefix}`, grant, destinations, family));
        }
    }
    for (const link of siteLinks.filter((candidate) => inFamily(candidate.source))) {
        lines.push(`# site to site: ${link.from}'s ${link.source} to ${link.to}'s ${link.destination}`, siteRule(link));
    }
    lines.push("# Anything else: gateways towards clients, clients towards what they were not given.", `-A ${accessChain} -j DROP`);
    return lines;
}

/** ICMP errors (path MTU discovery among them), accepted even when conntrack does not link them to a connection. */
function icmpErrorRules(chain: string, family: Family): string[] {
    return family === "ipv6"
        ? ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem"].map((type) => `-A ${chain} -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -j ACCEPT`)
        : ["destination-unreachable", "time-exceeded"].map((type) => `-A ${chain} -p icmp -m icmp --icmp-type ${type} -j ACCEPT`);
}

/** The UDP port of the gateways' heartbeat (failover/heartbeat.ts): it has to reach the relay, not a service. */
const heartbeatPort = 9;

/**
 * WG-RELAY-INPUT (INPUT -i wg0): what peers may open on the relay itself. Replies (the relay's own connections to
 * peers, e.g. SSH as a jump host), ICMP errors, what the program needs (clients' failover pings and the gateways'
 * heartbeat, IPv4 only), what a client's access grants on this relay (`to: RELAY`), then a drop.
 */
function inputChainLines(relay: RelayRulesSettings, family: Family): string[] {
    const own = family === "ipv6" ? relay.tunnelAddress6 : relay.tunnelAddress;
    const lines = [
        `# What wg0's peers may open on the relay itself (INPUT -i wg0 jumps to ${inputChain}):`,
        "# replies to the relay's own connections, ICMP errors, what the program needs, what a client's access names.",
        `:${inputChain} - [0:0]`,
        `-A ${inputChain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
        ...icmpErrorRules(inputChain, family),
    ];
    if (family === "ipv4") {
        const relayHost = `${relay.tunnelAddress}/32`;
        const gateways = relay.peers.filter((peer) => peer.role === "gateway");
        lines.push(
            "# clients' failover probes: a ping to the relay's tunnel address",
            `-A ${inputChain} -s ${relay.tunnel.subnet} -d ${relayHost} -p icmp -m icmp --icmp-type echo-request -j ACCEPT`,
            ...(gateways.length === 0 ? [] : ["# gateways' heartbeat: a datagram to the discard port, so a session the relay forgot is renewed"]),
            ...gateways.map((gateway) => `-A ${inputChain} -s ${gateway.tunnelAddress}/32 -d ${relayHost} -p udp -m udp --dport ${heartbeatPort} -j ACCEPT`),
        );
    }
    for (const client of relayClients(relay)) {
        const address = family === "ipv6" ? client.tunnelAddress6 : client.tunnelAddress;
        for (const grant of client.access.filter((candidate) => candidate.kind === "relay")) {
            const destinations = grant.destinations.filter(ofFamily(family));
            if (address === undefined || own === undefined || destinations.length === 0) {
                continue;
            }
            lines.push(`# ${client.name} (${address}) to ${describeGrant(grant, destinations)}`, ...grantRules(inputChain, client.name, `${address}${tools[family].hostPrefix}`, grant, destinations, family));
        }
    }
    lines.push("# Anything else: no service of the relay is open to peers unless granted.", `-A ${inputChain} -j DROP`);
    return lines;
}

/** Link-local addresses: the cloud provider's metadata service (169.254.169.254) among them, never a peer's business. */
const linkLocal = "169.254.0.0/16";

/**
 * WG-RELAY-EGRESS (FORWARD -i wg0): what leaves wg0 for another interface. Peer-to-peer traffic returns to FORWARD,
 * where WG-RELAY-ACCESS has decided it already; then replies, and each full-tunnel client from its own address out of
 * the public interface (IPv4 only: a full tunnel carries no IPv6), never to link-local addresses; then a drop.
 */
function egressChainLines(relay: RelayRulesSettings, family: Family): string[] {
    const lines = [
        `# What leaves wg0 for the relay's other interfaces (FORWARD -i wg0 jumps to ${egressChain}):`,
        "# the internet, out of the public interface, for full-tunnel clients from their own address; nothing else.",
        `:${egressChain} - [0:0]`,
        `-A ${egressChain} -o ${wireguardInterface} -j RETURN`,
        `-A ${egressChain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ];
    const fullTunnel = family === "ipv4" ? relayClients(relay).filter((client) => client.fullTunnel) : [];
    if (fullTunnel.length > 0) {
        lines.push("# link-local addresses (the provider's metadata service): no client's", `-A ${egressChain} -d ${linkLocal} -j DROP`);
    }
    for (const client of fullTunnel) {
        lines.push(
            `# ${client.name} (${client.tunnelAddress}) to the internet (fullTunnel)`,
            `-A ${egressChain} -s ${client.tunnelAddress}/32 -o ${relay.publicInterface} -m comment --comment wg-relay:${client.name} -j ACCEPT`,
        );
    }
    lines.push("# Anything else: split-tunnel clients and gateways towards the internet, any peer towards other interfaces.", `-A ${egressChain} -j DROP`);
    return lines;
}

/** WG-RELAY-NAT (nat POSTROUTING): each full-tunnel client masqueraded behind the public address, no one else. */
function natChainLines(relay: RelayRulesSettings): string[] {
    return [
        `# Full-tunnel clients masqueraded onto the internet (POSTROUTING jumps to ${natChain}):`,
        `:${natChain} - [0:0]`,
        ...relayClients(relay)
            .filter((client) => client.fullTunnel)
            .map((client) => `-A ${natChain} -s ${client.tunnelAddress}/32 -o ${relay.publicInterface} -m comment --comment wg-relay:${client.name} -j MASQUERADE`),
    ];
}

/** The relay's chains of a family, by table: each table's lines in iptables-restore's form (comments, chains, rules). */
function accessRuleTables(relay: RelayRulesSettings, family: Family): { table: "filter" | "nat"; lines: string[] }[] {
    return [
        { table: "filter", lines: [...accessChainLines(relayClients(relay), relay.siteLinks, family), ...inputChainLines(relay, family), ...egressChainLines(relay, family)] },
        ...(family === "ipv4" ? [{ table: "nat" as const, lines: natChainLines(relay) }] : []),
    ];
}

/**
 * The relay's chains as an iptables-restore (or ip6tables-restore) file. Each file holds the grants' networks of its
 * family: a grant to a gateway stands for its IPv4 LANs in one and its IPv6 LANs in the other.
 */
export function renderAccessRules(relay: RelayRulesSettings, family: Family = "ipv4"): string {
    return [
        `# Managed by wg-relay: \`pulumi up\` rewrites this file and loads it with \`${tools[family].restore} --noflush\`.`,
        ...accessRuleTables(relay, family).flatMap(({ table, lines }) => [`*${table}`, ...lines, "COMMIT"]),
        "",
    ].join("\n");
}

/** The chains of a family, by table: what wg0's PostDown flushes and deletes. */
function chainsOf(family: Family): { table: "filter" | "nat"; chain: string }[] {
    return [
        { table: "filter", chain: accessChain },
        { table: "filter", chain: inputChain },
        { table: "filter", chain: egressChain },
        ...(family === "ipv4" ? [{ table: "nat" as const, chain: natChain }] : []),
    ];
}

/**
 * The relay's chains' rules as the commands that add them (`iptables [-t TABLE] -A CHAIN ...`): the form of wg0's
 * PostUp rules, which the doctor checks one by one on the host.
 */
export function accessRuleCommands(relay: RelayRulesSettings, family: Family): string[] {
    return accessRuleTables(relay, family).flatMap(({ table, lines }) =>
        lines.filter((line) => line.startsWith("-A ")).map((line) => `${tools[family].iptables} ${table === "filter" ? "" : `-t ${table} `}${line}`),
    );
}

/** Loads the rules into a running relay; before wg0 is up there is no chain, and PostUp loads them. */
export function loadAccessRulesScript(rulesFile: string, family: Family = "ipv4"): string {
    const { iptables, restore } = tools[family];
    return `if ${iptables} -w -n -L ${accessChain} >/dev/null 2>&1; then ${restore} -w --noflush ${rulesFile}; fi`;
}

/**
 * wg0's jumps into the chains: at the top of FORWARD and INPUT for what comes in on wg0, so their final drops decide
 * before any rule further down (the access chain's jump ends above the egress chain's, which returns peer-to-peer
 * traffic anyway), and into the NAT chain from POSTROUTING. Their text never changes with the rules. In the form of
 * every other PostUp rule, so the doctor checks them and wg-apply puts them back when missing.
 */
export function accessChainJumps(family: Family = "ipv4"): Hook[] {
    const { iptables } = tools[family];
    const jump = (rule: string) => `${rule} -m comment --comment wg-relay`;
    const jumps = [
        `-I ${jump(`FORWARD -i %i -j ${egressChain}`)}`,
        `-I ${jump(`FORWARD -i %i -o %i -j ${accessChain}`)}`,
        `-I ${jump(`INPUT -i %i -j ${inputChain}`)}`,
        ...(family === "ipv4" ? [`-t nat -A ${jump(`POSTROUTING -j ${natChain}`)}`] : []),
    ];
    return jumps.map((rule) => ({ up: `${iptables} ${rule}`, down: `${iptables} ${rule.replace(/-[IA] /, "-D ")}` }));
}

/** wg0's hooks for the chains: load them, then jump into them (accessChainJumps); undone in reverse. */
export function accessChainHooks(rulesFile: string, family: Family = "ipv4"): Hook[] {
    const { iptables, restore } = tools[family];
    const removeChains = chainsOf(family)
        .map(({ table, chain }) => {
            const tableOption = table === "filter" ? "" : ` -t ${table}`;
            return `${iptables} -w${tableOption} -F ${chain} && ${iptables} -w${tableOption} -X ${chain}`;
        })
        .join(" && ");
    return [{ up: `${restore} -w --noflush ${rulesFile}`, down: removeChains }, ...accessChainJumps(family)];
}
