// The stack's TLS, all from @pulumi/tls: a CA the stack owns, a server certificate for each relay's public name or
// address (the CA trusted by the wstunnel clients of gateways and clients, and by nothing else there), and with
// mutual TLS a client certificate per peer. Private keys stay secrets in state.
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { isIpv4 } from "../net";

/** The stack's CA: made with the first relay, and signing every relay's server certificate. */
export interface StackCa {
    certPem: pulumi.Output<string>;
    keyPem: pulumi.Output<string>;
    expiry: pulumi.Output<string>;
}

export interface RelayPki {
    ca: StackCa;
    caCertPem: pulumi.Output<string>;
    server: { certPem: pulumi.Output<string>; keyPem: pulumi.Output<string> };
    /** When each certificate stops being valid (RFC 3339). */
    expiry: { ca: pulumi.Output<string>; server: pulumi.Output<string> };
}

// Each certificate is replaced on the first `pulumi up` in its last 30 days, so clients never see an expired one
// as long as the stack is applied at least monthly (and a preview shows the renewal coming).
const earlyRenewalHours = 30 * 24;
/** What the relays' and peers' certificates are valid for. */
const leafValidityHours = 2 * 365 * 24;

/**
 * The CA as narrow as @pulumi/tls 5.6 makes one. wstunnel (rustls-webpki) takes only a root's name, key and name
 * constraints: its dates, key usage and path length bind other verifiers, not wstunnel, which checks the dates of
 * the certificates it signs. So what the validity sets is how often the CA and its key are replaced: as often as
 * the certificates it signs, as a renewed CA replaces every one of them and needs new files on each device without
 * SSH. Its one use is signing certificates (no CRLs; it signs no handshake). @pulumi/tls offers no name
 * constraints, and its `maxPathLength: 0` writes no path length (Go's x509 reads 0 as unset).
 */
export const stackCaSettings = {
    isCaCertificate: true,
    validityPeriodHours: leafValidityHours,
    earlyRenewalHours,
    allowedUses: ["cert_signing"],
};

export function createRelayPki(name: string, args: { publicAddress: pulumi.Output<string>; ca: StackCa }, parent: pulumi.Resource): RelayPki {
    const opts = { parent };
    const ca = args.ca;
    const serverKey = new tls.PrivateKey(`${name}-server-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, opts);
    const request = new tls.CertRequest(
        `${name}-server-csr`,
        {
            privateKeyPem: serverKey.privateKeyPem,
            subject: { commonName: args.publicAddress },
            // wstunnel clients verify the name they dial: an IP address needs an IP SAN.
            ipAddresses: args.publicAddress.apply((address) => (isIpv4(address) ? [address] : undefined)),
            dnsNames: args.publicAddress.apply((address) => (isIpv4(address) ? undefined : [address])),
        },
        opts,
    );
    const serverCert = new tls.LocallySignedCert(
        `${name}-server-cert`,
        {
            certRequestPem: request.certRequestPem,
            caPrivateKeyPem: ca.keyPem,
            caCertPem: ca.certPem,
            validityPeriodHours: leafValidityHours,
            earlyRenewalHours,
            allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        },
        opts,
    );
    return {
        ca,
        caCertPem: ca.certPem,
        server: { certPem: serverCert.certPem, keyPem: pulumi.secret(serverKey.privateKeyPem) },
        expiry: { ca: ca.expiry, server: serverCert.validityEndTime },
    };
}

export function createStackCa(name: string, stack: string, parent: pulumi.Resource): StackCa {
    const opts = { parent };
    const caKey = new tls.PrivateKey(`${name}-ca-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, opts);
    const ca = new tls.SelfSignedCert(
        `${name}-ca`,
        {
            privateKeyPem: caKey.privateKeyPem,
            subject: { commonName: `wg-relay ${stack} CA` },
            ...stackCaSettings,
        },
        opts,
    );
    return { certPem: ca.certPem, keyPem: pulumi.secret(caKey.privateKeyPem), expiry: ca.validityEndTime };
}

/** A peer's certificate and key for mutual TLS; both secrets (the certificate names the path prefix). */
export interface ClientCertificate {
    certPem: pulumi.Output<string>;
    keyPem: pulumi.Output<string>;
    /** When the certificate was made and when it expires (RFC 3339): not secret. */
    validity: pulumi.Output<ClientCertificateValidity>;
}

export interface ClientCertificateValidity {
    issued: string;
    expires: string;
}

/**
 * A gateway's or client's certificate for mutual TLS, signed by the stack's CA. Its common name is the peer's path
 * prefix: wstunnel requires the upgrade path to equal it, and the relay's rule for the peer matches that path, so
 * removing the peer or rotating its prefix (a new certificate) leaves an old certificate matching no rule. The
 * certificate and its request carry the prefix, so they are secret outputs; the key is replaced with the rotation.
 */
export function createClientCertificate(
    name: string,
    args: { pathPrefix: pulumi.Output<string>; rotation: number; ca: StackCa },
    opts: pulumi.CustomResourceOptions,
): ClientCertificate {
    const key = new tls.PrivateKey(`${name}-client-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { ...opts, replacementTrigger: String(args.rotation) });
    const request = new tls.CertRequest(
        `${name}-client-csr`,
        { privateKeyPem: key.privateKeyPem, subject: { commonName: args.pathPrefix } },
        { ...opts, additionalSecretOutputs: ["certRequestPem", "subject"] },
    );
    const cert = new tls.LocallySignedCert(
        `${name}-client-cert`,
        {
            certRequestPem: request.certRequestPem,
            caPrivateKeyPem: args.ca.keyPem,
            caCertPem: args.ca.certPem,
            validityPeriodHours: leafValidityHours,
            earlyRenewalHours,
            allowedUses: ["digital_signature", "client_auth"],
        },
        { ...opts, additionalSecretOutputs: ["certPem", "certRequestPem"] },
    );
    return {
        certPem: pulumi.secret(cert.certPem),
        keyPem: pulumi.secret(key.privateKeyPem),
        validity: pulumi.all([cert.validityStartTime, cert.validityEndTime]).apply(([issued, expires]) => ({ issued, expires })),
    };
}
