import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import {
    CurrentConfig,
    defaultImportOptions,
    describeAssignments,
    ImportError,
    ImportOptions,
    parseWgEasyExport,
    planImport,
    pulumiRunner,
    runImport,
    slugName,
    WgEasyExport,
} from "../../scripts/import-wg-easy";

// A wg-easy v14 wg0.json written for these tests from the format of wg-easy's src/lib/WireGuard.js, with
// throwaway keys: five clients, one disabled, one without a preshared key, two whose names slug alike.
const fixtureFile = join(__dirname, "wg-easy", "wg0.json");
const fixtureText = readFileSync(fixtureFile, "utf8");
const fixture = (): WgEasyExport => parseWgEasyExport(fixtureText, "wg0.json");
const raw = () => JSON.parse(fixtureText) as { server: Record<string, unknown>; clients: Record<string, Record<string, unknown>> };
const allKeys: string[] = (() => {
    const data = raw();
    return [data.server.privateKey, ...Object.values(data.clients).flatMap((client) => [client.privateKey, client.preSharedKey])].filter(
        (key): key is string => typeof key === "string",
    );
})();

function problemsOf(run: () => unknown): string[] {
    try {
        run();
    } catch (error) {
        if (error instanceof ImportError) {
            return error.problems;
        }
        throw error;
    }
    throw new Error("expected an ImportError");
}

const plan = (options: Partial<ImportOptions> = {}, current: CurrentConfig = {}) => planImport(fixture(), { ...defaultImportOptions, ...options }, current);

describe("wg-easy export parsing", () => {
    it("reads the v14 wg0.json", () => {
        const exported = fixture();
        expect(exported.server.address).toBe("10.8.0.1");
        expect(Object.values(exported.clients).map((client) => [client.name, client.address, client.enabled, client.preSharedKey !== undefined])).toEqual([
            ["Alice’s iPhone", "10.8.0.2", true, true],
            ["Laptop (work)", "10.8.0.3", true, true],
            ["laptop work", "10.8.0.4", true, true],
            ["Old tablet", "10.8.0.5", false, true],
            ["2nd phone", "10.8.0.6", true, false],
        ]);
    });

    const [firstId] = Object.keys(raw().clients);
    const changed = (change: (data: ReturnType<typeof raw>) => void) => {
        const data = raw();
        change(data);
        return JSON.stringify(data);
    };
    const cases: [string, string, string][] = [
        ["a file that is not JSON", "{ server: ", "wg0.json: not JSON ("],
        ["a missing server key", changed((d) => delete d.server.privateKey), "wg0.json: server.privateKey: required, but missing"],
        ["a short key", changed((d) => (d.clients[firstId].privateKey = "c2hvcnQ=")), `wg0.json: clients["${firstId}"].privateKey: expected a WireGuard key: base64 of 32 bytes`],
        ["a malformed address", changed((d) => (d.clients[firstId].address = "10.8.0.300")), `wg0.json: clients["${firstId}"].address: expected an IPv4 address`],
        ["a missing enabled flag", changed((d) => delete d.clients[firstId].enabled), `wg0.json: clients["${firstId}"].enabled: required, but missing`],
        ["a private key of another public key", changed((d) => (d.server.publicKey = d.clients[firstId].publicKey)), "wg0.json: server.privateKey does not belong to server.publicKey"],
        ["a wg-easy v15 database", "SQLite format 3\0\x10\x00", "wg0.json: this is a wg-easy v15 database (SQLite), not a v14 wg0.json"],
    ];
    it.each(cases)("rejects %s, naming the file and the field", (_what, text, expected) => {
        const problems = problemsOf(() => parseWgEasyExport(text, "wg0.json"));
        expect(problems.some((line) => line.startsWith(expected))).toBe(true);
        for (const key of allKeys) {
            expect(problems.join("\n")).not.toContain(key);
        }
    });
});

describe("wg-easy names", () => {
    it.each([
        ["Alice’s iPhone", "alice-s-iphone"],
        ["Laptop (work)", "laptop-work"],
        ["2nd phone", "client-2nd-phone"],
        ["Zoë's Pixel", "zoe-s-pixel"],
        ["📱", "client"],
        ["A very long device name that goes on and on", "a-very-long-device-name-that-go"],
    ])("turns %j into %j", (text, expected) => {
        expect(slugName(text)).toBe(expected);
        expect(expected).toMatch(/^[a-z][a-z0-9-]{0,30}$/);
    });
});

describe("wg-easy import plan", () => {
    it("maps the server to the relay and each enabled client to a UDP peer with its own keys", () => {
        const data = raw();
        const [alice, work, work2, , second] = Object.values(data.clients);
        const { assignments, report } = plan({ host: "203.0.113.7" });
        expect(assignments).toEqual([
            { key: "wg-relay:tunnel.subnet", value: "10.8.0.0/24", secret: false },
            { key: "wg-relay:relay.tunnelAddress", value: "10.8.0.1", secret: false },
            { key: "wg-relay:relay.wireguardPort", value: 51820, secret: false },
            { key: "wg-relay:relay.allowDirectUdp", value: true, secret: false },
            { key: "wg-relay:relay.publicAddress", value: "203.0.113.7", secret: false },
            ...[
                ["alice-s-iphone", "10.8.0.2"],
                ["laptop-work", "10.8.0.3"],
                ["laptop-work-2", "10.8.0.4"],
                ["client-2nd-phone", "10.8.0.6"],
            ].flatMap(([name, address], index) => [
                { key: `wg-relay:clients[${index}].name`, value: name, secret: false },
                { key: `wg-relay:clients[${index}].tunnelAddress`, value: address, secret: false },
                { key: `wg-relay:clients[${index}].transport`, value: "udp", secret: false },
                { key: `wg-relay:clients[${index}].fullTunnel`, value: true, secret: false },
                ...(index < 3 ? [{ key: `wg-relay:clients[${index}].presharedKey`, value: true, secret: false }] : []),
            ]),
            { key: "wg-relay:relay.existingKeys.privateKey", value: data.server.privateKey, secret: true },
            { key: "wg-relay:clients[0].existingKeys.privateKey", value: alice.privateKey, secret: true },
            { key: "wg-relay:clients[0].existingKeys.presharedKey", value: alice.preSharedKey, secret: true },
            { key: "wg-relay:clients[1].existingKeys.privateKey", value: work.privateKey, secret: true },
            { key: "wg-relay:clients[1].existingKeys.presharedKey", value: work.preSharedKey, secret: true },
            { key: "wg-relay:clients[2].existingKeys.privateKey", value: work2.privateKey, secret: true },
            { key: "wg-relay:clients[2].existingKeys.presharedKey", value: work2.preSharedKey, secret: true },
            { key: "wg-relay:clients[3].existingKeys.privateKey", value: second.privateKey, secret: true },
        ]);
        expect(report).toContain('"Laptop (work)" → clients[1] laptop-work (10.8.0.3; full tunnel, preshared key)');
        expect(report).toContain('"laptop work" → clients[2] laptop-work-2 (10.8.0.4; full tunnel, preshared key)');
        expect(report).toContain('skipped "Old tablet" (10.8.0.5): disabled in wg-easy (--include-disabled imports it)');
        expect(report.some((line) => line.startsWith("note: set relay.ssh"))).toBe(true);
        for (const key of allKeys) {
            expect([...report, ...describeAssignments(assignments)].join("\n")).not.toContain(key);
        }
    });

    it("imports disabled clients on request, and split tunnels when the devices' AllowedIPs have no default route", () => {
        const { assignments, report } = plan({ includeDisabled: true, allowedIps: "10.8.0.0/24, 192.168.1.0/24", port: 51999 });
        const value = (key: string) => assignments.find((assignment) => assignment.key === `wg-relay:${key}`)?.value;
        expect(value("clients[3].name")).toBe("old-tablet");
        expect(value("clients[3].fullTunnel")).toBe(false);
        expect(value("relay.wireguardPort")).toBe(51999);
        expect(report).toContain('"Old tablet" → clients[3] old-tablet (10.8.0.5; split tunnel, preshared key, disabled in wg-easy)');
    });

    it("keeps the stack's own clients and appends after them", () => {
        const current = { relay: { ssh: { host: "203.0.113.7" } }, clients: [{ name: "desktop", tunnelAddress: "10.8.0.50" }] };
        const { assignments } = plan({}, current);
        expect(assignments.filter((a) => a.key.endsWith(".name")).map((a) => a.key)).toEqual([0, 1, 2, 3].map((n) => `wg-relay:clients[${n + 1}].name`));
        expect(assignments.some((a) => a.key.startsWith("wg-relay:clients[0]"))).toBe(false);
    });

    it("updates clients it imported before in place (a re-run clashes with nothing)", () => {
        const first = plan({ host: "203.0.113.7" });
        const keyOf = (n: number) => first.assignments.find((a) => a.key === `wg-relay:clients[${n}].existingKeys.privateKey`)!.value;
        const current = {
            relay: { ssh: { host: "203.0.113.7" } },
            clients: [
                { name: "desktop", tunnelAddress: "10.8.0.50" },
                ...[0, 1, 2, 3].map((n) => ({
                    name: n === 0 ? "alice" : String(first.assignments.find((a) => a.key === `wg-relay:clients[${n}].name`)!.value),
                    tunnelAddress: String(first.assignments.find((a) => a.key === `wg-relay:clients[${n}].tunnelAddress`)!.value),
                    existingKeys: { privateKey: keyOf(n) },
                })),
            ],
        };
        const again = plan({ host: "203.0.113.7" }, current);
        const names = again.assignments.filter((a) => a.key.endsWith(".name")).map((a) => [a.key, a.value]);
        expect(names).toEqual([
            ["wg-relay:clients[1].name", "alice"], // renamed by the user: kept
            ["wg-relay:clients[2].name", "laptop-work"],
            ["wg-relay:clients[3].name", "laptop-work-2"],
            ["wg-relay:clients[4].name", "client-2nd-phone"],
        ]);
        expect(again.report).toContain('"Alice’s iPhone" → clients[1] alice (10.8.0.2; full tunnel, preshared key): imported before, updated in place');
    });

    it("refuses every clash with the stack before anything is written, and --prefix steps around a name", () => {
        const current = {
            relay: { name: "relay", ssh: { host: "203.0.113.7" } },
            gateways: [{ name: "rpi1", tunnelAddress: "10.10.0.2", lanSubnets: ["192.168.1.0/24"] }],
            clients: [
                { name: "laptop-work", tunnelAddress: "10.8.0.60" },
                { name: "tablet", tunnelAddress: "10.8.0.2" },
            ],
        };
        const problems = problemsOf(() => plan({}, current));
        expect(problems).toEqual([
            "gateways[0] (rpi1) in the stack has tunnel address 10.10.0.2, outside wg-easy's subnet 10.8.0.0/24, which the import makes the tunnel's subnet",
            expect.stringMatching(/^wg-easy client "Alice’s iPhone" \(clients\["[0-9a-f-]+"\]\): address 10.8.0.2 is already used by clients\[1\] \(tablet\) in the stack$/),
            expect.stringMatching(
                /^wg-easy client "Laptop \(work\)" \(clients\["[0-9a-f-]+"\]\): its name becomes 'laptop-work', which clients\[0\] \(laptop-work\) in the stack already uses; rename one of them, or import with --prefix$/,
            ),
            expect.stringMatching(/^wg-easy client "laptop work" .*: its name becomes 'laptop-work', which clients\[0\] \(laptop-work\) in the stack already uses/),
        ]);
        const prefixed = problemsOf(() => plan({ namePrefix: "wge-" }, current));
        expect(prefixed.some((line) => line.includes("name"))).toBe(false);
    });
});

/** The real Pulumi CLI: on PATH, or where lab/toolchain.sh keeps it (it never builds with --env). */
function findPulumi(): string | undefined {
    const onPath = (path: string) => path.split(delimiter).find((dir) => dir && spawnSync(join(dir, "pulumi"), ["version"]).status === 0);
    const direct = onPath(process.env.PATH ?? "");
    if (direct) {
        return process.env.PATH;
    }
    const toolchain = spawnSync("bash", ["-c", 'eval "$(bash lab/toolchain.sh --env)" && printf %s "$PATH"'], { cwd: join(__dirname, "..", ".."), encoding: "utf8" });
    return toolchain.status === 0 && onPath(toolchain.stdout) ? toolchain.stdout : undefined;
}

const pulumiPath = findPulumi();

// The real CLI against a temporary file backend: about 0.3 s a call, so each test makes as few as it can.
describe("wg-easy import with the real pulumi CLI", () => {
    let dir: string;
    let env: NodeJS.ProcessEnv;
    const commands: string[][] = [];
    const inputs: string[] = [];
    const output: string[] = [];
    const stackFile = () => readFileSync(join(dir, "project", "Pulumi.dev.yaml"), "utf8");
    const pulumi = (args: string[], input?: string) => {
        commands.push(args);
        if (input !== undefined) {
            inputs.push(input);
        }
        return pulumiRunner({ cwd: join(dir, "project"), env })(args, input);
    };
    const showConfig = () => JSON.parse(execFileSync("pulumi", ["config", "--show-secrets", "--json"], { cwd: join(dir, "project"), env, encoding: "utf8" }));

    beforeAll(() => {
        if (!pulumiPath) {
            throw new Error("these tests run the real pulumi CLI: install it, or run lab/toolchain.sh, which builds it");
        }
        dir = mkdtempSync(join(tmpdir(), "wg-relay-import-"));
        env = {
            ...process.env,
            PATH: pulumiPath,
            PULUMI_HOME: join(dir, "home"),
            PULUMI_BACKEND_URL: `file://${join(dir, "backend")}`,
            PULUMI_CONFIG_PASSPHRASE: "import test passphrase",
            PULUMI_SKIP_UPDATE_CHECK: "true",
        };
        execFileSync("mkdir", ["-p", join(dir, "backend"), join(dir, "project")]);
        writeFileSync(join(dir, "project", "Pulumi.yaml"), "name: wg-relay-import-test\nruntime: nodejs\n");
        // A stack that already has a relay and a client of its own, which the import must keep.
        execFileSync("pulumi", ["stack", "init", "dev", "--non-interactive"], { cwd: join(dir, "project"), env, stdio: "ignore" });
        pulumi(["config", "set-all", "--path", "--plaintext", "wg-relay:relay.ssh.host=203.0.113.7", "--plaintext", "wg-relay:clients[0].name=desktop", "--plaintext", "wg-relay:clients[0].tunnelAddress=10.8.0.50"]);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("prints the plan on --dry-run, keys as [secret], and changes nothing", () => {
        const before = stackFile();
        runImport([fixtureFile, "--dry-run", "--stack", "dev"], pulumi, (line) => output.push(line));
        expect(stackFile()).toBe(before);
        expect(output).toContain("  wg-relay:relay.existingKeys.privateKey = [secret]");
        expect(output).toContain('  wg-relay:clients[1].name = "alice-s-iphone"');
    });

    it("writes the config, keeps the stack's client, and stores every key encrypted", () => {
        const data = raw();
        const [alice, work, work2, , second] = Object.values(data.clients);
        runImport([fixtureFile, "--host", "203.0.113.7", "--stack", "dev"], pulumi, (line) => output.push(line));
        const config = showConfig();
        expect(config["wg-relay:tunnel"].objectValue).toEqual({ subnet: "10.8.0.0/24" });
        expect(config["wg-relay:relay"]).toMatchObject({ secret: true });
        expect(config["wg-relay:relay"].objectValue).toEqual({
            ssh: { host: "203.0.113.7" },
            publicAddress: "203.0.113.7",
            tunnelAddress: "10.8.0.1",
            wireguardPort: 51820,
            allowDirectUdp: true,
            existingKeys: { privateKey: data.server.privateKey },
        });
        const peer = (name: string, tunnelAddress: string, keys: Record<string, unknown>) => ({
            name,
            tunnelAddress,
            transport: "udp",
            fullTunnel: true,
            ...(keys.preSharedKey ? { presharedKey: true } : {}),
            existingKeys: { privateKey: keys.privateKey, ...(keys.preSharedKey ? { presharedKey: keys.preSharedKey } : {}) },
        });
        expect(config["wg-relay:clients"].objectValue).toEqual([
            { name: "desktop", tunnelAddress: "10.8.0.50" },
            peer("alice-s-iphone", "10.8.0.2", alice),
            peer("laptop-work", "10.8.0.3", work),
            peer("laptop-work-2", "10.8.0.4", work2),
            peer("client-2nd-phone", "10.8.0.6", second),
        ]);

        // Encrypted in the stack's file; never in a command line nor in what the script printed; only on stdin.
        const yaml = stackFile();
        expect(yaml.match(/secure: v1:/g)).toHaveLength(allKeys.length - 2); // not the disabled tablet's two keys
        for (const key of allKeys) {
            expect(yaml).not.toContain(key);
            expect(commands.flat().join("\n")).not.toContain(key);
            expect(output.join("\n")).not.toContain(key);
        }
        expect(inputs.sort()).toEqual([data.server.privateKey, alice.privateKey, alice.preSharedKey, work.privateKey, work.preSharedKey, work2.privateKey, work2.preSharedKey, second.privateKey].sort());
    });

    it("a second run finds its clients in the stack and updates them in place; a clash is refused before anything is written", () => {
        // A dry run: the same reading of the stack as a real run, without its ten encrypting calls.
        const rerun: string[] = [];
        runImport([fixtureFile, "--host", "203.0.113.7", "--stack", "dev", "--dry-run"], pulumi, (line) => rerun.push(line));
        expect(rerun.filter((line) => line.endsWith("imported before, updated in place"))).toHaveLength(4);
        expect(rerun.filter((line) => /^ {2}wg-relay:clients\[(\d+)\]\.name/.test(line))).toEqual([
            '  wg-relay:clients[1].name = "alice-s-iphone"',
            '  wg-relay:clients[2].name = "laptop-work"',
            '  wg-relay:clients[3].name = "laptop-work-2"',
            '  wg-relay:clients[4].name = "client-2nd-phone"',
        ]);

        const clashing = join(dir, "clash.json");
        const data = raw();
        Object.values(data.clients)[0].address = "10.8.0.50"; // the stack's desktop
        writeFileSync(clashing, JSON.stringify(data));
        const afterRerun = stackFile();
        const calls = commands.length;
        expect(() => runImport([clashing, "--stack", "dev"], pulumi, () => undefined)).toThrow(/address 10.8.0.50 is already used by clients\[0\] \(desktop\) in the stack/);
        expect(stackFile()).toBe(afterRerun);
        expect(commands.slice(calls).map((args) => args.slice(0, 2))).toEqual([["config", "--json"]]);
    });
});
