// A valid stack config in the shape of the write-up's topology, for tests to vary.
import { StackConfigInput } from "../../components/config";

export function validConfig(): StackConfigInput {
    return {
        relay: { ssh: { host: "198.51.100.10", user: "ops", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1vP1e4x0b5uVn2b5N3aU6d2j6m5Jk6z2rQk1u7mF1x" } },
        wstunnel: { source: "local", localBinary: "/dev/null" },
        gateways: [{ name: "rpi1", tunnelAddress: "10.10.0.2", lanSubnets: ["192.168.1.0/24"], ssh: { host: "192.168.1.130", user: "pi" } }],
        clients: [{ name: "laptop", tunnelAddress: "10.10.0.3" }],
    };
}
