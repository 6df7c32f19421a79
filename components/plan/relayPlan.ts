// The relay's plan (plan/hostPlan.ts): from its resolved settings and its peers, everything the relay should have.
// VpsRelay pushes it; the doctor checks it (plan/declaredHosts.ts).
import type { RelaySettings, WstunnelSettings } from "../config";
import { accessChainHooks, accessChainJumps, accessRuleCommands, Family, loadAccessRulesScript, RelayRulesSettings, renderAccessRules } from "../access/rules";
import { defaultRouteInterface, rulesDefaultRouteInterfaceFilter } from "../host/interfaces";
import { access6RulesPath, accessRulesPath, relayPresharedKeyPath, tlsRenewalPathUnit, wgApplyScriptPath, wgQuickUnit, wireguardDir, wireguardKeyPath, wstunnelServerUnit } from "../host/paths";
import { firewallHooks, FirewallRule, WgQuickConf } from "../wireguard/render";
import { HostPlan, PlannedFile, PlannedPeer } from "./hostPlan";

/** A gateway or client as the relay's plan sees it: no key, only whether it has a preshared one. */
export interface RelayPlanPeer {
    name: string;
    role: "gateway" | "client";
    tunnelAddress: string;
    /** Its IPv6 tunnel address, with IPv6 inside the tunnel. */
    tunnelAddress6?: string;
    /** LAN subnets behind a gateway (either family). */
    lanSubnets: string[];
    /**
     * How its WireGuard packets reach the relay; a peer on plain UDP gets tunnel.udpMtu on the relay's routes to it
     * (its LANs too), and so does one on auto, whose packets may cross either path at any time.
     */
    transport?: "wstunnel" | "udp" | "auto";
    /** With a preshared key (written to its own root-only file by a step of its own). */
    presharedKey?: boolean;
}

/** The relay's resolved settings without what may be another resource's output (its address, its SSH connection). */
export type RelayPlanSettings = Omit<RelaySettings, "publicAddress" | "ssh">;

export interface RelayFirewallSettings {
    publicInterface: string;
    wireguardPort: number;
    allowDirectUdp: boolean;
    /** Further public UDP ports redirected to WireGuard's (relay.udpPorts), IPv4 only like the relay's public address. */
    udpPorts: number[];
}

/**
 * Beside the relay's chains (access/rules.ts), which decide what peers may send: the path back to full-tunnel
 * clients, and WireGuard's port closed on the public interface in both families (kernel WireGuard listens on IPv6
 * too, whether or not the tunnel carries IPv6).
 */
export function relayFirewallRules(settings: RelayFirewallSettings): FirewallRule[] {
    const rules: FirewallRule[] = [
        // wg0's MTU (tunnel.mtu) is far above the internet's: new TCP connections to the internet get the MSS of
        // the public interface's path, so they never depend on ICMP "fragmentation needed" reaching the client.
        { table: "mangle", chain: "FORWARD", rule: `-i %i -o ${settings.publicInterface} -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu` },
        { table: "filter", chain: "FORWARD", rule: `-i ${settings.publicInterface} -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT` },
    ];
    if (!settings.allowDirectUdp) {
        // WireGuard listens on every address; only wstunnel, over loopback, may reach it.
        const drop = { table: "filter" as const, chain: "INPUT", insert: true, rule: `-i ${settings.publicInterface} -p udp --dport ${settings.wireguardPort} -j DROP` };
        rules.push(drop, { ...drop, ipv6: true });
    }
    for (const udpPort of settings.udpPorts) {
        // Before routing, on the public interface only: the port stays free for the relay's own programs on other
        // interfaces, and conntrack gives WireGuard's answers the port the client sent to.
        rules.push({ table: "nat", chain: "PREROUTING", rule: `-i ${settings.publicInterface} -p udp --dport ${udpPort} -j REDIRECT --to-ports ${settings.wireguardPort}` });
    }
    return rules;
}

/** The relay's chains, one rules file per family, each loaded live by its own step: a change touches neither wg0 nor its template. */
const ruleFiles: { step: string; path: string; family: Family }[] = [
    { step: "access-rules", path: accessRulesPath, family: "ipv4" },
    { step: "access6-rules", path: access6RulesPath, family: "ipv6" },
];

function relayRuleFile(relay: RelayRulesSettings, file: (typeof ruleFiles)[number]): PlannedFile {
    const content = renderAccessRules(relay, file.family);
    return {
        step: file.step,
        path: file.path,
        mode: "0644",
        owner: "root",
        content,
        // The egress and NAT chains name the public interface: the default route's, found on the host.
        hostFilter: content.includes(defaultRouteInterface) ? rulesDefaultRouteInterfaceFilter : undefined,
        ensure: loadAccessRulesScript(file.path, file.family),
    };
}

function relayPlannedPeer(relay: RelayPlanSettings, peer: RelayPlanPeer): PlannedPeer {
    return {
        name: peer.name,
        description: `${peer.name} (${peer.role})`,
        allowedIps: [`${peer.tunnelAddress}/32`, ...(peer.tunnelAddress6 === undefined ? [] : [`${peer.tunnelAddress6}/128`]), ...peer.lanSubnets],
        // Gateways are always on; clients come and go.
        alwaysOn: peer.role === "gateway",
        presharedKeyFile: peer.presharedKey ? relayPresharedKeyPath(peer.name) : undefined,
        routeMtu: peer.transport === "udp" || peer.transport === "auto" ? relay.tunnel.udpMtu : undefined,
    };
}

/** The relay's wg0 conf: a peer per gateway and client, every key named rather than written (wireguard/render.ts). */
function relayWgQuickConf(relay: RelayPlanSettings, peers: PlannedPeer[], firewall: FirewallRule[]): WgQuickConf {
    const tunnel = relay.tunnel;
    return {
        title: `WireGuard on ${relay.name}, the relay`,
        interface: {
            address: [`${relay.tunnelAddress}/${tunnel.prefixLength}`, ...(tunnel.ipv6 ? [`${relay.tunnelAddress6}/${tunnel.ipv6.prefixLength}`] : [])].join(", "),
            listenPort: relay.wireguardPort,
            mtu: tunnel.mtu,
            privateKey: { file: wireguardKeyPath },
            // The chains' hooks first, so that their jumps are undone after the others.
            hooks: [
                ...ruleFiles.flatMap((file) => accessChainHooks(file.path, file.family)),
                // Peers on plain UDP: their routes get tunnel.udpMtu (the peers' "route MTU" lines), so the relay
                // never sends them WireGuard packets that a real path would fragment. wg-apply does the same after
                // a peer change, which needs no restart; this hook covers every start, boot included.
                { up: `${wgApplyScriptPath} --route-mtus ${wireguardDir}/%i.conf` },
                ...firewallHooks(firewall),
            ],
        },
        peers: peers.map((peer) => ({
            description: peer.description,
            publicKey: { ofPeer: peer.name },
            presharedKey: peer.presharedKeyFile === undefined ? undefined : { file: peer.presharedKeyFile },
            allowedIps: peer.allowedIps,
            routeMtu: peer.routeMtu,
        })),
    };
}

/** Everything the relay should have: its files, units, wg0 with a peer per gateway and client, its rules, forwarding. */
export function relayPlan(relay: RelayPlanSettings, peers: RelayPlanPeer[], wstunnel: Pick<WstunnelSettings, "tls" | "congestionControl">): HostPlan & Required<Pick<HostPlan, "wstunnelServer">> {
    const plannedPeers = peers.map((peer) => relayPlannedPeer(relay, peer));
    const firewall = relayFirewallRules(relay);
    // With the user's own certificate files, a path unit restarts the server when they are renewed.
    const wstunnelServer = { unit: wstunnelServerUnit, ...(wstunnel.tls === undefined ? {} : { renewalUnit: tlsRenewalPathUnit }) };
    return {
        role: "relay",
        files: ruleFiles.map((file) => relayRuleFile(relay, file)),
        units: [wgQuickUnit, wstunnelServer.unit, ...(wstunnelServer.renewalUnit === undefined ? [] : [wstunnelServer.renewalUnit])].sort(),
        wireguardUnit: wgQuickUnit,
        wstunnelServer,
        peers: plannedPeers,
        wireguard: relayWgQuickConf(relay, plannedPeers, firewall),
        // As the doctor checks them: the jumps into the chains, the rules beside them, then the chains' own rules.
        firewallRules: [
            ...[...ruleFiles.flatMap((file) => accessChainJumps(file.family)), ...firewallHooks(firewall)].map((hook) => hook.up),
            ...ruleFiles.flatMap((file) => accessRuleCommands(relay, file.family)),
        ],
        // The relay forwards between its peers and to the internet.
        forwarding: { ipv6UpstreamInterface: relay.tunnel.ipv6 ? relay.publicInterface : undefined, congestionControl: wstunnel.congestionControl },
    };
}
