// End to end: a gateway with `transport: udp` sends WireGuard straight to the relay's UDP port through its CG-NAT,
// which passes outbound UDP (lab/hosts.sh: it masquerades whatever leaves and drops only what comes in unasked).
// rpi1 on udp: its wg0 dials 198.51.100.10:51820 at tunnel.udpMtu, no wstunnel client runs on it, the relay sees
// its session arrive from the CG-NAT's address, the laptop (through wss:443 behind the hotel) gets the LAN host's
// page, and the doctor passes. Switched back to wstunnel, the same checks with the local wstunnel listener.
// Needs root; run with `bash lab/run-tests.sh test/e2e/gateway-udp.test.ts --selectProjects e2e`.
import type { LabChanges } from "../../lab/stack-config";
import { doctor, doctorFailures, ensureStack, onHost, onHostOk, relayAddress, secondsUntil, secondsUntilLanReachable, wstunnelUnits } from "./lab";

const relayOpen: LabChanges = { relayDirectUdp: { udpPorts: [] } };
const rpi1OnUdp: LabChanges = { ...relayOpen, rpi1Transport: "udp" };
/** The CG-NAT's public address (lab/hosts.sh): what the relay sees rpi1's UDP come from. */
const cgnatAddress = "100.64.0.2";

const rpi1Endpoints = () => onHostOk("rpi1", "wg show wg0 endpoints").trim();
/** The endpoint the relay has for the peer that carries the home LAN. */
const relaySeesRpi1At = () => {
    const peer = onHostOk("relay", "wg show wg0 allowed-ips").split("\n").find((line) => line.includes("192.168.1.0/24"))?.split("\t")[0];
    return onHostOk("relay", "wg show wg0 endpoints").split("\n").find((line) => peer !== undefined && line.startsWith(peer))?.split("\t")[1] ?? "none";
};
const rpi1UnitState = () => onHost("rpi1", `systemctl is-active ${wstunnelUnits.rpi1}`).stdout.trim();

jest.setTimeout(15 * 60_000);

describe("gateways[].transport udp: the Pi straight to the relay's UDP port", () => {
    it("converges on udp through the CG-NAT with no wstunnel on the Pi, and back on wstunnel; the laptop reaches the LAN both ways", async () => {
        ensureStack(rpi1OnUdp);
        expect(rpi1Endpoints()).toMatch(new RegExp(`\\t${relayAddress.replace(/\./g, "\\.")}:51820$`));
        expect(onHostOk("rpi1", "cat /sys/class/net/wg0/mtu").trim()).toBe("1420");
        expect(rpi1UnitState()).not.toBe("active");
        expect(onHost("rpi1", `test -e /etc/systemd/system/${wstunnelUnits.rpi1}.service`).status).not.toBe(0);
        console.log(`udp: the LAN answers the laptop after ${await secondsUntilLanReachable(60)} s`);
        // The session really is plain UDP through the CG-NAT, not wstunnel's loopback socket on the relay.
        await secondsUntil("the relay's session with rpi1 from the CG-NAT", 30, () => relaySeesRpi1At().startsWith(`${cgnatAddress}:`));
        expect(doctorFailures(doctor().report)).toEqual([]);

        ensureStack(relayOpen);
        expect(rpi1Endpoints()).toMatch(/\t127\.0\.0\.1:51820$/);
        expect(onHostOk("rpi1", "cat /sys/class/net/wg0/mtu").trim()).toBe("65000");
        expect(rpi1UnitState()).toBe("active");
        console.log(`wstunnel: the LAN answers the laptop after ${await secondsUntilLanReachable(60)} s`);
        await secondsUntil("the relay's session with rpi1 through wstunnel", 30, () => relaySeesRpi1At().startsWith("127.0.0.1:"));
        expect(doctorFailures(doctor().report)).toEqual([]);
    });
});
