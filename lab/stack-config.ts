// Writes the lab stack's config file (Pulumi.lab.yaml) from the lab's inventory. What Pulumi itself put there
// (the passphrase's encryption salt, the encrypted SSH key) is kept.
// The lab is an ordinary user of the program: the same schema, with pinned host keys (rpi1's trusted on first use
// when asked) and non-root sudo users.
// usage: ts-node lab/stack-config.ts INVENTORY WSTUNNEL_BINARY OUT [CHANGES_JSON]
// CHANGES_JSON (LabChanges, e.g. {"extraClients": [...], "gatewayKeyRotation": N, "laptopAccess": [...]}) is how the e2e
// tests change the stack as a user would. The SSH key and the repair counter, set with `pulumi config set`, are kept.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as yaml from "js-yaml";
import { parseStackConfig, StackConfigInput, WstunnelArchitecture } from "../components/config";

interface LabHost {
    ns: string;
    address: string;
    user: string;
    hostKey: string;
    /** The host's public (relay) or LAN (gateway) interface as its OS names it: ens3 on a VM relay. */
    interface?: string;
    /** An nspawn container, or a QEMU virtual machine (WG_RELAY_LAB_HOSTS=vm). */
    kind?: "nspawn" | "vm";
}

interface Inventory {
    /** relay2 and rpi2 only in a lab with the second site (`npm run lab -- sites`). */
    hosts: Record<"relay" | "rpi1" | "laptop", LabHost> & Partial<Record<"relay2" | "rpi2" | ExtraGateway, LabHost>>;
}

/** The home LAN's IPv6 prefix (lab/hosts.sh gives rpi1 and lanhost an address in it). */
export const labLanIpv6Prefix = "fd00:192:168:1::/64";

/** The bench's four more gateway hosts on the home LAN (`WG_RELAY_LAB_GATEWAYS=5 lab/hosts.sh up`). */
const extraGateways = ["gw2", "gw3", "gw4", "gw5"] as const;
type ExtraGateway = (typeof extraGateways)[number];

/** The bench's clients in the lab's own 10.10.0.0/24 (10.10.0.10 ... 10.10.0.209); more grow it to /21. */
const scaleClientsInSubnet = 200;
const maxScaleClients = 1000;
const scaleClientAddress = (index: number) =>
    index < scaleClientsInSubnet ? `10.10.0.${10 + index}` : `10.10.${1 + Math.floor((index - scaleClientsInSubnet) / 256)}.${(index - scaleClientsInSubnet) % 256}`;

const ssh = (host: LabHost) => ({ host: host.address, user: host.user, hostKey: host.hostKey });

export interface LabChanges {
    /**
     * The second relay and site (`npm run lab -- sites` boots them): relay2 on 10.10.1.0/24 and rpi2 with
     * 192.168.2.0/24; siteToSite names the gateways that opt in; laptopPrimaryRelay its primary.
     */
    sites?: { siteToSite?: ("rpi1" | "rpi2")[]; laptopPrimaryRelay?: "relay" | "relay2" };
    extraClients?: NonNullable<StackConfigInput["clients"]>;
    /**
     * The bench's scale figures: this many more bundle-only clients (scale-1 ... at 10.10.0.10 on; past the 200th,
     * at 10.10.1.0 on, the tunnel subnet growing to 10.10.0.0/21), and gw2..gw5 as four more gateways, each with a
     * LAN of its own (192.168.12.0/24 ... 192.168.15.0/24; nothing behind them).
     */
    scale?: { clients: number };
    gatewayKeyRotation?: number;
    relayKeyRotation?: number;
    /** The laptop's access rules (clients[].access); left out, it may reach every LAN it routes. */
    laptopAccess?: NonNullable<StackConfigInput["clients"]>[number]["access"];
    /** The laptop sends all its IPv4 traffic through the relay (clients[].fullTunnel). */
    laptopFullTunnel?: boolean;
    /** The laptop left out of clients[], as a user removes a client from the config. */
    withoutLaptop?: boolean;
    /** Reach the laptop through the relay as an SSH jump host, at its tunnel address. */
    laptopViaRelay?: boolean;
    /** Reach rpi1 through the relay as an SSH jump host, at its tunnel address (a Pi behind CG-NAT). */
    rpi1ViaRelay?: boolean;
    /** The tunnel's MTU (a change restarts every wg0). */
    mtu?: number;
    /** What clients dial instead of the relay's SSH address (an address the relay also has). */
    relayPublicAddress?: string;
    /** IPv6 inside the tunnel (the stack's own unique local /64), and rpi1 routing the home LAN's IPv6 prefix. */
    ipv6?: boolean;
    /** Install wstunnel from a release mirror (`npm run lab -- mirror`) instead of uploading the lab's binary: each archive's SHA-256 by architecture. */
    wstunnelMirror?: { baseUrl: string; version: string; sha256: Partial<Record<WstunnelArchitecture, string>> };
    /** rpi1's gateways[].lanInterface; left out, the interface of its default route. */
    rpi1LanInterface?: string;
    /** wstunnel.mutualTls: every wstunnel peer presents a client certificate from the stack's CA. */
    mutualTls?: boolean;
    /** wstunnel.tls: the relay's own certificate and key files (a test puts them there; the peers' system store trusts their CA). */
    relayOwnTls?: { certificateFile: string; privateKeyFile: string };
    /** rpi1's SSH host key trusted on first use (ssh.trustOnFirstUse) instead of pinned. */
    rpi1TrustOnFirstUse?: boolean;
    /** Direct UDP on the (first) relay (allowDirectUdp), with these further public UDP ports (relay.udpPorts). */
    relayDirectUdp?: { udpPorts: number[] };
    /** rpi1's gateways[].transport: udp and auto send WireGuard straight to the relay's UDP port through the CG-NAT (need relayDirectUdp). */
    rpi1Transport?: "wstunnel" | "udp" | "auto";
    /** The laptop's clients[].transport (udp and auto need relayDirectUdp; udp a hotel that passes UDP to the relay's WireGuard port). */
    laptopTransport?: "wstunnel" | "udp" | "auto";
}

export function labStackConfig(inventory: Inventory, wstunnelBinary: string, changes: LabChanges = {}): StackConfigInput {
    const { relay, rpi1, laptop, relay2, rpi2 } = inventory.hosts;
    const scale = changes.scale;
    if (scale && extraGateways.some((gateway) => inventory.hosts[gateway] === undefined)) {
        throw new Error("gw2..gw5 are not in the lab's inventory: `WG_RELAY_LAB_GATEWAYS=5 lab/hosts.sh up` boots them");
    }
    if (scale && (scale.clients < 0 || scale.clients > maxScaleClients)) {
        throw new Error(`scale.clients: the lab's grown tunnel subnet has room for ${maxScaleClients} more clients, not ${scale.clients}`);
    }
    const grownSubnet = (scale?.clients ?? 0) > scaleClientsInSubnet;
    const sites = changes.sites;
    if (sites && (relay2 === undefined || rpi2 === undefined)) {
        throw new Error("the second site is not in the lab's inventory: `npm run lab -- sites` boots it");
    }
    const firstRelay = {
        ssh: ssh(relay),
        keyRotation: changes.relayKeyRotation ?? 0,
        ...(changes.relayPublicAddress ? { publicAddress: changes.relayPublicAddress } : {}),
        ...(changes.relayDirectUdp ? { allowDirectUdp: true, udpPorts: changes.relayDirectUdp.udpPorts } : {}),
    };
    const siteToSite = (gateway: "rpi1" | "rpi2") => (sites?.siteToSite?.includes(gateway) ? { siteToSite: true } : {});
    return {
        ...(changes.mtu === undefined && !changes.ipv6 && !grownSubnet
            ? {}
            : {
                  tunnel: {
                      ...(grownSubnet ? { subnet: "10.10.0.0/21" } : {}),
                      ...(changes.mtu === undefined ? {} : { mtu: changes.mtu }),
                      ...(changes.ipv6 ? { ipv6: { enabled: true } } : {}),
                  },
              }),
        ...(sites
            ? { relays: [firstRelay, { name: "relay2", ssh: ssh(relay2!), tunnelSubnet: "10.10.1.0/24" }] }
            : { relay: firstRelay }),
        wstunnel: {
            ...(changes.wstunnelMirror
                ? {
                      source: "mirror",
                      mirrorBaseUrl: changes.wstunnelMirror.baseUrl,
                      version: changes.wstunnelMirror.version,
                      sha256: changes.wstunnelMirror.sha256,
                  }
                : { source: "local", localBinary: wstunnelBinary }),
            ...(changes.mutualTls ? { mutualTls: true } : {}),
            ...(changes.relayOwnTls ? { tls: changes.relayOwnTls } : {}),
        },
        gateways: [
            {
                name: "rpi1",
                tunnelAddress: "10.10.0.2",
                lanSubnets: ["192.168.1.0/24", ...(changes.ipv6 ? [labLanIpv6Prefix] : [])],
                // Left out, the interface of rpi1's default route, as on most Pis.
                ...(changes.rpi1LanInterface ? { lanInterface: changes.rpi1LanInterface } : {}),
                ssh: changes.rpi1TrustOnFirstUse
                    ? { host: rpi1.address, user: rpi1.user, trustOnFirstUse: true }
                    : changes.rpi1ViaRelay
                      ? { ...ssh(rpi1), host: "10.10.0.2", via: "relay" }
                      : ssh(rpi1),
                // The gateway has a preshared key and the laptop none, so the lab runs both.
                presharedKey: true,
                keyRotation: changes.gatewayKeyRotation ?? 0,
                ...(changes.rpi1Transport ? { transport: changes.rpi1Transport } : {}),
                ...siteToSite("rpi1"),
            },
            ...(sites ? [{ name: "rpi2", tunnelAddress: "10.10.0.6", lanSubnets: ["192.168.2.0/24"], ssh: ssh(rpi2!), ...siteToSite("rpi2") }] : []),
            ...(scale
                ? extraGateways.map((name, index) => ({
                      name,
                      tunnelAddress: `10.10.0.${230 + index}`,
                      lanSubnets: [`192.168.${12 + index}.0/24`],
                      ssh: ssh(inventory.hosts[name]!),
                  }))
                : []),
        ],
        clients: [
            ...(changes.withoutLaptop
                ? []
                : [
                      {
                          name: "laptop",
                          tunnelAddress: "10.10.0.3",
                          ssh: changes.laptopViaRelay ? { ...ssh(laptop), host: "10.10.0.3", via: "relay" as const } : ssh(laptop),
                          ...(changes.laptopAccess ? { access: changes.laptopAccess } : {}),
                          ...(changes.laptopFullTunnel ? { fullTunnel: true } : {}),
                          ...(changes.laptopTransport ? { transport: changes.laptopTransport } : {}),
                          ...(sites?.laptopPrimaryRelay ? { primaryRelay: sites.laptopPrimaryRelay } : {}),
                      },
                  ]),
            ...(changes.extraClients ?? []),
            ...Array.from({ length: scale?.clients ?? 0 }, (_, index) => ({ name: `scale-${index + 1}`, tunnelAddress: scaleClientAddress(index) })),
        ],
    };
}

if (require.main === module) {
    const [inventoryPath, wstunnelBinary, out, changes] = process.argv.slice(2);
    const config = labStackConfig(JSON.parse(readFileSync(inventoryPath, "utf8")), wstunnelBinary, changes ? JSON.parse(changes) : {});
    parseStackConfig(config as Record<string, unknown>); // fail here, with the schema's message, not in `pulumi up`
    const previous = (existsSync(out) ? yaml.load(readFileSync(out, "utf8")) : {}) as { encryptionsalt?: string; config?: Record<string, unknown> };
    const values: Record<string, unknown> = Object.fromEntries(Object.entries(config).map(([key, value]) => [`wg-relay:${key}`, value]));
    // What the operator sets with `pulumi config set` rather than through LabChanges: the SSH key, and the repair
    // counter (`npm run lab -- repair`), which would otherwise fall back and re-run every step at the next `pulumi up`.
    for (const key of ["wg-relay:sshPrivateKey", "wg-relay:repair"]) {
        if (previous.config?.[key] !== undefined) {
            values[key] = previous.config[key];
        }
    }
    writeFileSync(out, yaml.dump({ ...(previous.encryptionsalt ? { encryptionsalt: previous.encryptionsalt } : {}), config: values }));
}
