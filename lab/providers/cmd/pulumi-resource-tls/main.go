// pulumi-resource-tls — LAB-ONLY STAND-IN for the real pulumi-tls provider plugin
// (@pulumi/tls 5.6.1). The wg-relay lab builds it only because the real provider
// cannot be built there; it implements PrivateKey, SelfSignedCert, CertRequest and
// LocallySignedCert, and is never used for a real deployment.
package main

import "wg-relay.lab/providers/internal/tlsprov"

func main() { tlsprov.New().Main() }
