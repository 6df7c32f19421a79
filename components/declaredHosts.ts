// What each host should have, as the stack declares it: the `declaredHosts` stack output, which `npm run doctor`
// compares with what it finds on the hosts. No secret in it: public keys, AllowedIPs, units, rules, checksums.
import * as pulumi from "@pulumi/pulumi";
import { WstunnelArchitecture, WstunnelSettings } from "./config";
import { Host } from "./host";
import { confDeclaration, WgQuickConf } from "./render/wireguard";
import { fileSha256 } from "./wstunnelService";

export type HostRole = "relay" | "gateway" | "client";

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

export interface DeclaredHostArgs {
    role: HostRole;
    /** The host whose steps were all made: each step that starts a unit recorded it there. */
    host: Host;
    /** The wg0 conf its template is rendered from. */
    conf: pulumi.Input<WgQuickConf>;
    publicKey: pulumi.Input<string>;
    /** Public keys of the peers the conf names. */
    peerPublicKeys: Record<string, pulumi.Input<string>>;
    alwaysOnPeers: string[];
    forwarding: boolean;
    /** The wstunnel it runs (none on a plain-UDP client). */
    wstunnel?: WstunnelSettings;
    /** A client's LAN routes that its failover unit moves between relays. */
    failoverRoutes?: string[];
    /** The relay's chains (render/access.ts), as `iptables [-t TABLE] -A CHAIN ...` commands. */
    chainRules?: string[];
}

/** What a host should have, from what its component built for it; call it once the component made every step. */
export function declareHost(args: DeclaredHostArgs): pulumi.Output<DeclaredHost> {
    return pulumi.output(args.conf).apply((conf) => declareHostWithConf(args, conf as WgQuickConf));
}

function declareHostWithConf(args: DeclaredHostArgs, conf: WgQuickConf): pulumi.Output<DeclaredHost> {
    const { peers, firewallRules } = confDeclaration(conf);
    const keyOf = (name: string) => {
        const key = args.peerPublicKeys[name];
        if (key === undefined) {
            throw new Error(`the conf names a peer ${name} without a public key`);
        }
        return key;
    };
    const keys = pulumi.all(Object.fromEntries(peers.map((peer) => [peer.name, keyOf(peer.name)])));
    const units = args.host.units;
    const failoverRoutes = args.failoverRoutes ?? [];
    return pulumi.all([args.publicKey, keys]).apply(([publicKey, peerKeys]) => ({
        role: args.role,
        publicKey,
        units,
        peers: peers.map((peer) => ({ ...peer, publicKey: peerKeys[peer.name], alwaysOn: args.alwaysOnPeers.includes(peer.name) })),
        firewallRules: [...firewallRules, ...(args.chainRules ?? [])],
        forwarding: args.forwarding,
        ...(args.wstunnel ? { wstunnel: declaredWstunnel(args.wstunnel) } : {}),
        ...(failoverRoutes.length > 0 ? { failoverRoutes } : {}),
    }));
}
