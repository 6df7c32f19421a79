// A peer's WireGuard keys: a private key hashed from a random secret (a Pulumi secret) with the public key derived
// here, and optionally a preshared key shared with the relay, made the same way; or keys the peer already has.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ExistingKeys } from "./config";
import { wireguardKeyFromSecret, wireguardPublicKey } from "./keys";

export interface WireguardKeyArgs {
    /** Bumping it replaces the key (and the preshared key); every config that mentions them follows. */
    rotation: number;
    /** Also make a preshared key for this peer and the relay. */
    presharedKey?: boolean;
    /** Keys from the stack config (e.g. imported from wg-easy), used instead of generated ones. */
    existing?: ExistingKeys | { privateKey: string; presharedKey?: undefined };
}

// 64 characters of [A-Za-z0-9]: 381 bits, more than the 256 of the key hashed from them.
const secretLength = 64;

export class WireguardKey extends pulumi.ComponentResource {
    readonly privateKey: pulumi.Output<string>;
    readonly publicKey: pulumi.Output<string>;
    readonly presharedKey: pulumi.Output<string> | undefined;

    constructor(name: string, args: WireguardKeyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:WireguardKey", name, {}, opts);
        const randomKey = (suffix: string) =>
            pulumi.secret(
                new random.RandomPassword(
                    `${name}-${suffix}`,
                    { length: secretLength, special: false, keepers: { rotation: String(args.rotation) } },
                    { parent: this },
                ).result.apply(wireguardKeyFromSecret),
            );
        const existing = args.existing;
        if (existing) {
            // They came in as config values: secrets from here on, wherever they go.
            this.privateKey = pulumi.secret(existing.privateKey);
            this.presharedKey = existing.presharedKey === undefined ? undefined : pulumi.secret(existing.presharedKey);
        } else {
            this.privateKey = randomKey("private-key");
            this.presharedKey = args.presharedKey ? randomKey("preshared-key") : undefined;
        }
        this.publicKey = pulumi.unsecret(this.privateKey.apply(wireguardPublicKey));
        this.registerOutputs({ publicKey: this.publicKey });
    }
}
