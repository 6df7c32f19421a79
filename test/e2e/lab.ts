// Drives the lab from the e2e tests: every action goes through lab/lab.sh, as a user's would.
import { spawn, spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { shellQuote } from "../../components/shell";

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
