package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

type clientConfig struct {
	bind       netip.AddrPort // local UDP listen address
	dest       host           // remote host asked of the server ("r")
	destPort   uint16         // ("rp")
	udpTimeout time.Duration  // idle timeout of a local flow; 0 = none
	scheme     string         // "wss" or "ws"
	server     host
	serverPort uint16
	verify     bool   // --tls-verify-certificate
	prefix     string // --http-upgrade-path-prefix
	pingEvery  time.Duration
	// how long to keep retrying the TCP/TLS connection for one flow (bb8 pool
	// connection_timeout = --connection-retry-max-backoff, 5m by default)
	connectRetryMax time.Duration
	log             *Logger
}

type client struct {
	cfg    clientConfig
	sock   *net.UDPConn
	log    spanLogger
	roots  rootsCache
	mu     sync.Mutex
	closed bool
	flows  map[netip.AddrPort]*udpFlow
	wg     sync.WaitGroup
	opened int // websockets opened so far (for tests)
}

func newClient(cfg clientConfig) (*client, error) {
	network := "udp4"
	if cfg.bind.Addr().Is6() {
		network = "udp6"
	}
	sock, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(cfg.bind))
	if err != nil {
		return nil, fmt.Errorf("Cannot create UDP server %s: %w", cfg.bind, err)
	}
	for _, mib := range []int{64, 32, 16, 8, 4, 2, 1} {
		if sock.SetReadBuffer(mib<<20) == nil {
			break
		}
	}
	for _, mib := range []int{64, 32, 16, 8, 4, 2, 1} {
		if sock.SetWriteBuffer(mib<<20) == nil {
			break
		}
	}
	return &client{
		cfg:   cfg,
		sock:  sock,
		log:   cfg.log.with("", "wstunnel::tunnel::client"),
		flows: map[netip.AddrPort]*udpFlow{},
	}, nil
}

func (c *client) Addr() net.Addr { return c.sock.LocalAddr() }

func (c *client) openedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened
}

// Run serves the UDP listener until ctx is done, then tears every flow down and waits.
func (c *client) Run(ctx context.Context) error {
	c.log.Infof("Starting wstunnel client v%s (lab test double)", mimickedVersion)
	c.log.withTarget("wstunnel::protocols::udp::server").Infof("Starting UDP server listening cnx on %s with cnx timeout of %ds", c.sock.LocalAddr(), int(c.cfg.udpTimeout/time.Second))

	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		_ = c.sock.Close()
	}()

	var runErr error
	buf := make([]byte, maxPacketLength)
	for {
		n, peer, err := c.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if !closed {
				c.log.Errorf("Cannot read from UDP server. Closing server: %v", err)
				runErr = err
			}
			break
		}
		if !c.cfg.bind.Addr().Is6() {
			peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
		}
		c.dispatch(peer, buf[:n])
	}
	close(stop)

	c.mu.Lock()
	c.closed = true
	flows := make([]*udpFlow, 0, len(c.flows))
	for _, f := range c.flows {
		flows = append(flows, f)
	}
	c.mu.Unlock()
	for _, f := range flows {
		f.shutdown()
	}
	c.wg.Wait()
	return runErr
}

func (c *client) dispatch(peer netip.AddrPort, data []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	f := c.flows[peer]
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &udpFlow{c: c, peer: peer, ch: make(chan []byte, 1024), done: make(chan struct{}), ctx: ctx, cancel: cancel}
		c.flows[peer] = f
		c.wg.Add(1)
		c.log.withTarget("wstunnel::protocols::udp::server").Infof("New UDP connection from %s", peer)
		go c.runFlow(f)
	}
	c.mu.Unlock()
	d := make([]byte, len(data))
	copy(d, data)
	select {
	case f.ch <- d:
	default:
		c.log.Debugf("dropping a datagram from %s: flow queue full", peer)
	}
}

func (c *client) runFlow(f *udpFlow) {
	defer c.wg.Done()
	defer f.Close()
	id := newUUIDv7()
	log := c.log.child(fmt.Sprintf("tunnel{id=%s remote=%s:%d}", id, c.cfg.dest, c.cfg.destPort))
	ws, err := c.connect(f.ctx, id, log)
	if err != nil {
		if f.ctx.Err() == nil {
			log.Errorf("%v", err)
		}
		return
	}
	if !f.setWS(ws) {
		_ = ws.conn.Close()
		return
	}
	c.mu.Lock()
	c.opened++
	c.mu.Unlock()
	if c.cfg.udpTimeout > 0 {
		f.ticker = time.NewTicker(c.cfg.udpTimeout)
		defer f.ticker.Stop()
		f.tick = f.ticker.C
	}
	pumpTunnel(ws, f, c.cfg.pingEvery, log)
}

var errFlowClosed = errors.New("udp flow closed")

// udpFlow is one local UDP peer: its own WebSocket, like the real client's UdpStream.
type udpFlow struct {
	c      *client
	peer   netip.AddrPort
	ch     chan []byte
	done   chan struct{}
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc

	wsMu sync.Mutex
	ws   *wsConn

	ticker *time.Ticker
	tick   <-chan time.Time
	seen   bool // data read since the last watchdog tick
}

// Read is the local side of the tunnel: the next datagram from this peer. With a timeout
// it behaves like the real watchdog: at every tick, if nothing was read since the previous
// tick, the flow times out.
func (f *udpFlow) Read(buf []byte) (int, error) {
	for {
		select {
		case d := <-f.ch:
			f.seen = true
			return copy(buf, d), nil
		case <-f.done:
			return 0, errFlowClosed
		case <-f.tick:
			if !f.seen {
				return 0, fmt.Errorf("UDP stream timeout with %s", f.peer)
			}
			f.seen = false
		}
	}
}

func (f *udpFlow) Write(p []byte) error {
	_, err := f.c.sock.WriteToUDPAddrPort(p, f.peer)
	return err
}

// Close ends the flow and forgets it, so the next datagram from this peer opens a new
// WebSocket.
func (f *udpFlow) Close() error {
	f.once.Do(func() {
		close(f.done)
		f.cancel()
		f.c.mu.Lock()
		if f.c.flows[f.peer] == f {
			delete(f.c.flows, f.peer)
		}
		f.c.mu.Unlock()
	})
	return nil
}

func (f *udpFlow) setWS(ws *wsConn) bool {
	f.wsMu.Lock()
	defer f.wsMu.Unlock()
	select {
	case <-f.done:
		return false
	default:
	}
	f.ws = ws
	return true
}

// shutdown is used when the whole client stops: no close handshake wait.
func (f *udpFlow) shutdown() {
	_ = f.Close()
	f.wsMu.Lock()
	if f.ws != nil {
		_ = f.ws.conn.Close()
	}
	f.wsMu.Unlock()
}

// connect opens the TCP (+TLS) connection, retrying like the real connection pool, then
// does the WebSocket upgrade once.
func (c *client) connect(ctx context.Context, id string, log spanLogger) (*wsConn, error) {
	serverAddr := c.cfg.server.dialAddr(c.cfg.serverPort)
	conn, err := c.dialWithRetry(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("failed to get a connection to the server from the pool: %v", err)
	}
	ws, err := c.upgrade(ctx, conn, id, log)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("failed to do websocket handshake with the server %s: %v", serverAddr, err)
	}
	return ws, nil
}

func (c *client) dialWithRetry(ctx context.Context, log spanLogger) (net.Conn, error) {
	retryMax := c.cfg.connectRetryMax
	if retryMax <= 0 {
		retryMax = 5 * time.Minute
	}
	deadline := time.Now().Add(retryMax)
	backoff := 200 * time.Millisecond
	for {
		conn, err := c.dialOnce(ctx, log)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("timed out after %s: %v", retryMax, err)
		}
		log.Warnf("Cannot connect to the server %s: %v (retrying in %s)", c.cfg.server.dialAddr(c.cfg.serverPort), err, backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff *= 2
		if backoff > 5*time.Second {
			backoff = 5 * time.Second
		}
	}
}

func (c *client) dialOnce(ctx context.Context, log spanLogger) (net.Conn, error) {
	addr := c.cfg.server.dialAddr(c.cfg.serverPort)
	log.withTarget("wstunnel::protocols::tcp").Infof("Opening TCP connection to %s:%d", c.cfg.server, c.cfg.serverPort)
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if c.cfg.scheme != "wss" {
		return conn, nil
	}
	tcfg := &tls.Config{
		ServerName:         c.cfg.server.tlsName(),
		NextProtos:         []string{"http/1.1"},
		InsecureSkipVerify: !c.cfg.verify,
		MinVersion:         tls.VersionTLS12,
	}
	if c.cfg.verify {
		tcfg.RootCAs = c.roots.get(log)
	}
	tc := tls.Client(conn, tcfg)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return tc, nil
}

func validPrefix(p string) bool {
	for i := 0; i < len(p); i++ {
		b := p[i]
		if b <= 0x20 || b >= 0x7f || b == '#' {
			return false
		}
	}
	return true
}

func (c *client) hostHeader() string {
	def := uint16(443)
	if c.cfg.scheme == "ws" {
		def = 80
	}
	if c.cfg.serverPort == def {
		return c.cfg.server.String()
	}
	return c.cfg.server.String() + ":" + strconv.Itoa(int(c.cfg.serverPort))
}

// upgrade sends the request the real client sends (transport/websocket.rs):
//
//	GET /<prefix>/events HTTP/1.1
//	host: <server host>[:port]
//	upgrade: websocket
//	connection: upgrade
//	sec-websocket-key: <random>
//	sec-websocket-version: 13
//	sec-websocket-protocol: v1, authorization.bearer.<JWT>
func (c *client) upgrade(ctx context.Context, conn net.Conn, id string, log spanLogger) (*wsConn, error) {
	if !validPrefix(c.cfg.prefix) {
		return nil, errors.New("failed to build HTTP request to contact the server. Most likely path_prefix or http headers is not valid")
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	jwt := encodeTunnelJWT(tunnelClaims{
		ID: id,
		P:  udpProto(c.cfg.udpTimeout),
		R:  c.cfg.dest.String(),
		RP: c.cfg.destPort,
	})
	req := "GET /" + c.cfg.prefix + "/events HTTP/1.1\r\n" +
		"host: " + c.hostHeader() + "\r\n" +
		"upgrade: websocket\r\n" +
		"connection: upgrade\r\n" +
		"sec-websocket-key: " + base64.StdEncoding.EncodeToString(k[:]) + "\r\n" +
		"sec-websocket-version: 13\r\n" +
		"sec-websocket-protocol: v1, " + jwtHeaderPrefix + jwt + "\r\n\r\n"
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	stopWatch := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stopWatch()
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, fmt.Errorf("failed to send WebSocket upgrade request: %v", err)
	}
	br := bufio.NewReaderSize(conn, 32*1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, fmt.Errorf("failed to read the upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		detail := ""
		if len(body) > 0 {
			detail = ": " + string(body)
		}
		return nil, fmt.Errorf("WebSocket handshake rejected by server with status %s%s", resp.Status, detail)
	}
	if !headerHasToken(resp.Header.Values("Upgrade"), "websocket") {
		return nil, errors.New("Server responded with 101 Switching Protocols but missing or invalid Upgrade header")
	}
	if !headerHasToken(resp.Header.Values("Connection"), "upgrade") {
		return nil, errors.New("Server responded with 101 Switching Protocols but missing or invalid Connection header")
	}
	_ = conn.SetDeadline(time.Time{})
	log.Debugf("Server response: %s", resp.Status)
	return newWSConn(conn, br, true), nil
}

// rootsCache loads the system trust store the way Go does on Linux (SSL_CERT_FILE or the
// first existing well-known bundle, plus SSL_CERT_DIR or /etc/ssl/certs and
// /etc/pki/tls/certs), but reloads it when those files change, so a CA installed after
// the client started is picked up (the real client has a system CA reloader too).
type rootsCache struct {
	mu   sync.Mutex
	sig  string
	pool *x509.CertPool
}

var defaultCertFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

var defaultCertDirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}

func (r *rootsCache) get(log spanLogger) *x509.CertPool {
	files := defaultCertFiles
	if v := os.Getenv("SSL_CERT_FILE"); v != "" {
		files = []string{v}
	}
	dirs := defaultCertDirs
	if v, ok := os.LookupEnv("SSL_CERT_DIR"); ok {
		dirs = filepath.SplitList(v)
	}
	var sig strings.Builder
	for _, p := range append(append([]string{}, files...), dirs...) {
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&sig, "%s|%d|%d;", p, st.Size(), st.ModTime().UnixNano())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pool != nil && r.sig == sig.String() {
		return r.pool
	}
	pool := x509.NewCertPool()
	n := 0
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			if pool.AppendCertsFromPEM(data) {
				n++
			}
			break
		}
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if data, err := os.ReadFile(filepath.Join(d, e.Name())); err == nil {
				if pool.AppendCertsFromPEM(data) {
					n++
				}
			}
		}
	}
	if n == 0 {
		log.Warnf("no system root certificates found (SSL_CERT_FILE / SSL_CERT_DIR / %s)", defaultCertFiles[0])
	}
	r.sig, r.pool = sig.String(), pool
	return pool
}
