// A roaming client's relay failover (several relays): wg-relay-failover.service runs wg-failover
// (components/host-scripts/wg-failover.sh) every few seconds, which moves the client's LAN routes to the first relay
// in its order of preference that answers.
import { publicKeysPath, wgFailoverScriptPath, wgQuickUnit, wireguardInterface, wireguardTemplatePath } from "../host/paths";
import { everyIntervalExecStart, renderServiceUnit } from "../host/systemd";

export interface FailoverRelay {
    name: string;
    /** The relay's tunnel subnet, its address there, and the client's. */
    tunnelSubnet: string;
    relayAddress: string;
    ownAddress: string;
}

export interface FailoverSettings {
    /** The client's LAN routes. */
    routes: string[];
    /** In the client's order of preference: its primary first. */
    relays: FailoverRelay[];
    intervalSeconds: number;
}

/** Where the unit keeps each relay's up/down count (its RuntimeDirectory): a restart starts from "every relay up". */
const stateDir = "/run/wg-relay-failover";

/**
 * The wg0 template's line that tells wg-failover what to move (wg-quick ignores comments). Reading it from the
 * template wg-apply installed, not from the unit's arguments, keeps the two in step: while a `pulumi up` changes the
 * routes or removes relays, a still-running unit never puts back what the new conf left out.
 */
export function failoverDirective(settings: Omit<FailoverSettings, "intervalSeconds">): string {
    const relays = settings.relays.map((relay) => [relay.name, relay.tunnelSubnet, relay.relayAddress, relay.ownAddress].join(","));
    return ["wg-relay failover:", settings.routes.join(","), ...relays].join(" ");
}

export function failoverCommand(): string {
    return [wgFailoverScriptPath, stateDir, publicKeysPath, wireguardInterface, wireguardTemplatePath].join(" ");
}

export function renderFailoverUnit(settings: { relayNames: string[]; intervalSeconds: number }): string {
    return renderServiceUnit({
        description: `wg-relay failover: the LAN routes go through the first relay that answers (${settings.relayNames.join(", then ")}), checked every ${settings.intervalSeconds} s`,
        order: [`After=${wgQuickUnit}`],
        service: [
            everyIntervalExecStart(failoverCommand(), settings.intervalSeconds),
            `RuntimeDirectory=${stateDir.replace("/run/", "")}`,
        ],
        // Routes and WireGuard peers (netlink, the UAPI socket), and ping.
        rootCapabilities: ["CAP_NET_ADMIN", "CAP_NET_RAW"],
    });
}
