// npm run doctor [-- --stack NAME] [--json]: checks every host of the stack against what the stack declares, over
// SSH with the stack's own key and pinned host keys: units, WireGuard peers (missing, added by hand, AllowedIPs),
// handshakes, firewall rules, forwarding, the wstunnel binary; and from here, the relay's certificate and that its
// wss port answers TLS. One table per host (or JSON); exits 1 when something is wrong. Run it where you run `pulumi up`.
//
// The check functions are pure; the runner at the bottom is the only part that calls `pulumi`, `ssh` and the network.
// The SSH private key goes into a 0600 file in a 0700 temporary folder, removed afterwards; it is never in an argument.
// Nothing secret is printed: the hosts report public keys, unit states, rule checks and digests only.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { parseArgs } from "node:util";
import { ConfigError, Network, parseStackConfig, SshSettings, sshPrivateKeyKey, stackConfigValues, wstunnelArchitectureOf } from "../components/config";
import type { DeclaredHost, HostRole } from "../components/plan/declaredHosts";
import type { ClientCertificateValidity } from "../components/pki/relayPki";
import { isIpv4 } from "../components/net";
import { defaultRouteInterface, hostInterfaceFunctions } from "../components/host/interfaces";
import { embeddedHostScript, embeddedHostScriptFunction } from "../components/host/scripts";
import { shellQuote } from "../components/host/shell";
import { sysctlNotSetPath, sysctlPath, wgApplyScriptPath, wireguardInterface, wstunnelBinaryPath, wstunnelClientUnitPattern, wstunnelReleaseMarkerPath } from "../components/host/paths";

// ---------------------------------------------------------------------------------------------------------------
// What a host reports
// ---------------------------------------------------------------------------------------------------------------

/** A handshake older than this means no session: WireGuard renews a live one every 2 minutes. */
export const staleHandshakeSeconds = 180;
/** The stack renews its certificates in their last 30 days (components/pki/relayPki.ts). */
const renewalDays = 30;

/** The interfaces other than wg0 that the rules match packets on (`-i NAME`, `-o NAME`), in order of appearance. */
export function ruleInterfaces(rules: string[]): string[] {
    const names = rules.flatMap((rule) => [...rule.matchAll(/ -[io] (\S+)/g)].map((match) => match[1]));
    return [...new Set(names.filter((name) => name !== "%i"))];
}

/** A rule as the table shows it: its table when not filter, chain and match, wg0 for %i. */
function describeRule(rule: string): string {
    return rule
        .replace(/^ip(6?)tables (?:-t ([a-z]+) )?-[AI] /, (_, six: string, table: string | undefined) => `${six ? "IPv6 " : ""}${table ? `${table} ` : ""}`)
        .replace(/ -m comment --comment wg-relay$/, "")
        .replace(/%i/g, wireguardInterface);
}

/**
 * What the doctor sends to a host's `sh -s`, as root: doctor-probe.sh, which prints one tab-separated fact per line
 * (parseProbe), never a secret, called with what the host declares; the declared rules on its stdin.
 */
export function probeScript(declared: DeclaredHost): string {
    const args = [
        ["--wireguard", wireguardInterface, "--client-units", wstunnelClientUnitPattern],
        // A rule on an interface the host does not have is accepted by iptables and never matches.
        ruleInterfaces(declared.firewallRules).length > 0 ? ["--interfaces"] : [],
        declared.firewallRules.length > 0 ? ["--rules", wgApplyScriptPath] : [],
        declared.forwarding ? ["--forwarding", sysctlPath, sysctlNotSetPath] : [],
        declared.wstunnel ? ["--wstunnel", wstunnelBinaryPath, wstunnelReleaseMarkerPath] : [],
        ["--", ...declared.units],
    ].flat();
    return [
        embeddedHostScript("doctor-probe"),
        hostInterfaceFunctions,
        // The rules as declared: the host's wg-apply reads them as it does when it puts a missing one back.
        `${embeddedHostScriptFunction("doctor-probe")} ${args.map(shellQuote).join(" ")} <<'WG_RELAY_RULES'`,
        ...declared.firewallRules,
        "WG_RELAY_RULES",
        "",
    ].join("\n");
}

export interface Observed {
    /** The host's clock (seconds since the epoch). */
    now: number;
    /** `systemctl is-active` per unit. */
    units: Record<string, string>;
    /** The wstunnel client units running, declared or not. */
    runningUnits?: string[];
    /** Absent when wg0 is not up. */
    wireguard?: { publicKey: string; peers: Record<string, { allowedIps: string[]; latestHandshake: number }> };
    /** By index into the declared firewall rules: unknown is a rule the host's wg-apply cannot read. */
    rules: Record<number, "present" | "missing" | "unknown">;
    /** wg-apply's exit status when it could not check the rules (absent, or older than --check-rules). */
    rulesUnchecked?: string;
    /** The host's interfaces, and the one of its default route (empty without one). */
    interfaces?: { defaultRoute: string; names: string[] };
    forwarding?: { inEffect: string; file: boolean };
    /** The sysctl file's optional settings the host did not take: "KEY = VALUE: why". */
    sysctlNotSet?: string[];
    wstunnel?: { binarySha256: string; releaseSha256: string; machine: string };
}

export function parseProbe(text: string): Observed {
    const observed: Observed = { now: 0, units: {}, rules: {} };
    const peer = (key: string) => {
        observed.wireguard ??= { publicKey: "", peers: {} };
        return (observed.wireguard.peers[key] ??= { allowedIps: [], latestHandshake: 0 });
    };
    for (const line of text.split("\n")) {
        const [tag, ...fields] = line.split("\t");
        switch (tag) {
            case "now":
                observed.now = Number(fields[0]);
                break;
            case "unit":
                observed.units[fields[0]] = fields[1] || "unknown";
                break;
            case "running-unit":
                (observed.runningUnits ??= []).push(fields[0]);
                break;
            case "wg-public-key":
                observed.wireguard = { peers: {}, ...observed.wireguard, publicKey: fields[0] };
                break;
            case "wg-allowed-ips":
                peer(fields[0]).allowedIps = fields[1] === "(none)" ? [] : fields[1].split(" ").filter(Boolean);
                break;
            case "wg-handshake":
                peer(fields[0]).latestHandshake = Number(fields[1]);
                break;
            case "rule":
                if (fields[1] === "present" || fields[1] === "missing" || fields[1] === "unknown") {
                    observed.rules[Number(fields[0])] = fields[1];
                }
                break;
            case "rules-unchecked":
                observed.rulesUnchecked = fields[0];
                break;
            case "interfaces":
                observed.interfaces = { defaultRoute: fields[0] ?? "", names: (fields[1] ?? "").split(" ").filter(Boolean) };
                break;
            case "forwarding":
                observed.forwarding = { inEffect: fields[0], file: fields[1] === "present" };
                break;
            case "sysctl-not-set":
                (observed.sysctlNotSet ??= []).push(fields.join("\t"));
                break;
            case "wstunnel":
                observed.wstunnel = { binarySha256: fields[0], releaseSha256: fields[1], machine: fields[2] };
                break;
        }
    }
    return observed;
}

// ---------------------------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------------------------

export type Status = "ok" | "warn" | "fail";

export interface Finding {
    check: string;
    status: Status;
    detail: string;
}

export interface HostReport {
    name: string;
    role: HostRole;
    /** user@host[:port], and the jump host when there is one. */
    address: string;
    ok: boolean;
    findings: Finding[];
}

export interface Report {
    ok: boolean;
    hosts: HostReport[];
}

const ok = (check: string, detail: string): Finding => ({ check, status: "ok", detail });
const fail = (check: string, detail: string): Finding => ({ check, status: "fail", detail });

function age(seconds: number): string {
    if (seconds < 120) {
        return `${seconds} s ago`;
    }
    if (seconds < 2 * 3600) {
        return `${Math.floor(seconds / 60)} min ago`;
    }
    return seconds < 2 * 86400 ? `${Math.floor(seconds / 3600)} h ago` : `${Math.floor(seconds / 86400)} days ago`;
}

const sameSet = (a: string[], b: string[]) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());

function checkUnits(declared: DeclaredHost, observed: Observed): Finding[] {
    const undeclared = (observed.runningUnits ?? []).filter((unit) => !declared.units.includes(unit));
    return [
        ...declared.units.map((unit) => {
            const state = observed.units[unit] ?? "unknown";
            return state === "active" ? ok(`unit ${unit}`, "active") : fail(`unit ${unit}`, `${state}, not active`);
        }),
        ...undeclared.map((unit) => fail(`unit ${unit}`, "running, but the stack declares no such wstunnel client here (left from an earlier config?): stop, disable and remove it")),
    ];
}

function checkWireguard(declared: DeclaredHost, observed: Observed): Finding[] {
    const live = observed.wireguard;
    if (live === undefined) {
        return [fail(wireguardInterface, "not up")];
    }
    const findings = [
        live.publicKey === declared.publicKey
            ? ok(`${wireguardInterface} key`, `public key ${live.publicKey}`)
            : fail(`${wireguardInterface} key`, `public key ${live.publicKey}, declared ${declared.publicKey}`),
    ];
    // A failover client's LAN routes may sit on any one relay's peer: compare the rest, then find where they are.
    const movable = new Set(declared.failoverRoutes ?? []);
    const fixed = (allowedIps: string[]) => allowedIps.filter((cidr) => !movable.has(cidr));
    for (const peer of declared.peers) {
        const found = live.peers[peer.publicKey];
        if (found === undefined) {
            findings.push(fail(`peer ${peer.name}`, `missing (public key ${peer.publicKey})`));
            continue;
        }
        findings.push(
            sameSet(fixed(found.allowedIps), fixed(peer.allowedIps))
                ? ok(`peer ${peer.name}`, `AllowedIPs ${fixed(peer.allowedIps).join(", ")}`)
                : fail(`peer ${peer.name}`, `AllowedIPs ${fixed(found.allowedIps).join(", ") || "(none)"}, declared ${fixed(peer.allowedIps).join(", ")}`),
        );
        const handshake = found.latestHandshake === 0 ? undefined : Math.max(0, observed.now - found.latestHandshake);
        const when = handshake === undefined ? "never" : age(handshake);
        if (!peer.alwaysOn) {
            findings.push(ok(`handshake ${peer.name}`, `${when} (a roaming client: informational)`));
        } else if (handshake === undefined || handshake > staleHandshakeSeconds) {
            findings.push(fail(`handshake ${peer.name}`, `${when}: no session (renewed every 2 min while the tunnel is up)`));
        } else {
            findings.push(ok(`handshake ${peer.name}`, when));
        }
    }
    if (movable.size > 0) {
        findings.push(checkFailoverRoutes(declared, live.peers));
    }
    const declaredKeys = new Set(declared.peers.map((peer) => peer.publicKey));
    for (const [key, found] of Object.entries(live.peers)) {
        if (!declaredKeys.has(key)) {
            findings.push(fail("peer not declared", `${key} (AllowedIPs ${found.allowedIps.join(", ") || "(none)"}): added by hand`));
        }
    }
    return findings;
}

/** The failover unit keeps all of a client's LAN routes on one relay's peer: its primary's, or the next that answers. */
function checkFailoverRoutes(declared: DeclaredHost, livePeers: NonNullable<Observed["wireguard"]>["peers"]): Finding {
    const routes = declared.failoverRoutes ?? [];
    const primary = declared.peers.find((peer) => routes.every((cidr) => peer.allowedIps.includes(cidr)));
    const holders = declared.peers.filter((peer) => routes.some((cidr) => livePeers[peer.publicKey]?.allowedIps.includes(cidr)));
    const holder = holders[0];
    if (holders.length !== 1 || !routes.every((cidr) => livePeers[holder.publicKey].allowedIps.includes(cidr))) {
        const where = holders.map((peer) => peer.name).join(", ") || "no peer";
        return fail("failover routes", `${routes.join(", ")} not all on one relay's peer (found on ${where})`);
    }
    return ok("failover routes", `${routes.join(", ")} on ${holder.name}${holder === primary ? " (primary)" : " (failed over: its primary did not answer)"}`);
}

/** Each interface the rules name exists on the host: iptables takes any name, and a rule on a missing one never matches. */
function checkInterfaces(declared: DeclaredHost, observed: Observed): Finding[] {
    const found = observed.interfaces ?? { defaultRoute: "", names: [] };
    const list = found.names.join(", ") || "none reported";
    return ruleInterfaces(declared.firewallRules).map((name) => {
        if (name === defaultRouteInterface) {
            return found.defaultRoute
                ? ok(`interface ${name}`, `${found.defaultRoute}, the interface of the default route`)
                : fail(`interface ${name}`, `no default route, whose interface the rules name (this host's interfaces: ${list})`);
        }
        return found.names.includes(name)
            ? ok(`interface ${name}`, "exists")
            : fail(`interface ${name}`, `not an interface of this host: the rules on it never match (this host's interfaces: ${list})`);
    });
}

function checkFirewall(declared: DeclaredHost, observed: Observed): Finding[] {
    if (declared.firewallRules.length > 0 && observed.rulesUnchecked !== undefined) {
        return [fail("firewall rules", `not checked: ${wgApplyScriptPath} --check-rules failed (status ${observed.rulesUnchecked}); \`pulumi up\` installs this version's`)];
    }
    return declared.firewallRules.map((rule, index) => {
        const check = `rule ${describeRule(rule)}`;
        switch (observed.rules[index]) {
            case "present":
                return ok(check, "present");
            case "unknown":
                return fail(check, "not a rule wg-apply can check");
            default:
                return fail(check, "missing");
        }
    });
}

function checkForwarding(declared: DeclaredHost, observed: Observed): Finding[] {
    if (!declared.forwarding) {
        return [];
    }
    const forwarding = observed.forwarding;
    return [
        forwarding?.inEffect === "1" ? ok("forwarding", "net.ipv4.ip_forward = 1") : fail("forwarding", `net.ipv4.ip_forward = ${forwarding?.inEffect || "unknown"}`),
        forwarding?.file ? ok("sysctl file", sysctlPath) : fail("sysctl file", `${sysctlPath} missing: forwarding is off after the next boot`),
        ...(observed.sysctlNotSet ?? []).map(
            (line): Finding => ({ check: `sysctl ${line.split(" = ")[0]}`, status: "warn", detail: `not set: ${line.slice(line.indexOf(" = ") + 3)}` }),
        ),
    ];
}

function checkWstunnel(declared: DeclaredHost, observed: Observed): Finding[] {
    const want = declared.wstunnel;
    if (want === undefined) {
        return [];
    }
    const found = observed.wstunnel;
    if (!found?.binarySha256) {
        return [fail("wstunnel binary", `${wstunnelBinaryPath} missing`)];
    }
    if (want.kind === "upload") {
        return [
            found.binarySha256 === want.binarySha256
                ? ok("wstunnel binary", `sha256 ${found.binarySha256}`)
                : fail("wstunnel binary", `sha256 ${found.binarySha256}, declared ${want.binarySha256}`),
        ];
    }
    const arch = wstunnelArchitectureOf(found.machine);
    const archive = arch === undefined ? undefined : want.archiveSha256[arch];
    if (archive === undefined) {
        return [fail("wstunnel binary", `no checksum declared for this host's architecture (${found.machine})`)];
    }
    return [
        found.releaseSha256 === archive
            ? ok("wstunnel binary", `release ${want.version} (${arch}), archive sha256 ${archive}`)
            : fail("wstunnel binary", `installed from archive sha256 ${found.releaseSha256 || "unknown"}, declared ${archive} (release ${want.version}, ${arch})`),
    ];
}

/** Every check of one host from what it reported. */
export function checkHost(declared: DeclaredHost, observed: Observed): Finding[] {
    return [
        ...checkUnits(declared, observed),
        ...checkWireguard(declared, observed),
        ...checkInterfaces(declared, observed),
        ...checkFirewall(declared, observed),
        ...checkForwarding(declared, observed),
        ...checkWstunnel(declared, observed),
    ];
}

export interface RelayEndpoint {
    url: string;
    /** RFC 3339 expiry of the stack's CA and server certificate; undefined with the user's own certificate files. */
    certificateExpiry?: { ca: string; server: string };
    /** The TLS handshake with the relay's wstunnel port from here: undefined when it succeeded, else why not. */
    tlsError?: string;
    /** The end of the certificate the port served (a date Date parses), when it served one. */
    servedNotAfter?: string;
}

/** What renews a certificate: said in a warning, and when it has expired. */
const renewedByPulumiUp = "the next pulumi up renews it";

function checkExpiry(check: string, expiry: string, now: Date, renewal = renewedByPulumiUp): Finding {
    const end = new Date(expiry);
    if (Number.isNaN(end.getTime())) {
        return { check, status: "warn", detail: `expiry unreadable: ${expiry}` };
    }
    const days = Math.floor((end.getTime() - now.getTime()) / 86_400_000);
    const until = `until ${end.toISOString().slice(0, 10)}`;
    if (end.getTime() <= now.getTime()) {
        return fail(check, `expired ${-days} days ago (${until}): ${renewal === renewedByPulumiUp ? "run pulumi up" : renewal}`);
    }
    if (days < renewalDays) {
        return { check, status: "warn", detail: `${days} days left (${until}): ${renewal}` };
    }
    return ok(check, `${days} days left (${until})`);
}

/**
 * The relay's checks made from here: its certificates' days to expiry, and its wss port answering TLS. With the
 * user's own files (wstunnel.tls) the expiry is that of the certificate the port serves: the stack does not renew it.
 */
export function checkRelayEndpoint(endpoint: RelayEndpoint, now: Date): Finding[] {
    const expiry = endpoint.certificateExpiry;
    const ownRenewal = "renew the relay's own certificate files (wstunnel.tls); the relay serves renewed files within seconds";
    const certificates = expiry
        ? [checkExpiry("server certificate", expiry.server, now), checkExpiry("CA certificate", expiry.ca, now)]
        : endpoint.servedNotAfter !== undefined
          ? [checkExpiry("server certificate", endpoint.servedNotAfter, now, ownRenewal)]
          : [fail("server certificate", "the relay's own certificate files (wstunnel.tls): none served, so its expiry is unknown")];
    const port = endpoint.url.replace(/^wss:\/\//, "");
    return [
        ...certificates,
        endpoint.tlsError === undefined ? ok("wss port", `${port} answers TLS with a certificate that verifies`) : fail("wss port", `${port}: ${endpoint.tlsError}`),
    ];
}

/**
 * With mutual TLS, a gateway's or client's certificate (the clientCertificateExpiry output). A host reached over SSH
 * gets the renewed one from the next `pulumi up`. A device without SSH keeps the file it was given and needs new
 * files (`npm run client-files`) after each renewal: for 30 days after a certificate was made, a device with older
 * files may hold the one it replaced (renewed in its last 30 days), which expires by then.
 */
export function checkClientCertificate(name: string, validity: ClientCertificateValidity, bundleOnly: boolean, now: Date): Finding {
    const check = "client certificate";
    if (!bundleOnly) {
        return checkExpiry(check, validity.expires, now);
    }
    const newFiles = `npm run client-files -- ${name}`;
    const expiry = checkExpiry(check, validity.expires, now, `the next pulumi up renews it; then give the device its new files: ${newFiles}`);
    const issued = new Date(validity.issued);
    const replacedExpiresBy = new Date(issued.getTime() + renewalDays * 86_400_000);
    if (expiry.status !== "ok" || Number.isNaN(issued.getTime()) || replacedExpiresBy.getTime() <= now.getTime()) {
        return expiry;
    }
    const day = (date: Date) => date.toISOString().slice(0, 10);
    return {
        check,
        status: "warn",
        detail:
            `made ${day(issued)}, ${expiry.detail}: a device given its files before then holds the certificate this one replaced, ` +
            `which stops working by ${day(replacedExpiresBy)}; give it its new files: ${newFiles}`,
    };
}

export function hostReport(host: { name: string; role: HostRole; address: string }, findings: Finding[]): HostReport {
    return { ...host, ok: findings.every((finding) => finding.status !== "fail"), findings };
}

export function report(hosts: HostReport[]): Report {
    return { ok: hosts.every((host) => host.ok), hosts };
}

/** One table per host: STATUS, CHECK, DETAIL; problems in capitals. */
export function renderTable(result: Report): string {
    const sections = result.hosts.map((host) => {
        const problems = host.findings.filter((finding) => finding.status === "fail").length;
        const warnings = host.findings.filter((finding) => finding.status === "warn").length;
        const summary = problems > 0 ? `${problems} problem${problems === 1 ? "" : "s"}` : warnings > 0 ? `healthy, ${warnings} warning${warnings === 1 ? "" : "s"}` : "healthy";
        const rows = [["STATUS", "CHECK", "DETAIL"], ...host.findings.map((finding) => [finding.status === "ok" ? "ok" : finding.status.toUpperCase(), finding.check, finding.detail])];
        const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column].length)));
        const lines = rows.map((row) => `  ${row[0].padEnd(widths[0])}  ${row[1].padEnd(widths[1])}  ${row[2]}`.trimEnd());
        return [`${host.name} (${host.role}, ${host.address}): ${summary}`, ...lines].join("\n");
    });
    const unhealthy = result.hosts.filter((host) => !host.ok).map((host) => host.name);
    return `${sections.join("\n\n")}\n\n${unhealthy.length === 0 ? "every host is healthy" : `problems on ${unhealthy.join(", ")}: \`npm run repair\` puts back what the stack declares`}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// Reaching the hosts
// ---------------------------------------------------------------------------------------------------------------

export interface DoctorHost {
    name: string;
    role: HostRole;
    ssh: SshSettings;
}

/** The hosts the stack provisions over SSH: every relay, every gateway, and clients with SSH details. */
export function stackHosts(network: Network): DoctorHost[] {
    return [
        ...network.relays.map((relay) => ({ name: relay.name, role: "relay" as const, ssh: relay.ssh })),
        ...network.gateways.map((gateway) => ({ name: gateway.name, role: "gateway" as const, ssh: gateway.ssh })),
        ...network.clients.flatMap((client) => (client.ssh ? [{ name: client.name, role: "client" as const, ssh: client.ssh }] : [])),
    ];
}

const viaRelay = (ssh: SshSettings) => "via" in ssh && ssh.via === "relay";

export function sshAddress(host: DoctorHost, relayName: string): string {
    const address = `${host.ssh.user}@${host.ssh.host}${host.ssh.port === 22 ? "" : `:${host.ssh.port}`}`;
    return viaRelay(host.ssh) ? `${address} via ${relayName}` : address;
}

/**
 * An ssh_config with one entry per host, named after it: its pinned key recorded under that name (HostKeyAlias), the
 * relay as jump host where the stack says so. A host on trust on first use (its key is in the stack's state, not its
 * config) is accepted on first sight; the doctor only reads it.
 */
export function renderSshConfig(hosts: DoctorHost[], relayName: string, files: { privateKey: string; knownHosts: string }): string {
    const entries = hosts.flatMap((host) => [
        `Host ${host.name}`,
        `  HostName ${host.ssh.host}`,
        `  Port ${host.ssh.port}`,
        `  User ${host.ssh.user}`,
        `  HostKeyAlias ${host.name}`,
        `  StrictHostKeyChecking ${host.ssh.hostKey ? "yes" : "accept-new"}`,
        ...(viaRelay(host.ssh) ? [`  ProxyJump ${relayName}`] : []),
    ]);
    return [
        ...entries,
        "Host *",
        `  IdentityFile ${files.privateKey}`,
        "  IdentitiesOnly yes",
        `  UserKnownHostsFile ${files.knownHosts}`,
        "  GlobalKnownHostsFile /dev/null",
        "  BatchMode yes",
        "  ConnectTimeout 10",
        "  ServerAliveInterval 5",
        "  ServerAliveCountMax 3",
        "  LogLevel ERROR",
        "",
    ].join("\n");
}

export function renderKnownHosts(hosts: DoctorHost[]): string {
    return hosts.flatMap((host) => (host.ssh.hostKey ? [`${host.name} ${host.ssh.hostKey}\n`] : [])).join("");
}

/** The finding for a host the doctor could not ask: unreachable, refused, or sudo failed. */
export function probeFailed(status: number | null, stderr: string): Finding {
    const reason = stderr.trim().split("\n").filter(Boolean).pop() ?? `exit ${status}`;
    return status === 255 ? fail("ssh", `unreachable: ${reason}`) : fail("ssh", `the checks did not run: ${reason}`);
}

function runProbe(configFile: string, host: DoctorHost, script: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        // The script comes on stdin: the process lists show only `sh -s`.
        const child = spawn("ssh", ["-F", configFile, host.name, host.ssh.user === "root" ? "sh -s" : "sudo -n sh -s"], { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => child.kill("SIGTERM"), 60_000);
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.on("error", (error) => (stderr += error.message));
        child.on("close", (status) => {
            clearTimeout(timer);
            resolve({ status: status ?? 255, stdout, stderr });
        });
        child.stdin.end(script);
    });
}

/**
 * A TLS handshake with the relay's wstunnel port, verified against the stack's CA (or Node's roots): why it failed,
 * if it did, and the end of the certificate the port served, even one that does not verify.
 */
function tlsHandshake(url: string, ca: string | undefined): Promise<{ tlsError?: string; servedNotAfter?: string }> {
    const { hostname, port } = new URL(url.replace(/^wss:/, "https:"));
    return new Promise((resolve) => {
        // Verified below rather than by refusing the connection, so an untrusted or expired certificate still shows its dates.
        const socket = tls.connect({ host: hostname, port: Number(port || 443), ca, servername: isIpv4(hostname) ? undefined : hostname, timeout: 10_000, rejectUnauthorized: false });
        socket.on("secureConnect", () => {
            const served = socket.getPeerCertificate();
            const servedNotAfter = served.valid_to || undefined;
            // What rejectUnauthorized would have checked: the chain, then the name or address dialled.
            const tlsError = socket.authorized ? tls.checkServerIdentity(hostname, served)?.message : `the certificate does not verify (${String(socket.authorizationError)})`;
            socket.end();
            resolve({ tlsError, servedNotAfter });
        });
        socket.on("timeout", () => {
            socket.destroy();
            resolve({ tlsError: "no TLS handshake within 10 s" });
        });
        socket.on("error", (error) => resolve({ tlsError: error.message }));
    });
}

function pulumiJson(args: string[], stack: string | undefined): unknown {
    const result = spawnSync("pulumi", [...args, "--json", ...(stack ? ["--stack", stack] : [])], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (result.error || result.status !== 0) {
        throw new Error(`pulumi ${args.join(" ")} failed: ${result.error?.message ?? result.stderr.trim()}`);
    }
    return JSON.parse(result.stdout);
}

async function main(argv: string[]): Promise<number> {
    const { values } = parseArgs({ args: argv, options: { stack: { type: "string" }, json: { type: "boolean", default: false } } });
    const config = pulumiJson(["config", "--show-secrets"], values.stack) as Record<string, { value: string }>;
    const flat = Object.fromEntries(Object.entries(config).map(([key, entry]) => [key, entry.value]));
    const network = parseStackConfig(stackConfigValues(flat));
    const privateKey = flat[sshPrivateKeyKey];
    if (!privateKey) {
        throw new Error(`${sshPrivateKeyKey} is not set`);
    }
    const outputs = pulumiJson(["stack", "output"], values.stack) as {
        declaredHosts?: Record<string, DeclaredHost>;
        relayCaCertificate?: string;
        relayEndpoints?: Record<string, { url: string; certificateExpiry?: { ca: string; server: string } }>;
        clientCertificateExpiry?: Record<string, ClientCertificateValidity>;
    };
    if (outputs.declaredHosts === undefined || outputs.relayEndpoints === undefined) {
        throw new Error("the stack has no declaredHosts or relayEndpoints output yet: run `pulumi up` first");
    }
    const { declaredHosts, relayEndpoints } = outputs;

    const hosts = stackHosts(network);
    // Hosts with `ssh.via: relay` jump through the first relay.
    const relayName = network.relays[0].name;
    const dir = mkdtempSync(join(tmpdir(), "wg-relay-doctor-"));
    try {
        const files = { privateKey: join(dir, "id"), knownHosts: join(dir, "known_hosts") };
        writeFileSync(files.privateKey, privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`, { mode: 0o600 });
        writeFileSync(files.knownHosts, renderKnownHosts(hosts), { mode: 0o600 });
        const configFile = join(dir, "ssh_config");
        writeFileSync(configFile, renderSshConfig(hosts, relayName, files), { mode: 0o600 });

        const relays = network.relays.map((relay) => ({ name: relay.name, endpoint: relayEndpoints[relay.name] }));
        const handshakes = Promise.all(relays.map(({ endpoint }) => (endpoint ? tlsHandshake(endpoint.url, outputs.relayCaCertificate) : {})));
        const reports = await Promise.all(
            hosts.map(async (host): Promise<HostReport> => {
                const identity = { name: host.name, role: host.role, address: sshAddress(host, relayName) };
                const declared = declaredHosts[host.name];
                if (declared === undefined) {
                    return hostReport(identity, [fail("declared", "not in the stack's outputs yet: run `pulumi up`")]);
                }
                const pinned = host.ssh.hostKey ? [] : [{ check: "ssh host key", status: "warn" as const, detail: "trusted on first use (ssh.trustOnFirstUse): the doctor accepts the key it sees first" }];
                const probe = await runProbe(configFile, host, probeScript(declared));
                const findings = probe.status === 0 ? checkHost(declared, parseProbe(probe.stdout)) : [probeFailed(probe.status, probe.stderr)];
                return hostReport(identity, [...pinned, ...findings]);
            }),
        );
        // Each relay's report ends with what a client sees of it: its wss port's TLS and its certificates' expiry.
        (await handshakes).forEach((handshake, index) => {
            const { name, endpoint } = relays[index];
            const findings = endpoint
                ? checkRelayEndpoint({ url: endpoint.url, certificateExpiry: endpoint.certificateExpiry, ...handshake }, new Date())
                : [fail("relay endpoint", `${name} is not in the relayEndpoints output yet: run \`pulumi up\``)];
            reports[index] = hostReport(reports[index], [...reports[index].findings, ...findings]);
        });
        // With mutual TLS: each provisioned peer's certificate in its report, and a report per device without SSH.
        const now = new Date();
        const validities = outputs.clientCertificateExpiry ?? {};
        reports.forEach((entry, index) => {
            const validity = validities[entry.name];
            if (validity !== undefined && entry.role !== "relay") {
                reports[index] = hostReport(entry, [...entry.findings, checkClientCertificate(entry.name, validity, false, now)]);
            }
        });
        for (const client of network.clients.filter((each) => each.ssh === undefined && validities[each.name] !== undefined)) {
            reports.push(hostReport({ name: client.name, role: "client", address: "no SSH: its files from npm run client-files" }, [checkClientCertificate(client.name, validities[client.name], true, now)]));
        }
        const result = report(reports);
        process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : renderTable(result));
        return result.ok ? 0 : 1;
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (status) => process.exit(status),
        (error: Error) => {
            console.error(error instanceof ConfigError ? error.message : `doctor: ${error.message}`);
            process.exit(2);
        },
    );
}
