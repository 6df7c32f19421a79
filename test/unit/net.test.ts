import fc from "fast-check";
import { cidrContains, cidrsOverlap, cidrWithin, hostAddress, intToIp, ipToInt, isIpv4, isNetworkOrBroadcast, parseAddressOrCidr, parseCidr } from "../../components/net";

const cidr = (text: string) => parseCidr(text)!;

describe("IPv4 arithmetic", () => {
    it("tells whether one network lies inside another, an address counting as a /32", () => {
        expect(parseAddressOrCidr("192.168.1.20")).toEqual(cidr("192.168.1.20/32"));
        expect(parseAddressOrCidr("192.168.1.1/24")).toBeUndefined();
        expect(parseAddressOrCidr("rpi1")).toBeUndefined();
        expect(cidrWithin(parseAddressOrCidr("192.168.1.20")!, cidr("192.168.1.0/24"))).toBe(true);
        expect(cidrWithin(cidr("192.168.1.128/25"), cidr("192.168.1.0/24"))).toBe(true);
        expect(cidrWithin(cidr("192.168.0.0/16"), cidr("192.168.1.0/24"))).toBe(false);
        expect(cidrWithin(cidr("192.168.2.0/24"), cidr("192.168.1.0/24"))).toBe(false);
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
