// The systemd service units wg-relay installs: unprivileged, hardened, restarted a second after they stop, always.

const hardening = [
    "DynamicUser=yes",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces=yes",
    "LockPersonality=yes",
    // A tunnel should come back at once, and keep trying: no start limit that would give up after a few failures.
    "Restart=always",
    "RestartSec=1",
];

export interface ServiceUnit {
    description: string;
    /** Ordering against other units, e.g. "Before=wg-quick@wg0.service". */
    order: string[];
    /** The [Service] lines before the shared hardening. */
    service: string[];
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
        ...hardening,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}
