// Golden files: rendered host files kept under test/unit/golden/ for a reviewer to read, each named by the kind of
// host it stands for and its target path there (relay/etc/wg-relay/wg0.template.conf).
// `UPDATE_GOLDEN=1 npm test` rewrites them; a diff in review then shows what changed on hosts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export function expectGolden(name: string, actual: string): void {
    const path = join(__dirname, "golden", name);
    if (process.env.UPDATE_GOLDEN === "1" || !existsSync(path)) {
        if (process.env.CI) {
            throw new Error(`golden file ${name} is missing; run UPDATE_GOLDEN=1 npm test and commit it`);
        }
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, actual);
    }
    expect(actual).toBe(readFileSync(path, "utf8"));
}
