// npm run import:wg-easy -- FILE [options]: moves a wg-easy v14 server onto wg-relay without touching a device.
// Reads wg-easy's wg0.json (its Backup download, or /etc/wireguard/wg0.json in its volume) and sets the stack
// config: the relay keeps wg-easy's server key, address and UDP port, and every client keeps its private key,
// preshared key and address, so phones and laptops dial the relay exactly as they dialled wg-easy.
//
// The parsing and mapping functions are pure; the runner at the bottom is the only part that calls `pulumi`.
// Secrets (keys) are set with `pulumi config set --secret --path KEY`, the value on stdin: never in a process's
// arguments, never printed.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { z } from "zod";
import { wireguardPublicKey } from "../components/wireguard/keys";
import { cidrContains, intToIp, ipToInt, isIpv4, isNetworkOrBroadcast, parseCidr } from "../components/net";

// ---------------------------------------------------------------------------------------------------------------
// wg-easy's export
// ---------------------------------------------------------------------------------------------------------------

/** A WireGuard key as `wg genkey` / `wg genpsk` print it: base64 of exactly 32 bytes. */
export function isWireguardKey(text: string): boolean {
    return /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(text) && Buffer.from(text, "base64").length === 32;
}

const wireguardKey = z.string().refine(isWireguardKey, { message: "expected a WireGuard key: base64 of 32 bytes (44 characters ending in '=')" });
const ipv4 = z.string().refine(isIpv4, { message: "expected an IPv4 address like 10.8.0.2" });

/**
 * wg-easy v14's wg0.json (src/lib/WireGuard.js): the server's key pair and address (x.y.z.1 from
 * WG_DEFAULT_ADDRESS; wg0 gets `Address = <address>/24`), and the clients by id. Other fields (id, createdAt,
 * updatedAt, ...) are ignored. Older exports may lack preSharedKey; a client added by public key only has no
 * privateKey.
 */
export const wgEasyExportSchema = z.object({
    server: z.object({
        privateKey: wireguardKey,
        publicKey: wireguardKey,
        address: ipv4,
    }),
    clients: z.record(
        z.string(),
        z.object({
            name: z.string(),
            address: ipv4,
            privateKey: wireguardKey.optional(),
            publicKey: wireguardKey,
            preSharedKey: wireguardKey.optional(),
            enabled: z.boolean(),
        }),
    ),
});
export type WgEasyExport = z.output<typeof wgEasyExportSchema>;

export class ImportError extends Error {
    constructor(readonly problems: string[]) {
        super(problems.length === 1 ? problems[0] : `\n${problems.map((line) => `  - ${line}`).join("\n")}`);
        this.name = "ImportError";
    }
}

/** Parses and checks an export; every problem names the file and the field. Messages never hold a key. */
export function parseWgEasyExport(text: string, file: string): WgEasyExport {
    if (text.startsWith("SQLite format 3\0")) {
        throw new ImportError([
            `${file}: this is a wg-easy v15 database (SQLite), not a v14 wg0.json; only the v14 export can be imported (see the README, "Import from wg-easy")`,
        ]);
    }
    let json: unknown;
    try {
        json = JSON.parse(text);
    } catch (error) {
        throw new ImportError([`${file}: not JSON (${(error as Error).message})`]);
    }
    const result = wgEasyExportSchema.safeParse(json, {
        error: (issue) => (issue.code === "invalid_type" && issue.input === undefined ? "required, but missing" : undefined),
    });
    if (!result.success) {
        throw new ImportError(result.error.issues.map((issue) => `${file}: ${formatPath(issue.path)}: ${issue.message}`));
    }
    const exported = result.data;
    const problems: string[] = [];
    if (wireguardPublicKey(exported.server.privateKey) !== exported.server.publicKey) {
        problems.push(`${file}: server.privateKey does not belong to server.publicKey (the key the devices hold)`);
    }
    const publicKeys = new Map<string, string>([[exported.server.publicKey, "server"]]);
    for (const [id, client] of Object.entries(exported.clients)) {
        if (client.privateKey !== undefined && wireguardPublicKey(client.privateKey) !== client.publicKey) {
            problems.push(`${file}: ${formatPath(["clients", id, "privateKey"])}: does not belong to the client's publicKey`);
        }
        const owner = publicKeys.get(client.publicKey);
        if (owner) {
            problems.push(`${file}: ${formatPath(["clients", id, "publicKey"])}: the same key as ${owner}`);
        }
        publicKeys.set(client.publicKey, formatPath(["clients", id]));
    }
    if (problems.length > 0) {
        throw new ImportError(problems);
    }
    return exported;
}

function formatPath(path: PropertyKey[]): string {
    if (path.length === 0) {
        return "(top level)";
    }
    return path
        .map((part, index) => {
            if (typeof part === "number") {
                return `[${part}]`;
            }
            const text = String(part);
            if (index > 0 && path[index - 1] === "clients") {
                return `[${JSON.stringify(text)}]`; // client ids are UUIDs: show them as keys
            }
            return index === 0 ? text : `.${text}`;
        })
        .join("");
}

// ---------------------------------------------------------------------------------------------------------------
// Mapping onto the stack config
// ---------------------------------------------------------------------------------------------------------------

/** wg-easy's WG_ALLOWED_IPS default: what the devices route into the tunnel. */
export const wgEasyDefaultAllowedIps = "0.0.0.0/0, ::/0";

export interface ImportOptions {
    /** WG_HOST: what the devices dial; set as relay.publicAddress when given. */
    host?: string;
    /** The UDP port the devices dial (WG_CONFIG_PORT, which defaults to WG_PORT, 51820). */
    port: number;
    /** WG_ALLOWED_IPS, as wg-easy put it in the devices' confs. */
    allowedIps: string;
    includeDisabled: boolean;
    /** Put before every derived name, e.g. "wge-", to step around names the stack already uses. */
    namePrefix: string;
}

export const defaultImportOptions: ImportOptions = { port: 51820, allowedIps: wgEasyDefaultAllowedIps, includeDisabled: false, namePrefix: "" };

/** The stack's current `wg-relay:` values that the import reads (from `pulumi config --json`), unvalidated. */
export interface CurrentConfig {
    tunnel?: unknown;
    relay?: unknown;
    gateways?: unknown;
    clients?: unknown;
}

/** One `pulumi config set --path` key and value. */
export interface Assignment {
    key: string;
    value: string | number | boolean;
    secret: boolean;
}

export interface ImportPlan {
    assignments: Assignment[];
    /** What happens to each wg-easy client, and what the user still has to do; never a key. */
    report: string[];
}

type Loose = Record<string, unknown>;
const looseObject = (value: unknown): Loose => (value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Loose) : {});
const looseList = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const looseString = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

const namePattern = /^[a-z][a-z0-9-]{0,30}$/;
const maxNameLength = 31;

/** A wg-relay name from wg-easy's free-text name: lowercase ASCII letters, digits and '-', starting with a letter. */
export function slugName(text: string, prefix = ""): string {
    const slug = `${prefix}${text}`
        .normalize("NFKD")
        .replace(/[\u0300-\u036f]/g, "") // accents, split off by NFKD
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "");
    const named = /^[a-z]/.test(slug) ? slug : slug === "" ? "client" : `client-${slug}`;
    return named.slice(0, maxNameLength).replace(/-+$/, "");
}

/** `name`, or `name-2`, `name-3`, ... (shortened to fit), whichever is not in `taken`. */
function uniqueName(name: string, taken: Set<string>): string {
    for (let n = 1; ; n++) {
        const suffix = n === 1 ? "" : `-${n}`;
        const candidate = `${name.slice(0, maxNameLength - suffix.length).replace(/-+$/, "")}${suffix}`;
        if (!taken.has(candidate)) {
            return candidate;
        }
    }
}

/** wg-easy's wg0 is `<server address>/24`. */
export function wgEasySubnet(serverAddress: string): string {
    return `${intToIp(Math.floor(ipToInt(serverAddress) / 256) * 256)}/24`;
}

export function isFullTunnel(allowedIps: string): boolean {
    return allowedIps.split(",").map((entry) => entry.trim()).includes("0.0.0.0/0");
}

interface StackPeer {
    where: string;
    name?: string;
    address?: string;
}

/**
 * The config values that carry a wg-easy export into the stack, given what the stack holds now. Throws an
 * ImportError listing every clash (a name or an address the stack already uses) before anything is written.
 */
export function planImport(exported: WgEasyExport, options: ImportOptions, current: CurrentConfig): ImportPlan {
    const problems: string[] = [];
    const report: string[] = [];
    const server = exported.server;
    const subnetText = wgEasySubnet(server.address);
    const subnet = parseCidr(subnetText)!;
    if (isNetworkOrBroadcast(subnet, server.address)) {
        problems.push(`server.address ${server.address} is the network or broadcast address of ${subnetText}`);
    }
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
        problems.push(`--port ${options.port}: expected a UDP port, 1-65535`);
    }
    const fullTunnel = isFullTunnel(options.allowedIps);

    const relay = looseObject(current.relay);
    const relayName = looseString(relay.name) ?? "relay";
    const gateways = looseList(current.gateways).map(looseObject);
    const existingClients = looseList(current.clients).map(looseObject);
    const stackPeers: StackPeer[] = [
        ...gateways.map((peer, index) => ({ where: `gateways[${index}]`, name: looseString(peer.name), address: looseString(peer.tunnelAddress) })),
        ...existingClients.map((peer, index) => ({ where: `clients[${index}]`, name: looseString(peer.name), address: looseString(peer.tunnelAddress) })),
    ];

    // A stack client holding the private key of a client being imported is that device, imported before: it is
    // updated in place (a re-run changes nothing else).
    const isImported = (client: WgEasyExport["clients"][string]) => client.privateKey !== undefined && (client.enabled || options.includeDisabled);
    const importedKeys = new Set(Object.values(exported.clients).filter(isImported).map((client) => client.privateKey));
    const importedBefore = new Map<string, number>();
    existingClients.forEach((client, index) => {
        const key = looseString(looseObject(client.existingKeys).privateKey);
        if (key !== undefined && importedKeys.has(key) && !importedBefore.has(key)) {
            importedBefore.set(key, index);
        }
    });

    const takenNames = new Map<string, string>([[relayName, "relay.name"]]);
    const takenAddresses = new Map<string, string>([[server.address, "the relay (wg-easy's server address)"]]);
    const updatedInPlace = new Set([...importedBefore.values()].map((index) => `clients[${index}]`));
    const keptPeers = stackPeers.filter((peer) => !updatedInPlace.has(peer.where));
    for (const peer of keptPeers) {
        const label = `${peer.where}${peer.name ? ` (${peer.name})` : ""} in the stack`;
        if (peer.name) {
            takenNames.set(peer.name, label);
        }
        if (peer.address) {
            if (!isIpv4(peer.address) || !cidrContains(subnet, peer.address)) {
                problems.push(`${label} has tunnel address ${peer.address}, outside wg-easy's subnet ${subnetText}, which the import makes the tunnel's subnet`);
            } else if (peer.address === server.address) {
                problems.push(`${label} has tunnel address ${peer.address}, which is wg-easy's server address (the relay's, after the import)`);
            }
            takenAddresses.set(peer.address, label);
        }
    }

    const plain: Assignment[] = [];
    const secret: Assignment[] = [];
    const set = (key: string, value: string | number | boolean) => plain.push({ key: `wg-relay:${key}`, value, secret: false });
    const setSecret = (key: string, value: string) => secret.push({ key: `wg-relay:${key}`, value, secret: true });

    set("tunnel.subnet", subnetText);
    set("relay.tunnelAddress", server.address);
    set("relay.wireguardPort", options.port);
    set("relay.allowDirectUdp", true);
    if (options.host !== undefined) {
        set("relay.publicAddress", options.host);
    }
    setSecret("relay.existingKeys.privateKey", server.privateKey);

    report.push(`wg-easy server ${server.address} → relay: tunnel ${subnetText}, UDP port ${options.port}, wg-easy's server key`);
    const importedNames = new Set<string>();
    let nextIndex = existingClients.length;
    for (const [id, client] of Object.entries(exported.clients)) {
        const label = JSON.stringify(client.name);
        if (!client.enabled && !options.includeDisabled) {
            report.push(`skipped ${label} (${client.address}): disabled in wg-easy (--include-disabled imports it)`);
            continue;
        }
        if (client.privateKey === undefined) {
            report.push(`skipped ${label} (${client.address}): the export has no private key for it (wg-relay needs one); enrol the device anew`);
            continue;
        }
        const where = `wg-easy client ${label} (${formatPath(["clients", id])})`;
        if (!cidrContains(subnet, client.address) || isNetworkOrBroadcast(subnet, client.address)) {
            problems.push(`${where}: address ${client.address} is not a host address of wg-easy's subnet ${subnetText}`);
            continue;
        }
        const addressOwner = takenAddresses.get(client.address);
        if (addressOwner) {
            problems.push(`${where}: address ${client.address} is already used by ${addressOwner}`);
            continue;
        }

        const previous = importedBefore.get(client.privateKey);
        let index: number;
        let name: string;
        if (previous !== undefined) {
            index = previous;
            name = looseString(existingClients[previous].name) ?? slugName(client.name, options.namePrefix);
            importedBefore.delete(client.privateKey); // a second entry with the same key is a new peer
        } else {
            index = nextIndex++;
            const slug = slugName(client.name, options.namePrefix);
            const owner = takenNames.get(slug);
            if (owner) {
                problems.push(`${where}: its name becomes '${slug}', which ${owner} already uses; rename one of them, or import with --prefix`);
                continue;
            }
            // Names alike within the export get -2, -3, ...; the stack's names are avoided as well.
            name = uniqueName(slug, new Set([...importedNames, ...takenNames.keys()]));
        }
        if (!namePattern.test(name)) {
            problems.push(`${where}: '${name}' is not a valid wg-relay name`);
            continue;
        }
        importedNames.add(name);
        takenAddresses.set(client.address, where);

        set(`clients[${index}].name`, name);
        set(`clients[${index}].tunnelAddress`, client.address);
        set(`clients[${index}].transport`, "udp");
        set(`clients[${index}].fullTunnel`, fullTunnel);
        if (client.preSharedKey !== undefined) {
            set(`clients[${index}].presharedKey`, true);
        }
        setSecret(`clients[${index}].existingKeys.privateKey`, client.privateKey);
        if (client.preSharedKey !== undefined) {
            setSecret(`clients[${index}].existingKeys.presharedKey`, client.preSharedKey);
        }
        const traits = [fullTunnel ? "full tunnel" : "split tunnel", client.preSharedKey ? "preshared key" : "no preshared key", client.enabled ? "" : "disabled in wg-easy"];
        report.push(
            `${label} → clients[${index}] ${name} (${client.address}; ${traits.filter(Boolean).join(", ")})${previous !== undefined ? ": imported before, updated in place" : ""}`,
        );
    }

    if (problems.length > 0) {
        throw new ImportError(problems);
    }

    const notes: string[] = [];
    const relaySsh = looseObject(relay.ssh);
    if (looseString(relaySsh.host) === undefined) {
        notes.push("set relay.ssh (host, user, hostKey) and wg-relay:sshPrivateKey: how `pulumi up` reaches the relay");
    }
    notes.push(
        `the devices dial ${options.host ?? "wg-easy's WG_HOST"}:${options.port} over UDP: make that reach the relay (move the DNS name or the address, or run the relay on wg-easy's machine), and stop wg-easy before \`pulumi up\``,
    );
    const publicAddress = options.host ?? looseString(relay.publicAddress) ?? looseString(relaySsh.host);
    if (fullTunnel && (publicAddress === undefined || !isIpv4(publicAddress))) {
        notes.push("full-tunnel clients need relay.publicAddress (or relay.ssh.host) to be the relay's IPv4 address; the devices may still dial a name");
    }
    if (gateways.length > 0 || keptPeers.some((peer) => peer.where.startsWith("clients["))) {
        notes.push(
            "the relay takes wg-easy's key (and tunnel subnet): peers already in the stack get the new relay key at `pulumi up` when reached over SSH; others need their files again (npm run client-files)",
        );
    }
    report.push(...notes.map((note) => `note: ${note}`));
    return { assignments: [...plain, ...secret], report };
}

/** A plan as text, secrets shown as [secret]: what --dry-run prints. */
export function describeAssignments(assignments: Assignment[]): string[] {
    return assignments.map((assignment) => `${assignment.key} = ${assignment.secret ? "[secret]" : JSON.stringify(assignment.value)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The runner: talks to the real `pulumi`
// ---------------------------------------------------------------------------------------------------------------

/** Runs `pulumi ARGS` (with INPUT on stdin) and returns its stdout; throws with its stderr on failure. */
export type PulumiRunner = (args: string[], input?: string) => string;

export function pulumiRunner(options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): PulumiRunner {
    return (args, input) => {
        const result = spawnSync("pulumi", args, { cwd: options.cwd, env: options.env, input: input ?? "", encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        if (result.error) {
            throw new Error(`could not run pulumi: ${result.error.message}`);
        }
        if (result.status !== 0) {
            // The arguments hold no secret, so the command can be named.
            throw new Error(`\`pulumi ${args.join(" ")}\` failed:\n${result.stderr.trim()}`);
        }
        return result.stdout;
    };
}

const stackArgs = (stack?: string) => (stack ? ["--stack", stack] : []);

/**
 * The stack's current `wg-relay:` values. `--show-secrets` because Pulumi hides a whole object that holds a
 * secret (clients with existingKeys): the values stay in this process, to find clients imported before.
 */
export function readCurrentConfig(pulumi: PulumiRunner, stack?: string): CurrentConfig {
    const all = JSON.parse(pulumi(["config", "--json", "--show-secrets", "--non-interactive", ...stackArgs(stack)]) || "{}") as Record<
        string,
        { value?: string; objectValue?: unknown }
    >;
    const value = (key: string): unknown => {
        const entry = all[`wg-relay:${key}`];
        if (entry === undefined) {
            return undefined;
        }
        if (entry.objectValue !== undefined) {
            return entry.objectValue;
        }
        try {
            return JSON.parse(entry.value ?? "");
        } catch {
            return entry.value;
        }
    };
    return { tunnel: value("tunnel"), relay: value("relay"), gateways: value("gateways"), clients: value("clients") };
}

/**
 * Sets a plan: every plain value in one `pulumi config set-all --path` (its arguments carry the values), then
 * each secret with `pulumi config set --secret --path KEY`, the value on stdin (Pulumi reads a value missing
 * from the command line from stdin when stdin is not a terminal).
 */
export function applyPlan(pulumi: PulumiRunner, assignments: Assignment[], stack?: string): void {
    const plain = assignments.filter((assignment) => !assignment.secret);
    if (plain.length > 0) {
        pulumi(["config", "set-all", "--non-interactive", "--path", ...stackArgs(stack), ...plain.flatMap((a) => ["--plaintext", `${a.key}=${a.value}`])]);
    }
    for (const assignment of assignments.filter((a) => a.secret)) {
        pulumi(["config", "set", "--non-interactive", "--secret", "--path", ...stackArgs(stack), assignment.key], String(assignment.value));
    }
}

const usage = `usage: npm run import:wg-easy -- WG0_JSON [options]
  --stack NAME          the stack to change (default: the selected stack)
  --host HOST           wg-easy's WG_HOST, set as relay.publicAddress (use the relay's IPv4 address for full tunnels)
  --port PORT           the UDP port the devices dial: WG_CONFIG_PORT, or WG_PORT (default 51820)
  --allowed-ips LIST    wg-easy's WG_ALLOWED_IPS (default "${wgEasyDefaultAllowedIps}"); 0.0.0.0/0 means full tunnel
  --include-disabled    import clients disabled in wg-easy too (they become active peers)
  --prefix TEXT         put TEXT before every client name (to step around names the stack uses)
  --dry-run             print what would be set (keys as [secret]) and change nothing`;

export function runImport(argv: string[], pulumi: PulumiRunner, print: (line: string) => void): void {
    const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
            stack: { type: "string" },
            host: { type: "string" },
            port: { type: "string" },
            "allowed-ips": { type: "string" },
            "include-disabled": { type: "boolean", default: false },
            prefix: { type: "string", default: "" },
            "dry-run": { type: "boolean", default: false },
            help: { type: "boolean", default: false },
        },
    });
    if (values.help || positionals.length !== 1) {
        throw new Error(usage);
    }
    const file = positionals[0];
    const options: ImportOptions = {
        host: values.host,
        port: values.port === undefined ? defaultImportOptions.port : Number(values.port),
        allowedIps: values["allowed-ips"] ?? defaultImportOptions.allowedIps,
        includeDisabled: values["include-disabled"],
        namePrefix: values.prefix,
    };
    if (options.host !== undefined && !/^[A-Za-z0-9.-]{1,253}$/.test(options.host)) {
        throw new Error(`--host ${options.host}: expected a DNS name or an IPv4 address`);
    }
    const exported = parseWgEasyExport(readFileSync(file, "utf8"), file);
    const plan = planImport(exported, options, readCurrentConfig(pulumi, values.stack));
    plan.report.forEach((line) => print(line));
    if (values["dry-run"]) {
        print("dry run: would set");
        describeAssignments(plan.assignments).forEach((line) => print(`  ${line}`));
        return;
    }
    applyPlan(pulumi, plan.assignments, values.stack);
    print(`set ${plan.assignments.length} config values (${plan.assignments.filter((a) => a.secret).length} secret); next: pulumi preview --diff`);
}

if (require.main === module) {
    try {
        runImport(process.argv.slice(2), pulumiRunner(), (line) => console.log(line));
    } catch (error) {
        console.error(`import:wg-easy: ${(error as Error).message}`);
        process.exit(1);
    }
}
