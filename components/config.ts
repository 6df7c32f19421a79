// The stack config: one zod schema is its only definition; every type the program uses comes from it.
// Parsing happens before any resource is registered, so bad input never reaches a host.
import { z } from "zod";
import { defaultRouteInterface } from "./render/interfaces";
import {
    Cidr,
    cidrContains,
    cidrsOverlap,
    formatNetwork,
    hostAddress,
    intToIp,
    ipToInt,
    ipv6HostAddress,
    IpNetwork,
    isIpv4,
    isIpv6,
    isNetworkOrBroadcast,
    networksOverlap,
    networkWithin,
    parseAddressOrNetwork,
    parseCidr,
    parseNetwork,
    uniqueLocalPrefix,
} from "./net";

/** Pulumi config namespace: keys are `wg-relay:<name>`. */
export const configNamespace = "wg-relay";

const hostnamePattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

const host = z
    .string()
    .refine((value) => isIpv4(value) || (hostnamePattern.test(value) && !/^[0-9.]+$/.test(value)), {
        message: "expected a DNS name or an IPv4 address",
    });
const port = z.number().int().min(1).max(65535);
const ipv4 = z.string().refine(isIpv4, { message: "expected an IPv4 address like 10.10.0.2" });
const cidr = z.string().refine((value) => parseCidr(value) !== undefined, {
    message: "expected an IPv4 network in CIDR form with no host bits set, like 192.168.1.0/24",
});
/** A LAN network of either family; IPv6 in its canonical text, as `ip` and `wg` print it back. */
const lanNetwork = z.string().superRefine((value, ctx) => {
    const network = parseNetwork(value);
    if (network === undefined) {
        ctx.addIssue({ code: "custom", message: "expected a network in CIDR form with no host bits set, like 192.168.1.0/24 or fd00:1::/64" });
    } else if (formatNetwork(network) !== value) {
        ctx.addIssue({ code: "custom", message: `expected the canonical form of this network: ${formatNetwork(network)}` });
    }
});
/** Names end up in file names, unit names and comments: keep them to a safe alphabet. */
const name = z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,30}$/, "expected a name of lowercase letters, digits and '-', starting with a letter, at most 31 characters");
const interfaceName = z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, "expected a network interface name like eth0");
const sshHostKey = z
    .string()
    // The command provider offers only the pinned key's own algorithm: for an RSA key that is SHA-1 `ssh-rsa`,
    // which OpenSSH 8.8 and later refuse ("no common algorithm for host key").
    .refine((value) => !value.startsWith("ssh-rsa "), {
        message:
            "an ssh-rsa host key cannot be pinned (it means SHA-1 RSA, which OpenSSH 8.8 and later refuse): pin the host's ssh-ed25519 or ecdsa-sha2-nistp256/384/521 key instead (/etc/ssh/ssh_host_ed25519_key.pub)",
    })
    .regex(
        /^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}$/,
        "expected an SSH host public key line like 'ssh-ed25519 AAAA...' (from /etc/ssh/ssh_host_ed25519_key.pub, without the comment)",
    );
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected a SHA-256 digest: 64 lowercase hex digits");
const rotation = z.number().int().min(0).default(0);
const wireguardKey = z
    .string()
    .refine((value) => /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(value), { message: "expected a WireGuard key: 44 characters of base64 (32 bytes), as `wg genkey` prints" });
/** Keys a peer already has (e.g. from wg-easy) instead of generated ones; the program handles them as secrets. */
const existingKeys = z
    .strictObject({
        privateKey: wireguardKey.describe("the peer's WireGuard private key"),
        presharedKey: wireguardKey.optional().describe("the preshared key it shares with the relay"),
    })
    .optional()
    .describe("keep this peer's existing WireGuard keys (e.g. imported from wg-easy) instead of generating them; set with `pulumi config set --secret --path`");

const sshFields = {
    host: host.describe("SSH host name or address"),
    port: port.default(22).describe("SSH port"),
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "expected a Unix user name").default("root").describe("SSH user; other users than root need passwordless sudo"),
    hostKey: sshHostKey
        .optional()
        .describe(
            "the host's SSH public key ('ssh-ed25519 AAAA...' or ecdsa-sha2-nistp256/384/521; not ssh-rsa), as `ssh-keyscan -t ed25519 HOST` prints it (check it against /etc/ssh/ssh_host_ed25519_key.pub on the host); any other key is refused. Required unless trustOnFirstUse",
        ),
    trustOnFirstUse: z
        .boolean()
        .default(false)
        .describe(
            "without a hostKey: the first `pulumi up` records the ssh-ed25519 key the host presents (ssh-keyscan on the machine running Pulumi), keeps it in the stack's state and refuses any other key after that. The risk: whatever answers at that address on that first run is trusted and receives the host's secrets; pin hostKey where you can",
        ),
};

/** Every secret for a host travels over its SSH connection: its key is pinned, or trusted on first use only when asked. */
function requirePinnedHostKey(ssh: { host: string; port: number; hostKey?: string; trustOnFirstUse: boolean }, ctx: z.RefinementCtx): void {
    if (ssh.hostKey === undefined && !ssh.trustOnFirstUse) {
        const scan = `ssh-keyscan -t ed25519 ${ssh.port === 22 ? "" : `-p ${ssh.port} `}${ssh.host}`;
        ctx.addIssue({
            code: "custom",
            path: ["hostKey"],
            message: `no host key pinned, so any machine answering at ${ssh.host} would get this host's secrets: set it to the host's key (\`${scan}\` prints it; check it against /etc/ssh/ssh_host_ed25519_key.pub on the host), or set trustOnFirstUse: true beside it to record the key the first \`pulumi up\` sees`,
        });
    }
    if (ssh.hostKey !== undefined && ssh.trustOnFirstUse) {
        ctx.addIssue({ code: "custom", path: ["trustOnFirstUse"], message: "the host key is pinned (hostKey): remove trustOnFirstUse, which is only for a host without one" });
    }
}

const sshConnection = z.strictObject(sshFields).superRefine(requirePinnedHostKey);

/** Gateways and clients may be reached directly or through the relay as an SSH jump host. */
const peerSshConnection = z
    .strictObject({
        ...sshFields,
        via: z.enum(["direct", "relay"]).default("direct").describe("'relay' reaches the host through the relay as an SSH jump host (once its tunnel is up)"),
    })
    .superRefine((ssh, ctx) => {
        requirePinnedHostKey(ssh, ctx);
        if (ssh.via === "relay" && ssh.trustOnFirstUse && ssh.hostKey === undefined) {
            ctx.addIssue({
                code: "custom",
                path: ["trustOnFirstUse"],
                message: "a host reached through the relay (via: relay) cannot be trusted on first use (its key is scanned from the machine running Pulumi, which does not reach it): pin hostKey",
            });
        }
    });

const wstunnelVersion = z
    .string()
    .regex(/^\d+\.\d+\.\d+$/, "expected a release version like 10.6.2 (without 'v')")
    .refine(
        (value) => {
            const [major, minor, patch] = value.split(".").map(Number);
            return major === 10 && (minor > 4 || (minor === 4 && patch >= 2));
        },
        // Before 10.4.2 an IP entry in --restrict-to checked only the port; the flags used are those of v10.
        { message: "expected a wstunnel 10.x release at or after 10.4.2 (earlier ones check only the port of --restrict-to)" },
    );

const tunnelSchema = z
    .strictObject({
        subnet: cidr.default("10.10.0.0/24").describe("the tunnel's own subnet; every tunnel address lies in it"),
        // Inside wstunnel, WireGuard's packets travel in a TCP stream: no network path limits their size, and wstunnel
        // costs per packet (a read, a WebSocket frame, a TLS record and a write each), so a large MTU carries the most.
        // 65000 stays below what WireGuard (kernel: 65455; wireguard-go) and a loopback UDP datagram (65507) can carry.
        mtu: z
            .number()
            .int()
            .min(1280)
            .max(65000)
            .default(65000)
            .describe("MTU of wg0 on the relay, the gateways and wstunnel clients (WireGuard inside wstunnel's TCP stream: no path MTU applies; wstunnel's cost is per packet)"),
        udpMtu: z
            .number()
            .int()
            .min(1280)
            .max(1420)
            .default(1420)
            .describe("MTU of clients with transport udp: their wg0, and the relay's route to each of them (their packets cross real networks: 1420 fits a 1500-byte path)"),
        keepaliveSeconds: z.number().int().min(1).max(600).default(25).describe("PersistentKeepalive of gateways and clients"),
        ipv6: z
            .strictObject({
                enabled: z.boolean().default(false).describe("give every peer an IPv6 tunnel address too, and forward IPv6 through the relay like IPv4"),
                prefix: lanNetwork
                    .optional()
                    .describe(
                        "the tunnel's IPv6 prefix (e.g. fd12:3456:789a::/64); defaults to a unique local /64 derived from the relay's name and public address. Every peer's address in it has its IPv4 tunnel address's host part (10.10.0.3 is fd12:3456:789a::3)",
                    ),
            })
            .default({ enabled: false })
            .describe("IPv6 inside the tunnel (off by default); the relay's public address may stay IPv4-only"),
    })
    .default({ subnet: "10.10.0.0/24", mtu: 65000, udpMtu: 1420, keepaliveSeconds: 25, ipv6: { enabled: false } });

const relaySchema = z.strictObject({
    name: name.default("relay").describe("name of the relay's resources"),
    ssh: sshConnection.describe("how `pulumi up` reaches the relay"),
    publicAddress: host.optional().describe("what clients dial for wss:// and the certificate's name; defaults to ssh.host"),
    tunnelAddress: ipv4.optional().describe("the relay's tunnel address; defaults to the first host of its tunnel subnet"),
    tunnelSubnet: cidr
        .optional()
        .describe(
            "with several relays: this relay's own tunnel subnet, the size of tunnel.subnet, in which every gateway and client has the address with its own host part (10.10.0.3 is 10.10.1.3 in 10.10.1.0/24); the first relay's is tunnel.subnet, every other relay needs its own",
        ),
    wireguardPort: port.default(51820).describe("WireGuard's UDP port on the relay"),
    wstunnelPort: port.default(443).describe("TCP port of the wstunnel server"),
    publicInterface: interfaceName
        .optional()
        .describe("the relay's internet-facing interface; defaults to the interface of the relay's default route, found on the relay when `pulumi up` runs"),
    allowDirectUdp: z.boolean().default(false).describe("leave WireGuard's UDP port open on publicInterface for clients that can use UDP"),
    udpPorts: z
        .array(port)
        .max(8)
        .default([])
        .describe(
            "further public UDP ports on which the relay accepts WireGuard (e.g. [53, 443], which many networks that block UDP still pass), redirected to wireguardPort on publicInterface only; each client on transport udp gets a conf per port. Needs allowDirectUdp",
        ),
    keyRotation: rotation.describe("bump to replace the relay's WireGuard key"),
    existingKeys: z
        .strictObject({ privateKey: wireguardKey.describe("the relay's WireGuard private key") })
        .optional()
        .describe("keep the relay's existing WireGuard key (e.g. wg-easy's server key) instead of generating one; set with `pulumi config set --secret --path`"),
});

const wstunnelSchema = z
    .strictObject({
        version: wstunnelVersion.default("10.6.2").describe("pinned wstunnel release"),
        source: z
            .enum(["release", "mirror", "local"])
            .default("release")
            .describe("release: download from the GitHub release; mirror: the same asset names under mirrorBaseUrl; local: upload localBinary"),
        mirrorBaseUrl: z.url({ protocol: /^https?$/, message: "expected an http(s) URL" }).optional().describe("base URL holding v<version>/<asset>"),
        localBinary: z.string().min(1).optional().describe("path, on the machine running `pulumi up`, of a wstunnel binary for the hosts' architecture"),
        sha256: z
            .strictObject({
                amd64: sha256.optional().describe("SHA-256 of wstunnel_<version>_linux_amd64.tar.gz"),
                arm64: sha256.optional().describe("SHA-256 of wstunnel_<version>_linux_arm64.tar.gz"),
                armv7: sha256.optional().describe("SHA-256 of wstunnel_<version>_linux_armv7.tar.gz"),
                armv6: sha256.optional().describe("SHA-256 of wstunnel_<version>_linux_armv6.tar.gz (a Pi Zero or Pi 1)"),
            })
            .default({})
            .describe("release archive checksums from the release's checksums.txt; verified on the host before installing"),
        localPort: port.default(51820).describe("UDP port of the local wstunnel listener that WireGuard's Endpoint points at"),
        tls: z
            .strictObject({
                certificateFile: z.string().startsWith("/").describe("certificate (chain) file on the relay"),
                privateKeyFile: z.string().startsWith("/").describe("its private key file on the relay"),
            })
            .optional()
            .describe("the relay's own, publicly trusted certificate instead of the stack's CA"),
        mutualTls: z
            .boolean()
            .default(false)
            .describe(
                "mutual TLS on every relay: each gateway and wstunnel client gets a client certificate from the stack's CA, its common name the peer's path prefix; the relay then refuses, at the TLS handshake, any connection without one (a switch for all peers at once: wstunnel asks every connection for a certificate)",
            ),
        congestionControl: z
            .enum(["bbr", "system"])
            .default("bbr")
            .describe(
                "TCP congestion control on the relays and gateways, set in wg-relay's sysctl file: WireGuard travels inside wstunnel's TCP connections, and BBR keeps their rate on a lossy link where the loss-based default (cubic) collapses; machine-wide, as the kernel has no per-program setting. system: leave the host's own",
            ),
    })
    .default({ version: "10.6.2", source: "release", sha256: {}, localPort: 51820, mutualTls: false, congestionControl: "bbr" });

const gatewaySchema = z.strictObject({
    name: name.describe("unique name; used in file and resource names"),
    tunnelAddress: ipv4.describe("the gateway's tunnel address"),
    lanSubnets: z
        .array(lanNetwork)
        .min(1, "expected at least one LAN subnet")
        .describe("LAN subnets routed through this gateway: IPv4, and IPv6 prefixes with tunnel.ipv6.enabled"),
    lanInterface: interfaceName
        .optional()
        .describe("the gateway's LAN interface; defaults to the interface of the gateway's default route (a Raspberry Pi's is its LAN's), found on the gateway when `pulumi up` runs"),
    masquerade: z
        .boolean()
        .default(true)
        .describe("masquerade tunnel traffic onto the LAN; switch off when the home router routes the tunnel subnet to the gateway"),
    siteToSite: z
        .boolean()
        .default(false)
        .describe(
            "let this gateway's LANs and those of every other gateway with siteToSite reach each other through the first relay (LAN hosts need a route to the other sites' LANs via their gateway, e.g. on the home router)",
        ),
    ssh: peerSshConnection.describe("how `pulumi up` reaches the gateway"),
    transport: z
        .enum(["wstunnel", "udp"])
        .default("wstunnel")
        .describe(
            "wstunnel: WireGuard inside wss on TCP to every relay, through a wstunnel client on the gateway; udp: WireGuard straight to each relay's UDP port (wireguardPort), no wstunnel on the gateway, wg0 at tunnel.udpMtu (needs allowDirectUdp on every relay; home connections behind CG-NAT usually pass outbound UDP)",
        ),
    presharedKey: z
        .boolean()
        .default(false)
        .describe("add a preshared key between this peer and the relay (a second, symmetric secret on top of the key pairs)"),
    keyRotation: rotation.describe("bump to replace this gateway's WireGuard key"),
    existingKeys,
});

/** A port or an inclusive range "8000-8080". */
const portOrRange = z.union([
    port,
    z
        .string()
        .regex(/^\d{1,5}-\d{1,5}$/, "expected a port (80) or an inclusive range ('8000-8080')")
        .refine(
            (value) => {
                const [low, high] = value.split("-").map(Number);
                return low >= 1 && low < high && high <= 65535;
            },
            { message: "expected a range 'LOW-HIGH' with 1 <= LOW < HIGH <= 65535" },
        ),
]);

const accessRule = z.strictObject({
    to: z
        .string()
        .describe(
            "a gateway's name (its LANs in the client's routes), another client's name (both its tunnel addresses), a relay's name (services on the relay itself, at its tunnel addresses), a LAN host (192.168.1.20, fd00:1::20) or subnet (192.168.1.0/25) in the client's routes, or a gateway's own tunnel address (IPv4 or IPv6)",
        ),
    protocol: z.enum(["tcp", "udp", "icmp"]).optional().describe("only this protocol (icmp is ICMPv6 towards IPv6 destinations); every protocol when left out"),
    // iptables' multiport match takes at most 15 ports, a range counting as two.
    ports: z.array(portOrRange).min(1).max(7).optional().describe("only these destination ports or ranges (at most 7; needs protocol tcp or udp)"),
});

const clientSchema = z.strictObject({
    name: name.describe("unique name; used in file and resource names"),
    tunnelAddress: ipv4.describe("the client's tunnel address"),
    routes: z.array(lanNetwork).optional().describe("LAN subnets (IPv4 or IPv6) routed through the tunnel; defaults to every gateway's LAN"),
    fullTunnel: z
        .boolean()
        .default(false)
        .describe(
            "route all IPv4 traffic through the relay, not only the tunnel and LAN subnets (IPv6 goes through it only to the tunnel and LANs); only such a client may reach the internet through the relay, from its own tunnel address",
        ),
    transport: z
        .enum(["wstunnel", "udp"])
        .default("wstunnel")
        .describe("wstunnel: WireGuard inside wss on TCP (works where UDP is blocked); udp: straight to the relay's WireGuard port (needs relay.allowDirectUdp; for phones without a wstunnel client)"),
    access: z
        .array(accessRule)
        .optional()
        .describe(
            "what the client may open connections to, enforced on the relay; defaults to every LAN in its routes. Other clients only when named here; replies always pass",
        ),
    primaryRelay: name
        .optional()
        .describe(
            "with several relays: the relay the client uses while it answers (defaults to the first); a client provisioned over SSH moves its routes to the next relay that answers when it stops, and back when it returns",
        ),
    platform: z
        .enum(["linux", "macos", "windows", "android", "ios"])
        .default("linux")
        .describe(
            "what the client runs, for its bundle (`npm run client-files`): linux (a systemd unit for wstunnel), macos (a launchd daemon), windows (a scheduled task), android (a Termux script for wstunnel's android_arm64 build); ios has no wstunnel client and gets confs only (needs transport udp). Every platform gets the stock WireGuard confs and their QR codes",
        ),
    ssh: peerSshConnection.optional().describe("when set, the client machine is provisioned over SSH; otherwise only its bundle is exported"),
    presharedKey: z
        .boolean()
        .default(false)
        .describe("add a preshared key between this peer and the relay (a second, symmetric secret on top of the key pairs)"),
    keyRotation: rotation.describe("bump to replace this client's WireGuard key"),
    existingKeys,
});

/** The config as the user writes it: every key the program reads. */
const stackConfigObject = z.strictObject({
    tunnel: tunnelSchema.describe("the tunnel network"),
    relay: relaySchema.optional().describe("the VPS with a public address (or relays, for several)"),
    relays: z
        .array(relaySchema)
        .min(1)
        .optional()
        .describe("several relays instead of relay, each as relay is described: every gateway keeps a tunnel to each, clients prefer their primaryRelay"),
    wstunnel: wstunnelSchema.describe("the wstunnel binary and its client side"),
    gateways: z.array(gatewaySchema).default([]).describe("LAN gateways (e.g. a Raspberry Pi) that dial out to the relay"),
    clients: z.array(clientSchema).default([]).describe("roaming clients: laptops and phones"),
    repair: z
        .number()
        .int()
        .min(0)
        .default(0)
        .describe("bump (`npm run repair`) to re-run every step on every host: puts back what was changed by hand (a deleted rule or file, a stopped unit, a peer added or removed), restarting nothing that is in place"),
});

export const githubReleaseBaseUrl = "https://github.com/erebe/wstunnel/releases/download";

/**
 * The config parsed once, with everything derived from it resolved: components take it as it is and parse nothing.
 * `when`: the cross-field checks run also after field problems, so the user sees every problem in one run.
 */
export const stackConfigSchema = stackConfigObject.superRefine(checkTopology, { when: () => true }).transform(resolveNetwork);

export type StackConfigInput = z.input<typeof stackConfigSchema>;
/** The resolved network: what the program builds. */
export type Network = z.output<typeof stackConfigSchema>;
export type TunnelNetwork = Network["tunnel"];
export type RelaySettings = Network["relays"][number];
export type WstunnelSettings = Network["wstunnel"];
/** The Linux architectures of wstunnel's release archives, in the order wstunnel-install takes their checksums. */
export const wstunnelArchitectures = ["amd64", "arm64", "armv7", "armv6"] as const;
export type WstunnelArchitecture = (typeof wstunnelArchitectures)[number];
/** A host's `uname -m` as the release archives name its architecture. */
export function wstunnelArchitectureOf(machine: string): WstunnelArchitecture | undefined {
    if (machine === "x86_64") return "amd64";
    if (machine === "aarch64" || machine === "arm64") return "arm64";
    if (machine.startsWith("armv7")) return "armv7";
    if (machine.startsWith("armv6")) return "armv6";
    return undefined;
}
export type WstunnelBinarySource = WstunnelSettings["binary"];
export type GatewaySettings = Network["gateways"][number];
export type ClientSettings = Network["clients"][number];
export type ClientAccess = RelaySettings["clientAccess"][number];
export type AccessGrant = ClientAccess["access"][number];
export type SiteLink = RelaySettings["siteLinks"][number];
export type SshSettings = z.output<typeof peerSshConnection> | z.output<typeof sshConnection>;
export type ExistingKeys = z.output<typeof existingKeys>;

type ParsedConfig = z.output<typeof stackConfigObject>;

/** The relays as configured: `relay` (one) or `relays` (several); checkTopology makes sure exactly one is set. */
function configuredRelays(config: ParsedConfig) {
    return config.relays ?? [config.relay!];
}

/**
 * Each relay's tunnel subnet: the first relay's is tunnel.subnet. A peer has one tunnel address per relay, with the
 * same host part in each subnet, so a reply always goes back through the relay whose subnet its destination is in.
 */
function relaySubnets(config: ParsedConfig): Cidr[] {
    return configuredRelays(config).map((relay, index) => parseCidr(index === 0 ? config.tunnel.subnet : relay.tunnelSubnet!)!);
}

/** `address` (in tunnel.subnet) moved into `subnet`, keeping its host part. */
function addressIn(subnet: Cidr, tunnelSubnet: Cidr, address: string): string {
    return intToIp(subnet.network + (ipToInt(address) - tunnelSubnet.network));
}

/**
 * The tunnel's IPv6 prefix when IPv6 is on: the configured one, or a unique local /64 of the stack's own, derived
 * from what names its relay (so it stays the same at every run without being stored).
 */
function tunnelIpv6Prefix(config: ParsedConfig): IpNetwork | undefined {
    if (!config.tunnel.ipv6.enabled) {
        return undefined;
    }
    const relay = configuredRelays(config)[0];
    return parseNetwork(config.tunnel.ipv6.prefix ?? derivedIpv6Prefix(relay.name, relay.publicAddress ?? relay.ssh.host))!;
}

const derivedIpv6Prefix = (relayName: string, publicAddress: string) => uniqueLocalPrefix(`wg-relay ${relayName} ${publicAddress}`);

function resolveNetwork(config: ParsedConfig) {
    const subnets = relaySubnets(config);
    const addressesOf = (address: string) => subnets.map((subnet) => addressIn(subnet, subnets[0], address));
    // With IPv6 (one relay), every tunnel address has a twin in the IPv6 prefix with the same host part.
    const ipv6Prefix = tunnelIpv6Prefix(config);
    const ipv6AddressOf = (address: string) => (ipv6Prefix ? ipv6HostAddress(ipv6Prefix, ipToInt(address) - subnets[0].network) : undefined);
    const { source, mirrorBaseUrl, localBinary, sha256, ...wstunnel } = config.wstunnel;
    const binary =
        source === "local"
            ? { kind: "upload" as const, localBinary: localBinary! }
            : { kind: "download" as const, baseUrl: source === "mirror" ? mirrorBaseUrl!.replace(/\/+$/, "") : githubReleaseBaseUrl, sha256 };
    const everyLan = config.gateways.flatMap((gateway) => gateway.lanSubnets);
    const relays = configuredRelays(config);
    const relayNames = relays.map((relay) => relay.name);
    const clientRoutes = (client: ParsedConfig["clients"][number]) => client.routes ?? everyLan;
    const sites = config.gateways.filter((gateway) => gateway.siteToSite);
    // Site-to-site traffic goes through the first relay, between every pair of gateways that opted in.
    const siteLinks = sites.flatMap((from) =>
        sites
            .filter((to) => to !== from)
            .flatMap((to) =>
                from.lanSubnets.flatMap((source) =>
                    to.lanSubnets.filter((destination) => isIpv6Network(destination) === isIpv6Network(source)).map((destination) => ({ from: from.name, to: to.name, source, destination })),
                ),
            ),
    );
    const { ipv6: _ipv6, ...tunnel } = config.tunnel;
    const ipv6 = ipv6Prefix ? { prefix: formatNetwork(ipv6Prefix), prefixLength: ipv6Prefix.prefix } : undefined;
    return {
        tunnel: { ...tunnel, prefixLength: subnets[0].prefix, ipv6 },
        // The first relay is every client's default primary and carries site-to-site traffic.
        relays: relays.map(({ tunnelSubnet: _configured, ...relay }, index) => {
            const subnet = subnets[index];
            const subnetText = `${intToIp(subnet.network)}/${subnet.prefix}`;
            const tunnelAddress = relay.tunnelAddress ?? hostAddress(subnet, 1);
            const tunnelAddress6 = ipv6AddressOf(relay.tunnelAddress ?? hostAddress(subnets[0], 1));
            const thisRelay = { name: relay.name, networks: [`${tunnelAddress}/32`, ...optional(tunnelAddress6, "/128")] };
            return {
                ...relay,
                // The name firewall rules and the sysctl file use: the configured one, or the default route's, found on the host.
                publicInterface: relay.publicInterface ?? defaultRouteInterface,
                publicInterfaceKey: `wg-relay:${config.relays === undefined ? "relay" : `relays[${index}]`}.publicInterface`,
                tunnel: { ...tunnel, subnet: subnetText, prefixLength: subnet.prefix, ipv6 },
                publicAddress: relay.publicAddress ?? relay.ssh.host,
                tunnelAddress,
                tunnelAddress6,
                /** Where every gateway and client has its local wstunnel listener for this relay. */
                wstunnelLocalPort: config.wstunnel.localPort + index,
                // What each client may reach through this relay and on it, at its own address in this relay's subnet;
                // a full-tunnel client also the internet.
                clientAccess: config.clients.map((client) => ({
                    name: client.name,
                    tunnelAddress: addressesOf(client.tunnelAddress)[index],
                    tunnelAddress6: ipv6AddressOf(client.tunnelAddress),
                    fullTunnel: client.fullTunnel,
                    access: resolveAccess(client.access, clientRoutes(client), config, thisRelay, (address) => [`${addressesOf(address)[index]}/32`, ...optional(ipv6AddressOf(address), "/128")]),
                })),
                /** The gateways at their addresses in this relay's subnet: their heartbeat reaches the relay itself. */
                gatewayAddresses: config.gateways.map((gateway) => addressesOf(gateway.tunnelAddress)[index]),
                siteLinks: index === 0 ? siteLinks : [],
            };
        }),
        wstunnel: { ...wstunnel, binary },
        gateways: config.gateways.map((gateway, index) => ({
            ...gateway,
            lanInterface: gateway.lanInterface ?? defaultRouteInterface,
            lanInterfaceKey: `wg-relay:gateways[${index}].lanInterface`,
            /** Its address in each relay's subnet, in the order of relays. */
            tunnelAddresses: addressesOf(gateway.tunnelAddress),
            tunnelAddress6: ipv6AddressOf(gateway.tunnelAddress),
            /** The other sites' LANs, routed through the first relay. */
            siteRoutes: gateway.siteToSite ? sites.filter((other) => other !== gateway).flatMap((other) => other.lanSubnets) : [],
        })),
        // A client routes every gateway's LAN unless it names its own, and may reach every LAN it routes unless
        // its access rules say otherwise.
        clients: config.clients.map((client) => {
            const { access: _rules, primaryRelay, ...settings } = client;
            const primary = primaryRelay ?? relayNames[0];
            return {
                ...settings,
                routes: clientRoutes(client),
                tunnelAddresses: addressesOf(client.tunnelAddress),
                tunnelAddress6: ipv6AddressOf(client.tunnelAddress),
                /** Relay names in the order the client prefers them: its primary, then the others as configured. */
                relayPreference: [primary, ...relayNames.filter((relayName) => relayName !== primary)],
            };
        }),
        repair: config.repair,
    };
}

/**
 * A client's access rules with every `to` resolved to the networks it stands for: a gateway's name to its LANs
 * in the client's routes, a client's name to its tunnel addresses (in the relay's subnet and, with IPv6, the tunnel's
 * IPv6 prefix, by `tunnelNetworksOnRelay`), this relay's name to its own tunnel addresses (another relay's to nothing
 * here: that relay enforces it), an address to a /32 or /128. Ports in iptables' form.
 */
function resolveAccess(
    access: z.output<typeof accessRule>[] | undefined,
    routes: string[],
    config: ParsedConfig,
    thisRelay: { name: string; networks: string[] },
    tunnelNetworksOnRelay: (address: string) => string[],
) {
    const rules: z.output<typeof accessRule>[] = access ?? routes.map((route) => ({ to: route }));
    const relays = configuredRelays(config);
    return rules.map((rule) => {
        const gateway = config.gateways.find((candidate) => candidate.name === rule.to);
        const client = config.clients.find((candidate) => candidate.name === rule.to);
        const relay = relays.find((candidate) => candidate.name === rule.to);
        const destinations = gateway
            ? gateway.lanSubnets.filter((lan) => routes.includes(lan))
            : client
              ? tunnelNetworksOnRelay(client.tunnelAddress)
              : relay
                ? relay.name === thisRelay.name
                    ? thisRelay.networks
                    : []
                : [isIpv4(rule.to) ? `${rule.to}/32` : isIpv6(rule.to) ? `${rule.to}/128` : rule.to];
        return {
            to: rule.to,
            kind: gateway ? ("gateway" as const) : client ? ("client" as const) : relay ? ("relay" as const) : ("network" as const),
            destinations,
            protocol: rule.protocol,
            ports: rule.ports?.map((entry) => String(entry).replace("-", ":")),
        };
    });
}

const optional = (value: string | undefined, suffix: string) => (value === undefined ? [] : [`${value}${suffix}`]);
export const isIpv6Network = (text: string) => text.includes(":");

// Cross-field checks run even when some fields failed their own checks, so one run reports every problem. They
// read the config through these guards: a malformed part (already reported) is skipped, never dereferenced.
type Loose = Record<string, unknown>;
const looseObject = (value: unknown): Loose => (value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Loose) : {});
const looseList = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const looseString = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

function checkTopology(value: unknown, ctx: z.RefinementCtx): void {
    const problem = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    const config = looseObject(value);
    // One relay (`relay`) or several (`relays`), each checked under its own key.
    const relayKey = config.relays === undefined ? ["relay"] : undefined;
    if (config.relay !== undefined && config.relays !== undefined) {
        problem(["relays"], "set either relay (one relay) or relays (several), not both");
    } else if (config.relay === undefined && config.relays === undefined) {
        problem(["relay"], "required, but not set in the stack config");
    }
    const relays = (relayKey ? [config.relay] : looseList(config.relays)).map((relay, index) => ({
        relay: looseObject(relay),
        path: relayKey ?? ["relays", index],
    }));
    const relay = relays[0]?.relay ?? {};
    const keyName = (path: (string | number)[]) => path.map((part, index) => (typeof part === "number" ? `[${part}]` : index === 0 ? part : `.${part}`)).join("");
    // Defaults are filled in by now wherever a part parsed.
    const subnetText = looseString(looseObject(config.tunnel).subnet);
    const subnet = subnetText === undefined ? undefined : parseCidr(subnetText);
    const gateways = looseList(config.gateways).map(looseObject);
    const clients = looseList(config.clients).map(looseObject);

    const checkAddress = (path: (string | number)[], address: string | undefined, within = subnet, withinText = subnetText) => {
        if (within === undefined || address === undefined || !isIpv4(address)) {
            return false; // a malformed subnet or address is reported by its own check
        }
        if (!cidrContains(within, address)) {
            problem(path, `${address} is outside the tunnel subnet ${withinText}`);
            return false;
        }
        if (isNetworkOrBroadcast(within, address)) {
            problem(path, `${address} is the network or broadcast address of ${withinText}`);
            return false;
        }
        return true;
    };

    // Every relay's tunnel subnet: tunnel.subnet for the first, its own (of the same size) for each other one.
    const tunnelNetworks: { cidr: Cidr; text: string; key: string }[] = subnet ? [{ cidr: subnet, text: subnetText!, key: "tunnel.subnet" }] : [];
    const relaySubnet = new Map<number, Cidr>(subnet ? [[0, subnet]] : []);
    relays.forEach(({ relay: other, path }, index) => {
        const text = looseString(other.tunnelSubnet);
        const own = text === undefined ? undefined : parseCidr(text);
        if (index === 0) {
            if (text !== undefined && text !== subnetText) {
                problem([...path, "tunnelSubnet"], `the first relay's tunnel subnet is tunnel.subnet (${subnetText}): leave tunnelSubnet out`);
            }
            return;
        }
        if (text === undefined) {
            problem([...path, "tunnelSubnet"], "required for every relay after the first: a tunnel subnet of its own, the size of tunnel.subnet");
            return;
        }
        if (!own) {
            return;
        }
        const key = keyName([...path, "tunnelSubnet"]);
        if (subnet && own.prefix !== subnet.prefix) {
            problem([...path, "tunnelSubnet"], `${text} is not the size of tunnel.subnet ${subnetText}: every peer has the same host part in each relay's subnet`);
            return;
        }
        const clash = tunnelNetworks.find((network) => cidrsOverlap(network.cidr, own));
        if (clash) {
            problem([...path, "tunnelSubnet"], `${text} overlaps ${clash.text} of wg-relay:${clash.key}`);
            return;
        }
        tunnelNetworks.push({ cidr: own, text, key });
        relaySubnet.set(index, own);
    });

    // Host parts: each relay's own address, and every peer's, which it keeps in every relay's subnet.
    const hostPart = (address: string, within: Cidr) => ipToInt(address) - within.network;
    const relayHostParts = new Map<number, string>();
    relays.forEach(({ relay: other, path }, index) => {
        const within = relaySubnet.get(index);
        const configured = looseString(other.tunnelAddress);
        if (within === undefined) {
            return;
        }
        if (configured !== undefined && !checkAddress([...path, "tunnelAddress"], configured, within, `${intToIp(within.network)}/${within.prefix}`)) {
            return;
        }
        relayHostParts.set(configured === undefined ? 1 : hostPart(configured, within), keyName(path));
    });

    const peers = [
        ...gateways.map((peer, index) => ({ peer, path: ["gateways", index] as (string | number)[] })),
        ...clients.map((peer, index) => ({ peer, path: ["clients", index] as (string | number)[] })),
    ];

    for (const { relay: other, path } of relays) {
        const udpPorts = looseList(other.udpPorts);
        if (udpPorts.length > 0 && other.allowDirectUdp !== true) {
            problem([...path, "udpPorts"], "further UDP ports need allowDirectUdp: true, or the relay drops what they bring in");
        }
        const wireguardPort = typeof other.wireguardPort === "number" ? other.wireguardPort : 51820;
        udpPorts.forEach((udpPort, index) => {
            if (udpPort === wireguardPort || udpPorts.indexOf(udpPort) !== index) {
                problem([...path, "udpPorts", index], `${String(udpPort)} is already WireGuard's port or listed before`);
            }
        });
    }

    const namesSeen = new Map<string, string>();
    for (const { relay: other, path } of relays) {
        const relayName = looseString(other.name);
        const earlier = relayName === undefined ? undefined : namesSeen.get(relayName);
        if (earlier) {
            problem([...path, "name"], `name '${relayName}' is already used by ${earlier}`);
        } else if (relayName !== undefined) {
            namesSeen.set(relayName, `${keyName(path)}.name`);
        }
    }
    const addressesSeen = new Map<string, string>();
    for (const { peer, path } of peers) {
        const peerName = looseString(peer.name);
        const earlier = peerName === undefined ? undefined : namesSeen.get(peerName);
        if (earlier) {
            problem([...path, "name"], `name '${peerName}' is already used by ${earlier}`);
        } else if (peerName !== undefined) {
            namesSeen.set(peerName, `${path[0]}[${path[1]}]`);
        }

        const address = looseString(peer.tunnelAddress);
        if (!checkAddress([...path, "tunnelAddress"], address)) {
            continue;
        }
        const relayOwner = relayHostParts.get(hostPart(address!, subnet!));
        if (relayOwner !== undefined) {
            problem(
                [...path, "tunnelAddress"],
                relays.length === 1 || relayOwner === keyName(relays[0].path) ? `${address} is the relay's tunnel address` : `${address} has the host part of ${relayOwner}'s tunnel address`,
            );
            continue;
        }
        const owner = addressesSeen.get(address!);
        if (owner) {
            problem([...path, "tunnelAddress"], `${address} is already used by ${owner}`);
        } else {
            addressesSeen.set(address!, `${path[0]}[${path[1]}]`);
        }
    }

    // IPv6 inside the tunnel: its prefix must leave room for every host part of tunnel.subnet.
    const ipv6 = looseObject(looseObject(config.tunnel).ipv6);
    const ipv6PrefixText = looseString(ipv6.prefix);
    const ipv6Prefix = ipv6PrefixText === undefined ? undefined : parseNetwork(ipv6PrefixText);
    const tunnelNetworks6: { network: IpNetwork; text: string; key: string }[] = [];
    if (ipv6.enabled !== true && ipv6PrefixText !== undefined) {
        problem(["tunnel", "ipv6", "prefix"], "a prefix is set but IPv6 is off: set tunnel.ipv6.enabled: true too");
    }
    if (ipv6.enabled === true && relays.length > 1) {
        problem(["tunnel", "ipv6", "enabled"], "IPv6 inside the tunnel with several relays is not supported yet: use one relay, or leave IPv6 off");
    }
    if (ipv6Prefix && ipv6Prefix.family !== 6) {
        problem(["tunnel", "ipv6", "prefix"], `${ipv6PrefixText} is an IPv4 network: expected an IPv6 prefix like fd12:3456:789a::/64`);
    } else if (ipv6Prefix && subnet && 128 - ipv6Prefix.prefix < 32 - subnet.prefix) {
        problem(["tunnel", "ipv6", "prefix"], `${ipv6PrefixText} has fewer host addresses than tunnel.subnet ${subnetText}: a peer's IPv6 address has the host part of its IPv4 one`);
    } else if (ipv6Prefix) {
        tunnelNetworks6.push({ network: ipv6Prefix, text: ipv6PrefixText!, key: "tunnel.ipv6.prefix" });
    }
    const tunnelClashes = [...tunnelNetworks.map((network) => ({ ...network, network: parseNetwork(network.text)! })), ...tunnelNetworks6];

    // LANs must be told apart from each other and from every tunnel subnet: the error names both keys.
    const lans: { network: IpNetwork; text: string; where: string }[] = [];
    gateways.forEach((gateway, gatewayIndex) => {
        looseList(gateway.lanSubnets).forEach((text, lanIndex) => {
            const lan = typeof text === "string" ? parseNetwork(text) : undefined;
            if (!lan) {
                return;
            }
            const path = ["gateways", gatewayIndex, "lanSubnets", lanIndex];
            if (lan.family === 6 && ipv6.enabled !== true) {
                problem(path, `${text} is an IPv6 network: set tunnel.ipv6.enabled: true to route IPv6 LANs`);
                return;
            }
            const tunnelClash = tunnelClashes.find((network) => networksOverlap(lan, network.network));
            if (tunnelClash) {
                problem(path, `${text} overlaps the tunnel subnet ${tunnelClash.text} of wg-relay:${tunnelClash.key}`);
                return;
            }
            const clash = lans.find((other) => networksOverlap(other.network, lan));
            if (clash) {
                problem(path, `${text} overlaps ${clash.text} of wg-relay:${clash.where}`);
                return;
            }
            lans.push({ network: lan, text: text as string, where: keyName(path) });
        });
    });

    const served = new Set(lans.map((lan) => lan.text));
    // A gateway's own tunnel addresses (IPv4, and IPv6 in the prefix in effect) may be named in access rules too.
    const relayName = looseString(relay.name);
    const relayAddress = looseString(relay.publicAddress) ?? looseString(looseObject(relay.ssh).host);
    const prefixInEffect =
        ipv6.enabled !== true ? undefined : ipv6PrefixText === undefined ? (relayName && relayAddress ? parseNetwork(derivedIpv6Prefix(relayName, relayAddress)) : undefined) : ipv6Prefix;
    const gatewayHosts = gateways.flatMap((gateway) => {
        const address = looseString(gateway.tunnelAddress);
        if (address === undefined || !isIpv4(address) || !subnet) {
            return [];
        }
        const ipv6Address = prefixInEffect?.family === 6 ? [parseAddressOrNetwork(ipv6HostAddress(prefixInEffect, hostPart(address, subnet)))!] : [];
        return [parseAddressOrNetwork(address)!, ...ipv6Address];
    });
    const isGatewayHost = (network: IpNetwork) => gatewayHosts.some((host) => networkWithin(network, host));
    const gatewayNames = new Map(gateways.map((gateway) => [looseString(gateway.name), gateway]));
    const clientNames = new Set(clients.map((client) => looseString(client.name)));
    const relayNames = new Set(relays.map(({ relay: other }) => looseString(other.name) ?? "relay"));
    const checkAccess = (client: Loose, clientIndex: number) => {
        const routes = Array.isArray(client.routes) ? looseList(client.routes) : lans.map((lan) => lan.text);
        const routeNetworks = routes.flatMap((route) => (typeof route === "string" && parseNetwork(route) ? [parseNetwork(route)!] : []));
        const routesText = routes.length === 0 ? "none" : routes.join(", ");
        looseList(client.access).forEach((value, ruleIndex) => {
            const rule = looseObject(value);
            const path = ["clients", clientIndex, "access", ruleIndex];
            const to = looseString(rule.to);
            if (to !== undefined) {
                const gateway = gatewayNames.get(to);
                const network = parseAddressOrNetwork(to);
                if (gateway) {
                    if (!looseList(gateway.lanSubnets).some((lan) => routes.includes(lan))) {
                        problem([...path, "to"], `no LAN of gateway '${to}' is in this client's routes (${routesText})`);
                    }
                } else if (clientNames.has(to)) {
                    if (to === looseString(client.name)) {
                        problem([...path, "to"], "a client always reaches itself: name another client, a gateway or a LAN address");
                    }
                } else if (relayNames.has(to)) {
                    // The relay itself: what the rule names is open on its tunnel addresses.
                } else if (network) {
                    if (!routeNetworks.some((route) => networkWithin(network, route)) && !isGatewayHost(network)) {
                        problem([...path, "to"], `${to} is outside this client's routes (${routesText}); name another client by its name`);
                    }
                } else if (/^[a-z][a-z0-9-]*$/.test(to)) {
                    problem([...path, "to"], `'${to}' is not the name of a gateway, a client or a relay`);
                } else {
                    problem([...path, "to"], "expected a gateway's, client's or relay's name, an IP address or a subnet in CIDR form with no host bits set");
                }
            }
            if (rule.ports !== undefined && rule.protocol !== "tcp" && rule.protocol !== "udp") {
                problem([...path, "ports"], "ports need protocol: tcp or udp");
            }
        });
    };
    const relayPublic = looseString(relay.publicAddress) ?? looseString(looseObject(relay.ssh).host);
    clients.forEach((client, clientIndex) => {
        looseList(client.routes).forEach((route, routeIndex) => {
            if (typeof route === "string" && parseNetwork(route) && !served.has(route)) {
                problem(["clients", clientIndex, "routes", routeIndex], `${route} is not a LAN subnet of any gateway`);
            }
        });
        checkAccess(client, clientIndex);
        if (client.fullTunnel === true && relays.length > 1) {
            problem(["clients", clientIndex, "fullTunnel"], "a full tunnel with several relays is not supported: route the LANs only, or use one relay");
        }
        if (client.platform === "ios" && client.transport !== "udp") {
            problem(["clients", clientIndex, "transport"], "iOS has no wstunnel client: use transport: udp (with the relay's allowDirectUdp, and udpPorts where UDP is filtered)");
        }
        if (client.ssh !== undefined && client.platform !== undefined && client.platform !== "linux") {
            problem(["clients", clientIndex, "ssh"], "only a linux client is provisioned over SSH; leave ssh out for the others, which get their bundle");
        }
        const primary = looseString(client.primaryRelay);
        if (primary !== undefined && !relays.some(({ relay: other }) => other.name === primary)) {
            problem(["clients", clientIndex, "primaryRelay"], `'${primary}' is not the name of a relay`);
        }
        if (client.fullTunnel === true && relayPublic !== undefined && !isIpv4(relayPublic)) {
            // The relay's own address must be routed outside a full tunnel, so it has to be known as an address.
            problem(["clients", clientIndex, "fullTunnel"], "a full tunnel needs relay.publicAddress (or relay.ssh.host) to be an IPv4 address");
        }
    });

    // A peer on plain UDP sends to each relay's WireGuard port, which only allowDirectUdp leaves open.
    for (const { peer, path } of peers) {
        for (const { relay: other, path: relayPath } of relays) {
            if (peer.transport === "udp" && other.allowDirectUdp !== true) {
                problem([...path, "transport"], `'udp' needs ${keyName(relayPath)}.allowDirectUdp: true, or the relay drops the ${path[0] === "gateways" ? "gateway" : "client"}'s packets`);
            }
        }
    }

    const checkExistingKeys = (path: (string | number)[], peer: Loose) => {
        if (peer.existingKeys === undefined) {
            return;
        }
        if (typeof peer.keyRotation === "number" && peer.keyRotation > 0) {
            problem([...path, "keyRotation"], "existing keys are never rotated by the program: replace existingKeys instead, or remove them to have keys generated");
        }
        const hasPresharedKey = looseString(looseObject(peer.existingKeys).presharedKey) !== undefined;
        if (peer.presharedKey === true && !hasPresharedKey) {
            problem([...path, "existingKeys", "presharedKey"], "presharedKey: true with existing keys needs the existing preshared key too");
        }
        if (peer.presharedKey !== true && hasPresharedKey) {
            problem([...path, "presharedKey"], "existingKeys.presharedKey is set: set presharedKey: true to use it");
        }
    };
    for (const { relay: other, path } of relays) {
        checkExistingKeys(path, other);
    }
    for (const { peer, path } of peers) {
        checkExistingKeys(path, peer);
    }

    const wstunnel = looseObject(config.wstunnel);
    const source = wstunnel.source;
    if (source === "local" && !wstunnel.localBinary) {
        problem(["wstunnel", "localBinary"], "source 'local' needs localBinary: the path of a wstunnel binary on this machine");
    }
    if (source === "mirror" && !wstunnel.mirrorBaseUrl) {
        problem(["wstunnel", "mirrorBaseUrl"], "source 'mirror' needs mirrorBaseUrl");
    }
    if ((source === "release" || source === "mirror") && Object.keys(looseObject(wstunnel.sha256)).length === 0) {
        problem(
            ["wstunnel", "sha256"],
            `source '${source}' needs the SHA-256 of wstunnel ${looseString(wstunnel.version) ?? "release"}'s archive for each host architecture (${wstunnelArchitectures.join(", ")}), from the release's checksums.txt`,
        );
    }
}

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid stack config:\n${problems.map((line) => `  - ${line}`).join("\n")}`);
        this.name = "ConfigError";
    }
}

function formatPath(path: PropertyKey[]): string {
    if (path.length === 0) {
        return configNamespace;
    }
    const [top, ...rest] = path;
    let text = `${configNamespace}:${String(top)}`;
    for (const part of rest) {
        text += typeof part === "number" ? `[${part}]` : `.${String(part)}`;
    }
    return text;
}

/** The secret config key, read by the program as a secret and not by the schema. */
export const sshPrivateKeyKey = `${configNamespace}:sshPrivateKey`;

/**
 * The schema's input from every `wg-relay:` key of the stack (Pulumi's flat key → string map, as
 * `pulumi.runtime.allConfig()` returns it), so a misspelt key is reported rather than ignored.
 */
export function stackConfigValues(all: Record<string, string>): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    for (const [key, text] of Object.entries(all)) {
        if (!key.startsWith(`${configNamespace}:`) || key === sshPrivateKeyKey) {
            continue;
        }
        values[key.slice(configNamespace.length + 1)] = parseValue(text);
    }
    return values;
}

/** Objects, lists, numbers and booleans arrive as JSON; plain strings as they are. */
function parseValue(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/** Validates the raw values of the stack's config keys; throws one ConfigError listing every problem. */
export function parseStackConfig(raw: Record<string, unknown>): Network {
    const result = stackConfigSchema.safeParse(raw, {
        error: (issue) => (issue.code === "invalid_type" && issue.input === undefined ? "required, but not set in the stack config" : undefined),
    });
    if (!result.success) {
        throw new ConfigError(result.error.issues.flatMap(describeIssue));
    }
    return result.data;
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
    if (issue.code === "unrecognized_keys") {
        const known = knownKeys(issue.path);
        return issue.keys.map((key) => {
            const nearest = nearestKey(key, known);
            return `${formatPath([...issue.path, key])}: unknown key${nearest ? `; did you mean ${formatPath([...issue.path, nearest])}?` : ""}`;
        });
    }
    return [`${formatPath(issue.path)}: ${issue.message}`];
}

/** The keys the schema allows in the object at `path`. */
function knownKeys(path: PropertyKey[]): string[] {
    let schema: z.core.$ZodType = stackConfigObject;
    const unwrap = (type: z.core.$ZodType): z.core.$ZodType =>
        type instanceof z.ZodDefault || type instanceof z.ZodOptional ? unwrap(type.unwrap() as z.core.$ZodType) : type;
    for (const part of path) {
        schema = unwrap(schema);
        if (schema instanceof z.ZodArray && typeof part === "number") {
            schema = schema.element as z.core.$ZodType;
        } else if (schema instanceof z.ZodObject) {
            schema = schema.shape[String(part)] as z.core.$ZodType;
        }
    }
    schema = unwrap(schema);
    return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

/** The known key closest to a misspelt one (by edit distance), if any is close enough to be what was meant. */
function nearestKey(key: string, known: string[]): string | undefined {
    const ranked = known.map((candidate) => ({ candidate, distance: editDistance(key.toLowerCase(), candidate.toLowerCase()) }));
    ranked.sort((a, b) => a.distance - b.distance);
    const best = ranked[0];
    return best && best.distance <= Math.max(2, Math.floor(best.candidate.length / 3)) ? best.candidate : undefined;
}

function editDistance(a: string, b: string): number {
    let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
    for (let i = 1; i <= a.length; i++) {
        const current = [i];
        for (let j = 1; j <= b.length; j++) {
            current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        }
        previous = current;
    }
    return previous[b.length];
}
