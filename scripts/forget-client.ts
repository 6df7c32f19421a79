// npm run forget-client -- NAME [--stack NAME] [pulumi up options]: the way out for a client provisioned over SSH
// whose machine is gone (lost, wiped, off for good). Removing it from the config is not enough: `pulumi up` then
// deletes its steps, and each step's delete script must reach the machine, so every run fails on them. This drops
// the client's component and its steps from the stack's state (`pulumi state delete --target-dependents`), leaving
// its key and wstunnel credential, which need no machine, to `pulumi up`, and runs `pulumi up`: the relay loses the
// client's peer, access rules and wstunnel prefix, and nothing of the client is left to delete.
import { spawnSync } from "node:child_process";
import { parseStackConfig, stackConfigValues } from "../components/config";
import { stackArgs } from "./repair";

/** A resource of `pulumi stack export`. */
export interface StateResource {
    urn: string;
    type: string;
    parent?: string;
}

const roamingClientType = "wg-relay:index:RoamingClient";
/** The resources that act on a machine over SSH, whose delete needs it. */
const hostStepTypes = ["command:remote:Command", "command:remote:CopyToRemote"];

/**
 * The URN to drop for client `name`, and how many steps on its machine go with it; refuses a client still in the
 * config (`pulumi up` would make it again), one not in the state, and one never provisioned over SSH (`pulumi up`
 * removes that alone).
 */
export function forgetPlan(name: string, configuredClients: string[], resources: StateResource[]): { urn: string; hostSteps: number } {
    if (configuredClients.includes(name)) {
        throw new Error(`'${name}' is still in wg-relay:clients: remove it from the stack config first, then run this again`);
    }
    const clients = resources.filter((resource) => resource.type === roamingClientType);
    const client = clients.find((resource) => resource.urn.endsWith(`::${name}`));
    if (client === undefined) {
        const names = clients.map((resource) => resource.urn.split("::").pop());
        throw new Error(`no client '${name}' in the stack's state; clients there: ${names.join(", ") || "none"}`);
    }
    const within = new Set([client.urn]);
    // `pulumi stack export` lists a parent before its children.
    for (const resource of resources) {
        if (resource.parent !== undefined && within.has(resource.parent)) {
            within.add(resource.urn);
        }
    }
    const hostSteps = resources.filter((resource) => within.has(resource.urn) && hostStepTypes.includes(resource.type)).length;
    if (hostSteps === 0) {
        throw new Error(`'${name}' has no steps on a machine (it was not provisioned over SSH): \`pulumi up\` removes it without reaching any machine`);
    }
    return { urn: client.urn, hostSteps };
}

function pulumi(args: string[], what: string): string {
    const result = spawnSync("pulumi", args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, stdio: ["ignore", "pipe", "pipe"] });
    if (result.error || result.status !== 0) {
        throw new Error(`${what} failed: ${result.error?.message ?? result.stderr.trim()}`);
    }
    return result.stdout;
}

function main(argv: string[]): number {
    const [name, ...upArgs] = argv;
    if (!name || name.startsWith("-")) {
        throw new Error("usage: npm run forget-client -- CLIENT_NAME [--stack NAME] [pulumi up options]");
    }
    const stack = stackArgs(upArgs);
    const config = JSON.parse(pulumi(["config", "--json", "--show-secrets", ...stack], "pulumi config")) as Record<string, { value: string }>;
    const network = parseStackConfig(stackConfigValues(Object.fromEntries(Object.entries(config).map(([key, entry]) => [key, entry.value]))));
    const state = JSON.parse(pulumi(["stack", "export", ...stack], "pulumi stack export")) as { deployment: { resources?: StateResource[] } };
    const plan = forgetPlan(
        name,
        network.clients.map((client) => client.name),
        state.deployment.resources ?? [],
    );
    pulumi(["state", "delete", plan.urn, "--target-dependents", "--yes", ...stack], "pulumi state delete");
    console.log(
        `forget-client: ${name} and its ${plan.hostSteps} steps on its machine are out of the stack's state, nothing was run there; ` +
            "pulumi up removes its peer from the relay and deletes its key",
    );
    return spawnSync("pulumi", ["up", ...upArgs], { stdio: "inherit" }).status ?? 1;
}

if (require.main === module) {
    try {
        process.exit(main(process.argv.slice(2)));
    } catch (error) {
        console.error(`forget-client: ${(error as Error).message}`);
        process.exit(2);
    }
}
