// SSH host keys in the lab: rpi1 on trust on first use (ssh.trustOnFirstUse) has its key recorded by the first
// `pulumi up`; after its key changes, the next `pulumi up` fails naming rpi1 and lands nothing on it.
// Needs root and the lab, like lab.test.ts.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { wireguardTemplatePath } from "../../components/host/paths";
import { shellQuote } from "../../components/host/shell";
import type { LabChanges } from "../../lab/stack-config";
import { changedSteps, ensureStack, failingUp, inNamespace, lab, onHostOk, repo, Result, up, writeStack } from "./lab";

const trustOnFirstUse: LabChanges = { rpi1TrustOnFirstUse: true };
const keyOfHost = "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub";
const saved = "/root/ssh_host_ed25519_key.hostkeys-test";

/** The key recorded in the stack's state for rpi1 (the output of its rpi1-ssh-host-key step). */
function recordedKey(): string | undefined {
    const state = JSON.parse(lab(["pulumi", "stack", "export", "--stack", "lab"])) as { deployment: { resources?: { urn: string; outputs?: { stdout?: string } }[] } };
    return state.deployment.resources?.find((resource) => resource.urn.endsWith("::rpi1-ssh-host-key"))?.outputs?.stdout;
}

/** A script on rpi1 over SSH from the operator's namespace, accepting only `hostKey` (the lab's own ssh pins the original). */
function onRpi1With(hostKey: string, script: string): Result {
    const inventory = JSON.parse(readFileSync(join(repo, ".lab", "inventory.json"), "utf8")) as { hosts: { rpi1: { address: string } } };
    const knownHosts = join(repo, ".lab", "ssh", "known_hosts.hostkeys-test");
    writeFileSync(knownHosts, `${inventory.hosts.rpi1.address} ${hostKey}\n`);
    try {
        return inNamespace("op", ["ssh", "-F", join(repo, ".lab", "ssh", "config"), "-o", `UserKnownHostsFile=${knownHosts}`, "rpi1", `sudo -n sh -c ${shellQuote(script)}`]);
    } finally {
        rmSync(knownHosts, { force: true });
    }
}

describe("SSH host keys", () => {
    beforeAll(() => {
        ensureStack({});
    });
    // Back to the lab's pinned keys, whatever a test left.
    afterAll(() => {
        ensureStack({});
    });

    it("records rpi1's key at the first `pulumi up` on trust on first use, says so, and records it only once", () => {
        writeStack(trustOnFirstUse);
        const output = up();
        expect(output).toContain("rpi1: SSH host key not pinned (ssh.trustOnFirstUse)");
        expect(recordedKey()).toBe(onHostOk("rpi1", keyOfHost).trim());
        // A later run has nothing to do: the key is neither scanned nor trusted again.
        expect(changedSteps(trustOnFirstUse)).toEqual([]);
    });

    it("fails the next `pulumi up` naming rpi1 once its key changed, and lands nothing on it", () => {
        ensureStack(trustOnFirstUse);
        const template = onHostOk("rpi1", `cat ${wireguardTemplatePath}`);
        // Another machine answering at rpi1's address: a new host key, in one session with the old one.
        const otherKey = onHostOk(
            "rpi1",
            [
                `cp -p /etc/ssh/ssh_host_ed25519_key ${saved}`,
                `cp -p /etc/ssh/ssh_host_ed25519_key.pub ${saved}.pub`,
                "rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub",
                "ssh-keygen -q -t ed25519 -N '' -C other -f /etc/ssh/ssh_host_ed25519_key",
                "systemctl restart ssh",
                keyOfHost,
            ].join("\n"),
        ).trim();
        try {
            // A change that rewrites rpi1's wg0 template: the interface of its default route, named.
            writeStack({ ...trustOnFirstUse, rpi1LanInterface: "eth0" });
            const failed = failingUp();
            expect(failed.status).not.toBe(0);
            expect(failed.stdout + failed.stderr).toMatch(/\(rpi1-[a-z0-9-]+\):\s+error: [^\n]*host key mismatch/);
            const after = onRpi1With(otherKey, `cat ${wireguardTemplatePath}`);
            expect(after.status).toBe(0);
            expect(after.stdout).toBe(template);
        } finally {
            const restored = onRpi1With(otherKey, [`mv -f ${saved} /etc/ssh/ssh_host_ed25519_key`, `mv -f ${saved}.pub /etc/ssh/ssh_host_ed25519_key.pub`, "systemctl restart ssh"].join("\n"));
            expect(restored.status).toBe(0);
        }
        // rpi1's own key again: the recorded one, and the stack converges with it.
        expect(onHostOk("rpi1", keyOfHost).trim()).toBe(recordedKey());
        up();
    });
});
