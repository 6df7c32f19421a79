// program.js, Pulumi's entry point: the program compiled ahead of time, again only when a source changes.
import { spawnSync } from "node:child_process";
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";

const repo = join(__dirname, "..", "..");

describe("program.js", () => {
    let checkout: string;
    beforeAll(() => {
        checkout = mkdtempSync(join(tmpdir(), "wg-relay-program-"));
        for (const entry of ["program.js", "tsconfig.json", "index.ts", "components"]) {
            cpSync(join(repo, entry), join(checkout, entry), { recursive: true });
        }
        symlinkSync(join(repo, "node_modules"), join(checkout, "node_modules"));
    });
    afterAll(() => rmSync(checkout, { recursive: true, force: true }));

    const build = () => {
        const result = spawnSync(process.execPath, ["program.js"], { cwd: checkout, encoding: "utf8" });
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        return join(checkout, result.stdout.trim());
    };

    it("is what Pulumi runs, without ts-node", () => {
        const project = load(readFileSync(join(repo, "Pulumi.yaml"), "utf8")) as { main: string; runtime: { options: Record<string, unknown> } };
        expect(project.main).toBe("program.js");
        expect(project.runtime.options.typescript).toBe(false);
    });

    it("compiles the program with its host scripts, once for the same sources, again when one changes", () => {
        const first = build();
        // index.ts reaches the components through the library's entry point.
        expect(readFileSync(join(first, "index.js"), "utf8")).toContain('require("./components/library")');
        expect(readFileSync(join(first, "components", "library.js"), "utf8")).toContain('require("./vpsRelay")');
        const script = join(first, "components", "host-scripts", "wg-apply.sh");
        expect(readFileSync(script, "utf8")).toBe(readFileSync(join(repo, "components", "host-scripts", "wg-apply.sh"), "utf8"));
        expect(statSync(script).mode).toBe(statSync(join(repo, "components", "host-scripts", "wg-apply.sh")).mode);
        const builtAt = statSync(join(first, "index.js")).mtimeMs;

        expect(build()).toBe(first);
        expect(statSync(join(first, "index.js")).mtimeMs).toBe(builtAt);

        appendFileSync(join(checkout, "components", "host", "shell.ts"), "\nexport const addedByTheTest = 1;\n");
        const second = build();
        expect(second).not.toBe(first);
        expect(readFileSync(join(second, "components", "host", "shell.js"), "utf8")).toContain("addedByTheTest");
        // The earlier build is removed.
        expect(existsSync(first)).toBe(false);
        expect(readdirSync(join(checkout, ".build", "program"))).toHaveLength(1);
    });
});
