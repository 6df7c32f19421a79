// End to end: the stack's CA on the gateway and the laptop is trusted by their wstunnel alone (SSL_CERT_FILE in its
// unit), not by the system's trust store that curl, apt, Python and Go read; a host where an earlier version put it
// in that store loses it there. And the relay's own certificate (wstunnel.tls), trusted through the peers' system
// store: its renewals are served, and the doctor warns before it expires. Needs root; run with `npm run test:all`.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { doctor, ensureStack, findingOf, inNamespace, lab, LabHost, onHost, onHostOk, relayAddress, repair, repo, secondsUntil, secondsUntilLanReachable, wstunnelUnits } from "./lab";

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

describe("the relay's own certificate (wstunnel.tls)", () => {
    // certbot's layout: live/ holds symlinks to the numbered files in archive/, and a renewal points them to new ones.
    const tlsDir = "/etc/wg-relay-e2e-tls";
    const live = { certificateFile: `${tlsDir}/live/fullchain.pem`, privateKeyFile: `${tlsDir}/live/privkey.pem` };
    /** Where the peers' system store takes the test's CA from (wstunnel then trusts it: no SSL_CERT_FILE with wstunnel.tls). */
    const peerTrustedCa = "/usr/local/share/ca-certificates/wg-relay-e2e-own.crt";
    const openssl = (args: string[]) => execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const onHostFile = (host: LabHost, path: string, content: string, mode: string) =>
        onHostOk(host, `mkdir -p $(dirname ${path}) && echo ${Buffer.from(content).toString("base64")} | base64 -d > ${path} && chmod ${mode} ${path}`);

    /**
     * A certificate for the relay's address from the test's CA, valid `days`, with this serial, pointed to by live/:
     * its symlinks replaced as certbot does (unlink, then symlink), or by a rename over them, as tools that swap
     * links atomically do (systemd's watch on the file itself misses that one: the folder's catches it).
     */
    function installRelayCertificate(dir: string, serial: number, days: number, swap: "certbot" | "rename"): void {
        const key = join(dir, `privkey${serial}.pem`);
        const certificate = join(dir, `cert${serial}.pem`);
        const extensions = join(dir, "server.ext");
        writeFileSync(extensions, `subjectAltName=IP:${relayAddress}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
        openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", `/CN=${relayAddress}`, "-out", join(dir, "server.csr")]);
        openssl(["x509", "-req", "-in", join(dir, "server.csr"), "-CA", join(dir, "ca.crt"), "-CAkey", join(dir, "ca.key"), "-set_serial", String(serial), "-days", String(days), "-extfile", extensions, "-out", certificate]);
        onHostFile("relay", `${tlsDir}/archive/cert${serial}.pem`, readFileSync(certificate, "utf8"), "0644");
        onHostFile("relay", `${tlsDir}/archive/privkey${serial}.pem`, readFileSync(key, "utf8"), "0600");
        const link = (target: string, name: string) =>
            swap === "certbot" ? `rm -f ${name} && ln -s ${target} ${name}` : `ln -s ${target} ${name}.new && mv -T ${name}.new ${name}`;
        onHostOk("relay", `mkdir -p ${tlsDir}/live && cd ${tlsDir}/live && ${link(`../archive/cert${serial}.pem`, "fullchain.pem")} && ${link(`../archive/privkey${serial}.pem`, "privkey.pem")}`);
    }

    /** The serial of the certificate the relay's wss port serves to the laptop (s_client from the laptop's namespace). */
    const servedSerial = () =>
        /serial=(\w+)/.exec(inNamespace("laptop", ["sh", "-c", `timeout 5 openssl s_client -connect ${relayAddress}:443 </dev/null 2>/dev/null | openssl x509 -noout -serial`]).stdout)?.[1];

    it("O1. a renewal of its files, certbot's way or by a rename, is served within seconds and the tunnel keeps working; the doctor warns about the served one in its last 30 days", async () => {
        const dir = mkdtempSync(join(repo, ".lab", "e2e-own-tls-"));
        try {
            openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.crt"), "-days", "30",
                "-subj", "/CN=wg-relay e2e own CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
            for (const host of peers) {
                onHostFile(host, peerTrustedCa, readFileSync(join(dir, "ca.crt"), "utf8"), "0644");
                onHostOk(host, "update-ca-certificates >/dev/null");
            }
            installRelayCertificate(dir, 1, 90, "certbot");
            ensureStack({ relayOwnTls: live });
            expect(await secondsUntilLanReachable(60)).toBeLessThan(60);
            expect(servedSerial()).toBe("01");

            installRelayCertificate(dir, 2, 90, "certbot");
            const served = await secondsUntil("the relay serving the renewed certificate", 20, () => servedSerial() === "02");
            console.log(`renewed certificate served after ${served.toFixed(1)} s`);
            expect(await secondsUntilLanReachable(60)).toBeLessThan(60);
            // Nothing of the renewal is in the stack: the next run has nothing to do.
            lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);

            // A renewal by rename, that expires in 10 days: the doctor reads what the port serves.
            installRelayCertificate(dir, 3, 10, "rename");
            await secondsUntil("the relay serving the certificate renewed by a rename", 20, () => servedSerial() === "03");
            const { report } = doctor({ NODE_EXTRA_CA_CERTS: join(dir, "ca.crt") });
            expect(findingOf(report, "relay", "server certificate")).toEqual({
                check: "server certificate",
                status: "warn",
                detail: expect.stringMatching(/^9 days left \(until \d{4}-\d\d-\d\d\): renew the relay's own certificate files \(wstunnel\.tls\)/),
            });
            expect(findingOf(report, "relay", "wss port")?.status).toBe("ok");
            expect(findingOf(report, "relay", "unit wg-relay-tls-renewal.path")?.status).toBe("ok");
            // Where the doctor runs without the CA, the port is a problem, and the served certificate's days still show.
            const untrusted = doctor().report;
            expect(findingOf(untrusted, "relay", "wss port")).toEqual({ check: "wss port", status: "fail", detail: `${relayAddress}:443: the certificate does not verify (UNABLE_TO_VERIFY_LEAF_SIGNATURE)` });
            expect(findingOf(untrusted, "relay", "server certificate")?.detail).toMatch(/^9 days left/);
        } finally {
            // Back to the stack's certificate (its CA in SSL_CERT_FILE again), then the test's files go.
            ensureStack({});
            for (const host of peers) {
                onHostOk(host, `rm -f ${peerTrustedCa} && update-ca-certificates --fresh >/dev/null`);
            }
            onHostOk("relay", `rm -rf ${tlsDir}`);
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
