// A gateway's or wstunnel client's fallback to the relay settings `pulumi up` staged for it:
// wg-relay-staged-switch.service runs staged-switch (components/host-scripts/staged-switch.sh) every few seconds.
// Why: a change on the relay (its key, certificate, CA, address, mutual TLS) stops the tunnel of a peer that does not
// have the matching settings yet, and a peer reached through the relay (`ssh.via: relay`) could then never be
// reached to get them. So the peer's new files are staged before the relay changes, and the peer switches to them
// by itself when the relay stops answering (and back when they never work); `pulumi up` installs them for good after.
import { stagedDir, stagedPreviousDir, stagedSwitchScriptPath, stateDir as stateDirOnDisk, wgQuickUnit, wireguardDir } from "../host/paths";
import { everyIntervalExecStart, renderServiceUnit } from "../host/systemd";

export interface StagedSwitchSettings {
    /** The first relay's tunnel address: what SSH through the relay crosses. */
    relayAddress: string;
    /** The installed files that come from the relays' settings; each is staged under its own name. */
    files: string[];
    /** The wstunnel client units that read them. */
    units: string[];
    /** What applies a new public-keys file (wg-apply). */
    applyCommand: string;
    intervalSeconds: number;
}

/** Where the unit keeps its count of unanswered rounds (its RuntimeDirectory). */
const stateDir = "/run/wg-relay-staged-switch";

/** Where each file is staged: under its own name (the files' names differ). */
export function stagedPath(file: string): string {
    return `${stagedDir}/${file.split("/").pop()}`;
}

/** Its paths and names are wg-relay's own, with no character a shell would read: the unit's script holds them as they are. */
export function stagedSwitchCommand(settings: Omit<StagedSwitchSettings, "intervalSeconds">): string {
    return [stagedSwitchScriptPath, stateDir, stagedDir, stagedPreviousDir, settings.relayAddress, settings.units.join(","), ...settings.files, "--", settings.applyCommand].join(" ");
}

/**
 * The folders a switch writes in: the files' own and wg-apply's wg0.conf, a folder inside a listed one left out. None
 * is optional ("-"): systemd skips an optional folder that does not exist when the unit starts, and the switch could
 * then never write there; the unit starts after the staged files, so /etc/wg-relay exists.
 */
function writablePaths(files: string[]): string[] {
    const folders = [...new Set([...files.map((file) => file.slice(0, file.lastIndexOf("/"))), wireguardDir])].sort();
    return folders.filter((folder) => !folders.some((other) => folder.startsWith(`${other}/`)));
}

export function renderStagedSwitchUnit(settings: StagedSwitchSettings): string {
    return renderServiceUnit({
        description: `wg-relay staged switch: when the relay at ${settings.relayAddress} stops answering, this host takes the relay settings the last pulumi up staged (and goes back if they never work), checked every ${settings.intervalSeconds} s`,
        order: [`After=${wgQuickUnit}`],
        service: [
            everyIntervalExecStart(stagedSwitchCommand(settings), settings.intervalSeconds),
            `RuntimeDirectory=${stateDir.replace("/run/", "")}`,
            // Where it saves the settings it replaces, and wg-apply its applied wg0.conf: made by systemd if missing.
            `StateDirectory=${stateDirOnDisk.replace("/var/lib/", "")}`,
            "StateDirectoryMode=0700",
            // A switch rewrites the staged files' places and wg0.conf; the rest stays read-only.
            `ReadWritePaths=${writablePaths(settings.files).join(" ")}`,
        ],
        // ping, wg-apply (WireGuard peers, routes, firewall rules), files owned by root.
        rootCapabilities: ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE"],
    });
}
