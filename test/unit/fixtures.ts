// A valid stack config in the shape of the write-up's topology, for tests to vary.
import { StackConfigInput } from "../../components/config";

/** A host key in the right shape; every host in the tests has its key pinned, as the schema requires. */
export const testHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1vP1e4x0b5uVn2b5N3aU6d2j6m5Jk6z2rQk1u7mF1x";

export function validConfig(): StackConfigInput {
    return {
        relay: { ssh: { host: "198.51.100.10", user: "ops", hostKey: testHostKey } },
        wstunnel: { source: "local", localBinary: "/dev/null" },
        gateways: [{ name: "rpi1", tunnelAddress: "10.10.0.2", lanSubnets: ["192.168.1.0/24"], ssh: { host: "192.168.1.130", user: "pi", hostKey: testHostKey } }],
        clients: [{ name: "laptop", tunnelAddress: "10.10.0.3" }],
    };
}

/** The firewall rules of validConfig's relay template, as wg-apply and the doctor read them (both families, default-route interface). */
export const relayTemplateFirewallRules = [
    "iptables -I FORWARD -i %i -j WG-RELAY-EGRESS -m comment --comment wg-relay",
    "iptables -I FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay",
    "iptables -I INPUT -i %i -j WG-RELAY-INPUT -m comment --comment wg-relay",
    "iptables -t nat -A POSTROUTING -j WG-RELAY-NAT -m comment --comment wg-relay",
    "ip6tables -I FORWARD -i %i -j WG-RELAY-EGRESS -m comment --comment wg-relay",
    "ip6tables -I FORWARD -i %i -o %i -j WG-RELAY-ACCESS -m comment --comment wg-relay",
    "ip6tables -I INPUT -i %i -j WG-RELAY-INPUT -m comment --comment wg-relay",
    "iptables -t mangle -A FORWARD -i %i -o %default-route-dev -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu -m comment --comment wg-relay",
    "iptables -A FORWARD -i %default-route-dev -o %i -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment --comment wg-relay",
    "iptables -I INPUT -i %default-route-dev -p udp --dport 51820 -j DROP -m comment --comment wg-relay",
    "ip6tables -I INPUT -i %default-route-dev -p udp --dport 51820 -j DROP -m comment --comment wg-relay",
];
