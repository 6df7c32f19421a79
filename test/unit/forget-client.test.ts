import { forgetPlan, StateResource } from "../../scripts/forget-client";

const stackUrn = "urn:pulumi:prod::wg-relay::pulumi:pulumi:Stack::wg-relay-prod";
const componentUrn = (type: string, name: string) => `urn:pulumi:prod::wg-relay::wg-relay:index:${type}::${name}`;
const child = (parentType: string, parentName: string, type: string, name: string): StateResource => ({
    urn: `urn:pulumi:prod::wg-relay::wg-relay:index:${parentType}$${type}::${name}`,
    type,
    parent: componentUrn(parentType, parentName),
});

/** A stack's state as `pulumi stack export` lists it (parents first): a gateway, a provisioned laptop, a phone. */
const resources: StateResource[] = [
    { urn: stackUrn, type: "pulumi:pulumi:Stack" },
    { urn: componentUrn("LanGateway", "rpi1"), type: "wg-relay:index:LanGateway", parent: stackUrn },
    child("LanGateway", "rpi1", "command:remote:Command", "rpi1-packages"),
    { urn: componentUrn("RoamingClient", "laptop"), type: "wg-relay:index:RoamingClient", parent: stackUrn },
    { urn: "urn:pulumi:prod::wg-relay::random:index/randomPassword:RandomPassword::laptop-key-private-key", type: "random:index/randomPassword:RandomPassword", parent: stackUrn },
    child("RoamingClient", "laptop", "command:remote:Command", "laptop-packages"),
    child("RoamingClient", "laptop", "command:remote:CopyToRemote", "laptop-wstunnel-upload"),
    child("RoamingClient", "laptop", "command:remote:Command", "laptop-wireguard-template"),
    { urn: componentUrn("RoamingClient", "phone"), type: "wg-relay:index:RoamingClient", parent: stackUrn },
];

describe("forget-client", () => {
    it("drops the client's component, whose steps on its machine go with it (--target-dependents), and nothing else", () => {
        expect(forgetPlan("laptop", ["phone"], resources)).toEqual({ urn: componentUrn("RoamingClient", "laptop"), hostSteps: 3 });
    });

    it("refuses a client still in the config, naming the key", () => {
        expect(() => forgetPlan("laptop", ["laptop", "phone"], resources)).toThrow("'laptop' is still in wg-relay:clients: remove it from the stack config first");
    });

    it("refuses a name that is no client in the state, naming the ones there", () => {
        expect(() => forgetPlan("tablet", ["phone"], resources)).toThrow("no client 'tablet' in the stack's state; clients there: laptop, phone");
        // A gateway's steps are not a client's.
        expect(() => forgetPlan("rpi1", ["phone"], resources)).toThrow("no client 'rpi1' in the stack's state");
        expect(() => forgetPlan("laptop", [], [])).toThrow("clients there: none");
    });

    it("refuses a client not provisioned over SSH: pulumi up removes it alone", () => {
        expect(() => forgetPlan("phone", [], resources)).toThrow("'phone' has no steps on a machine (it was not provisioned over SSH): `pulumi up` removes it");
    });
});
