// The scripts wg-relay installs on hosts, run for real with stand-in `wg`, `wg-quick`, `systemctl`, `ip`, `uname`,
// `curl` and `chown` on PATH that record how they were called: no root, no WireGuard, no network. And every shell
// script in the repository passes shellcheck.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { hostScriptsDir } from "../../components/host/scripts";
import { Observed, parseProbe } from "../../scripts/doctor";
import { defaultRouteInterface, interfaceCheckScript, rulesDefaultRouteInterfaceFilter, sysctlDefaultRouteInterfaceFilter } from "../../components/host/interfaces";

const repo = join(__dirname, "..", "..");

describe("shell scripts", () => {
    it("pass shellcheck, every one in the repository", () => {
        const tracked = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: repo, encoding: "utf8" }).split("\n").filter(Boolean);
        const scripts = tracked.filter((file) => existsSync(join(repo, file)) && statSync(join(repo, file)).isFile() && /^#!.*\b(ba)?sh\b/.test(readFileSync(join(repo, file), "utf8").split("\n")[0]));
        expect(scripts).toEqual(
            expect.arrayContaining([
                "components/host-scripts/wg-apply.sh",
                "components/host-scripts/wstunnel-install.sh",
                "components/host-scripts/wg-failover.sh",
                "components/host-scripts/wg-transport.sh",
                "components/host-scripts/sysctl-apply.sh",
                "components/host-scripts/staged-switch.sh",
                "components/host-scripts/write-file.sh",
                "components/host-scripts/install-packages.sh",
                "components/host-scripts/interface-check.sh",
                "components/host-scripts/remove-legacy-trusted-ca.sh",
                "components/host-scripts/doctor-probe.sh",
                "lab/lab.sh",
                ".ci/run",
            ]),
        );
        const result = spawnSync("shellcheck", ["--external-sources", ...scripts], { cwd: repo, encoding: "utf8" });
        if (result.error) {
            throw new Error(`shellcheck is not installed (lab/toolchain.sh installs it): ${result.error.message}`);
        }
        expect(result.stdout + result.stderr).toBe("");
        expect(result.status).toBe(0);
    });
});

/** iptables or ip6tables: its rule set, one "TABLE CHAIN RULE" line per rule, in $STATE/NAME. */
function ruleSetStub(name: string): string {
    return `
if [ "$1" = -w ]; then shift; fi
table=filter; if [ "$1" = -t ]; then table=$2; shift 2; fi
op=$1; shift; rule="$table $*"; touch "$STATE/${name}"
case "$op" in
  -C) grep -qxF -- "$rule" "$STATE/${name}" ;;
  -A|-I) echo "$rule" >> "$STATE/${name}" ;;
  -D) grep -vxF -- "$rule" "$STATE/${name}" > "$STATE/${name}.new"; mv "$STATE/${name}.new" "$STATE/${name}" ;;
esac`;
}

// Stand-ins: each records "NAME ARGS..." in $CALLS and keeps what it must in $STATE.
const stubs: Record<string, string> = {
    // As wg-quick down and up do, a stop runs the PostDown lines of the conf on disk at that moment, and a start
    // the PostUp lines of the conf it starts with; the peers' roaming endpoints are gone after a start.
    systemctl: `
hooks() { sed -n "s/^$1 = //p" "$2" | sed 's/%i/wg0/g' | while IFS= read -r hook; do eval "$hook"; done; }
stop() { if [ -e "$STATE/active" ]; then hooks PostDown "$CONF_UNDER_TEST"; rm -f "$STATE/active"; fi; }
start() { touch "$STATE/active"; cp "$CONF_UNDER_TEST" "$STATE/running.conf"; rm -f "$STATE/synced.conf" "$STATE/endpoints"; hooks PostUp "$CONF_UNDER_TEST"; }
case "$1" in
  is-active) [ -e "$STATE/active" ] ;;
  stop) stop ;;
  start) start ;;
  restart) stop; start ;;
esac`,
    // The rule set, one "TABLE CHAIN RULE" line per rule.
    iptables: ruleSetStub("iptables"),
    ip6tables: ruleSetStub("ip6tables"),
    // The live interface, as wg would show it, follows what was last synced or started.
    wg: `
live() { if [ -e "$STATE/synced.conf" ]; then cat "$STATE/synced.conf"; else cat "$STATE/running.conf"; fi; }
case "$1 $3" in
  "syncconf "*) cat "$3" > "$STATE/synced.conf" ;;
  "show fwmark") echo off ;;
  "show endpoints") cat "$STATE/endpoints" 2>/dev/null ;;
  "show allowed-ips") live | awk '/^PublicKey = / { key = $3 } /^AllowedIPs = / { sub(/^AllowedIPs = /, ""); gsub(/, /, " "); print key "\\t" $0 }' ;;
  "show persistent-keepalive") live | awk 'function flush() { if (key != "") print key "\\t" interval } /^\\[/ { flush(); key = ""; interval = "off" } /^PublicKey = / { key = $3 } /^PersistentKeepalive = / { interval = $3 } END { flush() }' ;;
esac`,
    "wg-quick": `[ "$1" = strip ] && grep -vE '^(Address|MTU|PostUp|PostDown|DNS|Table) = ' "$2"`,
    ip: `case "$*" in
  "-4 -o route show default") cat "$STATE/default-route" 2>/dev/null ;;
  "-4 -o route show dev wg0 proto boot") cat "$STATE/routes" 2>/dev/null ;;
  "-6 -o route show dev wg0 proto boot") cat "$STATE/routes6" 2>/dev/null ;;
esac; true`,
    uname: `cat "$STATE/machine" 2>/dev/null || echo x86_64`,
    curl: `while [ $# -gt 1 ]; do [ "$1" = -o ] && out=$2; shift; done; cp "$STATE/release.tar.gz" "$out"`,
    chown: `true`,
};

/** DIR/bin with each stand-in: it records its call in $CALLS, then runs its body. */
function stubBin(dir: string, stubSet: Record<string, string> = stubs): string {
    const bin = join(dir, "bin");
    mkdirSync(bin);
    for (const [name, body] of Object.entries(stubSet)) {
        writeFileSync(join(bin, name), `#!/bin/bash\necho "${name} $*" >> "$CALLS"\n${body}\n`);
        chmodSync(join(bin, name), 0o755);
    }
    return bin;
}

const keys = {
    relayPrivate: "cHJpdmF0ZS1rZXktb2YtdGhlLXJlbGF5LTAxMjM0NTY=",
    relayPrivateRotated: "cm90YXRlZC1rZXktb2YtdGhlLXJlbGF5LTAxMjM0NTY=",
    rpi1Public: "cnBpMS1wdWJsaWMta2V5LTAxMjM0NTY3ODlhYmNkZWY=",
    rpi1PublicRotated: "cnBpMS1yb3RhdGVkLWtleS0wMTIzNDU2Nzg5YWJjZGU=",
    laptopPublic: "bGFwdG9wLXB1YmxpYy1rZXktMDEyMzQ1Njc4OWFiY2Q=",
    rpi1Preshared: "cnBpMS1wcmVzaGFyZWQta2V5LTAxMjM0NTY3ODlhYmM=",
};

describe("wg-apply", () => {
    let dir: string;
    let paths: { template: string; publicKeys: string; conf: string; applied: string; key: string; psk: string; calls: string; state: string };
    let env: NodeJS.ProcessEnv;

    const template = (options: { mtu?: number; rpi1Endpoint?: string; laptop?: boolean; laptopRouteMtu?: number; directUdp?: boolean; ipv6?: boolean } = {}) =>
        [
            "[Interface]",
            "Address = 10.10.0.1/24",
            "ListenPort = 51820",
            `MTU = ${options.mtu ?? 1320}`,
            `PrivateKey = <from ${paths.key}>`,
            "PostUp = iptables -A FORWARD -i %i -o %i -j ACCEPT -m comment --comment wg-relay",
            "PostUp = iptables -t nat -A POSTROUTING -s 10.10.0.0/24 -o eth0 -j MASQUERADE -m comment --comment wg-relay",
            ...(options.ipv6 ? ["PostUp = ip6tables -I FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay"] : []),
            ...(options.ipv6 ? ["PostDown = ip6tables -D FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay"] : []),
            ...(options.directUdp ? [] : ["PostUp = iptables -I INPUT -i eth0 -p udp --dport 51820 -j DROP -m comment --comment wg-relay"]),
            ...(options.directUdp ? [] : ["PostDown = iptables -D INPUT -i eth0 -p udp --dport 51820 -j DROP -m comment --comment wg-relay"]),
            "PostDown = iptables -t nat -D POSTROUTING -s 10.10.0.0/24 -o eth0 -j MASQUERADE -m comment --comment wg-relay",
            "PostDown = iptables -D FORWARD -i %i -o %i -j ACCEPT -m comment --comment wg-relay",
            "",
            "[Peer]",
            "# rpi1 (gateway)",
            "PublicKey = <public key of rpi1>",
            `PresharedKey = <from ${paths.psk}>`,
            "AllowedIPs = 10.10.0.2/32, 192.168.1.0/24",
            ...(options.rpi1Endpoint ? [`Endpoint = ${options.rpi1Endpoint}`] : []),
            "PersistentKeepalive = 25",
            ...(options.laptop
                ? [
                      "",
                      "[Peer]",
                      "# laptop (client)",
                      ...(options.laptopRouteMtu ? [`# wg-relay route MTU: ${options.laptopRouteMtu}`] : []),
                      "PublicKey = <public key of laptop>",
                      `AllowedIPs = 10.10.0.3/32${options.ipv6 ? ", fd00:1::3/128, fd00:2::/64" : ""}`,
                  ]
                : []),
            "",
        ].join("\n");

    const publicKeys = (withLaptop: boolean) => `rpi1 ${keys.rpi1Public}\n${withLaptop ? `laptop ${keys.laptopPublic}\n` : ""}`;

    const wgApply = (...flags: string[]) => {
        writeFileSync(paths.calls, "");
        return spawnSync("bash", [join(hostScriptsDir, "wg-apply.sh"), ...flags, paths.template, paths.publicKeys, paths.conf, paths.applied], { env, encoding: "utf8" });
    };
    const calls = () => readFileSync(paths.calls, "utf8").trim().split("\n").filter(Boolean);
    const restarted = () =>
        calls().includes("systemctl restart wg-quick@wg0.service") ||
        (calls().includes("systemctl stop wg-quick@wg0.service") && calls().includes("systemctl start wg-quick@wg0.service"));
    const synced = () => calls().some((call) => call.startsWith("wg syncconf wg0 "));

    /** The state after a first apply of `template()` with rpi1 only: the interface is up. */
    const applyFirst = () => {
        writeFileSync(paths.template, template());
        writeFileSync(paths.publicKeys, publicKeys(false));
        const result = wgApply();
        expect(result.status).toBe(0);
    };

    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "wg-relay-wg-apply-"));
        const state = join(dir, "state");
        mkdirSync(state);
        mkdirSync(join(dir, "etc"));
        paths = {
            template: join(dir, "etc", "wg0.template.conf"),
            publicKeys: join(dir, "etc", "wg0.public-keys"),
            conf: join(dir, "etc", "wg0.conf"),
            applied: join(dir, "var", "wg0.applied.conf"),
            key: join(dir, "etc", "wg0.key"),
            psk: join(dir, "etc", "rpi1.psk"),
            calls: join(dir, "calls"),
            state,
        };
        writeFileSync(paths.key, `${keys.relayPrivate}\n`);
        writeFileSync(paths.psk, `${keys.rpi1Preshared}\n`);
        env = { PATH: `${stubBin(dir)}:${process.env.PATH}`, CALLS: paths.calls, STATE: state, CONF_UNDER_TEST: paths.conf };
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("starts a stopped interface with every key filled in from its file, in a root-only conf", () => {
        applyFirst();
        expect(calls().filter((call) => !call.startsWith("iptables -A ") && !call.startsWith("iptables -t nat -A ") && !call.startsWith("iptables -I "))).toEqual([
            "systemctl enable --quiet wg-quick@wg0.service",
            "systemctl is-active --quiet wg-quick@wg0.service",
            "systemctl restart wg-quick@wg0.service",
        ]);
        const conf = readFileSync(paths.conf, "utf8");
        expect(conf).toContain(`PrivateKey = ${keys.relayPrivate}\n`);
        expect(conf).toContain(`PublicKey = ${keys.rpi1Public}\nPresharedKey = ${keys.rpi1Preshared}\nAllowedIPs = 10.10.0.2/32, 192.168.1.0/24\n`);
        expect(conf).not.toContain("<");
        expect(execFileSync("stat", ["-c", "%a", paths.conf, paths.applied], { encoding: "utf8" })).toBe("600\n600\n");
    });

    it("writes the default route's interface where the template names %default-route-dev, and fails on a host without one", () => {
        writeFileSync(paths.template, template().replace(/-o eth0/g, "-o %default-route-dev").replace(/-i eth0/g, "-i %default-route-dev"));
        writeFileSync(paths.publicKeys, publicKeys(false));
        const failed = wgApply();
        expect(failed.status).toBe(1);
        expect(failed.stderr).toContain("names %default-route-dev, the interface of the default route, and this host has no default route");
        expect(existsSync(paths.conf)).toBe(false);

        writeFileSync(join(paths.state, "default-route"), "default via 198.51.100.1 dev ens3 proto static onlink \n");
        expect(wgApply().status).toBe(0);
        const conf = readFileSync(paths.conf, "utf8");
        expect(conf).toContain("PostUp = iptables -t nat -A POSTROUTING -s 10.10.0.0/24 -o ens3 -j MASQUERADE -m comment --comment wg-relay\n");
        expect(conf).toContain("PostDown = iptables -D INPUT -i ens3 -p udp --dport 51820 -j DROP -m comment --comment wg-relay\n");
        expect(conf).not.toContain("%default-route-dev");
        expect(readFileSync(join(paths.state, "iptables"), "utf8")).toContain("filter INPUT -i ens3 -p udp --dport 51820 -j DROP -m comment --comment wg-relay\n");
    });

    it("adds a peer with wg syncconf, keeping the others' preshared keys, and routes its network, without a restart", () => {
        applyFirst();
        writeFileSync(paths.template, template({ laptop: true }));
        writeFileSync(paths.publicKeys, publicKeys(true));
        const result = wgApply();
        expect(result.status).toBe(0);
        expect(restarted()).toBe(false);
        const syncedConf = readFileSync(join(paths.state, "synced.conf"), "utf8");
        expect(syncedConf).toContain(`PublicKey = ${keys.laptopPublic}\nAllowedIPs = 10.10.0.3/32`);
        expect(syncedConf).toContain(`PublicKey = ${keys.rpi1Public}\nPresharedKey = ${keys.rpi1Preshared}\n`);
        expect(calls()).toContain("ip -4 route replace 10.10.0.3/32 dev wg0");
    });

    it("routes a peer with a route MTU at that MTU after syncing peers, and --route-mtus does the same alone", () => {
        applyFirst();
        writeFileSync(paths.template, template({ laptop: true, laptopRouteMtu: 1420 }));
        writeFileSync(paths.publicKeys, publicKeys(true));
        expect(wgApply().status).toBe(0);
        expect(restarted()).toBe(false);
        const routes = calls().filter((call) => call.startsWith("ip -4 route replace"));
        // The plain route first (the peers' loop), then the one with the MTU, which wins.
        expect(routes.slice(-1)).toEqual(["ip -4 route replace 10.10.0.3/32 dev wg0 mtu 1420"]);
        expect(routes.filter((call) => call.includes("mtu"))).toHaveLength(1);
        writeFileSync(paths.calls, "");
        const alone = spawnSync("bash", [join(hostScriptsDir, "wg-apply.sh"), "--route-mtus", paths.conf], { env, encoding: "utf8" });
        expect(alone.status).toBe(0);
        expect(calls()).toEqual([`ip -4 route replace 10.10.0.3/32 dev ${basename(paths.conf, ".conf")} mtu 1420`]);
    });

    it("keeps the live endpoint of a relay's peer on transport auto through a sync, which sets the template's", () => {
        const autoTemplate = (laptop: boolean) =>
            template({ laptop }).replace("AllowedIPs = 10.10.0.2/32, 192.168.1.0/24\n", "AllowedIPs = 10.10.0.2/32, 192.168.1.0/24\nEndpoint = 198.51.100.10:51820\n") +
            "# wg-relay transport auto: rpi1 198.51.100.10:51820 127.0.0.1:51820 10.10.0.1 10.10.0.2\n";
        writeFileSync(paths.template, autoTemplate(false));
        writeFileSync(paths.publicKeys, publicKeys(false));
        expect(wgApply().status).toBe(0);
        // wg-transport moved it to wstunnel; a `pulumi up` adds a peer.
        writeFileSync(join(paths.state, "endpoints"), `${keys.rpi1Public}\t127.0.0.1:51820\n`);
        writeFileSync(paths.template, autoTemplate(true));
        writeFileSync(paths.publicKeys, publicKeys(true));
        expect(wgApply().status).toBe(0);
        expect(restarted()).toBe(false);
        const afterSync = calls().slice(calls().findIndex((call) => call.startsWith("wg syncconf wg0 ")));
        expect(afterSync).toContain(`wg set wg0 peer ${keys.rpi1Public} endpoint 127.0.0.1:51820`);
        // An endpoint that is neither of the two (none yet, or set by hand) is the template's after the sync.
        writeFileSync(join(paths.state, "endpoints"), `${keys.rpi1Public}\t(none)\n`);
        writeFileSync(paths.template, autoTemplate(false));
        writeFileSync(paths.publicKeys, publicKeys(false));
        expect(wgApply().status).toBe(0);
        expect(synced()).toBe(true);
        expect(calls().filter((call) => call.startsWith("wg set "))).toEqual([]);
    });

    it("drops the route of a removed peer", () => {
        writeFileSync(paths.template, template({ laptop: true }));
        writeFileSync(paths.publicKeys, publicKeys(true));
        expect(wgApply().status).toBe(0);
        writeFileSync(join(paths.state, "routes"), "10.10.0.2/32 dev wg0 proto boot\n192.168.1.0/24 dev wg0 proto boot\n10.10.0.3/32 dev wg0 proto boot\n");
        writeFileSync(paths.template, template());
        writeFileSync(paths.publicKeys, publicKeys(false));
        expect(wgApply().status).toBe(0);
        expect(restarted()).toBe(false);
        expect(calls().filter((call) => call.includes("route del"))).toEqual(["ip -4 route del 10.10.0.3/32 dev wg0"]);
        expect(readFileSync(join(paths.state, "synced.conf"), "utf8")).not.toContain(keys.laptopPublic);
    });

    it("routes, re-routes at a route MTU and drops IPv6 networks with ip -6, and puts back a missing ip6tables rule", () => {
        writeFileSync(paths.template, template({ ipv6: true }));
        writeFileSync(paths.publicKeys, publicKeys(false));
        expect(wgApply().status).toBe(0);
        const ipv6Rules = () => readFileSync(join(paths.state, "ip6tables"), "utf8");
        expect(ipv6Rules()).toBe("filter FORWARD -i wg0 -o wg0 -j WG-RELAY-ACCESS -m comment --comment wg-relay\n");
        writeFileSync(join(paths.state, "ip6tables"), "");

        writeFileSync(paths.template, template({ ipv6: true, laptop: true, laptopRouteMtu: 1420 }));
        writeFileSync(paths.publicKeys, publicKeys(true));
        const result = wgApply();
        expect(result.status).toBe(0);
        expect(restarted()).toBe(false);
        expect(calls().filter((call) => call.startsWith("ip -6 route replace"))).toEqual([
            "ip -6 route replace fd00:1::3/128 dev wg0",
            "ip -6 route replace fd00:2::/64 dev wg0",
            "ip -6 route replace fd00:1::3/128 dev wg0 mtu 1420",
            "ip -6 route replace fd00:2::/64 dev wg0 mtu 1420",
        ]);
        expect(result.stdout).toContain("wg-apply: re-adding a missing firewall rule: ip6tables -I FORWARD -i wg0 -o wg0 -j WG-RELAY-ACCESS -m comment --comment wg-relay");
        expect(ipv6Rules()).toBe("filter FORWARD -i wg0 -o wg0 -j WG-RELAY-ACCESS -m comment --comment wg-relay\n");

        writeFileSync(join(paths.state, "routes6"), "fd00:1::3/128 dev wg0 proto boot\nfd00:2::/64 dev wg0 proto boot\n");
        writeFileSync(paths.template, template({ ipv6: true }));
        writeFileSync(paths.publicKeys, publicKeys(false));
        expect(wgApply().status).toBe(0);
        expect(calls().filter((call) => call.includes("route del"))).toEqual(["ip -6 route del fd00:1::3/128 dev wg0", "ip -6 route del fd00:2::/64 dev wg0"]);
    });

    it("undoes a rule the new [Interface] part no longer has: it stops with the conf the interface started with", () => {
        applyFirst();
        const rules = () => readFileSync(join(paths.state, "iptables"), "utf8");
        expect(rules()).toContain("filter INPUT -i eth0 -p udp --dport 51820 -j DROP -m comment --comment wg-relay");
        writeFileSync(paths.template, template({ directUdp: true }));
        expect(wgApply().status).toBe(0);
        expect(restarted()).toBe(true);
        expect(rules()).not.toContain("--dport 51820 -j DROP");
        expect(rules()).toContain("filter FORWARD -i wg0 -o wg0 -j ACCEPT -m comment --comment wg-relay");
    });

    it("restarts the interface when an [Interface] setting changes", () => {
        applyFirst();
        writeFileSync(paths.template, template({ mtu: 1280 }));
        expect(wgApply().stdout).toContain("interface settings changed, restarting wg0");
        expect(restarted()).toBe(true);
        expect(synced()).toBe(false);
    });

    it("after a restart, sets again the endpoints its peers roamed to and handshakes with them at once: only peers still there with no Endpoint in the conf", () => {
        writeFileSync(paths.template, template({ laptop: true }));
        writeFileSync(paths.publicKeys, publicKeys(true));
        expect(wgApply().status).toBe(0);
        // As the relay knows its peers: rpi1 and the laptop at the addresses they last sent from, a peer removed
        // from the conf too, and one that never handshook.
        const gone = "Z29uZS1wZWVyLXB1YmxpYy1rZXktMDEyMzQ1Njc4OWE=";
        const silent = "c2lsZW50LXBlZXItcHVibGljLWtleS0wMTIzNDU2Nzg=";
        writeFileSync(join(paths.state, "endpoints"), `${keys.rpi1Public}\t203.0.113.5:51000\n${keys.laptopPublic}\t[2001:db8::7]:40001\n${gone}\t203.0.113.9:5000\n${silent}\t(none)\n`);
        // The port closed (an [Interface] setting), and rpi1 given an Endpoint of its own in the same change.
        writeFileSync(paths.template, template({ laptop: true, directUdp: true, rpi1Endpoint: "198.51.100.20:51820" }));
        const result = wgApply();
        expect(result.status).toBe(0);
        expect(restarted()).toBe(true);
        const sets = calls().filter((call) => call.startsWith("wg set "));
        // The laptop has no keepalive: one switched on sends one at once, then off again as its conf has it.
        expect(sets).toEqual([
            `wg set wg0 peer ${keys.laptopPublic} endpoint [2001:db8::7]:40001`,
            `wg set wg0 peer ${keys.laptopPublic} persistent-keepalive 25`,
            `wg set wg0 peer ${keys.laptopPublic} persistent-keepalive off`,
        ]);
        expect(calls().indexOf(sets[0])).toBeGreaterThan(calls().indexOf("systemctl start wg-quick@wg0.service"));
    });

    it("applies a new private key live and has kept-alive peers handshake at once", () => {
        applyFirst();
        writeFileSync(paths.key, `${keys.relayPrivateRotated}\n`);
        const result = wgApply("--when-complete");
        expect(result.status).toBe(0);
        expect(restarted()).toBe(false);
        expect(readFileSync(join(paths.state, "synced.conf"), "utf8")).toContain(`PrivateKey = ${keys.relayPrivateRotated}`);
        expect(calls()).toEqual(
            expect.arrayContaining([`wg set wg0 peer ${keys.rpi1Public} persistent-keepalive off`, `wg set wg0 peer ${keys.rpi1Public} persistent-keepalive 25`]),
        );
    });

    it("changes nothing live when nothing changed", () => {
        applyFirst();
        expect(wgApply().status).toBe(0);
        expect(restarted()).toBe(false);
        expect(calls().filter((call) => call.includes("persistent-keepalive off"))).toEqual([]);
        // The rules PostUp added are all there: checked, none added again.
        expect(calls().filter((call) => call.startsWith("iptables") && !call.includes(" -C "))).toEqual([]);
    });

    const rules = () => readFileSync(join(paths.state, "iptables"), "utf8").trim().split("\n");

    it("--check-rules: reads each rule as the restore does, on the interface and the default route's, for the doctor", () => {
        writeFileSync(join(paths.state, "iptables"), ["filter FORWARD -i wg0 -o wg0 -j ACCEPT -m comment --comment wg-relay", "nat WG-RELAY-NAT -s 10.10.0.4/32 -o ens3 -m comment --comment wg-relay:phone -j MASQUERADE", ""].join("\n"));
        writeFileSync(join(paths.state, "ip6tables"), "filter WG-RELAY-EGRESS -j DROP\n");
        writeFileSync(join(paths.state, "default-route"), "default via 198.51.100.1 dev ens3 proto static\n");
        const rules = [
            "iptables -A FORWARD -i %i -o %i -j ACCEPT -m comment --comment wg-relay",
            // The relay's own chains, declared as the commands that add them (access/rules.ts).
            "iptables -t nat -A WG-RELAY-NAT -s 10.10.0.4/32 -o %default-route-dev -m comment --comment wg-relay:phone -j MASQUERADE",
            "ip6tables -I WG-RELAY-EGRESS -j DROP",
            "iptables -I INPUT -i ens3 -p udp --dport 51820 -j DROP -m comment --comment wg-relay",
            "iptables -A FORWARD -j ACCEPT; rm -rf /",
            "ip -4 rule add to 198.51.100.10/32 lookup main priority 100",
        ];
        writeFileSync(paths.calls, "");
        const result = spawnSync("bash", [join(hostScriptsDir, "wg-apply.sh"), "--check-rules", "wg0"], { env, input: rules.join("\n") + "\n", encoding: "utf8" });
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(result.stdout).toBe(["0 present", "1 present", "2 present", "3 missing", "4 unknown", "5 unknown", ""].join("\n"));
        // Checks only, waiting for xtables' lock as the doctor's did: nothing added, and nothing run that is not a rule.
        expect(calls().filter((call) => /^ip6?tables /.test(call))).toEqual([
            "iptables -w -C FORWARD -i wg0 -o wg0 -j ACCEPT -m comment --comment wg-relay",
            "iptables -w -t nat -C WG-RELAY-NAT -s 10.10.0.4/32 -o ens3 -m comment --comment wg-relay:phone -j MASQUERADE",
            "ip6tables -w -C WG-RELAY-EGRESS -j DROP",
            "iptables -w -C INPUT -i ens3 -p udp --dport 51820 -j DROP -m comment --comment wg-relay",
        ]);
        expect(calls().filter((call) => call.startsWith("rm ") || call.startsWith("ip -4 rule"))).toEqual([]);
    });

    it("puts back a firewall rule of the template's PostUp lines that was deleted by hand, without a restart", () => {
        applyFirst();
        const added = rules();
        expect(added).toEqual([
            "filter FORWARD -i wg0 -o wg0 -j ACCEPT -m comment --comment wg-relay",
            "nat POSTROUTING -s 10.10.0.0/24 -o eth0 -j MASQUERADE -m comment --comment wg-relay",
            "filter INPUT -i eth0 -p udp --dport 51820 -j DROP -m comment --comment wg-relay",
        ]);
        writeFileSync(join(paths.state, "iptables"), added.filter((rule) => !rule.startsWith("filter FORWARD") && !rule.startsWith("nat")).join("\n") + "\n");
        const result = wgApply();
        expect(result.status).toBe(0);
        expect(restarted()).toBe(false);
        expect(result.stdout).toContain("wg-apply: re-adding a missing firewall rule: iptables -A FORWARD -i wg0 -o wg0 -j ACCEPT -m comment --comment wg-relay");
        expect(calls().filter((call) => call.startsWith("iptables") && !call.includes(" -C "))).toEqual([
            "iptables -A FORWARD -i wg0 -o wg0 -j ACCEPT -m comment --comment wg-relay",
            "iptables -t nat -A POSTROUTING -s 10.10.0.0/24 -o eth0 -j MASQUERADE -m comment --comment wg-relay",
        ]);
        expect(rules().sort()).toEqual([...added].sort());
    });

    it("removes a peer added by hand, and only that, without a restart", () => {
        applyFirst();
        const handAdded = "aGFuZC1hZGRlZC1wZWVyLTAxMjM0NTY3ODlhYmNkZWY=";
        writeFileSync(join(paths.state, "running.conf"), readFileSync(join(paths.state, "running.conf"), "utf8") + `\n[Peer]\nPublicKey = ${handAdded}\nAllowedIPs = 10.10.0.99/32\n`);
        expect(wgApply().status).toBe(0);
        expect(restarted()).toBe(false);
        const live = readFileSync(join(paths.state, "synced.conf"), "utf8");
        expect(live).not.toContain(handAdded);
        expect(live).toContain(`PublicKey = ${keys.rpi1Public}\n`);
    });

    it("has a kept-alive peer whose public key changed (its own rotation) handshake at once, and no other", () => {
        writeFileSync(paths.template, template({ laptop: true }));
        writeFileSync(paths.publicKeys, publicKeys(true));
        expect(wgApply().status).toBe(0);
        writeFileSync(paths.publicKeys, `rpi1 ${keys.rpi1PublicRotated}\nlaptop ${keys.laptopPublic}\n`);
        const result = wgApply("--when-complete");
        expect(result.status).toBe(0);
        expect(restarted()).toBe(false);
        expect(readFileSync(join(paths.state, "synced.conf"), "utf8")).toContain(`PublicKey = ${keys.rpi1PublicRotated}\n`);
        expect(calls().filter((call) => call.includes("persistent-keepalive"))).toEqual([
            "wg show wg0 persistent-keepalive",
            `wg set wg0 peer ${keys.rpi1PublicRotated} persistent-keepalive off`,
            `wg set wg0 peer ${keys.rpi1PublicRotated} persistent-keepalive 25`,
        ]);
    });

    it("leaves a template that names a missing key alone with --when-complete, and fails on it without", () => {
        applyFirst();
        writeFileSync(paths.template, template({ laptop: true }));
        const lenient = wgApply("--when-complete");
        expect(lenient.status).toBe(0);
        expect(lenient.stderr).toContain("the public key of laptop");
        expect(calls().filter((call) => !call.startsWith("systemctl enable"))).toEqual([]);
        const strict = wgApply();
        expect(strict.status).toBe(1);
        expect(strict.stderr).toContain(`wg-apply: ${paths.template} needs the public key of laptop (in ${paths.publicKeys}), which is not there`);
    });

    it("never passes a key in a command's arguments", () => {
        applyFirst();
        writeFileSync(paths.template, template({ laptop: true }));
        writeFileSync(paths.publicKeys, publicKeys(true));
        writeFileSync(paths.key, `${keys.relayPrivateRotated}\n`);
        expect(wgApply().status).toBe(0);
        const recorded = calls().join("\n");
        for (const secret of [keys.relayPrivate, keys.relayPrivateRotated, keys.rpi1Preshared]) {
            expect(recorded).not.toContain(secret);
        }
    });
});

describe("wstunnel-install", () => {
    let dir: string;
    let env: NodeJS.ProcessEnv;
    let target: string;
    let marker: string;
    let release: { sha256: string };
    const unit = "wg-relay-wstunnel-client.service";

    const runFor = (units: string, ...args: string[]) => {
        writeFileSync(join(dir, "calls"), "");
        return spawnSync("bash", [join(hostScriptsDir, "wstunnel-install.sh"), units, target, marker, ...args], { env, encoding: "utf8" });
    };
    const run = (...args: string[]) => runFor(unit, ...args);
    const download = (amd64: string) => run("download", "10.6.2", "https://mirror.invalid/wstunnel", amd64, "", "", "");
    const calls = () => readFileSync(join(dir, "calls"), "utf8");

    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "wg-relay-wstunnel-install-"));
        const state = join(dir, "state");
        mkdirSync(join(state, "archive"), { recursive: true });
        writeFileSync(join(state, "archive", "wstunnel"), "#!/bin/sh\necho new wstunnel\n");
        execFileSync("tar", ["-czf", join(state, "release.tar.gz"), "-C", join(state, "archive"), "wstunnel"]);
        release = { sha256: execFileSync("sha256sum", [join(state, "release.tar.gz")], { encoding: "utf8" }).split(" ")[0] };
        target = join(dir, "bin-wstunnel");
        marker = join(dir, "lib", "wstunnel-release.sha256");
        writeFileSync(target, "old wstunnel\n", { mode: 0o755 });
        touchActive(state);
        env = { PATH: `${stubBin(dir)}:${process.env.PATH}`, CALLS: join(dir, "calls"), STATE: state, CONF_UNDER_TEST: "/dev/null" };
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const touchActive = (state: string) => writeFileSync(join(state, "active"), "");

    it("installs a verified release for this architecture, then restarts the running unit", () => {
        const result = download(release.sha256);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(readFileSync(target, "utf8")).toBe("#!/bin/sh\necho new wstunnel\n");
        expect(readFileSync(marker, "utf8")).toBe(`${release.sha256}\n`);
        expect(calls()).toContain("curl --fail --silent --show-error --location --proto =https,http --retry 3 -o ");
        expect(calls()).toContain("https://mirror.invalid/wstunnel/v10.6.2/wstunnel_10.6.2_linux_amd64.tar.gz");
        expect(calls()).toContain(`systemctl restart ${unit}`);
    });

    it("restarts each running unit of a list (a wstunnel client per relay)", () => {
        const result = runFor(`${unit},wg-relay-wstunnel-client-relay2.service`, "download", "10.6.2", "https://mirror.invalid/wstunnel", release.sha256, "", "", "");
        expect(result.status).toBe(0);
        expect(calls()).toContain(`systemctl restart ${unit}\n`);
        expect(calls()).toContain("systemctl restart wg-relay-wstunnel-client-relay2.service\n");
    });

    it("does not fetch again what is installed", () => {
        expect(download(release.sha256).status).toBe(0);
        const again = download(release.sha256);
        expect(again.stdout).toContain("wstunnel 10.6.2 (amd64) is installed already");
        expect(calls()).not.toContain("curl");
        expect(calls()).not.toContain("restart");
    });

    it("keeps the old binary when the archive's checksum differs", () => {
        const result = download("0".repeat(64));
        expect(result.status).toBe(1);
        expect(result.stderr).toContain(`SHA-256 mismatch for wstunnel_10.6.2_linux_amd64.tar.gz: expected ${"0".repeat(64)}, got ${release.sha256}; keeping the installed binary`);
        expect(readFileSync(target, "utf8")).toBe("old wstunnel\n");
        expect(calls()).not.toContain("restart");
    });

    it("says which config key is missing when this architecture has no checksum", () => {
        const result = run("download", "10.6.2", "https://mirror.invalid/wstunnel", "", "a".repeat(64), "", "");
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("no SHA-256 configured for wstunnel 10.6.2 on amd64 (set wg-relay:wstunnel.sha256.amd64");
    });

    it("takes the arm64 archive and its checksum on a 64-bit Pi (aarch64), never amd64's", () => {
        writeFileSync(join(env.STATE!, "machine"), "aarch64\n");
        const result = run("download", "10.6.2", "https://mirror.invalid/wstunnel", "a".repeat(64), release.sha256, "", "");
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(result.stdout).toContain("installed wstunnel 10.6.2 (arm64)");
        expect(calls()).toContain("https://mirror.invalid/wstunnel/v10.6.2/wstunnel_10.6.2_linux_arm64.tar.gz");
        expect(calls()).not.toContain("linux_amd64");
        expect(readFileSync(marker, "utf8")).toBe(`${release.sha256}\n`);
    });

    it("takes the armv6 archive and its checksum on a Pi Zero or Pi 1 (armv6l), armv7's on armv7l", () => {
        writeFileSync(join(env.STATE!, "machine"), "armv6l\n");
        const result = run("download", "10.6.2", "https://mirror.invalid/wstunnel", "", "", "a".repeat(64), release.sha256);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(calls()).toContain("https://mirror.invalid/wstunnel/v10.6.2/wstunnel_10.6.2_linux_armv6.tar.gz");
        writeFileSync(join(env.STATE!, "machine"), "armv7l\n");
        expect(run("download", "10.6.2", "https://mirror.invalid/wstunnel", "", "", "", release.sha256).stderr).toContain(
            "no SHA-256 configured for wstunnel 10.6.2 on armv7 (set wg-relay:wstunnel.sha256.armv7",
        );
    });

    it("installs an uploaded binary only when its checksum matches, keeping the old one otherwise", () => {
        const staged = join(dir, "staged");
        writeFileSync(staged, "uploaded wstunnel\n");
        const digest = execFileSync("sha256sum", [staged], { encoding: "utf8" }).split(" ")[0];
        const refused = run("upload", staged, "1".repeat(64));
        expect(refused.status).toBe(1);
        expect(refused.stderr).toMatch(/SHA-256 mismatch for uploaded .*; keeping the installed binary/);
        expect(readFileSync(target, "utf8")).toBe("old wstunnel\n");
        const installed = run("upload", staged, digest);
        expect(installed.status).toBe(0);
        expect(readFileSync(target, "utf8")).toBe("uploaded wstunnel\n");
        expect(existsSync(staged)).toBe(false);
        expect(calls()).toContain(`systemctl restart ${unit}`);
    });
});

describe("wg-failover", () => {
    // Stand-ins: ping answers for the addresses listed in $STATE/answering; wg keeps each peer's AllowedIPs in
    // $STATE/peers ("KEY<TAB>IPS"), ip each route's source in $STATE/routes ("ROUTE src ADDRESS").
    const failoverStubs: Record<string, string> = {
        ping: `for last; do :; done; grep -qxF -- "$last" "$STATE/answering"`,
        wg: `
case "$1 $3" in
  "show allowed-ips") tr ',' ' ' < "$STATE/peers" ;;
  "set "*) awk -v key="$4" -v ips="$6" 'BEGIN { FS = OFS = "\\t" } $1 == key { $2 = ips } { print }' "$STATE/peers" > "$STATE/peers.new"; mv "$STATE/peers.new" "$STATE/peers" ;;
esac`,
        ip: `
case "$2 $3" in
  "route show") grep "^$4 " "$STATE/routes" | cut -d' ' -f2- ;;
  "route replace") { grep -v "^$4 " "$STATE/routes"; echo "$4 src $8"; } > "$STATE/routes.new"; mv "$STATE/routes.new" "$STATE/routes" ;;
esac`,
    };
    const relayKey = "UkVMQVktcHVibGljLWtleS0wMTIzNDU2Nzg5YWJjZGU=";
    const relay2Key = "UkVMQVkyLXB1YmxpYy1rZXktMDEyMzQ1Njc4OWFiY2Q=";
    const directive = "# wg-relay failover: 192.168.1.0/24,192.168.2.0/24 relay,10.10.0.0/24,10.10.0.1,10.10.0.3 relay2,10.10.1.0/24,10.10.1.1,10.10.1.3";
    let dir: string;
    let state: string;

    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "wg-relay-wg-failover-"));
        state = join(dir, "state");
        mkdirSync(state);
        stubBin(dir, failoverStubs);
        writeFileSync(join(dir, "public-keys"), `relay ${relayKey}\nrelay2 ${relay2Key}\n`);
        writeFileSync(join(dir, "template"), `# WireGuard on laptop, a roaming client\n${directive}\n[Interface]\n`);
        // As wg-quick leaves it: the LANs on the primary's peer, routes without a source of their own.
        writeFileSync(join(state, "peers"), `${relayKey}\t10.10.0.0/24,192.168.1.0/24,192.168.2.0/24\n${relay2Key}\t10.10.1.0/24\n`);
        writeFileSync(join(state, "routes"), "192.168.1.0/24 scope link\n192.168.2.0/24 scope link\n");
        answering("10.10.0.1", "10.10.1.1");
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const answering = (...addresses: string[]) => writeFileSync(join(state, "answering"), addresses.map((address) => `${address}\n`).join(""));
    const round = () => {
        writeFileSync(join(dir, "calls"), "");
        const result = spawnSync(
            "bash",
            [join(hostScriptsDir, "wg-failover.sh"), join(dir, "counts"), join(dir, "public-keys"), "wg0", join(dir, "template")],
            { env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, CALLS: join(dir, "calls"), STATE: state }, encoding: "utf8" },
        );
        expect(result.status).toBe(0);
        return result.stdout + result.stderr;
    };
    const peers = () => readFileSync(join(state, "peers"), "utf8");
    const routes = () => readFileSync(join(state, "routes"), "utf8").split("\n").filter(Boolean).sort();
    const changes = () => readFileSync(join(dir, "calls"), "utf8").split("\n").filter((line) => / (set|replace) /.test(line));

    it("keeps the LANs on the primary while it answers, giving their routes its address as their source once", () => {
        expect(round()).toContain("192.168.1.0/24,192.168.2.0/24 now through relay relay (from 10.10.0.3)");
        expect(routes()).toEqual(["192.168.1.0/24 src 10.10.0.3", "192.168.2.0/24 src 10.10.0.3"]);
        expect(peers()).toBe(`${relayKey}\t10.10.0.0/24,192.168.1.0/24,192.168.2.0/24\n${relay2Key}\t10.10.1.0/24\n`);
        round();
        expect(changes()).toEqual([]);
    });

    it("moves the LANs to the next relay after two unanswered rounds, and back after three answered ones", () => {
        round();
        answering("10.10.1.1");
        round();
        expect(changes()).toEqual([]); // one miss is not enough
        const moved = round();
        expect(moved).toContain("relay relay stopped answering at 10.10.0.1");
        expect(moved).toContain("now through relay relay2 (from 10.10.1.3)");
        expect(peers()).toBe(`${relayKey}\t10.10.0.0/24\n${relay2Key}\t10.10.1.0/24,192.168.1.0/24,192.168.2.0/24\n`);
        expect(routes()).toEqual(["192.168.1.0/24 src 10.10.1.3", "192.168.2.0/24 src 10.10.1.3"]);
        // wg-apply (a `pulumi up`) puts the template's AllowedIPs back: the next round moves them again.
        writeFileSync(join(state, "peers"), `${relayKey}\t10.10.0.0/24,192.168.1.0/24,192.168.2.0/24\n${relay2Key}\t10.10.1.0/24\n`);
        round();
        expect(peers()).toBe(`${relayKey}\t10.10.0.0/24\n${relay2Key}\t10.10.1.0/24,192.168.1.0/24,192.168.2.0/24\n`);
        answering("10.10.0.1", "10.10.1.1");
        round();
        round();
        expect(changes()).toEqual([]);
        const back = round();
        expect(back).toContain("relay relay answers again at 10.10.0.1");
        expect(back).toContain("now through relay relay (from 10.10.0.3)");
        expect(routes()).toEqual(["192.168.1.0/24 src 10.10.0.3", "192.168.2.0/24 src 10.10.0.3"]);
    });

    it("follows the installed template: fewer routes at once, and nothing once the stack drops a relay or the directive", () => {
        round();
        // A `pulumi up` took 192.168.2.0/24 out of the client's routes; wg-apply installed the new template.
        writeFileSync(join(dir, "template"), `${directive.replace("192.168.1.0/24,192.168.2.0/24", "192.168.1.0/24")}\n[Interface]\n`);
        writeFileSync(join(state, "peers"), `${relayKey}\t10.10.0.0/24,192.168.1.0/24\n${relay2Key}\t10.10.1.0/24\n`);
        answering("10.10.1.1");
        round();
        round();
        expect(peers()).toBe(`${relayKey}\t10.10.0.0/24\n${relay2Key}\t10.10.1.0/24,192.168.1.0/24\n`);
        // relay2 left the stack: its key is gone from the public-keys file while the unit still runs.
        writeFileSync(join(dir, "public-keys"), `relay ${relayKey}\n`);
        writeFileSync(join(state, "peers"), `${relayKey}\t10.10.0.0/24,192.168.1.0/24\n`);
        answering("10.10.0.1");
        round();
        round();
        round();
        expect(changes()).toEqual([]);
        // No directive (a single relay again): nothing to do, whatever answers.
        writeFileSync(join(dir, "public-keys"), `relay ${relayKey}\nrelay2 ${relay2Key}\n`);
        writeFileSync(join(dir, "template"), "[Interface]\n");
        answering();
        round();
        round();
        expect(changes()).toEqual([]);
        expect(peers()).toBe(`${relayKey}\t10.10.0.0/24,192.168.1.0/24\n`);
    });

    it("leaves the routes where they are while no relay answers", () => {
        round();
        answering();
        round();
        round();
        round();
        expect(changes()).toEqual([]);
        expect(routes()).toEqual(["192.168.1.0/24 src 10.10.0.3", "192.168.2.0/24 src 10.10.0.3"]);
    });
});

describe("wg-transport", () => {
    // Stand-ins: ping answers while $STATE/udp-passes exists or the endpoint is wstunnel's (wstunnel always passes),
    // wg keeps the relay peer's endpoint in $STATE/endpoint, date prints $STATE/now.
    const relayKey = "UkVMQVktcHVibGljLWtleS0wMTIzNDU2Nzg5YWJjZGU=";
    const udp = "198.51.100.10:51820";
    const wstunnel = "127.0.0.1:51820";
    const transportStubs: Record<string, string> = {
        ping: `endpoint=$(cat "$STATE/endpoint"); [ "$endpoint" = ${wstunnel} ] || [ -e "$STATE/udp-passes" ]`,
        wg: `
case "$1 $3" in
  "show endpoints") printf '%s\\t%s\\n' ${relayKey} "$(cat "$STATE/endpoint")" ;;
  "set "*) echo "$6" > "$STATE/endpoint" ;;
esac`,
        date: `cat "$STATE/now"`,
    };
    const directive = `# wg-relay transport auto: relay ${udp} ${wstunnel} 10.10.0.1 10.10.0.3`;
    let dir: string;
    let state: string;

    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "wg-relay-wg-transport-"));
        state = join(dir, "state");
        mkdirSync(state);
        stubBin(dir, transportStubs);
        writeFileSync(join(dir, "public-keys"), `relay ${relayKey}\n`);
        writeFileSync(join(dir, "template"), `# WireGuard on laptop, a roaming client\n${directive}\n[Interface]\n`);
        // As wg-quick leaves it: the template's endpoint, UDP.
        writeFileSync(join(state, "endpoint"), `${udp}\n`);
        udpPasses(true);
        at(1000);
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const udpPasses = (passes: boolean) => (passes ? writeFileSync(join(state, "udp-passes"), "") : rmSync(join(state, "udp-passes"), { force: true }));
    const at = (seconds: number) => writeFileSync(join(state, "now"), `${seconds}\n`);
    const round = () => {
        writeFileSync(join(dir, "calls"), "");
        const result = spawnSync("bash", [join(hostScriptsDir, "wg-transport.sh"), join(dir, "counts"), join(dir, "public-keys"), "wg0", join(dir, "template")], {
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, CALLS: join(dir, "calls"), STATE: state },
            encoding: "utf8",
        });
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        return result.stdout;
    };
    const endpoint = () => readFileSync(join(state, "endpoint"), "utf8").trim();
    const sets = () => readFileSync(join(dir, "calls"), "utf8").split("\n").filter((line) => line.startsWith("wg set"));

    it("stays on UDP while the relay answers there, pinging its tunnel address from the client's", () => {
        expect(round()).toBe("");
        expect(readFileSync(join(dir, "calls"), "utf8")).toContain("ping -c 1 -W 1 -I 10.10.0.3 10.10.0.1\n");
        expect(sets()).toEqual([]);
        expect(endpoint()).toBe(udp);
    });

    it("moves to wstunnel after two unanswered rounds, tries UDP again after 60 s, and stays there when it answers", () => {
        udpPasses(false);
        round();
        expect(endpoint()).toBe(udp); // one miss is not enough
        at(1002);
        expect(round()).toBe(`wg-transport: relay stopped answering over UDP (${udp}): now through wstunnel (${wstunnel})\n`);
        expect(sets()).toEqual([`wg set wg0 peer ${relayKey} endpoint ${wstunnel}`]);
        at(1061);
        round();
        expect(sets()).toEqual([]);
        udpPasses(true);
        at(1062);
        expect(round()).toBe(`wg-transport: relay answers over UDP (${udp}): now over UDP\n`);
        expect(endpoint()).toBe(udp);
        at(1064);
        round();
        expect(sets()).toEqual([]);
    });

    it("goes back to wstunnel when UDP still does not pass, waiting twice as long each time, at most 480 s", () => {
        udpPasses(false);
        round();
        round();
        expect(endpoint()).toBe(wstunnel);
        const waits = [60, 120, 240, 480, 480];
        let now = 1000;
        for (const wait of waits) {
            now += wait;
            at(now - 1);
            round();
            expect(sets()).toEqual([]);
            at(now);
            expect(round()).toBe(`wg-transport: relay does not answer over UDP (${udp}) yet: back through wstunnel (${wstunnel}), next try in ${Math.min(wait * 2, 480)} s\n`);
            expect(sets()).toEqual([`wg set wg0 peer ${relayKey} endpoint ${udp}`, `wg set wg0 peer ${relayKey} endpoint ${wstunnel}`]);
            expect(readFileSync(join(dir, "calls"), "utf8").match(/^ping /gm)).toHaveLength(3);
        }
    });

    it("tries UDP at once when it starts on wstunnel (no counts yet)", () => {
        writeFileSync(join(state, "endpoint"), `${wstunnel}\n`);
        expect(round()).toBe(`wg-transport: relay answers over UDP (${udp}): now over UDP\n`);
        expect(endpoint()).toBe(udp);
    });

    it("leaves an endpoint set by hand alone, and does nothing without the directive or the relay's key", () => {
        writeFileSync(join(state, "endpoint"), "192.0.2.7:51820\n");
        udpPasses(false);
        round();
        round();
        expect(endpoint()).toBe("192.0.2.7:51820");
        writeFileSync(join(state, "endpoint"), `${udp}\n`);
        writeFileSync(join(dir, "public-keys"), "");
        round();
        round();
        writeFileSync(join(dir, "public-keys"), `relay ${relayKey}\n`);
        writeFileSync(join(dir, "template"), "[Interface]\n");
        round();
        round();
        expect(sets()).toEqual([]);
        expect(endpoint()).toBe(udp);
    });
});

describe("interface check (the first step on a relay or gateway)", () => {
    const run = (script: string, defaultRoute: string) => {
        const dir = mkdtempSync(join(tmpdir(), "wg-relay-interfaces-"));
        try {
            mkdirSync(join(dir, "bin"));
            writeFileSync(join(dir, "bin", "ip"), `#!/bin/sh\n[ "$*" = "-4 -o route show default" ] && printf '%s' '${defaultRoute}'\ntrue\n`);
            chmodSync(join(dir, "bin", "ip"), 0o755);
            return spawnSync("sh", ["-euc", script], { env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` }, encoding: "utf8" });
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    };

    it("refuses a configured name the host does not have, naming the key and the host's interfaces", () => {
        const result = run(interfaceCheckScript([{ key: "wg-relay:relay.publicInterface", name: "ens3x" }]), "");
        expect(result.status).toBe(1);
        expect(result.stderr).toMatch(/^wg-relay:relay\.publicInterface: ens3x is not an interface of this host; it has: .*\blo\b/);
        expect(run(interfaceCheckScript([{ key: "wg-relay:relay.publicInterface", name: "lo" }]), "").status).toBe(0);
    });

    it("takes the default route's interface when none is configured, and fails on a host without a default route", () => {
        const check = interfaceCheckScript([{ key: "wg-relay:gateways[0].lanInterface", name: defaultRouteInterface }]);
        const found = run(check, "default via 192.168.1.1 dev wlan0 proto dhcp src 192.168.1.130 metric 600\n");
        expect(found.status).toBe(0);
        expect(found.stdout).toBe("wg-relay:gateways[0].lanInterface is not set: wlan0, the interface of the default route\n");
        const none = run(check, "");
        expect(none.status).toBe(1);
        expect(none.stderr).toMatch(/^wg-relay:gateways\[0\]\.lanInterface is not set and this host has no default route to take it from; set it to one of this host's interfaces: .*\blo\b/);
    });

    it("writes the default route's interface into the sysctl file, in a sysctl key's spelling", () => {
        const filter = (defaultRoute: string) => run(`printf '%s\\n' 'net.ipv6.conf.${defaultRouteInterface}.accept_ra = 2' | ${sysctlDefaultRouteInterfaceFilter}`, defaultRoute);
        expect(filter("default via 10.0.0.1 dev eth0.10\n").stdout).toBe("net.ipv6.conf.eth0/10.accept_ra = 2\n");
        expect(filter("").status).toBe(1);
    });

    it("writes the default route's interface into the relay's chain files, as iptables spells it", () => {
        const rule = `-A WG-RELAY-EGRESS -s 10.10.0.4/32 -o ${defaultRouteInterface} -j ACCEPT`;
        const filter = (defaultRoute: string) => run(`printf '%s\\n' '${rule}' | ${rulesDefaultRouteInterfaceFilter}`, defaultRoute);
        expect(filter("default via 10.0.0.1 dev eth0.10\n").stdout).toBe("-A WG-RELAY-EGRESS -s 10.10.0.4/32 -o eth0.10 -j ACCEPT\n");
        const none = filter("");
        expect(none.status).toBe(1);
        expect(none.stderr).toContain("the relay's chain files");
    });
});

describe("sysctl-apply", () => {
    // sysctl as procps has it, over $STATE/sysctl/KEY files; a key with a file in $STATE/refuse is refused on write,
    // and one in $STATE/ignore too, but with exit status 0, as procps 4.0.2 does for the kernel's EINVAL.
    const sysctlStub = `
if [ "$1" = -n ]; then cat "$STATE/sysctl/$2" 2>/dev/null || { echo "sysctl: cannot stat /proc/sys/$2: No such file or directory" >&2; exit 255; }; exit 0; fi
setting=$3; key=\${setting%%=*}
if [ -e "$STATE/refuse/$key" ]; then echo "sysctl: setting key \\"$key\\": Invalid argument" >&2; exit 1; fi
if [ -e "$STATE/ignore/$key" ]; then echo "sysctl: setting key \\"$key\\": Invalid argument" >&2; exit 0; fi
printf '%s\\n' "\${setting#*=}" > "$STATE/sysctl/$key"`;
    let dir: string;
    const run = (file: string) => {
        writeFileSync(join(dir, "90-wg-relay.conf"), file);
        return spawnSync("bash", [join(hostScriptsDir, "sysctl-apply.sh"), join(dir, "90-wg-relay.conf"), join(dir, "not-set"), join(dir, "before")], {
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, STATE: dir },
            encoding: "utf8",
        });
    };
    const value = (key: string) => readFileSync(join(dir, "sysctl", key), "utf8").trim();
    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "wg-relay-sysctl-"));
        for (const sub of ["bin", "sysctl", "refuse", "ignore"]) {
            mkdirSync(join(dir, sub));
        }
        writeFileSync(join(dir, "bin", "sysctl"), `#!/bin/bash\n${sysctlStub}\n`);
        chmodSync(join(dir, "bin", "sysctl"), 0o755);
        writeFileSync(join(dir, "sysctl", "net.ipv4.ip_forward"), "0\n");
        writeFileSync(join(dir, "sysctl", "net.ipv4.tcp_congestion_control"), "cubic\n");
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const file = ["# Managed by wg-relay", "net.ipv4.ip_forward = 1", "-net.core.rmem_max = 4194304", "-net.ipv4.tcp_congestion_control = bbr", ""].join("\n");

    it("names each optional setting the host lacks or refuses, in its output and for the doctor, and sets the rest", () => {
        writeFileSync(join(dir, "refuse", "net.ipv4.tcp_congestion_control"), "");
        const result = run(file);
        expect(result.status).toBe(0);
        expect(value("net.ipv4.ip_forward")).toBe("1");
        expect(result.stdout).toBe(
            "sysctl-apply: not set (optional): net.core.rmem_max = 4194304: this kernel has no such setting (or not in this network namespace)\n" +
                'sysctl-apply: not set (optional): net.ipv4.tcp_congestion_control = bbr: the kernel refused it: sysctl: setting key "net.ipv4.tcp_congestion_control": Invalid argument\n',
        );
        expect(readFileSync(join(dir, "not-set"), "utf8")).toBe(
            "net.core.rmem_max = 4194304: this kernel has no such setting (or not in this network namespace)\n" +
                'net.ipv4.tcp_congestion_control = bbr: the kernel refused it: sysctl: setting key "net.ipv4.tcp_congestion_control": Invalid argument\n',
        );
        // Once everything is set, the doctor has nothing to report.
        rmSync(join(dir, "refuse", "net.ipv4.tcp_congestion_control"));
        writeFileSync(join(dir, "sysctl", "net.core.rmem_max"), "212992\n");
        expect(run(file).status).toBe(0);
        expect(value("net.ipv4.tcp_congestion_control")).toBe("bbr");
        expect(existsSync(join(dir, "not-set"))).toBe(false);
    });

    it("--restart-when-changed: try-restarts the units when the run changed the key's value, and only then", () => {
        writeFileSync(join(dir, "bin", "systemctl"), `#!/bin/sh\necho "systemctl $*" >> "$STATE/calls"\n`);
        chmodSync(join(dir, "bin", "systemctl"), 0o755);
        const restarts = (conf: string) => {
            writeFileSync(join(dir, "calls"), "");
            writeFileSync(join(dir, "90-wg-relay.conf"), conf);
            const args = ["--restart-when-changed", "net.ipv4.tcp_congestion_control", "wg-relay-wstunnel-*.service", join(dir, "90-wg-relay.conf"), join(dir, "not-set"), join(dir, "before")];
            const result = spawnSync("bash", [join(hostScriptsDir, "sysctl-apply.sh"), ...args], { env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, STATE: dir }, encoding: "utf8" });
            return { status: result.status, calls: readFileSync(join(dir, "calls"), "utf8") };
        };
        expect(restarts(file)).toEqual({ status: 0, calls: "systemctl try-restart wg-relay-wstunnel-*.service\n" });
        expect(value("net.ipv4.tcp_congestion_control")).toBe("bbr");
        // Again, or with the key changed back by hand and a required setting that fails: no restart.
        expect(restarts(file)).toEqual({ status: 0, calls: "" });
        writeFileSync(join(dir, "sysctl", "net.ipv4.tcp_congestion_control"), "cubic\n");
        writeFileSync(join(dir, "refuse", "net.ipv4.ip_forward"), "");
        writeFileSync(join(dir, "sysctl", "net.ipv4.ip_forward"), "0\n");
        expect(restarts(file)).toEqual({ status: 1, calls: "" });
    });

    it("takes a write the kernel refused as not set though sysctl exits 0 (a network namespace's rmem_default)", () => {
        writeFileSync(join(dir, "sysctl", "net.core.rmem_default"), "212992\n");
        writeFileSync(join(dir, "ignore", "net.core.rmem_default"), "");
        writeFileSync(join(dir, "ignore", "net.ipv4.ip_forward"), "");
        const result = run("net.ipv4.ip_forward = 1\n-net.core.rmem_default = 4194304\n");
        expect(result.stdout).toBe('sysctl-apply: not set (optional): net.core.rmem_default = 4194304: the kernel refused it: sysctl: setting key "net.core.rmem_default": Invalid argument\n');
        expect(result.stderr).toBe('sysctl-apply: net.ipv4.ip_forward = 1 is required and could not be set: the kernel refused it: sysctl: setting key "net.ipv4.ip_forward": Invalid argument\n');
        expect(result.status).toBe(1);
        // Nothing changed, so nothing to put back.
        expect(existsSync(join(dir, "before"))).toBe(false);
    });

    it("fails when a setting without '-' (forwarding) cannot be set, naming it, after trying the others", () => {
        writeFileSync(join(dir, "refuse", "net.ipv4.ip_forward"), "");
        const result = run(file);
        expect(result.status).toBe(1);
        expect(result.stderr).toBe('sysctl-apply: net.ipv4.ip_forward = 1 is required and could not be set: the kernel refused it: sysctl: setting key "net.ipv4.ip_forward": Invalid argument\n');
        expect(value("net.ipv4.tcp_congestion_control")).toBe("bbr");
    });

    it("writes nothing that is already in effect", () => {
        writeFileSync(join(dir, "sysctl", "net.ipv4.ip_forward"), "1\n");
        writeFileSync(join(dir, "refuse", "net.ipv4.ip_forward"), "");
        expect(run("net.ipv4.ip_forward = 1\n").status).toBe(0);
        expect(existsSync(join(dir, "before"))).toBe(false);
    });

    it("keeps the host's own value of each setting it changes, once; --restore puts them back and forgets them", () => {
        writeFileSync(join(dir, "sysctl", "net.ipv4.tcp_rmem"), "4096\t131072\t6291456\n");
        expect(run(`${file}net.ipv4.tcp_rmem = 4096 131072 8388608\n`).status).toBe(0);
        const before = "net.ipv4.ip_forward = 0\nnet.ipv4.tcp_congestion_control = cubic\nnet.ipv4.tcp_rmem = 4096 131072 6291456\n";
        expect(readFileSync(join(dir, "before"), "utf8")).toBe(before);
        // A later run that changes a setting again (by hand, someone set it back) keeps the host's first value.
        writeFileSync(join(dir, "sysctl", "net.ipv4.ip_forward"), "0\n");
        expect(run(file).status).toBe(0);
        expect(readFileSync(join(dir, "before"), "utf8")).toBe(before);

        const restore = spawnSync("bash", [join(hostScriptsDir, "sysctl-apply.sh"), "--restore", join(dir, "before")], { env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, STATE: dir }, encoding: "utf8" });
        expect(restore.status).toBe(0);
        expect(restore.stdout).toBe(
            "sysctl-apply: restored net.ipv4.ip_forward = 0\nsysctl-apply: restored net.ipv4.tcp_congestion_control = cubic\nsysctl-apply: restored net.ipv4.tcp_rmem = 4096 131072 6291456\n",
        );
        expect([value("net.ipv4.ip_forward"), value("net.ipv4.tcp_congestion_control"), value("net.ipv4.tcp_rmem")]).toEqual(["0", "cubic", "4096 131072 6291456"]);
        expect(existsSync(join(dir, "before"))).toBe(false);
    });
});

describe("unit-stays-up", () => {
    // systemctl show as systemd answers it, from $STATE/state ("STATE START" per poll, one line consumed per poll,
    // the last line repeating) and $STATE/env-file; journalctl prints $STATE/journal.
    const stubs = {
        systemctl: `
[ "$1" = show ] || exit 1
case "$3" in
  ActiveState) head -n1 "$STATE/state" | cut -d' ' -f1 ;;
  ActiveEnterTimestampMonotonic) head -n1 "$STATE/state" | cut -d' ' -f2; [ "$(wc -l < "$STATE/state")" -gt 1 ] && sed -i 1d "$STATE/state" ;;
  SubState) echo auto-restart ;;
  NRestarts) echo 7 ;;
  EnvironmentFiles) echo "$STATE/env-file (ignore_errors=no)" ;;
esac
true`,
        journalctl: `cat "$STATE/journal"`,
    };
    let dir: string;
    const run = (states: string[]) => {
        writeFileSync(join(dir, "state"), states.join("\n") + "\n");
        return spawnSync("bash", [join(hostScriptsDir, "unit-stays-up.sh"), "wg-relay-wstunnel-client.service", "1", "2"], {
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, STATE: dir },
            encoding: "utf8",
        });
    };
    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "wg-relay-unit-stays-up-"));
        mkdirSync(join(dir, "bin"));
        for (const [name, body] of Object.entries(stubs)) {
            writeFileSync(join(dir, "bin", name), `#!/bin/bash\n${body}\n`);
            chmodSync(join(dir, "bin", name), 0o755);
        }
        writeFileSync(join(dir, "env-file"), "# wg-relay\nWSTUNNEL_HTTP_UPGRADE_PATH_PREFIX=s3cretPrefixValue\n");
        writeFileSync(join(dir, "journal"), "Starting wstunnel client\nGET /s3cretPrefixValue/events failed: Address already in use (os error 98)\n");
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("succeeds once the unit has stayed up with the same start time, also right after a start", () => {
        const result = run(["activating 0", "active 1000"]);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
    });

    it("fails on a unit that restarts again and again, with its journal lines and no secret of its environment file", () => {
        const result = run(["active 1000", "activating 1000", "active 2000", "activating 2000", "active 3000", "activating 3000", "active 4000", "activating 4000", "active 5000"]);
        expect(result.status).toBe(1);
        expect(result.stderr).toBe(
            "unit-stays-up: wg-relay-wstunnel-client.service did not stay up for 1 s within 2 s (now activating/auto-restart, restarted 7 times); its last journal lines:\n" +
                "    Starting wstunnel client\n" +
                "    GET /<redacted>/events failed: Address already in use (os error 98)\n",
        );
    });

    it("fails on a unit that never becomes active", () => {
        const result = run(["failed 0"]);
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("did not stay up for 1 s within 2 s (now failed/auto-restart");
    });
});

describe("tls-renewal", () => {
    // systemctl as systemd: is-active answers from $STATE/active; a restart takes new copies of the files into the
    // credentials folder (LoadCredential=), or the copies in $STATE/copies-N for the Nth restart, and is recorded.
    const stubs = {
        systemctl: `
case "$1" in
  is-active) [ "$(cat "$STATE/active")" = active ] ;;
  restart)
    echo "restart $2" >>"$STATE/calls"
    n=$(wc -l <"$STATE/calls")
    if [ -d "$STATE/copies-$n" ]; then cp "$STATE/copies-$n"/* "$STATE/credentials/"; else cp "$STATE/cert.pem" "$STATE/credentials/tls.crt"; cp "$STATE/key.pem" "$STATE/credentials/tls.key"; fi ;;
  *) exit 1 ;;
esac`,
        sleep: "true",
    };
    let dir: string;
    const run = () =>
        spawnSync("bash", [join(hostScriptsDir, "tls-renewal.sh"), "wg-relay-wstunnel-server.service", join(dir, "credentials"), join(dir, "cert.pem"), join(dir, "key.pem")], {
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, STATE: dir },
            encoding: "utf8",
        });
    const calls = () => (existsSync(join(dir, "calls")) ? readFileSync(join(dir, "calls"), "utf8") : "");
    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "wg-relay-tls-renewal-"));
        mkdirSync(join(dir, "bin"));
        for (const [name, body] of Object.entries(stubs)) {
            writeFileSync(join(dir, "bin", name), `#!/bin/bash\n${body}\n`);
            chmodSync(join(dir, "bin", name), 0o755);
        }
        mkdirSync(join(dir, "credentials"));
        writeFileSync(join(dir, "active"), "active\n");
        for (const [file, copy, content] of [["cert.pem", "tls.crt", "certificate 1\n"], ["key.pem", "tls.key", "key 1\n"]]) {
            writeFileSync(join(dir, file), content);
            writeFileSync(join(dir, "credentials", copy), content);
        }
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("restarts nothing while the server runs on copies of the files as they are (another file of the folder changed)", () => {
        const result = run();
        expect(result.status).toBe(0);
        expect(calls()).toBe("");
    });

    it("restarts the server once when the certificate and key were renewed", () => {
        writeFileSync(join(dir, "cert.pem"), "certificate 2\n");
        writeFileSync(join(dir, "key.pem"), "key 2\n");
        const result = run();
        expect(result.status).toBe(0);
        expect(calls()).toBe("restart wg-relay-wstunnel-server.service\n");
        expect(result.stdout).toContain(`tls-renewal: ${join(dir, "cert.pem")} or ${join(dir, "key.pem")} changed: restarting wg-relay-wstunnel-server.service (attempt 1)`);
        expect(readFileSync(join(dir, "credentials", "tls.key"), "utf8")).toBe("key 2\n");
    });

    it("restarts again when a file was still being written during the restart, and fails after three", () => {
        writeFileSync(join(dir, "cert.pem"), "certificate 2\n");
        writeFileSync(join(dir, "key.pem"), "key 2\n");
        // The first restart took the new certificate with the old key.
        mkdirSync(join(dir, "copies-1"));
        writeFileSync(join(dir, "copies-1", "tls.crt"), "certificate 2\n");
        writeFileSync(join(dir, "copies-1", "tls.key"), "key 1\n");
        expect(run().status).toBe(0);
        expect(calls()).toBe("restart wg-relay-wstunnel-server.service\n".repeat(2));

        rmSync(join(dir, "calls"));
        writeFileSync(join(dir, "credentials", "tls.key"), "key 1\n");
        for (const n of [1, 2, 3]) {
            mkdirSync(join(dir, `copies-${n}`), { recursive: true });
            writeFileSync(join(dir, `copies-${n}`, "tls.crt"), "certificate 2\n");
            writeFileSync(join(dir, `copies-${n}`, "tls.key"), "key 1\n");
        }
        const result = run();
        expect(result.status).toBe(1);
        expect(calls()).toBe("restart wg-relay-wstunnel-server.service\n".repeat(3));
        expect(result.stderr).toContain("still started with other files");
    });

    it("leaves a stopped server alone: it reads the files when it starts", () => {
        writeFileSync(join(dir, "active"), "inactive\n");
        writeFileSync(join(dir, "cert.pem"), "certificate 2\n");
        expect(run().status).toBe(0);
        expect(calls()).toBe("");
    });
});

describe("staged-switch", () => {
    // Stand-ins: ping answers for the addresses in $STATE/answering; `ip link show wg0` succeeds once $STATE/wg0 exists;
    // systemctl and the apply command (wg-apply) only record their calls.
    const switchStubs: Record<string, string> = {
        ping: `for last; do :; done; grep -qxF -- "$last" "$STATE/answering"`,
        ip: `[ "$*" = "link show wg0" ] && [ -e "$STATE/wg0" ]`,
        systemctl: "true",
        apply: "true",
    };
    let dir: string;
    let state: string;
    const installed = (name: string) => join(dir, "etc", name);
    const staged = (name: string) => join(dir, "staged", name);
    const files = ["public-keys", "wstunnel-client.service", "client.pem"];

    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "wg-relay-staged-switch-"));
        state = join(dir, "state");
        for (const folder of [state, join(dir, "etc"), join(dir, "staged"), join(dir, "bin")]) {
            mkdirSync(folder);
        }
        for (const [name, body] of Object.entries(switchStubs)) {
            writeFileSync(join(dir, "bin", name), `#!/bin/bash\necho "${name} $*" >> "$CALLS"\n${body}\n`);
            chmodSync(join(dir, "bin", name), 0o755);
        }
        writeFileSync(join(state, "wg0"), "");
        // In place: the old relay key and address, no client certificate. Staged by `pulumi up`: the new ones.
        writeFileSync(installed("public-keys"), "relay OLD\n");
        writeFileSync(installed("wstunnel-client.service"), "wss://198.51.100.10:443\n");
        writeFileSync(staged("public-keys"), "relay NEW\n");
        writeFileSync(staged("wstunnel-client.service"), "wss://198.51.100.11:443 --tls-certificate\n");
        writeFileSync(staged("client.pem"), "CERTIFICATE AND KEY\n");
        answering(true);
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const answering = (answers: boolean) => writeFileSync(join(state, "answering"), answers ? "10.10.0.1\n" : "");
    const round = () => {
        writeFileSync(join(dir, "calls"), "");
        const result = spawnSync(
            "bash",
            [
                join(hostScriptsDir, "staged-switch.sh"),
                join(dir, "run"), join(dir, "staged"), join(dir, "previous"), "10.10.0.1", "wstunnel-client.service",
                ...files.map(installed), "--", join(dir, "bin", "apply"), "--when-complete",
            ],
            { env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, CALLS: join(dir, "calls"), STATE: state }, encoding: "utf8" },
        );
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        return result.stdout;
    };
    const rounds = (count: number) => Array.from({ length: count }, round).join("");
    const installedFiles = () => Object.fromEntries(files.map((name) => [name, existsSync(installed(name)) ? readFileSync(installed(name), "utf8") : undefined]));
    const oldFiles = { "public-keys": "relay OLD\n", "wstunnel-client.service": "wss://198.51.100.10:443\n", "client.pem": undefined };
    const newFiles = { "public-keys": "relay NEW\n", "wstunnel-client.service": "wss://198.51.100.11:443 --tls-certificate\n", "client.pem": "CERTIFICATE AND KEY\n" };
    const calls = () => readFileSync(join(dir, "calls"), "utf8").split("\n").filter((line) => line && !line.startsWith("ping ") && !line.startsWith("ip "));

    it("keeps what is in place while the relay answers, staged settings or not", () => {
        expect(rounds(6)).toBe("");
        expect(installedFiles()).toEqual(oldFiles);
    });

    it("switches to the staged settings after four unanswered rounds, and takes them into use", () => {
        answering(false);
        expect(rounds(3)).toBe("");
        expect(installedFiles()).toEqual(oldFiles);
        expect(round()).toBe("staged-switch: the relay at 10.10.0.1 stopped answering; switched to the staged relay settings\n");
        expect(installedFiles()).toEqual(newFiles);
        expect(calls()).toEqual(["systemctl daemon-reload", "systemctl try-restart wstunnel-client.service", `apply --when-complete`]);
        // Once they work, the previous ones are dropped, and a later outage changes nothing.
        answering(true);
        expect(round()).toBe("staged-switch: the staged relay settings work; the previous ones are dropped\n");
        expect(existsSync(join(dir, "previous"))).toBe(false);
        answering(false);
        expect(rounds(12)).toBe("");
        expect(installedFiles()).toEqual(newFiles);
    });

    it("goes back to the previous settings when the staged ones never work, and alternates until one does", () => {
        answering(false);
        rounds(4);
        expect(installedFiles()).toEqual(newFiles);
        expect(rounds(4)).toContain("does not answer with the staged relay settings; back to the previous ones");
        expect(installedFiles()).toEqual(oldFiles); // the client certificate, absent before, is gone again
        rounds(4);
        expect(installedFiles()).toEqual(newFiles);
        rounds(4);
        expect(installedFiles()).toEqual(oldFiles);
        // The relay answers the previous settings (it never switched): they stay, and so does the staged copy.
        answering(true);
        expect(rounds(6)).toBe("");
        expect(installedFiles()).toEqual(oldFiles);
        expect(readFileSync(staged("public-keys"), "utf8")).toBe("relay NEW\n");
    });

    it("does nothing when nothing staged differs, nor before wg0 exists", () => {
        answering(false);
        rmSync(join(state, "wg0"));
        expect(rounds(8)).toBe("");
        expect(installedFiles()).toEqual(oldFiles);
        writeFileSync(join(state, "wg0"), "");
        for (const name of files) {
            rmSync(staged(name), { force: true });
            if (existsSync(installed(name))) {
                writeFileSync(staged(name), readFileSync(installed(name)));
            }
        }
        expect(rounds(8)).toBe("");
        expect(installedFiles()).toEqual(oldFiles);
    });
});

/** DIR/bin with stand-ins that record "NAME ARGS..." in DIR/calls, then run their body. */
function recordingBin(dir: string, stubSet: Record<string, string>): string {
    const bin = join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    for (const [name, body] of Object.entries(stubSet)) {
        writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >> "${dir}/calls"\n${body}\n`);
        chmodSync(join(bin, name), 0o755);
    }
    return bin;
}

describe("write-file (every file step's command carries it)", () => {
    let dir: string;
    let path: string;
    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "wg-relay-write-file-"));
        path = join(dir, "etc", "wg-relay", "unit.conf");
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    // chown records its call and does nothing (no root needed); `fail` makes it fail, as on a group the host lacks.
    const writeFile = (content: string, mode: string, options: { group?: string; filter?: string; chownFails?: boolean } = {}) => {
        const bin = recordingBin(dir, { chown: options.chownFails ? 'echo "chown: invalid group" >&2; exit 1' : "true", shout: "tr a-z A-Z", refuse: 'echo "no default route" >&2; exit 1' });
        writeFileSync(join(dir, "calls"), "");
        const args = [join(hostScriptsDir, "write-file.sh"), path, mode, "root", options.group ?? "root", ...(options.filter ? [options.filter] : [])];
        return spawnSync("sh", args, { input: content, env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
    };
    const calls = () => readFileSync(join(dir, "calls"), "utf8").trim().split("\n").filter(Boolean);
    const folder = () => readdirSync(join(dir, "etc", "wg-relay"));

    it("writes new content through a file beside it, renamed into place with its mode and owner: changed", () => {
        const first = writeFile("a\n", "0640", { group: "wg-relay-wstunnel" });
        expect(first.stderr).toBe("");
        expect(first.stdout).toBe("changed\n");
        expect(readFileSync(path, "utf8")).toBe("a\n");
        expect(statSync(path).mode & 0o777).toBe(0o640);
        // Owner and mode went on the temporary file, before it took the file's name.
        expect(calls()).toEqual([expect.stringMatching(/^chown root:wg-relay-wstunnel .*\/unit\.conf\.[A-Za-z0-9]{6}$/)]);
        expect(folder()).toEqual(["unit.conf"]);
        const inode = statSync(path).ino;
        expect(writeFile("b\n", "0640").stdout).toBe("changed\n");
        expect(readFileSync(path, "utf8")).toBe("b\n");
        expect(statSync(path).ino).not.toBe(inode); // a new file renamed over the old: never half-written
    });

    it("leaves a file with that content in place, setting only mode and owner: unchanged", () => {
        writeFile("a\n", "0644");
        const inode = statSync(path).ino;
        const again = writeFile("a\n", "0600");
        expect(again.stdout).toBe("unchanged\n");
        expect(statSync(path).ino).toBe(inode);
        expect(statSync(path).mode & 0o777).toBe(0o600);
        expect(calls()).toEqual([`chown root:root ${path}`]);
        expect(folder()).toEqual(["unit.conf"]);
    });

    it("passes the content through the filter, and on any failure keeps the file as it was, with no file left beside it", () => {
        expect(writeFile("net.ipv4.ip_forward = 1\n", "0644", { filter: "shout" }).stdout).toBe("changed\n");
        expect(readFileSync(path, "utf8")).toBe("NET.IPV4.IP_FORWARD = 1\n");
        const refused = writeFile("other\n", "0644", { filter: "refuse" });
        expect(refused.status).not.toBe(0);
        expect(refused.stdout).toBe("");
        expect(refused.stderr).toBe("no default route\n");
        const chownFailed = writeFile("other\n", "0644", { chownFails: true });
        expect(chownFailed.status).not.toBe(0);
        expect(chownFailed.stdout).toBe("");
        expect(readFileSync(path, "utf8")).toBe("NET.IPV4.IP_FORWARD = 1\n");
        expect(folder()).toEqual(["unit.conf"]);
    });

    it("keeps the content from others while it is written (a secret's temporary file is root's alone)", () => {
        // A filter that looks at the temporary file while write-file's output goes into it.
        const bin = recordingBin(dir, { chown: "true", peek: `cat >/dev/null; stat -c %a "$(ls -d "${dir}"/etc/wg-relay/unit.conf.*)"` });
        const result = spawnSync("sh", [join(hostScriptsDir, "write-file.sh"), path, "0644", "root", "root", "peek"], { input: "secret\n", env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
        expect(result.stdout).toBe("changed\n");
        expect(readFileSync(path, "utf8")).toBe("600\n");
    });
});

describe("install-packages (the packages step's command carries it)", () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "wg-relay-install-packages-"))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const installPackages = (aptGet: string, ...args: string[]) => {
        // curl is installed; the others are not. sleep passes at once.
        const bin = recordingBin(dir, {
            "dpkg-query": `[ "$3" = curl ] && printf 'install ok installed'; true`,
            sleep: "true",
            "apt-get": aptGet,
        });
        return spawnSync("sh", [join(hostScriptsDir, "install-packages.sh"), ...args], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
    };
    const aptCalls = () => readFileSync(join(dir, "calls"), "utf8").split("\n").filter((call) => call.startsWith("apt-get"));

    it("installs only the missing packages, and nothing when none is missing", () => {
        const result = installPackages("true", "600", "wireguard-tools", "curl", "iptables");
        expect(result.status).toBe(0);
        expect(aptCalls()).toEqual(["apt-get update -qq", "apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends wireguard-tools iptables"]);
        rmSync(join(dir, "calls"));
        rmSync(join(dir, "bin"), { recursive: true });
        expect(installPackages("true", "600", "curl").stdout).toBe("");
        expect(existsSync(join(dir, "calls")) ? aptCalls() : []).toEqual([]);
    });

    it("waits for the package lists' lock while another apt holds it, and gives up after its bound with apt's message", () => {
        const locked = `[ "$1" = update ] && { echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 812 (apt-get)" >&2; exit 100; }; true`;
        const result = installPackages(locked, "10", "wireguard-tools");
        expect(result.status).toBe(1);
        expect(result.stdout).toBe(
            "installing wireguard-tools (waiting up to 10 s for apt's locks if another apt, such as unattended-upgrades, holds them)\n" +
                "another apt holds the package lists' lock: waiting for it\n",
        );
        expect(result.stderr).toBe("E: Could not get lock /var/lib/apt/lists/lock. It is held by process 812 (apt-get)\n");
        // Tried at 0, 5 and 10 s, then given up: never an install.
        expect(aptCalls()).toEqual(["apt-get update -qq", "apt-get update -qq", "apt-get update -qq"]);
        expect(installPackages("true").status).toBe(2);
    });
});

describe("doctor-probe (what the doctor sends a host)", () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "wg-relay-doctor-probe-"))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const probe = (args: string[], rules: string, stubSet: Record<string, string>) => {
        const bin = recordingBin(dir, {
            date: "echo 1700000000",
            uname: "echo aarch64",
            // The caller defines these two (scripts/doctor.ts); here, stand-ins.
            default_route_dev: "echo enp1s0",
            host_interfaces: "echo enp1s0 lo wg0",
            ...stubSet,
        });
        return spawnSync("sh", [join(hostScriptsDir, "doctor-probe.sh"), ...args], { input: rules, env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
    };

    it("prints, for parseProbe, each declared unit, the wstunnel clients running, wg0's public facts, interfaces, rules, forwarding and wstunnel", () => {
        writeFileSync(join(dir, "sysctl.conf"), "net.ipv4.ip_forward = 1\n");
        writeFileSync(join(dir, "not-set"), "net.ipv4.tcp_congestion_control = bbr: the kernel refused it\n");
        writeFileSync(join(dir, "wstunnel"), "binary\n");
        writeFileSync(join(dir, "release"), "f".repeat(64));
        const rules = "iptables -A FORWARD -i %i -o %i -j ACCEPT -m comment --comment wg-relay\niptables -I INPUT -i eth0 -p udp --dport 51820 -j DROP -m comment --comment wg-relay\n";
        const result = probe(
            [
                "--wireguard", "wg0", "--client-units", "wg-relay-wstunnel-client*.service", "--interfaces", "--rules", join(dir, "bin", "wg-apply"),
                "--forwarding", join(dir, "sysctl.conf"), join(dir, "not-set"), "--wstunnel", join(dir, "wstunnel"), join(dir, "release"),
                "--", "wg-quick@wg0.service", "wg-relay-wstunnel-client.service",
            ],
            rules,
            {
                systemctl: `case "$1" in is-active) [ "$2" = wg-quick@wg0.service ] && echo active || { echo failed; exit 3; } ;; list-units) printf '%s\\n' "wg-relay-wstunnel-client-relay2.service loaded active running wstunnel" ;; esac`,
                wg: `case "$3" in public-key) echo PUBKEY= ;; allowed-ips) printf 'PEER=\\t10.10.0.1/32 10.10.0.0/24\\n' ;; latest-handshakes) printf 'PEER=\\t1699999990\\n' ;; esac`,
                // The rules arrive on stdin as declared; it answers "INDEX STATE" per rule.
                "wg-apply": `[ "$1 $2" = "--check-rules wg0" ] || exit 2; cat > "${dir}/rules-seen"; printf '0 present\\n1 missing\\n'`,
                sysctl: `[ "$*" = "-n net.ipv4.ip_forward" ] && echo 1`,
            },
        );
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(readFileSync(join(dir, "rules-seen"), "utf8")).toBe(rules);
        expect(parseProbe(result.stdout)).toEqual({
            now: 1700000000,
            units: { "wg-quick@wg0.service": "active", "wg-relay-wstunnel-client.service": "failed" },
            runningUnits: ["wg-relay-wstunnel-client-relay2.service"],
            wireguard: { publicKey: "PUBKEY=", peers: { "PEER=": { allowedIps: ["10.10.0.1/32", "10.10.0.0/24"], latestHandshake: 1699999990 } } },
            rules: { 0: "present", 1: "missing" },
            interfaces: { defaultRoute: "enp1s0", names: ["enp1s0", "lo", "wg0"] },
            forwarding: { inEffect: "1", file: true },
            sysctlNotSet: ["net.ipv4.tcp_congestion_control = bbr: the kernel refused it"],
            wstunnel: { binarySha256: execFileSync("sha256sum", [join(dir, "wstunnel")], { encoding: "utf8" }).split(" ")[0], releaseSha256: "f".repeat(64), machine: "aarch64" },
        } satisfies Observed);
        // Only public facts of wg0: never `wg show wg0` whole (the preshared keys), `dump` or `private-key`.
        const wgCalls = readFileSync(join(dir, "calls"), "utf8").split("\n").filter((call) => call.startsWith("wg "));
        expect(new Set(wgCalls)).toEqual(new Set(["wg show wg0 public-key", "wg show wg0 allowed-ips", "wg show wg0 latest-handshakes"]));
    });

    it("asks only what it is told to: no wg0, no rules, forwarding or wstunnel; a wg-apply that cannot check the rules is named by its status", () => {
        const bare = probe(["--wireguard", "wg0", "--client-units", "wg-relay-wstunnel-client*.service", "--", "wg-quick@wg0.service"], "", {
            systemctl: `[ "$1" = is-active ] && echo activating`,
            wg: "exit 1",
        });
        expect(bare.stdout).toBe("now\t1700000000\nunit\twg-quick@wg0.service\tactivating\n");
        const old = probe(["--wireguard", "wg0", "--client-units", "x", "--rules", join(dir, "bin", "wg-apply"), "--"], "iptables -A FORWARD -j ACCEPT\n", {
            systemctl: "true",
            wg: "exit 1",
            "wg-apply": "exit 2",
        });
        expect(parseProbe(old.stdout).rulesUnchecked).toBe("2");
        expect(probe(["--units", "x"], "", {}).status).toBe(2);
    });
});

describe("remove-legacy-trusted-ca (the trusted-CA step's command carries it)", () => {
    it("removes the CA an earlier version put in the system's store and rebuilds the store, once", () => {
        const dir = mkdtempSync(join(tmpdir(), "wg-relay-legacy-ca-"));
        try {
            const bin = recordingBin(dir, { "update-ca-certificates": "echo 'Updating certificates in /etc/ssl/certs...'" });
            const ca = join(dir, "wg-relay-lab.crt");
            writeFileSync(ca, "-----BEGIN CERTIFICATE-----\n");
            const remove = () => spawnSync("sh", [join(hostScriptsDir, "remove-legacy-trusted-ca.sh"), ca], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
            expect(remove()).toMatchObject({ status: 0, stdout: "", stderr: "" });
            expect(existsSync(ca)).toBe(false);
            expect(remove().status).toBe(0);
            expect(readFileSync(join(dir, "calls"), "utf8")).toBe("update-ca-certificates --fresh\n");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
