// pulumi-resource-random — LAB-ONLY STAND-IN for the real pulumi-random provider
// plugin (@pulumi/random 4.21.2). The wg-relay lab builds it only because the real
// provider cannot be built there; it implements RandomBytes, RandomPassword and
// RandomId, and is never used for a real deployment.
package main

import "wg-relay.lab/providers/internal/randomprov"

func main() { randomprov.New().Main() }
