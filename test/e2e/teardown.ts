// After the e2e run: the lab comes down (processes by PID, mounts, namespaces), unless kept for reuse.
import { labTry } from "./lab";

export default function teardown(): void {
    if (process.env.WG_RELAY_LAB_REUSE !== "1") {
        labTry(["down"]);
    }
}
