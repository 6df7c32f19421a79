// Once per e2e run: a fresh lab (bare hosts, the lab stack's config written), shared by every test file.
// WG_RELAY_LAB_REUSE=1 keeps a lab that is already up (for working on one test); CI always starts fresh.
import { lab, labTry } from "./lab";

export default function setup(): void {
    if (process.env.WG_RELAY_LAB_REUSE === "1" && labTry(["status"]).status === 0) {
        return;
    }
    lab(["down"]);
    lab(["prepare"]);
}
