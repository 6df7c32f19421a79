// End to end with two sites and two relays (README "Several sites and relays"): the second relay (relay2) and site
// (cgnat2, rpi2, lanhost2) join the lab for this file (`npm run lab -- sites`). Real hosts, real traffic.
import type { LabChanges } from "../../lab/stack-config";
import { destroy, doctor, ensureStack, findingOf, inNamespace, inNamespaceOk, lab, labTry, onHostOk, secondsUntil, writeStack } from "./lab";

jest.setTimeout(20 * 60 * 1000);

const lan1 = "http://192.168.1.20/";
const lan2 = "http://192.168.2.20/";
const relay2Address = "192.0.2.20";
const sites: LabChanges = { sites: {} };
const siteToSite: LabChanges = { sites: { siteToSite: ["rpi1", "rpi2"] } };

const get = (namespace: string, url: string, seconds = 3) => inNamespace(namespace, ["curl", "--silent", "--max-time", String(seconds), url]).stdout;

const bothLans = () => get("laptop", lan1).includes("hello from lanhost") && get("laptop", lan2).includes("hello from lanhost2");
/** The laptop's source address towards a LAN: 10.10.0.3 on relay, 10.10.1.3 on relay2. */
const laptopSource = (lanHost: string) => / src (\S+)/.exec(inNamespaceOk("laptop", ["ip", "-4", "route", "get", lanHost]))?.[1];

/** When a gateway last completed a handshake with a relay (seconds since the epoch; the lab shares one clock). */
function lastHandshake(gateway: "rpi1" | "rpi2", relay: "relay" | "relay2"): number {
    const relayKey = onHostOk(relay, "wg show wg0 public-key").trim();
    const line = onHostOk(gateway, "wg show wg0 latest-handshakes").split("\n").find((text) => text.startsWith(relayKey));
    return Number(line?.split(/\s+/)[1] ?? 0);
}

/** Packets a relay forwarded as replies (its access chain's first rule: RELATED,ESTABLISHED). */
function repliesThrough(host: "relay" | "relay2"): number {
    const line = onHostOk(host, "iptables -L WG-RELAY-ACCESS -v -x -n").split("\n").find((text) => text.includes("RELATED,ESTABLISHED"));
    return Number(line!.trim().split(/\s+/)[0]);
}

describe("several sites and two relays in the lab", () => {
    beforeAll(() => {
        lab(["sites"]);
    });

    afterAll(() => {
        // The relay back on, whatever a failed test left; the LAN host's hand-made route gone.
        labTry(["host", "start", "relay"]);
        inNamespace("lanhost", ["ip", "route", "del", "192.168.2.0/24"]);
    });

    it("1. converges bare hosts; both sites' LAN services answer the laptop through wss:443 to both relays", () => {
        destroy();
        ensureStack(sites);
        expect(get("laptop", lan1, 10)).toContain("hello from lanhost");
        expect(get("laptop", lan2, 10)).toContain("hello from lanhost2");
        expect(inNamespaceOk("laptop", ["ip", "-4", "route", "get", "192.168.2.20"])).toMatch(/dev wg0 .*src 10\.10\.0\.3/);
        // A wss connection to each relay, from the laptop and from each gateway.
        const established = (namespace: string) => inNamespaceOk(namespace, ["ss", "-tnH", "state", "established"]);
        for (const namespace of ["laptop", "rpi1", "rpi2"]) {
            expect(established(namespace)).toContain("198.51.100.10:443");
            expect(established(namespace)).toContain(`${relay2Address}:443`);
        }
        // Each gateway has a live session with each relay.
        const threeMinutesAgo = Date.now() / 1000 - 180;
        for (const gateway of ["rpi1", "rpi2"] as const) {
            expect(lastHandshake(gateway, "relay")).toBeGreaterThan(threeMinutesAgo);
            expect(lastHandshake(gateway, "relay2")).toBeGreaterThan(threeMinutesAgo);
        }
    });

    it("2. refuses overlapping LAN subnets at preview, naming both keys, before anything changes", () => {
        writeStack(sites);
        lab(["pulumi", "config", "set", "--stack", "lab", "--path", "wg-relay:gateways[1].lanSubnets[0]", "192.168.1.0/25"]);
        const preview = labTry(["pulumi", "preview", "--stack", "lab"]);
        writeStack(sites);
        expect(preview.status).not.toBe(0);
        expect(preview.stdout + preview.stderr).toContain(
            "wg-relay:gateways[1].lanSubnets[0]: 192.168.1.0/25 overlaps 192.168.1.0/24 of wg-relay:gateways[0].lanSubnets[0]",
        );
        ensureStack(sites);
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
    });

    it("3. site to site: lanhost reaches lanhost2 when both gateways opt in, and not when they do not", () => {
        // The LAN host's way to the other site: through its gateway (a home router's static route, in real life).
        inNamespaceOk("lanhost", ["ip", "route", "replace", "192.168.2.0/24", "via", "192.168.1.130"]);
        ensureStack(siteToSite);
        expect(get("lanhost", lan2, 10)).toContain("hello from lanhost2");
        expect(onHostOk("relay", "cat /etc/wg-relay/access.rules")).toContain("-A WG-RELAY-ACCESS -s 192.168.1.0/24 -d 192.168.2.0/24 -m comment --comment wg-relay:rpi1 -j ACCEPT");

        ensureStack(sites);
        const off = inNamespace("lanhost", ["curl", "--silent", "--max-time", "5", lan2]);
        expect(off.status).not.toBe(0);
        expect(off.stdout).not.toContain("hello from lanhost2");
        // Nothing on the way lets it through: no route into the tunnel on rpi1, no rule on the relay.
        expect(onHostOk("rpi1", "ip -4 route get 192.168.2.20")).not.toMatch(/dev wg0/);
        expect(onHostOk("relay", "cat /etc/wg-relay/access.rules")).not.toContain("192.168.1.0/24 -d 192.168.2.0/24");
    });

    it("4. fails over to relay2 when relay stops, and back when it returns; replies take the relay the requests took", async () => {
        ensureStack(sites);
        await secondsUntil("both LANs through relay", 60, bothLans);
        expect(laptopSource("192.168.1.20")).toBe("10.10.0.3");

        // The gateways ride it out on their own: their wg0 is never restarted, and nothing is applied to them.
        const wg0Index = (gateway: "rpi1" | "rpi2") => onHostOk(gateway, "cat /sys/class/net/wg0/ifindex").trim();
        const gatewayIfindexes = [wg0Index("rpi1"), wg0Index("rpi2")];

        lab(["host", "stop", "relay"]);
        const failover = await secondsUntil("both LANs through relay2 after relay stopped", 60, bothLans);
        console.log(`failover: both LANs answered the laptop through relay2 ${failover.toFixed(1)} s after relay lost power`);
        expect(laptopSource("192.168.1.20")).toBe("10.10.1.3");
        expect(laptopSource("192.168.2.20")).toBe("10.10.1.3");
        // The gateways' replies come back through relay2 (its access chain passes them), and go to the laptop's
        // address in relay2's subnet, which only relay2's peer on each gateway carries.
        const relay2Replies = repliesThrough("relay2");
        expect(bothLans()).toBe(true);
        expect(repliesThrough("relay2")).toBeGreaterThan(relay2Replies);
        expect(onHostOk("rpi1", "ip -4 route get 10.10.1.3")).toMatch(/dev wg0 .*src 10\.10\.1\.2/);
        expect(failover).toBeLessThan(30);
        // The doctor sees the relay gone and the laptop's LAN routes on relay2, as the failover unit put them.
        const during = doctor().report;
        expect(during.ok).toBe(false);
        expect(findingOf(during, "laptop", "failover routes")).toEqual({
            check: "failover routes",
            status: "ok",
            detail: "192.168.1.0/24, 192.168.2.0/24 on relay2 (failed over: its primary did not answer)",
        });

        const relayBack = Date.now() / 1000;
        lab(["host", "start", "relay"]);
        const failback = await secondsUntil("back on relay after it returned", 120, () => laptopSource("192.168.1.20") === "10.10.0.3" && bothLans());
        console.log(`failback: the laptop was back on relay ${failback.toFixed(1)} s after relay booted (sshd up)`);
        // Now the replies take relay, and none goes through relay2.
        const before = { relay: repliesThrough("relay"), relay2: repliesThrough("relay2") };
        expect(bothLans()).toBe(true);
        expect(repliesThrough("relay")).toBeGreaterThan(before.relay);
        expect(repliesThrough("relay2")).toBe(before.relay2);
        expect(failback).toBeLessThan(60);

        // Nothing was lost on the gateways' side: the same wg0, and a new session with the rebooted relay.
        expect([wg0Index("rpi1"), wg0Index("rpi2")]).toEqual(gatewayIfindexes);
        for (const gateway of ["rpi1", "rpi2"] as const) {
            await secondsUntil(`${gateway}: a new session with relay`, 30, () => lastHandshake(gateway, "relay") > relayBack);
        }
        // And no drift: the stack still describes every host as it is, and the doctor finds all of them healthy.
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
        const after = doctor().report;
        expect(after.hosts.flatMap((host) => host.findings.filter((finding) => finding.status === "fail").map((finding) => `${host.name}: ${finding.check}`))).toEqual([]);
        expect(findingOf(after, "laptop", "failover routes")?.detail).toBe("192.168.1.0/24, 192.168.2.0/24 on relay (primary)");
    });
});
