// End to end, on the lab's real hosts (lab/README.md): the real Pulumi engine converges bare Debian hosts over SSH,
// and every check is real traffic or real host state. Needs root; run with `npm run test:all`.
import { randomBytes, randomUUID } from "node:crypto";
import { readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { inNamespace, inNamespaceOk, lab, labTry, onHost, onHostOk, repo, Result, startInNamespace } from "./lab";

const relayAddress = "198.51.100.10";
const lanService = "http://192.168.1.20/";

interface PreviewStep {
    op: string;
    urn: string;
}

function changedSteps(extraClients: string): PreviewStep[] {
    lab(["stack-config"], { EXTRA_CLIENTS: extraClients });
    const preview = JSON.parse(lab(["pulumi", "preview", "--stack", "lab", "--json"])) as { steps: PreviewStep[] };
    return preview.steps.filter((step) => step.op !== "same");
}

const resourceName = (urn: string) => urn.split("::").pop()!;

/** Status of a WebSocket upgrade to the relay's wstunnel, sent from the internet namespace. */
function upgradeStatus(prefix: string, destination: { host: string; port: number }): string {
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
        "--header", "Sec-WebSocket-Version: 13",
        "--header", `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
        "--header", `Sec-WebSocket-Protocol: v1, authorization.bearer.${jwt}`,
        `https://${relayAddress}:443/${prefix}/events`,
    ]);
    return result.stdout.trim();
}

function clientBundle(name: string): { wstunnelEnvironment: string } {
    const bundles = JSON.parse(lab(["pulumi", "stack", "output", "clientBundles", "--stack", "lab", "--show-secrets", "--json"]));
    return bundles[name];
}

function iptablesDrops(host: "relay", chain: string, match: string): number {
    const listing = onHostOk(host, `iptables -L ${chain} -v -x -n`);
    return listing
        .split("\n")
        .filter((line) => line.includes(match))
        .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0);
}

// pulumi up and the lab's set-up take minutes on a cold machine.
jest.setTimeout(20 * 60 * 1000);

/** Every file of the lab stack's state backend, as text. */
function stateText(): string {
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

describe("wg-relay in the lab", () => {
    let firstUpLog = "";

    beforeAll(() => {
        lab(["down"]);
        lab(["prepare"]);
    });

    afterAll(() => {
        labTry(["down"]);
    });

    it("1. converges bare hosts; the laptop reaches the LAN through wss:443 while its direct UDP is dropped", () => {
        firstUpLog = lab(["pulumi", "up", "--stack", "lab", "--yes", "--skip-preview"]);
        expect(inNamespaceOk("laptop", ["curl", "--silent", "--max-time", "10", lanService])).toContain("hello from lanhost");
        // It went through WireGuard, carried by the laptop's wstunnel over TCP 443.
        expect(inNamespaceOk("laptop", ["ip", "-4", "route", "get", "192.168.1.20"])).toMatch(/dev wg0/);
        expect(inNamespaceOk("laptop", ["ss", "-tnH", "state", "established", "dst", `${relayAddress}:443`])).toContain(`${relayAddress}:443`);
        // `proof` also sends UDP straight to the relay and requires the hotel firewall's drop counter to rise.
        expect(lab(["proof"])).toMatch(/dropped by the hotel firewall/);
    });

    it("2. keeps the gateway's tunnel up although nothing can open a connection into the home", () => {
        const handshakes = onHostOk("rpi1", "wg show wg0 latest-handshakes").trim().split(/\s+/);
        expect(Number(handshakes[1])).toBeGreaterThan(Date.now() / 1000 - 180);
        const tcpConnect = (namespace: string, target: string) =>
            inNamespace(namespace, ["timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${target}/22`]).status;
        // From outside the tunnel: the home's CG-NAT address and the Pi are closed to the relay and the internet.
        expect(tcpConnect("relay", "100.64.0.2")).not.toBe(0);
        expect(tcpConnect("inet", "100.64.0.2")).not.toBe(0);
        expect(tcpConnect("inet", "192.168.1.130")).not.toBe(0);
        // Through the tunnel the Pi opened, the relay reaches the Pi and its LAN.
        expect(tcpConnect("relay", "10.10.0.2")).toBe(0);
        expect(inNamespaceOk("relay", ["ip", "-4", "route", "get", "192.168.1.130"])).toMatch(/dev wg0/);
        expect(tcpConnect("relay", "192.168.1.130")).toBe(0);
    });

    it("3. reports no changes right after", () => {
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
    });

    it("4. keeps secrets out of state, outputs, logs and process lists", () => {
        const secrets = [
            onHostOk("relay", "cat /etc/wireguard/wg0.key").trim(),
            onHostOk("rpi1", "cat /etc/wireguard/wg0.key").trim(),
            onHostOk("laptop", "cat /etc/wireguard/wg0.key").trim(),
            /=(.*)$/m.exec(onHostOk("relay", "cat /etc/wg-relay/wstunnel-server.env"))![1],
            onHostOk("relay", "cat /etc/wg-relay/tls/server.key").split("\n")[1],
            readFileSync(join(repo, ".lab", "ssh", "id_ed25519"), "utf8").split("\n")[1],
        ];
        expect(secrets.every((secret) => secret.length >= 32)).toBe(true);
        const places: Record<string, string> = {
            state: stateText(),
            "pulumi up output": firstUpLog,
            "stack outputs": lab(["pulumi", "stack", "output", "--stack", "lab", "--json"]),
            "rendered wg0.conf": onHostOk("relay", "cat /etc/wireguard/wg0.conf") + onHostOk("rpi1", "cat /etc/wireguard/wg0.conf"),
        };
        for (const host of ["relay", "rpi1", "laptop"] as const) {
            places[`${host} process list`] = onHostOk(host, "ps -eww -o args");
            places[`${host} journal`] = onHostOk(host, "journalctl --no-pager -b -o cat");
        }
        for (const [place, text] of Object.entries(places)) {
            for (const secret of secrets) {
                if (text.includes(secret)) {
                    throw new Error(`a secret appears in plaintext in the ${place}`);
                }
            }
        }
        // The keys are there, encrypted: the state is not merely empty.
        expect(places.state).toContain("ciphertext");
        expect(onHostOk("rpi1", "stat -c %a /etc/wireguard/wg0.key /etc/wg-relay/wstunnel-client.env").split("\n").slice(0, 2)).toEqual(["600", "600"]);
    });

    it("5. adds a client by changing only the relay's peers, without a lost packet across the gateway's tunnel", async () => {
        const newClient = JSON.stringify([{ name: "phone", tunnelAddress: "10.10.0.4" }]);
        const steps = changedSteps(newClient);
        const hostSteps = steps.filter((step) => step.urn.includes("command:remote:"));
        expect(hostSteps.map((step) => [step.op, resourceName(step.urn)])).toEqual([["update", "relay-wireguard-conf"]]);
        expect(steps.every((step) => step.op === "create" || resourceName(step.urn) === "relay-wireguard-conf")).toBe(true);

        const relayLinkBefore = onHostOk("relay", "cat /sys/class/net/wg0/ifindex");
        const ping = startInNamespace("laptop", ["ping", "-n", "-i", "0.2", "192.168.1.20"]);
        try {
            await new Promise((done) => setTimeout(done, 2000));
            lab(["pulumi", "up", "--stack", "lab", "--yes", "--skip-preview"]);
            await new Promise((done) => setTimeout(done, 2000));
        } finally {
            const output = await ping.stop();
            expect(output).toMatch(/ 0% packet loss/);
        }
        expect(onHostOk("relay", "cat /sys/class/net/wg0/ifindex")).toBe(relayLinkBefore);
        expect(onHostOk("relay", "wg show wg0 allowed-ips")).toContain("10.10.0.4/32");
    });

    it("6. exposes only wss: WireGuard's UDP port is dropped; wstunnel needs the prefix and forwards only to WireGuard", () => {
        const before = iptablesDrops("relay", "INPUT", "udp dpt:51820");
        inNamespaceOk("inet", ["bash", "-c", `echo probe > /dev/udp/${relayAddress}/51820`]);
        expect(iptablesDrops("relay", "INPUT", "udp dpt:51820")).toBeGreaterThan(before);

        const prefix = /=(.*)$/m.exec(clientBundle("laptop").wstunnelEnvironment)![1];
        const wireguard = { host: "127.0.0.1", port: 51820 };
        expect(upgradeStatus(prefix, wireguard)).toBe("101"); // the control: a well-formed request is accepted
        expect(upgradeStatus("v1", wireguard)).toBe("400");
        expect(upgradeStatus(`${prefix}x`, wireguard)).toBe("400");
        expect(upgradeStatus(prefix, { host: "127.0.0.1", port: 22 })).toBe("400");
        expect(upgradeStatus(prefix, { host: "192.168.1.20", port: 80 })).toBe("400");
    });

    it("7. destroys what it installed and nothing else: SSH still works", () => {
        lab(["pulumi", "destroy", "--stack", "lab", "--yes", "--skip-preview"]);
        const installed = [
            "/usr/local/bin/wstunnel",
            "/usr/local/lib/wg-relay",
            "/etc/wireguard/wg0.conf",
            "/etc/wireguard/wg0.key",
            "/etc/wg-relay",
            "/var/lib/wg-relay",
            "/etc/sysctl.d/90-wg-relay.conf",
            "/etc/systemd/system/wg-relay-wstunnel-server.service",
            "/etc/systemd/system/wg-relay-wstunnel-client.service",
            "/usr/local/share/ca-certificates/wg-relay-lab.crt",
        ];
        for (const host of ["relay", "rpi1", "laptop"] as const) {
            const left = onHostOk(host, `for f in ${installed.join(" ")}; do [ ! -e $f ] || echo $f; done`);
            expect(left.trim()).toBe("");
            expect(onHostOk(host, "iptables-save | grep -c wg-relay || true").trim()).toBe("0");
            expect(onHostOk(host, "ip link show wg0 2>/dev/null | wc -l").trim()).toBe("0");
            expect(onHostOk(host, "systemctl list-units --all --plain --no-legend 'wg-relay-*' | wc -l").trim()).toBe("0");
            expect(onHost(host, "true").status).toBe(0);
        }
    });

    it("8. loses nothing when an apply fails, and converges on the next run", () => {
        // The Pi's user loses sudo (sudo skips files with a dot in their name): every step on the Pi fails.
        const sudoers = join(repo, ".lab", "hosts", "rpi1", "root", "etc", "sudoers.d", "90-wg-relay-lab");
        renameSync(sudoers, `${sudoers}.parked`);
        let failed: Result;
        try {
            failed = labTry(["pulumi", "up", "--stack", "lab", "--yes", "--skip-preview"]);
        } finally {
            renameSync(`${sudoers}.parked`, sudoers);
        }
        expect(failed.status).not.toBe(0);
        // The failing step is named, with the host's own error output.
        expect(failed.stdout + failed.stderr).toMatch(/rpi1-packages[^\n]*failed/);
        expect(failed.stdout + failed.stderr).toMatch(/sudo: a password is required/);

        lab(["pulumi", "up", "--stack", "lab", "--yes", "--skip-preview"]);
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
        expect(lab(["proof"])).toContain("hello from lanhost");
    });
});
