// End to end, on the lab's real hosts: what a hostile peer can send the relay. The laptop, a client limited to
// lanhost:80, and rpi1, a gateway, each widen their own WireGuard (AllowedIPs and routes towards the relay, a spoofed
// source address) as a peer with its keys may, then try what their config does not grant: the relay's own services,
// the internet, a metadata address on the relay's public side, a host behind another interface of the relay, and
// from the internet WireGuard's UDP port on the relay's public addresses. Each attempt must be refused and counted
// by the rule that refused it (iptables or ip6tables counters on the relay, read before and after each attempt); each
// test has a control where the same request succeeds. IPv6 inside the tunnel is on except in H1, so every chain is
// tried in both families.
// The targets live in the lab (lab/hosts.sh): 198.18.0.80 (the internet's web site) and 169.254.169.254 (the
// metadata stand-in) in the internet namespace, 172.31.0.10 behind the relay's bridge br-side; each logs who asked.
// The suite itself starts a web service on the relay (8080) and one on the internet's IPv6 address 2001:db8:51::1.
// Needs root; run with `bash lab/run-tests.sh test/e2e/hostile.test.ts --selectProjects e2e`.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseStackConfig } from "../../components/config";
import { labStackConfig, type LabChanges } from "../../lab/stack-config";
import { ensureStack, inNamespace, onHost, onHostOk, relayAddress, repo, secondsUntilLanReachable, startInNamespace } from "./lab";

const web = "198.18.0.80";
const metadata = "169.254.169.254";
const sideHost = "172.31.0.10";
/** The internet's end of the relay's public IPv6 link (lab/hosts.sh); the suite serves HTTP there. */
const web6 = "2001:db8:51::1";
const relayPublic6 = "2001:db8:51::10";
const relayService = 8080;
const web6Port = 8080;
/** A full-tunnel client that exists as a bundle only: its address is the one the laptop spoofs. */
const exit = { name: "exit", tunnelAddress: "10.10.0.5", fullTunnel: true };
/** Addresses in rpi1's LAN that are not rpi1's: WireGuard on the relay accepts them from rpi1's key. */
const spoofedLan = "192.168.1.77";
const spoofedLan6 = "fd00:192:168:1::77";

const webOnly: NonNullable<LabChanges["laptopAccess"]> = [{ to: "192.168.1.20", protocol: "tcp", ports: [80] }];
const restricted: LabChanges = { ipv6: true, laptopAccess: webOnly };
const relayGranted: LabChanges = { ipv6: true, laptopAccess: [...webOnly, { to: "relay", protocol: "tcp", ports: [22, relayService] }] };
const withFullTunnelClient: LabChanges = { ...restricted, extraClients: [exit] };
const laptopFullTunnel: LabChanges = { ...withFullTunnelClient, laptopFullTunnel: true };

/** The relay's tunnel addresses; the IPv6 one as the program resolves it (the lab's config with IPv6 on). */
const relayTunnel = {
    ipv4: "10.10.0.1",
    ipv6: parseStackConfig(labStackConfig(JSON.parse(readFileSync(join(repo, ".lab", "inventory.json"), "utf8")), "/dev/null", restricted) as Record<string, unknown>).relays[0]
        .tunnelAddress6!,
};

type Peer = "laptop" | "rpi1";
type Family = "ipv4" | "ipv6";

/**
 * What a peer with its keys can do on its own side: send the relay what its config does not route there. Its relay
 * peer's AllowedIPs and wg0 routes widened to the targets, and spare source addresses on lo; idempotent. wg-quick
 * undoes the first on a restart of wg0, so each test calls it after converging.
 */
function goHostile(peer: Peer): void {
    const targets = [`${web}/32`, `${metadata}/32`, "172.31.0.0/24", "2001:db8:51::/64"];
    onHostOk(
        peer,
        [
            "relay_key=$(wg show wg0 peers | head -n 1)",
            `allowed=$(wg show wg0 allowed-ips | cut -f2 | tr ' ' '\\n' | grep -v '^(none)$' | sort -u | paste -sd, -)`,
            `wg set wg0 peer "$relay_key" allowed-ips "$allowed,${targets.join(",")}"`,
            ...targets.map((target) => `ip route replace ${target} dev wg0`),
            // Addresses that are not the peer's own: another peer's tunnel address, another LAN host's.
            `ip addr replace ${exit.tunnelAddress}/32 dev lo`,
            `ip addr replace ${spoofedLan}/32 dev lo`,
            `ip addr replace ${spoofedLan6}/128 dev lo nodad`,
        ].join("\n"),
    );
}

/** The stack converged to `changes`, the tunnel up again (a changed wg0 restarts), both peers hostile again. */
async function converge(changes: LabChanges): Promise<void> {
    ensureStack(changes);
    await secondsUntilLanReachable(60);
    goHostile("laptop");
    goHostile("rpi1");
}

const url = (host: string, port: number) => `http://${host.includes(":") ? `[${host}]` : host}:${port}/`;

/** What a TCP connection from a namespace meets: an answer, a refusal (RST), or nothing (dropped). */
function tcpFrom(namespace: string, host: string, port: number, source?: string): "open" | "refused" | "dropped" {
    const result = inNamespace(namespace, [
        "curl",
        "--silent",
        "--show-error",
        "--output",
        "/dev/null",
        "--connect-timeout",
        "3",
        "--max-time",
        "5",
        ...(source ? ["--interface", source] : []),
        url(host, port),
    ]);
    if (result.status === 28) {
        return "dropped";
    }
    if (result.status === 7) {
        return "refused";
    }
    // A connection: an HTTP answer (0), or sshd's banner, which is no HTTP (1, 8), or a close (52, 56).
    if ([0, 1, 8, 52, 56].includes(result.status ?? -1)) {
        return "open";
    }
    throw new Error(`curl ${url(host, port)} from ${namespace}${source ? ` (from ${source})` : ""}: exit ${result.status}: ${result.stderr.trim()}`);
}

/** Lines of a lab web server's request log (python's http.server: one per request, the asker's address first). */
function requestsTo(server: "web" | "metadata" | "side"): string[] {
    return readFileSync(join(repo, ".lab", "hosts", server, "http.log"), "utf8")
        .split("\n")
        .filter((line) => /^\d+\.\d+\.\d+\.\d+ - - /.test(line));
}

/**
 * Packets counted by the relay's rules of a chain (filter table) that `match` (iptables -S form, counters left
 * out); NaN, and a warning, when the relay has no such chain or rule.
 */
function packets(family: Family, chain: string, match: (rule: string) => boolean): number {
    const listing = onHost("relay", `${family === "ipv6" ? "ip6tables" : "iptables"} -w -v -S ${chain}`);
    const rules = listing.stdout
        .split("\n")
        .filter((line) => line.startsWith("-A "))
        .map((line) => ({ rule: line.replace(/ -c \d+ \d+/, ""), count: Number(/ -c (\d+) \d+/.exec(line)?.[1] ?? NaN) }))
        .filter(({ rule }) => match(rule));
    if (rules.length === 0) {
        console.warn(`the relay's ${family} chain ${chain} has no such rule: ${listing.stderr.trim() || listing.stdout}`);
        return NaN;
    }
    return rules.reduce((sum, { count }) => sum + count, 0);
}
const finalDrop = (chain: string) => (rule: string) => rule === `-A ${chain} -j DROP`;
const grantOf = (client: string) => (rule: string) => rule.includes(`wg-relay:${client}`) && rule.endsWith("-j ACCEPT");

/** Runs `attempt` and returns how many packets the relay's rules of `chain` that `match` counted meanwhile. */
function counted(family: Family, chain: string, match: (rule: string) => boolean, attempt: () => void): number {
    const before = packets(family, chain, match);
    attempt();
    return packets(family, chain, match) - before;
}

/** The attempt from `peer` meets nothing, and the rule `match` of `chain` counts it: the relay dropped it there. */
function expectDroppedBy(family: Family, chain: string, match: (rule: string) => boolean, peer: Peer, host: string, port: number, source?: string): void {
    let outcome = "";
    const drops = counted(family, chain, match, () => (outcome = tcpFrom(peer, host, port, source)));
    const attempt = { peer, host, port, source };
    expect({ ...attempt, outcome, countedBy: drops > 0 ? chain : `nothing (${drops})` }).toEqual({ ...attempt, outcome: "dropped", countedBy: chain });
}

/**
 * Packets from `source` that came out of the relay's WireGuard (wg0) while `attempt` ran: counted by a rule of the
 * test's own at the top of the raw table, which decides nothing, removed afterwards. The lab's WireGuard is
 * wireguard-go, which counts nothing of what its source check drops.
 */
function emergedFromWireguard(source: string, attempt: () => void): number {
    const rule = `PREROUTING -i wg0 -s ${source}/32 -m comment --comment wg-relay-hostile-test`;
    onHostOk("relay", `iptables -w -t raw -I ${rule}`);
    try {
        attempt();
        const listing = onHostOk("relay", "iptables -w -t raw -v -S PREROUTING");
        return Number(/-c (\d+) \d+/.exec(listing.split("\n").find((line) => line.includes("wg-relay-hostile-test")) ?? "")?.[1] ?? NaN);
    } finally {
        onHost("relay", `iptables -w -t raw -D ${rule}`);
    }
}

/** Bytes the relay's WireGuard received from the laptop's key. */
function receivedFromLaptop(): number {
    const key = onHostOk("laptop", "wg show wg0 public-key").trim();
    const line = onHostOk("relay", "wg show wg0 transfer")
        .split("\n")
        .find((entry) => entry.startsWith(`${key}\t`));
    return Number(line?.split("\t")[1] ?? NaN);
}

/** A node web server's command line: it answers `text` and prints who asked. */
const webServer = (text: string, port: number, host?: string) => [
    process.execPath,
    "-e",
    `require("http").createServer((q, r) => { console.log("asked by " + q.socket.remoteAddress); r.end(${JSON.stringify(text)}); }).listen(${port}${host ? `, ${JSON.stringify(host)}` : ""})`,
];

const curlFromRelay = (host: string, port = 80) => inNamespace("relay", ["curl", "--silent", "--max-time", "5", url(host, port)]).stdout;

// pulumi up and the lab's set-up take minutes on a cold machine.
jest.setTimeout(20 * 60 * 1000);

describe("a hostile client and gateway against the relay", () => {
    let relayServer: { stop: () => Promise<string> };

    beforeAll(async () => {
        // Another service on the relay, on every address of both families, as an admin's dashboard would be.
        relayServer = startInNamespace("relay", webServer("relay service\n", relayService));
        await new Promise((resolve) => setTimeout(resolve, 1000));
    });

    afterAll(async () => {
        await relayServer?.stop();
        // Undo what the peers did to their own side: wg-quick puts wg0 back as its conf says.
        for (const peer of ["laptop", "rpi1"] as const) {
            onHost(peer, `ip addr del ${exit.tunnelAddress}/32 dev lo; ip addr del ${spoofedLan}/32 dev lo; ip addr del ${spoofedLan6}/128 dev lo; systemctl restart wg-quick@wg0`);
        }
    });

    it("H1. WireGuard's UDP port on the relay's public addresses is closed to the internet, IPv6 as IPv4 (tunnel without IPv6), counted by the drops; another port answers", async () => {
        // Without IPv6 in the tunnel: the relay's WireGuard listens on IPv6 all the same.
        ensureStack({ laptopAccess: webOnly });
        const wireguardDrop = (rule: string) => /^-A INPUT -i eth0 -p udp -m udp --dport 51820\b.* -j DROP$/.test(rule);
        const send = (address: string, port: number) => inNamespace("inet", ["bash", "-c", `for i in 1 2 3; do echo probe >/dev/udp/${address}/${port}; done`]);
        expect(counted("ipv6", "INPUT", wireguardDrop, () => send(relayPublic6, 51820))).toBe(3);
        expect(counted("ipv4", "INPUT", wireguardDrop, () => send(relayAddress, 51820))).toBe(3);
        // Control: the same datagrams to another port of the same IPv6 address reach a listener on the relay.
        const listener = startInNamespace("relay", [
            process.execPath,
            "-e",
            `const s = require("dgram").createSocket("udp6"); s.on("message", (m) => { console.log(String(m).trim()); s.close(); }); s.bind(51821, "${relayPublic6}", () => console.log("listening"));`,
        ]);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        send(relayPublic6, 51821);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        expect(await listener.stop()).toContain("probe");
    });

    it("H2. a host behind another interface of the relay: refused for the client and the gateway, counted by WG-RELAY-EGRESS; the relay itself reaches it", async () => {
        await converge(restricted);
        const asked = requestsTo("side").length;
        expectDroppedBy("ipv4", "WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), "laptop", sideHost, 80);
        expectDroppedBy("ipv4", "WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), "rpi1", sideHost, 80);
        expect(requestsTo("side").length).toBe(asked);
        // Control: the host answers the relay.
        expect(curlFromRelay(sideHost)).toContain("hello from behind the relay's bridge");
    });

    it("H3. the relay's sshd and another service through the tunnel, both families: refused for the client and the gateway, counted by WG-RELAY-INPUT; open once the client's access names the relay", async () => {
        await converge(restricted);
        const heartbeat = (rule: string) => rule.includes("--dport 9 ") && rule.endsWith("-j ACCEPT");
        const heartbeats = packets("ipv4", "WG-RELAY-INPUT", heartbeat);
        for (const family of ["ipv4", "ipv6"] as const) {
            for (const peer of ["laptop", "rpi1"] as const) {
                for (const port of [22, relayService]) {
                    expectDroppedBy(family, "WG-RELAY-INPUT", finalDrop("WG-RELAY-INPUT"), peer, relayTunnel[family], port);
                }
            }
        }
        // What the program itself needs passes meanwhile: the gateway's heartbeat, counted by its own rule.
        expect(packets("ipv4", "WG-RELAY-INPUT", heartbeat)).toBeGreaterThan(heartbeats);

        // Control: granted, the same requests from the laptop get through, counted by its grant; the gateway's are
        // still refused.
        await converge(relayGranted);
        for (const family of ["ipv4", "ipv6"] as const) {
            for (const port of [22, relayService]) {
                const granted = counted(family, "WG-RELAY-INPUT", grantOf("laptop"), () => expect(tcpFrom("laptop", relayTunnel[family], port)).toBe("open"));
                expect({ family, port, granted: granted > 0 }).toEqual({ family, port, granted: true });
            }
            expectDroppedBy(family, "WG-RELAY-INPUT", finalDrop("WG-RELAY-INPUT"), "rpi1", relayTunnel[family], relayService);
        }
    });

    it("H4. the internet through the relay, both families: refused for a split-tunnel client and a gateway with and without a full-tunnel client in the stack; the full-tunnel client gets out over IPv4 from the relay's address", async () => {
        const refusedEverywhere = () => {
            const asked = requestsTo("web").length;
            for (const peer of ["laptop", "rpi1"] as const) {
                expectDroppedBy("ipv4", "WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), peer, web, 80);
                expectDroppedBy("ipv6", "WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), peer, web6, web6Port);
            }
            // Not a request reached the web site (its log would name the asker).
            expect(requestsTo("web").slice(asked)).toEqual([]);
        };
        // The internet over IPv6, beyond the relay's public interface.
        const web6Server = startInNamespace("inet", webServer("hello from the IPv6 internet\n", web6Port, web6));
        let web6Asked = "";
        try {
            await converge(restricted);
            refusedEverywhere();
            await converge(withFullTunnelClient);
            refusedEverywhere();

            // Control: the laptop with a full tunnel reaches the site, masqueraded behind the relay's public address;
            // its IPv6 (a full tunnel carries IPv4 only) and the gateway stay refused.
            await converge(laptopFullTunnel);
            const asked = requestsTo("web").length;
            const accepted = counted("ipv4", "WG-RELAY-EGRESS", grantOf("laptop"), () => {
                expect(inNamespace("laptop", ["curl", "--silent", "--max-time", "5", url(web, 80)]).stdout).toContain("hello from the internet");
            });
            expect(accepted).toBeGreaterThan(0);
            expect(requestsTo("web").slice(asked).map((line) => line.split(" ")[0])).toEqual([relayAddress]);
            expectDroppedBy("ipv6", "WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), "laptop", web6, web6Port);
            expectDroppedBy("ipv4", "WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), "rpi1", web, 80);
            // The IPv6 site answers the relay itself.
            expect(curlFromRelay(web6, web6Port)).toContain("hello from the IPv6 internet");
        } finally {
            web6Asked = await web6Server.stop();
        }
        // Only the relay asked it: nothing from a peer reached it.
        expect(web6Asked.match(/^asked by .*$/gm)).toEqual([`asked by ${relayPublic6}`]);
    });

    it("H5. a metadata address on the relay's public side: refused even for the full-tunnel client, and for the gateway; the relay itself reaches it", async () => {
        await converge(laptopFullTunnel);
        const asked = requestsTo("metadata").length;
        const linkLocalDrop = (rule: string) => rule === "-A WG-RELAY-EGRESS -d 169.254.0.0/16 -j DROP";
        expectDroppedBy("ipv4", "WG-RELAY-EGRESS", linkLocalDrop, "laptop", metadata, 80);
        expectDroppedBy("ipv4", "WG-RELAY-EGRESS", linkLocalDrop, "rpi1", metadata, 80);
        expect(requestsTo("metadata").length).toBe(asked);
        // Control: the same request from the relay gets its answer.
        expect(curlFromRelay(metadata)).toContain("hello from the metadata service");
    });

    it("H6. a spoofed source: the gateway from another LAN host's addresses is refused by the relay's chains in both families; the client from another client's address by WireGuard itself (nothing comes out of wg0); from its own, it passes", async () => {
        await converge(laptopFullTunnel);
        // The gateway may send from its LANs' addresses (they are its AllowedIPs), but they open nothing on the relay
        // and lead nowhere beyond it.
        const asked = requestsTo("web").length;
        expectDroppedBy("ipv4", "WG-RELAY-INPUT", finalDrop("WG-RELAY-INPUT"), "rpi1", relayTunnel.ipv4, relayService, spoofedLan);
        expectDroppedBy("ipv6", "WG-RELAY-INPUT", finalDrop("WG-RELAY-INPUT"), "rpi1", relayTunnel.ipv6, relayService, spoofedLan6);
        expectDroppedBy("ipv4", "WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), "rpi1", web, 80, spoofedLan);
        // The laptop posing as the full-tunnel client `exit`: the relay's WireGuard gets the packets from the laptop's
        // key but drops them, their source being outside its AllowedIPs: nothing from that address comes out of wg0,
        // and exit's rule never sees it.
        const received = receivedFromLaptop();
        let exitAccepted = NaN;
        const emerged = emergedFromWireguard(exit.tunnelAddress, () => {
            exitAccepted = counted("ipv4", "WG-RELAY-EGRESS", grantOf("exit"), () => expect(tcpFrom("laptop", web, 80, exit.tunnelAddress)).toBe("dropped"));
        });
        expect(receivedFromLaptop()).toBeGreaterThan(received);
        expect({ emerged, exitAccepted }).toEqual({ emerged: 0, exitAccepted: 0 });
        expect(requestsTo("web").slice(asked)).toEqual([]);
        // Control: from its own address the laptop's full tunnel gets out, counted by its own rule.
        let accepted = NaN;
        const emergedOwn = emergedFromWireguard("10.10.0.3", () => {
            accepted = counted("ipv4", "WG-RELAY-EGRESS", grantOf("laptop"), () => expect(tcpFrom("laptop", web, 80, "10.10.0.3")).toBe("open"));
        });
        expect({ emergedOwn: emergedOwn > 0, accepted: accepted > 0 }).toEqual({ emergedOwn: true, accepted: true });
    });
});
