import { parseStackConfig } from "../../components/config";
import { basename } from "node:path";
import { HostPlan } from "../../components/plan/hostPlan";
import { clientPlan } from "../../components/plan/clientPlan";
import { gatewayLayout, gatewayPlan } from "../../components/plan/gatewayPlan";
import { relayPlan } from "../../components/plan/relayPlan";
import { hostScript } from "../../components/host/scripts";
import { relayAddress } from "../../components/vpsRelay";
import { accessRuleCommands, renderAccessRules } from "../../components/access/rules";
import {
    access6RulesPath,
    accessRulesPath,
    failoverUnit,
    heartbeatUnit,
    relayPresharedKeyPath,
    stagedSwitchScriptPath,
    stagedSwitchUnit,
    systemdUnitPath,
    wireguardTemplatePath,
    wstunnelClientFiles,
} from "../../components/host/paths";
import { renderWgQuickConf, WgQuickConf } from "../../components/wireguard/render";
import { expectGolden } from "./golden";
import { relayTemplateFirewallRules, testHostKey, validConfig } from "./fixtures";

const network = parseStackConfig(validConfig() as Record<string, unknown>);
const [relay] = network.relays;
const [rpi1] = network.gateways;
const [laptop] = network.clients;
const peers = [
    { ...rpi1, role: "gateway" as const, presharedKey: true },
    { ...laptop, role: "client" as const, lanSubnets: [], transport: "udp" as const },
];

/** A conf's peers by the name its public key is looked up by, with their AllowedIPs. */
function confPeers(conf: WgQuickConf): { name: string; allowedIps: string[] }[] {
    return conf.peers.map((peer) => ({ name: "ofPeer" in peer.publicKey ? peer.publicKey.ofPeer : "(inline)", allowedIps: peer.allowedIps }));
}

/** The iptables and ip6tables commands a conf's hooks run when wg0 comes up. */
function confFirewallRules(conf: WgQuickConf): string[] {
    return conf.interface.hooks.map((hook) => hook.up).filter((up) => /^ip6?tables /.test(up));
}

describe("the relay's plan", () => {
    const plan = relayPlan(relay, peers, network.wstunnel);

    it("is plain data: the same after a JSON round trip (no Pulumi output, no function), and names no key", () => {
        expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
        expect(JSON.stringify(plan)).not.toMatch(/[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=/);
    });

    it("has the access rules files, one step per family, each root's, loaded live, with the content the renderer gives", () => {
        expect(plan.files.map(({ step, path, mode, owner }) => ({ step, path, mode, owner }))).toEqual([
            { step: "access-rules", path: accessRulesPath, mode: "0644", owner: "root" },
            { step: "access6-rules", path: access6RulesPath, mode: "0644", owner: "root" },
        ]);
        expect(plan.files[0].content).toBe(renderAccessRules(relay, "ipv4"));
        expect(plan.files[1].content).toBe(renderAccessRules(relay, "ipv6"));
        for (const file of plan.files) {
            expect(file.ensure).toContain(file.path);
        }
        // With grants, each file under its target path, as render.test.ts renders them.
        const withAccess = parseStackConfig({
            ...validConfig(),
            clients: [
                { name: "laptop", tunnelAddress: "10.10.0.3" },
                { name: "phone", tunnelAddress: "10.10.0.4", access: [{ to: "192.168.1.20", protocol: "tcp", ports: [80, "8000-8080"] }, { to: "rpi1", protocol: "icmp" }, { to: "laptop" }] },
                { name: "tablet", tunnelAddress: "10.10.0.5", access: [] },
            ],
        } as Record<string, unknown>);
        for (const file of relayPlan(withAccess.relays[0], [], withAccess.wstunnel).files) {
            expectGolden(`relay${file.path}`, file.content);
        }
        // A full-tunnel client's egress and NAT rules name the public interface, the default route's, filled in on
        // the host; IPv6's file has no such rule.
        const fullTunnel = parseStackConfig({ ...validConfig(), clients: [{ name: "phone", tunnelAddress: "10.10.0.4", fullTunnel: true }] } as Record<string, unknown>);
        const files = relayPlan(fullTunnel.relays[0], [], fullTunnel.wstunnel).files;
        expect(files[0].content).toContain("-o %default-route-dev");
        expect(files.map((file) => file.hostFilter !== undefined)).toEqual([true, false]);
        expect(plan.files.map((file) => file.hostFilter)).toEqual([undefined, undefined]);
    });

    it("names its units, with the renewal path unit only for the user's own certificate files", () => {
        expect(plan.units).toEqual(["wg-quick@wg0.service", "wg-relay-wstunnel-server.service"]);
        const ownCertificate = relayPlan(relay, peers, { ...network.wstunnel, tls: { certificateFile: "/c.pem", privateKeyFile: "/k.pem" } });
        expect(ownCertificate.units).toEqual(["wg-quick@wg0.service", "wg-relay-tls-renewal.path", "wg-relay-wstunnel-server.service"]);
    });

    it("has a peer per gateway and client: its AllowedIPs, always on for a gateway, its preshared key by file, UDP's route MTU", () => {
        expect(plan.peers).toEqual([
            { name: "rpi1", description: "rpi1 (gateway)", allowedIps: ["10.10.0.2/32", "192.168.1.0/24"], alwaysOn: true, presharedKeyFile: relayPresharedKeyPath("rpi1"), routeMtu: undefined },
            { name: "laptop", description: "laptop (client)", allowedIps: ["10.10.0.3/32"], alwaysOn: false, presharedKeyFile: undefined, routeMtu: relay.tunnel.udpMtu },
        ]);
        // wg0's template has the same peers, by the same names.
        expect(confPeers(plan.wireguard)).toEqual(plan.peers.map(({ name, allowedIps }) => ({ name, allowedIps })));
        expect(renderWgQuickConf(plan.wireguard)).toContain(`PresharedKey = <from ${relayPresharedKeyPath("rpi1")}>`);
    });

    it("declares the firewall rules wg0's hooks add, then its chains' rules in both families", () => {
        expect(plan.firewallRules).toEqual([...relayTemplateFirewallRules, ...accessRuleCommands(relay, "ipv4"), ...accessRuleCommands(relay, "ipv6")]);
        // Exactly the template's iptables hooks: what wg-apply puts back is what the doctor checks.
        expect(plan.firewallRules.slice(0, relayTemplateFirewallRules.length)).toEqual(confFirewallRules(plan.wireguard));
    });

    it("forwards, with IPv6 and its upstream interface only with IPv6 inside the tunnel", () => {
        expect(plan.forwarding).toEqual({ ipv6UpstreamInterface: undefined, congestionControl: network.wstunnel.congestionControl });
        const ipv6 = parseStackConfig({ ...validConfig(), tunnel: { ipv6: { enabled: true, prefix: "fd12:3456:789a::/64" } } } as Record<string, unknown>);
        expect(relayPlan(ipv6.relays[0], [], ipv6.wstunnel).forwarding?.ipv6UpstreamInterface).toBe(ipv6.relays[0].publicInterface);
    });
});

/** The relay as its peers' plans see it, its address known. */
const relayView = { peerName: "relay", tunnelAddress: "10.10.0.1", tunnelSubnet: "10.10.0.0/24", wstunnelLocalPort: 51820, peers: relay.peers, address: relayAddress(relay) };
const peerSettings = { tunnel: network.tunnel, wstunnel: network.wstunnel, stackCa: true, presharedKey: false };

/** Every file of a peer's plan under its host kind and target path; host-scripts/ files as they are. */
function expectPlanGolden(kind: string, plan: HostPlan): void {
    for (const file of plan.files) {
        if (file.mode === "0755") {
            expect(file.content).toBe(hostScript(basename(file.path) as Parameters<typeof hostScript>[0]));
        } else {
            expectGolden(`${kind}${file.path}`, file.content);
        }
    }
    expectGolden(`${kind}${wireguardTemplatePath}`, renderWgQuickConf(plan.wireguard));
}

describe("a LAN gateway's plan", () => {
    const plan = gatewayPlan(rpi1, { ...peerSettings, presharedKey: true }, [relayView]);

    it("is plain data, names no key, and its layout (made before the relays' addresses are known) is the plan's", () => {
        expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
        expect(JSON.stringify(plan)).not.toMatch(/[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=/);
        const { tunnelAddress, tunnelSubnet, wstunnelLocalPort, peerName, peers } = relayView;
        expect(plan).toMatchObject(gatewayLayout(rpi1, { ...peerSettings, presharedKey: true }, [{ peerName, tunnelAddress, tunnelSubnet, wstunnelLocalPort, peers }]));
    });

    it("through wstunnel: the staged switch and the heartbeat as files, a wstunnel client, each unit once, under their target paths", () => {
        expect(plan.files.map(({ step, path, unit, after }) => ({ step, path, unit, after }))).toEqual([
            { step: "staged-switch-script", path: stagedSwitchScriptPath, unit: undefined, after: "staged-settings" },
            { step: "staged-switch-unit", path: systemdUnitPath(stagedSwitchUnit), unit: stagedSwitchUnit, after: "staged-settings" },
            { step: "heartbeat-unit", path: systemdUnitPath(heartbeatUnit), unit: heartbeatUnit, after: "wireguard" },
        ]);
        expect(plan.wstunnelClients).toEqual([wstunnelClientFiles({ name: "relay", index: 0 })]);
        expect(plan.units).toEqual(["wg-quick@wg0.service", "wg-relay-heartbeat.service", "wg-relay-staged-switch.service", "wg-relay-wstunnel-client.service"]);
        // The same template as the renderer's own golden file (render.test.ts).
        expectPlanGolden("gateway", plan);
    });

    it("has the relay as an always-on peer, its preshared key by file, and the rules wg0's hooks add; it forwards", () => {
        expect(plan.peers).toEqual([{ name: "relay", description: "the relay", allowedIps: ["10.10.0.0/24"], alwaysOn: true, presharedKeyFile: "/etc/wireguard/wg0.psk" }]);
        expect(confPeers(plan.wireguard)).toEqual(plan.peers.map(({ name, allowedIps }) => ({ name, allowedIps })));
        expect(plan.firewallRules).toEqual(confFirewallRules(plan.wireguard));
        expect(plan.firewallRules).toEqual([
            "iptables -A FORWARD -i %i -o %default-route-dev -d 192.168.1.0/24 -j ACCEPT -m comment --comment wg-relay",
            "iptables -A FORWARD -i %default-route-dev -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment --comment wg-relay",
            "iptables -I INPUT -i %default-route-dev -d 10.10.0.2/32 -j DROP -m comment --comment wg-relay",
            "iptables -t nat -A POSTROUTING -s 10.10.0.0/24 -o %default-route-dev -j MASQUERADE -m comment --comment wg-relay",
        ]);
        expect(plan.forwarding).toEqual({ ipv6UpstreamInterface: undefined, congestionControl: network.wstunnel.congestionControl });
        expect(plan.failoverRoutes).toBeUndefined();
    });

    it("on plain UDP: no wstunnel client, no staged switch; on auto, the transport unit after wg0 as well", () => {
        const udp = gatewayPlan({ ...rpi1, transport: "udp" }, peerSettings, [relayView]);
        expect(udp.units).toEqual(["wg-quick@wg0.service", "wg-relay-heartbeat.service"]);
        expect(udp.wstunnelClients).toEqual([]);
        expectPlanGolden("gateway-udp", udp);
        const auto = gatewayPlan({ ...rpi1, transport: "auto" }, peerSettings, [relayView]);
        expect(auto.files.map(({ step }) => step)).toEqual(["staged-switch-script", "staged-switch-unit", "wg-transport-script", "transport-unit", "heartbeat-unit"]);
        expect(auto.units).toEqual(["wg-quick@wg0.service", "wg-relay-heartbeat.service", "wg-relay-staged-switch.service", "wg-relay-transport.service", "wg-relay-wstunnel-client.service"]);
        expectPlanGolden("gateway-auto", auto);
    });
});

describe("a provisioned roaming client's plan", () => {
    const sites = parseStackConfig({
        ...validConfig(),
        relay: undefined,
        relays: [validConfig().relay, { name: "relay2", ssh: { host: "198.51.100.20", hostKey: testHostKey }, tunnelSubnet: "10.10.1.0/24" }],
        clients: [{ name: "laptop", tunnelAddress: "10.10.0.3", routes: ["192.168.1.0/24"] }],
    } as Record<string, unknown>);
    const views = sites.relays.map((each, index) => ({
        peerName: each.name,
        tunnelAddress: each.tunnelAddress,
        tunnelSubnet: each.tunnel.subnet,
        wstunnelLocalPort: 51820 + index,
        peers: each.peers,
        address: relayAddress(each),
    }));
    const settings = { ...peerSettings, tunnel: sites.tunnel };
    const plan = clientPlan(sites.clients[0], settings, views);

    it("with two relays and LAN routes: a wstunnel client per relay, the staged switch, the failover unit after wg0, its routes to move", () => {
        expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
        expect(plan.files.map(({ step, unit }) => ({ step, unit }))).toEqual([
            { step: "staged-switch-script", unit: undefined },
            { step: "staged-switch-unit", unit: stagedSwitchUnit },
            { step: "wg-failover-script", unit: undefined },
            { step: "failover-unit", unit: failoverUnit },
        ]);
        expect(plan.units).toEqual([
            "wg-quick@wg0.service", "wg-relay-failover.service", "wg-relay-staged-switch.service", "wg-relay-wstunnel-client-relay2.service", "wg-relay-wstunnel-client.service",
        ]);
        expect(plan.failoverRoutes).toEqual(["192.168.1.0/24"]);
        expect(renderWgQuickConf(plan.wireguard)).toContain("# wg-relay failover: 192.168.1.0/24 relay,10.10.0.0/24,10.10.0.1,10.10.0.3 relay2,10.10.1.0/24,10.10.1.1,10.10.1.3\n");
        expectPlanGolden("client-failover", plan);
    });

    it("has every relay as an always-on peer, its routes on its primary's; no rule, no forwarding", () => {
        expect(plan.peers).toEqual([
            { name: "relay", description: "the relay relay", allowedIps: ["10.10.0.0/24", "192.168.1.0/24"], alwaysOn: true, presharedKeyFile: undefined },
            { name: "relay2", description: "the relay relay2", allowedIps: ["10.10.1.0/24"], alwaysOn: true, presharedKeyFile: undefined },
        ]);
        expect(confPeers(plan.wireguard)).toEqual(plan.peers.map(({ name, allowedIps }) => ({ name, allowedIps })));
        expect(plan.firewallRules).toEqual([]);
        expect(confFirewallRules(plan.wireguard)).toEqual([]);
        expect(plan.forwarding).toBeUndefined();
    });

    it("on one relay: no failover; on plain UDP no wstunnel; on auto the transport unit", () => {
        const [laptop] = network.clients;
        const wstunnel = clientPlan(laptop, peerSettings, [relayView]);
        expect(wstunnel.units).toEqual(["wg-quick@wg0.service", "wg-relay-staged-switch.service", "wg-relay-wstunnel-client.service"]);
        expect(wstunnel.failoverRoutes).toBeUndefined();
        expectPlanGolden("client", wstunnel);
        const udp = clientPlan({ ...laptop, transport: "udp" }, peerSettings, [relayView]);
        expect(udp.units).toEqual(["wg-quick@wg0.service"]);
        expect(udp.files).toEqual([]);
        expectPlanGolden("client-udp", udp);
        const auto = clientPlan({ ...laptop, transport: "auto" }, peerSettings, [relayView]);
        expect(auto.units).toEqual(["wg-quick@wg0.service", "wg-relay-staged-switch.service", "wg-relay-transport.service", "wg-relay-wstunnel-client.service"]);
        expectPlanGolden("client-auto", auto);
    });
});
