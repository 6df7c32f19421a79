// A gateway's or client's own wstunnel credential: the upgrade-path prefix only it presents to the relay, a random
// secret that rotates with the peer's keyRotation, and with mutual TLS a client certificate naming that prefix. The
// relay's restrictions file has a rule per prefix, so removing a peer revokes its wstunnel access and nobody else's.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ClientCertificate, createClientCertificate, StackCa } from "./relayPki";

export class WstunnelCredential extends pulumi.ComponentResource {
    /** The HTTP upgrade path prefix (secret; [A-Za-z0-9], URL- and shell-safe). */
    readonly pathPrefix: pulumi.Output<string>;
    private readonly credentialName: string;
    private readonly rotation: number;

    constructor(name: string, args: { rotation: number }, opts?: pulumi.ComponentResourceOptions) {
        super("wg-relay:index:WstunnelCredential", name, {}, opts);
        const prefix = new random.RandomPassword(
            `${name}-path-prefix`,
            { length: 32, special: false, keepers: { rotation: String(args.rotation) } },
            { parent: this },
        );
        this.pathPrefix = pulumi.secret(prefix.result);
        this.credentialName = name;
        this.rotation = args.rotation;
        this.registerOutputs({});
    }

    /**
     * The peer's client certificate for mutual TLS, signed by the stack's CA (made by the first relay, after the
     * prefixes it serves: hence a step of its own).
     */
    clientCertificate(ca: StackCa): ClientCertificate {
        return createClientCertificate(this.credentialName, { pathPrefix: this.pathPrefix, rotation: this.rotation, ca }, this);
    }
}
