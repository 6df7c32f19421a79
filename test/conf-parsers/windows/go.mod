module wg-relay.test/conf-parsers/windows

go 1.25.0

require golang.zx2c4.com/wireguard/windows v1.1.1

require (
	golang.org/x/crypto v0.50.0 // indirect
	golang.org/x/sys v0.43.0 // indirect
	golang.org/x/text v0.36.0 // indirect
)
