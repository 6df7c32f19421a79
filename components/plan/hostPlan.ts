// What one host should have, as plain data: built by a pure function from the resolved model (relayPlan for a
// relay, gatewayPlan and clientPlan for its peers), pushed by its component step by step, and handed to
// `npm run doctor` (plan/declaredHosts.ts) to check. No secret and no Pulumi output in it: a key is named by its
// peer, and reaches the host by a step of its own.
import type { WstunnelClientFiles } from "../host/paths";
import type { ForwardingSysctlSettings } from "../host/sysctl";
import type { WgQuickConf } from "../wireguard/render";

export type HostRole = "relay" | "gateway" | "client";

/** A file the component writes as it is (rendered by a pure function of its concern), one step each. */
export interface PlannedFile {
    /** Names its step, and so its resource (`<host>-<step>`): kept from version to version, like the stack's URNs. */
    step: string;
    path: string;
    mode: "0644" | "0755";
    owner: "root";
    content: string;
    /** What runs every time after the file is in place, changed or not (e.g. loading it into the kernel). */
    ensure?: string;
    /** A filter the content passes through on the host before it is compared and written (host/interfaces.ts). */
    hostFilter?: string;
    /** What runs on destroy after the file is removed. */
    afterRemove?: string;
    /** A systemd service unit's file: its step installs it, starts it and keeps it running. */
    unit?: string;
    /**
     * What the step waits for beyond the host's packages: the peer's staged relay settings (failover/stagedSwitch.ts),
     * or wg0 in place (a unit that works through it). A unit's file waits for the plan's files before it as well.
     */
    after?: "staged-settings" | "wireguard";
}

/** A WireGuard peer of the host, named as in the host's public-keys file. */
export interface PlannedPeer {
    name: string;
    /** How the host names it in its template: who it is. */
    description: string;
    allowedIps: string[];
    /** Always on and kept alive (a gateway, or the relay seen from a peer): a stale handshake is a problem. */
    alwaysOn: boolean;
    /** With a preshared key: its root-only file on the host (written by a step of its own). */
    presharedKeyFile?: string;
    /** A smaller MTU for the routes to its AllowedIPs (peers on plain UDP). */
    routeMtu?: number;
}

export interface HostPlan {
    role: HostRole;
    /** Files pushed as they are, each by its step, in this order. */
    files: PlannedFile[];
    /** systemd units its steps start and keep running, sorted: each also named below by what starts it. */
    units: string[];
    /** wg0's unit (wg-quick's): wg-apply starts it, and the template's step stops it on destroy. */
    wireguardUnit: string;
    /** The relay's wstunnel server unit; with the user's own certificate files, the path unit that restarts it on renewal. */
    wstunnelServer?: { unit: string; renewalUnit?: string };
    peers: PlannedPeer[];
    /** wg0's conf (every key named, none written): the template the host turns into wg0.conf. */
    wireguard: WgQuickConf;
    /**
     * The iptables rules the host holds while wg0 is up, as the commands that add them (`%i` for wg0), in the
     * order the doctor checks them.
     */
    firewallRules: string[];
    /** A router's sysctl file (forwarding on); none on a host that does not forward. */
    forwarding?: ForwardingSysctlSettings;
    /** A gateway's or client's wstunnel client per relay, the first relay's first; none on plain UDP. */
    wstunnelClients?: WstunnelClientFiles[];
    /** A client's LAN routes that its failover unit moves between relay peers (its primary's peer declares them). */
    failoverRoutes?: string[];
}

/** What a gateway or client gets that does not depend on where the relays are: its steps are made before that is known. */
export type HostLayout = Pick<HostPlan, "role" | "files" | "units" | "wireguardUnit" | "forwarding" | "wstunnelClients" | "failoverRoutes">;
