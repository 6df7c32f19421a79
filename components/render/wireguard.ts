// Renders /etc/wireguard/wg0.conf for wg-quick, with the firewall hooks that go with it.
// The private key stays in its own file (PostUp sets it), so the rendered conf holds no secret
// and `pulumi preview --diff` shows it in the clear. Only a client bundle inlines the key.

/** Where a key comes from: its root-only file on the host, or (client bundles only) the key itself. */
export type KeySource = { file: string } | { inline: string };

export interface WgPeer {
    /** Shown as a comment above the peer: who it is. */
    description: string;
    publicKey: string;
    presharedKey?: KeySource;
    allowedIps: string[];
    endpoint?: string;
    persistentKeepalive?: number;
}

/** A command for PostUp and, when it changes state that outlives the interface, the PostDown that undoes it exactly. */
export interface Hook {
    up: string;
    down?: string;
}

export interface WgInterface {
    /** Address with prefix length, e.g. 10.10.0.1/24. */
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
}

export interface FirewallRule {
    table: "filter" | "nat";
    chain: string;
    /** Insert at the top of the chain (for drops that must win) instead of appending. */
    insert?: boolean;
    spec: string;
}

const ruleComment = "-m comment --comment wg-relay";

/** iptables rules as hooks: PostDown deletes exactly the rule PostUp added, by the same spec. */
export function firewallHooks(rules: FirewallRule[]): Hook[] {
    return rules.map((rule) => {
        const table = rule.table === "nat" ? "-t nat " : "";
        const spec = `${rule.chain} ${rule.spec} ${ruleComment}`;
        return {
            up: `iptables ${table}${rule.insert ? "-I" : "-A"} ${spec}`,
            down: `iptables ${table}-D ${spec}`,
        };
    });
}

/** Keys kept in files are set once the interface exists; they go away with it, so there is nothing to undo. */
function keyFileHooks(conf: WgQuickConf): Hook[] {
    const hooks: Hook[] = [];
    if ("file" in conf.interface.privateKey) {
        hooks.push({ up: `wg set %i private-key ${conf.interface.privateKey.file}` });
    }
    for (const peer of conf.peers) {
        if (peer.presharedKey && "file" in peer.presharedKey) {
            hooks.push({ up: `wg set %i peer ${peer.publicKey} preshared-key ${peer.presharedKey.file}` });
        }
    }
    return hooks;
}

export function renderWgQuickConf(conf: WgQuickConf): string {
    const iface = conf.interface;
    const lines = [
        `# ${conf.title}`,
        "# Managed by wg-relay: `pulumi up` rewrites this file; change the stack config instead.",
        "[Interface]",
        `Address = ${iface.address}`,
    ];
    if (iface.listenPort !== undefined) {
        lines.push(`ListenPort = ${iface.listenPort}`);
    }
    lines.push(`MTU = ${iface.mtu}`);
    if ("inline" in iface.privateKey) {
        lines.push(`PrivateKey = ${iface.privateKey.inline}`);
    }
    const hooks = [...keyFileHooks(conf), ...iface.hooks];
    for (const hook of hooks) {
        lines.push(`PostUp = ${hook.up}`);
    }
    // Undo in reverse order, so a rule inserted last is removed first.
    for (const hook of [...hooks].reverse()) {
        if (hook.down !== undefined) {
            lines.push(`PostDown = ${hook.down}`);
        }
    }
    for (const peer of conf.peers) {
        lines.push("", "[Peer]", `# ${peer.description}`, `PublicKey = ${peer.publicKey}`);
        if (peer.presharedKey && "inline" in peer.presharedKey) {
            lines.push(`PresharedKey = ${peer.presharedKey.inline}`);
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

export interface RelayAsPeerSpec {
    publicKey: string;
    presharedKey?: KeySource;
    allowedIps: string[];
    endpoint: string;
    keepaliveSeconds: number;
}

/** How a gateway or client sees the relay: its one peer, kept alive through NAT. */
export function relayAsPeer(spec: RelayAsPeerSpec): WgPeer {
    return {
        description: "relay",
        publicKey: spec.publicKey,
        presharedKey: spec.presharedKey,
        allowedIps: spec.allowedIps,
        endpoint: spec.endpoint,
        persistentKeepalive: spec.keepaliveSeconds,
    };
}
