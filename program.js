// Pulumi's entry point (Pulumi.yaml `main`, with `typescript: false`): the program (index.ts, components/) compiled
// ahead of time to JavaScript in .build/program/HASH/, HASH being of the sources, compiled again only when one of them
// changes. ts-node type-checked the whole program on every `pulumi up` (4.5 s of a 9 s no-change run) and transpiled
// it again each time; the type check is the tests' job (ts-jest, `npm run build`). Each file is transpiled on its own,
// as ts-node's transpile-only mode does (tsconfig's isolatedModules keeps the sources fit for that).
"use strict";
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const root = __dirname;
const buildRoot = path.join(root, ".build", "program");
const programSources = ["index.ts", "components"];

/** Paths (relative to the repository) of the program's files, host scripts included: what the build carries. */
function sourceFiles() {
    const files = [];
    const walk = (relative) => {
        const full = path.join(root, relative);
        if (fs.statSync(full).isDirectory()) {
            for (const entry of fs.readdirSync(full).sort()) {
                walk(path.join(relative, entry));
            }
        } else {
            files.push(relative);
        }
    };
    programSources.forEach(walk);
    return files;
}

/** What the output depends on: the sources, the compiler options, this file and TypeScript's version. */
function sourceHash(files) {
    const hash = createHash("sha256");
    const add = (name, content) => hash.update(`${name}\0${content.length}\0`).update(content);
    for (const file of [...files, "tsconfig.json", "program.js"]) {
        add(file, fs.readFileSync(path.join(root, file)));
    }
    add("typescript", require("typescript/package.json").version);
    return hash.digest("hex").slice(0, 20);
}

function compile(files, target) {
    const ts = require("typescript");
    const config = ts.getParsedCommandLineOfConfigFile(path.join(root, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
    if (config === undefined) {
        throw new Error("program.js: cannot read tsconfig.json");
    }
    const compilerOptions = { ...config.options, noEmit: false, sourceMap: false, inlineSourceMap: true, inlineSources: true, declaration: false };
    const staging = `${target}.tmp-${process.pid}`;
    fs.rmSync(staging, { recursive: true, force: true });
    for (const file of files) {
        const source = path.join(root, file);
        const isTypeScript = file.endsWith(".ts");
        const output = path.join(staging, isTypeScript ? file.replace(/\.ts$/, ".js") : file);
        fs.mkdirSync(path.dirname(output), { recursive: true });
        if (isTypeScript) {
            const { outputText } = ts.transpileModule(fs.readFileSync(source, "utf8"), { compilerOptions, fileName: source });
            fs.writeFileSync(output, outputText);
        } else {
            fs.copyFileSync(source, output);
            fs.chmodSync(output, fs.statSync(source).mode);
        }
    }
    // Another run may have built the same sources meanwhile: its output is as good as this one.
    try {
        fs.renameSync(staging, target);
    } catch (error) {
        fs.rmSync(staging, { recursive: true, force: true });
        if (!fs.existsSync(target)) {
            throw error;
        }
    }
    // Earlier builds (not other runs' staging directories) are no longer wanted.
    for (const entry of fs.readdirSync(buildRoot)) {
        if (/^[0-9a-f]{20}$/.test(entry) && entry !== path.basename(target)) {
            fs.rmSync(path.join(buildRoot, entry), { recursive: true, force: true });
        }
    }
}

/** The compiled program's directory, built first when the sources changed. */
function compiledProgram() {
    const files = sourceFiles();
    const target = path.join(buildRoot, sourceHash(files));
    if (!fs.existsSync(path.join(target, "index.js"))) {
        fs.mkdirSync(buildRoot, { recursive: true });
        compile(files, target);
    }
    return target;
}

if (require.main === module) {
    // `node program.js`: only the build (npm run build:program).
    console.log(path.relative(root, compiledProgram()));
} else {
    if (process.env.WG_RELAY_STACK_TRACES === "1") {
        // Stack traces point into the TypeScript sources (the maps are inline).
        process.setSourceMapsEnabled(true);
    }
    module.exports = require(path.join(compiledProgram(), "index.js"));
}
