// End to end, on the lab's real hosts: what a hostile peer can send the relay. The laptop, a client limited to
// lanhost:80, and rpi1, a gateway, each widen their own WireGuard (AllowedIPs and routes towards the relay, a spoofed
// source address) as a peer with its keys may, then try what their config does not grant: the relay's own services,
// the internet, a metadata address on the relay's public side, a host behind another interface of the relay, and
// from the internet WireGuard's UDP port on the relay's IPv6 address. Each attempt must be refused and counted by the
// chain that refused it (rule counters on the relay); each has a control where the same request succeeds.
// The targets live in the lab (lab/hosts.sh): 198.18.0.80 (the internet's web site) and 169.254.169.254 (the
// metadata stand-in) in the internet namespace, 172.31.0.10 behind the relay's bridge br-side; each logs who asked.
// Needs root; run with `bash lab/run-tests.sh --selectProjects e2e test/e2e/hostile.test.ts`.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LabChanges } from "../../lab/stack-config";
import { ensureStack, inNamespace, onHost, onHostOk, relayAddress, repo, startInNamespace } from "./lab";

const relayTunnel = "10.10.0.1";
const web = "198.18.0.80";
const metadata = "169.254.169.254";
const sideHost = "172.31.0.10";
const relayService = 8080;
/** A full-tunnel client that exists as a bundle only: its address is the one the laptop spoofs. */
const exit = { name: "exit", tunnelAddress: "10.10.0.5", fullTunnel: true };

const webOnly: NonNullable<LabChanges["laptopAccess"]> = [{ to: "192.168.1.20", protocol: "tcp", ports: [80] }];
const restricted: LabChanges = { laptopAccess: webOnly };
const withFullTunnelClient: LabChanges = { ...restricted, extraClients: [exit] };
const laptopFullTunnel: LabChanges = { ...withFullTunnelClient, laptopFullTunnel: true };

type Peer = "laptop" | "rpi1";
const namespaceOf: Record<Peer, string> = { laptop: "laptop", rpi1: "rpi1" };

/**
 * What a peer with its keys can do on its own side: send the relay what its config does not route there. Its relay
 * peer's AllowedIPs and wg0 routes widened to the targets, and spare source addresses on lo; idempotent.
 */
function goHostile(peer: Peer): void {
    const targets = [`${web}/32`, `${metadata}/32`, "172.31.0.0/24"];
    onHostOk(
        peer,
        [
            "relay_key=$(wg show wg0 peers | head -n 1)",
            `allowed=$(wg show wg0 allowed-ips | cut -f2 | tr ' ' '\\n' | grep -v '^(none)$' | sort -u | paste -sd, -)`,
            `wg set wg0 peer "$relay_key" allowed-ips "$allowed,${targets.join(",")}"`,
            ...targets.map((target) => `ip route replace ${target} dev wg0`),
            // Addresses that are not the peer's own: another peer's tunnel address, another LAN host's.
            "ip addr replace 10.10.0.5/32 dev lo",
            "ip addr replace 192.168.1.77/32 dev lo",
        ].join("\n"),
    );
}

/** What a TCP connection from a peer meets: an answer, a refusal (RST), or nothing (dropped). */
function tcpFrom(peer: Peer, host: string, port: number, source?: string): "open" | "refused" | "dropped" {
    const result = inNamespace(namespaceOf[peer], [
        "curl",
        "--silent",
        "--output",
        "/dev/null",
        "--connect-timeout",
        "3",
        "--max-time",
        "5",
        ...(source ? ["--interface", source] : []),
        `http://${host}:${port}/`,
    ]);
    // 28: timed out; 7: connection refused; anything else got a connection (sshd answers HTTP with garbage).
    return result.status === 28 ? "dropped" : result.status === 7 ? "refused" : "open";
}

/** Lines of a lab web server's request log (python's http.server: one per request, the asker's address first). */
function requestsTo(server: "web" | "metadata" | "side"): string[] {
    return readFileSync(join(repo, ".lab", "hosts", server, "http.log"), "utf8")
        .split("\n")
        .filter((line) => /^\d+\.\d+\.\d+\.\d+ - - /.test(line));
}

/** Packets counted by the relay's rules of a chain that `match` (iptables -S form, counters left out). */
function packets(chain: string, match: (rule: string) => boolean, options: { ipv6?: boolean } = {}): number {
    const listing = onHost("relay", `${options.ipv6 ? "ip6tables" : "iptables"} -w -v -S ${chain}`);
    if (listing.status !== 0) {
        throw new Error(`the relay has no chain ${chain}: ${listing.stderr.trim()}`);
    }
    return listing.stdout
        .split("\n")
        .filter((line) => line.startsWith("-A "))
        .map((line) => ({ rule: line.replace(/ -c \d+ \d+/, ""), count: Number(/ -c (\d+) \d+/.exec(line)?.[1] ?? NaN) }))
        .filter(({ rule }) => match(rule))
        .reduce((sum, { count }) => sum + count, 0);
}
const finalDrop = (chain: string) => (rule: string) => rule === `-A ${chain} -j DROP`;

/** Runs `attempt` and returns how many packets the chain's rules that `match` counted meanwhile. */
function counted(chain: string, match: (rule: string) => boolean, attempt: () => void, options: { ipv6?: boolean } = {}): number {
    const before = packets(chain, match, options);
    attempt();
    return packets(chain, match, options) - before;
}

// pulumi up and the lab's set-up take minutes on a cold machine.
jest.setTimeout(20 * 60 * 1000);

describe("a hostile client and gateway against the relay", () => {
    let service: { stop: () => Promise<string> };

    beforeAll(() => {
        // Another service on the relay, on every address, as an admin's dashboard would be.
        service = startInNamespace("relay", [process.execPath, "-e", `require("http").createServer((q, r) => r.end("relay service\\n")).listen(${relayService})`]);
    });

    afterAll(async () => {
        await service?.stop();
        // Undo what the peers did to their own side: wg-quick puts wg0 back as its conf says.
        for (const peer of ["laptop", "rpi1"] as const) {
            onHost(peer, "ip addr del 10.10.0.5/32 dev lo; ip addr del 192.168.1.77/32 dev lo; systemctl restart wg-quick@wg0");
        }
    });

    it("H1. WireGuard's UDP port on the relay's public IPv6 address is closed to the internet, counted by the drop; another port answers", async () => {
        ensureStack(restricted);
        const wireguardDrop = (rule: string) => rule.startsWith("-A INPUT -i eth0 -p udp -m udp --dport 51820") && rule.endsWith("-j DROP");
        const send = (port: number) => inNamespace("inet", ["bash", "-c", `for i in 1 2 3; do echo probe >/dev/udp/2001:db8:51::10/${port}; done`]);
        expect(counted("INPUT", wireguardDrop, () => send(51820), { ipv6: true })).toBe(3);
        // Control: the same datagrams to another port of the same address reach a listener on the relay.
        const listener = startInNamespace("relay", [
            process.execPath,
            "-e",
            `const s = require("dgram").createSocket("udp6"); s.on("message", (m) => { console.log(String(m).trim()); s.close(); }); s.bind(51821, "2001:db8:51::10", () => console.log("listening"));`,
        ]);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        send(51821);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        expect(await listener.stop()).toContain("probe");
    });

    it("H2. a host behind another interface of the relay: refused for the client and the gateway, counted by WG-RELAY-EGRESS; the relay itself reaches it", () => {
        ensureStack(restricted);
        goHostile("laptop");
        goHostile("rpi1");
        const asked = requestsTo("side").length;
        const drops = counted("WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), () => {
            expect(tcpFrom("laptop", sideHost, 80)).toBe("dropped");
            expect(tcpFrom("rpi1", sideHost, 80)).toBe("dropped");
        });
        expect(drops).toBeGreaterThanOrEqual(2);
        expect(requestsTo("side").length).toBe(asked);
        // Control: the host answers the relay.
        expect(inNamespace("relay", ["curl", "--silent", "--max-time", "5", `http://${sideHost}/`]).stdout).toContain("hello from behind the relay's bridge");
    });

    it("H3. the relay's sshd and another service through the tunnel: refused for the client and the gateway, counted by WG-RELAY-INPUT; open once the client's access names the relay", () => {
        ensureStack(restricted);
        const drops = counted("WG-RELAY-INPUT", finalDrop("WG-RELAY-INPUT"), () => {
            for (const peer of ["laptop", "rpi1"] as const) {
                expect(tcpFrom(peer, relayTunnel, 22)).toBe("dropped");
                expect(tcpFrom(peer, relayTunnel, relayService)).toBe("dropped");
            }
        });
        expect(drops).toBeGreaterThanOrEqual(4);
        // What the program itself needs passes: the gateway's heartbeat (every few seconds), counted by its own rule.
        expect(packets("WG-RELAY-INPUT", (rule) => rule.includes("--dport 9 "))).toBeGreaterThan(0);

        // Control: granted, the same requests from the laptop get through; the gateway's are still refused.
        ensureStack({ laptopAccess: [...webOnly, { to: "relay", protocol: "tcp", ports: [22, relayService] }] });
        const granted = counted("WG-RELAY-INPUT", (rule) => rule.includes("wg-relay:laptop"), () => {
            expect(tcpFrom("laptop", relayTunnel, 22)).toBe("open");
            expect(tcpFrom("laptop", relayTunnel, relayService)).toBe("open");
        });
        expect(granted).toBeGreaterThanOrEqual(2);
        expect(tcpFrom("rpi1", relayTunnel, relayService)).toBe("dropped");
    });

    it("H4. the internet through the relay: refused for a split-tunnel client and a gateway with and without a full-tunnel client in the stack; the full-tunnel client gets out from the relay's address", () => {
        const refusedEverywhere = () => {
            goHostile("laptop");
            goHostile("rpi1");
            const asked = requestsTo("web").length;
            const drops = counted("WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), () => {
                expect(tcpFrom("laptop", web, 80)).toBe("dropped");
                expect(tcpFrom("rpi1", web, 80)).toBe("dropped");
            });
            expect(drops).toBeGreaterThanOrEqual(2);
            // Not even a packet reached the web site (its log would name the tunnel address).
            expect(requestsTo("web").slice(asked)).toEqual([]);
        };
        ensureStack(restricted);
        refusedEverywhere();
        ensureStack(withFullTunnelClient);
        refusedEverywhere();

        // Control: the laptop with a full tunnel reaches the site, masqueraded behind the relay's public address.
        ensureStack(laptopFullTunnel);
        goHostile("rpi1");
        const asked = requestsTo("web").length;
        const accepted = counted("WG-RELAY-EGRESS", (rule) => rule.includes("wg-relay:laptop"), () => {
            expect(inNamespace("laptop", ["curl", "--silent", "--max-time", "5", `http://${web}/`]).stdout).toContain("hello from the internet");
        });
        expect(accepted).toBeGreaterThan(0);
        expect(requestsTo("web").slice(asked).map((line) => line.split(" ")[0])).toEqual([relayAddress]);
        expect(tcpFrom("rpi1", web, 80)).toBe("dropped");
    });

    it("H5. a metadata address on the relay's public side: refused even for the full-tunnel client, and for the gateway; the relay itself reaches it", () => {
        ensureStack(laptopFullTunnel);
        goHostile("rpi1");
        const asked = requestsTo("metadata").length;
        const linkLocalDrop = (rule: string) => rule === "-A WG-RELAY-EGRESS -d 169.254.0.0/16 -j DROP";
        const drops = counted("WG-RELAY-EGRESS", linkLocalDrop, () => {
            expect(tcpFrom("laptop", metadata, 80)).toBe("dropped");
            expect(tcpFrom("rpi1", metadata, 80)).toBe("dropped");
        });
        expect(drops).toBeGreaterThanOrEqual(2);
        expect(requestsTo("metadata").length).toBe(asked);
        // Control: the same request from the relay gets its answer.
        expect(inNamespace("relay", ["curl", "--silent", "--max-time", "5", `http://${metadata}/`]).stdout).toContain("hello from the metadata service");
    });

    it("H6. a spoofed source: the gateway from another LAN host's address is refused by the relay's chains; the client from another client's address by WireGuard itself; from its own, it passes", () => {
        ensureStack(laptopFullTunnel);
        goHostile("laptop");
        goHostile("rpi1");
        // The gateway may send from its LANs' addresses (they are its AllowedIPs), but they open nothing on the relay
        // and lead nowhere beyond it.
        const inputDrops = counted("WG-RELAY-INPUT", finalDrop("WG-RELAY-INPUT"), () => {
            expect(tcpFrom("rpi1", relayTunnel, relayService, "192.168.1.77")).toBe("dropped");
        });
        expect(inputDrops).toBeGreaterThanOrEqual(1);
        const asked = requestsTo("web").length;
        const egressDrops = counted("WG-RELAY-EGRESS", finalDrop("WG-RELAY-EGRESS"), () => {
            expect(tcpFrom("rpi1", web, 80, "192.168.1.77")).toBe("dropped");
        });
        expect(egressDrops).toBeGreaterThanOrEqual(1);
        // The laptop posing as the full-tunnel client `exit`: WireGuard on the relay drops what the laptop's key
        // sends from an address outside its AllowedIPs, so exit's rule never sees it.
        const exitAccepted = counted("WG-RELAY-EGRESS", (rule) => rule.includes("wg-relay:exit"), () => {
            expect(tcpFrom("laptop", web, 80, exit.tunnelAddress)).toBe("dropped");
        });
        expect(exitAccepted).toBe(0);
        expect(requestsTo("web").slice(asked)).toEqual([]);
        // Control: from its own address the laptop's full tunnel gets out.
        expect(tcpFrom("laptop", web, 80, "10.10.0.3")).toBe("open");
    });
});
