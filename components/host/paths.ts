// Where wg-relay puts things on a host. One place, so install and removal agree.
export const wireguardInterface = "wg0";
export const wireguardDir = "/etc/wireguard";
/** What wg-quick reads: written on the host by wg-apply from the template, with the keys filled in. */
export const wireguardConfPath = `${wireguardDir}/${wireguardInterface}.conf`;
export const wireguardKeyPath = `${wireguardDir}/${wireguardInterface}.key`;
const relayPresharedKeyDir = `${wireguardDir}/psk`;
/** The relay keeps one preshared key per peer; a gateway or client has one, shared with the relay. */
export const relayPresharedKeyPath = (peer: string) => `${relayPresharedKeyDir}/${peer}.psk`;
export const peerPresharedKeyPath = `${wireguardDir}/${wireguardInterface}.psk`;
export const wgQuickUnit = `wg-quick@${wireguardInterface}.service`;

export const wstunnelBinaryPath = "/usr/local/bin/wstunnel";
export const configDir = "/etc/wg-relay";
export const stateDir = "/var/lib/wg-relay";
export const libDir = "/usr/local/lib/wg-relay";
/** The wg-quick conf the program renders, without keys (see wireguard/render.ts). */
export const wireguardTemplatePath = `${configDir}/${wireguardInterface}.template.conf`;
/** "NAME KEY" per peer of this host's interface, for the template's `PublicKey = <public key of NAME>` lines. */
export const publicKeysPath = `${configDir}/${wireguardInterface}.public-keys`;
/** What wg-apply last applied, and its lock. */
export const appliedConfPath = `${stateDir}/${wireguardInterface}.applied.conf`;
export const wgApplyLockPath = `${appliedConfPath}.lock`;
export const wgApplyScriptPath = `${libDir}/wg-apply`;
export const wstunnelInstallScriptPath = `${libDir}/wstunnel-install`;
export const wstunnelReleaseMarkerPath = `${stateDir}/wstunnel-release.sha256`;
/** The relay's own chains (access/rules.ts), loaded with iptables-restore. */
export const accessRulesPath = `${configDir}/access.rules`;
/** Their IPv6 half, loaded with ip6tables-restore. */
export const access6RulesPath = `${configDir}/access6.rules`;
export const sysctlPath = "/etc/sysctl.d/90-wg-relay.conf";
export const sysctlApplyScriptPath = `${libDir}/sysctl-apply`;
export const unitStaysUpScriptPath = `${libDir}/unit-stays-up`;
/** With the user's own certificate (wstunnel.tls): restarts the relay's wstunnel server when the files are renewed. */
export const tlsRenewalScriptPath = `${libDir}/tls-renewal`;
/** The optional settings of the sysctl file that the host could not take, one "KEY = VALUE: why" line each. */
export const sysctlNotSetPath = `${stateDir}/sysctl-not-set`;
/** The value each setting had before wg-relay changed it, put back when the sysctl step is destroyed. */
export const sysctlBeforePath = `${stateDir}/sysctl-before`;
/** Folders wg-relay creates, with everything under them: removing the last file in one removes the folder too. */
export const ownedDirs = [configDir, stateDir, libDir, relayPresharedKeyDir];

export const wstunnelServerUnit = "wg-relay-wstunnel-server.service";
export const wstunnelClientUnit = "wg-relay-wstunnel-client.service";
/** Every wstunnel client unit wstunnelClientFiles names, as a systemctl pattern. */
export const wstunnelClientUnitPattern = "wg-relay-wstunnel-client*.service";
/** The relay's server and every wstunnel client unit (one per relay), for systemctl. */
export const wstunnelUnitPattern = "wg-relay-wstunnel-*.service";
export const heartbeatUnit = "wg-relay-heartbeat.service";
/** With wstunnel.tls: the path unit that watches the user's certificate files, and the service it runs (tls-renewal). */
export const tlsRenewalPathUnit = "wg-relay-tls-renewal.path";
export const tlsRenewalServiceUnit = "wg-relay-tls-renewal.service";
/** Where systemd puts a unit's credentials (LoadCredential=) while it runs: systemd's $CREDENTIALS_DIRECTORY. */
export const credentialsDir = (unit: string) => `/run/credentials/${unit}`;
/** A roaming client's relay failover (several relays), and the script its unit runs every few seconds. */
export const failoverUnit = "wg-relay-failover.service";
export const wgFailoverScriptPath = `${libDir}/wg-failover`;
/** A client's `transport: auto`: the unit that moves its relay's endpoint between UDP and wstunnel, and its script. */
export const autoTransportUnit = "wg-relay-transport.service";
export const wgTransportScriptPath = `${libDir}/wg-transport`;
/**
 * A gateway's or wstunnel client's fallback to the relay settings `pulumi up` staged (failover/stagedSwitch.ts): the
 * unit, its script, where the staged files wait, and where it keeps the ones it replaced until the staged ones work.
 */
export const stagedSwitchUnit = "wg-relay-staged-switch.service";
export const stagedSwitchScriptPath = `${libDir}/staged-switch`;
export const stagedDir = `${configDir}/staged`;
export const stagedPreviousDir = `${stateDir}/staged-previous`;
export const systemdUnitPath = (unit: string) => `/etc/systemd/system/${unit}`;
export const wstunnelRestrictionsPath = `${configDir}/wstunnel-restrictions.yaml`;
export const wstunnelClientEnvPath = `${configDir}/wstunnel-client.env`;

/** A gateway's or client's wstunnel client towards one relay: the first relay's keeps the names of a single-relay stack. */
export interface WstunnelClientFiles {
    unit: string;
    environmentFile: string;
    /** Appended to the step names of this client's unit and environment file. */
    stepSuffix: string;
}

export function wstunnelClientFiles(relay: { name: string; index: number }): WstunnelClientFiles {
    return relay.index === 0
        ? { unit: wstunnelClientUnit, environmentFile: wstunnelClientEnvPath, stepSuffix: "" }
        : { unit: `wg-relay-wstunnel-client-${relay.name}.service`, environmentFile: `${configDir}/wstunnel-client-${relay.name}.env`, stepSuffix: `-${relay.name}` };
}
export const serverCertificatePath = `${configDir}/tls/server.crt`;
export const serverPrivateKeyPath = `${configDir}/tls/server.key`;
/** With mutual TLS: on the relay, the CA whose certificates it accepts; on a gateway or client, its own certificate and key in one file. */
export const clientCaPath = `${configDir}/tls/client-ca.crt`;
export const clientCertificatePath = `${configDir}/tls/client.pem`;
/**
 * On a gateway or client, the stack's CA: wstunnel's only trusted root (SSL_CERT_FILE in its unit), in no other
 * program's trust store.
 */
export const relayCaPath = `${configDir}/tls/relay-ca.crt`;
/** Where earlier versions put the stack's CA, in the system's trust store: removed from hosts that still have it. */
export const legacyTrustedCaPath = (stack: string) => `/usr/local/share/ca-certificates/wg-relay-${stack}.crt`;
