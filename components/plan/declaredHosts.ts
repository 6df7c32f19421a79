// What each host should have, as the stack declares it: the `declaredHosts` stack output, which `npm run doctor`
// compares with what it finds on the hosts. No secret in it: public keys, AllowedIPs, units, rules, checksums.
import * as pulumi from "@pulumi/pulumi";
import { WstunnelArchitecture, WstunnelSettings } from "../config";
import { HostPlan, HostRole } from "./hostPlan";
export type { HostRole };
import { fileSha256 } from "../wstunnel/service";

export interface DeclaredPeer {
    name: string;
    publicKey: string;
    allowedIps: string[];
    /** Always on and kept alive (a gateway, or the relay seen from a peer): a stale handshake is a problem. */
    alwaysOn: boolean;
}

/** The wstunnel binary: an uploaded one by its own digest, or a release by its archive's digest per architecture. */
export type DeclaredWstunnel =
    | { kind: "upload"; binarySha256: string }
    | { kind: "download"; version: string; archiveSha256: Partial<Record<WstunnelArchitecture, string>> };

export interface DeclaredHost {
    role: HostRole;
    /** wg0's own public key. */
    publicKey: string;
    /** systemd units that run there. */
    units: string[];
    peers: DeclaredPeer[];
    /**
     * The iptables rules the wg0 template's PostUp lines add, as written there (`%i` for wg0), and on the relay the
     * rules of its own chains, as the commands that would add them.
     */
    firewallRules: string[];
    /** net.ipv4.ip_forward=1 from wg-relay's sysctl file. */
    forwarding: boolean;
    /** Absent on a client that reaches the relay over plain UDP. */
    wstunnel?: DeclaredWstunnel;
    /** A client's LAN routes that its failover unit moves between relay peers (its primary's peer declares them). */
    failoverRoutes?: string[];
}

/** The wstunnel binary as the doctor checks it. */
function declaredWstunnel(wstunnel: WstunnelSettings): DeclaredWstunnel {
    const binary = wstunnel.binary;
    return binary.kind === "upload"
        ? { kind: "upload", binarySha256: fileSha256(binary.localBinary) }
        : { kind: "download", version: wstunnel.version, archiveSha256: binary.sha256 };
}

/** What the doctor needs beside a host's plan: the public keys (outputs of the stack) and the wstunnel binary it runs. */
export interface DeclaredKeys {
    /** wg0's own public key. */
    publicKey: pulumi.Input<string>;
    /** Public keys of the plan's peers, by name. */
    peerPublicKeys: Record<string, pulumi.Input<string>>;
    /** The wstunnel it runs (none on a plain-UDP client). */
    wstunnel?: WstunnelSettings;
}

/** What a host should have, from its plan: the plan's own units, peers, rules, forwarding and failover routes, with the keys filled in. */
export function declaredHostOfPlan(plan: HostPlan, keys: DeclaredKeys): pulumi.Output<DeclaredHost> {
    const keyOf = (name: string) => {
        const key = keys.peerPublicKeys[name];
        if (key === undefined) {
            throw new Error(`the host declares a peer ${name} without a public key`);
        }
        return key;
    };
    const peerKeys = pulumi.all(Object.fromEntries(plan.peers.map((peer) => [peer.name, keyOf(peer.name)])));
    const failoverRoutes = plan.failoverRoutes ?? [];
    return pulumi.all([keys.publicKey, peerKeys]).apply(([publicKey, peerKeyOf]) => ({
        role: plan.role,
        publicKey,
        units: plan.units,
        peers: plan.peers.map((peer) => ({ name: peer.name, publicKey: peerKeyOf[peer.name], allowedIps: peer.allowedIps, alwaysOn: peer.alwaysOn })),
        firewallRules: plan.firewallRules,
        forwarding: plan.forwarding !== undefined,
        ...(keys.wstunnel ? { wstunnel: declaredWstunnel(keys.wstunnel) } : {}),
        ...(failoverRoutes.length > 0 ? { failoverRoutes } : {}),
    }));
}
