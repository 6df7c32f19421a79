// wstunnel v10 command lines, their systemd units and environment files.
// The path prefix is a secret: it travels in an EnvironmentFile (root-only), never in an argument,
// so it shows neither in the unit nor in the process list.
import { wgQuickUnit, wstunnelBinaryPath } from "./paths";

export interface WstunnelServerSpec {
    listenPort: number;
    wireguardPort: number;
    certificateFile: string;
    privateKeyFile: string;
    environmentFile: string;
}

export interface WstunnelClientSpec {
    localPort: number;
    relayHost: string;
    relayPort: number;
    wireguardPort: number;
    environmentFile: string;
}

export const serverPrefixVariable = "WSTUNNEL_RESTRICT_HTTP_UPGRADE_PATH_PREFIX";
export const clientPrefixVariable = "WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX";

function hostForUrl(host: string): string {
    return host.includes(":") ? `[${host}]` : host;
}

export function wstunnelServerArgs(spec: Omit<WstunnelServerSpec, "environmentFile">): string[] {
    return [
        "server",
        "--tls-certificate",
        spec.certificateFile,
        "--tls-private-key",
        spec.privateKeyFile,
        // Exact host and port: the server forwards to local WireGuard and nowhere else.
        "--restrict-to",
        `127.0.0.1:${spec.wireguardPort}`,
        `wss://0.0.0.0:${spec.listenPort}`,
    ];
}

export function wstunnelClientArgs(spec: Omit<WstunnelClientSpec, "environmentFile">): string[] {
    return [
        "client",
        "--local-to-remote",
        // timeout_sec=0: WireGuard's keepalive, not an idle timer, decides when the flow ends.
        `udp://127.0.0.1:${spec.localPort}:127.0.0.1:${spec.wireguardPort}?timeout_sec=0`,
        "--tls-verify-certificate",
        `wss://${hostForUrl(spec.relayHost)}:${spec.relayPort}`,
    ];
}

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

function unit(description: string, serviceLines: string[]): string {
    return [
        "# Managed by wg-relay: `pulumi up` rewrites this file.",
        "[Unit]",
        `Description=${description}`,
        "Wants=network-online.target",
        "After=network-online.target",
        // WireGuard's endpoint is this tunnel: have it ready first.
        `Before=${wgQuickUnit}`,
        "",
        "[Service]",
        ...serviceLines,
        ...hardening,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

/** The relay's server unit. TLS files come in as systemd credentials so the unprivileged service can read them. */
export function renderWstunnelServerUnit(spec: WstunnelServerSpec): string {
    const args = wstunnelServerArgs({ ...spec, certificateFile: "%d/tls.crt", privateKeyFile: "%d/tls.key" });
    return unit(`wstunnel server for wg-relay: wss on port ${spec.listenPort} to WireGuard on 127.0.0.1:${spec.wireguardPort}`, [
        `EnvironmentFile=${spec.environmentFile}`,
        `LoadCredential=tls.crt:${spec.certificateFile}`,
        `LoadCredential=tls.key:${spec.privateKeyFile}`,
        `ExecStart=${wstunnelBinaryPath} ${args.join(" ")}`,
        // Port 443 without root.
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ]);
}

export function renderWstunnelClientUnit(spec: WstunnelClientSpec): string {
    return unit(`wstunnel client for wg-relay: UDP 127.0.0.1:${spec.localPort} to wss://${spec.relayHost}:${spec.relayPort}`, [
        `EnvironmentFile=${spec.environmentFile}`,
        `ExecStart=${wstunnelBinaryPath} ${wstunnelClientArgs(spec).join(" ")}`,
        "CapabilityBoundingSet=",
    ]);
}

/** The secret environment file of a server or a client (content is secret: it carries the path prefix). */
export function renderWstunnelEnvironment(variable: string, pathPrefix: string): string {
    if (!/^[A-Za-z0-9_-]+$/.test(pathPrefix)) {
        throw new Error("the wstunnel path prefix must be URL- and shell-safe");
    }
    return `${variable}=${pathPrefix}\n`;
}
