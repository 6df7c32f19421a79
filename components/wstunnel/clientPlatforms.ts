// What runs wstunnel beside the WireGuard app on a client that is not Linux (clients[].platform): a launchd
// property list on macOS, a scheduled task with its command file on Windows, a shell script for Termux on Android.
// Each hands the stack's CA to wstunnel in SSL_CERT_FILE (rustls-native-certs reads it on every system) and the
// path prefix in the environment, never on the command line. Pure.
import { shellQuote } from "../host/shell";
import { caFileVariable, clientPrefixVariable, wstunnelClientArgs } from "./render";

/** The platforms with a bundle of their own; iOS gets confs only (it has no wstunnel client). */
export type WstunnelPlatform = "macos" | "windows" | "android";

export interface PlatformWstunnelSettings {
    localPort: number;
    relayHost: string;
    relayPort: number;
    wireguardPort: number;
    pathPrefix: string;
    /** The stack's CA is in the bundle (absent with a publicly trusted relay certificate). */
    withCa: boolean;
    /** Mutual TLS: the client's certificate and key file is in the bundle. */
    withClientCertificate: boolean;
    /** Which of the client's wstunnel clients (one per relay): "" for the first, "-RELAY" for the others. */
    suffix: string;
}

export interface PlatformFile {
    name: string;
    content: string;
    /** Holds the path prefix: for the owner only. */
    secret: boolean;
}

/** Where the bundle's files go on each platform: the wstunnel binary, the CA and the client certificate. */
export const platformPaths = {
    macos: { dir: "/usr/local/etc/wg-relay", binary: "/usr/local/bin/wstunnel" },
    windows: { dir: "C:\\ProgramData\\wg-relay", binary: "C:\\ProgramData\\wg-relay\\wstunnel.exe" },
    // Termux's home; the binary is wstunnel's android_arm64 release, unpacked there.
    android: { dir: "/data/data/com.termux/files/home/wg-relay", binary: "/data/data/com.termux/files/home/wg-relay/wstunnel" },
} as const;

const separator = { macos: "/", windows: "\\", android: "/" } as const;

function filesOf(platform: WstunnelPlatform, settings: PlatformWstunnelSettings) {
    const at = (name: string) => `${platformPaths[platform].dir}${separator[platform]}${name}`;
    const args = wstunnelClientArgs({ ...settings, clientCertificateFile: settings.withClientCertificate ? at("wg-relay-client.pem") : undefined });
    const environment: [string, string][] = [[clientPrefixVariable, settings.pathPrefix], ...(settings.withCa ? [[caFileVariable, at("wg-relay-ca.crt")] as [string, string]] : [])];
    return { args, environment };
}

const xmlEscape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** The launchd daemon's label, also its file name under /Library/LaunchDaemons. */
export const launchdLabel = (suffix: string) => `ch.wg-relay.wstunnel-client${suffix}`;

/** macOS: a launchd daemon (in /Library/LaunchDaemons, root-owned, 0600: it holds the prefix), kept running. */
export function renderLaunchdPlist(settings: PlatformWstunnelSettings): string {
    const { args, environment } = filesOf("macos", settings);
    const string = (text: string) => `<string>${xmlEscape(text)}</string>`;
    return [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
        '<plist version="1.0">',
        "<dict>",
        `  <key>Label</key>${string(launchdLabel(settings.suffix))}`,
        "  <key>ProgramArguments</key>",
        "  <array>",
        ...[platformPaths.macos.binary, ...args].map((arg) => `    ${string(arg)}`),
        "  </array>",
        "  <key>EnvironmentVariables</key>",
        "  <dict>",
        ...environment.flatMap(([name, value]) => [`    <key>${name}</key>${string(value)}`]),
        `    <key>NO_COLOR</key>${string("true")}`,
        "  </dict>",
        "  <key>RunAtLoad</key><true/>",
        "  <key>KeepAlive</key><true/>",
        `  <key>StandardErrorPath</key>${string(`/var/log/wg-relay-wstunnel-client${settings.suffix}.log`)}`,
        "</dict>",
        "</plist>",
        "",
    ].join("\n");
}

/** Windows: the command file the scheduled task runs (the prefix in its environment, not on a command line). */
export function renderWindowsCommand(settings: PlatformWstunnelSettings): string {
    const { args, environment } = filesOf("windows", settings);
    return [
        "@echo off",
        "rem Managed by wg-relay (npm run client-files): the wstunnel client beside WireGuard for Windows.",
        ...environment.map(([name, value]) => `set "${name}=${value}"`),
        `"${platformPaths.windows.binary}" ${args.join(" ")}`,
        "",
    ].join("\r\n");
}

export const windowsCommandName = (suffix: string) => `wstunnel-client${suffix}.cmd`;

/**
 * Windows: a Task Scheduler task (`schtasks /Create /TN wg-relay-wstunnel-client /XML FILE`), started at boot as
 * SYSTEM and restarted every minute when it stops, running the command file.
 */
export function renderWindowsTask(settings: Pick<PlatformWstunnelSettings, "suffix" | "relayHost" | "relayPort">): string {
    return [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">',
        "  <RegistrationInfo>",
        `    <Description>${xmlEscape(`wstunnel client for wg-relay: WireGuard through wss://${settings.relayHost}:${settings.relayPort}`)}</Description>`,
        "  </RegistrationInfo>",
        "  <Triggers>",
        "    <BootTrigger><Enabled>true</Enabled></BootTrigger>",
        "  </Triggers>",
        "  <Principals>",
        '    <Principal id="System">',
        "      <UserId>S-1-5-18</UserId>",
        "      <RunLevel>HighestAvailable</RunLevel>",
        "    </Principal>",
        "  </Principals>",
        "  <Settings>",
        "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>",
        "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>",
        "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>",
        "    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>",
        "    <RestartOnFailure><Interval>PT1M</Interval><Count>999</Count></RestartOnFailure>",
        "  </Settings>",
        '  <Actions Context="System">',
        "    <Exec>",
        `      <Command>${xmlEscape(`${platformPaths.windows.dir}\\${windowsCommandName(settings.suffix)}`)}</Command>`,
        "    </Exec>",
        "  </Actions>",
        "</Task>",
        "",
    ].join("\r\n");
}

/** Android: a script for Termux, started beside the WireGuard app (Termux:Boot can start it at boot). */
export function renderAndroidScript(settings: PlatformWstunnelSettings): string {
    const { args, environment } = filesOf("android", settings);
    return [
        "#!/data/data/com.termux/files/usr/bin/sh",
        "# Managed by wg-relay (npm run client-files): wstunnel's android_arm64 build beside the WireGuard app.",
        ...environment.map(([name, value]) => `export ${name}=${shellQuote(value)}`),
        `exec ${platformPaths.android.binary} ${args.map(shellQuote).join(" ")}`,
        "",
    ].join("\n");
}

/** The files that run one wstunnel client on a platform. */
export function platformWstunnelFiles(platform: WstunnelPlatform, settings: PlatformWstunnelSettings): PlatformFile[] {
    switch (platform) {
        case "macos":
            return [{ name: `${launchdLabel(settings.suffix)}.plist`, content: renderLaunchdPlist(settings), secret: true }];
        case "windows":
            return [
                { name: windowsCommandName(settings.suffix), content: renderWindowsCommand(settings), secret: true },
                { name: `wg-relay-wstunnel-client${settings.suffix}.xml`, content: renderWindowsTask(settings), secret: false },
            ];
        case "android":
            return [{ name: `wstunnel-client${settings.suffix}.sh`, content: renderAndroidScript(settings), secret: true }];
    }
}
