import { cidrContains, cidrsOverlap, hostAddress, intToIp, ipToInt, isIpv4, isNetworkOrBroadcast, parseCidr } from "../../components/net";

const cidr = (text: string) => parseCidr(text)!;

describe("IPv4 arithmetic", () => {
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
