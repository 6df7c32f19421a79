// The stack config: schema.ts defines it, rules.ts checks what spans several keys, resolve.ts derives the model the
// components take, parse.ts reads the stack's keys and reports what is wrong.
export { configNamespace, wstunnelArchitectureOf, wstunnelArchitectures } from "./schema";
export type { ExistingKeys, SshSettings, StackConfigInput, WstunnelArchitecture } from "./schema";
export { githubReleaseBaseUrl, isIpv6Network, relayClients, relayPeer } from "./resolve";
export type { AccessGrant, ClientAccess, ClientSettings, GatewaySettings, Network, RelayPeerAddresses, RelaySettings, SiteLink, TunnelNetwork, WstunnelBinarySource, WstunnelSettings } from "./resolve";
export { ConfigError, parseStackConfig, sshPrivateKeyKey, stackConfigSchema, stackConfigValues } from "./parse";
