// The systemd service units wg-relay installs: hardened, unprivileged unless they change the network, restarted a
// second after they stop, always.

function hardening(rootCapabilities: string[] | undefined): string[] {
    return [
        ...(rootCapabilities ? [`CapabilityBoundingSet=${rootCapabilities.join(" ")}`] : ["DynamicUser=yes"]),
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        `RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX${rootCapabilities ? " AF_NETLINK" : ""}`,
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        // A tunnel should come back at once, and keep trying: no start limit that would give up after a few failures.
        "Restart=always",
        "RestartSec=1",
    ];
}

/**
 * The ExecStart of a unit that runs one round of `command` every `intervalSeconds` (the failover, transport and
 * staged-switch units): a failed round is logged and the next one runs; one process, not a timer per round.
 */
export function everyIntervalExecStart(command: string, intervalSeconds: number): string {
    return `ExecStart=/bin/bash -c 'while :; do ${command} || true; sleep ${intervalSeconds}; done'`;
}

export interface ServiceUnit {
    description: string;
    /** Ordering against other units, e.g. "Before=wg-quick@wg0.service". */
    order: string[];
    /** The [Service] lines before the shared hardening. */
    service: string[];
    /**
     * Runs as root with only these capabilities and netlink (a unit that changes routes and WireGuard peers) instead
     * of as an unprivileged dynamic user.
     */
    rootCapabilities?: string[];
}

export function renderServiceUnit(unit: ServiceUnit): string {
    return [
        "# Managed by wg-relay: `pulumi up` rewrites this file.",
        "[Unit]",
        `Description=${unit.description}`,
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=0",
        ...unit.order,
        "",
        "[Service]",
        ...unit.service,
        ...hardening(unit.rootCapabilities),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}
