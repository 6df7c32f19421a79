// The stack config as the user writes it: one zod schema is its only definition, and the types of its parts come
// from it. The cross-field rules are in rules.ts, the resolved model (and its types) in resolve.ts.
import { z } from "zod";
import { formatNetwork, isIpv4, parseCidr, parseNetwork } from "../net";

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
/** Marks a field's issue about how a value is written, not what it stands for (see isSpellingOnly). */
const spellingOnly = { spellingOnly: true };
/** Whether an issue is only about spelling, so the value still counts for the cross-field rules. */
export const isSpellingOnly = (issue: z.core.$ZodIssue) => issue.code === "custom" && issue.params?.spellingOnly === true;
/** A LAN network of either family; IPv6 in its canonical text, as `ip` and `wg` print it back. */
const lanNetwork = z.string().superRefine((value, ctx) => {
    const network = parseNetwork(value);
    if (network === undefined) {
        ctx.addIssue({ code: "custom", message: "expected a network in CIDR form with no host bits set, like 192.168.1.0/24 or fd00:1::/64" });
    } else if (formatNetwork(network) !== value) {
        // Only its spelling is off: the cross-field rules still check the network it names.
        ctx.addIssue({ code: "custom", message: `expected the canonical form of this network: ${formatNetwork(network)}`, params: spellingOnly });
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

export const tunnelSchema = z
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
            .describe("MTU of clients with transport udp or auto: their wg0, and the relay's route to each of them (their packets cross real networks: 1420 fits a 1500-byte path)"),
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

export const relaySchema = z.strictObject({
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

export const wstunnelSchema = z
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

export const gatewaySchema = z.strictObject({
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
        .enum(["wstunnel", "udp", "auto"])
        .default("wstunnel")
        .describe(
            "wstunnel: WireGuard inside wss on TCP to every relay, through a wstunnel client on the gateway; udp: WireGuard straight to each relay's UDP port (wireguardPort), no wstunnel on the gateway, wg0 at tunnel.udpMtu (needs allowDirectUdp on every relay; home connections behind CG-NAT usually pass outbound UDP); auto (one relay): over UDP while the relay answers there, through wstunnel when it does not, switching by itself both ways (needs allowDirectUdp; wg0 at tunnel.udpMtu on both paths)",
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

export const accessRule = z.strictObject({
    to: z
        .string()
        .describe(
            "a gateway's name (its LANs in the client's routes), another client's name (both its tunnel addresses), a relay's name (services on the relay itself, at its tunnel addresses), a LAN host (192.168.1.20, fd00:1::20) or subnet (192.168.1.0/25) in the client's routes, or a gateway's own tunnel address (IPv4 or IPv6)",
        ),
    protocol: z.enum(["tcp", "udp", "icmp"]).optional().describe("only this protocol (icmp is ICMPv6 towards IPv6 destinations); every protocol when left out"),
    // iptables' multiport match takes at most 15 ports, a range counting as two.
    ports: z.array(portOrRange).min(1).max(7).optional().describe("only these destination ports or ranges (at most 7; needs protocol tcp or udp)"),
});

export const clientSchema = z.strictObject({
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
        .enum(["wstunnel", "udp", "auto"])
        .default("wstunnel")
        .describe(
            "wstunnel: WireGuard inside wss on TCP (works where UDP is blocked); udp: straight to the relay's WireGuard port (needs relay.allowDirectUdp; for phones without a wstunnel client); auto (a client provisioned over SSH, one relay): over UDP while the relay answers there, through wstunnel when it does not, switching by itself both ways (needs relay.allowDirectUdp; wg0 at tunnel.udpMtu on both paths)",
        ),
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
export const stackConfigObject = z.strictObject({
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
export type StackConfigInput = z.input<typeof stackConfigObject>;
/** The config as parsed by the schema, before the resolved model is derived from it. */
export type ParsedConfig = z.output<typeof stackConfigObject>;
export type SshSettings = z.output<typeof peerSshConnection> | z.output<typeof sshConnection>;
export type ExistingKeys = z.output<typeof existingKeys>;

/** The schema inside `.optional()` and `.default()`. */
export function unwrapped(type: z.core.$ZodType): z.core.$ZodType {
    return type instanceof z.ZodDefault || type instanceof z.ZodOptional ? unwrapped(type.unwrap() as z.core.$ZodType) : type;
}
