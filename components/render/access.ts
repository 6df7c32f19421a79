// The relay's access rules: what each roaming client may open through the relay (to gateways' LANs, and to other
// clients when allowed), in a filter chain of the program's own. The rules live in their own file, loaded with
// `iptables-restore --noflush`, which replaces the chain's rules in one go and touches no other chain; wg0's template
// holds only a stable jump into the chain and the same load on PostUp, so a changed rule never restarts WireGuard.
import { AccessGrant, ClientAccess, SiteLink } from "../config";
import { Hook } from "./wireguard";

export const accessChain = "WG-RELAY-ACCESS";

function describeGrant(grant: AccessGrant): string {
    const what = grant.kind === "network" ? grant.to : `${grant.to} (${grant.kind}: ${grant.destinations.join(", ") || "nothing in its routes"})`;
    const protocol = grant.protocol ? `, ${grant.protocol}` : "";
    const ports = grant.ports ? ` port${grant.ports.length > 1 ? "s" : ""} ${grant.ports.map((port) => port.replace(":", "-")).join(", ")}` : "";
    return `${what}${protocol}${ports}`;
}

function grantRules(client: ClientAccess, grant: AccessGrant): string[] {
    const protocol = grant.protocol ? ` -p ${grant.protocol}` : "";
    const ports = grant.ports ? ` -m multiport --dports ${grant.ports.join(",")}` : "";
    return grant.destinations.map(
        (destination) => `-A ${accessChain} -s ${client.tunnelAddress}/32 -d ${destination}${protocol}${ports} -m comment --comment wg-relay:${client.name} -j ACCEPT`,
    );
}

function siteRule(link: SiteLink): string {
    return `-A ${accessChain} -s ${link.source} -d ${link.destination} -m comment --comment wg-relay:${link.from} -j ACCEPT`;
}

/**
 * The chain as an iptables-restore file: replies, each client's grants in config order, the LANs of gateways with
 * siteToSite towards each other, then a drop.
 */
export function renderAccessRules(clients: ClientAccess[], siteLinks: SiteLink[]): string {
    const lines = [
        "# Managed by wg-relay: `pulumi up` rewrites this file and loads it with `iptables-restore --noflush`.",
        `# Traffic between wg0's peers through the relay (FORWARD -i wg0 -o wg0 jumps to ${accessChain}):`,
        "# replies to allowed connections, what each client may open, and nothing else.",
        "*filter",
        `:${accessChain} - [0:0]`,
        `-A ${accessChain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ];
    for (const client of clients) {
        if (client.access.length === 0) {
            lines.push(`# ${client.name} (${client.tunnelAddress}) may open nothing`);
        }
        for (const grant of client.access) {
            lines.push(`# ${client.name} (${client.tunnelAddress}) to ${describeGrant(grant)}`, ...grantRules(client, grant));
        }
    }
    for (const link of siteLinks) {
        lines.push(`# site to site: ${link.from}'s ${link.source} to ${link.to}'s ${link.destination}`, siteRule(link));
    }
    lines.push("# Anything else: gateways towards clients, clients towards what they were not given.", `-A ${accessChain} -j DROP`, "COMMIT", "");
    return lines.join("\n");
}

/** Loads the rules into a running relay; before wg0 is up there is no chain, and PostUp loads them. */
export function loadAccessRulesScript(rulesFile: string): string {
    return `if iptables -w -n -L ${accessChain} >/dev/null 2>&1; then iptables-restore -w --noflush ${rulesFile}; fi`;
}

/**
 * wg0's hooks for the chain: load it, then jump into it at the top of FORWARD for traffic between peers, so its
 * final drop decides before any rule further down; undone in reverse. Their text never changes with the rules.
 */
export function accessChainHooks(rulesFile: string): Hook[] {
    const jump = `FORWARD -i %i -o %i -j ${accessChain} -m comment --comment wg-relay`;
    return [
        { up: `iptables-restore -w --noflush ${rulesFile}`, down: `iptables -w -F ${accessChain} && iptables -w -X ${accessChain}` },
        // In the form of every other PostUp rule, so the doctor checks it and wg-apply puts it back when it is missing.
        { up: `iptables -I ${jump}`, down: `iptables -D ${jump}` },
    ];
}
