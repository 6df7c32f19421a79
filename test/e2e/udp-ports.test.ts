// End to end: relay.udpPorts lets a stock WireGuard conf (no wstunnel) through a network that passes only some UDP
// ports. The lab's hotel drops all UDP but port 53. A bundle-only client on plain UDP ("udp-phone") has its port-53
// conf brought up on the laptop host by wg-quick, as the WireGuard apps would (the laptop's own wg0 stopped
// meanwhile, as the two share the tunnel's addresses), and must reach the LAN; with the port removed, it must not,
// and the relay's redirect is gone. The laptop's own wstunnel tunnel (TCP 443) keeps working beside it.
// Needs root; run with `npm run test:all`.
import type { LabChanges } from "../../lab/stack-config";
import type { ClientBundle } from "../../components/clientBundle";
import { ensureStack, eventually, inNamespace, lab, lanService, onHost, onHostOk } from "./lab";

const udpPhone = { name: "udp-phone", tunnelAddress: "10.10.0.7", transport: "udp" as const };
const port53Open: LabChanges = { extraClients: [udpPhone], relayDirectUdp: { udpPorts: [53] } };
const port53Closed: LabChanges = { extraClients: [udpPhone], relayDirectUdp: { udpPorts: [] } };
/** The stock conf's interface on the laptop host: started by the lab image's wg-quick@ unit, as wg0 is. */
const stockInterface = "wgphone";

function bundleOf(name: string): ClientBundle {
    return JSON.parse(lab(["pulumi", "stack", "output", "clientBundles", "--stack", "lab", "--show-secrets", "--json"]))[name];
}

const relayRedirects = () => onHostOk("relay", "iptables -w -t nat -S PREROUTING").split("\n").filter((line) => line.includes("REDIRECT"));
const getsPage = () => inNamespace("laptop", ["curl", "--silent", "--max-time", "3", lanService]).stdout.includes("hello from lanhost");

/** Runs `check` with the stock conf up on the laptop in place of its wg0, which is back (and answering) afterwards. */
async function withStockConf<T>(conf: string, check: () => Promise<T>): Promise<T> {
    const encoded = Buffer.from(conf).toString("base64");
    onHostOk("laptop", `systemctl stop wg-quick@wg0 && echo ${encoded} | base64 -d > /etc/wireguard/${stockInterface}.conf && chmod 600 /etc/wireguard/${stockInterface}.conf && systemctl start wg-quick@${stockInterface}`);
    try {
        return await check();
    } finally {
        onHost("laptop", `systemctl stop wg-quick@${stockInterface}; rm -f /etc/wireguard/${stockInterface}.conf; systemctl start wg-quick@wg0`);
    }
}

jest.setTimeout(15 * 60_000);

describe("relay.udpPorts: stock confs through a network that passes only UDP 53", () => {
    it("reaches the LAN through UDP 53 with the port open, and not once it is closed; wstunnel on 443 is unaffected", async () => {
        ensureStack(port53Open);
        const bundle = bundleOf(udpPhone.name);
        expect(bundle.wstunnelCommand).toBeUndefined();
        const port53 = bundle.udpPortConfs?.find((conf) => conf.port === 53)?.wireguardConf;
        expect(port53).toMatch(/^Endpoint = 198\.51\.100\.10:53$/m);

        // The hotel drops WireGuard's own port: the plain conf does not get through, the port-53 one does.
        expect(await withStockConf(bundle.wireguardConf, async () => (await eventually(() => String(getsPage()), (got) => got === "true")) === "true")).toBe(false);
        expect(await withStockConf(port53!, async () => (await eventually(() => String(getsPage()), (got) => got === "true")) === "true")).toBe(true);
        expect(relayRedirects()).toEqual(["-A PREROUTING -i eth0 -p udp -m udp --dport 53 -m comment --comment wg-relay -j REDIRECT --to-ports 51820"]);
        // The laptop's own tunnel, wss on TCP 443, is back and carries the LAN as before.
        expect(await eventually(() => String(getsPage()), (got) => got === "true")).toBe("true");

        ensureStack(port53Closed);
        expect(relayRedirects()).toEqual([]);
        expect(bundleOf(udpPhone.name).udpPortConfs).toBeUndefined();
        expect(await withStockConf(port53!, async () => (await eventually(() => String(getsPage()), (got) => got === "true")) === "true")).toBe(false);
        expect(await eventually(() => String(getsPage()), (got) => got === "true")).toBe("true");
    });
});
