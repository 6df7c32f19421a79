import { parseStackConfig } from "../../components/config";
import { relayPlan } from "../../components/plan/relayPlan";
import { accessRuleCommands, renderAccessRules } from "../../components/render/access";
import { access6RulesPath, accessRulesPath, relayPresharedKeyPath } from "../../components/render/paths";
import { renderWgQuickConf, WgQuickConf } from "../../components/render/wireguard";
import { expectGolden } from "./golden";
import { relayTemplateFirewallRules, validConfig } from "./fixtures";

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
