// The relay's access rules: what each roaming client may open through the relay (to gateways' LANs, and to other
// clients when allowed), in a filter chain of the program's own. The rules live in their own file, loaded with
// `iptables-restore --noflush`, which replaces the chain's rules in one go and touches no other chain; wg0's template
// holds only a stable jump into the chain and the same load on PostUp, so a changed rule never restarts WireGuard.
// With IPv6 inside the tunnel the same chain exists for ip6tables, from a file of its own with the IPv6 half of each rule.
import { AccessGrant, ClientAccess, isIpv6Network, SiteLink } from "../config";
import { Hook } from "./wireguard";

export const accessChain = "WG-RELAY-ACCESS";

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

function grantRules(client: string, source: string, grant: AccessGrant, destinations: string[], family: Family): string[] {
    const protocol = grant.protocol ? ` -p ${grant.protocol === "icmp" ? tools[family].icmp : grant.protocol}` : "";
    const ports = grant.ports ? ` -m multiport --dports ${grant.ports.join(",")}` : "";
    return destinations.map((destination) => `-A ${accessChain} -s ${source} -d ${destination}${protocol}${ports} -m comment --comment wg-relay:${client} -j ACCEPT`);
}

function siteRule(link: SiteLink): string {
    return `-A ${accessChain} -s ${link.source} -d ${link.destination} -m comment --comment wg-relay:${link.from} -j ACCEPT`;
}

/**
 * The chain as an iptables-restore (or ip6tables-restore) file: replies, each client's grants in config order, the
 * LANs of gateways with siteToSite towards each other, then a drop. Each file holds the grants' networks of its
 * family: a grant to a gateway stands for its IPv4 LANs in one and its IPv6 LANs in the other.
 */
export function renderAccessRules(clients: ClientAccess[], siteLinks: SiteLink[], family: Family = "ipv4"): string {
    const inFamily = ofFamily(family);
    const lines = [
        `# Managed by wg-relay: \`pulumi up\` rewrites this file and loads it with \`${tools[family].restore} --noflush\`.`,
        `# Traffic between wg0's peers through the relay (FORWARD -i wg0 -o wg0 jumps to ${accessChain}):`,
        "# replies to allowed connections, what each client may open, and nothing else.",
        "*filter",
        `:${accessChain} - [0:0]`,
        `-A ${accessChain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ];
    if (family === "ipv6") {
        // ICMPv6 errors must pass for IPv6 to work at all (RFC 4890: there is no fragmentation on the way, a too-big
        // packet is answered with packet-too-big); they carry no new connection. Neighbour discovery is never forwarded.
        lines.push(
            "# ICMPv6 errors (RFC 4890), even when conntrack does not link them to a connection:",
            ...["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem"].map(
                (type) => `-A ${accessChain} -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -j ACCEPT`,
            ),
        );
    }
    for (const client of clients) {
        const address = family === "ipv6" ? client.tunnelAddress6 : client.tunnelAddress;
        if (address === undefined) {
            continue;
        }
        if (client.access.length === 0) {
            lines.push(`# ${client.name} (${address}) may open nothing`);
        }
        for (const grant of client.access) {
            const destinations = grant.destinations.filter(inFamily);
            // A grant with networks of the other family only belongs to the other file; one without any, to IPv4's.
            if (destinations.length === 0 && (grant.destinations.length > 0 || family === "ipv6")) {
                continue;
            }
            lines.push(`# ${client.name} (${address}) to ${describeGrant(grant, destinations)}`, ...grantRules(client.name, `${address}${tools[family].hostPrefix}`, grant, destinations, family));
        }
    }
    for (const link of siteLinks.filter((candidate) => inFamily(candidate.source))) {
        lines.push(`# site to site: ${link.from}'s ${link.source} to ${link.to}'s ${link.destination}`, siteRule(link));
    }
    lines.push("# Anything else: gateways towards clients, clients towards what they were not given.", `-A ${accessChain} -j DROP`, "COMMIT", "");
    return lines.join("\n");
}

/** Loads the rules into a running relay; before wg0 is up there is no chain, and PostUp loads them. */
export function loadAccessRulesScript(rulesFile: string, family: Family = "ipv4"): string {
    const { iptables, restore } = tools[family];
    return `if ${iptables} -w -n -L ${accessChain} >/dev/null 2>&1; then ${restore} -w --noflush ${rulesFile}; fi`;
}

/**
 * wg0's hooks for the chain: load it, then jump into it at the top of FORWARD for traffic between peers, so its
 * final drop decides before any rule further down; undone in reverse. Their text never changes with the rules.
 */
export function accessChainHooks(rulesFile: string, family: Family = "ipv4"): Hook[] {
    const { iptables, restore } = tools[family];
    const jump = `FORWARD -i %i -o %i -j ${accessChain} -m comment --comment wg-relay`;
    return [
        { up: `${restore} -w --noflush ${rulesFile}`, down: `${iptables} -w -F ${accessChain} && ${iptables} -w -X ${accessChain}` },
        // In the form of every other PostUp rule, so the doctor checks it and wg-apply puts it back when it is missing.
        { up: `${iptables} -I ${jump}`, down: `${iptables} -D ${jump}` },
    ];
}
