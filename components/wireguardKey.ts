// A peer's WireGuard keys: a key pair of 32 random bytes from @pulumi/random (a secret in state) with the public
// key derived here, and optionally a preshared key shared with the relay.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { wireguardPublicKey } from "./keys";

export interface WireguardKeyArgs {
    /** Bumping it replaces the key (and the preshared key); every config that mentions them follows. */
    rotation: number;
    /** Also make a preshared key for this peer and the relay. */
    presharedKey?: boolean;
}

export class WireguardKey extends pulumi.ComponentResource {
    readonly privateKey: pulumi.Output<string>;
    readonly publicKey: pulumi.Output<string>;
    readonly presharedKey: pulumi.Output<string> | undefined;

    constructor(name: string, args: WireguardKeyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:WireguardKey", name, {}, opts);
        const randomKey = (suffix: string) =>
            new random.RandomBytes(
                `${name}-${suffix}`,
                { length: 32, keepers: { rotation: String(args.rotation) } },
                { parent: this, additionalSecretOutputs: ["base64", "hex"] },
            );
        const bytes = randomKey("private-key");
        this.privateKey = pulumi.secret(bytes.base64);
        this.presharedKey = args.presharedKey ? pulumi.secret(randomKey("preshared-key").base64) : undefined;
        this.publicKey = pulumi.unsecret(bytes.base64.apply(wireguardPublicKey));
        this.registerOutputs({ publicKey: this.publicKey });
    }
}
