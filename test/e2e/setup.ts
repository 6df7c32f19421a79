// Once per e2e run: a fresh lab (bare hosts, the lab stack's config written), shared by every test file.
// WG_RELAY_LAB_REUSE=1 keeps a lab whose hosts are all running (for working on one test); CI always starts fresh.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { lab, labHosts, labTry, repo } from "./lab";

function labIsUp(): boolean {
    const status = labTry(["status"]).stdout;
    return existsSync(join(repo, ".lab", "inventory.json")) && labHosts.every((host) => new RegExp(`^\\S+-${host} .*: (running|degraded)$`, "m").test(status));
}

export default function setup(): void {
    if (process.env.WG_RELAY_LAB_REUSE === "1" && labIsUp()) {
        return;
    }
    lab(["down"]);
    lab(["prepare"]);
}
