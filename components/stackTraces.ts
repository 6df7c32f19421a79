// Pulumi's Node SDK records a stack trace on every promise it makes (for its report of leaked promises), several
// per resource and per property, and under ts-node each frame of each trace is mapped through the source maps. With
// 200 clients that was a quarter of the program's CPU time in a no-change `pulumi up`, growing with every peer.

/** Error.stackTraceLimit in effect: WG_RELAY_STACK_TRACES=1 keeps V8's default, for debugging the program. */
export function stackTraceLimit(env: NodeJS.ProcessEnv): number | undefined {
    return env.WG_RELAY_STACK_TRACES === "1" ? undefined : 0;
}

/**
 * Drops those traces for the rest of the run. Errors keep their message (what wg-relay's own errors say); Pulumi
 * still finds each resource's source position (it raises the limit for that itself).
 */
export function lightStackTraces(env: NodeJS.ProcessEnv = process.env): void {
    const limit = stackTraceLimit(env);
    if (limit !== undefined) {
        Error.stackTraceLimit = limit;
    }
}
