// IPv4 address and CIDR arithmetic for the config checks and the renderers.
// Pure: no Pulumi, no I/O.

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

/** True when every address of `inner` lies in `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
    return outer.prefix <= inner.prefix && cidrsOverlap(inner, outer);
}

/** An address or a CIDR as a CIDR (an address is a /32); undefined when it is neither. */
export function parseAddressOrCidr(text: string): Cidr | undefined {
    return isIpv4(text) ? parseCidr(`${text}/32`) : parseCidr(text);
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
