// A gateway's heartbeat towards the relay's tunnel address. The relay cannot dial a gateway behind CG-NAT, so
// when the relay forgets its WireGuard sessions (wg0 restarted, the VPS rebooted) only the gateway can start a new
// handshake, and WireGuard starts one only when data it sends goes unanswered for 15 s: keepalives do not count.
// A small UDP datagram every few seconds is such data, so the tunnel comes back within about 20 s instead of at the
// gateway's next scheduled rekey (up to 2 minutes). When all is well the relay's own keepalive answers it.
import { wgQuickUnit } from "./paths";
import { renderServiceUnit } from "./systemd";

export interface HeartbeatSettings {
    relayTunnelAddress: string;
    intervalSeconds: number;
}

/** The discard port: nothing listens there; the datagram only has to cross the tunnel. */
const discardPort = 9;

export function renderHeartbeatUnit(settings: HeartbeatSettings): string {
    const target = `/dev/udp/${settings.relayTunnelAddress}/${discardPort}`;
    return renderServiceUnit({
        description: `wg-relay heartbeat: a datagram to the relay's tunnel address every ${settings.intervalSeconds} s, so a session the relay forgot is renewed at once`,
        order: [`After=${wgQuickUnit}`],
        service: [`ExecStart=/bin/bash -c 'while :; do echo >${target} 2>/dev/null || true; sleep ${settings.intervalSeconds}; done'`, "CapabilityBoundingSet="],
    });
}
