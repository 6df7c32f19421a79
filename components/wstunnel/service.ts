// wstunnel on a host: the binary (pinned release verified by SHA-256, or an uploaded binary),
// and the server (relay) or client (gateways, roaming clients) unit with its secret environment file.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { WstunnelSettings } from "../config";
import { Host, removeFilesScript, systemd, withSteps } from "../host/host";
import { shellQuote } from "../host/shell";
import {
    renderClientCertificatePem,
    renderTlsRenewalPathUnit,
    renderTlsRenewalServiceUnit,
    renderWstunnelClientEnvironment,
    renderWstunnelRestrictions,
    renderWstunnelServerUnit,
    WstunnelClientTls,
    wstunnelClientTlsFiles,
    WstunnelServerSettings,
    wstunnelRestrictionsGroup,
} from "./render";
import { embeddedHostScript, embeddedHostScriptFunction, hostScript, wstunnelInstallCommand } from "../host/scripts";
import { ClientCertificate } from "../pki/relayPki";
import {
    clientCaPath,
    legacyTrustedCaPath,
    systemdUnitPath,
    tlsRenewalScriptPath,
    tlsRenewalServiceUnit,
    wstunnelBinaryPath,
    WstunnelClientFiles,
    wstunnelInstallScriptPath,
    wstunnelReleaseMarkerPath,
    wstunnelRestrictionsPath,
} from "../host/paths";

const fileSha256s = new Map<string, string>();

/** SHA-256 of a local file, read once per program run (every host that gets the binary asks for it). */
export function fileSha256(path: string): string {
    let sha256 = fileSha256s.get(path);
    if (sha256 === undefined) {
        sha256 = createHash("sha256").update(readFileSync(path)).digest("hex");
        fileSha256s.set(path, sha256);
    }
    return sha256;
}

/** Installs /usr/local/bin/wstunnel; a new binary restarts `units` (the server, or a client per relay). */
export function installWstunnelBinary(
    host: Host,
    wstunnel: WstunnelSettings,
    units: string[],
    dependsOn: pulumi.Input<pulumi.Resource>[],
): command.remote.Command {
    const installer = host.writeFile("wstunnel-installer", {
        path: wstunnelInstallScriptPath,
        content: hostScript("wstunnel-install"),
        mode: "0755",
        dependsOn,
    });
    const remove = removeFilesScript([wstunnelBinaryPath, wstunnelReleaseMarkerPath]);
    const binary = wstunnel.binary;
    if (binary.kind === "upload") {
        const sha256 = fileSha256(binary.localBinary);
        const staged = `/tmp/wg-relay-wstunnel-${sha256.slice(0, 16)}`;
        const upload = host.upload("wstunnel-upload", binary.localBinary, staged, sha256, { dependsOn });
        return host.run("wstunnel-binary", {
            script: wstunnelInstallCommand(units, { kind: "upload", stagedFile: staged, sha256 }),
            deleteScript: remove,
            dependsOn: [installer, upload],
        });
    }
    return host.run("wstunnel-binary", {
        script: wstunnelInstallCommand(units, { kind: "download", version: wstunnel.version, baseUrl: binary.baseUrl, sha256: binary.sha256 }),
        deleteScript: remove,
        dependsOn: [installer],
    });
}

interface WstunnelServiceArgs {
    /** Names its unit's step: `wstunnel-<role>-unit`. */
    role: string;
    unit: string;
    unitContent: pulumi.Input<string>;
    /**
     * The root-only file that carries the path prefix or prefixes: its step, path and content; `group` may read it
     * too; `restart`: whether a change restarts the unit (or the service reloads the file itself).
     */
    secretFile: { step: string; path: string; content: pulumi.Input<string>; group?: string; restart: boolean; dependsOn?: pulumi.Input<pulumi.Resource>[] };
    /** Further files the unit reads; each restarts the unit (through `restart`) when it changes. */
    supportingFiles: (restart: string) => command.remote.Command[];
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /** The unit changes only after these as well. */
    unitAfter?: Promise<pulumi.Resource[]>;
}

/** A wstunnel unit with its secret file: what the relay's server and every client have in common. */
function deployWstunnelService(host: Host, args: WstunnelServiceArgs): { unit: command.remote.Command; secretFile: command.remote.Command } {
    const restart = systemd.restartIfActive(args.unit);
    const secretFile = host.writeSecretFile(args.secretFile.step, {
        path: args.secretFile.path,
        content: args.secretFile.content,
        group: args.secretFile.group,
        onChange: args.secretFile.restart ? restart : undefined,
        dependsOn: [...args.dependsOn, ...(args.secretFile.dependsOn ?? [])],
    });
    const unit = host.installServiceUnit(`wstunnel-${args.role}-unit`, {
        unit: args.unit,
        content: args.unitContent,
        dependsOn: withSteps([...args.dependsOn, secretFile, ...args.supportingFiles(restart)], args.unitAfter),
    });
    return { unit, secretFile };
}

export interface WstunnelServerArgs {
    /** Its unit, from the relay's plan. */
    unit: string;
    /** With the user's own certificate files: the path unit, from the relay's plan, that restarts the server when they are renewed. */
    renewalUnit?: string;
    settings: Omit<WstunnelServerSettings, "restrictionsFile" | "clientCaFile">;
    /** Every gateway's and client's path prefix, by name (secrets). */
    peers: { name: string; pathPrefix: pulumi.Input<string> }[];
    /** The stack's server certificate and key to put at the settings' paths; absent when the user brings their own files. */
    certificate?: { certPem: pulumi.Input<string>; keyPem: pulumi.Input<string> };
    /** Mutual TLS: the stack's CA, whose client certificates the server then requires of every connection. */
    clientCaPem?: pulumi.Input<string>;
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /**
     * The peers' staged settings (failover/stagedSwitch.ts): what the peers check the server against (its certificate,
     * the CA it asks client certificates of, its unit) changes only after them. Not the restrictions: peers wait for those.
     */
    switchAfter?: Promise<pulumi.Resource[]>;
}

/** The relay's wstunnel server, and the step that puts the peers' credentials in place (peers wait for it). */
export function deployWstunnelServer(host: Host, args: WstunnelServerArgs): { unit: command.remote.Command; restrictions: command.remote.Command } {
    const certificate = args.certificate;
    const clientCaPem = args.clientCaPem;
    const dependsOn = args.dependsOn;
    // The group that lets the unprivileged server read its restrictions file in place (and so reload it live).
    const group = host.run("wstunnel-group", {
        script: `getent group ${wstunnelRestrictionsGroup} >/dev/null || groupadd --system ${wstunnelRestrictionsGroup}`,
        deleteScript: `groupdel ${wstunnelRestrictionsGroup} 2>/dev/null || true`,
        dependsOn,
    });
    const peers = pulumi.all(args.peers.map((peer) => pulumi.output(peer.pathPrefix).apply((pathPrefix) => ({ name: peer.name, pathPrefix }))));
    const { unit, secretFile } = deployWstunnelService(host, {
        role: "server",
        unit: args.unit,
        unitContent: renderWstunnelServerUnit({ ...args.settings, restrictionsFile: wstunnelRestrictionsPath, clientCaFile: clientCaPem ? clientCaPath : undefined }),
        secretFile: {
            step: "wstunnel-server-restrictions",
            path: wstunnelRestrictionsPath,
            content: peers.apply((credentials) => renderWstunnelRestrictions({ peers: credentials, wireguardPort: args.settings.wireguardPort })),
            group: wstunnelRestrictionsGroup,
            // wstunnel watches the file and reloads it: a peer added or removed leaves every other tunnel up.
            restart: false,
            dependsOn: [group],
        },
        supportingFiles: (restart) => [
            ...(certificate
                ? [
                      host.writeFile("tls-certificate", {
                          path: args.settings.certificateFile,
                          content: certificate.certPem,
                          mode: "0644",
                          onChange: restart,
                          dependsOn: withSteps(dependsOn, args.switchAfter),
                      }),
                      host.writeSecretFile("tls-private-key", {
                          path: args.settings.privateKeyFile,
                          content: certificate.keyPem,
                          onChange: restart,
                          dependsOn: withSteps(dependsOn, args.switchAfter),
                      }),
                  ]
                : []),
            ...(clientCaPem
                ? [host.writeFile("tls-client-ca", { path: clientCaPath, content: clientCaPem, mode: "0644", onChange: restart, dependsOn: withSteps(dependsOn, args.switchAfter) })]
                : []),
        ],
        dependsOn,
        unitAfter: args.switchAfter,
    });
    if (args.renewalUnit !== undefined) {
        watchOwnCertificate(host, args.renewalUnit, { certificateFile: args.settings.certificateFile, privateKeyFile: args.settings.privateKeyFile }, [unit]);
    }
    return { unit, restrictions: secretFile };
}

/**
 * With the user's own certificate files (wstunnel.tls): a path unit restarts the server when they are renewed
 * (renderTlsRenewalPathUnit), so a renewal is served within seconds rather than at the next restart.
 */
function watchOwnCertificate(
    host: Host,
    pathUnit: string,
    files: { certificateFile: string; privateKeyFile: string },
    dependsOn: pulumi.Input<pulumi.Resource>[],
): command.remote.Command {
    const script = host.writeFile("tls-renewal-script", { path: tlsRenewalScriptPath, content: hostScript("tls-renewal"), mode: "0755", dependsOn });
    // Started only by the path unit: a file and a daemon-reload, no enable.
    const service = host.writeFile("tls-renewal-service", {
        path: systemdUnitPath(tlsRenewalServiceUnit),
        content: renderTlsRenewalServiceUnit(files),
        mode: "0644",
        onChange: systemd.daemonReload,
        afterRemove: systemd.daemonReload,
        dependsOn,
    });
    return host.installServiceUnit("tls-renewal-path", { unit: pathUnit, content: renderTlsRenewalPathUnit(files), dependsOn: [script, service] });
}

export interface WstunnelClientArgs {
    /** Its unit file (wstunnelClientUnitContent), rendered once the relay's address is known. */
    unitContent: pulumi.Input<string>;
    /** Which TLS files the unit reads (wstunnelClientTlsFiles): this step puts them in place. */
    tls: WstunnelClientTls;
    /** Its unit, environment file and step names (one wstunnel client per relay). */
    files: WstunnelClientFiles;
    /** This peer's own path prefix (a secret). */
    pathPrefix: pulumi.Input<string>;
    /** The relay's step that makes the prefix valid there: a new prefix is used only once the relay accepts it. */
    relayCredentials: pulumi.Resource;
    /**
     * Every relay's switching steps (key, certificate, CA, unit): what comes from the relays' settings (the unit,
     * the certificate, the trusted CA) is installed for good only after them, having been staged before them.
     */
    relaysSwitched: pulumi.Resource[];
    /** The stack's CA, put in the settings' `caFile`, which every client of the host reads (by the first relay's client). */
    caCertPem?: pulumi.Input<string>;
    /** Mutual TLS: the peer's certificate and key, put in the settings' file (by the first relay's client). */
    clientCertificate?: ClientCertificate;
    /** The host's other wstunnel clients (one per further relay): they read the same CA and certificate, so a change restarts them too. */
    otherClientUnits?: string[];
    /** Names the file earlier versions put in the system's trust store. */
    stack: string;
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * Takes the stack's CA out of the system's trust store, where earlier versions put it (curl, apt, Python and Go
 * trusted it there); a no-op once it is gone.
 */
export function removeLegacyTrustedCaScript(stack: string): string {
    const call = [embeddedHostScriptFunction("remove-legacy-trusted-ca"), legacyTrustedCaPath(stack)].map(shellQuote).join(" ");
    return [embeddedHostScript("remove-legacy-trusted-ca"), call].join("\n");
}

/** A peer's certificate and key in the one file wstunnel reads both from (secret). */
export function clientCertificateFileContent(certificate: ClientCertificate): pulumi.Output<string> {
    return pulumi.all([certificate.certPem, certificate.keyPem]).apply(([certPem, keyPem]) => renderClientCertificatePem(certPem, keyPem));
}

export function deployWstunnelClient(host: Host, args: WstunnelClientArgs): command.remote.Command {
    const caCertPem = args.caCertPem;
    const clientCertificate = args.clientCertificate;
    const { clientCertificateFile: certificateFile, caFile } = wstunnelClientTlsFiles(args.tls);
    const dependsOn = args.dependsOn;
    const restartOthers = (args.otherClientUnits ?? []).map(systemd.restartIfActive);
    return deployWstunnelService(host, {
        role: `client${args.files.stepSuffix}`,
        unit: args.files.unit,
        unitContent: args.unitContent,
        secretFile: {
            step: `wstunnel-client-env${args.files.stepSuffix}`,
            path: args.files.environmentFile,
            content: pulumi.output(args.pathPrefix).apply(renderWstunnelClientEnvironment),
            restart: true,
            dependsOn: [args.relayCredentials],
        },
        supportingFiles: (restart) => [
            ...(caCertPem && caFile
                ? [
                      host.writeFile("trusted-ca", {
                          path: caFile,
                          content: caCertPem,
                          mode: "0644",
                          // wstunnel reads it only when it starts. A host upgraded from the system's trust store
                          // loses that copy after the restart, so the unit restarted here still finds the CA.
                          onChange: [restart, ...restartOthers].join("\n"),
                          ensure: removeLegacyTrustedCaScript(args.stack),
                          dependsOn: [...dependsOn, ...args.relaysSwitched],
                      }),
                  ]
                : []),
            // Certificate and key in one root-only file, replaced at once (the certificate is a secret too: its
            // common name is the path prefix). Like the prefix, a new one is used only once the relay accepts it.
            ...(clientCertificate && certificateFile
                ? [
                      host.writeSecretFile("tls-client-certificate", {
                          path: certificateFile,
                          content: clientCertificateFileContent(clientCertificate),
                          onChange: [restart, ...restartOthers].join("\n"),
                          dependsOn: [...dependsOn, args.relayCredentials, ...args.relaysSwitched],
                      }),
                  ]
                : []),
        ],
        dependsOn: [...dependsOn, ...args.relaysSwitched],
    }).unit;
}
