import fc from "fast-check";
import {
    cidrContains,
    cidrsOverlap,
    formatIpv6,
    formatNetwork,
    hostAddress,
    intToIp,
    ipToInt,
    ipv4AllBut,
    ipv6HostAddress,
    isIpv4,
    isIpv6,
    isNetworkOrBroadcast,
    networksOverlap,
    networkWithin,
    parseAddressOrNetwork,
    parseCidr,
    parseIpv6,
    parseNetwork,
    uniqueLocalPrefix,
} from "../../components/net";

const cidr = (text: string) => parseCidr(text)!;

describe("IPv4 arithmetic", () => {
    it("tells whether one network lies inside another, an address counting as a /32", () => {
        const network = (text: string) => parseAddressOrNetwork(text)!;
        expect(parseAddressOrNetwork("192.168.1.20")).toEqual(parseNetwork("192.168.1.20/32"));
        expect(parseAddressOrNetwork("192.168.1.1/24")).toBeUndefined();
        expect(parseAddressOrNetwork("rpi1")).toBeUndefined();
        expect(networkWithin(network("192.168.1.20"), network("192.168.1.0/24"))).toBe(true);
        expect(networkWithin(network("192.168.1.128/25"), network("192.168.1.0/24"))).toBe(true);
        expect(networkWithin(network("192.168.0.0/16"), network("192.168.1.0/24"))).toBe(false);
        expect(networkWithin(network("192.168.2.0/24"), network("192.168.1.0/24"))).toBe(false);
    });

    it("parses addresses and rejects malformed ones", () => {
        expect(["0.0.0.0", "10.10.0.1", "255.255.255.255"].every(isIpv4)).toBe(true);
        expect(["256.0.0.1", "10.10.0", "10.10.0.01", "a.b.c.d", " 10.0.0.1"].some(isIpv4)).toBe(false);
        expect(intToIp(ipToInt("192.168.1.130"))).toBe("192.168.1.130");
        expect(ipToInt("255.255.255.255")).toBe(2 ** 32 - 1);
    });

    it("parses CIDRs only without host bits", () => {
        expect(parseCidr("10.10.0.0/24")).toEqual({ network: ipToInt("10.10.0.0"), prefix: 24 });
        expect(parseCidr("0.0.0.0/0")).toEqual({ network: 0, prefix: 0 });
        expect(parseCidr("10.10.0.1/24")).toBeUndefined();
        expect(parseCidr("10.10.0.0/33")).toBeUndefined();
        expect(parseCidr("10.10.0.0")).toBeUndefined();
    });

    it("tells containment and overlap, at every prefix length", () => {
        expect(cidrContains(cidr("10.10.0.0/24"), "10.10.0.255")).toBe(true);
        expect(cidrContains(cidr("10.10.0.0/24"), "10.10.1.0")).toBe(false);
        expect(cidrContains(cidr("0.0.0.0/0"), "203.0.113.7")).toBe(true);
        expect(cidrsOverlap(cidr("192.168.1.0/24"), cidr("192.168.1.128/25"))).toBe(true);
        expect(cidrsOverlap(cidr("192.168.1.0/25"), cidr("192.168.1.128/25"))).toBe(false);
        for (let prefix = 0; prefix <= 32; prefix++) {
            const network = cidr(`${intToIp(ipToInt("10.0.0.0") & (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0))}/${prefix}`);
            expect(cidrsOverlap(network, cidr("10.0.0.0/32"))).toBe(true);
            expect(cidrContains(network, "10.0.0.0")).toBe(true);
        }
    });

    it("knows hosts, network and broadcast addresses", () => {
        expect(hostAddress(cidr("10.10.0.0/24"), 1)).toBe("10.10.0.1");
        expect(isNetworkOrBroadcast(cidr("10.10.0.0/24"), "10.10.0.0")).toBe(true);
        expect(isNetworkOrBroadcast(cidr("10.10.0.0/24"), "10.10.0.255")).toBe(true);
        expect(isNetworkOrBroadcast(cidr("10.10.0.0/24"), "10.10.0.1")).toBe(false);
        expect(isNetworkOrBroadcast(cidr("10.10.0.0/31"), "10.10.0.0")).toBe(false);
    });
});

describe("IPv4 arithmetic, for any address and prefix (fast-check)", () => {
    const address = fc.integer({ min: 0, max: 2 ** 32 - 1 });
    const prefix = fc.integer({ min: 0, max: 32 });
    const network = (value: number, length: number) => (length === 0 ? 0 : (value & ((0xffffffff << (32 - length)) >>> 0)) >>> 0);
    const cidrOf = fc.tuple(address, prefix).map(([value, length]) => parseCidr(`${intToIp(network(value, length))}/${length}`)!);
    /** A reference for containment: compare the leading `length` bits as text. */
    const bits = (value: number) => value.toString(2).padStart(32, "0");

    it("covers every address but the one left out, each exactly once (a full tunnel's AllowedIPs around the relay)", () => {
        fc.assert(
            fc.property(address, address, (left, other) => {
                const prefixes = ipv4AllBut(intToIp(left)).map(cidr);
                expect(prefixes.some((each) => cidrContains(each, intToIp(left)))).toBe(false);
                expect(prefixes.filter((each) => cidrContains(each, intToIp(other))).length).toBe(other === left ? 0 : 1);
            }),
        );
        expect(ipv4AllBut("198.51.100.10").slice(0, 3)).toEqual(["0.0.0.0/1", "128.0.0.0/2", "224.0.0.0/3"]);
        expect(ipv4AllBut("198.51.100.10").at(-1)).toBe("198.51.100.11/32");
    });

    it("round-trips addresses through text", () => {
        fc.assert(fc.property(address, (value) => ipToInt(intToIp(value)) === value && isIpv4(intToIp(value))));
    });

    it("parses every network it prints, and refuses it with a host bit set", () => {
        fc.assert(
            fc.property(address, prefix, (value, length) => {
                const text = `${intToIp(network(value, length))}/${length}`;
                expect(parseCidr(text)).toEqual({ network: network(value, length), prefix: length });
                if (length < 32) {
                    const withHostBit = `${intToIp((network(value, length) | 1) >>> 0)}/${length}`;
                    expect(parseCidr(withHostBit)).toBeUndefined();
                }
            }),
        );
    });

    it("contains exactly the addresses that share its leading bits", () => {
        fc.assert(
            fc.property(cidrOf, address, (cidr, value) => {
                const expected = bits(value).slice(0, cidr.prefix) === bits(cidr.network).slice(0, cidr.prefix);
                return cidrContains(cidr, intToIp(value)) === expected;
            }),
        );
    });

    it("overlaps exactly when one contains the other's network, symmetrically", () => {
        fc.assert(
            fc.property(cidrOf, cidrOf, (a, b) => {
                const expected = cidrContains(a, intToIp(b.network)) || cidrContains(b, intToIp(a.network));
                return cidrsOverlap(a, b) === expected && cidrsOverlap(b, a) === expected;
            }),
        );
    });

    it("names host addresses inside the subnet, and only its first and last as network and broadcast", () => {
        fc.assert(
            fc.property(cidrOf.filter((cidr) => cidr.prefix <= 30), fc.nat(), (cidr, n) => {
                const size = 2 ** (32 - cidr.prefix);
                const host = hostAddress(cidr, 1 + (n % (size - 2)));
                expect(cidrContains(cidr, host)).toBe(true);
                expect(isNetworkOrBroadcast(cidr, host)).toBe(false);
                expect(isNetworkOrBroadcast(cidr, intToIp(cidr.network))).toBe(true);
                expect(isNetworkOrBroadcast(cidr, intToIp(cidr.network + size - 1))).toBe(true);
            }),
        );
    });
});

describe("IPv6 and networks of either family", () => {
    const network = (text: string) => parseNetwork(text)!;

    it("parses IPv6 addresses in every written form, and rejects malformed ones", () => {
        expect(parseIpv6("::")).toBe(0n);
        expect(parseIpv6("::1")).toBe(1n);
        expect(parseIpv6("fd00::")).toBe(0xfdn << 120n);
        expect(parseIpv6("FD00:0:0:0:0:0:0:1")).toBe((0xfdn << 120n) | 1n);
        expect(parseIpv6("2001:db8::8:800:200c:417a")).toBe(0x20010db8000000000008_0800200c417an);
        for (const bad of ["", ":", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "::12345", "g::1", "::ffff:10.0.0.1", "fe80::1%eth0", "1:2:3:4:5:6:7::8"]) {
            expect([bad, parseIpv6(bad)]).toEqual([bad, undefined]);
        }
        expect(isIpv6("10.10.0.1")).toBe(false);
    });

    it("prints the canonical form (RFC 5952)", () => {
        expect(formatIpv6(0n)).toBe("::");
        expect(formatIpv6(1n)).toBe("::1");
        expect(formatIpv6(parseIpv6("2001:0db8:0000:0000:0001:0000:0000:0001")!)).toBe("2001:db8::1:0:0:1");
        expect(formatIpv6(parseIpv6("2001:db8:0:1:1:1:1:1")!)).toBe("2001:db8:0:1:1:1:1:1");
        expect(formatIpv6(parseIpv6("fd00:0:0:1::")!)).toBe("fd00:0:0:1::");
    });

    it("parses networks of both families, only without host bits, and an address as a /32 or /128", () => {
        expect(network("10.10.0.0/24")).toEqual({ family: 4, network: BigInt(ipToInt("10.10.0.0")), prefix: 24 });
        expect(network("fd00:1::/64")).toEqual({ family: 6, network: parseIpv6("fd00:1::"), prefix: 64 });
        expect(parseNetwork("fd00:1::1/64")).toBeUndefined();
        expect(parseNetwork("fd00::/129")).toBeUndefined();
        expect(parseNetwork("10.0.0.0/33")).toBeUndefined();
        expect(parseAddressOrNetwork("fd00::20")).toEqual(network("fd00::20/128"));
        expect(parseAddressOrNetwork("192.168.1.20")).toEqual(network("192.168.1.20/32"));
        expect(formatNetwork(network("FD00:0:0:1::/64"))).toBe("fd00:0:0:1::/64");
        expect(formatNetwork(network("10.10.0.0/24"))).toBe("10.10.0.0/24");
    });

    it("never overlaps across families", () => {
        expect(networksOverlap(network("0.0.0.0/0"), network("::/0"))).toBe(false);
        expect(networksOverlap(network("::/96"), network("10.0.0.0/8"))).toBe(false);
        expect(networkWithin(network("fd00::20/128"), network("fd00::/64"))).toBe(true);
        expect(networkWithin(network("fd00::/48"), network("fd00::/64"))).toBe(false);
        expect(networkWithin(network("fd00:0:0:1::/64"), network("fd00::/64"))).toBe(false);
    });

    it("puts a host part into a prefix", () => {
        expect(ipv6HostAddress(network("fd00:1::/64"), 3)).toBe("fd00:1::3");
        expect(ipv6HostAddress(network("fd00:1::/64"), 256)).toBe("fd00:1::100");
    });

    it("derives a unique local /64 from a seed: the same for the same seed, in fd00::/8", () => {
        const prefix = uniqueLocalPrefix("relay 198.51.100.10");
        expect(prefix).toBe(uniqueLocalPrefix("relay 198.51.100.10"));
        expect(prefix).not.toBe(uniqueLocalPrefix("relay 198.51.100.11"));
        expect(prefix).toMatch(/^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/);
        expect(networkWithin(network(prefix), network("fd00::/8"))).toBe(true);
    });
});

describe("IPv6 arithmetic, for any address and prefix (fast-check)", () => {
    const address = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
    /** Addresses with long zero runs, where "::" compression happens. */
    const sparse = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }).map((groups) => groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n));
    const prefix = fc.integer({ min: 0, max: 128 });
    const maskTo = (value: bigint, length: number) => (value >> BigInt(128 - length)) << BigInt(128 - length);
    const bits = (value: bigint) => value.toString(2).padStart(128, "0");

    it("round-trips addresses through canonical text, which is never longer than another form", () => {
        fc.assert(
            fc.property(fc.oneof(address, sparse), (value) => {
                const text = formatIpv6(value);
                const full = Array.from({ length: 8 }, (_, index) => ((value >> BigInt(112 - 16 * index)) & 0xffffn).toString(16)).join(":");
                return parseIpv6(text) === value && parseIpv6(full) === value && text.length <= full.length && text === text.toLowerCase() && !/:::/.test(text);
            }),
        );
    });

    it("parses every network it prints, and refuses it with a host bit set", () => {
        fc.assert(
            fc.property(address, prefix, (value, length) => {
                const text = `${formatIpv6(maskTo(value, length))}/${length}`;
                expect(parseNetwork(text)).toEqual({ family: 6, network: maskTo(value, length), prefix: length });
                if (length < 128) {
                    expect(parseNetwork(`${formatIpv6(maskTo(value, length) | 1n)}/${length}`)).toBeUndefined();
                }
            }),
        );
    });

    it("overlaps exactly when the shorter prefix's leading bits agree, symmetrically", () => {
        fc.assert(
            fc.property(address, prefix, address, prefix, (x, xLength, y, yLength) => {
                const a = { family: 6 as const, network: maskTo(x, xLength), prefix: xLength };
                const b = { family: 6 as const, network: maskTo(y, yLength), prefix: yLength };
                const shorter = Math.min(xLength, yLength);
                const expected = bits(a.network).slice(0, shorter) === bits(b.network).slice(0, shorter);
                return networksOverlap(a, b) === expected && networksOverlap(b, a) === expected && networkWithin(a, b) === (expected && yLength <= xLength);
            }),
        );
    });
});
