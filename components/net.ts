// IPv4 and IPv6 address and CIDR arithmetic for the config checks and the renderers.
// Pure: no Pulumi, no I/O.
import { createHash } from "node:crypto";

export interface Cidr {
    /** Network address as a 32-bit unsigned integer. */
    network: number;
    prefix: number;
}

const octet = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const ipv4Pattern = new RegExp(`^${octet}\\.${octet}\\.${octet}\\.${octet}$`);

export function isIpv4(text: string): boolean {
    return ipv4Pattern.test(text);
}

export function ipToInt(ip: string): number {
    if (!isIpv4(ip)) {
        throw new Error(`not an IPv4 address: ${ip}`);
    }
    return ip.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function intToIp(value: number): string {
    return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

function maskOf(prefix: number): number {
    return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/n"; returns undefined when malformed or when host bits are set. */
export function parseCidr(text: string): Cidr | undefined {
    const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
    if (!match || !isIpv4(match[1])) {
        return undefined;
    }
    const prefix = Number(match[2]);
    if (prefix > 32) {
        return undefined;
    }
    const address = ipToInt(match[1]);
    if ((address & ~maskOf(prefix)) >>> 0 !== 0) {
        return undefined;
    }
    return { network: address, prefix };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
    return ((ipToInt(ip) & maskOf(cidr.prefix)) >>> 0) === cidr.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
    const prefix = Math.min(a.prefix, b.prefix);
    const mask = maskOf(prefix);
    return ((a.network & mask) >>> 0) === ((b.network & mask) >>> 0);
}

/** Every IPv4 address but one, as the 32 prefixes (/1 to /32) that cover the rest of 0.0.0.0/0. */
export function ipv4AllBut(ip: string): string[] {
    const address = ipToInt(ip);
    return Array.from({ length: 32 }, (_, index) => {
        const prefix = index + 1;
        // The address's first `prefix` bits with the last of them flipped.
        const network = ((address & maskOf(prefix)) ^ (2 ** (32 - prefix))) >>> 0;
        return `${intToIp(network)}/${prefix}`;
    });
}

/** The n-th host address of a subnet (1 = first usable). */
export function hostAddress(cidr: Cidr, n: number): string {
    return intToIp(cidr.network + n);
}

/** True for the network and broadcast addresses of subnets larger than /31. */
export function isNetworkOrBroadcast(cidr: Cidr, ip: string): boolean {
    if (cidr.prefix >= 31) {
        return false;
    }
    const value = ipToInt(ip);
    const broadcast = cidr.network + 2 ** (32 - cidr.prefix) - 1;
    return value === cidr.network || value === broadcast;
}

// IPv6, and networks of either family: addresses as 128-bit (or 32-bit) bigints.

/** A network of either family; `network` is its address as an unsigned integer of 32 or 128 bits. */
export interface IpNetwork {
    family: 4 | 6;
    network: bigint;
    prefix: number;
}

const bitsOf = (family: 4 | 6) => (family === 4 ? 32 : 128);

/** Parses an IPv6 address (hex groups, at most one "::"; no zone, no embedded IPv4) to its 128-bit value. */
export function parseIpv6(text: string): bigint | undefined {
    if (!/^[0-9a-fA-F:]{2,39}$/.test(text)) {
        return undefined;
    }
    const halves = text.split("::");
    if (halves.length > 2) {
        return undefined;
    }
    const groups = halves.map((half) => (half === "" ? [] : half.split(":")));
    if (groups.flat().some((group) => !/^[0-9a-fA-F]{1,4}$/.test(group))) {
        return undefined;
    }
    const written = groups.flat().length;
    if (halves.length === 1 ? written !== 8 : written > 7) {
        return undefined;
    }
    const all = halves.length === 1 ? groups[0] : [...groups[0], ...Array<string>(8 - written).fill("0"), ...groups[1]];
    return all.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

export function isIpv6(text: string): boolean {
    return parseIpv6(text) !== undefined;
}

/** The canonical text of an IPv6 address (RFC 5952): lowercase, no leading zeros, the longest run of zero groups as "::". */
export function formatIpv6(value: bigint): string {
    const groups = Array.from({ length: 8 }, (_, index) => Number((value >> BigInt(112 - 16 * index)) & 0xffffn));
    let best = { start: -1, length: 0 };
    for (let start = 0; start < 8; start++) {
        let length = 0;
        while (start + length < 8 && groups[start + length] === 0) {
            length++;
        }
        if (length > best.length) {
            best = { start, length };
        }
    }
    const hex = groups.map((group) => group.toString(16));
    if (best.length < 2) {
        return hex.join(":");
    }
    return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.length).join(":")}`;
}

function networkMask(family: 4 | 6, prefix: number): bigint {
    const bits = BigInt(bitsOf(family));
    return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
    if (isIpv4(text)) {
        return { family: 4, value: BigInt(ipToInt(text)) };
    }
    const value = parseIpv6(text);
    return value === undefined ? undefined : { family: 6, value };
}

/** "a.b.c.d/n" or "x:y::/n"; undefined when malformed or when host bits are set. */
export function parseNetwork(text: string): IpNetwork | undefined {
    const match = /^([^/]+)\/(\d{1,3})$/.exec(text);
    const address = match ? parseAddress(match[1]) : undefined;
    if (!match || !address) {
        return undefined;
    }
    const prefix = Number(match[2]);
    if (prefix > bitsOf(address.family) || (address.value & ~networkMask(address.family, prefix)) !== 0n) {
        return undefined;
    }
    return { family: address.family, network: address.value, prefix };
}

/** An address or a network of either family; an address is a /32 or a /128. */
export function parseAddressOrNetwork(text: string): IpNetwork | undefined {
    const address = parseAddress(text);
    return address ? { family: address.family, network: address.value, prefix: bitsOf(address.family) } : parseNetwork(text);
}

export function formatNetwork(network: IpNetwork): string {
    const address = network.family === 4 ? intToIp(Number(network.network)) : formatIpv6(network.network);
    return `${address}/${network.prefix}`;
}

/** False across families. */
export function networksOverlap(a: IpNetwork, b: IpNetwork): boolean {
    const mask = networkMask(a.family, Math.min(a.prefix, b.prefix));
    return a.family === b.family && (a.network & mask) === (b.network & mask);
}

/** True when every address of `inner` lies in `outer` (of the same family). */
export function networkWithin(inner: IpNetwork, outer: IpNetwork): boolean {
    return outer.prefix <= inner.prefix && networksOverlap(inner, outer);
}

/** The address of `network` with the given host part, e.g. (fd00::/64, 3) is fd00::3. */
export function ipv6HostAddress(network: IpNetwork, hostPart: number): string {
    return formatIpv6(network.network + BigInt(hostPart));
}

/**
 * A unique local /64 (RFC 4193: fd00::/8 and a 40-bit global ID) derived from `seed`, so the same stack always
 * gets the same prefix without storing one; subnet ID 0.
 */
export function uniqueLocalPrefix(seed: string): string {
    const globalId = BigInt(`0x${createHash("sha256").update(seed).digest("hex").slice(0, 10)}`);
    return `${formatIpv6((0xfdn << 120n) | (globalId << 80n))}/64`;
}
