package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

const testPrefix = "s3cr3t-prefix"

func clientCfg(srv *runningServer, echo netip.AddrPort) clientConfig {
	return clientConfig{
		bind:            netip.MustParseAddrPort("127.0.0.1:0"),
		dest:            host{kind: hostIPv4, ip: echo.Addr()},
		destPort:        echo.Port(),
		udpTimeout:      0,
		server:          host{kind: hostIPv4, ip: srv.addr.Addr()},
		serverPort:      srv.addr.Port(),
		prefix:          testPrefix,
		connectRetryMax: time.Second,
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) activeTunnels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *server) dropTunnels() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

func TestUDPEchoRoundTrip(t *testing.T) {
	leak := goroutineBaseline(t)
	pki := newTestPKI(t, "a")
	echo, stopEcho := startEcho(t)
	srv := startServer(t, pki, []string{echo.String()}, []string{testPrefix})
	cl := startClient(t, clientCfg(srv, echo))

	a, b := newLocalUDP(t), newLocalUDP(t)
	if got := udpExchangeRetry(t, a, cl.addr, "ping-a"); got != "echo:ping-a" {
		t.Fatalf("got %q", got)
	}
	if got := udpExchangeRetry(t, b, cl.addr, "ping-b"); got != "echo:ping-b" {
		t.Fatalf("got %q", got)
	}
	// more traffic on the same flows, including a large datagram
	big := strings.Repeat("x", 60000)
	for i := 0; i < 20; i++ {
		msg := fmt.Sprintf("a-%d", i)
		if got, err := udpExchange(a, cl.addr, msg, 2*time.Second); err != nil || got != "echo:"+msg {
			t.Fatalf("exchange %d: %q %v", i, got, err)
		}
	}
	if got, err := udpExchange(b, cl.addr, big, 2*time.Second); err != nil || got != "echo:"+big {
		t.Fatalf("big exchange: len %d %v", len(got), err)
	}
	// one WebSocket per local source address, as the real client does
	if n := cl.c.openedCount(); n != 2 {
		t.Fatalf("client opened %d websockets, want 2", n)
	}
	if n := srv.s.tunnelCount(); n != 2 {
		t.Fatalf("server accepted %d tunnels, want 2", n)
	}
	for _, l := range []string{srv.logs.String(), cl.logs.String()} {
		if strings.Contains(l, testPrefix) {
			t.Fatalf("the path prefix leaked into the logs:\n%s", l)
		}
	}
	cl.stop()
	srv.stop()
	stopEcho()
	_ = a.Close()
	_ = b.Close()
	leak()
}

func TestNextDatagramReopensWebSocket(t *testing.T) {
	leak := goroutineBaseline(t)
	pki := newTestPKI(t, "b")
	echo, stopEcho := startEcho(t)
	srv := startServer(t, pki, []string{echo.String()}, []string{testPrefix})
	cl := startClient(t, clientCfg(srv, echo))
	a := newLocalUDP(t)
	if got := udpExchangeRetry(t, a, cl.addr, "one"); got != "echo:one" {
		t.Fatalf("got %q", got)
	}
	srv.s.dropTunnels() // the WebSocket dies
	waitFor(t, "the client to notice", func() bool {
		cl.c.mu.Lock()
		defer cl.c.mu.Unlock()
		return len(cl.c.flows) == 0
	})
	if got := udpExchangeRetry(t, a, cl.addr, "two"); got != "echo:two" {
		t.Fatalf("got %q", got)
	}
	if n := cl.c.openedCount(); n != 2 {
		t.Fatalf("client opened %d websockets, want 2", n)
	}
	cl.stop()
	srv.stop()
	stopEcho()
	_ = a.Close()
	leak()
}

func TestIdleTimeoutClosesFlow(t *testing.T) {
	leak := goroutineBaseline(t)
	pki := newTestPKI(t, "c")
	echo, stopEcho := startEcho(t)
	srv := startServer(t, pki, []string{echo.String()}, []string{testPrefix})
	cfg := clientCfg(srv, echo)
	cfg.udpTimeout = time.Second
	cl := startClient(t, cfg)
	a := newLocalUDP(t)
	if got := udpExchangeRetry(t, a, cl.addr, "x"); got != "echo:x" {
		t.Fatalf("got %q", got)
	}
	waitFor(t, "the idle flow to be closed on the server", func() bool { return srv.s.activeTunnels() == 0 })
	if got := udpExchangeRetry(t, a, cl.addr, "y"); got != "echo:y" {
		t.Fatalf("got %q", got)
	}
	if n := cl.c.openedCount(); n != 2 {
		t.Fatalf("client opened %d websockets, want 2", n)
	}
	cl.stop()
	srv.stop()
	stopEcho()
	_ = a.Close()
	leak()
}

func TestTimeoutZeroKeepsFlow(t *testing.T) {
	pki := newTestPKI(t, "d")
	echo, _ := startEcho(t)
	srv := startServer(t, pki, []string{echo.String()}, []string{testPrefix})
	cl := startClient(t, clientCfg(srv, echo)) // timeout_sec=0
	a := newLocalUDP(t)
	udpExchangeRetry(t, a, cl.addr, "x")
	time.Sleep(2500 * time.Millisecond)
	if srv.s.activeTunnels() != 1 {
		t.Fatalf("flow was closed although timeout_sec=0")
	}
	if got, err := udpExchange(a, cl.addr, "z", 2*time.Second); err != nil || got != "echo:z" {
		t.Fatalf("got %q %v", got, err)
	}
	if n := cl.c.openedCount(); n != 1 {
		t.Fatalf("client opened %d websockets, want 1", n)
	}
}

func TestVerifyCertificateWithTestCA(t *testing.T) {
	leak := goroutineBaseline(t)
	pki := newTestPKI(t, "e")
	other := newTestPKI(t, "other")
	echo, stopEcho := startEcho(t)
	srv := startServer(t, pki, []string{echo.String()}, []string{testPrefix})

	// trusted CA: works, by IP and by DNS name
	t.Setenv("SSL_CERT_FILE", pki.caFile)
	t.Setenv("SSL_CERT_DIR", "")
	for _, name := range []string{"127.0.0.1", "localhost"} {
		cfg := clientCfg(srv, echo)
		cfg.verify = true
		cfg.server = mustHost(t, name)
		cl := startClient(t, cfg)
		a := newLocalUDP(t)
		if got := udpExchangeRetry(t, a, cl.addr, "v-"+name); got != "echo:v-"+name {
			t.Fatalf("got %q", got)
		}
		cl.stop()
		_ = a.Close()
	}

	// untrusted CA: no tunnel
	t.Setenv("SSL_CERT_FILE", other.caFile)
	cfg := clientCfg(srv, echo)
	cfg.verify = true
	before := srv.s.tunnelCount()
	cl := startClient(t, cfg)
	a := newLocalUDP(t)
	if got, err := udpExchange(a, cl.addr, "nope", 2*time.Second); err == nil {
		t.Fatalf("got a reply %q through a server with an untrusted certificate", got)
	}
	if srv.s.tunnelCount() != before {
		t.Fatalf("a tunnel was accepted")
	}
	if !strings.Contains(cl.logs.String(), "certificate") {
		t.Fatalf("expected a certificate error in the client log:\n%s", cl.logs.String())
	}

	// without --tls-verify-certificate the untrusted certificate is accepted
	cfg.verify = false
	cl2 := startClient(t, cfg)
	if got := udpExchangeRetry(t, a, cl2.addr, "noverify"); got != "echo:noverify" {
		t.Fatalf("got %q", got)
	}
	cl.stop()
	cl2.stop()
	srv.stop()
	stopEcho()
	_ = a.Close()
	leak()
}

func TestWrongPrefixGets400(t *testing.T) {
	leak := goroutineBaseline(t)
	pki := newTestPKI(t, "f")
	echo, stopEcho := startEcho(t)
	srv := startServer(t, pki, []string{echo.String()}, []string{testPrefix})
	jwt := udpJWT("127.0.0.1", echo.Port())

	for _, path := range []string{
		"/wrong/events",               // wrong prefix
		"/v1/events",                  // the client default, not allowed here
		"/" + testPrefix + "x/events", // prefix must match exactly
		"/" + testPrefix + "/event",   // path must end in "events"
		"/" + testPrefix,              // no second segment
		"/" + testPrefix + "/events/", // does not end in "events"
	} {
		resp, _, conn := rawUpgrade(t, srv.addr, path, jwt)
		if resp.StatusCode != 400 {
			t.Fatalf("%s: status %d, want 400", path, resp.StatusCode)
		}
		if body := readBody(t, resp); body != "Invalid request" {
			t.Fatalf("%s: body %q", path, body)
		}
		_ = conn.Close()
	}
	// control: the right prefix is upgraded
	resp, br, conn := rawUpgrade(t, srv.addr, "/"+testPrefix+"/events", jwt)
	if resp.StatusCode != 101 {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "v1" {
		t.Fatalf("Sec-WebSocket-Protocol %q", got)
	}
	_ = conn.SetReadDeadline(time.Time{})
	// masked (RFC client) and unmasked (real wstunnel client default) frames both work
	for _, masked := range []bool{true, false} {
		ws := newWSConn(conn, br, masked)
		if err := ws.writeFrame(opBinary, []byte("raw")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		f, err := ws.readFrame()
		if err != nil || f.op != opBinary || string(f.payload) != "echo:raw" {
			t.Fatalf("masked=%v: %v %v %q", masked, err, f.op, f.payload)
		}
	}
	// ping is answered with a pong carrying the same payload
	ws := newWSConn(conn, br, true)
	if err := ws.writeFrame(opPing, []byte("pp")); err != nil {
		t.Fatal(err)
	}
	f, err := ws.readFrame()
	if err != nil || f.op != opPong || string(f.payload) != "pp" {
		t.Fatalf("pong: %v %v %q", err, f.op, f.payload)
	}
	// close is answered with close
	if err := ws.writeFrame(opClose, []byte{0x03, 0xe8}); err != nil {
		t.Fatal(err)
	}
	f, err = ws.readFrame()
	if err != nil || f.op != opClose {
		t.Fatalf("close: %v %v", err, f.op)
	}
	_ = conn.Close()
	if strings.Contains(srv.logs.String(), testPrefix) {
		t.Fatalf("prefix leaked into the server log")
	}
	srv.stop()
	stopEcho()
	leak()
}

func TestForbiddenDestinationGets400(t *testing.T) {
	leak := goroutineBaseline(t)
	pki := newTestPKI(t, "g")
	echo, stopEcho := startEcho(t)
	srv := startServer(t, pki, []string{echo.String()}, []string{testPrefix})
	path := "/" + testPrefix + "/events"
	other := echo.Port() + 1
	if other == 0 {
		other = 1
	}
	cases := []struct {
		name string
		jwt  string
		want int
	}{
		{"other port", udpJWT("127.0.0.1", other), 400},
		{"other ip", udpJWT("127.0.0.2", echo.Port()), 400},
		{"localhost is not the literal 127.0.0.1", udpJWT("localhost", echo.Port()), 400},
		{"ipv6 loopback", udpJWT("[::1]", echo.Port()), 400},
		{"no jwt", "", 400},
		{"garbage jwt", "not.a.jwt", 400},
		{"unknown protocol", encodeTunnelJWT(tunnelClaims{ID: "x", P: tunnelProto{name: "ReverseTcp"}, R: "127.0.0.1", RP: echo.Port()}), 400},
		// url::Host::parse normalises these to 127.0.0.1, exactly like the real server
		{"127.1 is 127.0.0.1", udpJWT("127.1", echo.Port()), 101},
		{"allowed", udpJWT("127.0.0.1", echo.Port()), 101},
	}
	for _, c := range cases {
		resp, _, conn := rawUpgrade(t, srv.addr, path, c.jwt)
		if resp.StatusCode != c.want {
			t.Fatalf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if c.want == 400 {
			if body := readBody(t, resp); body != "Invalid request" {
				t.Fatalf("%s: body %q", c.name, body)
			}
		}
		_ = conn.Close()
	}
	if !strings.Contains(srv.logs.String(), "Rejecting connection with not allowed destination: RemoteAddr { protocol: Udp { timeout: None }, host: Ipv4(127.0.0.2)") {
		t.Fatalf("missing rejection log:\n%s", srv.logs.String())
	}
	srv.stop()
	stopEcho()
	leak()
}

func TestNoRestrictionsAllowsAnyPrefix(t *testing.T) {
	pki := newTestPKI(t, "h")
	echo, _ := startEcho(t)
	srv := startServer(t, pki, nil, nil)
	resp, _, conn := rawUpgrade(t, srv.addr, "/anything/events", udpJWT("127.0.0.1", echo.Port()))
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_ = conn.Close()
}

func TestNonUpgradeRequestGets400(t *testing.T) {
	pki := newTestPKI(t, "i")
	srv := startServer(t, pki, []string{"127.0.0.1:1"}, []string{testPrefix})
	conn, err := tls.Dial("tcp", srv.addr.String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /"+testPrefix+"/events HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || readBody(t, resp) != "Invalid request" {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestServerReloadsChangedCertificate(t *testing.T) {
	leak := goroutineBaseline(t)
	pki := newTestPKI(t, "j")
	srv := startServer(t, pki, []string{"127.0.0.1:1"}, []string{testPrefix})
	issuer := func() string {
		conn, err := tls.Dial("tcp", srv.addr.String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Issuer.CommonName
	}
	if got := issuer(); got != "wstunnel-double test CA j" {
		t.Fatalf("issuer %q", got)
	}
	next := newTestPKI(t, "k")
	for _, f := range [][2]string{{next.certFile, pki.certFile}, {next.keyFile, pki.keyFile}} {
		data, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the new certificate", func() bool { return issuer() == "wstunnel-double test CA k" })
	srv.stop()
	leak()
}
