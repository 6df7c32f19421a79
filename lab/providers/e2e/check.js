// LAB-ONLY: checks the outputs of the e2e program (stand-in plugins; never a real deployment).
"use strict";
const { X509Certificate } = require("crypto");
const o = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
const fail = (m) => { console.error("check failed: " + m); process.exit(1); };
if (Buffer.from(o.pskBase64, "base64").length !== 32 || o.pskLen !== 32) fail("RandomBytes length 32");
if (!/^[A-Za-z0-9]{20}$/.test(o.password)) fail("RandomPassword 20 alphanumerics: " + o.password);
if (!/^wgr-[0-9a-f]{8}$/.test(o.rid)) fail("RandomId hex: " + o.rid);
const ca = new X509Certificate(o.caCert), leaf = new X509Certificate(o.cert);
if (!ca.ca || !ca.verify(ca.publicKey)) fail("CA is not a self-signed CA");
if (!leaf.verify(ca.publicKey) || !leaf.checkIssued(ca)) fail("leaf not signed by the CA");
if (!leaf.checkHost("relay.example.test") || !leaf.checkIP("198.51.100.10")) fail("leaf SANs");
if (!(leaf.keyUsage || []).includes("1.3.6.1.5.5.7.3.1")) fail("leaf lacks server_auth");
if (!/^ssh-ed25519 /.test(o.sshPub) || !/BEGIN PRIVATE KEY/.test(o.key)) fail("ED25519 key formats");
console.log("outputs ok: psk " + o.pskBase64.length + " b64 chars, CA " + ca.subject.replace(/\n/g, ",") + ", leaf valid to " + leaf.validTo);
