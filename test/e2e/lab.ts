// Drives the lab from the e2e tests: every action goes through lab/lab.sh, as a user's would.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { shellQuote } from "../../components/shell";
import type { LabChanges } from "../../lab/stack-config";

export const repo = resolve(__dirname, "..", "..");

/** The lab's nspawn hosts, reached over SSH. */
export type LabHost = "relay" | "rpi1" | "laptop";
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

export function labTry(args: string[], env: Record<string, string> = {}): Result {
    return run("bash", ["lab/lab.sh", ...args], env);
}

/** A command in one of the lab's namespaces (the host's own tools, the namespace's network). */
export function inNamespace(namespace: string, args: string[]): Result {
    return run("ip", ["netns", "exec", `wgr-${namespace}`, ...args]);
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

/** A long-running command in a namespace, stopped by its PID. */
export function startInNamespace(namespace: string, args: string[]): { stop: () => Promise<string> } {
    const child = spawn("ip", ["netns", "exec", `wgr-${namespace}`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = new Promise<void>((done) => child.on("exit", () => done()));
    return {
        stop: async () => {
            if (child.exitCode === null && child.pid !== undefined) {
                process.kill(child.pid, "SIGINT");
            }
            await exited;
            return output;
        },
    };
}

export const relayAddress = "198.51.100.10";
export const lanService = "http://192.168.1.20/";

interface PreviewStep {
    op: string;
    urn: string;
}

// Each test brings the stack to the state it needs (ensureStack), so any one runs alone (`npm run test:e2e -- -t
// '5\.'`) and a failure does not cascade; these two record what the config file holds and what the hosts were
// last converged to, so a test whose state is already there pays nothing for it.
let writtenStack: string | undefined;
let appliedStack: string | undefined;
const stackKey = (changes: LabChanges, env: Record<string, string>) => JSON.stringify({ changes, env });

/** `lab prepare` wrote the stack's config without changes. */
export function stackWrittenByPrepare(): void {
    writtenStack = stackKey({}, {});
}

/** Writes the lab stack's config with these changes (lab/stack-config.ts), unless it holds them already. */
export function writeStack(changes: LabChanges, env: Record<string, string> = {}): void {
    const key = stackKey(changes, env);
    if (writtenStack === key) {
        return;
    }
    writtenStack = undefined;
    lab(["stack-config"], { LAB_STACK_CHANGES: JSON.stringify(changes), ...env });
    writtenStack = key;
}

/** Rewrites the lab stack's config with these changes and previews it. */
export function changedSteps(changes: LabChanges, env: Record<string, string> = {}): PreviewStep[] {
    writeStack(changes, env);
    const preview = JSON.parse(lab(["pulumi", "preview", "--stack", "lab", "--json"])) as { steps: PreviewStep[] };
    return preview.steps.filter((step) => step.op !== "same");
}

/** `pulumi up` of the config as written; returns its output. */
export function up(): string {
    appliedStack = undefined;
    const output = lab(["pulumi", "up", "--stack", "lab", "--yes", "--skip-preview"]);
    appliedStack = writtenStack;
    return output;
}

/** `pulumi up` expected to fail: the hosts' state is unknown afterwards. */
export function failingUp(): Result {
    appliedStack = undefined;
    return labTry(["pulumi", "up", "--stack", "lab", "--yes", "--skip-preview"]);
}

export function destroy(): void {
    appliedStack = undefined;
    lab(["pulumi", "destroy", "--stack", "lab", "--yes", "--skip-preview"]);
}

/** The hosts converged to `changes`; returns the output of the `pulumi up` that took, if one was needed. */
export function ensureStack(changes: LabChanges): string {
    writeStack(changes);
    return appliedStack === writtenStack ? "" : up();
}

const resourceName = (urn: string) => urn.split("::").pop()!;

/** The steps on hosts, as "op name", sorted. */
export const hostSteps = (steps: PreviewStep[]) =>
    steps
        .filter((step) => step.urn.includes("command:remote:"))
        .map((step) => `${step.op} ${resourceName(step.urn)}`)
        .sort();

/** Status of a WebSocket upgrade to the relay's wstunnel, sent from the internet namespace. */
export function upgradeStatus(prefix: string, destination: { host: string; port: number }, websocketVersion = 13): string {
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    // wstunnel v10's tunnel request: a JWT in the WebSocket protocol header; the server reads it without a key.
    const jwt = [
        encode({ typ: "JWT", alg: "HS256" }),
        encode({ id: randomUUID(), p: { Udp: { timeout: null } }, r: destination.host, rp: destination.port }),
        randomBytes(32).toString("base64url"),
    ].join(".");
    const result = inNamespace("inet", [
        "curl", "--silent", "--insecure", "--http1.1", "--max-time", "3", "--output", "/dev/null", "--write-out", "%{http_code}",
        "--header", "Connection: Upgrade",
        "--header", "Upgrade: websocket",
        "--header", `Sec-WebSocket-Version: ${websocketVersion}`,
        "--header", `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
        "--header", `Sec-WebSocket-Protocol: v1, authorization.bearer.${jwt}`,
        `https://${relayAddress}:443/${prefix}/events`,
    ]);
    return result.stdout.trim();
}


/** Polls `read` (every 0.5 s, for up to 10 s) until its result satisfies `done`; returns the last result. */
export async function eventually(read: () => string, done: (text: string) => boolean): Promise<string> {
    let text = read();
    for (let tries = 0; tries < 20 && !done(text); tries++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        text = read();
    }
    return text;
}

/** A roaming client's bundle, from the stack's secret outputs. */
export function clientBundle(name: string): { wstunnelEnvironment: string } {
    const bundles = JSON.parse(lab(["pulumi", "stack", "output", "clientBundles", "--stack", "lab", "--show-secrets", "--json"]));
    return bundles[name];
}

