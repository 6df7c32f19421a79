// Tests for the LAB-ONLY tls stand-in (never used for a real deployment).
package tlsprov_test

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/emptypb"

	"wg-relay.lab/providers/internal/labtest"
	"wg-relay.lab/providers/internal/tlsprov"
)

const (
	keyT  = "tls:index/privateKey:PrivateKey"
	selfT = "tls:index/selfSignedCert:SelfSignedCert"
	csrT  = "tls:index/certRequest:CertRequest"
	lscT  = "tls:index/locallySignedCert:LocallySignedCert"
)

func client(t *testing.T) *labtest.Client { return labtest.Serve(t, tlsprov.New(), "tls") }

func str(s string) resource.PropertyValue { return resource.NewStringProperty(s) }
func strs(ss ...string) resource.PropertyValue {
	var arr []resource.PropertyValue
	for _, s := range ss {
		arr = append(arr, str(s))
	}
	return resource.NewArrayProperty(arr)
}
func secret(s string) resource.PropertyValue { return resource.MakeSecret(str(s)) }

func TestPluginInfo(t *testing.T) {
	info, err := client(t).RPC.GetPluginInfo(context.Background(), &emptypb.Empty{})
	if err != nil || info.GetVersion() != "5.6.1" {
		t.Fatalf("GetPluginInfo = %v, %v; want 5.6.1", info, err)
	}
}

func TestPrivateKey(t *testing.T) {
	c := client(t)
	checked := c.MustCheck(keyT, resource.PropertyMap{"algorithm": str("ECDSA")})
	if checked["ecdsaCurve"].StringValue() != "P224" || checked["rsaBits"].NumberValue() != 2048 {
		t.Errorf("defaults not filled as the real provider does: %v", checked)
	}
	for _, tc := range []struct {
		in      resource.PropertyMap
		pemType string
		sshType string
	}{
		{resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P256")}, "EC PRIVATE KEY", "ecdsa-sha2-nistp256"},
		{resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P384")}, "EC PRIVATE KEY", "ecdsa-sha2-nistp384"},
		{resource.PropertyMap{"algorithm": str("ED25519")}, "PRIVATE KEY", "ssh-ed25519"},
		{resource.PropertyMap{"algorithm": str("RSA"), "rsaBits": resource.NewNumberProperty(2048)}, "RSA PRIVATE KEY", "ssh-rsa"},
	} {
		id, st := c.Create(keyT, tc.in, false)
		block, _ := pem.Decode([]byte(labtest.Str(t, st, "privateKeyPem")))
		if block == nil || block.Type != tc.pemType {
			t.Fatalf("%v: privateKeyPem type %v, want %s", tc.in, block, tc.pemType)
		}
		p8, _ := pem.Decode([]byte(labtest.Str(t, st, "privateKeyPemPkcs8")))
		if p8 == nil || p8.Type != "PRIVATE KEY" {
			t.Fatalf("privateKeyPemPkcs8: %v", p8)
		}
		if _, err := x509.ParsePKCS8PrivateKey(p8.Bytes); err != nil {
			t.Fatal(err)
		}
		pub, _ := pem.Decode([]byte(labtest.Str(t, st, "publicKeyPem")))
		if pub == nil || pub.Type != "PUBLIC KEY" {
			t.Fatalf("publicKeyPem: %v", pub)
		}
		if sum := sha1.Sum(pub.Bytes); id != hex.EncodeToString(sum[:]) {
			t.Errorf("id %q is not the SHA-1 of the public key", id)
		}
		sshPub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(labtest.Str(t, st, "publicKeyOpenssh")))
		if err != nil || sshPub.Type() != tc.sshType {
			t.Fatalf("publicKeyOpenssh: %v %v", sshPub, err)
		}
		if _, err := ssh.ParseRawPrivateKey([]byte(labtest.Str(t, st, "privateKeyOpenssh"))); err != nil {
			t.Errorf("privateKeyOpenssh: %v", err)
		}
		if labtest.Str(t, st, "publicKeyFingerprintSha256") != ssh.FingerprintSHA256(sshPub) ||
			labtest.Str(t, st, "publicKeyFingerprintMd5") != ssh.FingerprintLegacyMD5(sshPub) {
			t.Error("fingerprints do not match the public key")
		}
		for _, k := range []string{"privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"} {
			if !labtest.IsSecret(st, k) {
				t.Errorf("%s must be a secret", k)
			}
		}
		if labtest.IsSecret(st, "publicKeyPem") {
			t.Error("publicKeyPem must not be a secret")
		}
	}
	// P224: no OpenSSH form, as in the real provider.
	_, st := c.Create(keyT, resource.PropertyMap{"algorithm": str("ECDSA")}, false)
	if labtest.Str(t, st, "publicKeyOpenssh") != "" || labtest.Str(t, st, "privateKeyOpenssh") != "" {
		t.Error("P224 must leave the OpenSSH fields empty")
	}
	if _, f := c.Check(keyT, resource.PropertyMap{"algorithm": str("DSA")}); len(f) != 1 {
		t.Errorf("bad algorithm: failures %v", f)
	}
	// Preview: outputs unknown.
	if _, st := c.Create(keyT, resource.PropertyMap{"algorithm": str("ED25519")}, true); !labtest.IsUnknown(st, "privateKeyPem") {
		t.Errorf("preview: %v", st)
	}
	// Changing the curve replaces.
	id, st := c.Create(keyT, resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P256")}, false)
	d := c.Diff(keyT, id, st, resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P384")})
	if strings.Join(d.GetReplaces(), ",") != "ecdsaCurve" {
		t.Errorf("curve change: diff %v", d)
	}
	if d := c.Diff(keyT, id, st, resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P256")}); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("same inputs: diff %v", d)
	}
}

// pki builds CA key → self-signed CA → leaf key → CSR → locally signed leaf, as the
// wg-relay program does, passing private keys as secrets the way the SDK does.
type pki struct {
	caKey, caCert, leafKey, leafCert string
	ca, leaf                         resource.PropertyMap
	caID, leafID                     string
}

func buildPKI(t *testing.T, c *labtest.Client) pki {
	var p pki
	_, caKey := c.Create(keyT, resource.PropertyMap{"algorithm": str("ECDSA"), "ecdsaCurve": str("P256")}, false)
	p.caKey = labtest.Str(t, caKey, "privateKeyPem")
	p.caID, p.ca = c.Create(selfT, resource.PropertyMap{
		"privateKeyPem":       secret(p.caKey),
		"subject":             resource.NewObjectProperty(resource.PropertyMap{"commonName": str("wg-relay lab CA"), "organization": str("wg-relay")}),
		"validityPeriodHours": resource.NewNumberProperty(87600),
		"earlyRenewalHours":   resource.NewNumberProperty(720),
		"isCaCertificate":     resource.NewBoolProperty(true),
		"allowedUses":         strs("cert_signing", "crl_signing", "digital_signature"),
	}, false)
	p.caCert = labtest.Str(t, p.ca, "certPem")

	_, leafKey := c.Create(keyT, resource.PropertyMap{"algorithm": str("ED25519")}, false)
	p.leafKey = labtest.Str(t, leafKey, "privateKeyPem")
	_, csr := c.Create(csrT, resource.PropertyMap{
		"privateKeyPem": secret(p.leafKey),
		"subject":       resource.NewObjectProperty(resource.PropertyMap{"commonName": str("relay.example.test")}),
		"dnsNames":      strs("relay.example.test", "relay"),
		"ipAddresses":   strs("198.51.100.10"),
	}, false)
	if labtest.Str(t, csr, "keyAlgorithm") != "ED25519" || !labtest.IsSecret(csr, "privateKeyPem") {
		t.Errorf("CertRequest state: %v", csr)
	}
	p.leafID, p.leaf = c.Create(lscT, resource.PropertyMap{
		"certRequestPem":      str(labtest.Str(t, csr, "certRequestPem")),
		"caPrivateKeyPem":     secret(p.caKey),
		"caCertPem":           str(p.caCert),
		"validityPeriodHours": resource.NewNumberProperty(8760),
		"earlyRenewalHours":   resource.NewNumberProperty(720),
		"allowedUses":         strs("digital_signature", "key_encipherment", "server_auth"),
	}, false)
	p.leafCert = labtest.Str(t, p.leaf, "certPem")
	return p
}

func parseCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", s)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCertificateChain(t *testing.T) {
	c := client(t)
	p := buildPKI(t, c)

	ca := parseCert(t, p.caCert)
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.KeyUsage&x509.KeyUsageCRLSign == 0 || ca.Subject.CommonName != "wg-relay lab CA" {
		t.Errorf("CA cert: IsCA %v usage %v subject %v", ca.IsCA, ca.KeyUsage, ca.Subject)
	}
	if p.caID != ca.SerialNumber.String() || len(ca.SubjectKeyId) == 0 {
		t.Errorf("CA id %q serial %v ski %x", p.caID, ca.SerialNumber, ca.SubjectKeyId)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if labtest.Str(t, p.ca, "keyAlgorithm") != "ECDSA" || !labtest.IsSecret(p.ca, "privateKeyPem") {
		t.Errorf("SelfSignedCert state: keyAlgorithm %q, privateKeyPem secret %v", labtest.Str(t, p.ca, "keyAlgorithm"), labtest.IsSecret(p.ca, "privateKeyPem"))
	}
	if p.ca["readyForRenewal"].BoolValue() {
		t.Error("a new CA must not be ready for renewal")
	}

	leaf := parseCert(t, p.leafCert)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range []string{"relay.example.test", "relay", "198.51.100.10"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("leaf does not verify for %s against the CA: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("leaf must not be valid for client_auth")
	}
	if leaf.IsCA || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("198.51.100.10")) ||
		strings.Join(leaf.DNSNames, ",") != "relay.example.test,relay" || leaf.Subject.CommonName != "relay.example.test" {
		t.Errorf("leaf: IsCA %v IPs %v DNS %v subject %v", leaf.IsCA, leaf.IPAddresses, leaf.DNSNames, leaf.Subject)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("leaf key usage %v", leaf.KeyUsage)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 8760*time.Hour {
		t.Errorf("leaf validity %v", got)
	}
	end, err := time.Parse(time.RFC3339, labtest.Str(t, p.leaf, "validityEndTime"))
	if err != nil || !end.Truncate(time.Second).Equal(leaf.NotAfter) {
		t.Errorf("validityEndTime %v vs NotAfter %v (%v)", end, leaf.NotAfter, err)
	}
	if labtest.Str(t, p.leaf, "caKeyAlgorithm") != "ECDSA" || !labtest.IsSecret(p.leaf, "caPrivateKeyPem") {
		t.Error("LocallySignedCert: caKeyAlgorithm or secret caPrivateKeyPem wrong")
	}

	// And it works for a real TLS handshake (as wstunnel's server certificate).
	pair, err := tls.X509KeyPair([]byte(p.leafCert), []byte(p.leafKey))
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	srvErr := make(chan error, 1)
	go func() {
		s := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{pair}})
		srvErr <- s.Handshake()
		s.Close()
	}()
	cl := tls.Client(b, &tls.Config{RootCAs: pool, ServerName: "relay.example.test"})
	if err := cl.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	cl.Close()
	<-srvErr
}

func TestCertificateDiffAndRenewal(t *testing.T) {
	c := client(t)
	p := buildPKI(t, c)
	in := resource.PropertyMap{
		"certRequestPem":      str(p.leaf["certRequestPem"].StringValue()),
		"caPrivateKeyPem":     secret(p.caKey),
		"caCertPem":           str(p.caCert),
		"validityPeriodHours": resource.NewNumberProperty(8760),
		"earlyRenewalHours":   resource.NewNumberProperty(720),
		"allowedUses":         strs("digital_signature", "key_encipherment", "server_auth"),
	}
	if d := c.Diff(lscT, p.leafID, p.leaf, in); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("same inputs: diff %v", d)
	}
	// earlyRenewalHours alone updates in place (as in the real provider).
	upd := in.Copy()
	upd["earlyRenewalHours"] = resource.NewNumberProperty(48)
	d := c.Diff(lscT, p.leafID, p.leaf, upd)
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(d.GetReplaces()) != 0 {
		t.Errorf("earlyRenewalHours: diff %v", d)
	}
	ur, err := c.RPC.Update(context.Background(), &pulumirpc.UpdateRequest{
		Id: p.leafID, Urn: c.URN(lscT, "r"), Type: lscT, Olds: c.Marshal(p.leaf), News: c.Marshal(c.MustCheck(lscT, upd)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Unmarshal(ur.GetProperties()); st["earlyRenewalHours"].NumberValue() != 48 || labtest.Str(t, st, "certPem") != p.leafCert || !labtest.IsSecret(st, "caPrivateKeyPem") {
		t.Errorf("Update state: %v", st)
	}
	// Any other change replaces.
	rep := in.Copy()
	rep["allowedUses"] = strs("server_auth")
	if d := c.Diff(lscT, p.leafID, p.leaf, rep); strings.Join(d.GetReplaces(), ",") != "allowedUses" {
		t.Errorf("allowedUses: diff %v", d)
	}
	// Preview with a CA that will be recreated: unknown input -> replace, unknown outputs.
	unk := in.Copy()
	unk["caCertPem"] = labtest.Computed()
	if d := c.Diff(lscT, p.leafID, p.leaf, unk); strings.Join(d.GetReplaces(), ",") != "caCertPem" {
		t.Errorf("unknown caCertPem: diff %v", d)
	}
	if _, st := c.Create(lscT, unk, true); !labtest.IsUnknown(st, "certPem") || !labtest.IsUnknown(st, "validityEndTime") {
		t.Errorf("preview create: %v", st)
	}

	// Past validityEnd - earlyRenewalHours: Read says readyForRenewal, Diff replaces.
	defer func(f func() time.Time) { tlsprov.Now = f }(tlsprov.Now)
	tlsprov.Now = func() time.Time { return time.Now().Add(8760*time.Hour - 700*time.Hour) }
	r, err := c.RPC.Read(context.Background(), &pulumirpc.ReadRequest{Id: p.leafID, Urn: c.URN(lscT, "r"), Type: lscT, Properties: c.Marshal(p.leaf)})
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Unmarshal(r.GetProperties()); !st["readyForRenewal"].BoolValue() {
		t.Error("Read: readyForRenewal should be true within earlyRenewalHours of the end")
	}
	if d := c.Diff(lscT, p.leafID, p.leaf, in); strings.Join(d.GetReplaces(), ",") != "readyForRenewal" {
		t.Errorf("due for renewal: diff %v", d)
	}
}

func TestCertificateCheckFailures(t *testing.T) {
	c := client(t)
	if _, f := c.Check(selfT, resource.PropertyMap{"privateKeyPem": str("x")}); len(f) != 2 {
		t.Errorf("missing allowedUses and validityPeriodHours: failures %v", f)
	}
	if _, f := c.Check(selfT, resource.PropertyMap{
		"privateKeyPem": str("x"), "validityPeriodHours": resource.NewNumberProperty(1), "allowedUses": strs("server_auth", "world_domination"),
	}); len(f) != 1 {
		t.Errorf("unknown allowed use: failures %v", f)
	}
	if _, f := c.Check(csrT, resource.PropertyMap{"privateKeyPem": str("x"), "ipAddresses": strs("not-an-ip")}); len(f) != 1 {
		t.Errorf("bad IP: failures %v", f)
	}
	// A CA certificate needs a subject (as in the real provider).
	_, key := c.Create(keyT, resource.PropertyMap{"algorithm": str("ED25519")}, false)
	in := c.MustCheck(selfT, resource.PropertyMap{
		"privateKeyPem": secret(labtest.Str(t, key, "privateKeyPem")), "validityPeriodHours": resource.NewNumberProperty(1),
		"allowedUses": strs("cert_signing"), "isCaCertificate": resource.NewBoolProperty(true),
	})
	if _, err := c.RPC.Create(context.Background(), &pulumirpc.CreateRequest{Urn: c.URN(selfT, "r"), Type: selfT, Properties: c.Marshal(in)}); err == nil {
		t.Error("a CA without a subject must fail")
	}
}
