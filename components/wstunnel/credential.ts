// A gateway's or client's own wstunnel credential: the upgrade-path prefix only it presents to the relay, a random
// secret that rotates with the peer's keyRotation, and with mutual TLS a client certificate naming that prefix. The
// relay's restrictions file has a rule per prefix, so removing a peer revokes its wstunnel access and nobody else's.
import * as pulumi from "@pulumi/pulumi";
import { ClientCertificate, createClientCertificate, StackCa } from "../pki/relayPki";
import { formerParent, peerSecret } from "../wireguard/key";

/** Not a resource itself (its secrets are): a component per credential was one more resource per peer in every run. */
export class WstunnelCredential {
    /** The HTTP upgrade path prefix (secret; [A-Za-z0-9], URL- and shell-safe). */
    readonly pathPrefix: pulumi.Output<string>;
    private readonly credentialName: string;
    private readonly rotation: number;

    constructor(name: string, args: { rotation: number }) {
        this.pathPrefix = peerSecret(`${name}-path-prefix`, 32, args.rotation, formerParent(name, "wg-relay:index:WstunnelCredential"));
        this.credentialName = name;
        this.rotation = args.rotation;
    }

    /**
     * The peer's client certificate for mutual TLS, signed by the stack's CA (made by the first relay, after the
     * prefixes it serves: hence a step of its own).
     */
    clientCertificate(ca: StackCa): ClientCertificate {
        return createClientCertificate(
            this.credentialName,
            { pathPrefix: this.pathPrefix, rotation: this.rotation, ca },
            formerParent(this.credentialName, "wg-relay:index:WstunnelCredential"),
        );
    }
}
