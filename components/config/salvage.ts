// The cross-field rules run also where some keys failed their own checks, so one run reports every problem. They
// receive what parsed, typed by the schema: every key and list item that passed its own check, and nothing of one
// that did not (its own check reports it).
import { z } from "zod";
import { isSpellingOnly, unwrapped } from "./schema";

/** The keys of a salvaged object that were set but did not parse. */
export const unparsed = Symbol("unparsed");

/** What of a `T` parsed: any key may be missing, a list item that did not parse is `undefined` at its index. */
export type Salvaged<T> = T extends readonly (infer Item)[]
    ? (Salvaged<Item> | undefined)[]
    : T extends object
      ? { [K in keyof T]?: Salvaged<T[K]> } & { readonly [unparsed]?: ReadonlySet<string> }
      : T;

/** What of `value` parses by `schema`, key by key and item by item; undefined when nothing of it does. */
export function salvage<Schema extends z.ZodType>(schema: Schema, value: unknown): Salvaged<z.output<Schema>> | undefined {
    return salvageAny(schema, value) as Salvaged<z.output<Schema>> | undefined;
}

function salvageAny(schema: z.core.$ZodType, value: unknown): unknown {
    const whole = z.safeParse(schema, value);
    if (whole.success) {
        return whole.data;
    }
    const inner = unwrapped(schema);
    if (inner instanceof z.ZodArray && Array.isArray(value)) {
        return value.map((item) => salvageAny(inner.element, item));
    }
    if (inner instanceof z.ZodObject && isRecord(value)) {
        const parsed: Record<string, unknown> = {};
        const malformed = new Set<string>();
        for (const [key, field] of Object.entries(inner.shape)) {
            const part = salvageAny(field as z.core.$ZodType, value[key]);
            if (part !== undefined) {
                parsed[key] = part;
            } else if (value[key] !== undefined) {
                malformed.add(key);
            }
        }
        return { ...parsed, [unparsed]: malformed };
    }
    // A value whose only issue is its spelling still stands for what it names (a network in a non-canonical form).
    return whole.error.issues.every(isSpellingOnly) ? value : undefined;
}

/** Whether `key` is set in a salvaged object, whether or not it parsed. */
export function isSet<Part extends { readonly [unparsed]?: ReadonlySet<string> }>(part: Part, key: keyof Part & string): boolean {
    return part[key] !== undefined || part[unparsed]?.has(key) === true;
}

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === "object" && !Array.isArray(value);
