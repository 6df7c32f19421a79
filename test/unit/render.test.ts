import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStackConfig, relayPeer } from "../../components/config";
import { ipv4AllBut } from "../../components/net";
import { renderClientBundle } from "../../components/roamingClient";
import { clientPlan, clientWgQuickConf } from "../../components/plan/clientPlan";
import { gatewayFirewallRules, gatewayWgQuickConf } from "../../components/plan/gatewayPlan";
import { relayAddress } from "../../components/vpsRelay";
import { relayFirewallRules, relayPlan, RelayPlanPeer, RelayPlanSettings } from "../../components/plan/relayPlan";
import { renderForwardingSysctl } from "../../components/host/sysctl";
import { renderHeartbeatUnit } from "../../components/failover/heartbeat";
import { failoverDirective, renderFailoverUnit } from "../../components/failover/failover";
import { autoTransportDirective, renderAutoTransportUnit } from "../../components/failover/autoTransport";
import { renderStagedSwitchUnit, stagedPath } from "../../components/failover/stagedSwitch";
import { firewallHooks, renderPublicKeys, renderWgQuickConf } from "../../components/wireguard/render";
import {
    renderWstunnelClientUnit,
    renderWstunnelClientEnvironment,
    renderWstunnelRestrictions,
    renderWstunnelServerUnit,
    wstunnelClientArgs,
    logRedaction,
    renderClientCertificatePem,
    renderTlsRenewalPathUnit,
    renderTlsRenewalServiceUnit,
    wstunnelServerArgs,
} from "../../components/wstunnel/render";
import { accessChainHooks, accessRuleCommands, loadAccessRulesScript, renderAccessRules } from "../../components/access/rules";
import { hostScriptsDir } from "../../components/host/scripts";
import { testHostKey, validConfig } from "./fixtures";
import { expectGolden } from "./golden";

const network = parseStackConfig({ ...validConfig(), wstunnel: { source: "local", localBinary: "/dev/null" } } as Record<string, unknown>);
const [rpi1] = network.gateways;
const [laptop] = network.clients;
const [relay] = network.relays;
/** The relay as a gateway's template names it. */
const relayForPeers = { peerName: "relay", tunnelAddress: "10.10.0.1", tunnelSubnet: "10.10.0.0/24", wstunnelLocalPort: 51820, peers: relay.peers, address: relayAddress(relay) };
const base64Key = /[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=/;

/** The relay's wg0 conf, as its plan has it, with a preshared key for the peers named. */
function relayWgQuickConf(relaySettings: RelayPlanSettings, peers: RelayPlanPeer[], presharedKeyPeers: Set<string>) {
    return relayPlan(relaySettings, peers.map((peer) => ({ ...peer, presharedKey: presharedKeyPeers.has(peer.name) })), network.wstunnel).wireguard;
}

describe("wg-quick templates: every key named, never written", () => {
    it("renders the relay with a peer per gateway and client, each key by where wg-apply finds it", () => {
        const peers = [
            { ...rpi1, role: "gateway" as const },
            { ...laptop, role: "client" as const, lanSubnets: [] },
        ];
        const template = renderWgQuickConf(relayWgQuickConf(relay, peers, new Set(["rpi1"])));
        expectGolden("relay/etc/wg-relay/wg0.template.conf", template);
        expect(template).not.toMatch(base64Key);
        expect(template).toContain(
            [
                "[Interface]",
                "Address = 10.10.0.1/24",
                "ListenPort = 51820",
                "MTU = 65000",
                "PrivateKey = <from /etc/wireguard/wg0.key>",
            ].join("\n"),
        );
        expect(template).toContain("PostUp = /usr/local/lib/wg-relay/wg-apply --route-mtus /etc/wireguard/%i.conf\n");
        expect(template).not.toContain("route MTU");
        expect(template).toContain(
            [
                "[Peer]",
                "# rpi1 (gateway)",
                "PublicKey = <public key of rpi1>",
                "PresharedKey = <from /etc/wireguard/psk/rpi1.psk>",
                "AllowedIPs = 10.10.0.2/32, 192.168.1.0/24",
                "",
                "[Peer]",
                "# laptop (client)",
                "PublicKey = <public key of laptop>",
                "AllowedIPs = 10.10.0.3/32",
            ].join("\n"),
        );
    });

    it("routes a client on plain UDP at tunnel.udpMtu from the relay, and gives it that MTU; wstunnel peers keep wg0's", () => {
        const peers = [
            { ...rpi1, role: "gateway" as const, transport: "wstunnel" as const },
            { ...laptop, name: "phone", tunnelAddress: "10.10.0.5", role: "client" as const, lanSubnets: [], transport: "udp" as const },
        ];
        const template = renderWgQuickConf(relayWgQuickConf(relay, peers, new Set()));
        expect(template).toContain(["[Peer]", "# phone (client)", "# wg-relay route MTU: 1420", "PublicKey = <public key of phone>", "AllowedIPs = 10.10.0.5/32"].join("\n"));
        expect(template.match(/route MTU/g)).toHaveLength(1);
        const conf = (transport: "udp" | "wstunnel") =>
            renderWgQuickConf(
                clientWgQuickConf({
                    client: { ...laptop, transport },
                    tunnel: network.tunnel,
                    relayHost: "198.51.100.10",
                    relays: [{ name: "relay", tunnelSubnet: "10.10.0.0/24", ownAddress: "10.10.0.3", publicKey: { ofPeer: "relay" }, endpoint: "198.51.100.10:51820" }],
                    privateKey: { file: "/etc/wireguard/wg0.key" },
                    stockApp: false,
                }),
            );
        expect(conf("udp")).toContain("MTU = 1420\n");
        expect(conf("wstunnel")).toContain("MTU = 65000\n");
    });

    it("renders the gateway with the relay reached through the local wstunnel listener, the whole tunnel subnet allowed", () => {
        const template = renderWgQuickConf(gatewayWgQuickConf({ ...rpi1, presharedKey: true }, network.tunnel, [relayForPeers]));
        expectGolden("gateway/etc/wg-relay/wg0.template.conf", template);
        expect(template).toContain(
            [
                "[Peer]",
                "# the relay",
                "PublicKey = <public key of relay>",
                "PresharedKey = <from /etc/wireguard/wg0.psk>",
                "AllowedIPs = 10.10.0.0/24",
                "Endpoint = 127.0.0.1:51820",
                "PersistentKeepalive = 25",
            ].join("\n"),
        );
    });

    it("renders a gateway on plain UDP with each relay at its WireGuard port, wg0 at tunnel.udpMtu and TCP's MSS clamped into wg0", () => {
        const template = renderWgQuickConf(gatewayWgQuickConf({ ...rpi1, transport: "udp" }, network.tunnel, [relayForPeers]));
        expectGolden("gateway-udp/etc/wg-relay/wg0.template.conf", template);
        expect(template).toContain("MTU = 1420\n");
        expect(template).toContain(["AllowedIPs = 10.10.0.0/24", "Endpoint = 198.51.100.10:51820", "PersistentKeepalive = 25"].join("\n"));
        expect(template).toContain(`PostUp = iptables -t mangle -A FORWARD -o %i -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu -m comment --comment wg-relay\n`);
        // Through wstunnel: the local listener, wg0's own MTU, no clamp.
        const wstunnel = renderWgQuickConf(gatewayWgQuickConf(rpi1, network.tunnel, [relayForPeers]));
        expect(wstunnel).toContain("Endpoint = 127.0.0.1:51820\n");
        expect(wstunnel).toContain("MTU = 65000\n");
        expect(wstunnel).not.toContain("TCPMSS");
        // The relay routes the gateway's tunnel address and LAN at the same MTU.
        const relayTemplate = renderWgQuickConf(relayWgQuickConf(relay, [{ ...rpi1, role: "gateway", transport: "udp" }], new Set()));
        expect(relayTemplate).toContain(["# rpi1 (gateway)", "# wg-relay route MTU: 1420", "PublicKey = <public key of rpi1>", "AllowedIPs = 10.10.0.2/32, 192.168.1.0/24"].join("\n"));
    });

    it("renders a gateway on auto: the relay's UDP port first, the transport unit's directive naming both endpoints, UDP's MTU and clamp on both paths", () => {
        const template = renderWgQuickConf(gatewayWgQuickConf({ ...rpi1, transport: "auto" }, network.tunnel, [relayForPeers]));
        expectGolden("gateway-auto/etc/wg-relay/wg0.template.conf", template);
        expect(template).toContain("# wg-relay transport auto: relay 198.51.100.10:51820 127.0.0.1:51820 10.10.0.1 10.10.0.2\n[Interface]\n");
        expect(template).toContain("MTU = 1420\n");
        expect(template).toContain(["AllowedIPs = 10.10.0.0/24", "Endpoint = 198.51.100.10:51820", "PersistentKeepalive = 25"].join("\n"));
        expect(template).toContain("--clamp-mss-to-pmtu");
        // The other transports have no directive.
        for (const transport of ["wstunnel", "udp"] as const) {
            expect(renderWgQuickConf(gatewayWgQuickConf({ ...rpi1, transport }, network.tunnel, [relayForPeers]))).not.toContain("wg-relay transport");
        }
        const relayTemplate = renderWgQuickConf(relayWgQuickConf(relay, [{ ...rpi1, role: "gateway", transport: "auto" }], new Set()));
        expect(relayTemplate).toContain(["# rpi1 (gateway)", "# wg-relay route MTU: 1420", "PublicKey = <public key of rpi1>"].join("\n"));
    });

    it("lists the public keys wg-apply fills in, one line per peer", () => {
        expect(renderPublicKeys([{ name: "rpi1", publicKey: "KEY1=" }, { name: "laptop", publicKey: "KEY2=" }])).toBe("rpi1 KEY1=\nlaptop KEY2=\n");
    });
});

describe("client bundle confs: keys inline", () => {
    const settings = {
        client: laptop,
        tunnel: network.tunnel,
        relayHost: "198.51.100.10",
        relays: [{ name: "relay", tunnelSubnet: "10.10.0.0/24", ownAddress: "10.10.0.3", publicKey: { inline: "RELAY-PUBLIC-KEY" }, endpoint: "127.0.0.1:51820" }],
        privateKey: { inline: "CLIENT-PRIVATE-KEY" },
        stockApp: true,
    };

    it("renders a split tunnel: the tunnel subnet and the client's routes", () => {
        const conf = renderWgQuickConf(clientWgQuickConf(settings));
        expectGolden("client-split-wg0.conf", conf);
        expect(conf).toContain("PrivateKey = CLIENT-PRIVATE-KEY\n");
        expect(conf).toContain("PublicKey = RELAY-PUBLIC-KEY\nAllowedIPs = 10.10.0.0/24, 192.168.1.0/24\nEndpoint = 127.0.0.1:51820\n");
    });

    it("inlines a preshared key", () => {
        const conf = renderWgQuickConf(clientWgQuickConf({ ...settings, presharedKey: { inline: "CLIENT-PRESHARED-KEY" } }));
        expect(conf).toContain("PublicKey = RELAY-PUBLIC-KEY\nPresharedKey = CLIENT-PRESHARED-KEY\nAllowedIPs");
    });

    it("keeps the relay's address outside a full tunnel over wstunnel by AllowedIPs, with no PostUp the apps would refuse", () => {
        const conf = renderWgQuickConf(clientWgQuickConf({ ...settings, client: { ...laptop, fullTunnel: true } }));
        expectGolden("client-full-wg0.conf", conf);
        expect(conf).toContain(`AllowedIPs = ${ipv4AllBut("198.51.100.10").join(", ")}\n`);
        expect(conf).not.toMatch(/^Post/m);
        // On plain UDP the apps and wg-quick keep WireGuard's own socket out of the tunnel.
        const udp = renderWgQuickConf(clientWgQuickConf({ ...settings, client: { ...laptop, fullTunnel: true, transport: "udp" } }));
        expect(udp).toContain("AllowedIPs = 0.0.0.0/0\n");
        expect(udp).not.toMatch(/^Post/m);
    });

    it("gives a client on plain UDP a conf per relay.udpPorts entry, reaching the relay at that port", () => {
        const stack = parseStackConfig({
            ...validConfig(),
            relay: { ...validConfig().relay!, allowDirectUdp: true, udpPorts: [53, 443] },
            clients: [{ name: "phone", tunnelAddress: "10.10.0.4", transport: "udp" }, { name: "laptop", tunnelAddress: "10.10.0.3" }],
        } as Record<string, unknown>);
        const relays = stack.relays.map((each) => ({ peerName: each.name, tunnelSubnet: each.tunnel.subnet, wstunnelLocalPort: each.wstunnelLocalPort, peers: each.peers, address: relayAddress(each), publicKey: "RELAY-PUBLIC-KEY" }));
        const bundle = (client: (typeof stack.clients)[number]) => renderClientBundle({ client, tunnel: stack.tunnel, relays, privateKey: "CLIENT-PRIVATE-KEY", pathPrefix: client.transport === "udp" ? undefined : "p" });
        const phone = bundle(stack.clients[0]);
        expect(phone.wireguardConf).toContain("Endpoint = 198.51.100.10:51820\n");
        expect(phone.udpPortConfs?.map(({ port, wireguardConf }) => [port, /^Endpoint = (.*)$/m.exec(wireguardConf)![1]])).toEqual([
            [53, "198.51.100.10:53"],
            [443, "198.51.100.10:443"],
        ]);
        // Through wstunnel the ports change nothing.
        expect(bundle(stack.clients[1]).udpPortConfs).toBeUndefined();
    });

    it("keeps the ip rule in a provisioned client's template, for wg-quick's full tunnel", () => {
        const conf = renderWgQuickConf(clientWgQuickConf({ ...settings, client: { ...laptop, fullTunnel: true }, stockApp: false }));
        expect(conf).toContain("AllowedIPs = 0.0.0.0/0\n");
        expect(conf).toContain("PostUp = ip -4 rule add to 198.51.100.10/32 lookup main priority 100\n");
        expect(conf).toContain("PostDown = ip -4 rule del to 198.51.100.10/32 lookup main priority 100\n");
    });
});

describe("firewall rules", () => {
    const comment = "-m comment --comment wg-relay";

    it("lets replies from the internet back to wg0 and drops direct UDP in both families, each undone exactly", () => {
        const hooks = firewallHooks(relayFirewallRules({ publicInterface: "eth0", wireguardPort: 51820, allowDirectUdp: false, udpPorts: [] }));
        const clamp = "FORWARD -i %i -o eth0 -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu";
        expect(hooks).toEqual([
            { up: `iptables -t mangle -A ${clamp} ${comment}`, down: `iptables -t mangle -D ${clamp} ${comment}` },
            {
                up: `iptables -A FORWARD -i eth0 -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT ${comment}`,
                down: `iptables -D FORWARD -i eth0 -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT ${comment}`,
            },
            { up: `iptables -I INPUT -i eth0 -p udp --dport 51820 -j DROP ${comment}`, down: `iptables -D INPUT -i eth0 -p udp --dport 51820 -j DROP ${comment}` },
            { up: `ip6tables -I INPUT -i eth0 -p udp --dport 51820 -j DROP ${comment}`, down: `ip6tables -D INPUT -i eth0 -p udp --dport 51820 -j DROP ${comment}` },
        ]);
        // No forwarding to the internet and no masquerading here: the egress and NAT chains grant them per client.
        expect(hooks.some((hook) => hook.up.includes("MASQUERADE") || hook.up.includes("-o eth0 -j ACCEPT"))).toBe(false);
    });

    it("leaves WireGuard's port open with direct UDP (the relay's chains decide what peers send)", () => {
        const hooks = firewallHooks(relayFirewallRules({ publicInterface: "ens3", wireguardPort: 51820, allowDirectUdp: true, udpPorts: [] }));
        expect(hooks.map((hook) => hook.up).filter((rule) => rule.includes("51820"))).toEqual([]);
    });

    it("redirects each of relay.udpPorts to WireGuard's port on the public interface only, each undone exactly", () => {
        const hooks = firewallHooks(relayFirewallRules({ publicInterface: "ens3", wireguardPort: 51820, allowDirectUdp: true, udpPorts: [53, 443] }));
        expect(hooks.filter((hook) => hook.up.includes("PREROUTING"))).toEqual(
            [53, 443].map((port) => ({
                up: `iptables -t nat -A PREROUTING -i ens3 -p udp --dport ${port} -j REDIRECT --to-ports 51820 ${comment}`,
                down: `iptables -t nat -D PREROUTING -i ens3 -p udp --dport ${port} -j REDIRECT --to-ports 51820 ${comment}`,
            })),
        );
    });

    it("lets the gateway forward to each LAN and the replies back, keeps its tunnel address off the LAN, and masquerades only when asked", () => {
        const settings = { relays: [{ tunnelSubnet: "10.10.0.0/24", ownAddress: "10.10.0.2" }], lanInterface: "eth0", lanSubnets: ["192.168.1.0/24", "192.168.2.0/24"], siteRoutes: [], clampMss: false };
        const masquerading = firewallHooks(gatewayFirewallRules({ ...settings, masquerade: true })).map((hook) => hook.up);
        expect(masquerading).toEqual([
            `iptables -A FORWARD -i %i -o eth0 -d 192.168.1.0/24 -j ACCEPT ${comment}`,
            `iptables -A FORWARD -i %i -o eth0 -d 192.168.2.0/24 -j ACCEPT ${comment}`,
            `iptables -A FORWARD -i eth0 -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT ${comment}`,
            `iptables -I INPUT -i eth0 -d 10.10.0.2/32 -j DROP ${comment}`,
            `iptables -t nat -A POSTROUTING -s 10.10.0.0/24 -o eth0 -j MASQUERADE ${comment}`,
        ]);
        expect(firewallHooks(gatewayFirewallRules({ ...settings, masquerade: false })).map((hook) => hook.up)).toEqual(masquerading.slice(0, 4));
    });

    it("removes rules in reverse order in the conf", () => {
        const template = renderWgQuickConf(gatewayWgQuickConf(rpi1, network.tunnel, [relayForPeers]));
        const postDowns = template.split("\n").filter((line) => line.startsWith("PostDown = "));
        expect(postDowns[0]).toBe(`PostDown = iptables -t nat -D POSTROUTING -s 10.10.0.0/24 -o %default-route-dev -j MASQUERADE ${comment}`);
        expect(postDowns).toHaveLength(4);
    });
});

/** A chain's rules in a rules file, in order. */
const chain = (rules: string, name: string) => rules.split("\n").filter((line) => line.startsWith(`-A ${name} `));

describe("relay access rules", () => {
    const withAccess = parseStackConfig({
        ...validConfig(),
        clients: [
            { name: "laptop", tunnelAddress: "10.10.0.3" },
            {
                name: "phone",
                tunnelAddress: "10.10.0.4",
                access: [{ to: "192.168.1.20", protocol: "tcp", ports: [80, "8000-8080"] }, { to: "rpi1", protocol: "icmp" }, { to: "laptop" }],
            },
            { name: "tablet", tunnelAddress: "10.10.0.5", access: [] },
        ],
    } as Record<string, unknown>);

    it("renders the access chain for iptables-restore: replies, each client's grants in order, then a drop", () => {
        const rules = renderAccessRules(withAccess.relays[0]);
        expectGolden("relay/etc/wg-relay/access.rules", rules);
        expect(chain(rules, "WG-RELAY-ACCESS")).toEqual([
            "-A WG-RELAY-ACCESS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A WG-RELAY-ACCESS -s 10.10.0.3/32 -d 192.168.1.0/24 -m comment --comment wg-relay:laptop -j ACCEPT",
            "-A WG-RELAY-ACCESS -s 10.10.0.4/32 -d 192.168.1.20/32 -p tcp -m multiport --dports 80,8000:8080 -m comment --comment wg-relay:phone -j ACCEPT",
            "-A WG-RELAY-ACCESS -s 10.10.0.4/32 -d 192.168.1.0/24 -p icmp -m comment --comment wg-relay:phone -j ACCEPT",
            "-A WG-RELAY-ACCESS -s 10.10.0.4/32 -d 10.10.0.3/32 -m comment --comment wg-relay:phone -j ACCEPT",
            "-A WG-RELAY-ACCESS -j DROP",
        ]);
        expect(rules).toContain("# phone (10.10.0.4) to 192.168.1.20, tcp ports 80, 8000-8080\n");
        expect(rules).toContain("# tablet (10.10.0.5) may open nothing\n");
        expect(rules.split("\n").filter((line) => /^[*:]|^COMMIT/.test(line))).toEqual([
            "*filter",
            ":WG-RELAY-ACCESS - [0:0]",
            ":WG-RELAY-INPUT - [0:0]",
            ":WG-RELAY-EGRESS - [0:0]",
            "COMMIT",
            "*nat",
            ":WG-RELAY-NAT - [0:0]",
            "COMMIT",
        ]);
    });

    it("opens nothing on the relay itself but replies, ICMP errors, failover pings and the gateways' heartbeat, unless a client's access names the relay", () => {
        const rules = renderAccessRules(withAccess.relays[0]);
        const program = [
            "-A WG-RELAY-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A WG-RELAY-INPUT -p icmp -m icmp --icmp-type destination-unreachable -j ACCEPT",
            "-A WG-RELAY-INPUT -p icmp -m icmp --icmp-type time-exceeded -j ACCEPT",
            "-A WG-RELAY-INPUT -s 10.10.0.0/24 -d 10.10.0.1/32 -p icmp -m icmp --icmp-type echo-request -j ACCEPT",
            "-A WG-RELAY-INPUT -s 10.10.0.2/32 -d 10.10.0.1/32 -p udp -m udp --dport 9 -j ACCEPT",
        ];
        expect(chain(rules, "WG-RELAY-INPUT")).toEqual([...program, "-A WG-RELAY-INPUT -j DROP"]);
        const granted = parseStackConfig({
            ...validConfig(),
            clients: [{ name: "laptop", tunnelAddress: "10.10.0.3", access: [{ to: "rpi1" }, { to: "relay", protocol: "tcp", ports: [22, 8080] }] }],
        } as Record<string, unknown>).relays[0];
        const grantedRules = renderAccessRules(granted);
        expect(chain(grantedRules, "WG-RELAY-INPUT")).toEqual([
            ...program,
            "-A WG-RELAY-INPUT -s 10.10.0.3/32 -d 10.10.0.1/32 -p tcp -m multiport --dports 22,8080 -m comment --comment wg-relay:laptop -j ACCEPT",
            "-A WG-RELAY-INPUT -j DROP",
        ]);
        expect(grantedRules).toContain("# laptop (10.10.0.3) to relay (relay: 10.10.0.1/32), tcp ports 22, 8080\n");
        // A grant to the relay is no peer-to-peer flow.
        expect(chain(grantedRules, "WG-RELAY-ACCESS").filter((rule) => rule.includes("10.10.0.1/32"))).toEqual([]);
    });

    it("lets only full-tunnel clients out to the internet, from their own address, never to link-local addresses, and masquerades only them", () => {
        const split = renderAccessRules(withAccess.relays[0]);
        expect(chain(split, "WG-RELAY-EGRESS")).toEqual([
            "-A WG-RELAY-EGRESS -o wg0 -j RETURN",
            "-A WG-RELAY-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A WG-RELAY-EGRESS -j DROP",
        ]);
        expect(chain(split, "WG-RELAY-NAT")).toEqual([]);
        const full = parseStackConfig({
            ...validConfig(),
            relay: { ...validConfig().relay, publicInterface: "ens3" },
            clients: [
                { name: "laptop", tunnelAddress: "10.10.0.3" },
                { name: "phone", tunnelAddress: "10.10.0.4", fullTunnel: true },
            ],
        } as Record<string, unknown>).relays[0];
        const rules = renderAccessRules(full);
        expect(chain(rules, "WG-RELAY-EGRESS")).toEqual([
            "-A WG-RELAY-EGRESS -o wg0 -j RETURN",
            "-A WG-RELAY-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A WG-RELAY-EGRESS -d 169.254.0.0/16 -j DROP",
            "-A WG-RELAY-EGRESS -s 10.10.0.4/32 -o ens3 -m comment --comment wg-relay:phone -j ACCEPT",
            "-A WG-RELAY-EGRESS -j DROP",
        ]);
        expect(chain(rules, "WG-RELAY-NAT")).toEqual(["-A WG-RELAY-NAT -s 10.10.0.4/32 -o ens3 -m comment --comment wg-relay:phone -j MASQUERADE"]);
        // A full tunnel carries IPv4 only: the IPv6 file lets no one out, and has no NAT.
        const six = renderAccessRules(full, "ipv6");
        expect(chain(six, "WG-RELAY-EGRESS")).toEqual(["-A WG-RELAY-EGRESS -o wg0 -j RETURN", "-A WG-RELAY-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-A WG-RELAY-EGRESS -j DROP"]);
        expect(six).not.toContain("*nat");
    });

    it("lists a rules file's rules as the commands that add them, for the doctor", () => {
        const commands = accessRuleCommands(withAccess.relays[0], "ipv4");
        expect(commands[0]).toBe("iptables -A WG-RELAY-ACCESS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        expect(commands).toContain("iptables -A WG-RELAY-INPUT -j DROP");
        expect(commands.filter((command) => command.startsWith("iptables -t nat "))).toEqual([]);
        const full = parseStackConfig({ ...validConfig(), clients: [{ name: "phone", tunnelAddress: "10.10.0.4", fullTunnel: true }] } as Record<string, unknown>).relays[0];
        expect(accessRuleCommands(full, "ipv4")).toContain("iptables -t nat -A WG-RELAY-NAT -s 10.10.0.4/32 -o %default-route-dev -m comment --comment wg-relay:phone -j MASQUERADE");
        expect(accessRuleCommands(full, "ipv6")).toContain("ip6tables -A WG-RELAY-INPUT -j DROP");
        // Each in the form wg-apply reads, for the doctor's check: on a host without them, each is missing, none unknown.
        const dir = mkdtempSync(join(tmpdir(), "wg-relay-rules-"));
        try {
            mkdirSync(join(dir, "bin"));
            for (const tool of ["iptables", "ip6tables"]) {
                writeFileSync(join(dir, "bin", tool), "#!/bin/sh\nexit 1\n");
                chmodSync(join(dir, "bin", tool), 0o755);
            }
            const check = spawnSync("bash", [join(hostScriptsDir, "wg-apply.sh"), "--check-rules", "wg0"], {
                env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` },
                input: commands.join("\n") + "\n",
                encoding: "utf8",
            });
            expect(check.stdout).toBe(commands.map((_, index) => `${index} missing\n`).join(""));
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("gives a client every LAN in its routes by default, and one a gateway's name stands for only within them", () => {
        const twoLans = parseStackConfig({
            ...validConfig(),
            gateways: [{ name: "rpi1", tunnelAddress: "10.10.0.2", lanSubnets: ["192.168.1.0/24", "192.168.2.0/24"], ssh: { host: "192.168.1.130", hostKey: testHostKey } }],
            clients: [
                { name: "laptop", tunnelAddress: "10.10.0.3" },
                { name: "phone", tunnelAddress: "10.10.0.4", routes: ["192.168.2.0/24"], access: [{ to: "rpi1", protocol: "udp", ports: [53] }] },
            ],
        } as Record<string, unknown>);
        const rules = renderAccessRules(twoLans.relays[0]).split("\n").filter((line) => line.startsWith("-A WG-RELAY-ACCESS -s"));
        expect(rules).toEqual([
            "-A WG-RELAY-ACCESS -s 10.10.0.3/32 -d 192.168.1.0/24 -m comment --comment wg-relay:laptop -j ACCEPT",
            "-A WG-RELAY-ACCESS -s 10.10.0.3/32 -d 192.168.2.0/24 -m comment --comment wg-relay:laptop -j ACCEPT",
            "-A WG-RELAY-ACCESS -s 10.10.0.4/32 -d 192.168.2.0/24 -p udp -m multiport --dports 53 -m comment --comment wg-relay:phone -j ACCEPT",
        ]);
    });

    it("has wg0 load the chains and jump into them at the top of FORWARD and INPUT in both families, undone in reverse, with no rule of a client in the hooks", () => {
        expect(accessChainHooks("/etc/wg-relay/access.rules")).toEqual([
            {
                up: "iptables-restore -w --noflush /etc/wg-relay/access.rules",
                down: [
                    "iptables -w -F WG-RELAY-ACCESS && iptables -w -X WG-RELAY-ACCESS",
                    "iptables -w -F WG-RELAY-INPUT && iptables -w -X WG-RELAY-INPUT",
                    "iptables -w -F WG-RELAY-EGRESS && iptables -w -X WG-RELAY-EGRESS",
                    "iptables -w -t nat -F WG-RELAY-NAT && iptables -w -t nat -X WG-RELAY-NAT",
                ].join(" && "),
            },
            {
                up: "iptables -I FORWARD -i %i -j WG-RELAY-EGRESS -m comment --comment wg-relay",
                down: "iptables -D FORWARD -i %i -j WG-RELAY-EGRESS -m comment --comment wg-relay",
            },
            {
                up: "iptables -I FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay",
                down: "iptables -D FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay",
            },
            { up: "iptables -I INPUT -i %i -j WG-RELAY-INPUT -m comment --comment wg-relay", down: "iptables -D INPUT -i %i -j WG-RELAY-INPUT -m comment --comment wg-relay" },
            {
                up: "iptables -t nat -A POSTROUTING -j WG-RELAY-NAT -m comment --comment wg-relay",
                down: "iptables -t nat -D POSTROUTING -j WG-RELAY-NAT -m comment --comment wg-relay",
            },
        ]);
        const template = renderWgQuickConf(relayWgQuickConf(withAccess.relays[0], [], new Set()));
        const hookLines = template.split("\n").filter((line) => line.includes("WG-RELAY-") || line.includes(".rules"));
        expect(hookLines.filter((line) => line.startsWith("PostUp = "))).toEqual([
            "PostUp = iptables-restore -w --noflush /etc/wg-relay/access.rules",
            "PostUp = iptables -I FORWARD -i %i -j WG-RELAY-EGRESS -m comment --comment wg-relay",
            "PostUp = iptables -I FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay",
            "PostUp = iptables -I INPUT -i %i -j WG-RELAY-INPUT -m comment --comment wg-relay",
            "PostUp = iptables -t nat -A POSTROUTING -j WG-RELAY-NAT -m comment --comment wg-relay",
            "PostUp = ip6tables-restore -w --noflush /etc/wg-relay/access6.rules",
            "PostUp = ip6tables -I FORWARD -i %i -j WG-RELAY-EGRESS -m comment --comment wg-relay",
            "PostUp = ip6tables -I FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay",
            "PostUp = ip6tables -I INPUT -i %i -j WG-RELAY-INPUT -m comment --comment wg-relay",
        ]);
        // Undone in reverse: jumps before the chains they lead to.
        expect(hookLines.filter((line) => line.startsWith("PostDown = ")).map((line) => line.split(" ").slice(2, 5).join(" "))).toEqual([
            "ip6tables -D INPUT",
            "ip6tables -D FORWARD",
            "ip6tables -D FORWARD",
            "ip6tables -w -F",
            "iptables -t nat",
            "iptables -D INPUT",
            "iptables -D FORWARD",
            "iptables -D FORWARD",
            "iptables -w -F",
        ]);
    });

    it("loads the rules live only where wg0 made the chain", () => {
        expect(loadAccessRulesScript("/etc/wg-relay/access.rules")).toBe(
            "if iptables -w -n -L WG-RELAY-ACCESS >/dev/null 2>&1; then iptables-restore -w --noflush /etc/wg-relay/access.rules; fi",
        );
    });
});

describe("wstunnel", () => {
    it("restricts the server to the local WireGuard port and keeps the path prefix out of the command line", () => {
        const settings = { listenPort: 443, wireguardPort: 51820, certificateFile: "/etc/wg-relay/tls/server.crt", privateKeyFile: "/etc/wg-relay/tls/server.key", restrictionsFile: "/etc/wg-relay/wstunnel-restrictions.yaml" };
        expect(wstunnelServerArgs({ ...settings, certificateFile: "c", privateKeyFile: "k", restrictionsFile: "r" }, "0.0.0.0")).toEqual([
            "server", "--tls-certificate", "c", "--tls-private-key", "k", "--restrict-config", "r", "wss://0.0.0.0:443",
        ]);
        const unit = renderWstunnelServerUnit(settings);
        expectGolden("relay/etc/systemd/system/wg-relay-wstunnel-server.service", unit);
        expect(unit).toContain("Before=wg-quick@wg0.service");
        expect(unit).toContain("AmbientCapabilities=CAP_NET_BIND_SERVICE");
        // The restrictions file is read in place (wstunnel reloads it when it changes), as a member of its group.
        expect(unit).not.toContain("LoadCredential=restrictions");
        expect(unit).toContain("SupplementaryGroups=wg-relay-wstunnel\n");
        expect(unit).toContain(" --restrict-config /etc/wg-relay/wstunnel-restrictions.yaml ");
        expect(unit).not.toMatch(/^User=root/m);
        // Both families where the host has IPv6 (the listener is chosen at each start: the e2e exposure tests).
        expect(unit).toContain('-c "listen=0.0.0.0; read -r v6only 2>/dev/null </proc/sys/net/ipv6/bindv6only && [ $$v6only = 0 ] && listen=[::]; exec ');
    });

    it("with mutual TLS, has the server require a certificate from the stack's CA, handed to it as a systemd credential", () => {
        const settings = { listenPort: 443, wireguardPort: 51820, certificateFile: "/etc/wg-relay/tls/server.crt", privateKeyFile: "/etc/wg-relay/tls/server.key", restrictionsFile: "/etc/wg-relay/wstunnel-restrictions.yaml" };
        expect(wstunnelServerArgs({ ...settings, certificateFile: "c", privateKeyFile: "k", restrictionsFile: "r", clientCaFile: "ca" }, "[::]")).toEqual([
            "server", "--tls-certificate", "c", "--tls-private-key", "k", "--restrict-config", "r", "--tls-client-ca-certs", "ca", "wss://[::]:443",
        ]);
        const unit = renderWstunnelServerUnit({ ...settings, clientCaFile: "/etc/wg-relay/tls/client-ca.crt" });
        expect(unit).toContain("LoadCredential=client-ca.crt:/etc/wg-relay/tls/client-ca.crt\n");
        expect(unit).toContain(" --tls-client-ca-certs %d/client-ca.crt wss://$${listen}:443 ");
        // Without it, nothing of mutual TLS.
        expect(renderWstunnelServerUnit(settings)).not.toMatch(/client-ca/);
    });

    it("with the user's own certificate files, watches each file and its folder and runs tls-renewal on the server's credentials", () => {
        const files = { certificateFile: "/etc/letsencrypt/live/relay.example.org/fullchain.pem", privateKeyFile: "/etc/letsencrypt/live/relay.example.org/privkey.pem" };
        const path = renderTlsRenewalPathUnit(files);
        expectGolden("relay/etc/systemd/system/wg-relay-tls-renewal.path", path);
        expect(path).toContain(
            [
                "[Path]",
                "PathChanged=/etc/letsencrypt/live/relay.example.org/fullchain.pem",
                "PathChanged=/etc/letsencrypt/live/relay.example.org/privkey.pem",
                // A symlink replaced by a rename changes the folder only (certbot's live/ points to new files in archive/).
                "PathChanged=/etc/letsencrypt/live/relay.example.org",
                "Unit=wg-relay-tls-renewal.service",
            ].join("\n"),
        );
        expect(renderTlsRenewalPathUnit({ certificateFile: "/srv/tls/cert.pem", privateKeyFile: "/etc/tls-keys/key.pem" })).toContain(
            "PathChanged=/srv/tls/cert.pem\nPathChanged=/etc/tls-keys/key.pem\nPathChanged=/srv/tls\nPathChanged=/etc/tls-keys\n",
        );
        const service = renderTlsRenewalServiceUnit(files);
        expectGolden("relay/etc/systemd/system/wg-relay-tls-renewal.service", service);
        expect(service).toContain(
            "ExecStart=/usr/local/lib/wg-relay/tls-renewal wg-relay-wstunnel-server.service /run/credentials/wg-relay-wstunnel-server.service " +
                "/etc/letsencrypt/live/relay.example.org/fullchain.pem /etc/letsencrypt/live/relay.example.org/privkey.pem\n",
        );
        // The credentials' names in the server's unit are the ones tls-renewal compares.
        const server = renderWstunnelServerUnit({ listenPort: 443, wireguardPort: 51820, ...files, restrictionsFile: "/etc/wg-relay/wstunnel-restrictions.yaml" });
        expect(server).toContain("LoadCredential=tls.crt:/etc/letsencrypt/live/relay.example.org/fullchain.pem\nLoadCredential=tls.key:/etc/letsencrypt/live/relay.example.org/privkey.pem\n");
    });

    it("gives each peer a rule of its own, named after the peer, matching only its prefix, allowing UDP to local WireGuard only", () => {
        const restrictions = renderWstunnelRestrictions({
            peers: [
                { name: "rpi1", pathPrefix: "abcDEF123" },
                { name: "laptop", pathPrefix: "xyz789" },
            ],
            wireguardPort: 51820,
        });
        expectGolden("relay/etc/wg-relay/wstunnel-restrictions.yaml", restrictions);
        expect(restrictions).toBe(
            [
                "# Managed by wg-relay: `pulumi up` rewrites this file; wstunnel reloads it when it changes.",
                "restrictions:",
                '  - name: "wg-relay: rpi1 to WireGuard on 127.0.0.1:51820"',
                "    match:",
                '      - !PathPrefix "^abcDEF123$"',
                "    allow:",
                "      - !Tunnel",
                "        protocol: [Udp]",
                '        port: ["51820"]',
                '        host: "^$"',
                "        cidr: [127.0.0.1/32]",
                '  - name: "wg-relay: laptop to WireGuard on 127.0.0.1:51820"',
                "    match:",
                '      - !PathPrefix "^xyz789$"',
                "    allow:",
                "      - !Tunnel",
                "        protocol: [Udp]",
                '        port: ["51820"]',
                '        host: "^$"',
                "        cidr: [127.0.0.1/32]",
                "",
            ].join("\n"),
        );
        expect(() => renderWstunnelRestrictions({ peers: [{ name: "rpi1", pathPrefix: "a.*" }], wireguardPort: 51820 })).toThrow(/URL- and shell-safe/);
    });

    it("allows nothing when no peer uses wstunnel", () => {
        expect(renderWstunnelRestrictions({ peers: [], wireguardPort: 51820 })).toBe(
            "# Managed by wg-relay: `pulumi up` rewrites this file; wstunnel reloads it when it changes.\nrestrictions: []\n",
        );
    });

    it("runs wstunnel as the server unit's main process, its exit status kept and its rejection lines redacted", () => {
        const unit = renderWstunnelServerUnit({
            listenPort: 443,
            wireguardPort: 51820,
            certificateFile: "/etc/wg-relay/tls/server.crt",
            privateKeyFile: "/etc/wg-relay/tls/server.key",
            restrictionsFile: "/etc/wg-relay/wstunnel-restrictions.yaml",
        });
        const command = /^ExecStart=\/bin\/bash -c "(.*)"$/m.exec(unit)![1];
        const dir = mkdtempSync(join(tmpdir(), "wg-relay-server-unit-"));
        try {
            // A stand-in wstunnel: says which process it is, logs a rejection with a secret path, and fails.
            const fake = join(dir, "wstunnel");
            writeFileSync(fake, "#!/bin/bash\necho \"pid $$\"\necho 'WARN Rejecting connection with bad upgrade request: /s3cret/events' >&2\nexit 3\n", { mode: 0o755 });
            const result = spawnSync("bash", ["-c", command.replace("/usr/local/bin/wstunnel", fake)], { encoding: "utf8" });
            expect(result.status).toBe(3);
            expect(result.stdout).toContain(`pid ${result.pid}\n`); // exec'd: the unit's main process
            expect(result.stdout).toContain("Rejecting connection with bad upgrade request: /<path redacted>");
            expect(result.stdout).not.toContain("s3cret");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("redacts request paths in wstunnel's rejection warnings, and only there", () => {
        const sed = (line: string) => execFileSync("sh", ["-c", logRedaction], { input: `${line}\n`, encoding: "utf8" }).trim();
        // The line shapes of wstunnel 10.6.2's server (tunnel/server/handler_websocket.rs, server.rs).
        expect(sed("WARN wstunnel::tunnel::server::handler_websocket: Rejecting connection with bad upgrade request: /s3cretPrefix/events")).toBe(
            "WARN wstunnel::tunnel::server::handler_websocket: Rejecting connection with bad upgrade request: /<path redacted>",
        );
        expect(sed("WARN cnx: Rejecting connection with bad tunnel info: invalid remote https://relay:443/s3cretPrefix/events?x=1")).not.toContain("s3cretPrefix");
        // With mutual TLS: the requested path and the certificate's common name, both path prefixes.
        expect(
            sed("WARN wstunnel::tunnel::server::server: Client requested upgrade path 'pathPrefixA' does not match upgrade path restriction 'commonNameB' (mTLS, etc.)"),
        ).toBe("WARN wstunnel::tunnel::server::server: Client requested upgrade path <redacted> does not match upgrade path restriction <redacted> (mTLS, etc.)");
        expect(sed("INFO Tunnel accepted due to matched restriction: wg-relay: WireGuard on 127.0.0.1:51820")).toBe(
            "INFO Tunnel accepted due to matched restriction: wg-relay: WireGuard on 127.0.0.1:51820",
        );
    });

    it("has the client listen on loopback UDP without an idle timeout and verify the relay's certificate against the stack's CA alone", () => {
        const ownCertificate = { localPort: 51820, relayHost: "sync.c0xl.ch", relayPort: 443, wireguardPort: 51820 };
        const settings = { ...ownCertificate, caFile: "/etc/wg-relay/tls/relay-ca.crt" };
        expect(wstunnelClientArgs(settings)).toEqual([
            "client", "--local-to-remote", "udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0", "--tls-verify-certificate", "wss://sync.c0xl.ch:443",
        ]);
        const unit = renderWstunnelClientUnit({ ...settings, environmentFile: "/etc/wg-relay/wstunnel-client.env" });
        expectGolden("peer/etc/systemd/system/wg-relay-wstunnel-client.service", unit);
        // rustls-native-certs then reads this file and not the system's store.
        expect(unit).toContain("\nEnvironment=SSL_CERT_FILE=/etc/wg-relay/tls/relay-ca.crt\n");
        // The relay's own, publicly trusted certificate: the system's store.
        expect(renderWstunnelClientUnit({ ...ownCertificate, environmentFile: "/etc/wg-relay/wstunnel-client.env" })).not.toContain("SSL_CERT_FILE");
    });

    it("with mutual TLS, has the client present its certificate and key from one file, handed to it as a systemd credential", () => {
        const settings = { localPort: 51820, relayHost: "sync.c0xl.ch", relayPort: 443, wireguardPort: 51820, clientCertificateFile: "/etc/wg-relay/tls/client.pem" };
        expect(wstunnelClientArgs(settings)).toEqual([
            "client", "--local-to-remote", "udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0", "--tls-verify-certificate",
            "--tls-certificate", "/etc/wg-relay/tls/client.pem", "--tls-private-key", "/etc/wg-relay/tls/client.pem", "wss://sync.c0xl.ch:443",
        ]);
        const unit = renderWstunnelClientUnit({ ...settings, environmentFile: "/etc/wg-relay/wstunnel-client.env" });
        expect(unit).toContain("LoadCredential=client.pem:/etc/wg-relay/tls/client.pem\n");
        expect(unit).toContain(" --tls-certificate %d/client.pem --tls-private-key %d/client.pem wss://sync.c0xl.ch:443\n");
        // Placeholder blocks (no real key is tracked): certificate first, then key, each ending in one newline.
        const block = (label: string, body: string) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
        expect(renderClientCertificatePem(block("CERTIFICATE", "MIIc"), `${block("PRIVATE KEY", "MIIk")}\n`)).toBe(`${block("CERTIFICATE", "MIIc")}${block("PRIVATE KEY", "MIIk")}`);
    });

    it("puts the client's prefix in an environment file and refuses one that would break it", () => {
        expect(renderWstunnelClientEnvironment("abcDEF123")).toBe("WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX=abcDEF123\n");
        expect(() => renderWstunnelClientEnvironment("a b")).toThrow(/URL- and shell-safe/);
    });
});

describe("heartbeat", () => {
    it("sends a datagram across the tunnel to the relay every few seconds, unprivileged, after wg0 is up", () => {
        const unit = renderHeartbeatUnit({ relayTunnelAddresses: ["10.10.0.1"], intervalSeconds: 5 });
        expectGolden("gateway/etc/systemd/system/wg-relay-heartbeat.service", unit);
        expect(unit).toContain("ExecStart=/bin/bash -c 'while :; do echo >/dev/udp/10.10.0.1/9 2>/dev/null || true; sleep 5; done'\n");
        expect(unit).toContain("After=wg-quick@wg0.service\n");
        expect(unit).toContain("DynamicUser=yes\n");
    });
});

describe("sysctl", () => {
    it("renders the forwarding sysctl", () => {
        const sysctl = renderForwardingSysctl({ congestionControl: "bbr" });
        expect(sysctl).toMatch(/^# Managed by wg-relay: routes between the tunnel and the LAN or the internet.\nnet.ipv4.ip_forward = 1\n/);
        // Ceilings for wstunnel's own buffer requests; '-': refused in a container's namespace without failing.
        expect(sysctl).toContain("\n-net.core.rmem_max = 4194304\n-net.core.wmem_max = 4194304\n");
        expect(sysctl).toContain("\n-net.core.rmem_default = 4194304\n");
        // BBR for wstunnel's TCP; '-': a kernel without tcp_bbr keeps its own.
        expect(sysctl).toContain("\n-net.ipv4.tcp_congestion_control = bbr\n");
        expectGolden("router/etc/sysctl.d/90-wg-relay.conf", sysctl);
    });

    it("leaves the host's congestion control alone when told to", () => {
        expect(renderForwardingSysctl({ congestionControl: "system" })).not.toContain("tcp_congestion_control");
    });
});

describe("several sites and relays", () => {
    const comment = "-m comment --comment wg-relay";
    const sites = parseStackConfig({
        ...validConfig(),
        relay: undefined,
        relays: [validConfig().relay, { name: "relay2", ssh: { host: "198.51.100.20", hostKey: testHostKey }, tunnelSubnet: "10.10.1.0/24" }],
        gateways: [
            { name: "rpi1", tunnelAddress: "10.10.0.2", lanSubnets: ["192.168.1.0/24"], siteToSite: true, ssh: { host: "192.168.1.130", hostKey: testHostKey } },
            { name: "rpi2", tunnelAddress: "10.10.0.6", lanSubnets: ["192.168.2.0/24"], siteToSite: true, ssh: { host: "192.168.2.130", hostKey: testHostKey } },
        ],
    } as Record<string, unknown>);
    const relaysForPeers = sites.relays.map((each) => ({
        peerName: each.name,
        tunnelAddress: each.tunnelAddress,
        tunnelSubnet: each.tunnel.subnet,
        wstunnelLocalPort: each.wstunnelLocalPort,
        peers: each.peers,
        address: relayAddress(each),
    }));

    it("gives a gateway an address and a peer per relay, each through its own local wstunnel listener, the other sites on the first", () => {
        const template = renderWgQuickConf(gatewayWgQuickConf(sites.gateways[0], sites.tunnel, relaysForPeers));
        expectGolden("gateway-two-relays/etc/wg-relay/wg0.template.conf", template);
        expect(template).toContain("Address = 10.10.0.2/24, 10.10.1.2/24\n");
        expect(template).toContain(
            [
                "# the relay relay",
                "PublicKey = <public key of relay>",
                "AllowedIPs = 10.10.0.0/24, 192.168.2.0/24",
                "Endpoint = 127.0.0.1:51820",
                "PersistentKeepalive = 25",
                "",
                "[Peer]",
                "# the relay relay2",
                "PublicKey = <public key of relay2>",
                "AllowedIPs = 10.10.1.0/24",
                "Endpoint = 127.0.0.1:51821",
            ].join("\n"),
        );
        expect(template).toContain(`PostUp = iptables -A FORWARD -i %default-route-dev -o %i -s 192.168.1.0/24 -d 192.168.2.0/24 -j ACCEPT ${comment}\n`);
        expect(template).toContain(`PostUp = iptables -t nat -A POSTROUTING -s 10.10.1.0/24 -o %default-route-dev -j MASQUERADE ${comment}\n`);
        expect(template).toContain(`PostUp = iptables -t nat -A POSTROUTING -s 192.168.2.0/24 -o %default-route-dev -j MASQUERADE ${comment}\n`);
        expect(template).toContain(`PostUp = iptables -I INPUT -i %default-route-dev -d 10.10.1.2/32 -j DROP ${comment}\n`);
    });

    it("gives a gateway without siteToSite no route, forward or masquerade for other sites", () => {
        const alone = { ...sites.gateways[0], siteToSite: false, siteRoutes: [] };
        const template = renderWgQuickConf(gatewayWgQuickConf(alone, sites.tunnel, relaysForPeers));
        expect(template).not.toContain("192.168.2.0/24");
    });

    it("gives a client a peer per relay with its routes on its primary's only", () => {
        const [laptop] = sites.clients;
        const relays = sites.relays.map((each, index) => ({
            name: each.name,
            tunnelSubnet: each.tunnel.subnet,
            ownAddress: relayPeer(each, laptop.name).tunnelAddress,
            publicKey: { ofPeer: each.name },
            endpoint: `127.0.0.1:${51820 + index}`,
        }));
        const settings = { tunnel: sites.tunnel, relayHost: "198.51.100.10", relays, privateKey: { file: "/etc/wireguard/wg0.key" }, stockApp: false };
        const declared = clientWgQuickConf({ ...settings, client: laptop });
        const conf = renderWgQuickConf(declared);
        expectGolden("client-two-relays/etc/wg-relay/wg0.template.conf", conf);
        // The provisioned client's plan has the same peers, by the relays' names.
        const plannedPeers = (client: typeof laptop) =>
            clientPlan(client, { tunnel: sites.tunnel, wstunnel: sites.wstunnel, stackCa: true, presharedKey: false }, relaysForPeers).peers.map(({ name, allowedIps }) => ({ name, allowedIps }));
        expect(plannedPeers(laptop)).toEqual([
            { name: "relay", allowedIps: ["10.10.0.0/24", "192.168.1.0/24", "192.168.2.0/24"] },
            { name: "relay2", allowedIps: ["10.10.1.0/24"] },
        ]);
        expect(declared.peers.map((peer) => peer.allowedIps)).toEqual(plannedPeers(laptop).map((peer) => peer.allowedIps));
        expect(conf).toContain("Address = 10.10.0.3/24, 10.10.1.3/24\n");
        const onRelay2 = clientWgQuickConf({ ...settings, client: { ...laptop, relayPreference: ["relay2", "relay"] } });
        expect(plannedPeers({ ...laptop, relayPreference: ["relay2", "relay"] })).toEqual([
            { name: "relay", allowedIps: ["10.10.0.0/24"] },
            { name: "relay2", allowedIps: ["10.10.1.0/24", "192.168.1.0/24", "192.168.2.0/24"] },
        ]);
        expect(onRelay2.peers.map((peer) => peer.allowedIps)).toEqual(plannedPeers({ ...laptop, relayPreference: ["relay2", "relay"] }).map((peer) => peer.allowedIps));
    });

    it("lets the first relay's access chain pass exactly the LAN pairs of sites that opted in, before the drop", () => {
        const rules = renderAccessRules(sites.relays[0]).split("\n");
        const accessEnd = rules.indexOf("-A WG-RELAY-ACCESS -j DROP") + 1;
        expect(rules.slice(accessEnd - 6, accessEnd)).toEqual([
            "# site to site: rpi1's 192.168.1.0/24 to rpi2's 192.168.2.0/24",
            "-A WG-RELAY-ACCESS -s 192.168.1.0/24 -d 192.168.2.0/24 -m comment --comment wg-relay:rpi1 -j ACCEPT",
            "# site to site: rpi2's 192.168.2.0/24 to rpi1's 192.168.1.0/24",
            "-A WG-RELAY-ACCESS -s 192.168.2.0/24 -d 192.168.1.0/24 -m comment --comment wg-relay:rpi2 -j ACCEPT",
            "# Anything else: gateways towards clients, clients towards what they were not given.",
            "-A WG-RELAY-ACCESS -j DROP",
        ]);
        expect(rules).toContain("-A WG-RELAY-ACCESS -s 10.10.0.3/32 -d 192.168.2.0/24 -m comment --comment wg-relay:laptop -j ACCEPT");
        const second = renderAccessRules(sites.relays[1]);
        expect(second).toContain("-A WG-RELAY-ACCESS -s 10.10.1.3/32 -d 192.168.1.0/24 -m comment --comment wg-relay:laptop -j ACCEPT");
        expect(second).not.toContain("site to site");
    });

    it("renders the client's failover unit: root with network capabilities only, reading what to move from the installed template", () => {
        const unit = renderFailoverUnit({ relayNames: ["relay", "relay2"], intervalSeconds: 2 });
        expectGolden("client/etc/systemd/system/wg-relay-failover.service", unit);
        expect(unit).toContain(
            "ExecStart=/bin/bash -c 'while :; do /usr/local/lib/wg-relay/wg-failover /run/wg-relay-failover /etc/wg-relay/wg0.public-keys wg0 /etc/wg-relay/wg0.template.conf || true; sleep 2; done'\n",
        );
        expect(unit).toContain("Description=wg-relay failover: the LAN routes go through the first relay that answers (relay, then relay2), checked every 2 s\n");
        expect(unit).toContain("CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\n");
        expect(unit).toContain("RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK\n");
        expect(unit).not.toContain("DynamicUser");
    });

    it("renders the client's transport unit (auto): root with network capabilities only, reading its relay's endpoints from the installed template", () => {
        const unit = renderAutoTransportUnit({ relayName: "relay", intervalSeconds: 2 });
        expectGolden("peer/etc/systemd/system/wg-relay-transport.service", unit);
        expect(unit).toContain(
            "ExecStart=/bin/bash -c 'while :; do /usr/local/lib/wg-relay/wg-transport /run/wg-relay-transport /etc/wg-relay/wg0.public-keys wg0 /etc/wg-relay/wg0.template.conf || true; sleep 2; done'\n",
        );
        expect(unit).toContain("CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\n");
        expect(unit).not.toContain("DynamicUser");
        const directive = autoTransportDirective({ relayName: "relay", udpEndpoint: "198.51.100.10:51820", wstunnelEndpoint: "127.0.0.1:51820", relayAddress: "10.10.0.1", ownAddress: "10.10.0.3" });
        expect(directive).toBe("wg-relay transport auto: relay 198.51.100.10:51820 127.0.0.1:51820 10.10.0.1 10.10.0.3");
    });

    it("renders a peer's staged switch unit: root, writing only where the staged files go and wg0.conf", () => {
        const files = ["/etc/wg-relay/wg0.public-keys", "/etc/systemd/system/wg-relay-wstunnel-client.service", "/etc/wg-relay/tls/relay-ca.crt", "/etc/wg-relay/tls/client.pem"];
        const unit = renderStagedSwitchUnit({
            relayAddress: "10.10.0.1",
            files,
            units: ["wg-relay-wstunnel-client.service"],
            applyCommand: "/usr/local/lib/wg-relay/wg-apply --when-complete /etc/wg-relay/wg0.template.conf /etc/wg-relay/wg0.public-keys /etc/wireguard/wg0.conf /var/lib/wg-relay/wg0.applied.conf",
            intervalSeconds: 5,
        });
        expectGolden("peer/etc/systemd/system/wg-relay-staged-switch.service", unit);
        expect(unit).toContain(
            `ExecStart=/bin/bash -c 'while :; do /usr/local/lib/wg-relay/staged-switch /run/wg-relay-staged-switch /etc/wg-relay/staged /var/lib/wg-relay/staged-previous 10.10.0.1 wg-relay-wstunnel-client.service ${files.join(" ")} -- /usr/local/lib/wg-relay/wg-apply --when-complete`,
        );
        // No optional ("-") folder: one missing at start would stay read-only for the unit's life.
        expect(unit).toContain("ReadWritePaths=/etc/systemd/system /etc/wg-relay /etc/wireguard\n");
        expect(unit).toContain("StateDirectory=wg-relay\nStateDirectoryMode=0700\n");
        expect(unit).not.toContain("DynamicUser");
        // Each file is staged under its own name, so the names must differ.
        expect(new Set(files.map(stagedPath)).size).toBe(files.length);
        expect(stagedPath(files[1])).toBe("/etc/wg-relay/staged/wg-relay-wstunnel-client.service");
    });

    it("puts the failover directive in the client's template, where wg-failover reads it, the relays in the client's order", () => {
        const directive = failoverDirective({
            routes: ["192.168.1.0/24", "192.168.2.0/24"],
            relays: [
                { name: "relay2", tunnelSubnet: "10.10.1.0/24", relayAddress: "10.10.1.1", ownAddress: "10.10.1.3" },
                { name: "relay", tunnelSubnet: "10.10.0.0/24", relayAddress: "10.10.0.1", ownAddress: "10.10.0.3" },
            ],
        });
        expect(directive).toBe("wg-relay failover: 192.168.1.0/24,192.168.2.0/24 relay2,10.10.1.0/24,10.10.1.1,10.10.1.3 relay,10.10.0.0/24,10.10.0.1,10.10.0.3");
        const conf = renderWgQuickConf({ title: "t", interface: { address: "10.10.0.3/24", mtu: 1420, privateKey: { file: "/k" }, hooks: [] }, peers: [], directives: [directive] });
        expect(conf).toContain(`change the stack config instead.\n# ${directive}\n[Interface]\n`);
    });

    it("sends the heartbeat to every relay's tunnel address", () => {
        const unit = renderHeartbeatUnit({ relayTunnelAddresses: ["10.10.0.1", "10.10.1.1"], intervalSeconds: 5 });
        expect(unit).toContain("ExecStart=/bin/bash -c 'while :; do echo >/dev/udp/10.10.0.1/9 2>/dev/null || true; echo >/dev/udp/10.10.1.1/9 2>/dev/null || true; sleep 5; done'\n");
    });
});

describe("IPv6 inside the tunnel", () => {
    const comment = "-m comment --comment wg-relay";
    const ipv6 = parseStackConfig({
        ...validConfig(),
        tunnel: { ipv6: { enabled: true, prefix: "fd12:3456:789a::/64" } },
        gateways: [{ name: "rpi1", tunnelAddress: "10.10.0.2", lanSubnets: ["192.168.1.0/24", "fd00:1::/64"], ssh: { host: "192.168.1.130", user: "pi", hostKey: testHostKey } }],
        clients: [
            { name: "laptop", tunnelAddress: "10.10.0.3" },
            { name: "phone", tunnelAddress: "10.10.0.4", access: [{ to: "fd00:1::20", protocol: "tcp", ports: [80] }, { to: "rpi1", protocol: "icmp" }, { to: "laptop" }] },
            { name: "tablet", tunnelAddress: "10.10.0.5", access: [{ to: "192.168.1.20" }] },
        ],
    } as Record<string, unknown>);
    const [v6relay] = ipv6.relays;
    const [v6gateway] = ipv6.gateways;
    const [v6laptop] = ipv6.clients;

    it("gives the relay both addresses, each peer its /128 and a gateway its IPv6 LANs, and the access chain for ip6tables", () => {
        const peers = [
            { ...v6gateway, role: "gateway" as const },
            { ...v6laptop, role: "client" as const, lanSubnets: [] },
        ];
        const conf = relayWgQuickConf(v6relay, peers, new Set());
        const template = renderWgQuickConf(conf);
        expect(template).toContain("Address = 10.10.0.1/24, fd12:3456:789a::1/64\n");
        expect(template).toContain("AllowedIPs = 10.10.0.2/32, fd12:3456:789a::2/128, 192.168.1.0/24, fd00:1::/64\n");
        expect(template).toContain("AllowedIPs = 10.10.0.3/32, fd12:3456:789a::3/128\n");
        expect(template.split("\n").filter((line) => /^Post(Up|Down) = ip6tables/.test(line))).toEqual([
            "PostUp = ip6tables-restore -w --noflush /etc/wg-relay/access6.rules",
            "PostUp = ip6tables -I FORWARD -i %i -j WG-RELAY-EGRESS -m comment --comment wg-relay",
            "PostUp = ip6tables -I FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay",
            "PostUp = ip6tables -I INPUT -i %i -j WG-RELAY-INPUT -m comment --comment wg-relay",
            `PostUp = ip6tables -I INPUT -i %default-route-dev -p udp --dport 51820 -j DROP ${comment}`,
            `PostDown = ip6tables -D INPUT -i %default-route-dev -p udp --dport 51820 -j DROP ${comment}`,
            "PostDown = ip6tables -D INPUT -i %i -j WG-RELAY-INPUT -m comment --comment wg-relay",
            "PostDown = ip6tables -D FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay",
            "PostDown = ip6tables -D FORWARD -i %i -j WG-RELAY-EGRESS -m comment --comment wg-relay",
            "PostDown = ip6tables -w -F WG-RELAY-ACCESS && ip6tables -w -X WG-RELAY-ACCESS && ip6tables -w -F WG-RELAY-INPUT && ip6tables -w -X WG-RELAY-INPUT && ip6tables -w -F WG-RELAY-EGRESS && ip6tables -w -X WG-RELAY-EGRESS",
        ]);
        // The doctor checks the ip6tables rules as it checks the iptables ones.
        expect(relayPlan(v6relay, peers, ipv6.wstunnel).firewallRules.filter((rule) => rule.startsWith("ip6tables -I"))).toEqual([
            "ip6tables -I FORWARD -i %i -j WG-RELAY-EGRESS -m comment --comment wg-relay",
            "ip6tables -I FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay",
            "ip6tables -I INPUT -i %i -j WG-RELAY-INPUT -m comment --comment wg-relay",
            `ip6tables -I INPUT -i %default-route-dev -p udp --dport 51820 -j DROP ${comment}`,
        ]);
    });

    it("splits each client's grants by family: the IPv6 file has the IPv6 half, with ICMPv6's errors and ipv6-icmp", () => {
        const six = renderAccessRules(v6relay, "ipv6");
        expect(six.split("\n")[0]).toBe("# Managed by wg-relay: `pulumi up` rewrites this file and loads it with `ip6tables-restore --noflush`.");
        expect(chain(six, "WG-RELAY-ACCESS")).toEqual([
            "-A WG-RELAY-ACCESS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A WG-RELAY-ACCESS -p ipv6-icmp -m icmp6 --icmpv6-type destination-unreachable -j ACCEPT",
            "-A WG-RELAY-ACCESS -p ipv6-icmp -m icmp6 --icmpv6-type packet-too-big -j ACCEPT",
            "-A WG-RELAY-ACCESS -p ipv6-icmp -m icmp6 --icmpv6-type time-exceeded -j ACCEPT",
            "-A WG-RELAY-ACCESS -p ipv6-icmp -m icmp6 --icmpv6-type parameter-problem -j ACCEPT",
            "-A WG-RELAY-ACCESS -s fd12:3456:789a::3/128 -d fd00:1::/64 -m comment --comment wg-relay:laptop -j ACCEPT",
            "-A WG-RELAY-ACCESS -s fd12:3456:789a::4/128 -d fd00:1::20/128 -p tcp -m multiport --dports 80 -m comment --comment wg-relay:phone -j ACCEPT",
            "-A WG-RELAY-ACCESS -s fd12:3456:789a::4/128 -d fd00:1::/64 -p ipv6-icmp -m comment --comment wg-relay:phone -j ACCEPT",
            "-A WG-RELAY-ACCESS -s fd12:3456:789a::4/128 -d fd12:3456:789a::3/128 -m comment --comment wg-relay:phone -j ACCEPT",
            "-A WG-RELAY-ACCESS -j DROP",
        ]);
        expect(six).toContain("# phone (fd12:3456:789a::4) to rpi1 (gateway: fd00:1::/64), icmp\n");
        // The relay itself: ICMPv6 errors only (failover and heartbeat use IPv4).
        expect(chain(six, "WG-RELAY-INPUT")).toEqual([
            "-A WG-RELAY-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A WG-RELAY-INPUT -p ipv6-icmp -m icmp6 --icmpv6-type destination-unreachable -j ACCEPT",
            "-A WG-RELAY-INPUT -p ipv6-icmp -m icmp6 --icmpv6-type packet-too-big -j ACCEPT",
            "-A WG-RELAY-INPUT -p ipv6-icmp -m icmp6 --icmpv6-type time-exceeded -j ACCEPT",
            "-A WG-RELAY-INPUT -p ipv6-icmp -m icmp6 --icmpv6-type parameter-problem -j ACCEPT",
            "-A WG-RELAY-INPUT -j DROP",
        ]);
        // The IPv4 file: the same grants' IPv4 half; the tablet, limited to an IPv4 host, opens nothing over IPv6.
        expect(
            renderAccessRules(v6relay)
                .split("\n")
                .filter((line) => line.startsWith("-A WG-RELAY-ACCESS -s")),
        ).toEqual([
            "-A WG-RELAY-ACCESS -s 10.10.0.3/32 -d 192.168.1.0/24 -m comment --comment wg-relay:laptop -j ACCEPT",
            "-A WG-RELAY-ACCESS -s 10.10.0.4/32 -d 192.168.1.0/24 -p icmp -m comment --comment wg-relay:phone -j ACCEPT",
            "-A WG-RELAY-ACCESS -s 10.10.0.4/32 -d 10.10.0.3/32 -m comment --comment wg-relay:phone -j ACCEPT",
            "-A WG-RELAY-ACCESS -s 10.10.0.5/32 -d 192.168.1.20/32 -m comment --comment wg-relay:tablet -j ACCEPT",
        ]);
        expect(loadAccessRulesScript("/etc/wg-relay/access6.rules", "ipv6")).toBe(
            "if ip6tables -w -n -L WG-RELAY-ACCESS >/dev/null 2>&1; then ip6tables-restore -w --noflush /etc/wg-relay/access6.rules; fi",
        );
    });

    it("has the gateway forward, protect and masquerade IPv6 like IPv4, and route the tunnel's prefix to the relay", () => {
        const template = renderWgQuickConf(gatewayWgQuickConf(v6gateway, ipv6.tunnel, [relayForPeers]));
        expect(template).toContain("Address = 10.10.0.2/24, fd12:3456:789a::2/64\n");
        expect(template).toContain("AllowedIPs = 10.10.0.0/24, fd12:3456:789a::/64\n");
        expect(template.split("\n").filter((line) => line.startsWith("PostUp = "))).toEqual([
            `PostUp = iptables -A FORWARD -i %i -o %default-route-dev -d 192.168.1.0/24 -j ACCEPT ${comment}`,
            `PostUp = ip6tables -A FORWARD -i %i -o %default-route-dev -d fd00:1::/64 -j ACCEPT ${comment}`,
            `PostUp = iptables -A FORWARD -i %default-route-dev -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT ${comment}`,
            `PostUp = ip6tables -A FORWARD -i %default-route-dev -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT ${comment}`,
            `PostUp = iptables -I INPUT -i %default-route-dev -d 10.10.0.2/32 -j DROP ${comment}`,
            `PostUp = ip6tables -I INPUT -i %default-route-dev -d fd12:3456:789a::2/128 -j DROP ${comment}`,
            `PostUp = iptables -t nat -A POSTROUTING -s 10.10.0.0/24 -o %default-route-dev -j MASQUERADE ${comment}`,
            `PostUp = ip6tables -t nat -A POSTROUTING -s fd12:3456:789a::/64 -o %default-route-dev -j MASQUERADE ${comment}`,
        ]);
    });

    it("links sites only within a family", () => {
        const hooks = firewallHooks(
            gatewayFirewallRules({
                relays: [{ tunnelSubnet: "10.10.0.0/24", ownAddress: "10.10.0.2" }],
                lanInterface: "eth0",
                lanSubnets: ["192.168.1.0/24", "fd00:1::/64"],
                siteRoutes: ["192.168.2.0/24", "fd00:2::/64"],
                masquerade: false,
                ipv6: { tunnelPrefix: "fd12:3456:789a::/64", tunnelAddress: "fd12:3456:789a::2" },
                clampMss: false,
            }),
        ).map((hook) => hook.up);
        expect(hooks.filter((rule) => rule.includes(" -s "))).toEqual([
            `iptables -A FORWARD -i eth0 -o %i -s 192.168.1.0/24 -d 192.168.2.0/24 -j ACCEPT ${comment}`,
            `ip6tables -A FORWARD -i eth0 -o %i -s fd00:1::/64 -d fd00:2::/64 -j ACCEPT ${comment}`,
        ]);
    });

    it("gives a client both families: its addresses, the tunnel's prefix and IPv6 LANs, and IPv6 LANs beside a full IPv4 tunnel", () => {
        const settings = {
            client: v6laptop,
            tunnel: ipv6.tunnel,
            relayHost: "198.51.100.10",
            relays: [{ name: "relay", tunnelSubnet: "10.10.0.0/24", ownAddress: "10.10.0.3", publicKey: { inline: "RELAY-PUBLIC-KEY" }, endpoint: "127.0.0.1:51820" }],
            privateKey: { inline: "CLIENT-PRIVATE-KEY" },
            stockApp: false,
        };
        const conf = renderWgQuickConf(clientWgQuickConf(settings));
        expect(conf).toContain("Address = 10.10.0.3/24, fd12:3456:789a::3/64\n");
        expect(conf).toContain("AllowedIPs = 10.10.0.0/24, fd12:3456:789a::/64, 192.168.1.0/24, fd00:1::/64\n");
        const full = renderWgQuickConf(clientWgQuickConf({ ...settings, client: { ...v6laptop, fullTunnel: true } }));
        expect(full).toContain("AllowedIPs = 0.0.0.0/0, fd12:3456:789a::/64, fd00:1::/64\n");
    });

    it("forwards IPv6 on routers, keeping router advertisements on their own uplink", () => {
        expect(renderForwardingSysctl({ ipv6UpstreamInterface: "eth0.10", congestionControl: "system" }).split("\n").filter((line) => line.startsWith("net."))).toEqual([
            "net.ipv4.ip_forward = 1",
            "net.ipv6.conf.all.forwarding = 1",
            "net.ipv6.conf.eth0/10.accept_ra = 2",
        ]);
    });
});
