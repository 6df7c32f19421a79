// Renders wg-quick confs, with the firewall hooks that go with them.
// On a host the program pushes a template that holds no key at all: key lines name where the key comes from
// (a root-only file, or the public-keys file by peer name) and wg-apply fills them in on the host. So the template,
// which is what state and `pulumi preview --diff` hold, shows every peer's lines in the clear even before its key
// exists. Only a client bundle, a secret, has its keys inline.

/** A private or preshared key: from its root-only file on the host, or (client bundles only) the key itself. */
export type KeySource = { file: string } | { inline: string };
/** A peer's public key: the key itself, or by peer name from the host's public-keys file. */
export type PublicKeySource = { inline: string } | { ofPeer: string };

export interface WgPeer {
    /** Shown as a comment above the peer: who it is. */
    description: string;
    publicKey: PublicKeySource;
    presharedKey?: KeySource;
    allowedIps: string[];
    endpoint?: string;
    persistentKeepalive?: number;
    /** A smaller MTU for the routes to this peer's AllowedIPs than the interface's: a comment wg-apply reads. */
    routeMtu?: number;
}

/** A command for PostUp and, when it changes state that outlives the interface, the PostDown that undoes it exactly. */
export interface Hook {
    up: string;
    down?: string;
}

export interface WgInterface {
    /** Addresses with prefix length, e.g. 10.10.0.1/24 or "10.10.0.1/24, fd00::1/64". */
    address: string;
    listenPort?: number;
    mtu: number;
    privateKey: KeySource;
    hooks: Hook[];
}

export interface WgQuickConf {
    /** One line saying whose config this is; rendered as a comment. */
    title: string;
    interface: WgInterface;
    peers: WgPeer[];
    /** Comment lines that wg-relay's own host scripts read (e.g. the failover directive); wg-quick ignores them. */
    directives?: string[];
}

export interface FirewallRule {
    table: "filter" | "nat" | "mangle";
    chain: string;
    /** Insert at the top of the chain (for drops that must win) instead of appending. */
    insert?: boolean;
    /** The rule's iptables arguments after the chain, e.g. "-i %i -o %i -j ACCEPT". */
    rule: string;
    /** An IPv6 rule, added with ip6tables. */
    ipv6?: boolean;
}

const ruleComment = "-m comment --comment wg-relay";

/** iptables rules as hooks: PostDown deletes exactly the rule PostUp added, by the same arguments. */
export function firewallHooks(rules: FirewallRule[]): Hook[] {
    return rules.map((rule) => {
        const iptables = rule.ipv6 ? "ip6tables" : "iptables";
        const table = rule.table === "filter" ? "" : `-t ${rule.table} `;
        const chainAndRule = `${rule.chain} ${rule.rule} ${ruleComment}`;
        return {
            up: `${iptables} ${table}${rule.insert ? "-I" : "-A"} ${chainAndRule}`,
            down: `${iptables} ${table}-D ${chainAndRule}`,
        };
    });
}

/** A key line: the key itself, or (in a host's template) where wg-apply finds it. The forms wg-apply reads. */
function keyLine(field: "PrivateKey" | "PresharedKey", key: KeySource): string {
    return "inline" in key ? `${field} = ${key.inline}` : `${field} = <from ${key.file}>`;
}

function publicKeyLine(key: PublicKeySource): string {
    return "inline" in key ? `PublicKey = ${key.inline}` : `PublicKey = <public key of ${key.ofPeer}>`;
}

export function renderWgQuickConf(conf: WgQuickConf): string {
    const iface = conf.interface;
    const lines = [
        `# ${conf.title}`,
        "# Managed by wg-relay: `pulumi up` rewrites this file; change the stack config instead.",
        ...(conf.directives ?? []).map((directive) => `# ${directive}`),
        "[Interface]",
        `Address = ${iface.address}`,
    ];
    if (iface.listenPort !== undefined) {
        lines.push(`ListenPort = ${iface.listenPort}`);
    }
    lines.push(`MTU = ${iface.mtu}`, keyLine("PrivateKey", iface.privateKey));
    for (const hook of iface.hooks) {
        lines.push(`PostUp = ${hook.up}`);
    }
    // Undo in reverse order, so a rule inserted last is removed first.
    for (const hook of [...iface.hooks].reverse()) {
        if (hook.down !== undefined) {
            lines.push(`PostDown = ${hook.down}`);
        }
    }
    for (const peer of conf.peers) {
        lines.push("", "[Peer]", `# ${peer.description}`);
        if (peer.routeMtu !== undefined) {
            // Before AllowedIPs, where wg-apply --route-mtus expects it; wg-quick and wg ignore comments.
            lines.push(`# wg-relay route MTU: ${peer.routeMtu}`);
        }
        lines.push(publicKeyLine(peer.publicKey));
        if (peer.presharedKey) {
            lines.push(keyLine("PresharedKey", peer.presharedKey));
        }
        lines.push(`AllowedIPs = ${peer.allowedIps.join(", ")}`);
        if (peer.endpoint !== undefined) {
            lines.push(`Endpoint = ${peer.endpoint}`);
        }
        if (peer.persistentKeepalive !== undefined) {
            lines.push(`PersistentKeepalive = ${peer.persistentKeepalive}`);
        }
    }
    return lines.join("\n") + "\n";
}

/** The public-keys file wg-apply reads beside a template: one "NAME KEY" line per peer. */
export function renderPublicKeys(keys: { name: string; publicKey: string }[]): string {
    return keys.map((key) => `${key.name} ${key.publicKey}\n`).join("");
}

export interface RelayAsPeerSettings {
    /** "the relay", or with several, which one. */
    description: string;
    publicKey: PublicKeySource;
    presharedKey?: KeySource;
    allowedIps: string[];
    endpoint: string;
    keepaliveSeconds: number;
}

/** How a gateway or client sees a relay: a peer kept alive through NAT. */
export function relayAsPeer(relay: RelayAsPeerSettings): WgPeer {
    return {
        description: relay.description,
        publicKey: relay.publicKey,
        presharedKey: relay.presharedKey,
        allowedIps: relay.allowedIps,
        endpoint: relay.endpoint,
        persistentKeepalive: relay.keepaliveSeconds,
    };
}
