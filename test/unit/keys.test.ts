// WireGuard keys from random secrets, checked against values from coreutils and wireguard-tools.
import { wireguardKeyFromSecret, wireguardPublicKey } from "../../components/wireguard/keys";

describe("WireGuard keys", () => {
    // printf 'wg-relay test secret' | sha256sum | xxd -r -p | base64; and that piped into `wg pubkey`.
    const privateKey = "JPxYRbeJA+F4f/dNo3sBhSRA/PmjX7sf4xRQiMISBsA=";

    it("hashes a random secret into a 32-byte key", () => {
        expect(wireguardKeyFromSecret("wg-relay test secret")).toBe(privateKey);
        expect(wireguardKeyFromSecret("wg-relay test secret!")).not.toBe(privateKey);
    });

    it("derives the public key as `wg pubkey` does", () => {
        expect(wireguardPublicKey(privateKey)).toBe("sxrDcox8m1AVX2JMDQIZXX9Mj9KcExjoSdhHCrK4914=");
        expect(() => wireguardPublicKey("AAAA")).toThrow(/32 bytes, got 3/);
    });
});
