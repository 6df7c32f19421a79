import { readFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigReference } from "../../scripts/config-reference";

describe("README", () => {
    it("carries the config reference generated from the schema (npm run docs:config)", () => {
        const readme = readFileSync(join(__dirname, "..", "..", "README.md"), "utf8");
        const section = /<!-- config-reference:start -->\n([\s\S]*?)<!-- config-reference:end -->/.exec(readme);
        expect(section?.[1]).toBe(renderConfigReference());
    });
});
