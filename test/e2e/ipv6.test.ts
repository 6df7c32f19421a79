// End to end, on the lab's real hosts: IPv6 inside the tunnel. One `pulumi up` turns it on (the stack's own unique
// local /64, rpi1 routing the home LAN's IPv6 prefix); the laptop, behind the hotel's UDP-dropping firewall, then
// reaches rpi1's IPv6 tunnel address and a LAN host's IPv6 address through wss:443. Needs root; `npm run test:all`.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseStackConfig } from "../../components/config";
import { labStackConfig, type LabChanges } from "../../lab/stack-config";
import { ensureStack, inNamespace, onHostOk, repo, secondsUntilLanReachable } from "./lab";

const lanHost6 = "fd00:192:168:1::20";

/** The network as the program resolves it for these changes: where the IPv6 addresses are before `pulumi up`. */
function resolved(changes: LabChanges) {
    const inventory = JSON.parse(readFileSync(join(repo, ".lab", "inventory.json"), "utf8"));
    return parseStackConfig(labStackConfig(inventory, "/dev/null", changes) as Record<string, unknown>);
}

const pingFromLaptop = (address: string) => inNamespace("laptop", ["ping", "-n", "-c", "3", "-W", "2", address]);

/** What a TCP connection from the laptop meets: an answer, a refusal (RST from the far end), or nothing (dropped). */
function tcpFromLaptop(host: string, port: number): "open" | "refused" | "dropped" {
    const result = inNamespace("laptop", ["timeout", "4", "bash", "-c", `exec 3<>/dev/tcp/${host}/${port} && echo open`]);
    if (result.stdout.includes("open")) {
        return "open";
    }
    return result.status === 124 ? "dropped" : "refused";
}

/** Packets counted by the relay's IPv6 access-chain rules whose line contains `text`. */
function accessChain6Packets(text: string): number {
    return onHostOk("relay", "ip6tables -w -v -S WG-RELAY-ACCESS")
        .split("\n")
        .filter((line) => line.startsWith("-A ") && line.includes(text))
        .reduce((sum, line) => sum + Number(/ -c (\d+) \d+/.exec(line)?.[1] ?? NaN), 0);
}

// pulumi up and the lab's set-up take minutes on a cold machine.
jest.setTimeout(20 * 60 * 1000);

describe("IPv6 inside the tunnel in the lab", () => {
    it("5. with IPv6 on, the laptop pings rpi1's IPv6 tunnel address and a LAN host's IPv6 address through wss:443", async () => {
        // rpi1's own tunnel addresses are named in the laptop's access rules (ping only); its LANs as by default.
        const withIpv6 = (rpi1Address6: string): LabChanges => ({
            ipv6: true,
            laptopAccess: [{ to: "rpi1" }, { to: "10.10.0.2", protocol: "icmp" }, { to: rpi1Address6, protocol: "icmp" }],
        });
        const network = resolved({ ipv6: true });
        const [rpi1] = network.gateways;
        const [laptop] = network.clients;
        const changes = withIpv6(rpi1.tunnelAddress6!);
        ensureStack(changes);
        // Turning IPv6 on restarts every wg0 (their addresses change): the tunnel is back within about 15 s.
        await secondsUntilLanReachable(60);

        // The laptop's wg0 has both families, and its only way to the relay is its wstunnel client on loopback.
        expect(onHostOk("laptop", "ip -6 -o addr show dev wg0 scope global")).toContain(` inet6 ${laptop.tunnelAddress6}/64 `);
        expect(onHostOk("laptop", "wg show wg0 endpoints").trim()).toMatch(/\t127\.0\.0\.1:51820$/);
        expect(onHostOk("laptop", "wg show wg0 allowed-ips").trim().split(/\s+/).slice(1)).toEqual(["10.10.0.0/24", network.tunnel.ipv6!.prefix, "192.168.1.0/24", "fd00:192:168:1::/64"]);

        const lanHostBefore = accessChain6Packets(`-d fd00:192:168:1::/64 -m comment --comment "wg-relay:laptop"`);
        const toLanHost = pingFromLaptop(lanHost6);
        expect(toLanHost.stdout).toMatch(/ 0% packet loss/);
        // Forwarded by the relay under the laptop's IPv6 grant for rpi1's LAN (the first packet opens the flow; the
        // rest pass as ESTABLISHED), not around the chain.
        expect(accessChain6Packets(`-d fd00:192:168:1::/64 -m comment --comment "wg-relay:laptop"`)).toBeGreaterThan(lanHostBefore);

        expect(pingFromLaptop(rpi1.tunnelAddress6!).stdout).toMatch(/ 0% packet loss/);
        // Only ping was granted to rpi1's tunnel address: its SSH there is dropped by the relay's IPv6 chain, while
        // its SSH on its LAN's IPv6 address (rpi1's LAN is granted whole) answers.
        expect(tcpFromLaptop(rpi1.tunnelAddress6!, 22)).toBe("dropped");
        expect(tcpFromLaptop("fd00:192:168:1::130", 22)).toBe("open");
    });
});
