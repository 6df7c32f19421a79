// End to end: `transport: auto` on the laptop behind the hotel, and on the Pi (rpi1) behind its CG-NAT. While the
// router passes UDP to the relay's WireGuard port (the hotel by a rule of this test's own, as the bench adds; the
// CG-NAT passes it anyway), WireGuard goes straight there: the relay sees the peer's session from the router's
// address. The router then drops that UDP (a rule of this test's own, first in its FORWARD chain) in the middle of a
// transfer laptop <- LAN host: the peer's transport unit moves the endpoint to its wstunnel client, the LAN answers
// again through wss:443 within 10 s and the transfer finishes; once UDP passes again, the peer is back on UDP within
// 60 s. No `pulumi up` in between. Each switch's time is printed, with the unit's journal.
// Needs root; run with `bash lab/run-tests.sh test/e2e/transport-auto.test.ts --selectProjects e2e`.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LabChanges } from "../../lab/stack-config";
import { appliedConfPath } from "../../components/host/paths";
import { doctor, doctorFailures, ensureStack, inNamespace, inNamespaceOk, LabHost, lanService, onHostOk, relayAddress, repair, repo, secondsUntil, secondsUntilLanReachable, startInNamespace } from "./lab";

const laptopOnAuto: LabChanges = { relayDirectUdp: { udpPorts: [] }, laptopTransport: "auto" };
const rpi1OnAuto: LabChanges = { relayDirectUdp: { udpPorts: [] }, rpi1Transport: "auto" };
const udpEndpoint = `${relayAddress}:51820`;
const wstunnelEndpoint = "127.0.0.1:51820";

type Router = "hotel" | "cgnat";
// The routers' rules of this test: one passes UDP to the relay's WireGuard port (the hotel's, which drops UDP but
// DNS), the other (first in the chain, both directions, before the router's own "established" rule) drops it.
const passUdp = ["FORWARD", "-i", "lan", "-o", "wan", "-p", "udp", "-d", relayAddress, "--dport", "51820", "-m", "comment", "--comment", "wg-relay-e2e-auto-pass", "-j", "ACCEPT"];
const dropUdp = ["FORWARD", "-p", "udp", "-m", "multiport", "--ports", "51820", "-m", "comment", "--comment", "wg-relay-e2e-auto-drop", "-j", "DROP"];
const routerRule = (router: Router, action: "-I" | "-D", rule: string[]) => {
    const present = inNamespace(router, ["iptables", "-w", "-C", ...rule]).status === 0;
    if (action === "-I" && !present) {
        inNamespaceOk(router, ["iptables", "-w", "-I", rule[0], "1", ...rule.slice(1)]);
    } else if (action === "-D" && present) {
        inNamespaceOk(router, ["iptables", "-w", "-D", ...rule]);
    }
};

/** A peer on auto: its host, the router it is behind and that router's public address (lab/hosts.sh), and what the relay routes to it. */
interface AutoPeer {
    host: LabHost;
    router: Router;
    routerAddress: string;
    relayRoutes: string;
}
const laptop: AutoPeer = { host: "laptop", router: "hotel", routerAddress: "203.0.113.2", relayRoutes: "10.10.0.3/32" };
const rpi1: AutoPeer = { host: "rpi1", router: "cgnat", routerAddress: "100.64.0.2", relayRoutes: "192.168.1.0/24" };

/** The peer's endpoint for the relay, and where the relay sees the peer's session come from. */
const endpointOf = (peer: AutoPeer) => onHostOk(peer.host, "wg show wg0 endpoints").trim().split("\t")[1] ?? "none";
const relaySees = (peer: AutoPeer) => {
    const key = onHostOk("relay", "wg show wg0 allowed-ips").split("\n").find((line) => line.includes(peer.relayRoutes))?.split("\t")[0];
    return onHostOk("relay", "wg show wg0 endpoints").split("\n").find((line) => key !== undefined && line.startsWith(key))?.split("\t")[1] ?? "none";
};
const onUdp = (peer: AutoPeer) => () => endpointOf(peer) === udpEndpoint && relaySees(peer).startsWith(`${peer.routerAddress}:`);
const onWstunnel = (peer: AutoPeer) => () => endpointOf(peer) === wstunnelEndpoint && relaySees(peer).startsWith("127.0.0.1:");

/** The LAN host (lab/hosts.sh) that serves lanService. */
const lanHost = "192.168.1.20";
const bigFile = join(repo, ".lab", "hosts", "lanhost", "www", "transport-auto.bin");
const bigFileMb = 30;


jest.setTimeout(15 * 60_000);

/** What a test started in a namespace, stopped even when it fails half-way. */
const started: { stop: () => Promise<unknown> }[] = [];
afterAll(async () => {
    await Promise.all(started.map((command) => command.stop()));
    for (const router of ["hotel", "cgnat"] as const) {
        routerRule(router, "-D", dropUdp);
    }
    routerRule("hotel", "-D", passUdp);
    rmSync(bigFile, { force: true });
});

/**
 * On a stack with `peer` on auto, its router passing UDP: the peer on UDP; its router drops UDP 5 s into a transfer
 * laptop <- LAN host, the LAN answers again through wss:443 within 10 s and the transfer finishes; UDP passes again:
 * back on UDP within 60 s. Prints each switch time; returns when the unit's journal starts.
 */
async function switchesBothWays(peer: AutoPeer): Promise<string> {
    // From wherever an earlier run left it (on wstunnel, waiting up to 480 s before trying UDP): a unit that starts
    // tries UDP at once.
    onHostOk(peer.host, "systemctl restart wg-relay-transport.service");
    expect(onHostOk(peer.host, "cat /sys/class/net/wg0/mtu").trim()).toBe("1420");
    expect(onHostOk(peer.host, "systemctl is-active wg-relay-transport.service wg-relay-wstunnel-client.service").trim()).toBe("active\nactive");
    const since = onHostOk(peer.host, "date '+%Y-%m-%d %H:%M:%S'").trim();
    console.log(`${peer.host} udp: the LAN answers the laptop after ${await secondsUntilLanReachable(60)} s`);
    console.log(`${peer.host} udp: the relay sees ${peer.host} from the ${peer.router} after ${await secondsUntil(`${peer.host}'s session over UDP from the ${peer.router}`, 30, onUdp(peer))} s`);

    // A transfer at 1 MB/s that lasts about 30 s, and a ping series to the LAN host; the router drops UDP 5 s in.
    writeFileSync(bigFile, Buffer.alloc(bigFileMb * 1_000_000, 7));
    const pings = startInNamespace("laptop", ["ping", "-D", "-n", "-i", "0.2", "-W", "1", lanHost]);
    const transfer = startInNamespace("laptop", ["curl", "--silent", "--show-error", "--limit-rate", "1M", "--max-time", "120", "--output", "/dev/null", "--write-out", "%{http_code} %{size_download}\\n", `${lanService}transport-auto.bin`]);
    started.push(pings, transfer);
    await new Promise((done) => setTimeout(done, 5000));
    routerRule(peer.router, "-I", dropUdp);
    const droppedAt = Date.now() / 1000;
    await secondsUntil(`${peer.host}'s session through wstunnel after the ${peer.router} dropped UDP`, 20, onWstunnel(peer));
    const result = await transfer.finished;
    expect(doctorFailures(doctor().report)).toEqual([]);
    console.log(`${peer.host}: the transfer finished ${(Date.now() / 1000 - droppedAt).toFixed(1)} s after the drop: ${result.trim()}`);
    expect(result.trim()).toBe(`200 ${bigFileMb * 1_000_000}`);
    const answeredAgain = firstAnswerAfterLoss(await pings.stop(), droppedAt);
    console.log(`${peer.host} UDP dropped: the LAN host answers pings again through wss:443 after ${answeredAgain.toFixed(1)} s`);
    expect(answeredAgain).toBeLessThanOrEqual(10);

    routerRule(peer.router, "-D", dropUdp);
    const passesAt = Date.now() / 1000;
    console.log(`${peer.host} UDP passes again: back on UDP after ${await secondsUntil(`${peer.host} back on UDP after the ${peer.router} passes it again`, 60, onUdp(peer))} s`);
    console.log(`${peer.host}: the LAN answers the laptop on UDP after ${await secondsUntilLanReachable(10)} s more`);
    const journal = onHostOk(peer.host, `journalctl --no-pager -o short-unix -u wg-relay-transport.service --since '${since}'`);
    console.log(journal);
    /** Seconds from `after` to the unit's first journal line saying `what` after it. */
    const switchedAfter = (what: string, after: number) =>
        journal
            .split("\n")
            .filter((line) => line.includes(what))
            .map((line) => Number(line.split(" ")[0]))
            .find((time) => time >= after)! - after;
    console.log(
        `${peer.host} switch times (the unit's journal): to wstunnel ${switchedAfter("now through wstunnel", droppedAt).toFixed(1)} s after the drop, ` +
            `to UDP ${switchedAfter("now over UDP", passesAt).toFixed(1)} s after UDP passed again`,
    );
    return since;
}

describe("clients[].transport auto: the laptop over UDP where the hotel passes it, wss:443 where it does not", () => {
    it("uses UDP while it passes, the LAN answers through wss:443 within 10 s when the hotel drops it mid-transfer, and back within 60 s", async () => {
        routerRule("hotel", "-I", passUdp);
        ensureStack(laptopOnAuto);
        const since = await switchesBothWays(laptop);

        // A `pulumi up` that syncs wg0's peers (a repair runs wg-apply again) keeps the live endpoint: put back to
        // the template's (UDP, dropped again), it would cost two misses and a second "stopped answering" line.
        routerRule("hotel", "-I", dropUdp);
        await secondsUntil("through wstunnel again after the hotel dropped UDP again", 20, onWstunnel(laptop));
        const droppedAgain = onHostOk("laptop", "date '+%Y-%m-%d %H:%M:%S'").trim();
        const applied = () => onHostOk("laptop", `stat -c %y ${appliedConfPath}`).trim();
        const appliedBefore = applied();
        repair();
        expect(applied()).not.toBe(appliedBefore);
        await new Promise((done) => setTimeout(done, 6000));
        const movedSince = (from: string) => onHostOk("laptop", `journalctl --no-pager -u wg-relay-transport.service --since '${from}'`).match(/stopped answering over UDP/g) ?? [];
        expect(movedSince(since)).toHaveLength(2);
        // Through wss:443; a retry of UDP (every 60 s or more while it is dropped) cuts it for up to 3 s.
        expect(await secondsUntilLanReachable(10)).toBeLessThan(10);
        console.log(`a repair (wg-apply syncing wg0) kept the endpoint on wstunnel; the unit moved it ${movedSince(droppedAgain).length} more times during and after it`);
        routerRule("hotel", "-D", dropUdp);
        routerRule("hotel", "-D", passUdp);
    });
});

describe("gateways[].transport auto: the Pi over UDP while its CG-NAT passes it, wss:443 while it does not", () => {
    it("uses UDP through the CG-NAT, the LAN answers through wss:443 within 10 s when the CG-NAT drops it mid-transfer, and back within 60 s", async () => {
        // The laptop on wstunnel: only the Pi's leg switches.
        ensureStack(rpi1OnAuto);
        await switchesBothWays(rpi1);
    });
});

/**
 * Seconds from `since` to the first reply of a `ping -D` series that ends a gap of over 1 s after `since`: when the
 * LAN host answered again after the loss.
 */
function firstAnswerAfterLoss(output: string, since: number): number {
    const replies = [...output.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from /gm)].map((match) => Number(match[1]));
    const index = replies.findIndex((time, i) => i > 0 && time > since && time - replies[i - 1] > 1);
    if (index < 0) {
        throw new Error(`no reply ended a loss after ${since} in:\n${output}`);
    }
    return replies[index] - since;
}
