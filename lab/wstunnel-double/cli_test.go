package main

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func parseFor(t *testing.T, env func(string) (string, bool), args ...string) (*invocation, int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	inv, code := parseCommandLine(args, env, &out, &errb)
	return inv, code, out.String(), errb.String()
}

func TestProductServerCommandLine(t *testing.T) {
	env := envOf("WSTUNNEL_RESTRICT_HTTP_UPGRADE_PATH_PREFIX", "secret-from-env")
	for _, args := range [][]string{
		{"server", "--tls-certificate", "/c.pem", "--tls-private-key", "/k.pem", "--restrict-to", "127.0.0.1:51820", "wss://0.0.0.0:443"},
		{"server", "--tls-certificate=/c.pem", "--tls-private-key=/k.pem", "--restrict-to=127.0.0.1:51820", "wss://0.0.0.0:443"},
		{"server", "wss://0.0.0.0:443", "--restrict-to", "127.0.0.1:51820", "--tls-private-key", "/k.pem", "--tls-certificate", "/c.pem"},
		{"server", "--tls-certificate", "/c.pem", "--tls-private-key", "/k.pem", "--restrict-to", "127.0.0.1:51820", "--", "wss://0.0.0.0"},
	} {
		inv, code, _, stderr := parseFor(t, env, args...)
		if code != 0 || inv == nil || inv.server == nil {
			t.Fatalf("%v: code %d %s", args, code, stderr)
		}
		s := inv.server
		if s.scheme != "wss" || s.bindHost != "0.0.0.0" || s.bindPort != 443 || s.certFile != "/c.pem" || s.keyFile != "/k.pem" {
			t.Fatalf("%v: %+v", args, s)
		}
		if !reflect.DeepEqual(s.prefixes, []string{"secret-from-env"}) {
			t.Fatalf("prefixes %v", s.prefixes)
		}
		want := []allowRule{{ip: netip.MustParseAddr("127.0.0.1"), port: 51820}}
		if !reflect.DeepEqual(s.restrictTo, want) {
			t.Fatalf("restrictTo %+v", s.restrictTo)
		}
	}
}

func TestServerRepeatedRestrictions(t *testing.T) {
	env := envOf("WSTUNNEL_RESTRICT_HTTP_UPGRADE_PATH_PREFIX", "ignored-because-the-flag-is-given")
	inv, code, _, stderr := parseFor(t, env, "server",
		"--restrict-to", "127.0.0.1:51820", "--restrict-to", "[::1]:51821", "--restrict-to", "wg.example:1",
		"-r", "a", "--restrict-http-upgrade-path-prefix", "b", "-rc", "--restrict-http-upgrade-path-prefix=d",
		"ws://[::]:8080")
	if code != 0 {
		t.Fatalf("code %d %s", code, stderr)
	}
	s := inv.server
	if !reflect.DeepEqual(s.prefixes, []string{"a", "b", "c", "d"}) {
		t.Fatalf("prefixes %v", s.prefixes)
	}
	want := []allowRule{
		{ip: netip.MustParseAddr("127.0.0.1"), port: 51820},
		{ip: netip.MustParseAddr("::1"), port: 51821},
		{domain: "wg.example", port: 1},
	}
	if !reflect.DeepEqual(s.restrictTo, want) {
		t.Fatalf("restrictTo %+v", s.restrictTo)
	}
	if s.scheme != "ws" || s.bindHost != "::" || s.bindPort != 8080 {
		t.Fatalf("%+v", s)
	}
	// no flag and no env: no restriction at all
	inv, code, _, _ = parseFor(t, envOf(), "server", "wss://127.0.0.1:8443")
	if code != 0 || inv.server.prefixes != nil || inv.server.restrictTo != nil {
		t.Fatalf("%d %+v", code, inv.server)
	}
	// a present but empty env variable is a value (clap reads it as "")
	inv, _, _, _ = parseFor(t, envOf("WSTUNNEL_RESTRICT_HTTP_UPGRADE_PATH_PREFIX", ""), "server", "wss://127.0.0.1:8443")
	if !reflect.DeepEqual(inv.server.prefixes, []string{""}) {
		t.Fatalf("%+v", inv.server.prefixes)
	}
}

func TestProductClientCommandLine(t *testing.T) {
	env := envOf("WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX", "secret-from-env")
	for _, args := range [][]string{
		{"client", "--local-to-remote", "udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0", "--tls-verify-certificate", "wss://relay.example.net:443"},
		{"client", "--local-to-remote=udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0", "--tls-verify-certificate", "wss://relay.example.net"},
		{"client", "-L", "udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0", "wss://RELAY.example.net:443", "--tls-verify-certificate"},
		{"client", "-Ludp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0", "--tls-verify-certificate", "wss://relay.example.net:443"},
	} {
		inv, code, _, stderr := parseFor(t, env, args...)
		if code != 0 || inv == nil || len(inv.clients) != 1 {
			t.Fatalf("%v: code %d %s", args, code, stderr)
		}
		c := inv.clients[0]
		if c.bind != netip.MustParseAddrPort("127.0.0.1:51820") || c.dest.String() != "127.0.0.1" || c.destPort != 51820 || c.udpTimeout != 0 {
			t.Fatalf("%v: %+v", args, c)
		}
		if c.scheme != "wss" || c.server.String() != "relay.example.net" || c.serverPort != 443 || !c.verify || c.prefix != "secret-from-env" {
			t.Fatalf("%v: %+v", args, c)
		}
	}
	// flag beats env; default is v1; IP server
	inv, _, _, _ := parseFor(t, env, "client", "-L", "udp://51820:127.0.0.1:51820", "--http-upgrade-path-prefix", "flag", "wss://198.51.100.10:443")
	if c := inv.clients[0]; c.prefix != "flag" || c.verify || c.udpTimeout != 30*time.Second || c.server.String() != "198.51.100.10" {
		t.Fatalf("%+v", c)
	}
	inv, _, _, _ = parseFor(t, envOf(), "client", "-L", "udp://[::1]:5000:[::1]:6000?timeout_sec=7", "-P", "x", "wss://h:8443")
	if c := inv.clients[0]; c.prefix != "x" || c.bind.String() != "[::1]:5000" || c.dest.String() != "[::1]" || c.destPort != 6000 || c.udpTimeout != 7*time.Second || c.serverPort != 8443 {
		t.Fatalf("%+v", c)
	}
	inv, _, _, _ = parseFor(t, envOf(), "client", "-L", "udp://1:h:2", "wss://h")
	if c := inv.clients[0]; c.prefix != "v1" {
		t.Fatalf("%+v", c)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := [][]string{
		{},
		{"frobnicate"},
		{"--log-lvl", "DEBUG", "server", "wss://0.0.0.0:443"}, // global flags of the real CLI are not part of the subset
		{"server", "--unknown", "wss://0.0.0.0:443"},
		{"server", "--tls-certificate", "a", "--tls-certificate", "b", "wss://0.0.0.0:443"},
		{"server", "--tls-certificate"},
		{"server", "--tls-certificate", "--restrict-to", "127.0.0.1:1", "wss://0.0.0.0:443"},
		{"server"},
		{"server", "wss://0.0.0.0:443", "extra"},
		{"server", "ftp://0.0.0.0:443"},
		{"server", "https://0.0.0.0:443"}, // valid for the real one, not implemented by the double
		{"server", "-V"},
		{"server", "--restrict-config", "x.yaml", "wss://0.0.0.0:443"},
		{"client", "-L", "tcp://1:h:2", "wss://h"},
		{"client", "-L", "udp://h", "wss://h"},
		{"client", "-L", "udp://1:h", "wss://h"},
		{"client", "-L", "udp://1:h:2", "--tls-verify-certificate=true", "wss://h"},
		{"client", "-L", "udp://1:h:2", "--tls-sni-override", "x", "wss://h"},
		{"client", "-L", "udp://1:h:2", "-R", "udp://1:h:2", "wss://h"},
		{"client", "-L", "udp://1:h:2", "--http-upgrade-path-prefix", "a", "-P", "b", "wss://h"},
		{"client", "-L", "udp://1:h:2"},
	}
	for _, args := range cases {
		inv, code, stdout, stderr := parseFor(t, envOf(), args...)
		if code != 2 || inv != nil {
			t.Fatalf("%q: code %d, want 2", args, code)
		}
		if stdout != "" {
			t.Fatalf("%q: usage errors go to stderr, got stdout %q", args, stdout)
		}
		if len(args) > 0 && !strings.HasPrefix(stderr, "error: ") {
			t.Fatalf("%q: stderr %q", args, stderr)
		}
	}
	_, _, _, stderr := parseFor(t, envOf(), "server", "--nope", "wss://0.0.0.0:443")
	want := "error: unexpected argument '--nope' found\n\nUsage: wstunnel server [OPTIONS] <ws[s]://0.0.0.0[:port]>\n\nFor more information, try '--help'.\n"
	if stderr != want {
		t.Fatalf("stderr %q", stderr)
	}
}

func TestVersionAndHelp(t *testing.T) {
	for _, a := range []string{"--version", "-V"} {
		_, code, stdout, _ := parseFor(t, envOf(), a)
		if code != 0 || stdout != "wstunnel-double 10.4.4 (lab test double; not the real wstunnel)\n" {
			t.Fatalf("%s: %d %q", a, code, stdout)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"server", "--help"}, {"client", "-h"}, {"help", "client"}, {"client", "-L", "udp://1:h:2", "--help"}} {
		_, code, stdout, _ := parseFor(t, envOf(), args...)
		if code != 0 || !strings.Contains(stdout, "Usage: wstunnel") || !strings.Contains(stdout, "lab test double") {
			t.Fatalf("%q: %d %q", args, code, stdout)
		}
	}
}

func TestBadRestrictToIsAStartupFailure(t *testing.T) {
	for _, r := range []string{"127.0.0.1", "127.0.0.1:port"} {
		_, code, _, _ := parseFor(t, envOf(), "server", "--restrict-to", r, "wss://0.0.0.0:443")
		if code != 101 {
			t.Fatalf("%s: code %d, want 101 (the real program panics)", r, code)
		}
	}
}
