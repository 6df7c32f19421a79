import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientFiles, writeClientFiles } from "../../scripts/client-files";

const bundle = {
    name: "laptop",
    platform: "linux" as const,
    wireguardConf: "[Interface]\nPrivateKey = KEY\n",
    wstunnelCommand: "WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX='p' /usr/local/bin/wstunnel 'client'",
    wstunnelUnit: "[Unit]\n",
    wstunnelEnvironment: "WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX=p\n",
    caCertificate: "-----BEGIN CERTIFICATE-----\n",
};

describe("client files", () => {
    it("keeps files with secrets owner-only", () => {
        const modes = Object.fromEntries(clientFiles(bundle).map((file) => [file.name, file.mode]));
        expect(modes).toEqual({
            "wg0.conf": 0o600,
            "wg-relay-wstunnel-client.service": 0o644,
            "wstunnel-client.env": 0o600,
            "wstunnel-command.sh": 0o700,
            "wg-relay-ca.crt": 0o644,
        });
    });

    it("adds, with mutual TLS, the certificate and its key as one owner-only file", () => {
        // Placeholder text, not a key: the file's content is passed through as it is.
        const certificateAndKey = "certificate and key, as one PEM text\n";
        const files = clientFiles({ ...bundle, clientCertificate: certificateAndKey });
        expect(files.slice(5)).toEqual([{ name: "wg-relay-client.pem", content: certificateAndKey, mode: 0o600 }]);
    });

    it("adds, with several relays, a conf per relay and each further relay's wstunnel client", () => {
        const files = clientFiles({
            ...bundle,
            relays: [
                { relay: "relay", wireguardConf: "[Interface]\n# routes on relay\n" },
                { relay: "relay2", wireguardConf: "[Interface]\n# routes on relay2\n", wstunnelCommand: "wstunnel 'client'", wstunnelUnit: "[Unit]\n", wstunnelEnvironment: "P=p\n" },
            ],
        });
        expect(Object.fromEntries(files.slice(5).map((file) => [file.name, file.mode]))).toEqual({
            "wg0-relay.conf": 0o600,
            "wg0-relay2.conf": 0o600,
            "wg-relay-wstunnel-client-relay2.service": 0o644,
            "wstunnel-client-relay2.env": 0o600,
            "wstunnel-command-relay2.sh": 0o700,
        });
    });

    it("adds, with relay.udpPorts, a conf per further UDP port named by its port, each with its QR code", async () => {
        const udp = { name: "phone", platform: "android" as const, wireguardConf: "[Interface]\n", udpPortConfs: [{ port: 53, wireguardConf: "[Interface]\n# port 53\n" }] };
        expect(clientFiles(udp)).toEqual([
            { name: "wg0.conf", content: udp.wireguardConf, mode: 0o600 },
            { name: "wg0-udp-port-53.conf", content: "[Interface]\n# port 53\n", mode: 0o600 },
        ]);
        const dir = mkdtempSync(join(tmpdir(), "wg-relay-client-"));
        try {
            const written = await writeClientFiles(udp, dir);
            expect(written.map((path) => path.slice(dir.length + 1))).toEqual(["wg0.conf", "wg0-udp-port-53.conf", "wg0.conf.png", "wg0-udp-port-53.conf.png"]);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("writes, for another platform, what runs wstunnel there in place of the Linux unit: owner-only when it holds the prefix", () => {
        const windows = {
            name: "desktop",
            platform: "windows" as const,
            wireguardConf: "[Interface]\n",
            platformFiles: [
                { name: "wstunnel-client.cmd", content: "@echo off\r\n", secret: true },
                { name: "wg-relay-wstunnel-client.xml", content: "<Task/>\r\n", secret: false },
            ],
            caCertificate: "-----BEGIN CERTIFICATE-----\n",
        };
        expect(Object.fromEntries(clientFiles(windows).map((file) => [file.name, file.mode]))).toEqual({
            "wg0.conf": 0o600,
            "wstunnel-client.cmd": 0o600,
            "wg-relay-wstunnel-client.xml": 0o644,
            "wg-relay-ca.crt": 0o644,
        });
    });

    it("writes the files and a PNG QR code of the conf", async () => {
        const dir = mkdtempSync(join(tmpdir(), "wg-relay-client-"));
        try {
            await writeClientFiles(bundle, join(dir, "laptop"));
            expect(readFileSync(join(dir, "laptop", "wg0.conf"), "utf8")).toBe(bundle.wireguardConf);
            expect(statSync(join(dir, "laptop", "wg0.conf")).mode & 0o777).toBe(0o600);
            expect(readFileSync(join(dir, "laptop", "wg0.conf.png")).subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
            expect(statSync(join(dir, "laptop", "wg0.conf.png")).mode & 0o777).toBe(0o600);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
