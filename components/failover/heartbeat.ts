// A gateway's heartbeat towards the relay's tunnel address. The relay cannot dial a gateway behind CG-NAT, so
// when the relay forgets its WireGuard sessions (wg0 restarted, the VPS rebooted) only the gateway can start a new
// handshake, and WireGuard starts one only when data it sends goes unanswered for 15 s: keepalives do not count.
// A small UDP datagram every few seconds is such data, so the tunnel comes back within about 20 s instead of at the
// gateway's next scheduled rekey (up to 2 minutes). When all is well the relay's own keepalive answers it.
import { wgQuickUnit } from "../host/paths";
import { renderServiceUnit } from "../host/systemd";

export interface HeartbeatSettings {
    /** Every relay's tunnel address: each relay's session is renewed on its own. */
    relayTunnelAddresses: string[];
    intervalSeconds: number;
}

/** The discard port: nothing listens there; the datagram only has to cross the tunnel. */
const discardPort = 9;

export function renderHeartbeatUnit(settings: HeartbeatSettings): string {
    const sends = settings.relayTunnelAddresses.map((address) => `echo >/dev/udp/${address}/${discardPort} 2>/dev/null || true; `).join("");
    const relays = settings.relayTunnelAddresses.length === 1 ? "the relay's tunnel address" : "each relay's tunnel address";
    return renderServiceUnit({
        description: `wg-relay heartbeat: a datagram to ${relays} every ${settings.intervalSeconds} s, so a session the relay forgot is renewed at once`,
        order: [`After=${wgQuickUnit}`],
        service: [`ExecStart=/bin/bash -c 'while :; do ${sends}sleep ${settings.intervalSeconds}; done'`, "CapabilityBoundingSet="],
    });
}
