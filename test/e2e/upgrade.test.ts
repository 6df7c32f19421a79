// An upgrade in the lab: the lab stack as an earlier wg-relay program left it, then a `pulumi preview` of this
// checkout's program. Refactors move code between components; they must keep every resource's URN (or alias it),
// so an upgrade replaces and deletes nothing on the hosts. Needs root, the lab and the git history of the pinned
// commit, like the other e2e files; run with `npm run test:all`.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { doctor, ensureStack, inNamespaceOk, lab, lanService, PreviewStep, repo, up, upFrom } from "./lab";

/** main before the one-plan refactor (issue 23) began: the stack an upgrade starts from. */
const upgradeFrom = "5be7334";

/** The program at `revision`, beside the lab's stack config, sharing this checkout's node_modules. */
function programAt(revision: string): { dir: string; remove: () => void } {
    const dir = mkdtempSync(join(tmpdir(), "wg-relay-upgrade-"));
    const archive = spawnSync("bash", ["-c", `git -C ${repo} archive ${revision} | tar -x -C ${dir}`], { encoding: "utf8" });
    if (archive.status !== 0) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`cannot read commit ${revision} from this checkout's history (a shallow clone?): ${archive.stderr}`);
    }
    symlinkSync(join(repo, "node_modules"), join(dir, "node_modules"));
    copyFileSync(join(repo, "Pulumi.lab.yaml"), join(dir, "Pulumi.lab.yaml"));
    return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

describe("upgrade", () => {
    it("keeps every resource of a stack made by an earlier program: nothing replaced or deleted, and it converges", () => {
        ensureStack({});
        const earlier = programAt(upgradeFrom);
        try {
            upFrom(earlier.dir);
        } finally {
            earlier.remove();
        }
        const preview = JSON.parse(lab(["pulumi", "preview", "--stack", "lab", "--json"])) as { steps: PreviewStep[] };
        const changed = preview.steps.filter((step) => step.op !== "same").map((step) => `${step.op} ${step.urn.split("::").pop()}`);
        console.log(`upgrade from ${upgradeFrom}: ${changed.length === 0 ? "no step changes" : changed.join(", ")}`);
        expect(changed.filter((step) => /^(delete|replace|create-replacement|delete-replaced|discard)/.test(step))).toEqual([]);

        up();
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
        expect(inNamespaceOk("laptop", ["curl", "--silent", "--max-time", "5", lanService])).toContain("hello from lanhost");
        const { result } = doctor();
        expect(result.status).toBe(0);
    });
});
