// A roaming client's bundle: the secret stack output a user turns into files (`npm run client-files`).
import type { ClientSettings } from "./config";
import type { PlatformFile } from "./wstunnel/clientPlatforms";

export type ClientPlatform = ClientSettings["platform"];

/** Everything a user needs to connect one client by hand. A secret: it holds the private keys and the path prefix. */
export interface ClientBundle {
    name: string;
    /** clients[].platform: which files run wstunnel beside the conf. */
    platform: ClientPlatform;
    /** wg-quick conf with the keys inline, for `wg-quick up` or a WireGuard app. */
    wireguardConf: string;
    /** The wstunnel client to run beside it (the prefix comes from the environment, as in the unit); absent with transport udp. */
    wstunnelCommand?: string;
    /**
     * macOS, Windows and Android with wstunnel: what runs each of its wstunnel clients (the first relay's, then
     * each further relay's), in place of the Linux unit and environment file.
     */
    platformFiles?: PlatformFile[];
    /** systemd unit and its environment file for Linux clients. */
    wstunnelUnit?: string;
    wstunnelEnvironment?: string;
    /**
     * The stack's CA, for wstunnel alone (SSL_CERT_FILE), never the system's trust store: the Linux unit and command
     * read it at /etc/wg-relay/tls/relay-ca.crt. Absent when the relay has a publicly trusted certificate.
     */
    caCertificate?: string;
    /**
     * With mutual TLS: the client's certificate and its key in one PEM file, which the wstunnel command and unit
     * read at /etc/wg-relay/tls/client.pem. A secret (its common name is the path prefix).
     */
    clientCertificate?: string;
    /**
     * On plain UDP with relay.udpPorts: the conf again for each further port (every relay that opens it is reached
     * there), for networks that block WireGuard's own port but pass that one.
     */
    udpPortConfs?: UdpPortConf[];
    /**
     * With several relays, one entry per relay: the conf with the client's routes on that relay (a device without
     * the failover unit, such as a phone, imports one per relay and switches by hand), and for every relay but the
     * first (whose are above) its wstunnel client, which listens on that relay's local port.
     */
    relays?: RelayFiles[];
}

export interface UdpPortConf {
    port: number;
    wireguardConf: string;
}

export interface RelayFiles {
    relay: string;
    wireguardConf: string;
    wstunnelCommand?: string;
    wstunnelUnit?: string;
    wstunnelEnvironment?: string;
}
