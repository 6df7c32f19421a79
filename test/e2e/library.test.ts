// wg-relay as a library (components/library.ts): the example program (examples/relay-from-outputs), whose relay's
// SSH host and key and the gateway's SSH host are outputs of other resources (local commands standing in for cloud
// servers), run on the lab's stack with the lab's network. Its resources are named as index.ts names them, so it
// takes over the lab's hosts as they are, and index.ts takes them back after. Needs root and the lab, like the other
// e2e files.
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { stackConfigValues } from "../../components/config";
import { ensureStack, inNamespaceOk, lab, labTry, lanService, relayAddress, repo, up, upFrom } from "./lab";

const exampleDir = join(repo, "examples", "relay-from-outputs");

/** The package as a user's program gets it: built (`npm run build:lib`) and in the example's node_modules. */
function installPackage(): void {
    const build = spawnSync("npm", ["run", "--silent", "build:lib"], { cwd: repo, encoding: "utf8" });
    if (build.status !== 0) {
        throw new Error(`npm run build:lib failed:\n${build.stdout}\n${build.stderr}`);
    }
    const link = join(exampleDir, "node_modules", "wg-relay");
    mkdirSync(join(exampleDir, "node_modules"), { recursive: true });
    if (!existsSync(link) && !isSymlink(link)) {
        // As `npm install` links a `file:` dependency; @pulumi/* resolve from the checkout's node_modules above,
        // the same copies the package uses.
        symlinkSync(repo, link);
    }
    // The example type-checks against the package's declarations, once: its runs below only transpile it
    // (ts-node's type check took minutes of a run on the shared machine).
    const typeCheck = spawnSync("npx", ["--no-install", "tsc", "--noEmit", "-p", exampleDir], { cwd: repo, encoding: "utf8" });
    if (typeCheck.status !== 0) {
        throw new Error(`the example does not type-check against the package:\n${typeCheck.stdout}\n${typeCheck.stderr}`);
    }
}

/** The example's runs: transpiled only, type-checked once by installPackage. */
const exampleEnv = { PULUMI_NODEJS_TRANSPILE_ONLY: "true" };

const isSymlink = (path: string) => {
    try {
        return lstatSync(path).isSymbolicLink();
    } catch {
        return false;
    }
};

/**
 * The example's lab stack config: the lab stack's network (its `wg-relay:` keys, but the SSH key) without the
 * relay's and rpi1's SSH hosts, and the commands that stand in for the servers: `relayAddress` is what the first prints.
 */
function writeExampleStack(changes: { relayAddress?: string; laptopFullTunnel?: boolean } = {}): void {
    const labStack = yaml.load(readFileSync(join(repo, "Pulumi.lab.yaml"), "utf8")) as { encryptionsalt?: string; config: Record<string, unknown> };
    // Read as the program reads its keys: Pulumi hands each as a string, so `pulumi config set wg-relay:repair 1`
    // (`npm run lab -- repair`) is the number 1, not the string "1".
    const asPulumiHandsThem = Object.fromEntries(Object.entries(labStack.config).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]));
    const network = stackConfigValues(asPulumiHandsThem) as { relay: { ssh: { host?: string } }; gateways: { name: string; ssh: { host?: string } }[]; clients: { name: string; fullTunnel?: boolean }[] };
    delete network.relay.ssh.host;
    expect(network.gateways[0].name).toBe("rpi1");
    delete network.gateways[0].ssh.host;
    if (changes.laptopFullTunnel) {
        network.clients = network.clients.map((client) => (client.name === "laptop" ? { ...client, fullTunnel: true } : client));
    }
    const inventory = join(repo, ".lab", "inventory.json");
    const config = {
        "wg-relay:network": network,
        "wg-relay:relayAddressCommand": changes.relayAddress ? `echo ${changes.relayAddress}` : `jq -r .hosts.relay.address ${inventory}`,
        "wg-relay:gatewayAddressCommand": `jq -r .hosts.rpi1.address ${inventory}`,
        "wg-relay:relaySshKeyCommand": `cat ${join(repo, ".lab", "ssh", "id_ed25519")}`,
    };
    writeFileSync(join(exampleDir, "Pulumi.lab.yaml"), yaml.dump({ ...(labStack.encryptionsalt ? { encryptionsalt: labStack.encryptionsalt } : {}), config }));
}

describe("library", () => {
    beforeAll(() => {
        ensureStack({});
        installPackage();
    });
    // index.ts takes the lab's stack back (dropping the stand-in commands), as the other test files expect it.
    afterAll(() => up());

    it("the example program converges the lab with the relay's address and SSH key and the gateway's address from other resources, and the laptop reaches the LAN through it", () => {
        writeExampleStack();
        upFrom(exampleDir, exampleEnv);
        lab(["pulumi", "--cwd", exampleDir, "preview", "--stack", "lab", "--expect-no-changes"], exampleEnv);
        expect(inNamespaceOk("laptop", ["curl", "--silent", "--max-time", "5", lanService])).toContain("hello from lanhost");
        const urls = lab(["pulumi", "--cwd", exampleDir, "stack", "output", "--stack", "lab", "relayUrl"], exampleEnv);
        expect(urls.trim()).toBe(`wss://${relayAddress}:443`);
    });

    it("fails, naming the key, when the server's address cannot serve a full tunnel, and the hosts keep working", () => {
        writeExampleStack({ relayAddress: "relay.example.net", laptopFullTunnel: true });
        const failed = labTry(["pulumi", "--cwd", exampleDir, "up", "--stack", "lab", "--yes", "--skip-preview"], exampleEnv);
        expect(failed.status).not.toBe(0);
        expect(`${failed.stdout}${failed.stderr}`).toContain("wg-relay:clients[0].fullTunnel: a full tunnel needs relay.publicAddress (or relay.ssh.host) to be an IPv4 address, not relay.example.net");
        // Before any step on a host: none ran, and the tunnel is as it was.
        expect(`${failed.stdout}${failed.stderr}`).not.toMatch(/command:remote:Command \S+ (creat|updat|delet|replac)/);
        expect(inNamespaceOk("laptop", ["curl", "--silent", "--max-time", "5", lanService])).toContain("hello from lanhost");
        // afterAll's `pulumi up` of index.ts converges the hosts again from here.
    });
});
