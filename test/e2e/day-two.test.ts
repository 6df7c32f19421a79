// Day two in the lab: the doctor on a converged stack, drift made by hand that the doctor names and the repair puts
// back without restarting what was intact, the relay's key rotated with the laptop reaching the LAN again in
// under 15 s, and a client whose machine is gone removed with `npm run forget-client`. Needs root and the lab, like
// lab.test.ts; run with `npm run test:all`.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { wireguardPublicKey } from "../../components/wireguard/keys";
import type { LabChanges } from "../../lab/stack-config";
import type { Finding, Report } from "../../scripts/doctor";
import {
    changedSteps,
    clientBundle,
    doctor,
    ensureStack,
    eventually,
    failingUp,
    forgetClient,
    findingOf,
    hostSteps,
    inNamespace,
    inNamespaceOk,
    lab,
    LabHost,
    labHosts,
    labTry,
    lanService,
    onHost,
    onHostOk,
    repair,
    repo,
    secondsUntilLanReachable,
    startInNamespace,
    up,
    upgradeStatus,
    writeStack,
} from "./lab";

/** The stack these tests start from: the relay, rpi1 and the laptop, as `npm run lab` makes it. */
const base: LabChanges = {};

/** "HOST: CHECK" of every failed check. */
const problems = (report: Report) =>
    report.hosts.flatMap((host) => host.findings.filter((finding: Finding) => finding.status === "fail").map((finding) => `${host.name}: ${finding.check}`)).sort();

/** What must not restart when something else is repaired: each host's wg0 (by ifindex) and units (by InvocationID). */
function runningState(units: Partial<Record<LabHost, string[]>>): Record<string, string> {
    const state: Record<string, string> = {};
    for (const host of labHosts) {
        state[`${host} wg0 ifindex`] = onHostOk(host, "cat /sys/class/net/wg0/ifindex").trim();
        for (const unit of units[host] ?? []) {
            state[`${host} ${unit}`] = onHostOk(host, `systemctl show -p InvocationID --value ${unit}`).trim();
        }
    }
    return state;
}

/**
 * Stops a lab host's sshd, as a machine that is off or gone is to `pulumi up`, while the rest of it (WireGuard,
 * wstunnel) runs on: the listener is the sshd whose parent is the host's PID 1, which lab/hosts.sh records. A
 * SIGTERM is a clean exit, so systemd does not start it again; `host stop` and `host start` do.
 */
function stopSshd(host: LabHost): void {
    const leader = readFileSync(join(repo, ".lab", "hosts", host, "leader.pid"), "utf8").trim();
    const pgrep = spawnSync("pgrep", ["-P", leader, "-x", "sshd"], { encoding: "utf8" });
    const pids = pgrep.stdout.trim().split("\n").filter(Boolean);
    if (pids.length !== 1) {
        throw new Error(`${host}: expected one sshd listener under PID ${leader}, found '${pgrep.stdout.trim()}'`);
    }
    process.kill(Number(pids[0]), "SIGTERM");
}

// pulumi up and the lab's set-up take minutes on a cold machine.
jest.setTimeout(20 * 60 * 1000);

describe("wg-relay on day two, in the lab", () => {
    it("1. the doctor finds every host of a converged stack healthy, as a table and as JSON, and prints no secret", async () => {
        ensureStack(base);
        // Right after a first `pulumi up` the tunnels may still be handshaking.
        expect(await secondsUntilLanReachable(60)).toBeLessThan(60);
        const table = labTry(["doctor"]);
        expect(table.status).toBe(0);
        for (const host of labHosts) {
            expect(table.stdout).toMatch(new RegExp(`^${host} \\((relay|gateway|client), [^)]+\\): healthy`, "m"));
        }
        expect(table.stdout).toMatch(/\nevery host is healthy\n$/);

        const { result, report } = doctor();
        expect(result.status).toBe(0);
        expect(report.ok).toBe(true);
        expect(report.hosts.map((host) => host.name)).toEqual(labHosts);
        expect(problems(report)).toEqual([]);
        // What it looked at, on each kind of host.
        expect(findingOf(report, "relay", "rule FORWARD -i wg0 -o wg0 -j WG-RELAY-ACCESS")?.status).toBe("ok");
        expect(findingOf(report, "relay", "handshake rpi1")?.detail).toMatch(/ (s|min) ago$/);
        expect(findingOf(report, "relay", "wss port")?.status).toBe("ok");
        expect(findingOf(report, "relay", "server certificate")?.detail).toMatch(/^\d+ days left/);
        expect(findingOf(report, "rpi1", "unit wg-relay-heartbeat.service")?.status).toBe("ok");
        expect(findingOf(report, "laptop", "handshake relay")?.status).toBe("ok");
        expect(findingOf(report, "laptop", "wstunnel binary")?.status).toBe("ok");

        const secrets = [
            ...labHosts.map((host) => onHostOk(host, "cat /etc/wireguard/wg0.key").trim()),
            onHostOk("rpi1", "cat /etc/wireguard/wg0.psk").trim(),
            /=(.*)$/m.exec(onHostOk("rpi1", "cat /etc/wg-relay/wstunnel-client.env"))![1],
            readFileSync(join(repo, ".lab", "ssh", "id_ed25519"), "utf8").split("\n")[1],
        ];
        expect(secrets.every((secret) => secret.length >= 32)).toBe(true);
        for (const secret of secrets) {
            for (const output of [table.stdout, table.stderr, result.stdout, result.stderr]) {
                if (output.includes(secret)) {
                    throw new Error("a secret appears in the doctor's output");
                }
            }
        }
    });

    it("2. names each drift made by hand; the repair puts all of it back, restarting nothing that was intact", async () => {
        ensureStack(base);
        // What the repair must not restart: everything but rpi1's wstunnel client, which is stopped below.
        const intact = { relay: ["wg-relay-wstunnel-server", "wg-quick@wg0"], rpi1: ["wg-quick@wg0", "wg-relay-heartbeat"], laptop: ["wg-relay-wstunnel-client", "wg-quick@wg0"] };
        const before = runningState(intact);
        const strangerKey = wireguardPublicKey(randomBytes(32).toString("base64"));

        onHostOk("relay", "iptables -D FORWARD -i wg0 -o wg0 -j WG-RELAY-ACCESS -m comment --comment wg-relay");
        onHostOk("relay", `wg set wg0 peer ${strangerKey} allowed-ips 10.10.0.99/32`);
        onHostOk("rpi1", "systemctl stop wg-relay-wstunnel-client");
        onHostOk("relay", "rm /etc/sysctl.d/90-wg-relay.conf");

        const sick = doctor();
        expect(sick.result.status).toBe(1);
        expect(problems(sick.report)).toEqual(
            ["relay: rule FORWARD -i wg0 -o wg0 -j WG-RELAY-ACCESS", "relay: peer not declared", "relay: sysctl file", "rpi1: unit wg-relay-wstunnel-client.service"].sort(),
        );
        expect(findingOf(sick.report, "relay", "peer not declared")?.detail).toBe(`${strangerKey} (AllowedIPs 10.10.0.99/32): added by hand`);
        const table = labTry(["doctor"]);
        expect(table.status).toBe(1);
        expect(table.stdout).toMatch(/^relay \(relay, [^)]+\): 3 problems$/m);
        expect(table.stdout).toMatch(/^rpi1 \(gateway, [^)]+\): 1 problem$/m);

        repair();
        // rpi1's tunnel is back once its wstunnel client runs again: then its handshakes are current.
        expect(await secondsUntilLanReachable(60)).toBeLessThan(60);

        const healed = doctor();
        expect(problems(healed.report)).toEqual([]);
        expect(healed.result.status).toBe(0);
        onHostOk("relay", "iptables -C FORWARD -i wg0 -o wg0 -j WG-RELAY-ACCESS -m comment --comment wg-relay");
        expect(onHostOk("relay", "wg show wg0 peers")).not.toContain(strangerKey);
        expect(onHostOk("relay", "cat /etc/sysctl.d/90-wg-relay.conf")).toContain("net.ipv4.ip_forward = 1");
        expect(onHostOk("rpi1", "systemctl is-active wg-relay-wstunnel-client").trim()).toBe("active");
        expect(runningState(intact)).toEqual(before);
        // The counter stays in the config: nothing is left to do.
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
    });

    it("3. rotates the relay's key on the relay, the gateway and the laptop in one pulumi up; the laptop reaches the LAN within 15 s", async () => {
        ensureStack(base);
        const oldKey = onHostOk("relay", "wg show wg0 public-key").trim();
        const rotation: LabChanges = { ...base, relayKeyRotation: 1 };
        // The templates name keys rather than hold them: only the relay's key and the peers' public-keys files change.
        // Each peer stages the relay's new public key before the relay takes it (failover/stagedSwitch.ts).
        expect(hostSteps(changedSteps(rotation))).toEqual([
            "update laptop-public-keys", "update laptop-staged-public-keys", "update relay-wireguard-key", "update rpi1-public-keys", "update rpi1-staged-public-keys",
        ]);
        const links = runningState({});

        up();
        const finished = Date.now();
        const seconds = await secondsUntilLanReachable(60);
        console.log(`relay key rotation: the laptop reached the LAN ${seconds.toFixed(1)} s after pulumi up finished (${((Date.now() - finished) / 1000).toFixed(1)} s with the last probe)`);
        expect(seconds).toBeLessThan(15);

        const newKey = onHostOk("relay", "wg show wg0 public-key").trim();
        expect(newKey).not.toBe(oldKey);
        for (const host of ["rpi1", "laptop"] as const) {
            expect(onHostOk(host, "wg show wg0 peers").trim()).toBe(newKey);
        }
        // Applied live with `wg syncconf` everywhere: no interface restarted.
        expect(runningState({})).toEqual(links);
        expect(doctor().result.status).toBe(0);
    });
    it("4. a device enrolled in wg-easy reaches the LAN after the import and `pulumi up`, its config unchanged", async () => {
        ensureStack(base);
        // wg-easy's export, as its server would have it: its own key, and a phone (WG_DEFAULT_ADDRESS=10.10.0.x).
        const key = () => randomBytes(32).toString("base64");
        const server = { privateKey: key(), address: "10.10.0.1" };
        const phone = { privateKey: key(), preSharedKey: key(), address: "10.10.0.9" };
        const folder = join(repo, ".lab", "wg-easy");
        mkdirSync(folder, { recursive: true, mode: 0o700 });
        const exported = join(folder, "wg0.json");
        writeFileSync(
            exported,
            JSON.stringify({
                server: { ...server, publicKey: wireguardPublicKey(server.privateKey) },
                clients: {
                    "3f0c8a2e-phone": { id: "3f0c8a2e-phone", name: "Phone", enabled: true, ...phone, publicKey: wireguardPublicKey(phone.privateKey) },
                },
            }),
            { mode: 0o600 },
        );
        // The phone's side, as wg-easy rendered it, up before the import: on the internet, dialling the relay's UDP port.
        const deviceConf = join(folder, "phone.conf");
        writeFileSync(
            deviceConf,
            [
                "[Interface]",
                `PrivateKey = ${phone.privateKey}`,
                "[Peer]",
                `PublicKey = ${wireguardPublicKey(server.privateKey)}`,
                `PresharedKey = ${phone.preSharedKey}`,
                "AllowedIPs = 10.10.0.0/24, 192.168.1.0/24",
                "Endpoint = 198.51.100.10:51820",
                "PersistentKeepalive = 25",
                "",
            ].join("\n"),
            { mode: 0o600 },
        );
        const wireguardGo = spawnSync("bash", ["lab/toolchain.sh", "--wireguard-go"], { cwd: repo, encoding: "utf8" }).stdout.trim();
        const device = startInNamespace("inet", [wireguardGo, "-f", "wgeasy0"]);
        try {
            await eventually(() => inNamespace("inet", ["ip", "link", "show", "wgeasy0"]).stdout, (text) => text.includes("wgeasy0"));
            inNamespaceOk("inet", ["wg", "setconf", "wgeasy0", deviceConf]);
            inNamespaceOk("inet", ["ip", "addr", "add", `${phone.address}/24`, "dev", "wgeasy0"]);
            inNamespaceOk("inet", ["ip", "link", "set", "wgeasy0", "up"]);
            inNamespaceOk("inet", ["ip", "route", "add", "192.168.1.0/24", "dev", "wgeasy0"]);
            const phoneGetsPage = () => inNamespace("inet", ["curl", "--silent", "--max-time", "3", lanService]).stdout.includes("hello from lanhost");
            expect(phoneGetsPage()).toBe(false); // the control: before the import the relay does not know it

            const imported = lab(["import-wg-easy", exported, "--host", "198.51.100.10", "--allowed-ips", "10.10.0.0/24, 192.168.1.0/24"]);
            expect(imported).not.toContain(phone.privateKey);
            up();
            const start = Date.now();
            while (!phoneGetsPage() && Date.now() - start < 30_000) {
                await new Promise((done) => setTimeout(done, 500));
            }
            const seconds = (Date.now() - start) / 1000;
            console.log(`wg-easy import: the unchanged phone reached the LAN ${seconds.toFixed(1)} s after pulumi up finished`);
            expect(phoneGetsPage()).toBe(true);
            // The relay took wg-easy's key; the gateway and the laptop followed in the same run.
            expect(onHostOk("relay", "wg show wg0 public-key").trim()).toBe(wireguardPublicKey(server.privateKey));
            expect(await secondsUntilLanReachable(30)).toBeLessThan(30);
            expect(readFileSync(deviceConf, "utf8")).toContain(`PublicKey = ${wireguardPublicKey(server.privateKey)}`);
        } finally {
            await device.stop();
            rmSync(folder, { recursive: true, force: true });
            // Back to the lab's own config (and a generated relay key) for whatever runs next.
            ensureStack(base);
        }
    });

    it("5. a client whose machine is gone: removed from the config, every pulumi up fails on its deletes; forget-client drops it, the relay refuses its key and prefix, and the stack converges", async () => {
        ensureStack(base);
        const wireguard = { host: "127.0.0.1", port: 51820 };
        const oldKey = onHostOk("laptop", "wg show wg0 public-key").trim();
        const oldPrefix = /=(.*)$/m.exec(clientBundle("laptop").wstunnelEnvironment)![1];
        expect(onHostOk("relay", "wg show wg0 peers")).toContain(oldKey); // the controls
        expect(upgradeStatus(oldPrefix, wireguard)).toBe("101");

        stopSshd("laptop");
        try {
            expect(onHost("laptop", "true").stderr).toMatch(/Connection refused/);
            writeStack({ ...base, withoutLaptop: true });
            const started = Date.now();
            const failed = failingUp();
            console.log(`offline client: pulumi up failed on its deletes after ${((Date.now() - started) / 1000).toFixed(0)} s`);
            expect(failed.status).not.toBe(0);
            expect(failed.stdout).toMatch(/laptop-\S+ \*\*deleting failed\*\* error: after 20 failed attempts: dial tcp 10\.254\.1\.2:22: connect: connection refused/);
            // The relay's steps do not wait for the client's deletes: it lost the peer in the failed run.
            expect(onHostOk("relay", "wg show wg0 peers")).not.toContain(oldKey);

            const forgetting = Date.now();
            const forgotten = forgetClient("laptop");
            console.log(`offline client: forget-client with its pulumi up took ${((Date.now() - forgetting) / 1000).toFixed(0)} s`);
            expect(forgotten).toMatch(/forget-client: laptop and its \d+ steps on its machine are out of the stack's state/);
            lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
            expect(onHostOk("relay", "wg show wg0 peers")).not.toContain(oldKey);
            // wstunnel reloads its restrictions file when it changes.
            expect(await eventually(() => upgradeStatus(oldPrefix, wireguard), (status) => status === "400")).toBe("400");
            expect(doctor().result.status).toBe(0);

            // The machine comes back with what it had: its wg0 and wstunnel client, the old key and prefix, which get nowhere.
            lab(["host", "stop", "laptop"]);
            lab(["host", "start", "laptop"]);
            expect(onHostOk("laptop", "systemctl is-active wg-quick@wg0 wg-relay-wstunnel-client").split("\n").filter(Boolean)).toEqual(["active", "active"]);
            await new Promise((done) => setTimeout(done, 10_000));
            expect(onHostOk("laptop", "wg show wg0 latest-handshakes").trim()).toMatch(/\t0$/);
            expect(inNamespace("laptop", ["curl", "--silent", "--max-time", "3", lanService]).status).not.toBe(0);
            // The README's cleanup for such a machine (section "Removing a client whose machine is gone") leaves nothing of wg-relay.
            onHostOk(
                "laptop",
                [
                    "cd /etc/systemd/system && systemctl disable --now wg-quick@wg0 wg-relay-*.service",
                    "rm -rf /etc/systemd/system/wg-relay-*.service /etc/wg-relay /var/lib/wg-relay /usr/local/lib/wg-relay /etc/wireguard/wg0.conf /etc/wireguard/wg0.key /etc/wireguard/wg0.psk /usr/local/bin/wstunnel /tmp/wg-relay-wstunnel-*",
                    "systemctl daemon-reload",
                ].join("\n"),
            );
            expect(onHost("laptop", "ip link show wg0").status).not.toBe(0);
            expect(onHostOk("laptop", "systemctl is-enabled wg-quick@wg0 || true").trim()).toBe("disabled");
            const leftOver = "systemctl list-unit-files --plain --no-legend 'wg-relay-*'; ls -A /etc/wireguard; ls -d /etc/wg-relay /var/lib/wg-relay /usr/local/lib/wg-relay /usr/local/bin/wstunnel; pgrep -l 'wstunnel|wireguard-go'; true";
            expect(onHostOk("laptop", `(${leftOver}) 2>/dev/null`).trim()).toBe("");
        } finally {
            // Back to the usual stack: the laptop (booted again if its sshd is still stopped) provisioned anew, with a new key.
            if (onHost("laptop", "true").status !== 0) {
                lab(["host", "stop", "laptop"]);
                lab(["host", "start", "laptop"]);
            }
            ensureStack(base);
        }
        expect(await secondsUntilLanReachable(30)).toBeLessThan(30);
    });
});
