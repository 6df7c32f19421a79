// End to end, on the lab's real hosts: a Pi reached only through the relay (`ssh.via: relay`, the usual way to a Pi
// behind CG-NAT) stays reachable while the relay changes what the Pi needs to reach it. One `pulumi up` rotates the
// relay's WireGuard key, switches on mutual TLS and moves the relay's public address; another switches mutual TLS
// off. Both must complete (every rpi1 step reaches rpi1 through the tunnel), the laptop must reach the LAN after
// each, and the next preview must have no changes. Needs root; `npm run test:all`.
import { LabChanges } from "../../lab/stack-config";
import { ensureStack, inNamespace, inNamespaceOk, lab, onHost, onHostOk, secondsUntilLanReachable, up, writeStack } from "./lab";

const rpi1LanAddress = "192.168.1.130";
const newRelayAddress = "198.51.100.11";

/** The operator's own way to rpi1, over the home LAN: cut for the test, so the tunnel is the only way in. */
const operatorToRpi1 = ["OUTPUT", "-d", `${rpi1LanAddress}/32`, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"];

function cutOperatorPath(): void {
    inNamespaceOk("op", ["iptables", "-I", ...operatorToRpi1]);
}

function restoreOperatorPath(): void {
    while (inNamespace("op", ["iptables", "-C", ...operatorToRpi1]).status === 0) {
        inNamespaceOk("op", ["iptables", "-D", ...operatorToRpi1]);
    }
}

// Each `pulumi up` through the relay waits for rpi1's switch (about 20 s) on a machine shared with other labs.
jest.setTimeout(20 * 60 * 1000);

describe("lock-out: changes on the relay that a Pi reached through the relay must follow", () => {
    it("1. one pulumi up rotates the relay's key, switches on mutual TLS and moves its address; another switches mutual TLS off", async () => {
        const viaRelay: LabChanges = { rpi1ViaRelay: true };
        ensureStack({});
        inNamespaceOk("relay", ["ip", "addr", "add", `${newRelayAddress}/24`, "dev", "eth0"]);
        try {
            // rpi1's steps now run through the tunnel they set up.
            ensureStack(viaRelay);
            cutOperatorPath();
            expect(onHost("rpi1", "true").status).not.toBe(0);
            const oldRelayKey = onHostOk("relay", "wg show wg0 public-key").trim();

            const changed: LabChanges = { ...viaRelay, relayKeyRotation: 1, mutualTls: true, relayPublicAddress: newRelayAddress };
            writeStack(changed);
            let start = Date.now();
            up();
            console.log(`lock-out: key + mutual TLS + address through the relay: pulumi up took ${((Date.now() - start) / 1000).toFixed(1)} s`);
            expect(await secondsUntilLanReachable(60)).toBeLessThan(60);
            expect(onHostOk("relay", "wg show wg0 public-key").trim()).not.toBe(oldRelayKey);
            expect(onHostOk("relay", "systemctl cat wg-relay-wstunnel-server")).toContain("--tls-client-ca-certs");
            // rpi1's wstunnel dials the new address (its side of the connection, seen in its namespace).
            expect(inNamespaceOk("rpi1", ["ss", "-tnH", "state", "established", "dst", `${newRelayAddress}:443`])).toContain(`${newRelayAddress}:443`);
            lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);

            writeStack({ ...changed, mutualTls: false });
            start = Date.now();
            up();
            console.log(`lock-out: mutual TLS off through the relay: pulumi up took ${((Date.now() - start) / 1000).toFixed(1)} s`);
            expect(await secondsUntilLanReachable(60)).toBeLessThan(60);
            expect(onHostOk("relay", "systemctl cat wg-relay-wstunnel-server")).not.toContain("--tls-client-ca-certs");
            lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
            // The whole time, the operator had no other way in.
            expect(onHost("rpi1", "true").status).not.toBe(0);
        } finally {
            restoreOperatorPath();
            // Back to the lab's own stack (rpi1 reached directly) before the address goes.
            ensureStack({});
            inNamespaceOk("relay", ["ip", "addr", "del", `${newRelayAddress}/24`, "dev", "eth0"]);
        }
    });
});
