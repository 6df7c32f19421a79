import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientWgQuickConf } from "../../components/roamingClient";
import { gatewayFirewallRules } from "../../components/lanGateway";
import { relayFirewallRules } from "../../components/vpsRelay";
import { renderWgApplyScript, renderWstunnelInstallScript } from "../../components/render/scripts";
import { renderForwardingSysctl } from "../../components/render/sysctl";
import { firewallHooks, relayAsPeer, renderWgQuickConf } from "../../components/render/wireguard";
import {
    renderWstunnelClientUnit,
    renderWstunnelClientEnvironment,
    renderWstunnelRestrictions,
    renderWstunnelServerUnit,
    wstunnelClientArgs,
    logRedaction,
    wstunnelServerArgs,
} from "../../components/render/wstunnel";
import { expectGolden } from "./golden";

const relayKey = "ynRPOclI5PZ22Cb8eu/HbwXmh0jWX38tM6W0XACiR1k=";
const gatewayKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const clientKey = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

const relayRules = relayFirewallRules({
    tunnelSubnet: "10.10.0.0/24",
    publicInterface: "eth0",
    wireguardPort: 51820,
    allowDirectUdp: false,
    internetEgress: true,
});

describe("wg-quick conf", () => {
    it("renders the relay with a peer per gateway and client, the key kept in its own file", () => {
        const conf = renderWgQuickConf({
            title: "wg-relay relay relay",
            interface: { address: "10.10.0.1/24", listenPort: 51820, mtu: 1320, privateKey: { file: "/etc/wireguard/wg0.key" }, hooks: firewallHooks(relayRules) },
            peers: [
                {
                    description: "rpi1 (gateway)",
                    publicKey: gatewayKey,
                    presharedKey: { file: "/etc/wireguard/psk/rpi1.psk" },
                    allowedIps: ["10.10.0.2/32", "192.168.1.0/24"],
                },
                { description: "laptop (client)", publicKey: clientKey, allowedIps: ["10.10.0.3/32"] },
            ],
        });
        expectGolden("relay-wg0.conf", conf);
        expect(conf).not.toMatch(/PrivateKey|PresharedKey/);
        expect(conf).toContain(`PostUp = wg set %i peer ${gatewayKey} preshared-key /etc/wireguard/psk/rpi1.psk`);
    });

    it("renders the gateway with the local wstunnel listener as endpoint and the whole tunnel subnet allowed", () => {
        const conf = renderWgQuickConf({
            title: "wg-relay LAN gateway rpi1",
            interface: {
                address: "10.10.0.2/24",
                mtu: 1320,
                privateKey: { file: "/etc/wireguard/wg0.key" },
                hooks: firewallHooks(gatewayFirewallRules({ tunnelSubnet: "10.10.0.0/24", lanInterface: "eth0", lanSubnets: ["192.168.1.0/24"], masquerade: true })),
            },
            peers: [relayAsPeer({ publicKey: relayKey, allowedIps: ["10.10.0.0/24"], endpoint: "127.0.0.1:51820", keepaliveSeconds: 25 })],
        });
        expectGolden("gateway-wg0.conf", conf);
        expect(conf).toContain("Endpoint = 127.0.0.1:51820");
        expect(conf).not.toContain(":443");
    });

    const clientSpec = {
        name: "laptop",
        tunnelAddress: "10.10.0.3",
        tunnelSubnet: "10.10.0.0/24",
        mtu: 1320,
        keepaliveSeconds: 25,
        relayPublicKey: relayKey,
        relayPublicAddress: "198.51.100.10",
        endpoint: "127.0.0.1:51820",
        routes: ["192.168.1.0/24"],
        fullTunnel: false,
        privateKey: { inline: "CLIENT-PRIVATE-KEY" },
    };

    it("renders a split-tunnel client bundle conf with the key inline", () => {
        const conf = renderWgQuickConf(clientWgQuickConf(clientSpec));
        expectGolden("client-split-wg0.conf", conf);
        expect(conf).toContain("AllowedIPs = 10.10.0.0/24, 192.168.1.0/24");
    });

    it("inlines a preshared key in a client bundle's conf", () => {
        const conf = renderWgQuickConf(clientWgQuickConf({ ...clientSpec, presharedKey: { inline: "CLIENT-PRESHARED-KEY" } }));
        expect(conf).toMatch(/PublicKey = .*\nPresharedKey = CLIENT-PRESHARED-KEY\nAllowedIPs/);
    });

    it("keeps the relay's address outside a full tunnel", () => {
        const conf = renderWgQuickConf(clientWgQuickConf({ ...clientSpec, fullTunnel: true }));
        expectGolden("client-full-wg0.conf", conf);
        expect(conf).toContain("AllowedIPs = 0.0.0.0/0");
        expect(conf).toContain("PostUp = ip -4 rule add to 198.51.100.10/32 lookup main priority 100");
        expect(conf).toContain("PostDown = ip -4 rule del to 198.51.100.10/32 lookup main priority 100");
    });
});

describe("firewall hooks", () => {
    const pairs = (rules: ReturnType<typeof relayFirewallRules>) => firewallHooks(rules);

    it.each([
        ["relay", relayRules],
        ["relay with direct UDP and no egress", relayFirewallRules({ tunnelSubnet: "10.10.0.0/24", publicInterface: "ens3", wireguardPort: 51820, allowDirectUdp: true, internetEgress: false })],
        ["gateway", gatewayFirewallRules({ tunnelSubnet: "10.10.0.0/24", lanInterface: "eth0", lanSubnets: ["192.168.1.0/24", "192.168.2.0/24"], masquerade: true })],
        ["gateway without masquerading", gatewayFirewallRules({ tunnelSubnet: "10.10.0.0/24", lanInterface: "eth0", lanSubnets: ["192.168.1.0/24"], masquerade: false })],
    ])("PostDown of the %s deletes exactly what PostUp added", (_name, rules) => {
        for (const hook of pairs(rules)) {
            const added = hook.up.replace(/ -[AI] /, " ");
            const deleted = hook.down!.replace(/ -D /, " ");
            expect(deleted).toBe(added);
        }
    });

    it("drops WireGuard's UDP port on the public interface unless direct UDP is allowed", () => {
        const drop = "-i eth0 -p udp --dport 51820 -j DROP";
        expect(relayRules.some((rule) => rule.spec === drop && rule.insert)).toBe(true);
        const open = relayFirewallRules({ tunnelSubnet: "10.10.0.0/24", publicInterface: "eth0", wireguardPort: 51820, allowDirectUdp: true, internetEgress: false });
        expect(open.some((rule) => rule.spec.includes("DROP"))).toBe(false);
    });

    it("masquerades onto the LAN only when asked", () => {
        const spec = { tunnelSubnet: "10.10.0.0/24", lanInterface: "eth0", lanSubnets: ["192.168.1.0/24"] };
        expect(gatewayFirewallRules({ ...spec, masquerade: true }).filter((rule) => rule.spec.includes("MASQUERADE"))).toHaveLength(1);
        expect(gatewayFirewallRules({ ...spec, masquerade: false }).filter((rule) => rule.spec.includes("MASQUERADE"))).toHaveLength(0);
    });
});

describe("wstunnel", () => {
    it("restricts the server to the local WireGuard port and keeps the path prefix out of the command line", () => {
        const spec = { listenPort: 443, wireguardPort: 51820, certificateFile: "/etc/wg-relay/tls/server.crt", privateKeyFile: "/etc/wg-relay/tls/server.key", restrictionsFile: "/etc/wg-relay/wstunnel-restrictions.yaml" };
        expect(wstunnelServerArgs({ ...spec, certificateFile: "c", privateKeyFile: "k", restrictionsFile: "r" })).toEqual([
            "server", "--tls-certificate", "c", "--tls-private-key", "k", "--restrict-config", "r", "wss://0.0.0.0:443",
        ]);
        const unit = renderWstunnelServerUnit(spec);
        expectGolden("wg-relay-wstunnel-server.service", unit);
        expect(unit).toContain("Before=wg-quick@wg0.service");
        expect(unit).toContain("AmbientCapabilities=CAP_NET_BIND_SERVICE");
        expect(unit).toContain("LoadCredential=restrictions.yaml:/etc/wg-relay/wstunnel-restrictions.yaml");
        expect(unit).not.toMatch(/^User=root/m);
    });

    it("names the server's only rule without the prefix, and allows UDP to local WireGuard only", () => {
        const restrictions = renderWstunnelRestrictions({ pathPrefix: "abcDEF123", wireguardPort: 51820 });
        expectGolden("wstunnel-restrictions.yaml", restrictions);
        const name = /name: "(.*)"/.exec(restrictions)![1];
        expect(name).not.toContain("abcDEF123");
        expect(restrictions).toContain('!PathPrefix "^abcDEF123$"');
        expect(() => renderWstunnelRestrictions({ pathPrefix: "a.*", wireguardPort: 51820 })).toThrow(/URL- and shell-safe/);
    });

    it("redacts request paths in wstunnel's rejection warnings, and only there", () => {
        const sed = (line: string) => execFileSync("sh", ["-c", logRedaction], { input: `${line}\n`, encoding: "utf8" }).trim();
        // The line shapes of wstunnel 10.6.2's server (tunnel/server/handler_websocket.rs, server.rs).
        expect(sed("WARN wstunnel::tunnel::server::handler_websocket: Rejecting connection with bad upgrade request: /s3cretPrefix/events")).toBe(
            "WARN wstunnel::tunnel::server::handler_websocket: Rejecting connection with bad upgrade request: /<path redacted>",
        );
        expect(sed("WARN cnx: Rejecting connection with bad tunnel info: invalid remote https://relay:443/s3cretPrefix/events?x=1")).not.toContain("s3cretPrefix");
        expect(sed("INFO Tunnel accepted due to matched restriction: wg-relay: WireGuard on 127.0.0.1:51820")).toBe(
            "INFO Tunnel accepted due to matched restriction: wg-relay: WireGuard on 127.0.0.1:51820",
        );
    });

    it("has the client listen on loopback UDP without an idle timeout and verify the relay's certificate", () => {
        const spec = { localPort: 51820, relayHost: "sync.c0xl.ch", relayPort: 443, wireguardPort: 51820 };
        expect(wstunnelClientArgs(spec)).toEqual([
            "client", "--local-to-remote", "udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0", "--tls-verify-certificate", "wss://sync.c0xl.ch:443",
        ]);
        expectGolden("wg-relay-wstunnel-client.service", renderWstunnelClientUnit({ ...spec, environmentFile: "/etc/wg-relay/wstunnel-client.env" }));
    });

    it("puts the client's prefix in an environment file and refuses one that would break it", () => {
        expect(renderWstunnelClientEnvironment("abcDEF123")).toBe("WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX=abcDEF123\n");
        expect(() => renderWstunnelClientEnvironment("a b")).toThrow(/URL- and shell-safe/);
    });
});

describe("host scripts", () => {
    it("renders the forwarding sysctl", () => {
        expectGolden("90-wg-relay.conf", renderForwardingSysctl());
    });

    it("renders wg-apply as valid bash that syncs peers with the key fed back in", () => {
        const script = renderWgApplyScript();
        expectGolden("wg-apply", script);
        execFileSync("bash", ["-n"], { input: script });
        expect(script).toContain("wg syncconf");
        expect(script).toMatch(/PrivateKey = %s.*\$\(<"\$key"\)/);
    });

    it("renders wstunnel-install as valid bash with a checksum per architecture", () => {
        const script = renderWstunnelInstallScript({
            version: "10.6.2",
            baseUrl: "https://github.com/erebe/wstunnel/releases/download",
            sha256: { amd64: "a".repeat(64), arm64: "b".repeat(64) },
        });
        expectGolden("wstunnel-install", script);
        execFileSync("bash", ["-n"], { input: script });
        expect(script).toContain(`amd64) want="${"a".repeat(64)}"`);
        expect(script).toContain(`armv7) want=""`);
        expect(script).toContain("wstunnel_10.6.2_linux_$arch.tar.gz");
    });

    describe("wstunnel-install run for real, on paths that stop before installing", () => {
        let dir: string;
        beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "wg-relay-install-"))));
        afterEach(() => rmSync(dir, { recursive: true, force: true }));

        const run = (sha256: Record<string, string>, args: string[]) =>
            spawnSync("bash", ["-s", "--", "wg-relay-test.service", ...args], {
                input: renderWstunnelInstallScript({ version: "10.6.2", baseUrl: "https://invalid.example", sha256 }),
                encoding: "utf8",
            });

        it("refuses an uploaded binary whose checksum differs, saying both digests", () => {
            const file = join(dir, "wstunnel");
            writeFileSync(file, "not the binary we expect");
            const result = run({}, ["--local", file, "0".repeat(64)]);
            expect(result.status).toBe(1);
            expect(result.stderr).toMatch(/SHA-256 mismatch for uploaded .*expected 0{64}, got [0-9a-f]{64}; keeping the installed binary/);
        });

        it("says which config key is missing when this architecture has no checksum", () => {
            const result = run({ armv7: "a".repeat(64) }, []);
            expect(result.status).toBe(1);
            expect(result.stderr).toMatch(/no SHA-256 configured for wstunnel 10\.6\.2 on (amd64|arm64) \(set wg-relay:wstunnel\.sha256\.(amd64|arm64)/);
        });
    });
});
