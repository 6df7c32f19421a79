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
        },
    ],
};
