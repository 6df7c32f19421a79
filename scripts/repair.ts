// npm run repair [-- --stack NAME] [pulumi up options]: puts back on every host what the stack declares, whatever was
// changed there by hand (a deleted firewall rule or file, a stopped unit, a peer added or removed with `wg set`).
// `pulumi up` re-runs a step only when its inputs change, so this bumps `wg-relay:repair`, which every step's script
// carries as a comment line, and runs `pulumi up`: every step runs again, idempotently, restarting nothing in place.
import { spawnSync } from "node:child_process";
import { configNamespace } from "../components/config";

const repairKey = `${configNamespace}:repair`;

/** The counter after `current` (the config value as `pulumi config get` prints it, undefined when unset). */
export function nextRepair(current: string | undefined): number {
    const value = current === undefined ? 0 : Number(current);
    if (!Number.isInteger(value) || value < 0) {
        throw new Error(`${repairKey} is '${current}', not a counter (an integer ≥ 0)`);
    }
    return value + 1;
}

/** `--stack NAME` (or `--stack=NAME`) for the config commands; every argument goes on to `pulumi up` as it is. */
export function stackArgs(argv: string[]): string[] {
    const index = argv.findIndex((arg) => arg === "--stack" || arg === "-s" || arg.startsWith("--stack="));
    if (index < 0) {
        return [];
    }
    return argv[index].startsWith("--stack=") ? [argv[index]] : argv.slice(index, index + 2);
}

function main(argv: string[]): number {
    const stack = stackArgs(argv);
    const get = spawnSync("pulumi", ["config", "get", repairKey, ...stack], { encoding: "utf8" });
    if (get.error) {
        throw get.error;
    }
    if (get.status !== 0 && !/not found/.test(get.stderr)) {
        throw new Error(get.stderr.trim());
    }
    const current = get.status === 0 ? get.stdout.trim() : undefined;
    const next = nextRepair(current);
    const set = spawnSync("pulumi", ["config", "set", repairKey, String(next), ...stack], { stdio: "inherit" });
    if (set.status !== 0) {
        return set.status ?? 1;
    }
    console.log(`repair: ${repairKey} ${current ?? 0} -> ${next}; pulumi up runs every step on every host again`);
    return spawnSync("pulumi", ["up", ...argv], { stdio: "inherit" }).status ?? 1;
}

if (require.main === module) {
    try {
        process.exit(main(process.argv.slice(2)));
    } catch (error) {
        console.error(`repair: ${(error as Error).message}`);
        process.exit(2);
    }
}
