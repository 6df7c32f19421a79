// A gateway's or client's own wstunnel credential: the upgrade-path prefix only it presents to the relay, a random
// secret that rotates with the peer's keyRotation. The relay's restrictions file has a rule per prefix, so removing
// a peer revokes its wstunnel access and nobody else's.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export class WstunnelCredential extends pulumi.ComponentResource {
    /** The HTTP upgrade path prefix (secret; [A-Za-z0-9], URL- and shell-safe). */
    readonly pathPrefix: pulumi.Output<string>;

    constructor(name: string, args: { rotation: number }, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:WstunnelCredential", name, {}, opts);
        const prefix = new random.RandomPassword(
            `${name}-path-prefix`,
            { length: 32, special: false, keepers: { rotation: String(args.rotation) } },
            { parent: this },
        );
        this.pathPrefix = pulumi.secret(prefix.result);
        this.registerOutputs({});
    }
}
