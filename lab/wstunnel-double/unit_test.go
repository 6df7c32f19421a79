package main

import (
	"bufio"
	"encoding/base64"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseHostLikeURLCrate(t *testing.T) {
	cases := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"0x7f.0.0.1", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"127.0.0.1.", "127.0.0.1"},
		{"LocalHost", "localhost"},
		{"relay.Example.NET", "relay.example.net"},
		{"[::1]", "[::1]"},
		{"[0:0:0:0:0:0:0:1]", "[::1]"},
		{"[::ffff:127.0.0.1]", "[::ffff:7f00:1]"},
		{"[2001:db8:0:0:1:0:0:1]", "[2001:db8::1:0:0:1]"},
		{"%6c%6fcalhost", "localhost"},
	}
	for _, c := range cases {
		h, err := parseHost(c.in)
		if err != nil || h.String() != c.want {
			t.Fatalf("%q: got %q %v, want %q", c.in, h.String(), err, c.want)
		}
	}
	for _, bad := range []string{"", "256.0.0.1", "1.2.3.4.5", "1.2.3.09", "::1", "[::1", "a b", "a/b", "a:b", "[fe80::1%eth0]", "0x100000000"} {
		if h, err := parseHost(bad); err == nil {
			t.Fatalf("%q: accepted as %v", bad, h)
		}
	}
}

func TestJWTRoundTripAndUnverifiedSignature(t *testing.T) {
	tok := encodeTunnelJWT(tunnelClaims{ID: "0190e1d4-0000-7000-8000-000000000000", P: udpProto(0), R: "127.0.0.1", RP: 51820})
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatal(tok)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if string(hdr) != `{"typ":"JWT","alg":"HS256"}` {
		t.Fatalf("header %s", hdr)
	}
	if string(claims) != `{"id":"0190e1d4-0000-7000-8000-000000000000","p":{"Udp":{"timeout":null}},"r":"127.0.0.1","rp":51820}` {
		t.Fatalf("claims %s", claims)
	}
	// the server does not check the signature
	forged := parts[0] + "." + parts[1] + ".AAAA"
	c, err := decodeTunnelJWT(forged)
	if err != nil || c.R != "127.0.0.1" || c.RP != 51820 || c.P.name != "Udp" || c.P.timeout != nil {
		t.Fatalf("%+v %v", c, err)
	}
	tok30 := encodeTunnelJWT(tunnelClaims{ID: "x", P: udpProto(30 * time.Second), R: "h", RP: 1})
	c, err = decodeTunnelJWT(tok30)
	if err != nil || c.P.timeout == nil || *c.P.timeout != 30*time.Second || c.P.Debug() != "Udp { timeout: Some(30s) }" {
		t.Fatalf("%+v %v", c, err)
	}
}

func mkTok(header, claims string) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(header)) + "." + e.EncodeToString([]byte(claims)) + ".sig"
}

func TestJWTDecodeRules(t *testing.T) {
	h := `{"alg":"HS256"}`
	ok := []string{
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"127.0.0.1","rp":1}`),
		mkTok(h, `{"id":"a","p":{"Udp":{}},"r":"127.0.0.1","rp":1,"extra":true}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":{"secs":5,"nanos":0}}},"r":"x","rp":65535}`),
		mkTok(h, `{"id":"a","p":{"Tcp":{"proxy_protocol":false}},"r":"x","rp":1}`),
		mkTok(h, `{"id":"a","p":"ReverseTcp","r":"x","rp":1}`),
		mkTok(`{"alg":"RS256","typ":"whatever"}`, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x","rp":1}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x","rp":1,"exp":`+itoa(time.Now().Add(time.Hour).Unix())+`}`),
	}
	for _, tok := range ok {
		if _, err := decodeTunnelJWT(tok); err != nil {
			t.Fatalf("%s: %v", tok, err)
		}
	}
	bad := []string{
		"",
		"abc",
		"a.b",
		mkTok(`{"alg":"none"}`, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x","rp":1}`),
		mkTok(`{}`, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x","rp":1}`),
		mkTok(h, `{"p":{"Udp":{"timeout":null}},"r":"x","rp":1}`),
		mkTok(h, `{"id":"a","r":"x","rp":1}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":null}},"rp":1}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x"}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x","rp":65536}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x","rp":1.5}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x","rp":"1"}`),
		mkTok(h, `{"id":1,"p":{"Udp":{"timeout":null}},"r":"x","rp":1}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":"5s"}},"r":"x","rp":1}`),
		mkTok(h, `{"id":"a","p":{"Tcp":{}},"r":"x","rp":1}`),
		mkTok(h, `{"id":"a","p":{"Nope":{}},"r":"x","rp":1}`),
		mkTok(h, `{"id":"a","p":"Udp","r":"x","rp":1}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x","rp":1,"exp":1000}`),
		mkTok(h, `{"id":"a","p":{"Udp":{"timeout":null}},"r":"x","rp":1,"aud":"someone"}`),
	}
	for _, tok := range bad {
		if c, err := decodeTunnelJWT(tok); err == nil {
			t.Fatalf("%s accepted: %+v", tok, c)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestParseLocalToRemote(t *testing.T) {
	cases := []struct {
		in       string
		bind     string
		dest     string
		port     uint16
		timeout  time.Duration
		wantFail bool
	}{
		{in: "udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0", bind: "127.0.0.1:51820", dest: "127.0.0.1", port: 51820, timeout: 0},
		{in: "udp://51820:relay.example:51820", bind: "127.0.0.1:51820", dest: "relay.example", port: 51820, timeout: 30 * time.Second},
		{in: "udp://0.0.0.0:1:h:2?timeout_sec=9", bind: "0.0.0.0:1", dest: "h", port: 2, timeout: 9 * time.Second},
		{in: "udp://1:h:2?timeout_sec=bogus", bind: "127.0.0.1:1", dest: "h", port: 2, timeout: 30 * time.Second},
		{in: "udp://[::1]:1:[::1]:2", bind: "[::1]:1", dest: "[::1]", port: 2, timeout: 30 * time.Second},
		{in: "udp://1:h:443", bind: "127.0.0.1:1", dest: "h", port: 443, timeout: 30 * time.Second},
		{in: "udp://1:h:443?timeout_sec=0", bind: "127.0.0.1:1", dest: "h", port: 443},
		{in: "udp://1:h", wantFail: true},
		{in: "udp://x:h:2", wantFail: true},
		{in: "udp://1:h:70000", wantFail: true},
		{in: "1:h:2", wantFail: true},
		{in: "quic://1:h:2", wantFail: true},
	}
	for _, c := range cases {
		r, err := parseLocalToRemote(c.in)
		if c.wantFail {
			if err == nil {
				t.Fatalf("%s: accepted %+v", c.in, r)
			}
			continue
		}
		if err != nil || r.bind.String() != c.bind || r.dest.String() != c.dest || r.destPort != c.port || r.timeout != c.timeout {
			t.Fatalf("%s: %+v %v", c.in, r, err)
		}
	}
}

func TestFrames(t *testing.T) {
	for _, size := range []int{0, 1, 125, 126, 65535, 65536, 200000} {
		for _, mask := range []bool{true, false} {
			a, b := net.Pipe()
			w := newWSConn(a, nil, mask)
			r := newWSConn(b, bufio.NewReader(b), false)
			payload := []byte(strings.Repeat("z", size))
			go func() { _ = w.writeFrame(opBinary, payload) }()
			f, err := r.readFrame()
			if err != nil || f.op != opBinary || !f.fin || string(f.payload) != string(payload) {
				t.Fatalf("size %d mask %v: %v", size, mask, err)
			}
			_ = a.Close()
			_ = b.Close()
		}
	}
	// reserved bits and oversized control frames are errors
	for _, raw := range [][]byte{{0xC2, 0x00}, {0x89, 126, 0, 200}, {0x09, 0x00}, {0x83, 0x00}} {
		a, b := net.Pipe()
		go func() { _, _ = a.Write(raw); _ = a.Close() }()
		if _, err := newWSConn(b, nil, false).readFrame(); err == nil {
			t.Fatalf("%x accepted", raw)
		}
		_ = b.Close()
	}
	if wsAccept("dGhlIHNhbXBsZSBub25jZQ==") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatal("accept key")
	}
}

func TestValidateRules(t *testing.T) {
	s := &server{cfg: serverConfig{prefixes: []string{"p"}, restrictTo: []allowRule{{ip: netip.MustParseAddr("127.0.0.1"), port: 51820}, {domain: "wg", port: 1}}}}
	udp := tunnelProto{name: "Udp"}
	chk := func(prefix string, p tunnelProto, h string, port uint16, want bool) {
		t.Helper()
		if _, got := s.validate(prefix, p, mustHost(t, h), port); got != want {
			t.Fatalf("%s %s %s:%d: %v", prefix, p.name, h, port, got)
		}
	}
	chk("p", udp, "127.0.0.1", 51820, true)
	chk("p", tunnelProto{name: "Tcp"}, "127.0.0.1", 51820, true)
	chk("q", udp, "127.0.0.1", 51820, false)
	chk("p", udp, "127.0.0.1", 51821, false)
	chk("p", udp, "localhost", 51820, false)
	chk("p", udp, "wg", 1, true)
	chk("p", udp, "WG", 1, true) // lower-cased by the host parser
	chk("p", tunnelProto{name: "ReverseUdp"}, "127.0.0.1", 51820, false)
	if name, _ := s.validate("p", udp, mustHost(t, "127.0.0.1"), 51820); strings.Contains(name, "p>") || name != "Allow path prefix <redacted>" {
		t.Fatalf("rule name %q", name)
	}
}

func TestRedactPath(t *testing.T) {
	for in, want := range map[string]string{
		"/secret/events":        "/<redacted>/events",
		"/secret":               "/<redacted>",
		"/secret?x=1":           "/<redacted>?x=1",
		"http://h/secret/event": "<redacted request target>",
	} {
		if got := redactPath(in); got != want {
			t.Fatalf("%s: %s", in, got)
		}
	}
}
