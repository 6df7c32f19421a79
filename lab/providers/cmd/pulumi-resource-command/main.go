// pulumi-resource-command — LAB-ONLY STAND-IN for the real pulumi-command provider plugin
// (pulumi-resource-command 1.2.1, used by @pulumi/command 1.2.1). The wg-relay lab builds it only
// because the Go module proxy there refuses github.com/pulumi/pulumi-command/provider, so the
// real plugin cannot be built; it implements command:remote:Command, command:remote:CopyToRemote
// and a subset of command:local:Command, and is never used for a real deployment. A real
// pulumi-resource-command installed in the Pulumi plugin cache is always preferred: this binary
// execs it instead of serving.
package main

import "wg-relay.lab/providers/internal/commandprov"

func main() { commandprov.Main() }
