// The WireGuard part every host shares: forwarding, wg-apply, the key files, the public keys of the peers, and the
// template wg-apply turns into wg0.conf and brings into effect.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host, removeFilesScript, systemd, withSteps } from "../host/host";
import { hostScript, sysctlApplyCommand, sysctlRestoreCommand, wgApplyCommand } from "../host/scripts";
import { ForwardingSysctlSettings, renderForwardingSysctl } from "../host/sysctl";
import { renderPublicKeys } from "./render";
import { defaultRouteInterface, sysctlDefaultRouteInterfaceFilter } from "../host/interfaces";
import {
    appliedConfPath,
    publicKeysPath,
    sysctlApplyScriptPath,
    sysctlNotSetPath,
    sysctlPath,
    wgApplyLockPath,
    wgApplyScriptPath,
    wireguardConfPath,
    wireguardKeyPath,
    wireguardTemplatePath,
} from "../host/paths";

export interface WireguardInterfaceArgs {
    /** wg0's unit, from the host's plan: wg-apply starts it, and destroying the template's step stops it. */
    unit: string;
    privateKey: pulumi.Input<string>;
    /** The rendered wg-quick template: no key in it, so a preview shows it whole. */
    template: pulumi.Input<string>;
    /** The peers the template names in `PublicKey = <public key of NAME>`. */
    peerPublicKeys: { name: string; publicKey: pulumi.Input<string> }[];
    /** The preshared key files the template names, with their step names. */
    presharedKeys: { step: string; path: string; key: pulumi.Input<string> }[];
    /** Relay and gateways route between interfaces; roaming clients do not. */
    forwarding: boolean;
    /** With IPv6 inside the tunnel, a router also forwards IPv6, and keeps its own autoconfiguration on this interface. */
    ipv6Upstream?: string;
    /** A router's TCP congestion control (wstunnel.congestionControl), in its sysctl file. */
    congestionControl: ForwardingSysctlSettings["congestionControl"];
    /** Steps the interface waits for: packages, and the wstunnel unit its endpoint depends on. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /** The relay: its own key changes only after these (its peers' staged settings: failover/stagedSwitch.ts). */
    keyAfter?: Promise<pulumi.Resource[]>;
}

/** The public-keys file: one "NAME KEY" line per peer the template names. */
export function publicKeysContent(peerPublicKeys: WireguardInterfaceArgs["peerPublicKeys"]): pulumi.Output<string> {
    return pulumi.all(peerPublicKeys.map((peer) => pulumi.output(peer.publicKey).apply((publicKey) => ({ name: peer.name, publicKey })))).apply(renderPublicKeys);
}

export function deployWireguardInterface(host: Host, args: WireguardInterfaceArgs): command.remote.Command {
    const applyScript = host.writeFile("wg-apply-script", {
        path: wgApplyScriptPath,
        content: hostScript("wg-apply"),
        mode: "0755",
    });
    // A key that changes alone (a rotation) leaves the template as it is: its own step applies it.
    const applyAfterKeyChange = wgApplyCommand({ whenComplete: true });
    const keySteps = [
        host.writeSecretFile("wireguard-key", {
            path: wireguardKeyPath,
            content: args.privateKey,
            onChange: applyAfterKeyChange,
            dependsOn: withSteps([...args.dependsOn, applyScript], args.keyAfter),
        }),
        ...args.presharedKeys.map((presharedKey) =>
            host.writeSecretFile(presharedKey.step, {
                path: presharedKey.path,
                content: presharedKey.key,
                onChange: applyAfterKeyChange,
                dependsOn: [...args.dependsOn, applyScript],
            }),
        ),
        host.writeFile("public-keys", {
            path: publicKeysPath,
            content: publicKeysContent(args.peerPublicKeys),
            mode: "0644",
            onChange: applyAfterKeyChange,
            dependsOn: [...args.dependsOn, applyScript],
        }),
    ];
    const sysctlApplyScript = args.forwarding
        ? host.writeFile("sysctl-apply-script", { path: sysctlApplyScriptPath, content: hostScript("sysctl-apply"), mode: "0755" })
        : undefined;
    const sysctl = sysctlApplyScript
        ? [
              host.writeFile("sysctl", {
                  path: sysctlPath,
                  content: renderForwardingSysctl({ ipv6UpstreamInterface: args.ipv6Upstream, congestionControl: args.congestionControl }),
                  mode: "0644",
                  // The file is read at boot too: the default route's interface is written into it on the host.
                  hostFilter: args.ipv6Upstream === defaultRouteInterface ? sysctlDefaultRouteInterfaceFilter : undefined,
                  // Applied every time (wstunnel reconnects only when the congestion control changed).
                  ensure: sysctlApplyCommand,
                  // With the file gone, the host's own values back: forwarding off again where it was off.
                  afterRemove: [sysctlRestoreCommand, removeFilesScript([sysctlNotSetPath])].join("\n"),
                  dependsOn: [...args.dependsOn, sysctlApplyScript],
              }),
          ]
        : [];
    return host.writeFile("wireguard-template", {
        path: wireguardTemplatePath,
        content: args.template,
        mode: "0644",
        // wg-apply starts, restarts or syncs as needed, and does nothing disruptive when nothing changed.
        ensure: wgApplyCommand({ whenComplete: false }),
        beforeRemove: systemd.disableStop(args.unit),
        afterRemove: removeFilesScript([wireguardConfPath, appliedConfPath, wgApplyLockPath]),
        dependsOn: [...args.dependsOn, applyScript, ...keySteps, ...sysctl],
    });
}
