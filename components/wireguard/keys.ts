// WireGuard key arithmetic, in the program: keys are hashed from random secrets, public keys are X25519 of them.
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";

// PKCS#8 DER prefix of a raw 32-byte X25519 private key, and the length of the SPKI prefix before the raw public key.
const x25519Pkcs8Prefix = Buffer.from("302e020100300506032b656e04220420", "hex");
const x25519SpkiPrefixLength = 12;

/** Derives a WireGuard public key (base64) from a private key (base64 of 32 bytes), like `wg pubkey`. */
export function wireguardPublicKey(privateKeyBase64: string): string {
    const raw = Buffer.from(privateKeyBase64, "base64");
    if (raw.length !== 32) {
        throw new Error(`a WireGuard private key is 32 bytes, got ${raw.length}`);
    }
    const privateKey = createPrivateKey({ key: Buffer.concat([x25519Pkcs8Prefix, raw]), format: "der", type: "pkcs8" });
    const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
    return spki.subarray(x25519SpkiPrefixLength).toString("base64");
}

/**
 * A WireGuard key (base64 of 32 bytes: a private or a preshared key) from a random secret of at least 256 bits.
 * Keys come from @pulumi/random's RandomPassword, whose resource ID is "none": RandomBytes makes its value its
 * ID, and resource IDs are stored unencrypted in the state.
 */
export function wireguardKeyFromSecret(secret: string): string {
    return createHash("sha256").update(secret).digest("base64");
}
