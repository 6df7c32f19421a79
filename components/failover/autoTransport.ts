// A client's `transport: auto` (one relay): wg-relay-transport.service runs wg-transport
// (components/host-scripts/wg-transport.sh) every few seconds, which moves the relay's endpoint to the local wstunnel
// client when plain UDP stops answering, and back when it answers again.
import { publicKeysPath, wgQuickUnit, wgTransportScriptPath, wireguardInterface, wireguardTemplatePath } from "../host/paths";
import { everyIntervalExecStart, renderServiceUnit } from "../host/systemd";

export interface AutoTransportSettings {
    /** The relay's peer name (its key is in the public-keys file). */
    relayName: string;
    /** WireGuard's two endpoints for the relay: its UDP port, and the local wstunnel client's listener. */
    udpEndpoint: string;
    wstunnelEndpoint: string;
    /** The relay's tunnel address, which wg-transport pings, and the client's, the pings' source. */
    relayAddress: string;
    ownAddress: string;
}

/** Where the unit keeps its counts (its RuntimeDirectory): a restart starts from what the endpoint is. */
const stateDir = "/run/wg-relay-transport";

/**
 * The wg0 template's line that tells wg-transport what to switch between (wg-quick ignores comments), and wg-apply
 * which endpoints to keep as they are live. Read from the installed template, as the failover directive is.
 */
export const autoTransportDirectivePrefix = "wg-relay transport auto:";

export function autoTransportDirective(settings: AutoTransportSettings): string {
    return [autoTransportDirectivePrefix, settings.relayName, settings.udpEndpoint, settings.wstunnelEndpoint, settings.relayAddress, settings.ownAddress].join(" ");
}

export function autoTransportCommand(): string {
    return [wgTransportScriptPath, stateDir, publicKeysPath, wireguardInterface, wireguardTemplatePath].join(" ");
}

export function renderAutoTransportUnit(settings: { relayName: string; intervalSeconds: number }): string {
    return renderServiceUnit({
        description: `wg-relay transport auto: WireGuard to ${settings.relayName} over UDP while it answers there, else through wstunnel, checked every ${settings.intervalSeconds} s`,
        order: [`After=${wgQuickUnit}`],
        service: [
            everyIntervalExecStart(autoTransportCommand(), settings.intervalSeconds),
            `RuntimeDirectory=${stateDir.replace("/run/", "")}`,
        ],
        // WireGuard's peers (the UAPI socket, netlink), and ping.
        rootCapabilities: ["CAP_NET_ADMIN", "CAP_NET_RAW"],
    });
}
