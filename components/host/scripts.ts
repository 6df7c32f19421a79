// The scripts installed on hosts under /usr/local/lib/wg-relay/ are real files in components/host-scripts/, pushed
// as they are; the program passes their values as arguments. Here: their text, and the command lines that run them.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { WstunnelArchitecture, wstunnelArchitectures } from "../config";
import { shellQuote } from "./shell";
import {
    appliedConfPath,
    publicKeysPath,
    sysctlApplyScriptPath,
    sysctlBeforePath,
    sysctlNotSetPath,
    sysctlPath,
    wgApplyScriptPath,
    wireguardConfPath,
    wireguardTemplatePath,
    wstunnelBinaryPath,
    wstunnelInstallScriptPath,
    wstunnelReleaseMarkerPath,
    wstunnelUnitPattern,
} from "./paths";
import { congestionControlKey } from "./sysctl";

export const hostScriptsDir = join(__dirname, "..", "host-scripts");

/** The scripts the steps install on a host, under /usr/local/lib/wg-relay/. */
export type InstalledHostScript = "wg-apply" | "wstunnel-install" | "wg-failover" | "wg-transport" | "sysctl-apply" | "unit-stays-up" | "tls-renewal" | "staged-switch";
/** The scripts that travel in a command instead (embeddedHostScript). */
export type EmbeddedHostScript = "write-file" | "install-packages" | "interface-check" | "remove-legacy-trusted-ca" | "doctor-probe";

export function hostScript(name: InstalledHostScript | EmbeddedHostScript): string {
    return readFileSync(join(hostScriptsDir, `${name}.sh`), "utf8");
}

/**
 * A host script carried in the command that runs it rather than installed: write-file, install-packages and
 * interface-check run before any of wg-relay's files are on a host, and the doctor installs nothing. The file becomes the sh function
 * of its name (write-file: write_file), run in a subshell so that its `set` and `exit` stay its own; its comment
 * lines stay in the file, out of every step's command.
 */
export function embeddedHostScript(name: EmbeddedHostScript): string {
    const text = hostScript(name);
    if (text.includes("<<")) {
        throw new Error(`${name}.sh: a here-document's lines would be taken for the script's own (comments are left out)`);
    }
    const code = text
        .split("\n")
        .filter((line) => line.trim() !== "" && !line.trimStart().startsWith("#"));
    return `${embeddedHostScriptFunction(name)}() (\n${code.join("\n")}\n)`;
}

/** The function embeddedHostScript defines: the script's name in sh's spelling (write_file). */
export function embeddedHostScriptFunction(name: EmbeddedHostScript): string {
    return name.replace(/-/g, "_");
}

/**
 * Runs wg-apply on wg0. `whenComplete`: from a step that writes a key, which runs before the template's own step
 * and may find a template that names a key not written yet.
 */
export function wgApplyCommand(options: { whenComplete: boolean }): string {
    return [wgApplyScriptPath, ...(options.whenComplete ? ["--when-complete"] : []), wireguardTemplatePath, publicKeysPath, wireguardConfPath, appliedConfPath].join(" ");
}

/**
 * Applies the sysctl file setting by setting: what may stay unset is named, what must be set fails the step; the
 * host's own value of each setting it changes is kept for sysctlRestoreCommand. A connection keeps the congestion
 * control it was opened with: when applying the file changed the host's, wstunnel reconnects under the new one (and
 * only then: a file put back by a repair restarts nothing).
 */
export const sysctlApplyCommand = [
    sysctlApplyScriptPath,
    "--restart-when-changed",
    congestionControlKey,
    wstunnelUnitPattern,
    sysctlPath,
    sysctlNotSetPath,
    sysctlBeforePath,
]
    .map(shellQuote)
    .join(" ");
/** Puts back the values the host had before sysctlApplyCommand changed them. */
export const sysctlRestoreCommand = `${sysctlApplyScriptPath} --restore ${sysctlBeforePath}`;

export type WstunnelInstallation =
    | { kind: "download"; version: string; baseUrl: string; sha256: Partial<Record<WstunnelArchitecture, string>> }
    | { kind: "upload"; stagedFile: string; sha256: string };

/** Runs wstunnel-install; `units` are restarted (each when running) only if a new binary went in. */
export function wstunnelInstallCommand(units: string[], installation: WstunnelInstallation): string {
    const common = [wstunnelInstallScriptPath, units.join(","), wstunnelBinaryPath, wstunnelReleaseMarkerPath];
    const args =
        installation.kind === "upload"
            ? ["upload", installation.stagedFile, installation.sha256]
            : ["download", installation.version, installation.baseUrl, ...wstunnelArchitectures.map((arch) => installation.sha256[arch] ?? "")];
    return [...common, ...args].map(shellQuote).join(" ");
}
