// wstunnel v10 command lines, their systemd units, and the files holding the path prefix (a secret).
// With mutual TLS the relay also asks every connection for a certificate from the stack's CA, and each peer presents
// its own, whose common name is its path prefix (wstunnel requires the two to be equal).
// The prefix never appears in an argument or a unit, so it shows neither there nor in the process list: the relay
// reads it from a restrictions file, a client from an EnvironmentFile, both root-only. The relay's journal is kept
// free of it too: wstunnel names the accepting rule in every "Tunnel accepted" line, so the rule has a name of ours,
// and the request URIs it prints when rejecting a connection are redacted before they reach the journal.
import {
    clientCertificatePath,
    credentialsDir,
    relayCaPath,
    tlsRenewalScriptPath,
    tlsRenewalServiceUnit,
    wgQuickUnit,
    wstunnelBinaryPath,
    WstunnelClientFiles,
    wstunnelServerUnit,
} from "../host/paths";
import { renderServiceUnit } from "../host/systemd";

export interface WstunnelServerSettings {
    listenPort: number;
    wireguardPort: number;
    certificateFile: string;
    privateKeyFile: string;
    restrictionsFile: string;
    /** Mutual TLS: the CA whose client certificates the server requires. */
    clientCaFile?: string;
}

export interface WstunnelClientSettings {
    localPort: number;
    relayHost: string;
    relayPort: number;
    wireguardPort: number;
    environmentFile: string;
    /** Mutual TLS: the PEM file with the certificate this peer presents and its key (wstunnel reads each from it). */
    clientCertificateFile?: string;
    /**
     * The stack's CA: the only root the relay's certificate is checked against (caFileVariable). Absent with the
     * relay's own, publicly trusted certificate, which the system's trust store vouches for.
     */
    caFile?: string;
}

export const clientPrefixVariable = "WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX";
/**
 * wstunnel 10.6.2 checks the relay's certificate against rustls-native-certs 0.8.4's roots, and that crate reads
 * only this file when it is set (and no SSL_CERT_DIR), never the system's store: so the stack's CA is trusted by
 * wstunnel alone. wstunnel reads it once, when it starts.
 */
export const caFileVariable = "SSL_CERT_FILE";

function hostForUrl(host: string): string {
    return host.includes(":") ? `[${host}]` : host;
}

/** `listenHost`: the address the wss listener binds, as in a URL (`[::]` for IPv6's any address). */
export function wstunnelServerArgs(settings: WstunnelServerSettings, listenHost: string): string[] {
    return [
        "server",
        "--tls-certificate",
        settings.certificateFile,
        "--tls-private-key",
        settings.privateKeyFile,
        // The rules (renderWstunnelRestrictions): the prefix, and local WireGuard as the only destination.
        "--restrict-config",
        settings.restrictionsFile,
        ...(settings.clientCaFile ? ["--tls-client-ca-certs", settings.clientCaFile] : []),
        `wss://${listenHost}:${settings.listenPort}`,
    ];
}

/** The name wstunnel logs for every tunnel a peer opens: the peer's name, never its prefix. */
const restrictionName = (peer: string, wireguardPort: number) => `wg-relay: ${peer} to WireGuard on 127.0.0.1:${wireguardPort}`;

/** A gateway or client with its own upgrade-path prefix (a secret). */
export interface WstunnelPeerCredential {
    name: string;
    pathPrefix: string;
}

/**
 * The server's restrictions (wstunnel's --restrict-config): one rule per peer, matching only that peer's path
 * prefix and allowing UDP to 127.0.0.1 at WireGuard's port and nowhere else (the rule `--restrict-to 127.0.0.1:PORT`
 * with `--restrict-http-upgrade-path-prefix` would make), named after the peer. Removing a peer's rule refuses its
 * next upgrade and nobody else's. Secret content.
 */
export function renderWstunnelRestrictions(settings: { peers: WstunnelPeerCredential[]; wireguardPort: number }): string {
    const lines = ["# Managed by wg-relay: `pulumi up` rewrites this file; wstunnel reloads it when it changes."];
    if (settings.peers.length === 0) {
        return [...lines, "restrictions: []", ""].join("\n");
    }
    lines.push("restrictions:");
    for (const peer of settings.peers) {
        assertSafePrefix(peer.pathPrefix);
        lines.push(
            `  - name: "${restrictionName(peer.name, settings.wireguardPort)}"`,
            "    match:",
            `      - !PathPrefix "^${peer.pathPrefix}$"`,
            "    allow:",
            "      - !Tunnel",
            "        protocol: [Udp]",
            `        port: ["${settings.wireguardPort}"]`,
            // An IP destination leaves the host name empty; cidr then has the final word.
            '        host: "^$"',
            "        cidr: [127.0.0.1/32]",
        );
    }
    return [...lines, ""].join("\n");
}

export function wstunnelClientArgs(settings: Omit<WstunnelClientSettings, "environmentFile">): string[] {
    return [
        "client",
        "--local-to-remote",
        // timeout_sec=0: WireGuard's keepalive, not an idle timer, decides when the flow ends.
        `udp://127.0.0.1:${settings.localPort}:127.0.0.1:${settings.wireguardPort}?timeout_sec=0`,
        "--tls-verify-certificate",
        ...(settings.clientCertificateFile ? ["--tls-certificate", settings.clientCertificateFile, "--tls-private-key", settings.clientCertificateFile] : []),
        `wss://${hostForUrl(settings.relayHost)}:${settings.relayPort}`,
    ];
}

function unit(description: string, serviceLines: string[]): string {
    return renderServiceUnit({
        description,
        // WireGuard's endpoint is this tunnel: have it ready first.
        order: [`Before=${wgQuickUnit}`],
        // Plain text in the journal, without colour codes.
        service: ["Environment=NO_COLOR=true", ...serviceLines],
    });
}

/**
 * wstunnel prints the request URI, which starts with the path prefix, in its "Rejecting connection" warnings, and
 * with mutual TLS both the requested path and the certificate's common name (a prefix too) when they differ: sed
 * replaces them in those lines before they reach the journal. bash execs wstunnel with its output going to sed
 * (a process substitution), so wstunnel itself is the unit's main process: systemd signals it directly and sees its
 * exit status, and sed ends when wstunnel's output closes.
 */
export const logRedaction = [
    "sed -u -E",
    "-e '/Rejecting connection/s#/[^ ]*#/<path redacted>#g'",
    "-e '/does not match upgrade path restriction/{s#path [^ ]+ does#path <redacted> does#;s#restriction [^ ]+#restriction <redacted>#}'",
].join(" ");

/** The group whose members (only the relay's wstunnel server) may read the restrictions file. */
export const wstunnelRestrictionsGroup = "wg-relay-wstunnel";

/**
 * The relay's server unit. The TLS files come in as systemd credentials, so the unprivileged service reads them
 * although they are root-only on disk. The restrictions file it reads in place, as a member of the file's group:
 * wstunnel watches the file it was given and reloads it when it changes, and a credential would be a copy taken
 * at start, so peers are added and revoked without a restart that would drop every tunnel.
 */
export function renderWstunnelServerUnit(settings: WstunnelServerSettings): string {
    // Both families where the host has IPv6: Linux's [::] socket takes IPv4 too while net.ipv6.bindv6only is 0
    // (every distribution's default). A kernel without IPv6 has no such file, and one set to 1 would lose IPv4 on
    // [::]: IPv4 only there. Decided by bash at each start ($$ is systemd's escape for bash's $).
    const listenChoice = "listen=0.0.0.0; read -r v6only 2>/dev/null </proc/sys/net/ipv6/bindv6only && [ $$v6only = 0 ] && listen=[::];";
    const args = wstunnelServerArgs(
        {
            ...settings,
            certificateFile: "%d/tls.crt",
            privateKeyFile: "%d/tls.key",
            clientCaFile: settings.clientCaFile ? "%d/client-ca.crt" : undefined,
        },
        "$${listen}",
    );
    return unit(`wstunnel server for wg-relay: wss on port ${settings.listenPort} to WireGuard on 127.0.0.1:${settings.wireguardPort}`, [
        `LoadCredential=tls.crt:${settings.certificateFile}`,
        `LoadCredential=tls.key:${settings.privateKeyFile}`,
        ...(settings.clientCaFile ? [`LoadCredential=client-ca.crt:${settings.clientCaFile}`] : []),
        `SupplementaryGroups=${wstunnelRestrictionsGroup}`,
        `ExecStart=/bin/bash -c "${listenChoice} exec ${wstunnelBinaryPath} ${args.join(" ")} > >(exec ${logRedaction}) 2>&1"`,
        "SyslogIdentifier=wstunnel",
        // Port 443 without root.
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ]);
}

/**
 * With the user's own certificate files (wstunnel.tls): the path unit that runs tls-renewal when they change. The
 * server takes copies at start (credentials), so wstunnel's own watch of its files (inotify and a 5-minute poll,
 * `tunnel/tls_reloader.rs` in 10.6.2) never sees a renewal. Each file and its folder are watched: a file written in
 * place changes the file; a renewal that points symlinks to new files (certbot's `live/` to `archive/`) changes the
 * folder, and systemd 252's watch on the file alone misses a symlink replaced by a rename (seen in the lab).
 */
export function renderTlsRenewalPathUnit(settings: { certificateFile: string; privateKeyFile: string }): string {
    const files = [settings.certificateFile, settings.privateKeyFile];
    const watched = [...new Set([...files, ...files.map((file) => file.slice(0, file.lastIndexOf("/")) || "/")])];
    return [
        "# Managed by wg-relay: `pulumi up` rewrites this file.",
        "[Unit]",
        "Description=Renewals of the relay's own TLS certificate files for wg-relay's wstunnel server",
        "",
        "[Path]",
        ...watched.map((path) => `PathChanged=${path}`),
        `Unit=${tlsRenewalServiceUnit}`,
        "",
        "[Install]",
        "WantedBy=paths.target",
        "",
    ].join("\n");
}

/** The service the path unit runs: tls-renewal, as root (it reads the root-only files and restarts the server). */
export function renderTlsRenewalServiceUnit(settings: { certificateFile: string; privateKeyFile: string }): string {
    const args = [tlsRenewalScriptPath, wstunnelServerUnit, credentialsDir(wstunnelServerUnit), settings.certificateFile, settings.privateKeyFile];
    return [
        "# Managed by wg-relay: `pulumi up` rewrites this file.",
        "[Unit]",
        "Description=Restarts wg-relay's wstunnel server when the relay's own TLS certificate files were renewed",
        "",
        "[Service]",
        "Type=oneshot",
        `ExecStart=${args.join(" ")}`,
        "",
    ].join("\n");
}

/**
 * A client's unit; its certificate and key (a root-only file) come in as a systemd credential, like the server's.
 * The CA file is public and read in place (the unit's dynamic user can read it).
 */
export function renderWstunnelClientUnit(settings: WstunnelClientSettings): string {
    const certificate = settings.clientCertificateFile;
    const args = wstunnelClientArgs({ ...settings, clientCertificateFile: certificate ? "%d/client.pem" : undefined });
    return unit(`wstunnel client for wg-relay: UDP 127.0.0.1:${settings.localPort} to wss://${settings.relayHost}:${settings.relayPort}`, [
        ...(settings.caFile ? [`Environment=${caFileVariable}=${settings.caFile}`] : []),
        `EnvironmentFile=${settings.environmentFile}`,
        ...(certificate ? [`LoadCredential=client.pem:${certificate}`] : []),
        `ExecStart=${wstunnelBinaryPath} ${args.join(" ")}`,
        "CapabilityBoundingSet=",
    ]);
}

/**
 * A peer's certificate with its key, one PEM file for wstunnel's `--tls-certificate` and `--tls-private-key` (each
 * reads its own kind of block from it), so the two are always replaced together. Secret content.
 */
export function renderClientCertificatePem(certPem: string, keyPem: string): string {
    return `${certPem.trim()}\n${keyPem.trim()}\n`;
}

/** A client's secret environment file: it carries the path prefix. */
export function renderWstunnelClientEnvironment(pathPrefix: string): string {
    assertSafePrefix(pathPrefix);
    return `${clientPrefixVariable}=${pathPrefix}\n`;
}

function assertSafePrefix(pathPrefix: string): void {
    // Also what keeps it a literal inside the restrictions' regular expression.
    if (!/^[A-Za-z0-9_-]+$/.test(pathPrefix)) {
        throw new Error("the wstunnel path prefix must be URL- and shell-safe");
    }
}

/**
 * A wstunnel client's settings towards a relay: its local UDP port for that relay in, the relay's wss server out;
 * with mutual TLS, the peer's certificate file, and with the stack's CA (`stackCa`: the relays' certificates are
 * the stack's), that CA's file (one of each per host, for every relay).
 */
export function wstunnelClientSettings(
    relay: {
        wstunnelLocalPort: number;
        address: { host: string; wstunnelPort: number; wireguardPort: number };
    },
    tls: WstunnelClientTls,
): Omit<WstunnelClientSettings, "environmentFile"> {
    return {
        localPort: relay.wstunnelLocalPort,
        relayHost: relay.address.host,
        relayPort: relay.address.wstunnelPort,
        wireguardPort: relay.address.wireguardPort,
        ...wstunnelClientTlsFiles(tls),
    };
}

/** With mutual TLS and with the stack's CA (the relays' certificates are the stack's): which TLS files a wstunnel client reads. */
export interface WstunnelClientTls {
    mutualTls: boolean;
    stackCa: boolean;
}

/** The TLS files a wstunnel client reads, the same towards every relay. */
export function wstunnelClientTlsFiles(tls: WstunnelClientTls): Pick<WstunnelClientSettings, "clientCertificateFile" | "caFile"> {
    return {
        ...(tls.mutualTls ? { clientCertificateFile: clientCertificatePath } : {}),
        ...(tls.stackCa ? { caFile: relayCaPath } : {}),
    };
}

/** A wstunnel client's unit file towards one relay: installed by deployWstunnelClient, staged before (provisionPeerHost). */
export function wstunnelClientUnitContent(settings: Omit<WstunnelClientSettings, "environmentFile">, files: WstunnelClientFiles): string {
    return renderWstunnelClientUnit({ ...settings, environmentFile: files.environmentFile });
}
