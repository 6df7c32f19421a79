// Generates the README's config reference from the zod schema, so the two cannot drift
// (a unit test compares them). `npm run docs:config` prints it.
import { z } from "zod";
import { configNamespace, stackConfigSchema } from "../components/config";

interface JsonSchema {
    type?: string | string[];
    description?: string;
    default?: unknown;
    enum?: unknown[];
    properties?: Record<string, JsonSchema>;
    required?: string[];
    items?: JsonSchema;
    anyOf?: JsonSchema[];
    format?: string;
    minimum?: number;
    maximum?: number;
}

function typeOf(schema: JsonSchema): string {
    if (schema.enum) {
        return schema.enum.map((value) => `\`${String(value)}\``).join(" \\| ");
    }
    if (schema.anyOf) {
        return schema.anyOf.map(typeOf).join(" or ");
    }
    if (schema.type === "array") {
        return `list of ${typeOf(schema.items ?? {})}`;
    }
    if (schema.type === "integer" && schema.minimum !== undefined) {
        return schema.maximum === undefined || schema.maximum >= Number.MAX_SAFE_INTEGER
            ? `integer ≥ ${schema.minimum}`
            : `integer ${schema.minimum}–${schema.maximum}`;
    }
    return String(schema.type ?? schema.format ?? "value");
}

function rows(schema: JsonSchema, path: string, required: boolean, out: string[]): void {
    const isTop = !path.includes(".") && !path.includes("[]") && path.startsWith(`${configNamespace}:`);
    const fallback = schema.default !== undefined ? `\`${JSON.stringify(schema.default)}\`` : required ? "required" : "optional";
    if (schema.type === "object" && schema.properties) {
        if (isTop || schema.description) {
            out.push(`| \`${path}\` | object | ${fallback} | ${schema.description ?? ""} |`);
        }
        for (const [key, child] of Object.entries(schema.properties)) {
            rows(child, `${path}.${key}`, schema.required?.includes(key) ?? false, out);
        }
        return;
    }
    if (schema.type === "array" && schema.items?.type === "object") {
        out.push(`| \`${path}\` | list | ${fallback} | ${schema.description ?? ""} |`);
        for (const [key, child] of Object.entries(schema.items.properties ?? {})) {
            rows(child, `${path}[].${key}`, schema.items.required?.includes(key) ?? false, out);
        }
        return;
    }
    out.push(`| \`${path}\` | ${typeOf(schema)} | ${fallback} | ${schema.description ?? ""} |`);
}

export function renderConfigReference(): string {
    const schema = z.toJSONSchema(stackConfigSchema, { io: "input", unrepresentable: "any" }) as JsonSchema;
    const out = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"];
    for (const [key, child] of Object.entries(schema.properties ?? {})) {
        rows(child, `${configNamespace}:${key}`, schema.required?.includes(key) ?? false, out);
    }
    out.push(`| \`${configNamespace}:sshPrivateKey\` | secret string | required | the SSH private key every host accepts (\`pulumi config set --secret\`) |`);
    return out.join("\n") + "\n";
}

if (require.main === module) {
    process.stdout.write(renderConfigReference());
}
