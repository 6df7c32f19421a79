// The stack config as the program reads it: the schema, then the cross-field rules, then the resolved model; and
// what the user is told when it is wrong, one line a problem, naming its key.
// Parsing happens before any resource is registered, so bad input never reaches a host.
import { z } from "zod";
import { Network, resolveNetwork } from "./resolve";
import { checkTopology } from "./rules";
import { configNamespace, stackConfigObject, unwrapped } from "./schema";

/**
 * The config parsed once, with everything derived from it resolved: components take it as it is and parse nothing.
 * `when`: the cross-field checks run also after field problems, so the user sees every problem in one run.
 */
export const stackConfigSchema = stackConfigObject.superRefine(checkTopology, { when: () => true }).transform(resolveNetwork);

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid stack config:\n${problems.map((line) => `  - ${line}`).join("\n")}`);
        this.name = "ConfigError";
    }
}

function formatPath(path: PropertyKey[]): string {
    if (path.length === 0) {
        return configNamespace;
    }
    const [top, ...rest] = path;
    let text = `${configNamespace}:${String(top)}`;
    for (const part of rest) {
        text += typeof part === "number" ? `[${part}]` : `.${String(part)}`;
    }
    return text;
}

/** The secret config key, read by the program as a secret and not by the schema. */
export const sshPrivateKeyKey = `${configNamespace}:sshPrivateKey`;

/**
 * The schema's input from every `wg-relay:` key of the stack (Pulumi's flat key → string map, as
 * `pulumi.runtime.allConfig()` returns it), so a misspelt key is reported rather than ignored.
 */
export function stackConfigValues(all: Record<string, string>): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    for (const [key, text] of Object.entries(all)) {
        if (!key.startsWith(`${configNamespace}:`) || key === sshPrivateKeyKey) {
            continue;
        }
        values[key.slice(configNamespace.length + 1)] = parseValue(text);
    }
    return values;
}

/** Objects, lists, numbers and booleans arrive as JSON; plain strings as they are. */
function parseValue(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/** Validates the raw values of the stack's config keys; throws one ConfigError listing every problem. */
export function parseStackConfig(raw: Record<string, unknown>): Network {
    const result = stackConfigSchema.safeParse(raw, {
        error: (issue) => (issue.code === "invalid_type" && issue.input === undefined ? "required, but not set in the stack config" : undefined),
    });
    if (!result.success) {
        throw new ConfigError(result.error.issues.flatMap(describeIssue));
    }
    return result.data;
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
    if (issue.code === "unrecognized_keys") {
        const known = knownKeys(issue.path);
        return issue.keys.map((key) => {
            const nearest = nearestKey(key, known);
            return `${formatPath([...issue.path, key])}: unknown key${nearest ? `; did you mean ${formatPath([...issue.path, nearest])}?` : ""}`;
        });
    }
    return [`${formatPath(issue.path)}: ${issue.message}`];
}

/** The keys the schema allows in the object at `path`. */
function knownKeys(path: PropertyKey[]): string[] {
    let schema: z.core.$ZodType = stackConfigObject;
    for (const part of path) {
        schema = unwrapped(schema);
        if (schema instanceof z.ZodArray && typeof part === "number") {
            schema = schema.element as z.core.$ZodType;
        } else if (schema instanceof z.ZodObject) {
            schema = schema.shape[String(part)] as z.core.$ZodType;
        }
    }
    schema = unwrapped(schema);
    return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

/** The known key closest to a misspelt one (by edit distance), if any is close enough to be what was meant. */
function nearestKey(key: string, known: string[]): string | undefined {
    const ranked = known.map((candidate) => ({ candidate, distance: editDistance(key.toLowerCase(), candidate.toLowerCase()) }));
    ranked.sort((a, b) => a.distance - b.distance);
    const best = ranked[0];
    return best && best.distance <= Math.max(2, Math.floor(best.candidate.length / 3)) ? best.candidate : undefined;
}

function editDistance(a: string, b: string): number {
    let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
    for (let i = 1; i <= a.length; i++) {
        const current = [i];
        for (let j = 1; j <= b.length; j++) {
            current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        }
        previous = current;
    }
    return previous[b.length];
}
