// wstunnel on a host: the binary (pinned release verified by SHA-256, or an uploaded binary),
// and the server (relay) or client (gateways, roaming clients) unit with its secret environment file.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { WstunnelConfig } from "./config";
import { Host, removeFilesScript, shellQuote, systemd } from "./host";
import {
    renderWstunnelClientEnvironment,
    renderWstunnelClientUnit,
    renderWstunnelRestrictions,
    renderWstunnelServerUnit,
    WstunnelClientSpec,
    WstunnelServerSpec,
} from "./render/wstunnel";
import { renderWstunnelInstallScript } from "./render/scripts";
import {
    systemdUnitPath,
    trustedCaPath,
    wstunnelBinaryPath,
    wstunnelClientEnvPath,
    wstunnelClientUnit,
    wstunnelInstallScriptPath,
    wstunnelReleaseMarkerPath,
    wstunnelRestrictionsPath,
    wstunnelServerUnit,
} from "./render/paths";

export const githubReleaseBaseUrl = "https://github.com/erebe/wstunnel/releases/download";

/** SHA-256 of a local file, read once per program run. */
export function fileSha256(path: string): string {
    return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Installs /usr/local/bin/wstunnel; a new binary restarts `unit`. */
export function installWstunnelBinary(
    host: Host,
    settings: WstunnelConfig,
    unit: string,
    dependsOn: pulumi.Input<pulumi.Resource>[],
): command.remote.Command {
    const installer = host.writeFile("wstunnel-installer", {
        path: wstunnelInstallScriptPath,
        content: renderWstunnelInstallScript({
            version: settings.version,
            baseUrl: settings.source === "mirror" ? settings.mirrorBaseUrl!.replace(/\/+$/, "") : githubReleaseBaseUrl,
            sha256: settings.sha256,
        }),
        mode: "0755",
        dependsOn,
    });
    const remove = removeFilesScript([wstunnelBinaryPath, wstunnelReleaseMarkerPath]);
    if (settings.source === "local") {
        const sha256 = fileSha256(settings.localBinary!);
        const staged = `/tmp/wg-relay-wstunnel-${sha256.slice(0, 16)}`;
        const upload = host.upload("wstunnel-upload", settings.localBinary!, staged, sha256, { dependsOn });
        return host.run("wstunnel-binary", {
            script: `${wstunnelInstallScriptPath} ${unit} --local ${shellQuote(staged)} ${sha256}`,
            deleteScript: remove,
            dependsOn: [installer, upload],
        });
    }
    return host.run("wstunnel-binary", {
        script: `${wstunnelInstallScriptPath} ${unit}`,
        deleteScript: remove,
        dependsOn: [installer],
    });
}

interface WstunnelServiceArgs {
    role: "server" | "client";
    unit: string;
    unitContent: string;
    /** The root-only file that carries the path prefix: its step, path and content. */
    secretFile: { step: string; path: string; content: pulumi.Input<string> };
    /** Further files the unit reads; each restarts the unit (through `restart`) when it changes. */
    supportingFiles: (restart: string) => command.remote.Command[];
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** A wstunnel unit with its secret file: what the relay's server and every client have in common. */
function deployWstunnelService(host: Host, args: WstunnelServiceArgs): command.remote.Command {
    const restart = systemd.restartIfActive(args.unit);
    const secretFile = host.writeSecretFile(args.secretFile.step, {
        path: args.secretFile.path,
        content: args.secretFile.content,
        onChange: restart,
        dependsOn: args.dependsOn,
    });
    return host.writeFile(`wstunnel-${args.role}-unit`, {
        path: systemdUnitPath(args.unit),
        content: args.unitContent,
        mode: "0644",
        onChange: systemd.reloadRestart(args.unit),
        ensure: systemd.enableStart(args.unit),
        beforeRemove: systemd.disableStop(args.unit),
        afterRemove: systemd.daemonReload,
        dependsOn: [...args.dependsOn, secretFile, ...args.supportingFiles(restart)],
    });
}

export interface WstunnelServerArgs {
    spec: Omit<WstunnelServerSpec, "restrictionsFile">;
    pathPrefix: pulumi.Input<string>;
    /** The stack's server certificate and key to put at spec's paths; absent when the user brings their own files. */
    certificate?: { certPem: pulumi.Input<string>; keyPem: pulumi.Input<string> };
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

export function deployWstunnelServer(host: Host, args: WstunnelServerArgs): command.remote.Command {
    const certificate = args.certificate;
    return deployWstunnelService(host, {
        role: "server",
        unit: wstunnelServerUnit,
        unitContent: renderWstunnelServerUnit({ ...args.spec, restrictionsFile: wstunnelRestrictionsPath }),
        secretFile: {
            step: "wstunnel-server-restrictions",
            path: wstunnelRestrictionsPath,
            content: pulumi.output(args.pathPrefix).apply((pathPrefix) => renderWstunnelRestrictions({ pathPrefix, wireguardPort: args.spec.wireguardPort })),
        },
        supportingFiles: (restart) =>
            certificate
                ? [
                      host.writeFile("tls-certificate", {
                          path: args.spec.certificateFile,
                          content: certificate.certPem,
                          mode: "0644",
                          onChange: restart,
                          dependsOn: args.dependsOn,
                      }),
                      host.writeSecretFile("tls-private-key", {
                          path: args.spec.privateKeyFile,
                          content: certificate.keyPem,
                          onChange: restart,
                          dependsOn: args.dependsOn,
                      }),
                  ]
                : [],
        dependsOn: args.dependsOn,
    });
}

/** A wstunnel client's settings towards a relay: local UDP port in, the relay's wss endpoint out. */
export function wstunnelClientSpec(
    relay: { dialTarget: { host: string; port: number; wireguardPort: number } },
    localPort: number,
): Omit<WstunnelClientSpec, "environmentFile"> {
    return { localPort, relayHost: relay.dialTarget.host, relayPort: relay.dialTarget.port, wireguardPort: relay.dialTarget.wireguardPort };
}

export interface WstunnelClientArgs {
    spec: Omit<WstunnelClientSpec, "environmentFile">;
    pathPrefix: pulumi.Input<string>;
    /** The stack's CA, added to the system trust store so `--tls-verify-certificate` accepts the relay. */
    caCertPem?: pulumi.Input<string>;
    stack: string;
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

export function deployWstunnelClient(host: Host, args: WstunnelClientArgs): command.remote.Command {
    const caCertPem = args.caCertPem;
    return deployWstunnelService(host, {
        role: "client",
        unit: wstunnelClientUnit,
        unitContent: renderWstunnelClientUnit({ ...args.spec, environmentFile: wstunnelClientEnvPath }),
        secretFile: { step: "wstunnel-client-env", path: wstunnelClientEnvPath, content: pulumi.output(args.pathPrefix).apply(renderWstunnelClientEnvironment) },
        supportingFiles: (restart) =>
            caCertPem
                ? [
                      host.writeFile("trusted-ca", {
                          path: trustedCaPath(args.stack),
                          content: caCertPem,
                          mode: "0644",
                          onChange: `update-ca-certificates >/dev/null\n${restart}`,
                          afterRemove: "update-ca-certificates --fresh >/dev/null",
                          dependsOn: args.dependsOn,
                      }),
                  ]
                : [],
        dependsOn: args.dependsOn,
    });
}
