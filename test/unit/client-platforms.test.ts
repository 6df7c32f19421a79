// What runs wstunnel beside the WireGuard app on macOS, Windows and Android (clients[].platform), against golden
// files, and read back by real parsers where one runs here: Python's plistlib for the launchd property list (the
// format launchd reads), Python's XML parser for the Task Scheduler task. Neither macOS's launchd nor Windows'
// Task Scheduler nor Android runs here: what they do with the files is not checked.
import { execFileSync } from "node:child_process";
import { parseStackConfig } from "../../components/config";
import { renderClientBundle } from "../../components/roamingClient";
import { relayAddress } from "../../components/vpsRelay";
import { renderAndroidScript, renderLaunchdPlist, renderWindowsCommand, renderWindowsTask } from "../../components/wstunnel/clientPlatforms";
import { validConfig } from "./fixtures";
import { expectGolden } from "./golden";

const settings = {
    localPort: 51820,
    relayHost: "sync.c0xl.ch",
    relayPort: 443,
    wireguardPort: 51820,
    pathPrefix: "PrefixPlaceholder0123",
    withCa: true,
    withClientCertificate: false,
    suffix: "",
};

/** Python reads the text from stdin and prints what it found, as JSON. */
const python = (script: string, input: string) => JSON.parse(execFileSync("python3", ["-c", script], { input, encoding: "utf8" }));

describe("client platforms: what runs wstunnel beside the WireGuard app", () => {
    it("macOS: a launchd daemon that plistlib reads, the prefix and the CA in its environment, not its arguments", () => {
        const plist = renderLaunchdPlist(settings);
        expectGolden("ch.wg-relay.wstunnel-client.plist", plist);
        const parsed = python("import json, plistlib, sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))", plist);
        expect(parsed).toEqual({
            Label: "ch.wg-relay.wstunnel-client",
            ProgramArguments: [
                "/usr/local/bin/wstunnel",
                "client",
                "--local-to-remote",
                "udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0",
                "--tls-verify-certificate",
                "wss://sync.c0xl.ch:443",
            ],
            EnvironmentVariables: { WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX: "PrefixPlaceholder0123", SSL_CERT_FILE: "/usr/local/etc/wg-relay/wg-relay-ca.crt", NO_COLOR: "true" },
            RunAtLoad: true,
            KeepAlive: true,
            StandardErrorPath: "/var/log/wg-relay-wstunnel-client.log",
        });
        // With mutual TLS, the certificate file beside the CA.
        const mutual = python("import json, plistlib, sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))", renderLaunchdPlist({ ...settings, withClientCertificate: true }));
        expect(mutual.ProgramArguments).toContain("/usr/local/etc/wg-relay/wg-relay-client.pem");
    });

    it("Windows: a Task Scheduler task that an XML parser reads, started at boot as SYSTEM, running the command file", () => {
        const task = renderWindowsTask(settings);
        expectGolden("wg-relay-wstunnel-client.xml", task);
        const parsed = python(
            [
                "import json, sys, xml.etree.ElementTree as ET",
                "ns = {'t': 'http://schemas.microsoft.com/windows/2004/02/mit/task'}",
                "root = ET.fromstring(sys.stdin.buffer.read())",
                "print(json.dumps({'user': root.find('t:Principals/t:Principal/t:UserId', ns).text, 'boot': root.find('t:Triggers/t:BootTrigger', ns) is not None,",
                "  'command': root.find('t:Actions/t:Exec/t:Command', ns).text, 'limit': root.find('t:Settings/t:ExecutionTimeLimit', ns).text}))",
            ].join("\n"),
            task,
        );
        expect(parsed).toEqual({ user: "S-1-5-18", boot: true, command: "C:\\ProgramData\\wg-relay\\wstunnel-client.cmd", limit: "PT0S" });
        const command = renderWindowsCommand(settings);
        expectGolden("wstunnel-client.cmd", command);
        expect(command.split("\r\n")).toContain('set "SSL_CERT_FILE=C:\\ProgramData\\wg-relay\\wg-relay-ca.crt"');
        expect(command.split("\r\n").filter((line) => line.includes("PrefixPlaceholder0123"))).toEqual(['set "WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX=PrefixPlaceholder0123"']);
    });

    it("Android: a Termux script for wstunnel's android_arm64 build, the CA in SSL_CERT_FILE; sh reads it", () => {
        const script = renderAndroidScript(settings);
        expectGolden("wstunnel-client-android.sh", script);
        expect(script).toContain("export SSL_CERT_FILE=/data/data/com.termux/files/home/wg-relay/wg-relay-ca.crt\n");
        execFileSync("sh", ["-n"], { input: script });
    });

    it("puts each platform's files in its bundle; iOS gets confs only", () => {
        const stack = parseStackConfig({
            ...validConfig(),
            relay: { ...validConfig().relay!, allowDirectUdp: true },
            clients: [
                { name: "mac", tunnelAddress: "10.10.0.3", platform: "macos" },
                { name: "pc", tunnelAddress: "10.10.0.4", platform: "windows" },
                { name: "droid", tunnelAddress: "10.10.0.5", platform: "android" },
                { name: "iphone", tunnelAddress: "10.10.0.6", platform: "ios", transport: "udp" },
                { name: "laptop", tunnelAddress: "10.10.0.7" },
            ],
        } as Record<string, unknown>);
        const relays = stack.relays.map((each) => ({ peerName: each.name, tunnelSubnet: each.tunnel.subnet, wstunnelLocalPort: each.wstunnelLocalPort, peers: each.peers, address: relayAddress(each), publicKey: "KEY" }));
        const files = Object.fromEntries(
            stack.clients.map((client) => {
                const bundle = renderClientBundle({ client, tunnel: stack.tunnel, relays, privateKey: "KEY", pathPrefix: client.transport === "udp" ? undefined : "Prefix1", caCertificate: "CA" });
                return [client.name, [...(bundle.platformFiles ?? []).map((file) => file.name), ...(bundle.wstunnelUnit ? ["unit"] : [])]];
            }),
        );
        expect(files).toEqual({
            mac: ["ch.wg-relay.wstunnel-client.plist"],
            pc: ["wstunnel-client.cmd", "wg-relay-wstunnel-client.xml"],
            droid: ["wstunnel-client.sh"],
            iphone: [],
            laptop: ["unit"],
        });
    });
});
