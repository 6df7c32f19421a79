/** Unit tests run anywhere; e2e tests need root and the lab (see lab/README.md). */
const tsJest = ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: { warnOnly: false } }];
module.exports = {
    projects: [
        {
            displayName: "unit",
            testEnvironment: "node",
            transform: { "^.+\\.ts$": tsJest },
            testMatch: ["<rootDir>/test/unit/**/*.test.ts"],
        },
        {
            displayName: "e2e",
            testEnvironment: "node",
            transform: { "^.+\\.ts$": tsJest },
            testMatch: ["<rootDir>/test/e2e/**/*.test.ts"],
            // One lab for all e2e files: booted before the first, taken down after the last.
            globalSetup: "<rootDir>/test/e2e/setup.ts",
            globalTeardown: "<rootDir>/test/e2e/teardown.ts",
        },
    ],
};
