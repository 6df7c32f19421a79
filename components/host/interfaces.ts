// Where the interface names in a host's firewall rules and sysctl file come from: the configured name, or, when the
// config leaves it out, the interface of the host's default route, found on the host when the step runs. Rendered
// files then name the placeholder below (so a preview reads as the rule it is); wg-apply writes the found name into
// wg0.conf, the sysctl step into the sysctl file, and the doctor puts it into its rule checks.
import { shellQuote } from "./shell";
import { embeddedHostScript, embeddedHostScriptFunction } from "./scripts";

/** Stands for the default route's interface in templates, in the style of wg-quick's `%i`. */
export const defaultRouteInterface = "%default-route-dev";

/**
 * Prints the interface of the host's default route (IPv4's, else IPv6's), or nothing. wg-apply has the same in bash
 * (components/host-scripts/wg-apply.sh, default_route_dev).
 */
const defaultRouteInterfaceCommand = `{ ip -4 -o route show default; ip -6 -o route show default; } 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }'`;

/** Prints the host's interfaces, space-separated. */
const hostInterfacesCommand = "cd /sys/class/net && echo *";

/** A firewall rule's or a sysctl file's interface setting, with the config key it comes from. */
export interface InterfaceSetting {
    /** The config key, e.g. wg-relay:relay.publicInterface. */
    key: string;
    /** The configured name, or defaultRouteInterface. */
    name: string;
}

/**
 * The functions default_route_dev and host_interfaces, for the scripts carried in a command that ask what the host's
 * interfaces are (interface-check.sh, doctor-probe.sh).
 */
export const hostInterfaceFunctions = [`default_route_dev() { ${defaultRouteInterfaceCommand}; }`, `host_interfaces() { ${hostInterfacesCommand}; }`].join("\n");

/**
 * The step that runs before any other on a host (interface-check.sh, carried in the command): a configured name
 * must be an interface of the host, and without one the host must have a default route. It changes nothing, so a
 * wrong name stops the run before anything changed.
 */
export function interfaceCheckScript(settings: InterfaceSetting[]): string {
    const args = settings.flatMap((setting) => (setting.name === defaultRouteInterface ? ["--default-route", setting.key] : ["--named", setting.key, setting.name]));
    return [embeddedHostScript("interface-check"), hostInterfaceFunctions, [embeddedHostScriptFunction("interface-check"), ...args].map(shellQuote).join(" ")].join("\n");
}

/**
 * A filter (stdin to stdout) that writes the default route's interface for the placeholder into a file the host reads
 * at boot (what it names, for the error); fails when the host has no default route. `spelling` turns the name into
 * the file's own: a sysctl key writes a VLAN such as eth0.10 as eth0/10.
 */
function defaultRouteInterfaceFilter(what: string, spelling = ""): string {
    return [
        `{ dev=$(${defaultRouteInterfaceCommand}${spelling})`,
        `[ -n "$dev" ] || { echo "this host has no default route, whose interface ${what} names" >&2; exit 1; }`,
        `sed "s|${defaultRouteInterface}|$dev|g"; }`,
    ].join("; ");
}

export const sysctlDefaultRouteInterfaceFilter = defaultRouteInterfaceFilter("the sysctl file", " | tr . /");

/** For the relay's chain files, which iptables-restore loads at each step and at every wg0 start. */
export const rulesDefaultRouteInterfaceFilter = defaultRouteInterfaceFilter("the relay's chain files");
