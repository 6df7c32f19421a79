// End to end: the stack's CA on the gateway and the laptop is trusted by their wstunnel alone (SSL_CERT_FILE in its
// unit), not by the system's trust store that curl, apt, Python and Go read; a host where an earlier version put it
// in that store loses it there. Needs root; run with `npm run test:all`.
import { ensureStack, lab, LabHost, onHost, onHostOk, relayAddress, repair, secondsUntilLanReachable, wstunnelUnits } from "./lab";

const caFile = "/etc/wg-relay/tls/relay-ca.crt";
/** Where versions before this one put the CA: Debian's update-ca-certificates adds it to the system's store. */
const legacyTrustedCa = "/usr/local/share/ca-certificates/wg-relay-lab.crt";
const peers: LabHost[] = ["rpi1", "laptop"];

/** curl to the relay's wss port with the system's trust store: exit 60 when the relay's certificate is not trusted. */
const curlWithSystemStore = (host: LabHost) => onHost(host, `curl --silent --show-error --max-time 5 --output /dev/null https://${relayAddress}/`);

jest.setTimeout(20 * 60_000);

describe("the stack's CA: wstunnel's alone", () => {
    it("gateway and laptop: wstunnel checks the relay against SSL_CERT_FILE, the system's store refuses the relay, the tunnel works", async () => {
        ensureStack({});
        expect(await secondsUntilLanReachable(60)).toBeLessThan(60);
        for (const host of peers) {
            expect(onHostOk(host, `systemctl show -p Environment --value ${wstunnelUnits[host]}`)).toContain(`SSL_CERT_FILE=${caFile}`);
            const refused = curlWithSystemStore(host);
            expect(refused.status).toBe(60);
            expect(refused.stderr).toContain("SSL certificate problem");
            // The same relay with the CA wstunnel is given: the handshake succeeds and wstunnel answers the bare request.
            expect(onHostOk(host, `curl --silent --max-time 5 --output /dev/null --write-out '%{http_code}' --cacert ${caFile} https://${relayAddress}/`)).toBe("400");
            // Nor is it in the store's folder, which OpenSSL's, Python's and Go's defaults read besides the bundle.
            expect(onHost(host, `openssl verify -no-CAfile -CApath /etc/ssl/certs ${caFile}`).status).not.toBe(0);
            expect(onHostOk(host, `[ ! -e ${legacyTrustedCa} ] && echo gone`).trim()).toBe("gone");
        }
    });

    it("takes the CA out of the system's store of a host where an earlier version put it", async () => {
        ensureStack({});
        // As an earlier version left rpi1: the CA (the stack's output) in the system's store, which curl then trusts.
        const caPem = JSON.parse(lab(["pulumi", "stack", "output", "relayCaCertificate", "--stack", "lab", "--json"])) as string;
        const encoded = Buffer.from(caPem).toString("base64");
        onHostOk("rpi1", `echo ${encoded} | base64 -d > ${legacyTrustedCa} && update-ca-certificates >/dev/null`);
        expect(curlWithSystemStore("rpi1").status).toBe(0);
        // The step runs again (as an upgrade's changed script makes it) and leaves the store as it found it.
        repair();
        expect(onHostOk("rpi1", `[ ! -e ${legacyTrustedCa} ] && echo gone`).trim()).toBe("gone");
        expect(curlWithSystemStore("rpi1").status).toBe(60);
        expect(onHostOk("rpi1", "ls /etc/ssl/certs | grep -c wg-relay || true").trim()).toBe("0");
        expect(await secondsUntilLanReachable(60)).toBeLessThan(60);
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
    });
});
