// npm run client-files -- NAME [DIR]: writes one roaming client's files from the stack's secret outputs:
// its wg-quick conf, the wstunnel unit and environment file, the stack's CA, its certificate with mutual TLS, and
// the conf as a QR code (PNG, and in the terminal) for the WireGuard phone apps. Run it where you run `pulumi up`.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as QRCode from "qrcode";
import type { ClientBundle } from "../components/clientBundle";

export interface ClientFile {
    name: string;
    content: string;
    /** Files holding a private key or the path prefix are for the owner only. */
    mode: number;
}

/** The conf that reaches the relay at a further UDP port: the name says which port, for a person choosing. */
export const udpPortConfName = (port: number) => `wg0-udp-port-${port}.conf`;

export function clientFiles(bundle: ClientBundle): ClientFile[] {
    const files: ClientFile[] = [{ name: "wg0.conf", content: bundle.wireguardConf, mode: 0o600 }];
    if (bundle.wstunnelUnit && bundle.wstunnelEnvironment && bundle.wstunnelCommand) {
        files.push(
            { name: "wg-relay-wstunnel-client.service", content: bundle.wstunnelUnit, mode: 0o644 },
            { name: "wstunnel-client.env", content: bundle.wstunnelEnvironment, mode: 0o600 },
            { name: "wstunnel-command.sh", content: `#!/bin/sh\nexec ${bundle.wstunnelCommand}\n`, mode: 0o700 },
        );
    }
    for (const file of bundle.platformFiles ?? []) {
        files.push({ name: file.name, content: file.content, mode: file.secret ? 0o600 : 0o644 });
    }
    if (bundle.caCertificate) {
        // On Linux it goes to /etc/wg-relay/tls/relay-ca.crt, the unit's and the command's SSL_CERT_FILE.
        files.push({ name: "wg-relay-ca.crt", content: bundle.caCertificate, mode: 0o644 });
    }
    if (bundle.clientCertificate) {
        // Goes to /etc/wg-relay/tls/client.pem, where the unit and the command read it.
        files.push({ name: "wg-relay-client.pem", content: bundle.clientCertificate, mode: 0o600 });
    }
    // relay.udpPorts: the conf again for each further UDP port, named by it (try them in turn where UDP is filtered).
    for (const { port, wireguardConf } of bundle.udpPortConfs ?? []) {
        files.push({ name: udpPortConfName(port), content: wireguardConf, mode: 0o600 });
    }
    // Several relays: a conf per relay (its routes on that relay), and each further relay's wstunnel client.
    for (const relay of bundle.relays ?? []) {
        files.push({ name: `wg0-${relay.relay}.conf`, content: relay.wireguardConf, mode: 0o600 });
        if (relay.wstunnelUnit && relay.wstunnelEnvironment && relay.wstunnelCommand) {
            files.push(
                { name: `wg-relay-wstunnel-client-${relay.relay}.service`, content: relay.wstunnelUnit, mode: 0o644 },
                { name: `wstunnel-client-${relay.relay}.env`, content: relay.wstunnelEnvironment, mode: 0o600 },
                { name: `wstunnel-command-${relay.relay}.sh`, content: `#!/bin/sh\nexec ${relay.wstunnelCommand}\n`, mode: 0o700 },
            );
        }
    }
    return files;
}

export async function writeClientFiles(bundle: ClientBundle, dir: string): Promise<string[]> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const written: string[] = [];
    for (const file of clientFiles(bundle)) {
        const path = join(dir, file.name);
        writeFileSync(path, file.content, { mode: file.mode });
        written.push(path);
    }
    const confs = [
        { name: "wg0.conf", content: bundle.wireguardConf },
        ...(bundle.udpPortConfs ?? []).map(({ port, wireguardConf }) => ({ name: udpPortConfName(port), content: wireguardConf })),
        ...(bundle.relays ?? []).map((relay) => ({ name: `wg0-${relay.relay}.conf`, content: relay.wireguardConf })),
    ];
    for (const conf of confs) {
        const png = join(dir, `${conf.name}.png`);
        await QRCode.toFile(png, conf.content, { errorCorrectionLevel: "M" });
        chmodSync(png, 0o600); // the QR code holds the private key too
        written.push(png);
    }
    return written;
}

async function main(argv: string[]): Promise<void> {
    const [name, dir = join("client-files", name ?? "")] = argv;
    if (!name) {
        throw new Error("usage: npm run client-files -- CLIENT_NAME [OUTPUT_DIR]");
    }
    const json = execFileSync("pulumi", ["stack", "output", "clientBundles", "--show-secrets", "--json"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
    });
    const bundles = JSON.parse(json) as Record<string, ClientBundle>;
    const bundle = bundles[name];
    if (!bundle) {
        throw new Error(`no client '${name}' in this stack; clients: ${Object.keys(bundles).join(", ") || "none"}`);
    }
    const written = await writeClientFiles(bundle, dir);
    console.log(await QRCode.toString(bundle.wireguardConf, { type: "terminal", small: true }));
    console.log(`wrote ${written.join("\n      ")}`);
}

if (require.main === module) {
    main(process.argv.slice(2)).catch((error: Error) => {
        console.error(`client-files: ${error.message}`);
        process.exit(1);
    });
}
