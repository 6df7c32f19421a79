import { ConfigError, parseStackConfig, relayClients, relayPeer, StackConfigInput, stackConfigValues } from "../../components/config";
import { testHostKey, validConfig } from "./fixtures";

function problemsOf(config: unknown): string[] {
    try {
        parseStackConfig(config as Record<string, unknown>);
    } catch (error) {
        if (error instanceof ConfigError) {
            return error.problems;
        }
        throw error;
    }
    throw new Error("expected the config to be rejected");
}

// A throwaway WireGuard key in the right shape.
const testKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

function withChange(change: (config: StackConfigInput & Record<string, any>) => void): StackConfigInput {
    const config = validConfig() as StackConfigInput & Record<string, any>;
    change(config);
    return config;
}

describe("stack config", () => {
    it("accepts the write-up's topology and fills in its defaults", () => {
        const config = parseStackConfig(validConfig() as Record<string, unknown>);
        expect(config.tunnel).toEqual({ subnet: "10.10.0.0/24", prefixLength: 24, mtu: 65000, udpMtu: 1420, keepaliveSeconds: 25 });
        expect(config.relays[0]).toMatchObject({ name: "relay", wireguardPort: 51820, wstunnelPort: 443, publicInterface: "%default-route-dev", publicInterfaceKey: "wg-relay:relay.publicInterface", allowDirectUdp: false });
        expect(config.relays[0].ssh.port).toBe(22);
        expect(config.wstunnel).toMatchObject({ version: "10.6.2", localPort: 51820 });
        expect(config.gateways[0]).toMatchObject({ masquerade: true, lanInterface: "%default-route-dev", lanInterfaceKey: "wg-relay:gateways[0].lanInterface", keyRotation: 0 });
        expect(config.gateways[0].ssh.via).toBe("direct");
        expect(config.clients[0].fullTunnel).toBe(false);
    });

    it("trusts a host's key on first use only when its ssh block says so", () => {
        const config = parseStackConfig(withChange((c) => (c.gateways![0].ssh = { host: "192.168.1.130", trustOnFirstUse: true })) as Record<string, unknown>);
        expect(config.gateways[0].ssh).toEqual({ host: "192.168.1.130", port: 22, user: "root", via: "direct", trustOnFirstUse: true });
        expect(parseStackConfig(validConfig() as Record<string, unknown>).relays[0].ssh.trustOnFirstUse).toBe(false);
    });

    it("resolves what components need, once: the relay's addresses, each client's routes, where wstunnel comes from", () => {
        const config = parseStackConfig(
            withChange((c) => {
                c.clients!.push({ name: "phone", tunnelAddress: "10.10.0.9", routes: [], fullTunnel: true });
                c.wstunnel = { source: "mirror", mirrorBaseUrl: "http://mirror.example/wstunnel/", sha256: { arm64: "b".repeat(64) } };
            }) as Record<string, unknown>,
        );
        expect(config.relays[0]).toMatchObject({ publicAddress: "198.51.100.10", tunnelAddress: "10.10.0.1" });
        expect(config.relays[0].peers.map((peer) => [peer.name, peer.role, peer.tunnelAddress])).toEqual([
            ["rpi1", "gateway", "10.10.0.2"],
            ["laptop", "client", "10.10.0.3"],
            ["phone", "client", "10.10.0.9"],
        ]);
        expect(relayClients(config.relays[0]).map((client) => [client.name, client.fullTunnel])).toEqual([
            ["laptop", false],
            ["phone", true],
        ]);
        expect(config.clients.map((client) => client.routes)).toEqual([["192.168.1.0/24"], []]);
        expect(config.wstunnel.binary).toEqual({ kind: "download", baseUrl: "http://mirror.example/wstunnel", sha256: { arm64: "b".repeat(64) } });
        const local = parseStackConfig(validConfig() as Record<string, unknown>);
        expect(local.wstunnel.binary).toEqual({ kind: "upload", localBinary: "/dev/null" });
        const release = parseStackConfig(withChange((c) => (c.wstunnel = { sha256: { amd64: "a".repeat(64) } })) as Record<string, unknown>);
        expect(release.wstunnel.binary).toEqual({ kind: "download", baseUrl: "https://github.com/erebe/wstunnel/releases/download", sha256: { amd64: "a".repeat(64) } });
    });

    const cases: [string, StackConfigInput | Record<string, unknown>, string][] = [
        ["a malformed host", withChange((c) => (c.relay!.ssh.host = "relay host")), "wg-relay:relay.ssh.host: expected a DNS name or an IPv4 address"],
        ["an out-of-range port", withChange((c) => (c.relay!.wstunnelPort = 70000)), "wg-relay:relay.wstunnelPort:"],
        ["a CIDR with host bits", withChange((c) => (c.tunnel = { subnet: "10.10.0.1/24" })), "wg-relay:tunnel.subnet: expected an IPv4 network in CIDR form"],
        ["a malformed address", withChange((c) => (c.gateways![0].tunnelAddress = "10.10.0.300")), "wg-relay:gateways[0].tunnelAddress: expected an IPv4 address"],
        ["a malformed host key", withChange((c) => (c.relay!.ssh.hostKey = "AAAA")), "wg-relay:relay.ssh.hostKey: expected an SSH host public key line"],
        [
            "an ssh-rsa host key",
            withChange((c) => (c.gateways![0].ssh.hostKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7")),
            "wg-relay:gateways[0].ssh.hostKey: an ssh-rsa host key cannot be pinned (it means SHA-1 RSA, which OpenSSH 8.8 and later refuse): pin the host's ssh-ed25519 or ecdsa-sha2-nistp256/384/521 key",
        ],
        [
            "a relay without a pinned host key",
            withChange((c) => delete c.relay!.ssh.hostKey),
            "wg-relay:relay.ssh.hostKey: no host key pinned, so any machine answering at 198.51.100.10 would get this host's secrets: set it to the host's key (`ssh-keyscan -t ed25519 198.51.100.10` prints it; check it against /etc/ssh/ssh_host_ed25519_key.pub on the host), or set trustOnFirstUse: true beside it",
        ],
        [
            "a gateway without a pinned host key, on another port",
            withChange((c) => (c.gateways![0].ssh = { host: "192.168.1.130", port: 2222 })),
            "wg-relay:gateways[0].ssh.hostKey: no host key pinned, so any machine answering at 192.168.1.130 would get this host's secrets: set it to the host's key (`ssh-keyscan -t ed25519 -p 2222 192.168.1.130` prints it",
        ],
        [
            "a client without a pinned host key",
            withChange((c) => (c.clients![0].ssh = { host: "10.10.0.3", via: "relay" })),
            "wg-relay:clients[0].ssh.hostKey: no host key pinned, so any machine answering at 10.10.0.3",
        ],
        [
            "trust on first use for a host reached through the relay",
            withChange((c) => (c.clients![0].ssh = { host: "10.10.0.3", via: "relay", trustOnFirstUse: true })),
            "wg-relay:clients[0].ssh.trustOnFirstUse: a host reached through the relay (via: relay) cannot be trusted on first use",
        ],
        [
            "trust on first use beside a pinned key",
            withChange((c) => (c.relay!.ssh.trustOnFirstUse = true)),
            "wg-relay:relay.ssh.trustOnFirstUse: the host key is pinned (hostKey): remove trustOnFirstUse",
        ],
        ["a malformed SHA-256", withChange((c) => (c.wstunnel = { source: "release", sha256: { amd64: "abc" } })), "wg-relay:wstunnel.sha256.amd64: expected a SHA-256 digest"],
        ["a malformed version", withChange((c) => (c.wstunnel!.version = "v10.6.2")), "wg-relay:wstunnel.version: expected a release version like 10.6.2"],
        ["a version before 10.4.2", withChange((c) => (c.wstunnel!.version = "10.4.1")), "wg-relay:wstunnel.version: expected a wstunnel 10.x release at or after 10.4.2"],
        ["an unknown key", withChange((c) => ((c.relay as any).listenPort = 1)), "wg-relay:relay.listenPort: unknown key"],
        ["a misspelt key", withChange((c) => ((c.relay as any).wireguardPrt = 1)), "wg-relay:relay.wireguardPrt: unknown key; did you mean wg-relay:relay.wireguardPort?"],
        ["a misspelt top-level key", withChange((c) => ((c as any).client = [])), "wg-relay:client: unknown key; did you mean wg-relay:clients?"],
        ["a misspelt key in a list", withChange((c) => ((c.gateways![0] as any).lanSubnet = [])), "wg-relay:gateways[0].lanSubnet: unknown key; did you mean wg-relay:gateways[0].lanSubnets?"],
        ["a peer outside the tunnel", withChange((c) => (c.clients![0].tunnelAddress = "10.20.0.3")), "wg-relay:clients[0].tunnelAddress: 10.20.0.3 is outside the tunnel subnet 10.10.0.0/24"],
        ["the broadcast address", withChange((c) => (c.clients![0].tunnelAddress = "10.10.0.255")), "wg-relay:clients[0].tunnelAddress: 10.10.0.255 is the network or broadcast address"],
        ["a duplicate address", withChange((c) => (c.clients![0].tunnelAddress = "10.10.0.2")), "wg-relay:clients[0].tunnelAddress: 10.10.0.2 is already used by gateways[0]"],
        ["the relay's address", withChange((c) => (c.clients![0].tunnelAddress = "10.10.0.1")), "wg-relay:clients[0].tunnelAddress: 10.10.0.1 is the relay's tunnel address"],
        ["a LAN overlapping the tunnel", withChange((c) => (c.gateways![0].lanSubnets = ["10.10.0.0/16"])), "wg-relay:gateways[0].lanSubnets[0]: 10.10.0.0/16 overlaps the tunnel subnet 10.10.0.0/24"],
        [
            "LANs overlapping each other",
            withChange((c) => c.gateways!.push({ name: "rpi2", tunnelAddress: "10.10.0.4", lanSubnets: ["192.168.1.128/25"], ssh: { host: "192.168.1.131", hostKey: testHostKey } })),
            "wg-relay:gateways[1].lanSubnets[0]: 192.168.1.128/25 overlaps 192.168.1.0/24 of wg-relay:gateways[0].lanSubnets[0]",
        ],
        ["a duplicate name", withChange((c) => (c.clients![0].name = "rpi1")), "wg-relay:clients[0].name: name 'rpi1' is already used by gateways[0]"],
        ["a name clashing with the relay", withChange((c) => (c.gateways![0].name = "relay")), "wg-relay:gateways[0].name: name 'relay' is already used by relay.name"],
        ["an unsafe name", withChange((c) => (c.clients![0].name = "../etc")), "wg-relay:clients[0].name: expected a name of lowercase letters"],
        ["a route no gateway serves", withChange((c) => (c.clients![0].routes = ["192.168.2.0/24"])), "wg-relay:clients[0].routes[0]: 192.168.2.0/24 is not a LAN subnet of any gateway"],
        [
            "a full tunnel to a relay known only by name",
            withChange((c) => {
                c.relay!.ssh.host = "sync.example.org";
                c.clients![0].fullTunnel = true;
            }),
            "wg-relay:clients[0].fullTunnel: a full tunnel needs relay.publicAddress (or relay.ssh.host) to be an IPv4 address",
        ],
        [
            "an access rule outside the client's routes",
            withChange((c) => (c.clients![0].access = [{ to: "192.168.2.5" }])),
            "wg-relay:clients[0].access[0].to: 192.168.2.5 is outside this client's routes (192.168.1.0/24); name another client by its name",
        ],
        [
            "an access rule towards another client's tunnel address",
            withChange((c) => {
                c.clients!.push({ name: "phone", tunnelAddress: "10.10.0.4" });
                c.clients![0].access = [{ to: "10.10.0.4" }];
            }),
            "wg-relay:clients[0].access[0].to: 10.10.0.4 is outside this client's routes",
        ],
        ["an access rule naming an unknown gateway", withChange((c) => (c.clients![0].access = [{ to: "rpi9" }])), "wg-relay:clients[0].access[0].to: 'rpi9' is not the name of a gateway, a client or a relay"],
        [
            "an access rule naming a gateway none of whose LANs the client routes",
            withChange((c) => Object.assign(c.clients![0], { routes: [], access: [{ to: "rpi1" }] })),
            "wg-relay:clients[0].access[0].to: no LAN of gateway 'rpi1' is in this client's routes (none)",
        ],
        ["an access rule naming the client itself", withChange((c) => (c.clients![0].access = [{ to: "laptop" }])), "wg-relay:clients[0].access[0].to: a client always reaches itself"],
        ["an access rule that is no name or network", withChange((c) => (c.clients![0].access = [{ to: "192.168.1.1/24" }])), "wg-relay:clients[0].access[0].to: expected a gateway's, client's or relay's name"],
        ["ports without a protocol", withChange((c) => (c.clients![0].access = [{ to: "rpi1", ports: [22] }])), "wg-relay:clients[0].access[0].ports: ports need protocol: tcp or udp"],
        ["ports with icmp", withChange((c) => (c.clients![0].access = [{ to: "rpi1", protocol: "icmp", ports: [22] }])), "wg-relay:clients[0].access[0].ports: ports need protocol: tcp or udp"],
        ["a backwards port range", withChange((c) => (c.clients![0].access = [{ to: "rpi1", protocol: "tcp", ports: ["90-80"] }])), "wg-relay:clients[0].access[0].ports[0]:"],
        ["an unknown protocol", withChange((c) => (c.clients![0].access = [{ to: "rpi1", protocol: "sctp" as "tcp" }])), "wg-relay:clients[0].access[0].protocol:"],
        ["further UDP ports while the relay drops UDP", withChange((c) => (c.relay!.udpPorts = [53])), "wg-relay:relay.udpPorts: further UDP ports need allowDirectUdp: true"],
        [
            "WireGuard's own port among the further UDP ports",
            withChange((c) => Object.assign(c.relay!, { allowDirectUdp: true, udpPorts: [53, 51820] })),
            "wg-relay:relay.udpPorts[1]: 51820 is already WireGuard's port or listed before",
        ],
        ["an iPhone on wstunnel", withChange((c) => (c.clients![0].platform = "ios")), "wg-relay:clients[0].transport: iOS has no wstunnel client: use transport: udp"],
        [
            "a Mac provisioned over SSH",
            withChange((c) => Object.assign(c.clients![0], { platform: "macos", ssh: { host: "172.30.0.10", hostKey: testHostKey } })),
            "wg-relay:clients[0].ssh: only a linux client is provisioned over SSH",
        ],
        ["a UDP client while the relay drops UDP", withChange((c) => (c.clients![0].transport = "udp")), "wg-relay:clients[0].transport: 'udp' needs relay.allowDirectUdp: true"],
        [
            "an auto client while the relay drops UDP",
            withChange((c) => Object.assign(c.clients![0], { transport: "auto", ssh: { host: "172.30.0.10", hostKey: testHostKey } })),
            "wg-relay:clients[0].transport: 'auto' needs relay.allowDirectUdp: true, or the relay drops the client's packets",
        ],
        [
            "a bundle-only client on auto",
            withChange((c) => {
                c.relay!.allowDirectUdp = true;
                c.clients![0].transport = "auto";
            }),
            "wg-relay:clients[0].transport: 'auto' switches on the client machine, which needs ssh to provision it; a bundle's stock apps cannot switch",
        ],
        [
            "an auto gateway while the relay drops UDP",
            withChange((c) => (c.gateways![0].transport = "auto")),
            "wg-relay:gateways[0].transport: 'auto' needs relay.allowDirectUdp: true, or the relay drops the gateway's packets",
        ],
        [
            "a UDP gateway while the relay drops UDP",
            withChange((c) => (c.gateways![0].transport = "udp")),
            "wg-relay:gateways[0].transport: 'udp' needs relay.allowDirectUdp: true, or the relay drops the gateway's packets",
        ],
        ["a local source without a binary", withChange((c) => (c.wstunnel = { source: "local" })), "wg-relay:wstunnel.localBinary: source 'local' needs localBinary"],
        ["a release without checksums", withChange((c) => (c.wstunnel = { source: "release" })), "wg-relay:wstunnel.sha256: source 'release' needs the SHA-256"],
        ["a mirror without its URL", withChange((c) => (c.wstunnel = { source: "mirror", sha256: { amd64: "a".repeat(64) } })), "wg-relay:wstunnel.mirrorBaseUrl: source 'mirror' needs mirrorBaseUrl"],
        ["a missing relay", { gateways: [] }, "wg-relay:relay: required, but not set in the stack config"],
        ["a malformed existing key", withChange((c) => (c.clients![0].existingKeys = { privateKey: "abc" })), "wg-relay:clients[0].existingKeys.privateKey: expected a WireGuard key"],
        [
            "existing keys with a rotation",
            withChange((c) => Object.assign(c.clients![0], { existingKeys: { privateKey: testKey }, keyRotation: 1 })),
            "wg-relay:clients[0].keyRotation: existing keys are never rotated by the program",
        ],
        [
            "an existing preshared key without presharedKey: true",
            withChange((c) => (c.clients![0].existingKeys = { privateKey: testKey, presharedKey: testKey })),
            "wg-relay:clients[0].presharedKey: existingKeys.presharedKey is set: set presharedKey: true to use it",
        ],
        [
            "presharedKey: true with existing keys but no preshared key",
            withChange((c) => Object.assign(c.gateways![0], { existingKeys: { privateKey: testKey }, presharedKey: true })),
            "wg-relay:gateways[0].existingKeys.presharedKey: presharedKey: true with existing keys needs the existing preshared key too",
        ],
    ];

    it("resolves each client's access: every LAN it routes by default, names to the networks they stand for", () => {
        const config = parseStackConfig(
            withChange((c) => {
                c.clients!.push({ name: "phone", tunnelAddress: "10.10.0.4", access: [{ to: "laptop", protocol: "tcp", ports: [22, "8000-8080"] }, { to: "rpi1" }, { to: "192.168.1.20" }] });
            }) as Record<string, unknown>,
        );
        expect(relayClients(config.relays[0])[0].access).toEqual([{ to: "192.168.1.0/24", kind: "network", destinations: ["192.168.1.0/24"], protocol: undefined, ports: undefined }]);
        expect(relayClients(config.relays[0])[1].access).toEqual([
            { to: "laptop", kind: "client", destinations: ["10.10.0.3/32"], protocol: "tcp", ports: ["22", "8000:8080"] },
            { to: "rpi1", kind: "gateway", destinations: ["192.168.1.0/24"], protocol: undefined, ports: undefined },
            { to: "192.168.1.20", kind: "network", destinations: ["192.168.1.20/32"], protocol: undefined, ports: undefined },
        ]);
    });

    /** Two sites and two relays: the write-up's topology grown as in the lab. */
    const twoRelays = (change: (config: StackConfigInput & Record<string, any>) => void = () => undefined) =>
        withChange((c) => {
            const { relay, ...rest } = c;
            for (const key of Object.keys(c)) {
                delete c[key];
            }
            Object.assign(c, rest, {
                relays: [relay, { name: "relay2", ssh: { host: "198.51.100.20", hostKey: testHostKey }, tunnelSubnet: "10.10.1.0/24" }],
            });
            c.gateways!.push({ name: "rpi2", tunnelAddress: "10.10.0.6", lanSubnets: ["192.168.2.0/24"], ssh: { host: "192.168.2.130", hostKey: testHostKey } });
            change(c);
        });

    it("resolves several relays: a subnet, local wstunnel port and address of every peer for each, clients' order of preference", () => {
        const config = parseStackConfig(
            twoRelays((c) => {
                c.clients!.push({ name: "phone", tunnelAddress: "10.10.0.4", primaryRelay: "relay2", access: [{ to: "laptop" }] });
            }) as Record<string, unknown>,
        );
        expect(config.relays.map((relay) => [relay.name, relay.tunnel.subnet, relay.tunnelAddress, relay.wstunnelLocalPort, relay.publicAddress])).toEqual([
            ["relay", "10.10.0.0/24", "10.10.0.1", 51820, "198.51.100.10"],
            ["relay2", "10.10.1.0/24", "10.10.1.1", 51821, "198.51.100.20"],
        ]);
        expect(config.gateways.map((gateway) => config.relays.map((relay) => relayPeer(relay, gateway.name).tunnelAddress))).toEqual([
            ["10.10.0.2", "10.10.1.2"],
            ["10.10.0.6", "10.10.1.6"],
        ]);
        expect(config.clients.map((client) => client.relayPreference)).toEqual([
            ["relay", "relay2"],
            ["relay2", "relay"],
        ]);
        // Each relay sees each client at the client's address in its own subnet, in its access rules too.
        expect(config.relays.map((relay) => relayClients(relay).map((client) => client.tunnelAddress))).toEqual([
            ["10.10.0.3", "10.10.0.4"],
            ["10.10.1.3", "10.10.1.4"],
        ]);
        expect(relayClients(config.relays[1])[1].access).toEqual([{ to: "laptop", kind: "client", destinations: ["10.10.1.3/32"], protocol: undefined, ports: undefined }]);
        expect(relayClients(config.relays[1])[0].access.map((grant) => grant.destinations)).toEqual([["192.168.1.0/24"], ["192.168.2.0/24"]]);
        // A relay is asked by a peer's name; a name it does not have is an error, not an undefined address.
        expect(relayPeer(config.relays[1], "phone")).toMatchObject({ role: "client", tunnelAddress: "10.10.1.4" });
        expect(() => relayPeer(config.relays[1], "tablet")).toThrow("tablet is no gateway or client of this relay");
    });

    it("keeps a single relay's model as it was: `relay` is the one relay, on tunnel.subnet", () => {
        const config = parseStackConfig(validConfig() as Record<string, unknown>);
        expect(config.relays).toHaveLength(1);
        expect(config.relays[0]).toMatchObject({ tunnel: config.tunnel, tunnelAddress: "10.10.0.1", wstunnelLocalPort: 51820, siteLinks: [] });
        expect(config.relays.map((relay) => relayPeer(relay, "rpi1").tunnelAddress)).toEqual(["10.10.0.2"]);
        expect(config.gateways[0].siteRoutes).toEqual([]);
    });

    it("links the LANs of gateways with siteToSite both ways through the first relay, and no one else's", () => {
        const config = parseStackConfig(
            twoRelays((c) => {
                c.gateways![0].siteToSite = true;
                c.gateways![1].siteToSite = true;
                c.gateways!.push({ name: "rpi3", tunnelAddress: "10.10.0.7", lanSubnets: ["192.168.3.0/24"], ssh: { host: "192.168.3.130", hostKey: testHostKey } });
            }) as Record<string, unknown>,
        );
        expect(config.relays[0].siteLinks).toEqual([
            { from: "rpi1", to: "rpi2", source: "192.168.1.0/24", destination: "192.168.2.0/24" },
            { from: "rpi2", to: "rpi1", source: "192.168.2.0/24", destination: "192.168.1.0/24" },
        ]);
        expect(config.relays[1].siteLinks).toEqual([]);
        expect(config.gateways.map((gateway) => gateway.siteRoutes)).toEqual([["192.168.2.0/24"], ["192.168.1.0/24"], []]);
    });

    const severalRelayCases: [string, StackConfigInput | Record<string, unknown>, string][] = [
        ["both relay and relays", twoRelays((c) => (c.relay = c.relays![0])), "wg-relay:relays: set either relay (one relay) or relays (several), not both"],
        ["two relays of one name", twoRelays((c) => delete c.relays![1].name), "wg-relay:relays[1].name: name 'relay' is already used by relays[0].name"],
        ["a second relay without a pinned host key", twoRelays((c) => delete c.relays![1].ssh.hostKey), "wg-relay:relays[1].ssh.hostKey: no host key pinned, so any machine answering at 198.51.100.20"],
        ["a second relay without a subnet", twoRelays((c) => delete c.relays![1].tunnelSubnet), "wg-relay:relays[1].tunnelSubnet: required for every relay after the first"],
        [
            "a first relay with a subnet of its own",
            twoRelays((c) => (c.relays![0].tunnelSubnet = "10.10.5.0/24")),
            "wg-relay:relays[0].tunnelSubnet: the first relay's tunnel subnet is tunnel.subnet (10.10.0.0/24): leave tunnelSubnet out",
        ],
        ["a relay's address outside its own subnet", twoRelays((c) => (c.relays![1].tunnelAddress = "10.10.0.9")), "wg-relay:relays[1].tunnelAddress: 10.10.0.9 is outside the tunnel subnet 10.10.1.0/24"],
        ["relay subnets that overlap", twoRelays((c) => (c.relays![1].tunnelSubnet = "10.10.0.0/24")), "wg-relay:relays[1].tunnelSubnet: 10.10.0.0/24 overlaps 10.10.0.0/24 of wg-relay:tunnel.subnet"],
        ["a relay subnet of another size", twoRelays((c) => (c.relays![1].tunnelSubnet = "10.10.2.0/23")), "wg-relay:relays[1].tunnelSubnet: 10.10.2.0/23 is not the size of tunnel.subnet 10.10.0.0/24"],
        [
            "a LAN overlapping the second relay's subnet",
            twoRelays((c) => (c.gateways![1].lanSubnets = ["10.10.1.0/25"])),
            "wg-relay:gateways[1].lanSubnets[0]: 10.10.1.0/25 overlaps the tunnel subnet 10.10.1.0/24 of wg-relay:relays[1].tunnelSubnet",
        ],
        [
            "LANs of two sites that overlap",
            twoRelays((c) => (c.gateways![1].lanSubnets = ["192.168.0.0/16"])),
            "wg-relay:gateways[1].lanSubnets[0]: 192.168.0.0/16 overlaps 192.168.1.0/24 of wg-relay:gateways[0].lanSubnets[0]",
        ],
        ["a peer on a relay's host part", twoRelays((c) => (c.relays![1].tunnelAddress = "10.10.1.3")), "wg-relay:clients[0].tunnelAddress: 10.10.0.3 has the host part of relays[1]'s tunnel address"],
        ["an unknown primary relay", twoRelays((c) => (c.clients![0].primaryRelay = "relay9")), "wg-relay:clients[0].primaryRelay: 'relay9' is not the name of a relay"],
        ["a full tunnel with several relays", twoRelays((c) => (c.clients![0].fullTunnel = true)), "wg-relay:clients[0].fullTunnel: a full tunnel with several relays is not supported"],
        [
            "an auto client with several relays",
            twoRelays((c) => {
                c.relays!.forEach((relay) => (relay.allowDirectUdp = true));
                Object.assign(c.clients![0], { transport: "auto", ssh: { host: "172.30.0.10", hostKey: testHostKey } });
            }),
            "wg-relay:clients[0].transport: 'auto' works with one relay only so far",
        ],
        [
            "an auto gateway with several relays",
            twoRelays((c) => {
                c.relays!.forEach((relay) => (relay.allowDirectUdp = true));
                c.gateways![1].transport = "auto";
            }),
            "wg-relay:gateways[1].transport: 'auto' works with one relay only so far",
        ],
        [
            "a UDP client while one relay drops UDP",
            twoRelays((c) => {
                c.relays![0].allowDirectUdp = true;
                c.clients![0].transport = "udp";
            }),
            "wg-relay:clients[0].transport: 'udp' needs relays[1].allowDirectUdp: true",
        ],
        [
            "a UDP gateway while one relay drops UDP",
            twoRelays((c) => {
                c.relays![0].allowDirectUdp = true;
                c.gateways![1].transport = "udp";
            }),
            "wg-relay:gateways[1].transport: 'udp' needs relays[1].allowDirectUdp: true",
        ],
        ["neither relay nor relays", withChange((c) => delete c.relay), "wg-relay:relay: required, but not set in the stack config"],
    ];

    it.each(severalRelayCases)("rejects %s with a message naming the keys", (_what, config, expected) => {
        expect(problemsOf(config)).toEqual(expect.arrayContaining([expect.stringContaining(expected)]));
    });

    it.each(cases)("rejects %s with a message naming the key", (_what, config, expected) => {
        expect(problemsOf(config)).toEqual(expect.arrayContaining([expect.stringContaining(expected)]));
    });

    it("reads every wg-relay key but the secret one, so misspelt keys reach the schema", () => {
        expect(
            stackConfigValues({
                "wg-relay:relay": '{"ssh":{"host":"198.51.100.10"}}',
                "wg-relay:gateway": "[]",
                "wg-relay:note": "plain text",
                "wg-relay:sshPrivateKey": "the SSH key, read as a secret elsewhere",
                "other:relay": "{}",
            }),
        ).toEqual({ relay: { ssh: { host: "198.51.100.10" } }, gateway: [], note: "plain text" });
    });

    it("reports every problem at once, one line each: field, cross-field and unknown-key mistakes mixed", () => {
        const problems = problemsOf(
            withChange((c) => {
                c.relay!.ssh.host = "bad host";
                c.relay!.wstunnelPort = 70000;
                c.clients![0].tunnelAddress = "10.20.0.3";
                c.gateways![0].lanSubnets = ["10.10.0.0/16"];
                (c as any).gateway = [];
            }),
        );
        expect(problems.sort()).toEqual([
            "wg-relay:clients[0].tunnelAddress: 10.20.0.3 is outside the tunnel subnet 10.10.0.0/24",
            "wg-relay:gateway: unknown key; did you mean wg-relay:gateways?",
            "wg-relay:gateways[0].lanSubnets[0]: 10.10.0.0/16 overlaps the tunnel subnet 10.10.0.0/24 of wg-relay:tunnel.subnet",
            "wg-relay:relay.ssh.host: expected a DNS name or an IPv4 address",
            expect.stringMatching(/^wg-relay:relay\.wstunnelPort: /),
        ]);
    });

    it("checks the rest of a part whose own keys are wrong, and adds nothing about what did not parse", () => {
        const problems = problemsOf(
            withChange((c) => {
                Object.assign(c.gateways![0], { tunnelAddress: "10.10.0.300", lanSubnet: [] });
                Object.assign(c.clients![0], { name: "rpi1", routes: ["192.168.1.0/24"], access: [{ to: "rpi1" }], primaryRelay: "Relay!" });
            }),
        );
        // The gateway still serves its LAN and keeps its name; the malformed primaryRelay is not looked up among the relays.
        expect(problems.sort()).toEqual([
            "wg-relay:clients[0].name: name 'rpi1' is already used by gateways[0]",
            expect.stringMatching(/^wg-relay:clients\[0\]\.primaryRelay: expected a name/),
            "wg-relay:gateways[0].lanSubnet: unknown key; did you mean wg-relay:gateways[0].lanSubnets?",
            "wg-relay:gateways[0].tunnelAddress: expected an IPv4 address like 10.10.0.2",
        ]);
    });

    it("checks what it can around malformed parts, and never trips over them", () => {
        const problems = problemsOf({ relay: "relay.example.org", gateways: "rpi1", clients: [{ name: "laptop", tunnelAddress: "10.10.0.300" }, 7] });
        expect(problems.sort()).toEqual([
            "wg-relay:clients[0].tunnelAddress: expected an IPv4 address like 10.10.0.2",
            expect.stringMatching(/^wg-relay:clients\[1\]: /),
            expect.stringMatching(/^wg-relay:gateways: /),
            expect.stringMatching(/^wg-relay:relay: /),
            expect.stringMatching(/^wg-relay:wstunnel\.sha256: source 'release' needs the SHA-256 of wstunnel 10\.6\.2's archive/),
        ]);
    });
});

describe("IPv6 inside the tunnel", () => {
    const withIpv6 = (change: (config: StackConfigInput & Record<string, any>) => void = () => {}) =>
        withChange((c) => {
            c.tunnel = { ipv6: { enabled: true } };
            change(c);
        });

    it("is off by default: no IPv6 address anywhere, and an IPv6 LAN is refused, naming the key", () => {
        const config = parseStackConfig(validConfig() as Record<string, unknown>);
        expect(config.tunnel.ipv6).toBeUndefined();
        expect([config.relays[0].tunnelAddress6, config.gateways[0].tunnelAddress6, config.clients[0].tunnelAddress6]).toEqual([undefined, undefined, undefined]);
        expect(relayClients(config.relays[0])[0].access[0].destinations).toEqual(["192.168.1.0/24"]);
        expect(problemsOf(withChange((c) => c.gateways![0].lanSubnets.push("fd00:1::/64")))).toEqual([
            "wg-relay:gateways[0].lanSubnets[1]: fd00:1::/64 is an IPv6 network: set tunnel.ipv6.enabled: true to route IPv6 LANs",
        ]);
    });

    it("gives every peer the host part of its IPv4 tunnel address in a unique local /64 of the stack's own", () => {
        const config = parseStackConfig(withIpv6((c) => c.gateways![0].lanSubnets.push("fd00:1::/64")) as Record<string, unknown>);
        const prefix = config.tunnel.ipv6!.prefix;
        expect(prefix).toMatch(/^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/);
        // Derived, not random: the same config gives the same prefix, another relay address another one.
        expect(parseStackConfig(withIpv6() as Record<string, unknown>).tunnel.ipv6!.prefix).toBe(prefix);
        expect(parseStackConfig(withIpv6((c) => (c.relay!.ssh.host = "198.51.100.11")) as Record<string, unknown>).tunnel.ipv6!.prefix).not.toBe(prefix);
        const host = (part: number) => prefix.replace("::/64", `::${part}`);
        expect(config.relays[0].tunnelAddress6).toBe(host(1));
        expect(config.gateways[0].tunnelAddress6).toBe(host(2));
        expect(config.clients[0].tunnelAddress6).toBe(host(3));
        expect(config.relays[0].tunnel.ipv6).toEqual({ prefix, prefixLength: 64 });
        expect(config.clients[0].routes).toEqual(["192.168.1.0/24", "fd00:1::/64"]);
        expect(relayClients(config.relays[0])[0]).toMatchObject({ tunnelAddress6: host(3), access: [{ to: "192.168.1.0/24" }, { to: "fd00:1::/64" }] });
    });

    it("takes a configured prefix, and resolves a client's name and an IPv6 host in access rules", () => {
        const config = parseStackConfig(
            withIpv6((c) => {
                c.tunnel!.ipv6 = { enabled: true, prefix: "fd12:3456:789a:1::/64" };
                c.gateways![0].lanSubnets.push("fd00:1::/64");
                c.clients!.push({ name: "phone", tunnelAddress: "10.10.0.4", access: [{ to: "laptop" }, { to: "fd00:1::20" }, { to: "rpi1" }] });
            }) as Record<string, unknown>,
        );
        expect(config.clients[1].tunnelAddress6).toBe("fd12:3456:789a:1::4");
        expect(relayClients(config.relays[0])[1].access.map((grant) => grant.destinations)).toEqual([
            ["10.10.0.3/32", "fd12:3456:789a:1::3/128"],
            ["fd00:1::20/128"],
            ["192.168.1.0/24", "fd00:1::/64"],
        ]);
    });

    it("lets an access rule name a gateway's own tunnel addresses, of both families, and no other tunnel address", () => {
        const config = parseStackConfig(withIpv6() as Record<string, unknown>);
        const gatewayAddress6 = config.gateways[0].tunnelAddress6!;
        const laptopWith = (to: string) => withIpv6((c) => (c.clients![0].access = [{ to, protocol: "icmp" }]));
        expect(relayClients(parseStackConfig(laptopWith(gatewayAddress6) as Record<string, unknown>).relays[0])[0].access[0].destinations).toEqual([`${gatewayAddress6}/128`]);
        expect(relayClients(parseStackConfig(laptopWith("10.10.0.2") as Record<string, unknown>).relays[0])[0].access[0].destinations).toEqual(["10.10.0.2/32"]);
        expect(problemsOf(laptopWith(gatewayAddress6.replace(/::2$/, "::9")))).toEqual([
            `wg-relay:clients[0].access[0].to: ${gatewayAddress6.replace(/::2$/, "::9")} is outside this client's routes (192.168.1.0/24); name another client by its name`,
        ]);
    });

    it("names the key of every IPv6 mistake", () => {
        const problems = problemsOf(
            withChange((c) => {
                c.tunnel = { subnet: "10.10.0.0/16", ipv6: { enabled: true, prefix: "fd12:3456:789a::/120" } };
                c.gateways![0].lanSubnets.push("fd00:1:0::/64", "FD00:2::/64", "fd00:3::1/64");
                c.clients![0].routes = ["fd00:9::/64"];
                c.clients!.push({ name: "phone", tunnelAddress: "10.10.0.4", access: [{ to: "fd00:8::20" }] });
            }),
        );
        expect(problems.sort()).toEqual([
            "wg-relay:clients[0].routes[0]: fd00:9::/64 is not a LAN subnet of any gateway",
            "wg-relay:clients[1].access[0].to: fd00:8::20 is outside this client's routes (192.168.1.0/24, fd00:1:0::/64, FD00:2::/64); name another client by its name",
            "wg-relay:gateways[0].lanSubnets[1]: expected the canonical form of this network: fd00:1::/64",
            "wg-relay:gateways[0].lanSubnets[2]: expected the canonical form of this network: fd00:2::/64",
            "wg-relay:gateways[0].lanSubnets[3]: expected a network in CIDR form with no host bits set, like 192.168.1.0/24 or fd00:1::/64",
            "wg-relay:tunnel.ipv6.prefix: fd12:3456:789a::/120 has fewer host addresses than tunnel.subnet 10.10.0.0/16: a peer's IPv6 address has the host part of its IPv4 one",
        ]);
        expect(problemsOf(withChange((c) => (c.tunnel = { ipv6: { enabled: false, prefix: "fd12:3456:789a::/64" } })))).toEqual([
            "wg-relay:tunnel.ipv6.prefix: a prefix is set but IPv6 is off: set tunnel.ipv6.enabled: true too",
        ]);
        expect(problemsOf(withIpv6((c) => (c.tunnel!.ipv6 = { enabled: true, prefix: "10.20.0.0/24" })))).toEqual([
            "wg-relay:tunnel.ipv6.prefix: 10.20.0.0/24 is an IPv4 network: expected an IPv6 prefix like fd12:3456:789a::/64",
        ]);
        expect(
            problemsOf(
                withIpv6((c) => {
                    c.tunnel!.ipv6 = { enabled: true, prefix: "fd12:3456:789a::/64" };
                    c.gateways![0].lanSubnets.push("fd12:3456:789a::/48", "fd00:1::/64", "fd00:1::/56");
                }),
            ),
        ).toEqual([
            "wg-relay:gateways[0].lanSubnets[1]: fd12:3456:789a::/48 overlaps the tunnel subnet fd12:3456:789a::/64 of wg-relay:tunnel.ipv6.prefix",
            "wg-relay:gateways[0].lanSubnets[3]: fd00:1::/56 overlaps fd00:1::/64 of wg-relay:gateways[0].lanSubnets[2]",
        ]);
        expect(
            problemsOf(
                withIpv6((c) => {
                    c.relays = [c.relay!, { name: "relay2", ssh: { host: "192.0.2.20", hostKey: testHostKey }, tunnelSubnet: "10.10.1.0/24" }];
                    delete c.relay;
                }),
            ),
        ).toEqual(["wg-relay:tunnel.ipv6.enabled: IPv6 inside the tunnel with several relays is not supported yet: use one relay, or leave IPv6 off"]);
    });
});
