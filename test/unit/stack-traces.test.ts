import { lightStackTraces, stackTraceLimit } from "../../components/stackTraces";

describe("stack traces in a pulumi run", () => {
    const before = Error.stackTraceLimit;
    afterEach(() => {
        Error.stackTraceLimit = before;
    });

    it("are off unless WG_RELAY_STACK_TRACES=1 asks for them", () => {
        expect(stackTraceLimit({})).toBe(0);
        expect(stackTraceLimit({ WG_RELAY_STACK_TRACES: "0" })).toBe(0);
        expect(stackTraceLimit({ WG_RELAY_STACK_TRACES: "1" })).toBeUndefined();
    });

    it("leave errors their message", () => {
        lightStackTraces({});
        expect(Error.stackTraceLimit).toBe(0);
        expect(new Error("wg-relay:clients[0].name: expected a name").stack).toBe("Error: wg-relay:clients[0].name: expected a name");
        Error.stackTraceLimit = 10;
        lightStackTraces({ WG_RELAY_STACK_TRACES: "1" });
        expect(Error.stackTraceLimit).toBe(10);
    });
});
