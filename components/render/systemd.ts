// The systemd service units wg-relay installs: unprivileged, hardened, restarted whenever they stop.

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
    "Restart=always",
    "RestartSec=3",
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
