// The host layer's scripts, run for real with sh against a temporary folder: quoting, modes, stdin.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asRoot, installPackagesScript, recordHostKeyScript, removeFilesScript, writeStdinToFileScript } from "../../components/host/host";
import { shellQuote } from "../../components/host/shell";

const asRootUser = process.getuid?.() === 0;

describe("host layer scripts", () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "wg-relay-host-"))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const tricky = "line with 'quotes' and \"double\" and $HOME and `backticks` and \\ backslash\n\nlast line\n";

    (asRootUser ? it : it.skip)("writes stdin into a file byte for byte with its mode, through the root wrapper", () => {
        const path = join(dir, "sub dir", "file.conf");
        const content = `${tricky}WG_RELAY_SCRIPT\n`; // the wrapper's delimiter is harmless in a file: it never enters the script
        execFileSync("sh", ["-c", asRoot(writeStdinToFileScript({ path, mode: "0640" }), "root")], { input: content });
        expect(readFileSync(path, "utf8")).toBe(content);
        expect(statSync(path).mode & 0o777).toBe(0o640);
    });

    (asRootUser ? it : it.skip)("writes a file larger than Linux allows one command-line argument (128 KiB)", () => {
        const path = join(dir, "access.rules");
        const content = "-A WG-RELAY-ACCESS -s 10.10.0.10/32 -d 192.168.12.0/24 -j ACCEPT\n".repeat(4000);
        const script = asRoot(writeStdinToFileScript({ path, mode: "0644" }), "root");
        expect(script.length).toBeLessThan(1024);
        execFileSync("sh", ["-c", script], { input: content });
        expect(readFileSync(path, "utf8")).toBe(content);
    });

    (asRootUser ? it : it.skip)("says whether it changed the file, so a re-run restarts nothing", () => {
        const path = join(dir, "unit.service");
        // What a step runs when the file changed (a restart), and what it runs every time.
        const write = (content: string, mode: string) =>
            execFileSync("sh", ["-c", asRoot(`${writeStdinToFileScript({ path, mode }, 'echo "changed=1"')}\necho "ran"`, "root")], { input: content }).toString().trim();
        expect(write("a\n", "0644")).toBe("changed=1\nran");
        expect(write("a\n", "0644")).toBe("ran");
        expect(write("a\n", "0600")).toBe("ran"); // a mode fix restarts nothing
        expect(statSync(path).mode & 0o777).toBe(0o600);
        expect(write("b\n", "0600")).toBe("changed=1\nran");
        expect(readFileSync(path, "utf8")).toBe("b\n");
        expect(readdirSync(dir)).toEqual(["unit.service"]); // no temporary file left behind
    });

    it("runs non-root users' scripts through sudo without a password prompt", () => {
        expect(asRoot("true", "pi")).toMatch(/^sudo -n sh -euc /);
        expect(asRoot("true", "root")).toMatch(/^sh -euc /);
    });

    it("refuses a script that would end its here-document early", () => {
        expect(() => asRoot("echo\nWG_RELAY_SCRIPT\n", "root")).toThrow(/WG_RELAY_SCRIPT/);
    });

    it("quotes words for sh", () => {
        for (const word of ["it's $x", "plain", "", "a b", "*", "/usr/local/lib/wg-relay/wg-apply"]) {
            expect(execFileSync("sh", ["-c", `printf %s ${shellQuote(word)}`]).toString()).toBe(word);
        }
        expect(shellQuote("/usr/local/lib/wg-relay/wg-apply")).toBe("/usr/local/lib/wg-relay/wg-apply");
    });

    it("installs only missing packages", () => {
        const script = installPackagesScript(["wireguard-tools", "curl"]);
        execFileSync("sh", ["-n"], { input: script });
        expect(script).toContain("dpkg-query");
        expect(script.indexOf("apt-get update")).toBeGreaterThan(script.indexOf('if [ -n "$missing" ]'));
    });
    it("waits for apt's locks, held on a fresh image by unattended-upgrades, and says so", () => {
        const bin = join(dir, "bin");
        mkdirSync(bin);
        const stub = (name: string, body: string) => {
            writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >> "${dir}/calls"\n${body}\n`);
            chmodSync(join(bin, name), 0o755);
        };
        stub("dpkg-query", "exit 1");
        stub("sleep", "true");
        // The package lists' lock is held for the first two updates, as apt-daily's update holds it.
        stub(
            "apt-get",
            `if [ "$*" = "update -qq" ] && [ "$(grep -c "^apt-get update" "${dir}/calls")" -le 2 ]; then echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 812 (apt-get)" >&2; exit 100; fi`,
        );
        const result = spawnSync("sh", ["-euc", installPackagesScript(["wireguard-tools", "curl"])], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(result.stdout).toBe(
            "installing wireguard-tools curl (waiting up to 600 s for apt's locks if another apt, such as unattended-upgrades, holds them)\n" +
                "another apt holds the package lists' lock: waiting for it\n",
        );
        const calls = readFileSync(join(dir, "calls"), "utf8").split("\n").filter((call) => call.startsWith("apt-get"));
        expect(calls).toEqual(["apt-get update -qq", "apt-get update -qq", "apt-get update -qq", "apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends wireguard-tools curl"]);

        // Any other failure of the update fails the step at once, with apt's message.
        stub("apt-get", `echo "E: The repository 'http://deb.debian.org/debian bookworm Release' does not have a Release file." >&2; exit 100`);
        const broken = spawnSync("sh", ["-euc", installPackagesScript(["curl"])], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
        expect(broken.status).toBe(1);
        expect(broken.stderr).toContain("does not have a Release file");
    });

    it("removes a file's folders that wg-relay owns once they are empty, and never a folder it does not own", () => {
        expect(removeFilesScript(["/etc/wg-relay/tls/server.key"]).split("\n")).toEqual([
            "rm -f /etc/wg-relay/tls/server.key",
            "rmdir /etc/wg-relay/tls 2>/dev/null || true",
            "rmdir /etc/wg-relay 2>/dev/null || true",
        ]);
        expect(removeFilesScript(["/etc/wireguard/psk/rpi1.psk"])).toContain("rmdir /etc/wireguard/psk ");
        expect(removeFilesScript(["/etc/wireguard/wg0.conf", "/usr/local/bin/wstunnel"])).toBe("rm -f /etc/wireguard/wg0.conf /usr/local/bin/wstunnel");
    });
});

describe("recording a host key on first use", () => {
    it("is a POSIX sh script that shellcheck passes, printing only the key line on stdout and naming the host on failure", () => {
        const script = recordHostKeyScript("rpi1", "192.168.1.130", 2222);
        const result = spawnSync("shellcheck", ["--shell=sh", "-"], { input: script, encoding: "utf8" });
        expect(result.stdout + result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(script).toContain("ssh-keyscan -T 10 -t ed25519 -p 2222 192.168.1.130 ");
        expect(script).toContain("rpi1: 192.168.1.130 port 2222 presented no ssh-ed25519 host key to ssh-keyscan");
        expect(script.split("\n").filter((line) => /^\s*(echo|printf)/.test(line) && !line.includes(">&2"))).toEqual([`printf '%s' "$key"`]);
    });
});
