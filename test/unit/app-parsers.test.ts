// Every client conf the program renders, parsed by the WireGuard apps' own parsers:
// - wireguard-android's com.wireguard.config.Config.parse (the com.wireguard.android:tunnel library, on the JVM)
// - wireguard-windows' conf package (a Windows program built from the Go module, under Wine)
// both built by lab/conf-parsers.sh (lab/toolchain.sh runs it), and
// - the iOS/macOS app's rules (wireguard-apple, TunnelConfiguration+WgQuickConfig.swift), which cannot run here:
//   restated below, in this file's own code, where they are stricter than the other two.
// `npm test` skips the first two, saying so, when the harnesses are not built; `npm run test:all` requires them.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStackConfig, StackConfigInput } from "../../components/config";
import { renderClientBundle } from "../../components/roamingClient";
import { relayAddress } from "../../components/vpsRelay";
import { testHostKey, validConfig } from "./fixtures";

const repo = join(__dirname, "..", "..");
const parsersDir = execFileSync("bash", [join(repo, "lab", "conf-parsers.sh"), "--dir"], { encoding: "utf8" }).trim();
const parsers = { android: join(parsersDir, "android", "parse"), windows: join(parsersDir, "windows", "parse") };
const parsersBuilt = Object.values(parsers).every((path) => existsSync(path));
const parsersRequired = process.env.WG_RELAY_REQUIRE_APP_PARSERS === "1";

/** A key of the right form (32 bytes, base64), distinct per seed: the parsers check form, not the curve. */
const key = (seed: number) => Buffer.alloc(32, seed).toString("base64");

/** Every conf of every client of a stack config, by a name saying which. */
function confsOf(label: string, input: StackConfigInput): Record<string, string> {
    const network = parseStackConfig(input as Record<string, unknown>);
    const relays = network.relays.map((relay, index) => ({
        peerName: relay.name,
        tunnelSubnet: relay.tunnel.subnet,
        wstunnelLocalPort: relay.wstunnelLocalPort,
        peers: relay.peers,
        address: relayAddress(relay),
        publicKey: key(100 + index),
    }));
    const confs: Record<string, string> = {};
    network.clients.forEach((client, index) => {
        const bundle = renderClientBundle({
            client,
            tunnel: network.tunnel,
            relays,
            privateKey: key(index + 1),
            presharedKey: client.presharedKey ? key(200 + index) : undefined,
            pathPrefix: client.transport === "wstunnel" ? "Prefix0123456789abcdef" : undefined,
        });
        confs[`${label}-${client.name}`] = bundle.wireguardConf;
        for (const { port, wireguardConf } of bundle.udpPortConfs ?? []) {
            confs[`${label}-${client.name}-udp${port}`] = wireguardConf;
        }
        for (const relay of bundle.relays ?? []) {
            confs[`${label}-${client.name}-${relay.relay}`] = relay.wireguardConf;
        }
    });
    return confs;
}

const withDirectUdp = { ...validConfig().relay!, allowDirectUdp: true, udpPorts: [53, 443] };
const clientKinds: StackConfigInput["clients"] = [
    { name: "split", tunnelAddress: "10.10.0.3" },
    { name: "full", tunnelAddress: "10.10.0.4", fullTunnel: true },
    { name: "split-udp", tunnelAddress: "10.10.0.5", transport: "udp" },
    { name: "full-udp", tunnelAddress: "10.10.0.6", transport: "udp", fullTunnel: true },
    { name: "psk", tunnelAddress: "10.10.0.7", presharedKey: true },
];
const renderedConfs: Record<string, string> = {
    ...confsOf("one-relay", { ...validConfig(), relay: withDirectUdp, clients: clientKinds }),
    ...confsOf("ipv6", {
        ...validConfig(),
        relay: withDirectUdp,
        tunnel: { ipv6: { enabled: true } },
        gateways: [{ name: "rpi1", tunnelAddress: "10.10.0.2", lanSubnets: ["192.168.1.0/24", "fd00:1::/64"], ssh: { host: "192.168.1.130", user: "pi", hostKey: testHostKey } }],
        clients: clientKinds,
    }),
    ...confsOf("two-relays", {
        ...validConfig(),
        relay: undefined,
        relays: [withDirectUdp, { name: "relay2", ssh: { host: "198.51.100.20", hostKey: testHostKey }, tunnelSubnet: "10.10.1.0/24", allowDirectUdp: true, udpPorts: [53] }],
        clients: clientKinds.filter((client) => !client.fullTunnel),
    }),
};

/** Runs one parser harness on every conf; returns its line per file ("ok FILE" or "rejected FILE: WHY"). */
function parseAll(parser: string, confs: Record<string, string>): Record<string, string> {
    const dir = mkdtempSync(join(tmpdir(), "wg-relay-app-parsers-"));
    try {
        const files = Object.entries(confs).map(([name, text]) => {
            const file = join(dir, `${name}.conf`);
            writeFileSync(file, text);
            return file;
        });
        const output = execFileSync(parser, files, { encoding: "utf8", timeout: 120_000 });
        return Object.fromEntries(
            Object.keys(confs).map((name) => {
                const file = join(dir, `${name}.conf`);
                const line = output.split("\n").find((each) => each.startsWith(`ok ${file}`) || each.startsWith(`rejected ${file}:`));
                return [name, line === undefined ? "no answer" : line.replace(file, name)];
            }),
        );
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

const allAccepted = (confs: Record<string, string>) => Object.fromEntries(Object.keys(confs).map((name) => [name, `ok ${name}`]));

/** A conf these parsers must refuse: proof that a test here can fail. */
const withPostUp = (conf: string) => conf.replace("[Peer]", "PostUp = ip -4 rule add to 198.51.100.10/32 lookup main priority 100\n\n[Peer]");

// First run of the Windows harness makes its Wine prefix (about 20 s on 2 idle cores); the JVM starts in about 1 s.
jest.setTimeout(180_000);

(parsersBuilt || parsersRequired ? describe : describe.skip)("the WireGuard apps' own parsers accept every client conf", () => {
    beforeAll(() => {
        if (!parsersBuilt) {
            throw new Error(`the app parser harnesses are not built (${parsersDir}): run \`bash lab/conf-parsers.sh\` as root (lab/toolchain.sh does)`);
        }
    });

    it("has confs of every kind to parse", () => {
        expect(Object.keys(renderedConfs).sort()).toEqual(
            [
                ...["one-relay", "ipv6"].flatMap((label) => ["split", "full", "split-udp", "full-udp", "psk"].map((name) => `${label}-${name}`)),
                ...["one-relay", "ipv6"].flatMap((label) => ["split-udp", "full-udp"].flatMap((name) => [53, 443].map((port) => `${label}-${name}-udp${port}`))),
                ...["split", "split-udp", "psk"].flatMap((name) => ["", "-relay", "-relay2"].map((relay) => `two-relays-${name}${relay}`)),
                "two-relays-split-udp-udp53",
                "two-relays-split-udp-udp443",
            ].sort(),
        );
    });

    it("Android: com.wireguard.config.Config.parse", () => {
        expect(parseAll(parsers.android, renderedConfs)).toEqual(allAccepted(renderedConfs));
        expect(parseAll(parsers.android, { "post-up": withPostUp(renderedConfs["one-relay-full"]) })).toEqual({
            "post-up": "rejected post-up: INTERFACE TOP_LEVEL UNKNOWN_ATTRIBUTE PostUp",
        });
    });

    it("Windows: golang.zx2c4.com/wireguard/windows/conf", () => {
        expect(parseAll(parsers.windows, renderedConfs)).toEqual(allAccepted(renderedConfs));
        // Windows accepts PostUp (it runs scripts only when an administrator enables them), but not a bad key.
        const badKey = renderedConfs["one-relay-split"].replace(/^PrivateKey = .*$/m, "PrivateKey = not-a-key");
        expect(parseAll(parsers.windows, { "bad-key": badKey })["bad-key"]).toMatch(/^rejected bad-key: Invalid key/);
    });
});

if (!parsersBuilt && !parsersRequired) {
    console.warn(`app-parsers.test.ts: skipped the Android and Windows parsers: not built in ${parsersDir} (\`bash lab/conf-parsers.sh\` as root builds them)`);
}

/**
 * The iOS and macOS app's parser (wireguard-apple, Sources/Shared/Model/TunnelConfiguration+WgQuickConfig.swift at
 * 2fec12a6), restated here: it runs only on Apple's platforms. Where it is stricter than Android's and Windows': only
 * these keys (no Table, no PostUp, no FwMark), a key given twice only for Address, AllowedIPs and DNS, every other
 * line a section header; and, as they are, one [Interface] with a private key, every peer a public key, no two
 * peers with the same, 16-bit numbers, keys of 32 bytes.
 */
function appleParserProblems(conf: string): string[] {
    const sectionKeys: Record<string, Set<string>> = {
        interface: new Set(["privatekey", "listenport", "address", "dns", "mtu"]),
        peer: new Set(["publickey", "presharedkey", "allowedips", "endpoint", "persistentkeepalive"]),
    };
    const repeatable = new Set(["address", "allowedips", "dns"]);
    const sections: { kind: string; attributes: Map<string, string> }[] = [];
    const problems: string[] = [];
    for (const rawLine of conf.split(/\r?\n/)) {
        const line = rawLine.split("#")[0].trim();
        if (line === "") {
            continue;
        }
        const header = /^\[(interface|peer)\]$/i.exec(line);
        if (header) {
            sections.push({ kind: header[1].toLowerCase(), attributes: new Map() });
            continue;
        }
        const equals = line.indexOf("=");
        if (equals < 0) {
            problems.push(`invalid line: ${line}`);
            continue;
        }
        const name = line.slice(0, equals).trim().toLowerCase();
        const value = line.slice(equals + 1).trim();
        const section = sections.at(-1);
        if (section === undefined) {
            continue; // Apple's parser reads, and drops, attributes before any section
        }
        if (!sectionKeys[section.kind].has(name)) {
            problems.push(`unrecognized key in [${section.kind}]: ${line.slice(0, equals).trim()}`);
        }
        const present = section.attributes.get(name);
        if (present === undefined) {
            section.attributes.set(name, value);
        } else if (repeatable.has(name)) {
            section.attributes.set(name, `${present},${value}`);
        } else {
            problems.push(`key given twice: ${name}`);
        }
    }
    const isKey = (value: string | undefined) => value !== undefined && /^[A-Za-z0-9+/]{43}=$/.test(value) && Buffer.from(value, "base64").length === 32;
    const isUint16 = (value: string | undefined) => value === undefined || (/^\d+$/.test(value) && Number(value) <= 65535);
    const interfaces = sections.filter((section) => section.kind === "interface");
    if (interfaces.length !== 1) {
        problems.push(`${interfaces.length} [Interface] sections`);
    }
    for (const { attributes } of interfaces) {
        if (!isKey(attributes.get("privatekey"))) {
            problems.push("no valid PrivateKey");
        }
        for (const name of ["listenport", "mtu"]) {
            if (!isUint16(attributes.get(name))) {
                problems.push(`${name} not a 16-bit number`);
            }
        }
    }
    const peers = sections.filter((section) => section.kind === "peer");
    for (const { attributes } of peers) {
        if (!isKey(attributes.get("publickey"))) {
            problems.push("a peer without a valid PublicKey");
        }
        if (attributes.has("presharedkey") && !isKey(attributes.get("presharedkey"))) {
            problems.push("a peer with an invalid PresharedKey");
        }
        if (!isUint16(attributes.get("persistentkeepalive"))) {
            problems.push("persistentkeepalive not a 16-bit number");
        }
    }
    const publicKeys = peers.map(({ attributes }) => attributes.get("publickey"));
    if (new Set(publicKeys).size !== publicKeys.length) {
        problems.push("two peers with the same public key");
    }
    return problems;
}

describe("the iOS and macOS app's parser rules (restated from wireguard-apple's source, run here as this test's own code)", () => {
    it("accepts every client conf", () => {
        expect(Object.fromEntries(Object.entries(renderedConfs).map(([name, conf]) => [name, appleParserProblems(conf)]))).toEqual(
            Object.fromEntries(Object.keys(renderedConfs).map((name) => [name, []])),
        );
    });

    it("refuses what the app refuses: PostUp, Table, a key given twice, a stray line", () => {
        const conf = renderedConfs["one-relay-split"];
        expect(appleParserProblems(withPostUp(conf))).toEqual(["unrecognized key in [interface]: PostUp"]);
        expect(appleParserProblems(conf.replace("[Peer]", "Table = off\n\n[Peer]"))).toEqual(["unrecognized key in [interface]: Table"]);
        expect(appleParserProblems(conf.replace(/^(MTU = .*)$/m, "$1\n$1"))).toEqual(["key given twice: mtu"]);
        expect(appleParserProblems(conf.replace("[Peer]", "[Peer]\nnonsense"))).toEqual(["invalid line: nonsense"]);
    });
});
