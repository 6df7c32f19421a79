module wg-relay.lab/wstunnel-double

go 1.24
