// End to end, on the lab's real hosts (lab/README.md): the real Pulumi engine converges bare Debian hosts over SSH,
// and every check is real traffic or real host state. Needs root; run with `npm run test:all`.
import { createHash } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as yaml from "js-yaml";
import type { LabChanges } from "../../lab/stack-config";
import {
    changedSteps,
    clientBundle,
    destroy,
    ensureStack,
    eventually,
    expectNoSecretIn,
    failingUp,
    hostSteps,
    inNamespace,
    inNamespaceOk,
    lab,
    LabHost,
    labHosts,
    onHost,
    onHostOk,
    relayAddress,
    repo,
    Result,
    lanService,
    secondsUntilLanReachable,
    stateText,
    up,
    upgradeStatus,
    upWithoutLoss,
    withPhone,
    writeStack,
    wstunnelUnits,
} from "./lab";


/** The stack as tests 7 to 12 start from it: a second client, and the gateway's keys rotated once. */
const rotated: LabChanges = { ...withPhone, gatewayKeyRotation: 1 };

/** A host's own wstunnel path prefix, from its environment file. */
const pathPrefix = (host: "rpi1" | "laptop" = "rpi1") => /=(.*)$/m.exec(onHostOk(host, "cat /etc/wg-relay/wstunnel-client.env"))![1];

function iptablesDrops(host: "relay", chain: string, match: string): number {
    const listing = onHostOk(host, `iptables -L ${chain} -v -x -n`);
    return listing
        .split("\n")
        .filter((line) => line.includes(match))
        .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0);
}

// pulumi up and the lab's set-up take minutes on a cold machine.
jest.setTimeout(20 * 60 * 1000);

describe("wg-relay in the lab", () => {
    let firstUpLog = "";

    afterAll(() => {
        rmSync(join(repo, ".lab", "wstunnel-changed"), { force: true });
    });

    it("1. converges bare hosts; the laptop reaches the LAN through wss:443 while its direct UDP is dropped", () => {
        // Bare whichever test file ran before (nothing to do when none did).
        destroy();
        firstUpLog = ensureStack({});
        expect(inNamespaceOk("laptop", ["curl", "--silent", "--max-time", "10", lanService])).toContain("hello from lanhost");
        // It went through WireGuard, carried by the laptop's wstunnel over TCP 443.
        expect(inNamespaceOk("laptop", ["ip", "-4", "route", "get", "192.168.1.20"])).toMatch(/dev wg0/);
        expect(inNamespaceOk("laptop", ["ss", "-tnH", "state", "established", "dst", `${relayAddress}:443`])).toContain(`${relayAddress}:443`);
        // `proof` also sends UDP straight to the relay and requires the hotel firewall's drop counter to rise.
        expect(lab(["proof"])).toMatch(/dropped by the hotel firewall/);
    });

    it("2. keeps the gateway's tunnel up although nothing can open a connection into the home", () => {
        ensureStack({});
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
        ensureStack({});
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
    });

    it("4. keeps secrets out of state, outputs, logs and process lists", () => {
        // The output of the `pulumi up` that converged bare hosts: test 1's, or this test's own when run alone.
        const upLog = ensureStack({}) || firstUpLog;
        const secrets = [
            onHostOk("relay", "cat /etc/wireguard/wg0.key").trim(),
            onHostOk("rpi1", "cat /etc/wireguard/wg0.key").trim(),
            onHostOk("laptop", "cat /etc/wireguard/wg0.key").trim(),
            onHostOk("rpi1", "cat /etc/wireguard/wg0.psk").trim(),
            pathPrefix("rpi1"),
            pathPrefix("laptop"),
            onHostOk("relay", "cat /etc/wg-relay/tls/server.key").split("\n")[1],
            readFileSync(join(repo, ".lab", "ssh", "id_ed25519"), "utf8").split("\n")[1],
        ];
        expect(secrets.every((secret) => secret.length >= 32)).toBe(true);
        const places: Record<string, string> = {
            state: stateText(),
            "pulumi up output": upLog,
            "stack outputs": lab(["pulumi", "stack", "output", "--stack", "lab", "--json"]),
            // What the program pushed (and state holds): the templates and public keys, never a secret.
            "wg0 templates and public keys": labHosts.map((host) => onHostOk(host, "cat /etc/wg-relay/wg0.template.conf /etc/wg-relay/wg0.public-keys")).join(""),
        };
        for (const host of labHosts) {
            places[`${host} process list`] = onHostOk(host, "ps -eww -o args");
            places[`${host} journal`] = onHostOk(host, "journalctl --no-pager -b -o cat");
        }
        expectNoSecretIn(places, secrets);
        // The keys are there, encrypted: the state is not merely empty.
        expect(places.state).toContain("ciphertext");
        // wstunnel still logs the tunnels it accepts, under each peer's rule, named after the peer.
        expect(places["relay journal"]).toContain("Tunnel accepted due to matched restriction: wg-relay: rpi1 to WireGuard on 127.0.0.1:51820");
        expect(places["relay journal"]).toContain("Tunnel accepted due to matched restriction: wg-relay: laptop to WireGuard on 127.0.0.1:51820");
        // wg0.conf, with the keys filled in on the host, is root-only like the key files.
        expect(onHostOk("rpi1", "stat -c %a /etc/wireguard/wg0.key /etc/wireguard/wg0.conf /etc/wg-relay/wstunnel-client.env").trim().split("\n")).toEqual(["600", "600", "600"]);
        // Root and the wstunnel server's group only: it reads the file in place, to reload it when it changes.
        expect(onHostOk("relay", "stat -c '%a %U:%G' /etc/wg-relay/wstunnel-restrictions.yaml").trim()).toBe("640 root:wg-relay-wstunnel");
    });

    it("5. adds a client by changing only the relay's peers, previewed line by line, without a lost packet across the gateway's tunnel", async () => {
        ensureStack({});
        const steps = changedSteps(withPhone);
        // Its access rules and its wstunnel rule too, each loaded live (neither restarts anything: the ping below).
        expect(hostSteps(steps)).toEqual(["update relay-access-rules", "update relay-public-keys", "update relay-wireguard-template", "update relay-wstunnel-server-restrictions"]);
        expect(steps.every((step) => step.op === "create" || step.urn.includes("command:remote:"))).toBe(true);
        // The new peer's key is made only by the apply, yet its lines show in the preview, once.
        const diff = lab(["pulumi", "preview", "--stack", "lab", "--diff"]);
        const peerLines = diff.split("\n").filter((line) => line.includes("AllowedIPs = 10.10.0.4/32"));
        expect(peerLines).toHaveLength(1);
        expect(peerLines[0]).toMatch(/^\s*\+\s+AllowedIPs = 10\.10\.0\.4\/32$/);
        expect(diff).toMatch(/\+\s+# phone \(client\)\n\s*\+\s+PublicKey = <public key of phone>\n/);

        const relayLinkBefore = onHostOk("relay", "cat /sys/class/net/wg0/ifindex");
        const presharedKeys = () => onHostOk("relay", "wg show wg0 preshared-keys");
        const presharedKeysBefore = presharedKeys();
        expect(presharedKeysBefore).toMatch(/\t[A-Za-z0-9+/]{43}=\n/); // the gateway's, set from its file
        await upWithoutLoss();
        expect(onHostOk("relay", "cat /sys/class/net/wg0/ifindex")).toBe(relayLinkBefore);
        expect(onHostOk("relay", "wg show wg0 allowed-ips")).toContain("10.10.0.4/32");
        // wg syncconf was given the preshared keys back: the gateway's is unchanged, the new peer has none.
        for (const line of presharedKeysBefore.trim().split("\n")) {
            expect(presharedKeys()).toContain(line);
        }
    });

    it("6. rotates the gateway's keys on the gateway and the relay only, live", async () => {
        ensureStack(withPhone);
        const oldKey = onHostOk("rpi1", "wg show wg0 public-key").trim();
        const steps = changedSteps(rotated);
        // The preshared key rotates with the key pair; the templates name keys, so they do not change.
        // So does its wstunnel path prefix: the relay's restrictions first, then the Pi's environment file.
        expect(hostSteps(steps)).toEqual([
            "update relay-preshared-key-rpi1", "update relay-public-keys", "update relay-wstunnel-server-restrictions",
            "update rpi1-preshared-key", "update rpi1-wireguard-key", "update rpi1-wstunnel-client-env",
        ]);
        const relayLinkBefore = onHostOk("relay", "cat /sys/class/net/wg0/ifindex");
        up();
        const newKey = onHostOk("rpi1", "wg show wg0 public-key").trim();
        expect(newKey).not.toBe(oldKey);
        expect(onHostOk("relay", "wg show wg0 peers")).toContain(newKey);
        expect(onHostOk("relay", "wg show wg0 peers")).not.toContain(oldKey);
        expect(onHostOk("relay", "cat /sys/class/net/wg0/ifindex")).toBe(relayLinkBefore);
        // The Pi handshakes with its new key at once (wg-apply re-arms its keepalive), not at its next keepalive (25 s).
        expect(await secondsUntilLanReachable(60)).toBeLessThan(15);
    });

    it("7. replaces the wstunnel binary everywhere and restarts only wstunnel", async () => {
        ensureStack(rotated);
        const current = (yaml.load(readFileSync(join(repo, "Pulumi.lab.yaml"), "utf8")) as any).config["wg-relay:wstunnel"].localBinary;
        const changed = join(repo, ".lab", "wstunnel-changed");
        // Bytes after the end of an ELF file are ignored when it runs: same program, another checksum.
        writeFileSync(changed, Buffer.concat([readFileSync(current), Buffer.from("\nwg-relay e2e\n")]), { mode: 0o755 });
        const steps = changedSteps(rotated, { WG_RELAY_WSTUNNEL_BINARY: changed });
        const expected = labHosts.flatMap((host) => [`replace ${host}-wstunnel-upload`, `update ${host}-wstunnel-binary`]);
        expect(hostSteps(steps).filter((step) => !step.startsWith("create-replacement") && !step.startsWith("delete-replaced"))).toEqual(expected.sort());
        const invocation = (host: LabHost) => onHostOk(host, `systemctl show -p InvocationID --value ${wstunnelUnits[host]}`).trim();
        const wgLink = (host: LabHost) => onHostOk(host, "cat /sys/class/net/wg0/ifindex").trim();
        const before = labHosts.map((host) => [invocation(host), wgLink(host)]);
        up();
        const after = labHosts.map((host) => [invocation(host), wgLink(host)]);
        for (const [index, [unitBefore, linkBefore]] of before.entries()) {
            expect(after[index][0]).not.toBe(unitBefore); // wstunnel restarted
            expect(after[index][1]).toBe(linkBefore); // WireGuard did not
        }
        expect(onHostOk("rpi1", "sha256sum /usr/local/bin/wstunnel").split(" ")[0]).toBe(createHash("sha256").update(readFileSync(changed)).digest("hex"));
        expect(await secondsUntilLanReachable(60)).toBeLessThan(60);
    });

    it("8. reaches the laptop through the relay as a jump host; re-running every step there restarts nothing", () => {
        ensureStack(rotated);
        const state = () => [
            onHostOk("laptop", "systemctl show -p InvocationID --value wg-relay-wstunnel-client").trim(),
            onHostOk("laptop", "cat /sys/class/net/wg0/ifindex").trim(),
            onHostOk("laptop", "systemctl show -p InvocationID --value wg-quick@wg0").trim(),
        ];
        const before = state();
        const steps = changedSteps({ ...rotated, laptopViaRelay: true });
        // Only the connection changed, so every laptop step runs again, now through the tunnel it set up.
        expect(hostSteps(steps).filter((step) => !step.startsWith("update laptop-"))).toEqual([]);
        expect(hostSteps(steps)).toContain("update laptop-wstunnel-client-unit");
        up();
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
        expect(state()).toEqual(before);
        // And back to the direct link (`pulumi destroy` removes the tunnel a jump through the relay depends on).
        ensureStack(rotated);
        expect(state()).toEqual(before);
    });

    it("9. exposes only wss: WireGuard's UDP port is dropped; wstunnel needs the prefix and forwards only to WireGuard", async () => {
        ensureStack(rotated);
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

        // An allowed tunnel in a WebSocket version other than 13: wstunnel refuses the upgrade with a warning that
        // prints the request URI, which holds the prefix; the journal gets the line with the path redacted.
        const since = onHostOk("relay", "date +%s").trim();
        expect(upgradeStatus(prefix, wireguard, { websocketVersion: 12 })).toBe("400");
        const journal = await eventually(() => onHostOk("relay", `journalctl --no-pager -o cat --since @${since} -u wg-relay-wstunnel-server`), (text) =>
            text.includes("Rejecting connection"),
        );
        expect(journal).toMatch(/Rejecting connection with bad upgrade request: .* \/<path redacted>/);
        expect(journal).not.toContain(prefix);
    });

    it("10. destroys what it installed and nothing else, and puts back the host's own sysctl values: SSH still works", () => {
        ensureStack(rotated);
        // The relay and the Pi forward while the stack is up; the lab's hosts (new network namespaces) did not before.
        const forwarding = (host: LabHost) => onHostOk(host, "sysctl -n net.ipv4.ip_forward").trim();
        expect([forwarding("relay"), forwarding("rpi1")]).toEqual(["1", "1"]);
        destroy();
        expect([forwarding("relay"), forwarding("rpi1")]).toEqual(["0", "0"]);
        const installed = [
            "/usr/local/bin/wstunnel",
            "/usr/local/lib/wg-relay",
            "/etc/wireguard/wg0.conf",
            "/etc/wireguard/wg0.key",
            "/etc/wireguard/wg0.psk",
            "/etc/wireguard/psk",
            "/etc/wg-relay",
            "/var/lib/wg-relay",
            "/etc/sysctl.d/90-wg-relay.conf",
            "/etc/systemd/system/wg-relay-wstunnel-server.service",
            "/etc/systemd/system/wg-relay-wstunnel-client.service",
            "/etc/systemd/system/wg-relay-heartbeat.service",
            "/usr/local/share/ca-certificates/wg-relay-lab.crt",
        ];
        for (const host of labHosts) {
            const left = onHostOk(host, `for f in ${installed.join(" ")}; do [ ! -e $f ] || echo $f; done`);
            expect(left.trim()).toBe("");
            expect(onHostOk(host, "iptables-save | grep -ci wg-relay || true").trim()).toBe("0");
            expect(onHostOk(host, "getent group wg-relay-wstunnel || true").trim()).toBe("");
            expect(onHostOk(host, "ip link show wg0 2>/dev/null | wc -l").trim()).toBe("0");
            // No unit file left, and nothing of ours running (systemd may still list a removed unit as not-found and dead).
            expect(onHostOk(host, "systemctl list-unit-files --no-legend 'wg-relay-*' | wc -l").trim()).toBe("0");
            expect(onHostOk(host, "systemctl list-units --all --plain --no-legend 'wg-relay-*' | grep -v ' not-found inactive dead ' | wc -l").trim()).toBe("0");
            expect(onHost(host, "true").status).toBe(0);
        }
    });

    it("11. loses nothing when an apply fails, and converges on the next run", () => {
        // From hosts with nothing of the stack on them, so that every step has work to do.
        writeStack(rotated);
        destroy();
        // The Pi's user loses sudo (sudo skips files with a dot in their name): every step on the Pi fails.
        const sudoers = join(repo, ".lab", "hosts", "rpi1", "root", "etc", "sudoers.d", "90-wg-relay-lab");
        renameSync(sudoers, `${sudoers}.parked`);
        let failed: Result;
        try {
            failed = failingUp();
        } finally {
            renameSync(`${sudoers}.parked`, sudoers);
        }
        expect(failed.status).not.toBe(0);
        // The failing step is named, with the host's own error output. Which of the Pi's steps fails first depends
        // on timing: those without prerequisites start together.
        expect(failed.stdout + failed.stderr).toMatch(/command:remote:Command rpi1-[a-z0-9-]+ \*\*creating failed\*\*/);
        expect(failed.stdout + failed.stderr).toMatch(/sudo: a password is required/);

        up();
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
        expect(lab(["proof"])).toContain("hello from lanhost");
    });

    it("12. installs wstunnel from a release mirror, verified by its checksum; a tampered archive is refused and the old binary keeps running", async () => {
        ensureStack(rotated);
        lab(["mirror"]);
        const version = onHostOk("relay", "/usr/local/bin/wstunnel --version").trim().split(" ").pop()!;
        const folder = join(repo, ".lab", "hosts", "mirror", "www", `v${version}`);
        // The line of the hosts' architecture (a lab with the arm64 Pi VM serves the arm64 archive beside it).
        const asset = `wstunnel_${version}_linux_amd64.tar.gz`;
        const [sha256] = readFileSync(join(folder, "checksums.txt"), "utf8").trim().split("\n").map((line) => line.split(/\s+/)).find((line) => line[1] === asset)!;
        // As releases ship it: a bare `wstunnel` at the top of the archive.
        expect(inNamespaceOk("op", ["tar", "-tzf", join(folder, asset)]).trim()).toBe("wstunnel");
        const archive = join(folder, asset);
        const genuine = readFileSync(archive);
        const mirror = { baseUrl: "http://198.51.100.1", version, sha256: { amd64: sha256 } };
        const running = () =>
            labHosts.map((host) => ({
                binary: onHostOk(host, "sha256sum /usr/local/bin/wstunnel").split(" ")[0],
                invocation: onHostOk(host, `systemctl show -p InvocationID --value ${wstunnelUnits[host]}`).trim(),
                state: onHostOk(host, `systemctl show -p ActiveState --value ${wstunnelUnits[host]}`).trim(),
            }));
        const before = running();
        expect(before.map((host) => host.state)).toEqual(["active", "active", "active"]);
        try {
            const tampered = Buffer.concat([genuine, Buffer.from("tampered")]);
            writeFileSync(archive, tampered);
            const steps = hostSteps(changedSteps({ ...rotated, wstunnelMirror: mirror }));
            // The installer is the same script; what it is told to install changed.
            for (const host of labHosts) {
                expect(steps).toContain(`update ${host}-wstunnel-binary`);
                expect(steps).not.toContain(`update ${host}-wstunnel-installer`);
            }
            const failed = failingUp();
            expect(failed.status).not.toBe(0);
            const digest = createHash("sha256").update(tampered).digest("hex");
            expect(failed.stdout + failed.stderr).toContain(`SHA-256 mismatch for ${asset}: expected ${sha256}, got ${digest}; keeping the installed binary`);
            expect(running()).toEqual(before); // same binary, same process, still active
        } finally {
            writeFileSync(archive, genuine);
        }
        up();
        expect(onHostOk("relay", "cat /var/lib/wg-relay/wstunnel-release.sha256").trim()).toBe(sha256);
        const after = running();
        expect(after.map((host) => host.binary)).toEqual(before.map((host) => host.binary)); // the same program
        expect(after.map((host) => host.state)).toEqual(["active", "active", "active"]);
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
        expect(await secondsUntilLanReachable(60)).toBeLessThan(60);
    });
});
