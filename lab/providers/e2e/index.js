"use strict";
// LAB-ONLY: exercises the stand-in random/tls provider plugins with the real Pulumi CLI (never a real deployment).
const pulumi = require("@pulumi/pulumi");
const random = require("@pulumi/random");
const tls = require("@pulumi/tls");

const cfg = new pulumi.Config();
const hosts = cfg.get("hosts") || "relay";

const psk = new random.RandomBytes("psk", { length: 32, keepers: { hosts } });
const pw = new random.RandomPassword("pw", { length: 20, special: false });
const rid = new random.RandomId("rid", { byteLength: 4, prefix: "wgr-" });

const caKey = new tls.PrivateKey("ca-key", { algorithm: "ECDSA", ecdsaCurve: cfg.get("curve") || "P256" });
const ca = new tls.SelfSignedCert("ca", {
  privateKeyPem: caKey.privateKeyPem,
  subject: { commonName: "wg-relay lab CA", organization: "wg-relay" },
  validityPeriodHours: 87600,
  earlyRenewalHours: 720,
  isCaCertificate: true,
  allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
});
const key = new tls.PrivateKey("relay-key", { algorithm: "ED25519" });
const csr = new tls.CertRequest("relay-csr", {
  privateKeyPem: key.privateKeyPem,
  subject: { commonName: "relay.example.test" },
  dnsNames: ["relay.example.test"],
  ipAddresses: ["198.51.100.10"],
});
const cert = new tls.LocallySignedCert("relay-cert", {
  certRequestPem: csr.certRequestPem,
  caPrivateKeyPem: caKey.privateKeyPem,
  caCertPem: ca.certPem,
  validityPeriodHours: 8760,
  earlyRenewalHours: 720,
  allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
});

exports.pskBase64 = psk.base64;
exports.pskLen = psk.length;
exports.password = pw.result;
exports.rid = rid.hex;
exports.caCert = ca.certPem;
exports.cert = cert.certPem;
exports.key = key.privateKeyPem;
exports.sshPub = key.publicKeyOpenssh;
exports.validityEnd = cert.validityEndTime;
