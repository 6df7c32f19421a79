// A peer's WireGuard keys: a private key hashed from a random secret (a Pulumi secret) with the public key derived
// here, and optionally a preshared key shared with the relay, made the same way; or keys the peer already has.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ExistingKeys } from "../config";
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

/**
 * Peer secrets used to be children of a component of their own (one per key, one per path prefix), two more
 * resources per peer in every `pulumi up`. They sit at the top of the stack now; this alias to their URN under that
 * former parent keeps the secrets of stacks made before, so the upgrade changes no key, prefix or certificate.
 */
export function formerParent(parentName: string, parentType: string): pulumi.CustomResourceOptions {
    return { aliases: [{ parent: pulumi.createUrn(parentName, parentType) }] };
}

/** A random secret of a peer, [A-Za-z0-9], replaced when `rotation` changes. */
export function peerSecret(name: string, length: number, rotation: number, opts: pulumi.CustomResourceOptions): pulumi.Output<string> {
    return pulumi.secret(new random.RandomPassword(name, { length, special: false, keepers: { rotation: String(rotation) } }, opts).result);
}

/** A peer's keys (not a resource itself: its secrets are). */
export class WireguardKey {
    readonly privateKey: pulumi.Output<string>;
    readonly publicKey: pulumi.Output<string>;
    readonly presharedKey: pulumi.Output<string> | undefined;

    constructor(name: string, args: WireguardKeyArgs) {
        const randomKey = (suffix: string) =>
            peerSecret(`${name}-${suffix}`, secretLength, args.rotation, formerParent(name, "wg-relay:index:WireguardKey")).apply(wireguardKeyFromSecret);
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
    }
}
