// End to end on the VM hosts (`WG_RELAY_LAB_HOSTS=vm`, lab/README.md "VM hosts"): QEMU/TCG virtual machines with
// Debian 13 and their own kernels, the relay amd64 with `ens3`, rpi1 arm64 (`qemu-system-aarch64 -M virt`), booted
// bare (no wireguard-tools, iptables or curl; apt's first-boot jobs running). From them, `pulumi up` converges
// through the program's own apt step (the lab's Debian mirror) and wstunnel's release mirror (the Pi takes the
// arm64 archive); both run kernel WireGuard; the LAN answers again after a real reboot and after a hard reset of
// either; `pulumi destroy` leaves the relay as the image plus sshd. On a lab whose relay is a container every test
// here is skipped (the rest of the suite covers it), and the Pi's on a lab whose rpi1 is one; run it with
// `WG_RELAY_LAB_HOSTS=vm bash lab/run-tests.sh test/e2e/vm.test.ts --selectProjects e2e`, which boots such a lab.
// Needs root.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { destroy, doctor, ensureStack, inNamespace, inNamespaceOk, lab, LabHost, lanService, onHost, onHostOk, repo, secondsUntil, secondsUntilLanReachable, up, wstunnelUnits } from "./lab";

const inventoryFile = join(repo, ".lab", "inventory.json");
const inventory = existsSync(inventoryFile) ? JSON.parse(readFileSync(inventoryFile, "utf8")) : undefined;
const relayIsVm = inventory?.hosts?.relay?.kind === "vm";
const piIsVm = inventory?.hosts?.rpi1?.kind === "vm";

/**
 * The LAN must answer again within this many seconds of a reboot or reset of the relay VM. The faults tests allow 30 s
 * from the moment a container host is up (its boot takes 2 to 5 s); a TCG boot of the relay takes 140 to 190 s on
 * this machine with little else running (lab/README.md), so the bound is that boot's 190 s with the faults' 30 s
 * after it, doubled for a machine shared with other work: 440 s. It is not a speed figure: it says the boot alone,
 * with no `pulumi up`, brings back wg0, the rules, the routes and wstunnel.
 */
const recoveryBoundSeconds = 440;
/**
 * The same for the arm64 Pi VM, whose TCG boot translates every instruction from a foreign set: booted alone it
 * reached its login prompt in 196 s, but beside the relay's boot and other work (load average 6 to 8), its first
 * boot let sshd in only between 473 s and 707 s after power on (lab/README.md). The bound is that 707 s (rounded
 * to 710 s) with the faults' 30 s after it, doubled: 1480 s. Like the relay's, it is not a speed figure.
 */
const piRecoveryBoundSeconds = 1480;

/** A host's boot id over SSH from the operator, or undefined while it does not answer. */
function bootId(host: LabHost): string | undefined {
    const result = inNamespace("op", ["timeout", "20", "ssh", "-F", join(repo, ".lab", "ssh", "config"), "-o", "ConnectTimeout=5", host, "cat /proc/sys/kernel/random/boot_id"]);
    return result.status === 0 ? result.stdout.trim() : undefined;
}

/** After `restart` (which must take the host down), seconds until the laptop gets the LAN's page again; printed. */
async function secondsUntilBackAfter(host: LabHost, what: string, bound: number, restart: () => void): Promise<number> {
    ensureStack({});
    const before = bootId(host);
    expect(before).toBeDefined();
    const start = Date.now();
    restart();
    // The host went down for real: a new boot id, not the old one answering.
    const sshSeconds = await secondsUntil(`${host} answering SSH from a new boot`, bound, () => {
        const now = bootId(host);
        return now !== undefined && now !== before;
    });
    const remaining = bound - (Date.now() - start) / 1000;
    await secondsUntilLanReachable(Math.max(remaining, 1));
    const seconds = (Date.now() - start) / 1000;
    console.log(`recovery on the VM ${host} (TCG): ${what}: LAN back ${seconds.toFixed(1)} s after it (sshd answered at ${sshSeconds.toFixed(1)} s; bound ${bound} s)`);
    lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
    return seconds;
}

/** What wg-relay puts on the relay (components/vpsRelay.ts, components/host/host.ts); none of it may stay after destroy. */
const relayFiles = ["/etc/wireguard/wg0.conf", "/etc/wg-relay", "/usr/local/etc/wg-relay", "/usr/local/lib/wg-relay", "/var/lib/wg-relay", "/usr/local/bin/wstunnel", "/etc/sysctl.d/90-wg-relay.conf"];

/** The bare image: none of what the program installs, and nothing of wg-relay ("0\n0"). */
const bareCheck = "dpkg-query -W -f='${Status}\\n' wireguard-tools iptables curl 2>/dev/null | grep -c 'install ok installed' || true; ls /etc/wireguard /etc/wg-relay 2>/dev/null | wc -l";

// A TCG boot takes minutes; each test that reboots a VM waits for that.
jest.setTimeout(30 * 60_000);

(relayIsVm ? describe : describe.skip)("the relay (amd64) and the Pi (arm64) as Debian 13 VMs with their own kernels", () => {
    it("1. from the bare image, pulumi up converges: packages through the program's apt step, wstunnel from its release mirror", () => {
        // The images as a provider ships them: none of what the program installs, and nothing of wg-relay.
        const vms: LabHost[] = piIsVm ? ["relay", "rpi1"] : ["relay"];
        for (const host of vms) {
            expect(onHostOk(host, bareCheck).trim().split("\n")).toEqual(["0", "0"]);
            const aptJobs = onHostOk(host, "systemctl list-jobs --no-legend 'apt-daily*' | awk '{ print $2 }' | tr '\\n' ' '; systemctl show -p ActiveState --value apt-daily.service");
            console.log(`apt's jobs on ${host} before pulumi up: ${aptJobs.trim()}`);
        }
        const start = Date.now();
        const output = up();
        console.log(`pulumi up from the bare VM ${vms.join(" and ")} (TCG): ${((Date.now() - start) / 1000).toFixed(0)} s`);
        // Pulumi prints each line of a step's output as it comes: the apt step said what it installs, then finished;
        // each host took the release archive of its own architecture.
        const architecture: Record<string, string> = { relay: "amd64", rpi1: "arm64" };
        for (const host of vms) {
            expect(output).toMatch(new RegExp(`${host}-packages creating .*installing wireguard-tools iptables curl`));
            expect(output).toMatch(new RegExp(`${host}-packages created `));
            expect(output).toMatch(new RegExp(`${host}-wstunnel-binary created .*wstunnel-install: installed wstunnel \\S+ \\(${architecture[host]}\\)`));
            expect(onHostOk(host, "dpkg-query -W -f='${Status}\\n' wireguard-tools iptables curl").trim().split("\n")).toEqual(Array(3).fill("install ok installed"));
            expect(onHostOk(host, "cat /var/lib/wg-relay/wstunnel-release.sha256").trim()).toMatch(/^[0-9a-f]{64}$/);
        }
        lab(["pulumi", "preview", "--stack", "lab", "--expect-no-changes"]);
    });

    it("2. the relay is Debian 13 on ens3 and its wg0 is kernel WireGuard", () => {
        ensureStack({});
        expect(onHostOk("relay", "cut -d. -f1 /etc/debian_version").trim()).toBe("13");
        expect(onHostOk("relay", "ip -o -4 addr show dev ens3")).toContain("198.51.100.10/24");
        // A kernel WireGuard link (`wireguard` in ip's details), the module loaded, and no userspace implementation.
        expect(onHostOk("relay", "ip -d link show dev wg0")).toMatch(/\n\s+wireguard /);
        expect(onHost("relay", "test -d /sys/module/wireguard").status).toBe(0);
        expect(onHost("relay", "pgrep -x wireguard-go").status).not.toBe(0);
        expect(onHostOk("relay", "wg show wg0 peers").trim()).not.toBe("");
    });

    (piIsVm ? it : it.skip)("3. rpi1 is a Debian 13 arm64 VM: aarch64, kernel WireGuard, running the arm64 release archive it verified", () => {
        ensureStack({});
        expect(onHostOk("rpi1", "uname -m").trim()).toBe("aarch64");
        expect(onHostOk("rpi1", "cut -d. -f1 /etc/debian_version").trim()).toBe("13");
        expect(onHostOk("rpi1", "ip -d link show dev wg0")).toMatch(/\n\s+wireguard /);
        expect(onHost("rpi1", "test -d /sys/module/wireguard").status).toBe(0);
        expect(onHost("rpi1", "pgrep -x wireguard-go").status).not.toBe(0);
        // The installed binary is the one in the release mirror's linux_arm64 archive (its SHA-256), an AArch64 ELF
        // (e_machine 183, the 2 bytes at offset 18) that runs there; the release marker is that archive's checksum
        // as checksums.txt publishes it.
        const version = onHostOk("rpi1", "/usr/local/bin/wstunnel --version").trim().split(" ").pop()!;
        const folder = join(repo, ".lab", "hosts", "mirror", "www", `v${version}`);
        const asset = `wstunnel_${version}_linux_arm64.tar.gz`;
        const published = readFileSync(join(folder, "checksums.txt"), "utf8").split("\n").find((line) => line.endsWith(`  ${asset}`));
        expect(published).toBeDefined();
        const inArchive = inNamespaceOk("op", ["sh", "-c", `tar -xzOf '${join(folder, asset)}' wstunnel | sha256sum`]).split(" ")[0];
        expect(onHostOk("rpi1", "sha256sum /usr/local/bin/wstunnel").split(" ")[0]).toBe(inArchive);
        expect(onHostOk("rpi1", "od -An -tu2 -j18 -N2 /usr/local/bin/wstunnel").trim()).toBe("183");
        expect(onHostOk("rpi1", "cat /var/lib/wg-relay/wstunnel-release.sha256").trim()).toBe(published!.split(" ")[0]);
        expect(onHostOk("rpi1", `systemctl is-active ${wstunnelUnits.rpi1}`).trim()).toBe("active");
    });

    it("4. the laptop reaches the LAN through wss:443 on the VM relay", async () => {
        ensureStack({});
        await secondsUntilLanReachable(30);
        // Its only way: the laptop's wstunnel holds a TCP connection to the relay's 443; UDP is dropped (lab.sh proof).
        expect(inNamespaceOk("laptop", ["ss", "-Htn", "state", "established", "dst", "198.51.100.10:443"]).trim()).not.toBe("");
        lab(["proof"]);
        expect(inNamespaceOk("laptop", ["curl", "--silent", "--max-time", "10", lanService])).toContain("hello from lanhost");
    });

    it(`5. systemctl reboot of the relay: the LAN answers again within ${recoveryBoundSeconds} s, by the boot alone`, async () => {
        const seconds = await secondsUntilBackAfter("relay", "systemctl reboot", recoveryBoundSeconds, () => {
            onHost("relay", "systemctl reboot");
        });
        expect(seconds).toBeLessThan(recoveryBoundSeconds);
    });

    it(`6. a hard reset of the relay from QEMU's monitor: the LAN answers again within ${recoveryBoundSeconds} s, by the boot alone`, async () => {
        const seconds = await secondsUntilBackAfter("relay", "hard reset (system_reset on QEMU's monitor)", recoveryBoundSeconds, () => {
            lab(["host", "reset", "relay"]);
        });
        expect(seconds).toBeLessThan(recoveryBoundSeconds);
    });

    (piIsVm ? it : it.skip)(`7. systemctl reboot of the Pi: the LAN answers again within ${piRecoveryBoundSeconds} s, by the boot alone`, async () => {
        const seconds = await secondsUntilBackAfter("rpi1", "systemctl reboot", piRecoveryBoundSeconds, () => {
            onHost("rpi1", "systemctl reboot");
        });
        expect(seconds).toBeLessThan(piRecoveryBoundSeconds);
    });

    (piIsVm ? it : it.skip)(`8. a hard reset of the Pi from QEMU's monitor: the LAN answers again within ${piRecoveryBoundSeconds} s, by the boot alone`, async () => {
        const seconds = await secondsUntilBackAfter("rpi1", "hard reset (system_reset on QEMU's monitor)", piRecoveryBoundSeconds, () => {
            lab(["host", "reset", "rpi1"]);
        });
        expect(seconds).toBeLessThan(piRecoveryBoundSeconds);
    });

    it("9. the doctor is green", () => {
        ensureStack({});
        const { result, report } = doctor();
        expect(report.hosts.flatMap((host) => host.findings.filter((finding) => finding.status !== "ok").map((finding) => `${host.name}: ${finding.check}: ${finding.detail}`))).toEqual([]);
        expect(result.status).toBe(0);
    });

    it("10. pulumi destroy leaves the relay as the image plus sshd: no wg0, no wg-relay units, files or rules", () => {
        ensureStack({});
        destroy();
        expect(onHost("relay", "ip link show dev wg0").status).not.toBe(0);
        expect(onHostOk("relay", "systemctl list-unit-files --no-legend 'wg-relay*' 'wg-quick@*' | grep -v '^wg-quick@\\.service' || true").trim()).toBe("");
        expect(onHostOk("relay", `ls -d ${relayFiles.join(" ")} /etc/systemd/system/wg-relay* 2>/dev/null || true`).trim()).toBe("");
        expect(onHostOk("relay", "iptables-save; ip6tables-save").toLowerCase()).not.toContain("wg-relay");
        // What the program installed (wireguard-tools, iptables, curl) stays: they are Debian's packages, which other
        // software on a VPS may use too, and the state does not record whether the host had them before.
        expect(onHostOk("relay", "systemctl is-active ssh").trim()).toBe("active");
    });
});
