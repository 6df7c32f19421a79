package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- certificates --------------------------------------------------------------------

type testPKI struct {
	caFile   string // PEM of the CA (for SSL_CERT_FILE)
	certFile string // server certificate (IP SAN 127.0.0.1, DNS localhost)
	keyFile  string
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newTestPKI makes a throw-away CA and a server certificate signed by it.
func newTestPKI(t *testing.T, name string) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wstunnel-double test CA " + name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "relay.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost", "relay.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "cert.pem"),
		keyFile:  filepath.Join(dir, "key.pem"),
	}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", der)
	writePEM(t, p.keyFile, "PRIVATE KEY", keyDER)
	return p
}

// ---- goroutine accounting -------------------------------------------------------------

// goroutineBaseline returns a function that fails the test if goroutines started after
// this call are still running a few seconds after everything was shut down.
func goroutineBaseline(t *testing.T) func() {
	t.Helper()
	base := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(8 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("goroutines leaked: %d running, %d at start\n%s", n, base, buf)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// ---- UDP echo --------------------------------------------------------------------------

// startEcho runs a UDP echo service on 127.0.0.1 (replies "echo:"+payload).
func startEcho(t *testing.T) (netip.AddrPort, func()) {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, a, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(append([]byte("echo:"), buf[:n]...), a)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = pc.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), stop
}

// udpExchange sends payload from conn to dst and waits for one reply.
func udpExchange(conn *net.UDPConn, dst netip.AddrPort, payload string, wait time.Duration) (string, error) {
	if _, err := conn.WriteToUDPAddrPort([]byte(payload), dst); err != nil {
		return "", err
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, _, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// udpExchangeRetry retries (the first datagram may be sent while the WebSocket opens).
func udpExchangeRetry(t *testing.T, conn *net.UDPConn, dst netip.AddrPort, payload string) string {
	t.Helper()
	var lastErr error
	for i := 0; i < 20; i++ {
		got, err := udpExchange(conn, dst, payload, 500*time.Millisecond)
		if err == nil {
			return got
		}
		lastErr = err
	}
	t.Fatalf("no reply for %q: %v", payload, lastErr)
	return ""
}

func newLocalUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ---- in-process server / client -------------------------------------------------------

type testLogWriter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *testLogWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

type runningServer struct {
	s      *server
	addr   netip.AddrPort
	stop   func()
	logs   *testLogWriter
	errRun error
}

func startServer(t *testing.T, pki testPKI, restrictTo []string, prefixes []string) *runningServer {
	t.Helper()
	logs := &testLogWriter{}
	cfg := serverConfig{
		scheme:    "wss",
		bindHost:  "127.0.0.1",
		bindPort:  0,
		certFile:  pki.certFile,
		keyFile:   pki.keyFile,
		prefixes:  prefixes,
		pingEvery: 30 * time.Second,
		log:       newLogger(logs, lvlDebug),
	}
	if restrictTo != nil {
		cfg.restrictTo = []allowRule{}
		for _, r := range restrictTo {
			rule, err := parseRestrictTo(r)
			if err != nil {
				t.Fatal(err)
			}
			cfg.restrictTo = append(cfg.restrictTo, rule)
		}
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningServer{s: s, addr: s.Addr().(*net.TCPAddr).AddrPort(), logs: logs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rs.errRun = s.Serve(ctx)
	}()
	var once sync.Once
	rs.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("server did not stop")
			}
		})
	}
	t.Cleanup(rs.stop)
	return rs
}

type runningClient struct {
	c    *client
	addr netip.AddrPort
	stop func()
	logs *testLogWriter
}

func startClient(t *testing.T, cfg clientConfig) *runningClient {
	t.Helper()
	logs := &testLogWriter{}
	cfg.log = newLogger(logs, lvlDebug)
	if cfg.pingEvery == 0 {
		cfg.pingEvery = 30 * time.Second
	}
	if cfg.scheme == "" {
		cfg.scheme = "wss"
	}
	c, err := newClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	rc := &runningClient{c: c, addr: c.Addr().(*net.UDPAddr).AddrPort(), logs: logs}
	var once sync.Once
	rc.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("client did not stop")
			}
		})
	}
	t.Cleanup(rc.stop)
	return rc
}

func mustHost(t *testing.T, s string) host {
	t.Helper()
	h, err := parseHost(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ---- raw upgrade requests, as an e2e test would craft them -----------------------------

// rawUpgrade opens a TLS connection (no verification) and sends a WebSocket upgrade request
// for path with Sec-WebSocket-Protocol "v1, authorization.bearer.<jwt>". It returns the
// response, the buffered reader positioned after the headers, and the connection.
func rawUpgrade(t *testing.T, addr netip.AddrPort, path, jwt string) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr.String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v1, authorization.bearer.%s\r\n\r\n",
		path, addr, base64.StdEncoding.EncodeToString(key[:]), jwt)
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	return resp, br, conn
}

// udpJWT builds a token like the real client's (any signature is accepted by the server).
func udpJWT(r string, rp uint16) string {
	return encodeTunnelJWT(tunnelClaims{ID: newUUIDv7(), P: tunnelProto{name: "Udp"}, R: r, RP: rp})
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
