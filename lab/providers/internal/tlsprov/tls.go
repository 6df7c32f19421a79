// LAB-ONLY STAND-IN for the real pulumi-tls provider (@pulumi/tls 5.6.1): used only
// because the real provider cannot be built in the wg-relay lab; never used for a
// real deployment.
//
// Package tlsprov implements tls:index/privateKey:PrivateKey,
// tls:index/selfSignedCert:SelfSignedCert, tls:index/certRequest:CertRequest and
// tls:index/locallySignedCert:LocallySignedCert with the real provider's type
// tokens, property names, defaults, PEM formats and secret outputs.
package tlsprov

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"

	"golang.org/x/crypto/ssh"

	"wg-relay.lab/providers/internal/labprov"
)

// Version is the real provider version this stand-in answers to.
const Version = "5.6.1"

// Now is the clock (tests may move it).
var Now = time.Now

// New returns the stand-in provider.
func New() *labprov.Provider {
	return &labprov.Provider{
		Name:      "tls",
		Version:   Version,
		Upstream:  "github.com/pulumi/pulumi-tls " + Version,
		Resources: []*labprov.Resource{privateKey(), selfSignedCert(), certRequest(), locallySignedCert()},
	}
}

func hashForState(b []byte) string {
	h := sha1.Sum(b)
	return hex.EncodeToString(h[:])
}

// ---------------------------------------------------------------- PrivateKey

var curves = map[string]elliptic.Curve{
	"P224": elliptic.P224(), "P256": elliptic.P256(), "P384": elliptic.P384(), "P521": elliptic.P521(),
}

func oneOf(v labprov.Values, k string, allowed ...string) []labprov.Failure {
	if !v.Has(k) {
		return nil
	}
	for _, a := range allowed {
		if v.Str(k) == a {
			return nil
		}
	}
	return []labprov.Failure{{Property: k, Reason: fmt.Sprintf("%s must be one of %v, got %q", k, allowed, v.Str(k))}}
}

func privateKey() *labprov.Resource {
	return &labprov.Resource{
		Token: "tls:index/privateKey:PrivateKey",
		Desc:  "Creates a PEM (and OpenSSH) formatted private key.",
		Inputs: []labprov.Prop{
			{Name: "algorithm", Type: labprov.String, Required: true, Desc: "RSA, ECDSA or ED25519."},
			{Name: "ecdsaCurve", Type: labprov.String, Default: "P224", Desc: "P224, P256, P384 or P521."},
			{Name: "rsaBits", Type: labprov.Integer, Default: 2048},
		},
		Outputs: []labprov.Prop{
			{Name: "privateKeyOpenssh", Type: labprov.String, Secret: true},
			{Name: "privateKeyPem", Type: labprov.String, Secret: true},
			{Name: "privateKeyPemPkcs8", Type: labprov.String, Secret: true},
			{Name: "publicKeyFingerprintMd5", Type: labprov.String},
			{Name: "publicKeyFingerprintSha256", Type: labprov.String},
			{Name: "publicKeyOpenssh", Type: labprov.String},
			{Name: "publicKeyPem", Type: labprov.String},
		},
		Validate: func(v labprov.Values) []labprov.Failure {
			f := oneOf(v, "algorithm", "RSA", "ECDSA", "ED25519")
			f = append(f, oneOf(v, "ecdsaCurve", "P224", "P256", "P384", "P521")...)
			if v.Has("rsaBits") && v.Int("rsaBits", 0) < 1024 {
				f = append(f, labprov.Failure{Property: "rsaBits", Reason: "rsaBits is too small for this stand-in (< 1024)"})
			}
			return f
		},
		Create: createPrivateKey,
	}
}

func createPrivateKey(v labprov.Values) (string, map[string]any, error) {
	var key crypto.Signer
	var block *pem.Block
	switch v.Str("algorithm") {
	case "RSA":
		k, err := rsa.GenerateKey(rand.Reader, v.Int("rsaBits", 2048))
		if err != nil {
			return "", nil, err
		}
		key, block = k, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	case "ECDSA":
		k, err := ecdsa.GenerateKey(curves[v.Str("ecdsaCurve")], rand.Reader)
		if err != nil {
			return "", nil, err
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return "", nil, err
		}
		key, block = k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	case "ED25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return "", nil, err
		}
		key, block = k, &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	default:
		return "", nil, fmt.Errorf("unsupported algorithm %q", v.Str("algorithm"))
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", nil, err
	}
	out := map[string]any{
		"privateKeyPem":              string(pem.EncodeToMemory(block)),
		"privateKeyPemPkcs8":         string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		"publicKeyPem":               string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})),
		"privateKeyOpenssh":          "",
		"publicKeyOpenssh":           "",
		"publicKeyFingerprintMd5":    "",
		"publicKeyFingerprintSha256": "",
	}
	// x/crypto/ssh has no P-224: the real provider leaves the OpenSSH fields empty then.
	if ec, ok := key.(*ecdsa.PrivateKey); !ok || ec.Curve != elliptic.P224() {
		sshBlock, err := ssh.MarshalPrivateKey(key, "")
		if err != nil {
			return "", nil, err
		}
		sshPub, err := ssh.NewPublicKey(key.Public())
		if err != nil {
			return "", nil, err
		}
		out["privateKeyOpenssh"] = string(pem.EncodeToMemory(sshBlock))
		out["publicKeyOpenssh"] = string(ssh.MarshalAuthorizedKey(sshPub))
		out["publicKeyFingerprintMd5"] = ssh.FingerprintLegacyMD5(sshPub)
		out["publicKeyFingerprintSha256"] = ssh.FingerprintSHA256(sshPub)
	}
	return hashForState(pubDER), out, nil
}

// parsePrivateKeyPEM accepts the PEM forms PrivateKey produces (PKCS#1, SEC 1, PKCS#8).
func parsePrivateKeyPEM(s string) (crypto.Signer, string, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, "", fmt.Errorf("failed to decode PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("unsupported PEM preamble %q", block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("failed to parse private key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, "RSA", nil
	case *ecdsa.PrivateKey:
		return k, "ECDSA", nil
	case ed25519.PrivateKey:
		return k, "ED25519", nil
	}
	return nil, "", fmt.Errorf("unsupported private key type %T", key)
}

// ---------------------------------------------------------------- subjects, names

func subjectProp(ref string) labprov.Prop {
	s := func(n, d string) labprov.Prop { return labprov.Prop{Name: n, Type: labprov.String, Desc: d} }
	return labprov.Prop{Name: "subject", Type: labprov.Object, Ref: ref, Fields: []labprov.Prop{
		s("commonName", "Distinguished name: CN"), s("country", "Distinguished name: C"),
		s("emailAddress", "ASN.1 OID 1.2.840.113549.1.9.1"), s("locality", "Distinguished name: L"),
		s("organization", "Distinguished name: O"), s("organizationalUnit", "Distinguished name: OU"),
		s("postalCode", "Distinguished name: PC"), s("province", "Distinguished name: ST"),
		s("serialNumber", "Distinguished name: SERIALNUMBER"),
		{Name: "streetAddresses", Type: labprov.StringList, Desc: "Distinguished name: STREET"},
	}}
}

func subjectName(s labprov.Values) pkix.Name {
	var n pkix.Name
	one := func(k string) []string {
		if s.Has(k) {
			return []string{s.Str(k)}
		}
		return nil
	}
	n.CommonName = s.Str("commonName")
	n.Organization = one("organization")
	n.OrganizationalUnit = one("organizationalUnit")
	n.StreetAddress = s.Strings("streetAddresses")
	n.Locality = one("locality")
	n.Province = one("province")
	n.Country = one("country")
	n.PostalCode = one("postalCode")
	n.SerialNumber = s.Str("serialNumber")
	if s.Has("emailAddress") {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{
			Type:  asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1},
			Value: asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(s.Str("emailAddress"))},
		})
	}
	return n
}

type names struct {
	dns  []string
	ips  []net.IP
	uris []*url.URL
}

func parseNames(v labprov.Values) (names, error) {
	n := names{dns: v.Strings("dnsNames")}
	for _, s := range v.Strings("ipAddresses") {
		ip := net.ParseIP(s)
		if ip == nil {
			return n, fmt.Errorf("invalid IP address %q", s)
		}
		n.ips = append(n.ips, ip)
	}
	for _, s := range v.Strings("uris") {
		u, err := url.Parse(s)
		if err != nil {
			return n, fmt.Errorf("invalid URI %q: %v", s, err)
		}
		n.uris = append(n.uris, u)
	}
	return n, nil
}

func validateNames(v labprov.Values) []labprov.Failure {
	if _, err := parseNames(v); err != nil {
		return []labprov.Failure{{Property: "ipAddresses", Reason: err.Error()}}
	}
	return nil
}

var namesInputs = []labprov.Prop{
	{Name: "dnsNames", Type: labprov.StringList},
	{Name: "ipAddresses", Type: labprov.StringList},
	{Name: "uris", Type: labprov.StringList},
}

// ---------------------------------------------------------------- CertRequest

func certRequest() *labprov.Resource {
	return &labprov.Resource{
		Token: "tls:index/certRequest:CertRequest",
		Desc:  "Creates a Certificate Signing Request (CSR) in PEM format.",
		Inputs: append([]labprov.Prop{
			{Name: "privateKeyPem", Type: labprov.String, Required: true, Secret: true},
			subjectProp("tls:index/CertRequestSubject:CertRequestSubject"),
		}, namesInputs...),
		Outputs: []labprov.Prop{
			{Name: "certRequestPem", Type: labprov.String},
			{Name: "keyAlgorithm", Type: labprov.String},
		},
		Validate: validateNames,
		Create: func(v labprov.Values) (string, map[string]any, error) {
			key, alg, err := parsePrivateKeyPEM(v.Str("privateKeyPem"))
			if err != nil {
				return "", nil, err
			}
			n, err := parseNames(v)
			if err != nil {
				return "", nil, err
			}
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
				Subject: subjectName(v.Obj("subject")), DNSNames: n.dns, IPAddresses: n.ips, URIs: n.uris,
			}, key)
			if err != nil {
				return "", nil, err
			}
			return hashForState(der), map[string]any{
				"certRequestPem": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
				"keyAlgorithm":   alg,
			}, nil
		},
	}
}

// ---------------------------------------------------------------- certificates

var keyUsages = map[string]x509.KeyUsage{
	"digital_signature": x509.KeyUsageDigitalSignature, "content_commitment": x509.KeyUsageContentCommitment,
	"key_encipherment": x509.KeyUsageKeyEncipherment, "data_encipherment": x509.KeyUsageDataEncipherment,
	"key_agreement": x509.KeyUsageKeyAgreement, "cert_signing": x509.KeyUsageCertSign,
	"crl_signing": x509.KeyUsageCRLSign, "encipher_only": x509.KeyUsageEncipherOnly,
	"decipher_only": x509.KeyUsageDecipherOnly,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"any_extended": x509.ExtKeyUsageAny, "server_auth": x509.ExtKeyUsageServerAuth,
	"client_auth": x509.ExtKeyUsageClientAuth, "code_signing": x509.ExtKeyUsageCodeSigning,
	"email_protection": x509.ExtKeyUsageEmailProtection, "ipsec_end_system": x509.ExtKeyUsageIPSECEndSystem,
	"ipsec_tunnel": x509.ExtKeyUsageIPSECTunnel, "ipsec_user": x509.ExtKeyUsageIPSECUser,
	"timestamping": x509.ExtKeyUsageTimeStamping, "ocsp_signing": x509.ExtKeyUsageOCSPSigning,
	"microsoft_server_gated_crypto":     x509.ExtKeyUsageMicrosoftServerGatedCrypto,
	"netscape_server_gated_crypto":      x509.ExtKeyUsageNetscapeServerGatedCrypto,
	"microsoft_commercial_code_signing": x509.ExtKeyUsageMicrosoftCommercialCodeSigning,
	"microsoft_kernel_code_signing":     x509.ExtKeyUsageMicrosoftKernelCodeSigning,
}

func validateCert(v labprov.Values) []labprov.Failure {
	var f []labprov.Failure
	for _, u := range v.Strings("allowedUses") {
		_, ku := keyUsages[u]
		_, eku := extKeyUsages[u]
		if !ku && !eku {
			f = append(f, labprov.Failure{Property: "allowedUses", Reason: fmt.Sprintf("unknown allowed use %q", u)})
		}
	}
	if v.Has("validityPeriodHours") && v.Int("validityPeriodHours", 0) < 0 {
		f = append(f, labprov.Failure{Property: "validityPeriodHours", Reason: "validityPeriodHours must be at least 0"})
	}
	if v.Has("earlyRenewalHours") && v.Int("earlyRenewalHours", 0) < 0 {
		f = append(f, labprov.Failure{Property: "earlyRenewalHours", Reason: "earlyRenewalHours must be at least 0"})
	}
	return f
}

func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	var b []byte
	var err error
	switch k := pub.(type) {
	case *rsa.PublicKey:
		b, err = asn1.Marshal(*k)
	case *ecdsa.PublicKey:
		b, err = k.Bytes()
	case ed25519.PublicKey:
		b, err = asn1.Marshal(k)
	default:
		err = fmt.Errorf("unsupported public key type %T", pub)
	}
	if err != nil {
		return nil, err
	}
	h := sha1.Sum(b)
	return h[:], nil
}

// createCertificate fills in what SelfSignedCert and LocallySignedCert share (the
// real provider's createCertificate): validity, a random 128-bit serial number,
// allowed uses, CA flags, subject key id; it returns id (the serial, base 10) and
// the computed outputs.
func createCertificate(v labprov.Values, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (string, map[string]any, error) {
	tmpl.BasicConstraintsValid = true
	tmpl.NotBefore = Now().UTC()
	tmpl.NotAfter = tmpl.NotBefore.Add(time.Duration(v.Int("validityPeriodHours", 0)) * time.Hour)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", nil, err
	}
	tmpl.SerialNumber = serial
	for _, u := range v.Strings("allowedUses") {
		if ku, ok := keyUsages[u]; ok {
			tmpl.KeyUsage |= ku
		}
		if eku, ok := extKeyUsages[u]; ok {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, eku)
		}
	}
	if v.Bool("isCaCertificate", false) {
		if tmpl.Subject.String() == "" {
			return "", nil, fmt.Errorf("must contain at least one Distinguished Name when creating a Certificate Authority (CA)")
		}
		tmpl.IsCA = true
		if tmpl.SubjectKeyId, err = subjectKeyID(pub); err != nil {
			return "", nil, err
		}
		if v.Has("maxPathLength") && v.Int("maxPathLength", 0) >= 0 {
			tmpl.MaxPathLen = v.Int("maxPathLength", 0)
		}
	}
	if v.Bool("setSubjectKeyId", false) {
		if tmpl.SubjectKeyId, err = subjectKeyID(pub); err != nil {
			return "", nil, err
		}
	}
	if v.Bool("setAuthorityKeyId", false) {
		if len(parent.SubjectKeyId) == 0 {
			return "", nil, fmt.Errorf("could not determine Authority Key Identifier")
		}
		tmpl.AuthorityKeyId = parent.SubjectKeyId
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return "", nil, err
	}
	start, _ := tmpl.NotBefore.MarshalText()
	end, _ := tmpl.NotAfter.MarshalText()
	return serial.String(), map[string]any{
		"certPem":           string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		"validityStartTime": string(start),
		"validityEndTime":   string(end),
		"readyForRenewal":   false,
	}, nil
}

// readyForRenewal is true once now is within earlyRenewalHours of validityEndTime.
func readyForRenewal(state labprov.Values, earlyRenewalHours int) bool {
	end, err := time.Parse(time.RFC3339, state.Str("validityEndTime"))
	if err != nil {
		return false
	}
	return !Now().Before(end.Add(-time.Duration(earlyRenewalHours) * time.Hour))
}

func certCommonInputs() []labprov.Prop {
	return []labprov.Prop{
		{Name: "allowedUses", Type: labprov.StringList, Required: true},
		{Name: "earlyRenewalHours", Type: labprov.Integer, Default: 0},
		{Name: "isCaCertificate", Type: labprov.Boolean, Default: false},
		{Name: "maxPathLength", Type: labprov.Integer},
		{Name: "setSubjectKeyId", Type: labprov.Boolean, Default: false},
		{Name: "validityPeriodHours", Type: labprov.Integer, Required: true},
	}
}

func certOutputs(alg string) []labprov.Prop {
	return []labprov.Prop{
		{Name: "certPem", Type: labprov.String},
		{Name: alg, Type: labprov.String},
		{Name: "readyForRenewal", Type: labprov.Boolean},
		{Name: "validityEndTime", Type: labprov.String},
		{Name: "validityStartTime", Type: labprov.String},
	}
}

func certRefresh(state labprov.Values) map[string]any {
	if !state.Has("validityEndTime") {
		return nil
	}
	return map[string]any{"readyForRenewal": readyForRenewal(state, state.Int("earlyRenewalHours", 0))}
}

func certForceReplace(state, news labprov.Values) []string {
	if state.Has("validityEndTime") && readyForRenewal(state, news.Int("earlyRenewalHours", state.Int("earlyRenewalHours", 0))) {
		return []string{"readyForRenewal"}
	}
	return nil
}

func selfSignedCert() *labprov.Resource {
	inputs := append([]labprov.Prop{
		{Name: "privateKeyPem", Type: labprov.String, Required: true, Secret: true},
		subjectProp("tls:index/SelfSignedCertSubject:SelfSignedCertSubject"),
		{Name: "setAuthorityKeyId", Type: labprov.Boolean, Default: false},
	}, certCommonInputs()...)
	return &labprov.Resource{
		Token:        "tls:index/selfSignedCert:SelfSignedCert",
		Desc:         "Creates a self-signed TLS certificate in PEM format.",
		Inputs:       append(inputs, namesInputs...),
		Outputs:      certOutputs("keyAlgorithm"),
		Updatable:    []string{"earlyRenewalHours"},
		Validate:     func(v labprov.Values) []labprov.Failure { return append(validateCert(v), validateNames(v)...) },
		Refresh:      certRefresh,
		ForceReplace: certForceReplace,
		Create: func(v labprov.Values) (string, map[string]any, error) {
			key, alg, err := parsePrivateKeyPEM(v.Str("privateKeyPem"))
			if err != nil {
				return "", nil, err
			}
			n, err := parseNames(v)
			if err != nil {
				return "", nil, err
			}
			tmpl := &x509.Certificate{Subject: subjectName(v.Obj("subject")), DNSNames: n.dns, IPAddresses: n.ips, URIs: n.uris}
			id, out, err := createCertificate(v, tmpl, tmpl, key.Public(), key)
			if err != nil {
				return "", nil, err
			}
			out["keyAlgorithm"] = alg
			return id, out, nil
		},
	}
}

func locallySignedCert() *labprov.Resource {
	inputs := append([]labprov.Prop{
		{Name: "caCertPem", Type: labprov.String, Required: true},
		{Name: "caPrivateKeyPem", Type: labprov.String, Required: true, Secret: true},
		{Name: "certRequestPem", Type: labprov.String, Required: true},
	}, certCommonInputs()...)
	return &labprov.Resource{
		Token:        "tls:index/locallySignedCert:LocallySignedCert",
		Desc:         "Creates a TLS certificate in PEM format from a CSR, signed by a local CA.",
		Inputs:       inputs,
		Outputs:      certOutputs("caKeyAlgorithm"),
		Updatable:    []string{"earlyRenewalHours"},
		Validate:     validateCert,
		Refresh:      certRefresh,
		ForceReplace: certForceReplace,
		Create: func(v labprov.Values) (string, map[string]any, error) {
			block, _ := pem.Decode([]byte(v.Str("certRequestPem")))
			if block == nil || block.Type != "CERTIFICATE REQUEST" {
				return "", nil, fmt.Errorf("certRequestPem: expected a PEM CERTIFICATE REQUEST")
			}
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				return "", nil, fmt.Errorf("certRequestPem: %w", err)
			}
			if err := csr.CheckSignature(); err != nil {
				return "", nil, fmt.Errorf("certRequestPem: bad signature: %w", err)
			}
			caKey, alg, err := parsePrivateKeyPEM(v.Str("caPrivateKeyPem"))
			if err != nil {
				return "", nil, fmt.Errorf("caPrivateKeyPem: %w", err)
			}
			cb, _ := pem.Decode([]byte(v.Str("caCertPem")))
			if cb == nil || cb.Type != "CERTIFICATE" {
				return "", nil, fmt.Errorf("caCertPem: expected a PEM CERTIFICATE")
			}
			caCert, err := x509.ParseCertificate(cb.Bytes)
			if err != nil {
				return "", nil, fmt.Errorf("caCertPem: %w", err)
			}
			tmpl := &x509.Certificate{Subject: csr.Subject, DNSNames: csr.DNSNames, IPAddresses: csr.IPAddresses, URIs: csr.URIs}
			id, out, err := createCertificate(v, tmpl, caCert, csr.PublicKey, caKey)
			if err != nil {
				return "", nil, err
			}
			out["caKeyAlgorithm"] = alg
			return id, out, nil
		},
	}
}
