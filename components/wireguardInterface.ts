// The WireGuard part every host shares: tools, forwarding, the key file, wg0.conf and its live application.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host, removeFilesScript, systemd } from "./host";
import { renderWgApplyScript } from "./render/scripts";
import { renderForwardingSysctl } from "./render/sysctl";
import {
    stateDir,
    sysctlPath,
    wgApplyScriptPath,
    wgQuickUnit,
    wireguardConfPath,
    wireguardInterface,
    wireguardKeyPath,
} from "./render/paths";

export interface WireguardInterfaceArgs {
    privateKey: pulumi.Input<string>;
    /** The rendered wg0.conf (holds no secret). */
    conf: pulumi.Input<string>;
    /** Relay and gateways route between interfaces; roaming clients do not. */
    forwarding: boolean;
    /** Steps the interface waits for: packages, and the wstunnel unit its endpoint depends on. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * A preshared key in its root-only file. A new one takes effect at once on a running interface; wg0.conf only
 * names the file, so it does not change with the key.
 */
export function deployPresharedKey(
    host: Host,
    step: string,
    args: { path: string; content: pulumi.Input<string>; peerPublicKey: pulumi.Input<string>; dependsOn: pulumi.Input<pulumi.Resource>[] },
): command.remote.Command {
    return host.writeSecretFile(step, {
        path: args.path,
        content: args.content,
        onChange: pulumi
            .output(args.peerPublicKey)
            .apply(
                (peer) =>
                    `if systemctl is-active --quiet ${wgQuickUnit}; then wg set ${wireguardInterface} peer ${peer} preshared-key ${args.path}; fi`,
            ),
        dependsOn: args.dependsOn,
    });
}

export function deployWireguardInterface(host: Host, args: WireguardInterfaceArgs): command.remote.Command {
    const before: pulumi.Input<pulumi.Resource>[] = [...args.dependsOn];
    if (args.forwarding) {
        before.push(
            host.writeFile("sysctl", {
                path: sysctlPath,
                content: renderForwardingSysctl(),
                mode: "0644",
                ensure: `sysctl -q -p ${sysctlPath}`,
                dependsOn: args.dependsOn,
            }),
        );
    }
    const applyScript = host.writeFile("wg-apply-script", {
        path: wgApplyScriptPath,
        content: renderWgApplyScript(),
        mode: "0755",
    });
    before.push(
        applyScript,
        host.writeSecretFile("wireguard-key", {
            path: wireguardKeyPath,
            content: args.privateKey,
            // A rotated key takes effect at once on a running interface.
            onChange: `${wgApplyScriptPath} ${wireguardInterface} --key-changed`,
            dependsOn: [...args.dependsOn, applyScript],
        }),
    );
    return host.writeFile("wireguard-conf", {
        path: wireguardConfPath,
        content: args.conf,
        mode: "0600",
        // wg-apply starts, restarts or syncs as needed, and does nothing disruptive when nothing changed.
        ensure: `${wgApplyScriptPath} ${wireguardInterface}`,
        beforeRemove: systemd.disableStop(wgQuickUnit),
        afterRemove: removeFilesScript([`${stateDir}/${wireguardInterface}.applied.conf`]),
        dependsOn: before,
    });
}
