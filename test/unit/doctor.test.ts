// npm run doctor's pure parts: the script a host runs, how its answer is read, every check, the table and the JSON,
// and the SSH files the runner writes. The real run is in the lab (test/e2e/day-two.test.ts).
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStackConfig } from "../../components/config";
import { DeclaredHost } from "../../components/plan/declaredHosts";
import { wgApplyScriptPath } from "../../components/host/paths";
import { hostScript, hostScriptsDir } from "../../components/host/scripts";
import {
    checkHost,
    checkClientCertificate,
    checkRelayEndpoint,
    hostReport,
    Observed,
    parseProbe,
    probeFailed,
    probeScript,
    renderKnownHosts,
    renderSshConfig,
    renderTable,
    report,
    stackHosts,
} from "../../scripts/doctor";
import { nextRepair, stackArgs } from "../../scripts/repair";
import { testHostKey, validConfig } from "./fixtures";

const key = (who: string) => Buffer.from(`${who} public key`.padEnd(32, ".")).toString("base64");
const relayRules = [
    "iptables -A FORWARD -i %i -o %i -j ACCEPT -m comment --comment wg-relay",
    "iptables -t nat -A POSTROUTING -s 10.10.0.0/24 -o eth0 -j MASQUERADE -m comment --comment wg-relay",
    "iptables -I INPUT -i eth0 -p udp --dport 51820 -j DROP -m comment --comment wg-relay",
];
const relay: DeclaredHost = {
    role: "relay",
    publicKey: key("relay"),
    units: ["wg-quick@wg0.service", "wg-relay-wstunnel-server.service"],
    peers: [
        { name: "rpi1", publicKey: key("rpi1"), allowedIps: ["10.10.0.2/32", "192.168.1.0/24"], alwaysOn: true },
        { name: "laptop", publicKey: key("laptop"), allowedIps: ["10.10.0.3/32"], alwaysOn: false },
    ],
    firewallRules: relayRules,
    forwarding: true,
    wstunnel: { kind: "upload", binarySha256: "a".repeat(64) },
};
const rpi1: DeclaredHost = {
    role: "gateway",
    publicKey: key("rpi1"),
    units: ["wg-quick@wg0.service", "wg-relay-wstunnel-client.service", "wg-relay-heartbeat.service"],
    peers: [{ name: "relay", publicKey: key("relay"), allowedIps: ["10.10.0.0/24"], alwaysOn: true }],
    firewallRules: ["iptables -A FORWARD -i %i -o eth0 -d 192.168.1.0/24 -j ACCEPT -m comment --comment wg-relay"],
    forwarding: true,
    wstunnel: { kind: "download", version: "10.6.2", archiveSha256: { amd64: "b".repeat(64), arm64: "c".repeat(64) } },
};

const now = 1_800_000_000;
/** What a healthy relay answers, as its probe prints it. */
const healthyRelayProbe = [
    `now\t${now}`,
    "unit\twg-quick@wg0.service\tactive",
    "unit\twg-relay-wstunnel-server.service\tactive",
    `wg-public-key\t${key("relay")}`,
    `wg-allowed-ips\t${key("rpi1")}\t10.10.0.2/32 192.168.1.0/24`,
    `wg-allowed-ips\t${key("laptop")}\t10.10.0.3/32`,
    `wg-handshake\t${key("rpi1")}\t${now - 42}`,
    `wg-handshake\t${key("laptop")}\t0`,
    "interfaces\teth0\teth0 lo wg0",
    "rule\t0\tpresent",
    "rule\t1\tpresent",
    "rule\t2\tpresent",
    "forwarding\t1\tpresent",
    `wstunnel\t${"a".repeat(64)}\t\tx86_64`,
    "",
].join("\n");

const failed = (findings: { status: string; check: string; detail: string }[]) => findings.filter((finding) => finding.status === "fail");

describe("doctor: what a host runs", () => {
    it("is a POSIX sh script that shellcheck passes, printing only what it checks", () => {
        for (const declared of [relay, rpi1]) {
            const script = probeScript(declared);
            const result = spawnSync("shellcheck", ["--shell=sh", "-"], { input: script, encoding: "utf8" });
            expect(result.stdout + result.stderr).toBe("");
            expect(result.status).toBe(0);
        }
        const script = probeScript(relay);
        // The rules go, as declared, to the host's own wg-apply, which reads them as it does when it puts one back.
        expect(script).toContain(["--rules /usr/local/lib/wg-relay/wg-apply --forwarding /etc/sysctl.d/90-wg-relay.conf /var/lib/wg-relay/sysctl-not-set", ""].join(""));
        expect(script).toContain(["-- wg-quick@wg0.service wg-relay-wstunnel-server.service <<'WG_RELAY_RULES'", ...relayRules, "WG_RELAY_RULES", ""].join("\n"));
        expect(hostScript("doctor-probe")).toContain('if rule_states=$("$wg_apply" --check-rules "$wg" 2>/dev/null); then');
        expect(script).toContain("doctor_probe --wireguard wg0 ");
        // Public facts only: `wg show` of the public key, allowed IPs and handshakes (never `wg show`, which lists
        // the preshared keys, nor `dump` or `private-key`).
        expect(script.match(/wg show "\$wg" [a-z-]+/g)).toEqual(['wg show "$wg" public-key', 'wg show "$wg" public-key', 'wg show "$wg" allowed-ips', 'wg show "$wg" latest-handshakes']);
        expect(script.match(/wg show [^"]/g)).toBeNull();
    });

    it("prints what the checks read, run with stand-in systemctl, wg, iptables, sysctl and uname and the real wg-apply", () => {
        const dir = mkdtempSync(join(tmpdir(), "wg-relay-doctor-"));
        try {
            const stubs: Record<string, string> = {
                systemctl: `[ "$2" = wg-relay-wstunnel-server.service ] && { echo inactive; exit 3; }; echo active`,
                wg: `case "$3" in public-key) echo ${key("relay")} ;; allowed-ips) printf '%s\\t%s\\n' ${key("rpi1")} '10.10.0.2/32 192.168.1.0/24' ${key("laptop")} '(none)' ;; latest-handshakes) printf '%s\\t%s\\n' ${key("rpi1")} ${now - 5} ${key("laptop")} 0 ;; esac`,
                iptables: `[ "$3" = FORWARD ]`,
                sysctl: "echo 1",
                date: `echo ${now}`,
                uname: "echo x86_64",
            };
            mkdirSync(join(dir, "bin"));
            for (const [name, body] of Object.entries(stubs)) {
                writeFileSync(join(dir, "bin", name), `#!/bin/sh\n${body}\n`);
                chmodSync(join(dir, "bin", name), 0o755);
            }
            writeFileSync(join(dir, "wg-apply"), `#!/bin/sh\nexec bash ${join(hostScriptsDir, "wg-apply.sh")} "$@"\n`);
            chmodSync(join(dir, "wg-apply"), 0o755);
            const script = probeScript(relay).replaceAll(wgApplyScriptPath, join(dir, "wg-apply"));
            const result = spawnSync("sh", ["-c", script], { env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` }, encoding: "utf8" });
            expect(result.status).toBe(0);
            const observed = parseProbe(result.stdout);
            expect(observed.units).toEqual({ "wg-quick@wg0.service": "active", "wg-relay-wstunnel-server.service": "inactive" });
            expect(observed.wireguard).toEqual({
                publicKey: key("relay"),
                peers: {
                    [key("rpi1")]: { allowedIps: ["10.10.0.2/32", "192.168.1.0/24"], latestHandshake: now - 5 },
                    [key("laptop")]: { allowedIps: [], latestHandshake: 0 },
                },
            });
            expect(observed.rules).toEqual({ 0: "present", 1: "missing", 2: "missing" });
            expect(observed.rulesUnchecked).toBeUndefined();
            expect(observed.forwarding?.inEffect).toBe("1");
            expect(observed.now).toBe(now);
            expect(observed.wstunnel?.machine).toBe("x86_64");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("fails the rules, not each one, when the host's wg-apply cannot check them (one older than --check-rules)", () => {
        const dir = mkdtempSync(join(tmpdir(), "wg-relay-doctor-"));
        try {
            // wg-apply before --check-rules: a usage error, status 2.
            writeFileSync(join(dir, "wg-apply"), `#!/bin/sh\necho "usage: wg-apply [--when-complete] TEMPLATE PUBLIC_KEYS CONF APPLIED" >&2\nexit 2\n`);
            chmodSync(join(dir, "wg-apply"), 0o755);
            const script = probeScript(relay).replaceAll(wgApplyScriptPath, join(dir, "wg-apply"));
            const observed = parseProbe(spawnSync("sh", ["-c", script], { env: { PATH: "/usr/bin:/bin" }, encoding: "utf8" }).stdout);
            expect(observed.rules).toEqual({});
            expect(observed.rulesUnchecked).toBe("2");
            expect(failed(checkHost(relay, observed)).filter((finding) => finding.check.includes("rule"))).toEqual([
                { check: "firewall rules", status: "fail", detail: "not checked: /usr/local/lib/wg-relay/wg-apply --check-rules failed (status 2); `pulumi up` installs this version's" },
            ]);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("reads a host's answer", () => {
        const observed = parseProbe(healthyRelayProbe);
        expect(observed).toEqual({
            now,
            units: { "wg-quick@wg0.service": "active", "wg-relay-wstunnel-server.service": "active" },
            wireguard: {
                publicKey: key("relay"),
                peers: {
                    [key("rpi1")]: { allowedIps: ["10.10.0.2/32", "192.168.1.0/24"], latestHandshake: now - 42 },
                    [key("laptop")]: { allowedIps: ["10.10.0.3/32"], latestHandshake: 0 },
                },
            },
            rules: { 0: "present", 1: "present", 2: "present" },
            interfaces: { defaultRoute: "eth0", names: ["eth0", "lo", "wg0"] },
            forwarding: { inEffect: "1", file: true },
            wstunnel: { binarySha256: "a".repeat(64), releaseSha256: "", machine: "x86_64" },
        } satisfies Observed);
    });
});

describe("doctor: checks", () => {
    it("warns about each sysctl setting the host did not take, by name", () => {
        const probe = `${healthyRelayProbe}sysctl-not-set\tnet.ipv4.tcp_congestion_control = bbr: the kernel refused it: sysctl: setting key "net.ipv4.tcp_congestion_control": No such file or directory\n`;
        const findings = checkHost(relay, parseProbe(probe));
        expect(failed(findings)).toEqual([]);
        expect(findings.filter((finding) => finding.status === "warn")).toEqual([
            {
                check: "sysctl net.ipv4.tcp_congestion_control",
                status: "warn",
                detail: 'not set: bbr: the kernel refused it: sysctl: setting key "net.ipv4.tcp_congestion_control": No such file or directory',
            },
        ]);
        expect(probeScript(relay)).toContain(" --forwarding /etc/sysctl.d/90-wg-relay.conf /var/lib/wg-relay/sysctl-not-set ");
        expect(hostScript("doctor-probe")).toContain(`if [ -f "$not_set_file" ]; then sed 's/^/sysctl-not-set\\t/' "$not_set_file"; fi`);
    });

    it("checks that each interface the rules name exists, and the default route's interface a rule was left to", () => {
        const rules = [
            "iptables -A FORWARD -i %i -o %default-route-dev -j ACCEPT -m comment --comment wg-relay",
            "iptables -I INPUT -i ens3 -p udp --dport 51820 -j DROP -m comment --comment wg-relay",
        ];
        const declared: DeclaredHost = { ...relay, firewallRules: rules };
        const interfaceFindings = (probe: string) => checkHost(declared, parseProbe(probe)).filter((finding) => finding.check.startsWith("interface "));
        expect(interfaceFindings("interfaces\tenp1s0\tenp1s0 ens3 lo wg0")).toEqual([
            { check: "interface %default-route-dev", status: "ok", detail: "enp1s0, the interface of the default route" },
            { check: "interface ens3", status: "ok", detail: "exists" },
        ]);
        expect(interfaceFindings("interfaces\t\teth0 lo wg0")).toEqual([
            { check: "interface %default-route-dev", status: "fail", detail: "no default route, whose interface the rules name (this host's interfaces: eth0, lo, wg0)" },
            { check: "interface ens3", status: "fail", detail: "not an interface of this host: the rules on it never match (this host's interfaces: eth0, lo, wg0)" },
        ]);
        expect(probeScript(declared)).toContain(" --interfaces ");
        expect(probeScript(declared)).toContain("host_interfaces() { cd /sys/class/net && echo *; }");
        expect(hostScript("doctor-probe")).toContain(`printf 'interfaces\\t%s\\t%s\\n' "$(default_route_dev)" "$(host_interfaces)"`);
    });

    it("finds a converged relay healthy, a roaming client's missing handshake being only informational", () => {
        const findings = checkHost(relay, parseProbe(healthyRelayProbe));
        expect(failed(findings)).toEqual([]);
        expect(findings.find((finding) => finding.check === "handshake rpi1")).toEqual({ check: "handshake rpi1", status: "ok", detail: "42 s ago" });
        expect(findings.find((finding) => finding.check === "handshake laptop")?.detail).toBe("never (a roaming client: informational)");
    });

    it("names each drift: a deleted rule, a peer added by hand, a stopped unit, a deleted sysctl file", () => {
        const handAdded = key("hand-added");
        const probe = healthyRelayProbe
            .replace("rule\t0\tpresent", "rule\t0\tmissing")
            .replace("unit\twg-relay-wstunnel-server.service\tactive", "unit\twg-relay-wstunnel-server.service\tinactive")
            .replace("forwarding\t1\tpresent", "forwarding\t1\tmissing")
            .concat(`wg-allowed-ips\t${handAdded}\t10.10.0.99/32\nwg-handshake\t${handAdded}\t0\n`);
        expect(failed(checkHost(relay, parseProbe(probe)))).toEqual([
            { check: "unit wg-relay-wstunnel-server.service", status: "fail", detail: "inactive, not active" },
            { check: "peer not declared", status: "fail", detail: `${handAdded} (AllowedIPs 10.10.0.99/32): added by hand` },
            { check: "rule FORWARD -i wg0 -o wg0 -j ACCEPT", status: "fail", detail: "missing" },
            { check: "sysctl file", status: "fail", detail: "/etc/sysctl.d/90-wg-relay.conf missing: forwarding is off after the next boot" },
        ]);
    });

    it("expects no wstunnel client on a gateway on plain UDP, and names one left running there", () => {
        // As the program declares such a gateway (program.test.ts).
        const udpGateway: DeclaredHost = { ...rpi1, units: ["wg-quick@wg0.service", "wg-relay-heartbeat.service"], wstunnel: undefined };
        expect(probeScript(udpGateway)).toContain("--client-units 'wg-relay-wstunnel-client*.service'");
        expect(hostScript("doctor-probe")).toContain('systemctl list-units --type=service --state=active --plain --no-legend "$client_units"');
        expect(probeScript(udpGateway)).toMatch(/^doctor_probe --wireguard wg0 /m);
        expect(probeScript(udpGateway)).not.toMatch(/^doctor_probe .*--wstunnel /m);
        const probe = [
            `now\t${now}`,
            "unit\twg-quick@wg0.service\tactive",
            "unit\twg-relay-heartbeat.service\tactive",
            `wg-public-key\t${key("rpi1")}`,
            `wg-allowed-ips\t${key("relay")}\t10.10.0.0/24`,
            `wg-handshake\t${key("relay")}\t${now - 5}`,
            "interfaces\teth0\teth0 lo wg0",
            "rule\t0\tpresent",
            "forwarding\t1\tpresent",
            "",
        ].join("\n");
        expect(failed(checkHost(udpGateway, parseProbe(probe)))).toEqual([]);
        expect(failed(checkHost(udpGateway, parseProbe(`${probe}running-unit\twg-relay-wstunnel-client.service\n`)))).toEqual([
            {
                check: "unit wg-relay-wstunnel-client.service",
                status: "fail",
                detail: "running, but the stack declares no such wstunnel client here (left from an earlier config?): stop, disable and remove it",
            },
        ]);
        // Through wstunnel, the same unit is the declared one.
        expect(failed(checkHost(rpi1, parseProbe(`${probe}unit\twg-relay-wstunnel-client.service\tactive\nrunning-unit\twg-relay-wstunnel-client.service\n`))).map((finding) => finding.check)).not.toContain(
            "unit wg-relay-wstunnel-client.service",
        );
    });

    it("names a missing peer, AllowedIPs that differ, a stale gateway handshake, forwarding off, another wstunnel, another key", () => {
        const probe = [
            `now\t${now}`,
            "unit\twg-quick@wg0.service\tactive",
            "unit\twg-relay-wstunnel-server.service\tfailed",
            `wg-public-key\t${key("someone else")}`,
            `wg-allowed-ips\t${key("rpi1")}\t10.10.0.2/32`,
            `wg-handshake\t${key("rpi1")}\t${now - 600}`,
            "interfaces\teth0\teth0 lo wg0",
            "forwarding\t0\tpresent",
            `wstunnel\t${"d".repeat(64)}\t\tx86_64`,
        ].join("\n");
        expect(failed(checkHost(relay, parseProbe(probe))).map((finding) => `${finding.check}: ${finding.detail}`)).toEqual([
            "unit wg-relay-wstunnel-server.service: failed, not active",
            `wg0 key: public key ${key("someone else")}, declared ${key("relay")}`,
            "peer rpi1: AllowedIPs 10.10.0.2/32, declared 10.10.0.2/32, 192.168.1.0/24",
            "handshake rpi1: 10 min ago: no session (renewed every 2 min while the tunnel is up)",
            `peer laptop: missing (public key ${key("laptop")})`,
            "rule FORWARD -i wg0 -o wg0 -j ACCEPT: missing",
            "rule nat POSTROUTING -s 10.10.0.0/24 -o eth0 -j MASQUERADE: missing",
            "rule INPUT -i eth0 -p udp --dport 51820 -j DROP: missing",
            "forwarding: net.ipv4.ip_forward = 0",
            `wstunnel binary: sha256 ${"d".repeat(64)}, declared ${"a".repeat(64)}`,
        ]);
    });

    it("finds a failover client's LAN routes on its primary or, failed over, on another relay; split between them, a problem", () => {
        const laptop: DeclaredHost = {
            role: "client",
            publicKey: key("laptop"),
            units: ["wg-quick@wg0.service", "wg-relay-failover.service"],
            peers: [
                { name: "relay", publicKey: key("relay"), allowedIps: ["10.10.0.0/24", "192.168.1.0/24", "192.168.2.0/24"], alwaysOn: true },
                { name: "relay2", publicKey: key("relay2"), allowedIps: ["10.10.1.0/24"], alwaysOn: true },
            ],
            firewallRules: [],
            forwarding: false,
            failoverRoutes: ["192.168.1.0/24", "192.168.2.0/24"],
        };
        const probe = (onRelay: string, onRelay2: string) =>
            [
                `now	${now}`,
                "unit	wg-quick@wg0.service	active",
                "unit	wg-relay-failover.service	active",
                `wg-public-key	${key("laptop")}`,
                `wg-allowed-ips	${key("relay")}	${onRelay}`,
                `wg-allowed-ips	${key("relay2")}	${onRelay2}`,
                `wg-handshake	${key("relay")}	${now - 5}`,
                `wg-handshake	${key("relay2")}	${now - 5}`,
            ].join("\n");
        const routesFinding = (onRelay: string, onRelay2: string) => {
            const findings = checkHost(laptop, parseProbe(probe(onRelay, onRelay2)));
            return [failed(findings), findings.find((finding) => finding.check === "failover routes")];
        };
        expect(routesFinding("10.10.0.0/24 192.168.1.0/24 192.168.2.0/24", "10.10.1.0/24")).toEqual([
            [],
            { check: "failover routes", status: "ok", detail: "192.168.1.0/24, 192.168.2.0/24 on relay (primary)" },
        ]);
        expect(routesFinding("10.10.0.0/24", "10.10.1.0/24 192.168.1.0/24 192.168.2.0/24")).toEqual([
            [],
            { check: "failover routes", status: "ok", detail: "192.168.1.0/24, 192.168.2.0/24 on relay2 (failed over: its primary did not answer)" },
        ]);
        const split = { check: "failover routes", status: "fail", detail: "192.168.1.0/24, 192.168.2.0/24 not all on one relay's peer (found on relay, relay2)" };
        expect(routesFinding("10.10.0.0/24 192.168.1.0/24", "10.10.1.0/24 192.168.2.0/24")).toEqual([[split], split]);
        // The rest of each peer's AllowedIPs is still checked.
        expect(routesFinding("10.10.0.0/24 192.168.1.0/24 192.168.2.0/24", "10.10.9.0/24")[0]).toEqual([
            { check: "peer relay2", status: "fail", detail: "AllowedIPs 10.10.9.0/24, declared 10.10.1.0/24" },
        ]);
    });

    it("finds wg0 down, and checks a release install by its archive's checksum for the host's architecture", () => {
        const probe = (machine: string, release: string) =>
            [`now\t${now}`, "unit\twg-quick@wg0.service\tinactive", "rule\t0\tmissing", "forwarding\t1\tpresent", `wstunnel\t${"e".repeat(64)}\t${release}\t${machine}`].join("\n");
        const findings = checkHost(rpi1, parseProbe(probe("aarch64", "c".repeat(64))));
        expect(findings.find((finding) => finding.check === "wg0")).toEqual({ check: "wg0", status: "fail", detail: "not up" });
        expect(findings.find((finding) => finding.check === "wstunnel binary")).toEqual({
            check: "wstunnel binary",
            status: "ok",
            detail: `release 10.6.2 (arm64), archive sha256 ${"c".repeat(64)}`,
        });
        expect(checkHost(rpi1, parseProbe(probe("x86_64", "c".repeat(64)))).find((finding) => finding.check === "wstunnel binary")?.status).toBe("fail");
        expect(checkHost(rpi1, parseProbe(probe("armv7l", "c".repeat(64)))).find((finding) => finding.check === "wstunnel binary")?.detail).toBe(
            "no checksum declared for this host's architecture (armv7l)",
        );
    });

    it("counts the relay's certificate days from the expiry output, warns in the renewal window, and needs its wss port to answer TLS", () => {
        const at = new Date("2027-01-01T00:00:00Z");
        const endpoint = (server: string, tlsError?: string) =>
            checkRelayEndpoint({ url: "wss://198.51.100.10:443", certificateExpiry: { ca: "2036-01-01T00:00:00Z", server }, tlsError }, at);
        expect(endpoint("2028-12-31T00:00:00Z")).toEqual([
            { check: "server certificate", status: "ok", detail: "730 days left (until 2028-12-31)" },
            { check: "CA certificate", status: "ok", detail: "3287 days left (until 2036-01-01)" },
            { check: "wss port", status: "ok", detail: "198.51.100.10:443 answers TLS with a certificate that verifies" },
        ]);
        expect(endpoint("2027-01-11T00:00:00Z")[0]).toEqual({ check: "server certificate", status: "warn", detail: "10 days left (until 2027-01-11): the next pulumi up renews it" });
        expect(endpoint("2026-12-30T00:00:00Z")[0].status).toBe("fail");
        expect(endpoint("2028-12-31T00:00:00Z", "connect ECONNREFUSED 198.51.100.10:443")[2]).toEqual({
            check: "wss port",
            status: "fail",
            detail: "198.51.100.10:443: connect ECONNREFUSED 198.51.100.10:443",
        });
    });

    it("with the relay's own certificate files counts the days of the certificate its wss port serves, and says who renews it", () => {
        const at = new Date("2027-01-01T00:00:00Z");
        const served = (servedNotAfter?: string, tlsError?: string) => checkRelayEndpoint({ url: "wss://relay.example.org:443", servedNotAfter, tlsError }, at);
        // Node's form of a certificate's notAfter.
        expect(served("Mar 31 12:00:00 2027 GMT")[0]).toEqual({ check: "server certificate", status: "ok", detail: "89 days left (until 2027-03-31)" });
        expect(served("Jan 20 12:00:00 2027 GMT")[0]).toEqual({
            check: "server certificate",
            status: "warn",
            detail: "19 days left (until 2027-01-20): renew the relay's own certificate files (wstunnel.tls); the relay serves renewed files within seconds",
        });
        expect(served("Dec 31 12:00:00 2026 GMT", "the certificate does not verify (CERT_HAS_EXPIRED)")).toEqual([
            {
                check: "server certificate",
                status: "fail",
                detail: "expired 1 days ago (until 2026-12-31): renew the relay's own certificate files (wstunnel.tls); the relay serves renewed files within seconds",
            },
            { check: "wss port", status: "fail", detail: "relay.example.org:443: the certificate does not verify (CERT_HAS_EXPIRED)" },
        ]);
        expect(served(undefined, "connect ECONNREFUSED 198.51.100.10:443")[0]).toEqual({
            check: "server certificate",
            status: "fail",
            detail: "the relay's own certificate files (wstunnel.tls): none served, so its expiry is unknown",
        });
    });

    it("with mutual TLS warns 30 days before a client certificate expires, naming for a device without SSH the command that gives it new files", () => {
        const at = new Date("2027-01-01T00:00:00Z");
        const made = { issued: "2025-01-20T00:00:00Z" };
        // A host reached over SSH: the next pulumi up renews it and puts it there.
        expect(checkClientCertificate("rpi1", { ...made, expires: "2028-12-31T00:00:00Z" }, false, at)).toEqual({ check: "client certificate", status: "ok", detail: "730 days left (until 2028-12-31)" });
        expect(checkClientCertificate("rpi1", { ...made, expires: "2027-01-20T00:00:00Z" }, false, at)).toEqual({
            check: "client certificate",
            status: "warn",
            detail: "19 days left (until 2027-01-20): the next pulumi up renews it",
        });
        // A device without SSH.
        expect(checkClientCertificate("phone", { ...made, expires: "2027-01-20T00:00:00Z" }, true, at)).toEqual({
            check: "client certificate",
            status: "warn",
            detail: "19 days left (until 2027-01-20): the next pulumi up renews it; then give the device its new files: npm run client-files -- phone",
        });
        expect(checkClientCertificate("phone", { ...made, expires: "2027-01-31T00:00:00Z" }, true, at).status).toBe("ok"); // 30 days left
        expect(checkClientCertificate("phone", { ...made, expires: "2026-12-31T12:00:00Z" }, true, at)).toEqual({
            check: "client certificate",
            status: "fail",
            detail: "expired 1 days ago (until 2026-12-31): the next pulumi up renews it; then give the device its new files: npm run client-files -- phone",
        });
        // Renewed (or first made) 10 days ago: a device with older files may hold the one it replaced.
        expect(checkClientCertificate("phone", { issued: "2026-12-22T00:00:00Z", expires: "2028-12-21T00:00:00Z" }, true, at)).toEqual({
            check: "client certificate",
            status: "warn",
            detail:
                "made 2026-12-22, 720 days left (until 2028-12-21): a device given its files before then holds the certificate this one replaced, " +
                "which stops working by 2027-01-21; give it its new files: npm run client-files -- phone",
        });
        expect(checkClientCertificate("phone", { issued: "2026-12-02T00:00:00Z", expires: "2028-12-01T00:00:00Z" }, true, at).status).toBe("ok"); // 30 days on
        expect(checkClientCertificate("rpi1", { issued: "2026-12-22T00:00:00Z", expires: "2028-12-21T00:00:00Z" }, false, at).status).toBe("ok");
    });

    it("makes an unreachable host a finding", () => {
        expect(probeFailed(255, "ssh: connect to host 192.168.1.130 port 22: No route to host\n")).toEqual({
            check: "ssh",
            status: "fail",
            detail: "unreachable: ssh: connect to host 192.168.1.130 port 22: No route to host",
        });
        expect(probeFailed(1, "sudo: a password is required\n").detail).toBe("the checks did not run: sudo: a password is required");
    });
});

describe("doctor: output", () => {
    const at = new Date("2027-01-01T00:00:00Z");
    const relayEndpoint = checkRelayEndpoint({ url: "wss://198.51.100.10:443", certificateExpiry: { ca: "2036-01-01T00:00:00Z", server: "2028-12-31T00:00:00Z" } }, at);
    const sample = report([
        hostReport({ name: "relay", role: "relay", address: "ops@198.51.100.10" }, [...checkHost(relay, parseProbe(healthyRelayProbe)), ...relayEndpoint]),
        hostReport({ name: "rpi1", role: "gateway", address: "pi@192.168.1.130" }, [probeFailed(255, "ssh: connect to host 192.168.1.130 port 22: Connection timed out")]),
    ]);

    it("prints one table per host and says what is wrong", () => {
        expect(renderTable(sample)).toBe(
            [
                "relay (relay, ops@198.51.100.10): healthy",
                "  STATUS  CHECK                                                       DETAIL",
                "  ok      unit wg-quick@wg0.service                                   active",
                "  ok      unit wg-relay-wstunnel-server.service                       active",
                `  ok      wg0 key                                                     public key ${key("relay")}`,
                "  ok      peer rpi1                                                   AllowedIPs 10.10.0.2/32, 192.168.1.0/24",
                "  ok      handshake rpi1                                              42 s ago",
                "  ok      peer laptop                                                 AllowedIPs 10.10.0.3/32",
                "  ok      handshake laptop                                            never (a roaming client: informational)",
                "  ok      interface eth0                                              exists",
                "  ok      rule FORWARD -i wg0 -o wg0 -j ACCEPT                        present",
                "  ok      rule nat POSTROUTING -s 10.10.0.0/24 -o eth0 -j MASQUERADE  present",
                "  ok      rule INPUT -i eth0 -p udp --dport 51820 -j DROP             present",
                "  ok      forwarding                                                  net.ipv4.ip_forward = 1",
                "  ok      sysctl file                                                 /etc/sysctl.d/90-wg-relay.conf",
                `  ok      wstunnel binary                                             sha256 ${"a".repeat(64)}`,
                "  ok      server certificate                                          730 days left (until 2028-12-31)",
                "  ok      CA certificate                                              3287 days left (until 2036-01-01)",
                "  ok      wss port                                                    198.51.100.10:443 answers TLS with a certificate that verifies",
                "",
                "rpi1 (gateway, pi@192.168.1.130): 1 problem",
                "  STATUS  CHECK  DETAIL",
                "  FAIL    ssh    unreachable: ssh: connect to host 192.168.1.130 port 22: Connection timed out",
                "",
                "problems on rpi1: `npm run repair` puts back what the stack declares",
                "",
            ].join("\n"),
        );
        expect(sample.ok).toBe(false);
    });

    it("gives the same as JSON, and is healthy when no host has a problem", () => {
        expect(JSON.parse(JSON.stringify(sample)).hosts.map((host: { name: string; ok: boolean; findings: unknown[] }) => [host.name, host.ok, host.findings.length])).toEqual([
            ["relay", true, 17],
            ["rpi1", false, 1],
        ]);
        const allHealthy = report([sample.hosts[0]]);
        expect(allHealthy.ok).toBe(true);
        expect(renderTable(allHealthy)).toMatch(/\n\nevery host is healthy\n$/);
    });
});

describe("doctor: reaching the hosts", () => {
    const config = validConfig();
    config.gateways![0].ssh = { host: "192.168.1.130", user: "pi", trustOnFirstUse: true };
    config.clients!.push({ name: "workstation", tunnelAddress: "10.10.0.4", ssh: { host: "10.10.0.4", via: "relay", hostKey: testHostKey } });
    const network = parseStackConfig(config as Record<string, unknown>);
    const hosts = stackHosts(network);

    it("checks the relay, every gateway and every client provisioned over SSH", () => {
        expect(hosts.map((host) => `${host.name} ${host.role}`)).toEqual(["relay relay", "rpi1 gateway", "workstation client"]);
    });

    it("pins each host key under the host's name and jumps through the relay where the stack does; the key is a file", () => {
        const sshConfig = renderSshConfig(hosts, "relay", { privateKey: "/tmp/doctor/id", knownHosts: "/tmp/doctor/known_hosts" });
        expect(sshConfig).toContain("Host relay\n  HostName 198.51.100.10\n  Port 22\n  User ops\n  HostKeyAlias relay\n  StrictHostKeyChecking yes\n");
        expect(sshConfig).toContain("Host workstation\n  HostName 10.10.0.4\n  Port 22\n  User root\n  HostKeyAlias workstation\n  StrictHostKeyChecking yes\n  ProxyJump relay\n");
        // A key trusted on first use is in the stack's state, not its config: the doctor accepts the key it sees first.
        expect(sshConfig).toContain("Host rpi1\n  HostName 192.168.1.130\n  Port 22\n  User pi\n  HostKeyAlias rpi1\n  StrictHostKeyChecking accept-new\n");
        expect(sshConfig).not.toContain("ProxyJump relay\nHost rpi1");
        expect(sshConfig).toContain("  IdentityFile /tmp/doctor/id\n  IdentitiesOnly yes\n  UserKnownHostsFile /tmp/doctor/known_hosts\n  GlobalKnownHostsFile /dev/null\n  BatchMode yes\n");
        expect(renderKnownHosts(hosts)).toBe(`relay ${network.relays[0].ssh.hostKey}\nworkstation ${testHostKey}\n`);
    });
});

describe("repair", () => {
    it("bumps the counter from unset or a number, and refuses anything else", () => {
        expect(nextRepair(undefined)).toBe(1);
        expect(nextRepair("4")).toBe(5);
        expect(() => nextRepair("x")).toThrow("wg-relay:repair is 'x', not a counter");
    });

    it("passes the stack on to the config commands", () => {
        expect(stackArgs(["--stack", "lab", "--yes"])).toEqual(["--stack", "lab"]);
        expect(stackArgs(["--yes", "--stack=prod"])).toEqual(["--stack=prod"]);
        expect(stackArgs(["--yes"])).toEqual([]);
    });
});
