// A WireGuard key pair: 32 random bytes from @pulumi/random (a secret in state), the public key derived here.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { wireguardPublicKey } from "./keys";

export interface WireguardKeyArgs {
    /** Bumping it replaces the key; every config that mentions the public key follows. */
    rotation: number;
}

export class WireguardKey extends pulumi.ComponentResource {
    readonly privateKey: pulumi.Output<string>;
    readonly publicKey: pulumi.Output<string>;

    constructor(name: string, args: WireguardKeyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:WireguardKey", name, {}, opts);
        const bytes = new random.RandomBytes(
            `${name}-private-key`,
            { length: 32, keepers: { rotation: String(args.rotation) } },
            { parent: this, additionalSecretOutputs: ["base64", "hex"] },
        );
        this.privateKey = pulumi.secret(bytes.base64);
        this.publicKey = pulumi.unsecret(bytes.base64.apply(wireguardPublicKey));
        this.registerOutputs({ publicKey: this.publicKey });
    }
}
