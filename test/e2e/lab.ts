// Drives the lab from the e2e tests: every action goes through lab/lab.sh, as a user's would.
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { shellQuote } from "../../components/host/shell";
import type { LabChanges } from "../../lab/stack-config";
import type { Report } from "../../scripts/doctor";

export const repo = resolve(__dirname, "..", "..");
/** The lab's namespaces are NAME-* (lab/hosts.sh; WG_RELAY_LAB_NAME lets two checkouts run a lab each). */
const labName = process.env.WG_RELAY_LAB_NAME ?? "wgr";

/** The lab's nspawn hosts, reached over SSH (relay2 and rpi2 with the second site: `npm run lab -- sites`). */
export type LabHost = "relay" | "rpi1" | "laptop" | "relay2" | "rpi2";
export const labHosts: LabHost[] = ["relay", "rpi1", "laptop"];

export interface Result {
    status: number | null;
    stdout: string;
    stderr: string;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Result {
    const result = spawnSync(command, args, { cwd: repo, encoding: "utf8", env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function check(what: string, result: Result): string {
    if (result.status !== 0) {
        throw new Error(`${what} failed (exit ${result.status}):\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`);
    }
    return result.stdout;
}

/** `bash lab/lab.sh ARGS`; throws with its output when it fails. */
export function lab(args: string[], env: Record<string, string> = {}): string {
    return check(`lab ${args.join(" ")}`, run("bash", ["lab/lab.sh", ...args], env));
}

/** `npm run lab -- doctor --json` (`env`: for it, e.g. NODE_EXTRA_CA_CERTS): its exit status (1 when a host has a problem) and its report. */
export function doctor(env: Record<string, string> = {}): { result: Result; report: Report } {
    const result = labTry(["doctor", "--json"], env);
    if (result.status !== 0 && result.status !== 1) {
        throw new Error(`the doctor did not run (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
    }
    return { result, report: JSON.parse(result.stdout) as Report };
}

/** The doctor's failed findings, "HOST: CHECK: DETAIL" each. */
export const doctorFailures = (report: Report) =>
    report.hosts.flatMap((host) => host.findings.filter((finding) => finding.status === "fail").map((finding) => `${host.name}: ${finding.check}: ${finding.detail}`));
export const findingOf = (report: Report, host: LabHost, check: string) => report.hosts.find((entry) => entry.name === host)?.findings.find((finding) => finding.check === check);

export function labTry(args: string[], env: Record<string, string> = {}): Result {
    return run("bash", ["lab/lab.sh", ...args], env);
}

/** A command in one of the lab's namespaces (the host's own tools, the namespace's network). */
export function inNamespace(namespace: string, args: string[]): Result {
    return run("ip", ["netns", "exec", `${labName}-${namespace}`, ...args]);
}

export function inNamespaceOk(namespace: string, args: string[]): string {
    return check(`${namespace}: ${args.join(" ")}`, inNamespace(namespace, args));
}

/**
 * A shell command on a lab host over SSH, as root. ssh hands its command to the remote user's shell, so the script
 * travels single-quoted: only the `sh -c` on the host expands it.
 */
export function onHost(host: LabHost, script: string): Result {
    return labTry(["ssh", host, `sudo -n sh -c ${shellQuote(script)}`]);
}

export function onHostOk(host: LabHost, script: string): string {
    return check(`${host}: ${script}`, onHost(host, script));
}

/** A long-running command in a namespace, stopped by its PID (SIGINT), or `finished` by itself: its output. */
export function startInNamespace(namespace: string, args: string[]): { stop: () => Promise<string>; finished: Promise<string> } {
    const child = spawn("ip", ["netns", "exec", `${labName}-${namespace}`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = new Promise<void>((done) => child.on("exit", () => done()));
    return {
        finished: exited.then(() => output),
        stop: async () => {
            if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
                process.kill(child.pid, "SIGINT");
            }
            await exited;
            return output;
        },
    };
}

/** A bundle-only client some tests add to the stack. */
export const phone = { name: "phone", tunnelAddress: "10.10.0.4" };
export const withPhone: LabChanges = { extraClients: [phone] };

/** The wstunnel unit each lab host runs. */
export const wstunnelUnits: Record<LabHost, string> = {
    relay: "wg-relay-wstunnel-server",
    rpi1: "wg-relay-wstunnel-client",
    laptop: "wg-relay-wstunnel-client",
    relay2: "wg-relay-wstunnel-server",
    rpi2: "wg-relay-wstunnel-client",
};

export const lanService = "http://192.168.1.20/";

export interface PreviewStep {
    op: string;
    urn: string;
}

// Each test brings the stack to the state it needs (ensureStack), so any one runs alone (`npm run test:e2e -- -t
// '5\.'`) and a failure does not cascade. The stack config last applied by a test is stamped (by the config file's
// digest) in the lab stack's state folder, so test files share it and a test whose state is already there pays
// nothing for it; `npm run lab` and `npm run lab -- down` drop the stamp.
const stackFile = join(repo, "Pulumi.lab.yaml");
const convergedStamp = join(repo, ".lab", "pulumi-state", "e2e-converged");
const stackDigest = () => createHash("sha256").update(readFileSync(stackFile)).digest("hex");
const stamped = () => (existsSync(convergedStamp) ? readFileSync(convergedStamp, "utf8") : undefined);

/** Writes the lab stack's config with these changes (lab/stack-config.ts). */
export function writeStack(changes: LabChanges, env: Record<string, string> = {}): void {
    lab(["stack-config"], { LAB_STACK_CHANGES: JSON.stringify(changes), ...env });
}

/** Rewrites the lab stack's config with these changes and previews it. */
export function changedSteps(changes: LabChanges, env: Record<string, string> = {}): PreviewStep[] {
    writeStack(changes, env);
    const preview = JSON.parse(lab(["pulumi", "preview", "--stack", "lab", "--json"])) as { steps: PreviewStep[] };
    return preview.steps.filter((step) => step.op !== "same");
}

/** `pulumi up` of the config as written; returns its output. */
export function up(): string {
    rmSync(convergedStamp, { force: true });
    const output = lab(["pulumi", "up", "--stack", "lab", "--yes", "--skip-preview"]);
    writeFileSync(convergedStamp, stackDigest());
    return output;
}

/** `pulumi up` of another program's folder (e.g. an earlier commit's) on the lab stack; returns its output. */
export function upFrom(programDir: string, env: Record<string, string> = {}): string {
    rmSync(convergedStamp, { force: true });
    // The lab runs pulumi with --cwd at this checkout; the later --cwd wins.
    return lab(["pulumi", "--cwd", programDir, "up", "--stack", "lab", "--yes", "--skip-preview"], env);
}

/** `pulumi up` while the laptop pings the LAN host across the relay and the gateway's tunnel; no ping may be lost. */
export async function upWithoutLoss(): Promise<void> {
    const ping = startInNamespace("laptop", ["ping", "-n", "-i", "0.2", "192.168.1.20"]);
    try {
        await new Promise((done) => setTimeout(done, 2000));
        up();
        await new Promise((done) => setTimeout(done, 2000));
    } finally {
        expect(await ping.stop()).toMatch(/ 0% packet loss/);
    }
}

/** `npm run lab -- repair`: bumps wg-relay:repair (kept by later config writes) and converges the hosts again. */
export function repair(): string {
    rmSync(convergedStamp, { force: true });
    const output = lab(["repair"]);
    writeFileSync(convergedStamp, stackDigest());
    return output;
}

/** `npm run lab -- forget-client NAME`: drops a client from the state, then `pulumi up --yes`; returns its output. */
export function forgetClient(name: string): string {
    rmSync(convergedStamp, { force: true });
    const output = lab(["forget-client", name]);
    writeFileSync(convergedStamp, stackDigest());
    return output;
}

/** `pulumi up` expected to fail: the hosts' state is unknown afterwards. */
export function failingUp(): Result {
    rmSync(convergedStamp, { force: true });
    return labTry(["pulumi", "up", "--stack", "lab", "--yes", "--skip-preview"]);
}

/** `npm run lab -- repair` expected to fail. */
export function failingRepair(): Result {
    rmSync(convergedStamp, { force: true });
    return labTry(["repair"]);
}

export function destroy(): void {
    rmSync(convergedStamp, { force: true });
    lab(["pulumi", "destroy", "--stack", "lab", "--yes", "--skip-preview"]);
}

/** The hosts converged to `changes`; returns the output of the `pulumi up` that took, if one was needed. */
export function ensureStack(changes: LabChanges): string {
    writeStack(changes);
    return stamped() === stackDigest() ? "" : up();
}

const resourceName = (urn: string) => urn.split("::").pop()!;

/** The steps on hosts, as "op name", sorted. */
export const hostSteps = (steps: PreviewStep[]) =>
    steps
        .filter((step) => step.urn.includes("command:remote:"))
        .map((step) => `${step.op} ${resourceName(step.urn)}`)
        .sort();

/** Polls `read` (every 0.5 s, for up to `seconds`) until its result satisfies `done`; returns the last result. */
export async function eventually(read: () => string, done: (text: string) => boolean, seconds = 10): Promise<string> {
    let text = read();
    for (let tries = 0; tries < seconds * 2 && !done(text); tries++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        text = read();
    }
    return text;
}

/** Seconds until `check` holds, polled every 0.5 s; fails after `limit`, naming `what`. */
export async function secondsUntil(what: string, limit: number, check: () => boolean): Promise<number> {
    const start = Date.now();
    while ((Date.now() - start) / 1000 < limit) {
        if (check()) {
            return (Date.now() - start) / 1000;
        }
        await new Promise((done) => setTimeout(done, 500));
    }
    throw new Error(`${what}: not within ${limit} s`);
}

/** Seconds until the laptop gets the LAN host's page through the tunnel; fails after `limit`. */
export function secondsUntilLanReachable(limit: number): Promise<number> {
    return secondsUntil("the LAN host reachable from the laptop", limit, () =>
        inNamespace("laptop", ["curl", "--silent", "--max-time", "2", lanService]).stdout.includes("hello from lanhost"),
    );
}

export const relayAddress = "198.51.100.10";

/** A wstunnel v10 tunnel kind, as its server reads it from the request (serde's form of its LocalProtocol). */
export type TunnelProtocol = { Udp: { timeout: null } } | { Tcp: { proxy_protocol: false } } | { Socks5: { timeout: null; credentials: null } } | "ReverseTcp";

/** Status of a WebSocket upgrade to the relay's wstunnel, sent from the internet namespace. */
export function upgradeStatus(
    prefix: string,
    destination: { host: string; port: number },
    options: {
        websocketVersion?: number;
        protocol?: TunnelProtocol;
        clientCertificateFile?: string;
        /** Where the request comes from and the relay's address it goes to, as in a URL: the internet and its IPv4 address by default. */
        from?: { namespace: string; relay: string };
    } = {},
): string {
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    // wstunnel v10's tunnel request: a JWT in the WebSocket protocol header; the server reads it without a key.
    const jwt = [
        encode({ typ: "JWT", alg: "HS256" }),
        encode({ id: randomUUID(), p: options.protocol ?? { Udp: { timeout: null } }, r: destination.host, rp: destination.port }),
        randomBytes(32).toString("base64url"),
    ].join(".");
    const from = options.from ?? { namespace: "inet", relay: relayAddress };
    const result = inNamespace(from.namespace, [
        "curl", "--silent", "--insecure", "--http1.1", "--max-time", "3", "--output", "/dev/null", "--write-out", "%{http_code}",
        // Mutual TLS: a PEM file with the certificate and its key.
        ...(options.clientCertificateFile ? ["--cert", options.clientCertificateFile, "--key", options.clientCertificateFile] : []),
        "--header", "Connection: Upgrade",
        "--header", "Upgrade: websocket",
        "--header", `Sec-WebSocket-Version: ${options.websocketVersion ?? 13}`,
        "--header", `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
        "--header", `Sec-WebSocket-Protocol: v1, authorization.bearer.${jwt}`,
        `https://${from.relay}:443/${prefix}/events`,
    ]);
    return result.stdout.trim();
}

/** A roaming client's bundle, from the stack's secret outputs. */
export function clientBundle(name: string): { wstunnelEnvironment: string; clientCertificate?: string } {
    const bundles = JSON.parse(lab(["pulumi", "stack", "output", "clientBundles", "--stack", "lab", "--show-secrets", "--json"]));
    return bundles[name];
}

/** Every file of the lab stack's state backend, as text. */
export function stateText(): string {
    const files: string[] = [];
    const walk = (dir: string) => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
            const path = join(dir, entry.name);
            if (entry.isDirectory()) {
                walk(path);
            } else {
                files.push(readFileSync(path, "utf8"));
            }
        }
    };
    walk(join(repo, ".lab", "pulumi-state"));
    return files.join("\n");
}

/** Fails naming the place (never the secret) where one of `secrets` appears in plaintext. */
export function expectNoSecretIn(places: Record<string, string>, secrets: string[]): void {
    for (const [place, text] of Object.entries(places)) {
        for (const secret of secrets) {
            if (text.includes(secret)) {
                throw new Error(`a secret appears in plaintext in the ${place}`);
            }
        }
    }
}
