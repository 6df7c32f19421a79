// The host layer: every change wg-relay makes on a machine goes through here, for all three components.
// A step is one remote command over SSH. Scripts run as root (through `sudo -n` for other users) and are
// idempotent: @pulumi/command re-runs a step whenever its inputs change, and after a failed apply.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { posix } from "node:path";
import { SshSettings } from "../config";
import type { PlannedFile } from "../plan/hostPlan";
import { InterfaceSetting, interfaceCheckScript } from "./interfaces";
import { ownedDirs, systemdUnitPath, unitStaysUpScriptPath } from "./paths";
import { embeddedHostScript, embeddedHostScriptFunction, hostScript } from "./scripts";
import { shellQuote } from "./shell";

/** Debian packages every wg-relay host needs (curl and CA certificates fetch a wstunnel release). */
export const hostPackages = ["wireguard-tools", "iptables", "curl", "ca-certificates"];

const scriptDelimiter = "WG_RELAY_SCRIPT";

export type Connection = command.types.input.remote.ConnectionArgs;

/**
 * How a host is reached over SSH: the stack config's settings, or in a program of one's own (the library) a host and
 * user that are other resources' outputs, say a cloud server's address.
 */
export type SshConnectionArgs = WithInputHost<SshSettings>;
/** `Settings` (a host's resolved `ssh`) with its host and user possibly other resources' outputs. */
export type WithInputHost<Settings> = Settings extends unknown
    ? Omit<Settings, "host" | "user"> & {
          /** The host's name or address. */
          host: pulumi.Input<string>;
          /** Root, or a user with passwordless sudo. */
          user: pulumi.Input<string>;
      }
    : never;

/** SSH connection settings for a host; `proxy` makes it reachable only through a jump host. */
function sshConnection(ssh: SshConnectionArgs, hostKey: pulumi.Input<string>, privateKey: pulumi.Input<string>, proxy?: Connection): Connection {
    return {
        host: ssh.host,
        port: ssh.port,
        user: ssh.user,
        privateKey: pulumi.secret(privateKey),
        // Always set: without it the provider accepts any host key.
        hostKey,
        ...(proxy ? { proxy } : {}),
        dialErrorLimit: 20,
        perDialTimeout: 10,
    };
}

/**
 * The key every connection to a host insists on: the pinned `ssh.hostKey`, or with `ssh.trustOnFirstUse` the key
 * the host presented at the first `pulumi up`. That key is the output of a local command without triggers: it runs
 * once (again only when the host's address or port changes) and its output stays in the stack's state.
 */
function sshHostKey(name: string, ssh: SshConnectionArgs, parent: pulumi.Resource): pulumi.Input<string> {
    if (ssh.hostKey !== undefined) {
        return ssh.hostKey;
    }
    const host = pulumi.output(ssh.host);
    host.apply((address) =>
        pulumi.log.warn(
            `${name}: SSH host key not pinned (ssh.trustOnFirstUse): the key ${address} port ${ssh.port} presented at the first \`pulumi up\` is recorded in the stack's state and any other key is refused; pin it in ssh.hostKey (\`pulumi stack export\` shows it as the output of ${name}-ssh-host-key)`,
            parent,
        ),
    );
    const recorded = new command.local.Command(
        `${name}-ssh-host-key`,
        { create: host.apply((address) => recordHostKeyScript(name, address, ssh.port)), logging: "stderr", addPreviousOutputInEnv: false },
        { parent },
    );
    return recorded.stdout;
}

/** Prints the ssh-ed25519 key `host` presents (retrying while it boots), or fails naming the host. */
export function recordHostKeyScript(name: string, host: string, port: number): string {
    const scan = `ssh-keyscan -T 10 -t ed25519 -p ${port} ${shellQuote(host)} 2>/dev/null | awk '$2 == "ssh-ed25519" { print $2 " " $3; exit }'`;
    return [
        "for _ in 1 2 3 4 5 6; do",
        `    key=$(${scan})`,
        '    [ -z "$key" ] || break',
        "    sleep 5",
        "done",
        `[ -n "$key" ] || { echo ${shellQuote(`${name}: ${host} port ${port} presented no ssh-ed25519 host key to ssh-keyscan: pin its key in ssh.hostKey instead of trustOnFirstUse`)} >&2; exit 1; }`,
        `echo ${shellQuote(`${name}: trusting on first use the SSH host key of ${host} port ${port}:`)} "$key" >&2`,
        "printf '%s' \"$key\"",
    ].join("\n");
}

/**
 * Wraps a POSIX sh script so that it runs as root under `set -eu`. The script travels as a quoted here-document,
 * so `pulumi preview --diff` shows it as readable text. It becomes one argument of `sudo`, and Linux refuses an
 * argument over 128 KiB: so scripts stay small, and what a step writes into a file travels on stdin.
 */
export function asRoot(script: string, user: string): string {
    assertNoDelimiter(script, scriptDelimiter);
    const shell = `sh -euc "$(cat <<'${scriptDelimiter}'\n${script.replace(/\n+$/, "")}\n${scriptDelimiter}\n)"`;
    return user === "root" ? shell : `sudo -n ${shell}`;
}

function assertNoDelimiter(text: string, delimiter: string): void {
    if (text.split("\n").includes(delimiter)) {
        throw new Error(`a script must not contain a line '${delimiter}'`);
    }
}

export interface FileMode {
    path: string;
    mode: string;
    owner?: string;
    group?: string;
    /** A filter the content passes through on the host before it is compared and written (stdin to stdout). */
    hostFilter?: string;
}

/**
 * A script that writes its standard input into a file, atomically, with its mode and owner (write-file.sh, carried
 * in the command): how every file reaches a host (a relay's access rules for hundreds of clients outgrow any
 * command line). `onChange` runs only when the content differs from what the host has (write-file's `changed`), so
 * a re-run (after a failure, or when only the SSH connection changed) restarts nothing.
 */
export function writeStdinToFileScript(file: FileMode, onChange?: string): string {
    const filter = file.hostFilter === undefined ? [] : [`host_filter() { ${file.hostFilter}; }`];
    const call = [
        embeddedHostScriptFunction("write-file"),
        ...[file.path, file.mode, file.owner ?? "root", file.group ?? "root"].map(shellQuote),
        ...(file.hostFilter === undefined ? [] : ["host_filter"]),
    ].join(" ");
    const write = onChange ? [`written=$(${call})`, `if [ "$written" = changed ]; then\n${onChange}\nfi`] : [`${call} >/dev/null`];
    return [embeddedHostScript("write-file"), ...filter, ...write].join("\n");
}

/** Removes files, then each folder of theirs that wg-relay owns (ownedDirs) and that is left empty, deepest first. */
export function removeFilesScript(paths: string[]): string {
    const owned = (dir: string) => ownedDirs.some((root) => dir === root || dir.startsWith(`${root}/`));
    const dirs = new Set<string>();
    for (const path of paths) {
        for (let dir = posix.dirname(path); owned(dir); dir = posix.dirname(dir)) {
            dirs.add(dir);
        }
    }
    const deepestFirst = [...dirs].sort((a, b) => b.split("/").length - a.split("/").length);
    // Steps on one host are removed side by side: another may have emptied or removed the folder first.
    return [`rm -f ${paths.map(shellQuote).join(" ")}`, ...deepestFirst.map((dir) => `rmdir ${shellQuote(dir)} 2>/dev/null || true`)].join("\n");
}

/** How long a package step waits for apt's locks: on a fresh cloud image unattended-upgrades holds them for minutes. */
export const aptLockWaitSeconds = 600;

/** Installs the packages of the list that are missing (install-packages.sh, carried in the command). */
export function installPackagesScript(packages: string[]): string {
    const call = [embeddedHostScriptFunction("install-packages"), String(aptLockWaitSeconds), ...packages].map(shellQuote).join(" ");
    return [embeddedHostScript("install-packages"), call].join("\n");
}

export interface StepOptions {
    /** A list, or a promise of one: a relay's switching steps wait for steps of peers made after it (VpsRelay). */
    dependsOn?: pulumi.Input<pulumi.Resource>[] | Promise<pulumi.Input<pulumi.Resource>[]>;
}

/**
 * A step's `dependsOn` with more steps; either may be a promise (a relay's switching steps wait for steps of peers
 * made after it), and `more` may be absent.
 */
export function withSteps(dependsOn: StepOptions["dependsOn"], more: pulumi.Resource[] | Promise<pulumi.Resource[]> | undefined): StepOptions["dependsOn"] {
    if (dependsOn instanceof Promise || more instanceof Promise) {
        return Promise.all([dependsOn ?? [], more ?? []]).then(([list, steps]) => [...list, ...steps]);
    }
    return [...(dependsOn ?? []), ...(more ?? [])];
}

export interface RunOptions extends StepOptions {
    /** Runs on create and on every change of the step's inputs. */
    script: pulumi.Input<string>;
    /** Runs on destroy (and when the step is replaced). */
    deleteScript?: string;
    /** Handed to the script on its standard input: shown by `pulumi preview --diff` unless it is secret. */
    stdin?: { content: pulumi.Input<string>; secret: boolean };
}

export interface WriteFileOptions extends StepOptions, FileMode {
    content: pulumi.Input<string>;
    /** Runs when the file changed, e.g. a restart. */
    onChange?: string;
    /** Runs every time after the file is in place: what must hold whether or not it changed (enabled, started). */
    ensure?: string;
    /** Runs on destroy before the file is removed. */
    beforeRemove?: string;
    /** Runs on destroy after the file is removed. */
    afterRemove?: string;
}

export interface WriteSecretFileOptions extends StepOptions {
    path: string;
    content: pulumi.Input<string>;
    /** A group that may read the file as well. */
    group?: string;
    /** Runs when the file changed. */
    onChange?: string;
    afterRemove?: string;
}

/**
 * The first line of every step's script once `wg-relay:repair` is bumped: a changed input, so `pulumi up` runs every
 * step again, and the preview shows only this line. None at 0, so stacks that never repaired see no change.
 */
export function repairLine(repair: number): string | undefined {
    return repair > 0 ? `# wg-relay:repair ${repair}: this step runs again, putting back what changed by hand` : undefined;
}

const unitStaysUpStep = "unit-stays-up-script";

/** How a component reaches its host over SSH. */
export interface SshAccess {
    /** The stack's SSH private key (secret). */
    privateKey: pulumi.Input<string>;
    /** The component: it owns the host's steps (and the recorded host key). */
    parent: pulumi.Resource;
    /** The stack's `wg-relay:repair` counter (repairLine). */
    repair: number;
    /** The first relay's connection, the jump host for a host with `ssh.via: relay`. */
    relayConnection?: Connection;
}

/** One machine reached over SSH; steps are children of `parent` and named after `name`. */
export class Host {
    /** The host `ssh` describes, with its pinned or first-use host key, through the relay with `ssh.via: relay`. */
    static overSsh(name: string, ssh: SshConnectionArgs, access: SshAccess): Host {
        const proxy = "via" in ssh && ssh.via === "relay" ? access.relayConnection : undefined;
        const connection = sshConnection(ssh, sshHostKey(name, ssh, access.parent), access.privateKey, proxy);
        return new Host(name, connection, ssh.user, access.parent, access.repair);
    }

    private unitStaysUpStep?: command.remote.Command;

    constructor(
        readonly name: string,
        readonly connection: Connection,
        /** Root, or a user whose scripts run through `sudo -n`. */
        readonly user: pulumi.Input<string>,
        private readonly parent: pulumi.Resource,
        /** The stack's `wg-relay:repair` counter (repairLine). */
        private readonly repair: number,
    ) {}

    run(step: string, options: RunOptions): command.remote.Command {
        // A script that starts or restarts a unit runs unit-stays-up (`systemd`'s commands): its script is there first.
        const checksUnit = typeof options.script === "string" && options.script.includes(unitStaysUpScriptPath) && step !== unitStaysUpStep;
        const dependsOn = checksUnit ? withSteps(options.dependsOn, [this.unitStaysUpScript()]) : options.dependsOn;
        const script = pulumi.all([options.script, this.user]).apply(([text, user]) => asRoot([repairLine(this.repair), text].filter(Boolean).join("\n"), user));
        const deleteScript = options.deleteScript;
        const secret = options.stdin?.secret === true;
        return new command.remote.Command(
            `${this.name}-${step}`,
            {
                connection: this.connection,
                // Also what runs when an input changes: without an `update`, the provider runs `create` again,
                // and a preview shows each script once.
                create: script,
                delete: deleteScript ? pulumi.output(this.user).apply((user) => asRoot(deleteScript, user)) : undefined,
                stdin: options.stdin === undefined ? undefined : secret ? pulumi.secret(options.stdin.content) : options.stdin.content,
                // A step's scripts never print secrets, but the output of one fed by a secret stays out of the log.
                logging: secret ? "stderr" : "stdoutAndStderr",
                addPreviousOutputInEnv: false,
            },
            {
                parent: this.parent,
                dependsOn,
                additionalSecretOutputs: secret ? ["stdin"] : undefined,
            },
        );
    }

    writeFile(step: string, options: WriteFileOptions): command.remote.Command {
        return this.run(step, {
            script: [writeStdinToFileScript(options, options.onChange), options.ensure].filter(Boolean).join("\n"),
            deleteScript: [options.beforeRemove, removeFilesScript([options.path]), options.afterRemove].filter(Boolean).join("\n"),
            stdin: { content: options.content, secret: false },
            dependsOn: options.dependsOn,
        });
    }

    writeSecretFile(step: string, options: WriteSecretFileOptions): command.remote.Command {
        return this.run(step, {
            // Root-only, or readable by the group of a service that reads it in place.
            script: writeStdinToFileScript({ path: options.path, mode: options.group === undefined ? "0600" : "0640", group: options.group }, options.onChange),
            deleteScript: [removeFilesScript([options.path]), options.afterRemove].filter(Boolean).join("\n"),
            stdin: { content: options.content, secret: true },
            dependsOn: options.dependsOn,
        });
    }

    /** The step that installs unit-stays-up, which every start and restart of a unit runs (run() adds it). One per host. */
    private unitStaysUpScript(): command.remote.Command {
        this.unitStaysUpStep ??= this.writeFile(unitStaysUpStep, { path: unitStaysUpScriptPath, content: hostScript("unit-stays-up"), mode: "0755" });
        return this.unitStaysUpStep;
    }

    /**
     * A systemd service unit file: started and enabled, restarted when the file changes, stopped and removed on
     * destroy; the step fails when the service does not stay up.
     */
    installServiceUnit(step: string, options: StepOptions & { unit: string; content: pulumi.Input<string> }): command.remote.Command {
        return this.writeFile(step, {
            path: systemdUnitPath(options.unit),
            content: options.content,
            mode: "0644",
            onChange: systemd.reloadRestart(options.unit),
            ensure: systemd.enableStart(options.unit),
            beforeRemove: systemd.disableStop(options.unit),
            afterRemove: systemd.daemonReload,
            dependsOn: options.dependsOn,
        });
    }

    /** A file of the host's plan (plan/hostPlan.ts), by its own step: a service unit's installed, started and kept running. */
    writePlannedFile(file: PlannedFile, dependsOn: pulumi.Input<pulumi.Resource>[]): command.remote.Command {
        if (file.unit !== undefined) {
            return this.installServiceUnit(file.step, { unit: file.unit, content: file.content, dependsOn });
        }
        const { path, mode, owner, content, hostFilter, ensure, afterRemove } = file;
        return this.writeFile(file.step, { path, mode, owner, content, hostFilter, ensure, afterRemove, dependsOn });
    }

    /** Installs Debian packages that are missing; never removes them (other software may rely on them). */
    installPackages(step: string, packages: string[], options: StepOptions = {}): command.remote.Command {
        return this.run(step, { script: installPackagesScript(packages), dependsOn: options.dependsOn });
    }

    /** Checks the interface names the host's rules and sysctl file use (interfaceCheckScript); changes nothing. */
    checkInterfaces(step: string, settings: InterfaceSetting[]): command.remote.Command {
        return this.run(step, { script: interfaceCheckScript(settings) });
    }

    /** Uploads a local file to a path writable by the SSH user; re-uploads when its content hash changes. */
    upload(step: string, localPath: string, remotePath: string, contentHash: string, options: StepOptions = {}): command.remote.CopyToRemote {
        return new command.remote.CopyToRemote(
            `${this.name}-${step}`,
            { connection: this.connection, source: new pulumi.asset.FileAsset(localPath), remotePath, triggers: [contentHash] },
            { parent: this.parent, dependsOn: options.dependsOn },
        );
    }
}

/**
 * Commands for a systemd unit file's lifecycle. A start or restart is followed by unit-stays-up: wg-relay's units are
 * Type=simple, so systemctl reports success even for a service that exits at once and restarts every second.
 */
export const systemd = {
    /** After a unit file changed: reload it and restart the service (enableStart, which follows, checks it). */
    reloadRestart: (unit: string) => `systemctl daemon-reload\nsystemctl restart ${unit}`,
    /** Whatever happened: the unit is enabled, running, and stays up. */
    enableStart: (unit: string) => `systemctl enable --quiet --now ${unit}\n${unitStaysUpScriptPath} ${unit}`,
    restartIfActive: (unit: string) => `if systemctl is-active --quiet ${unit}; then\n    systemctl restart ${unit}\n    ${unitStaysUpScriptPath} ${unit}\nfi`,
    disableStop: (unit: string) => `systemctl disable --now ${unit} 2>/dev/null || true`,
    daemonReload: "systemctl daemon-reload",
};
