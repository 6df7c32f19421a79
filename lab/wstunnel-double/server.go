package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	stdlog "log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// allowRule is one --restrict-to DEST:PORT entry, as RestrictionsRules::from_path_prefix
// builds it: an IP literal becomes a /32 (/128) CIDR with an empty host regex, anything
// else becomes the exact regex ^DEST$ with no CIDR. So the literal "127.0.0.1" only admits
// a request whose "r" parses to that IP, and "localhost" only the domain "localhost".
type allowRule struct {
	ip     netip.Addr // valid for IP entries
	domain string     // for name entries (compared case-sensitively, like the regex)
	port   uint16
}

func parseRestrictTo(v string) (allowRule, error) {
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return allowRule{}, errors.New("Invalid restrict-to format")
	}
	h := strings.Trim(v[:i], "[]")
	port, err := strconv.ParseUint(v[i+1:], 10, 16)
	if err != nil {
		return allowRule{}, errors.New("Invalid restrict-to port format")
	}
	if ip, ok := parseStrictIP(h); ok {
		return allowRule{ip: ip, port: uint16(port)}, nil
	}
	return allowRule{domain: h, port: uint16(port)}, nil
}

type serverConfig struct {
	scheme     string // "wss" or "ws"
	bindHost   string // as written in the URL (IP literal or name)
	bindPort   uint16
	certFile   string
	keyFile    string
	restrictTo []allowRule // nil: no restriction
	prefixes   []string    // nil: any prefix
	pingEvery  time.Duration
	log        *Logger
}

type server struct {
	cfg      serverConfig
	ln       net.Listener
	httpSrv  *http.Server
	certs    *certReloader
	log      spanLogger
	mu       sync.Mutex
	closed   bool
	conns    map[net.Conn]struct{} // hijacked tunnel connections
	wg       sync.WaitGroup
	tunnels  int // accepted tunnels so far (for tests)
	shutdown chan struct{}
}

// newServer loads the TLS material and binds the listener (errors here are start-up errors).
func newServer(cfg serverConfig) (*server, error) {
	s := &server{cfg: cfg, conns: map[net.Conn]struct{}{}, shutdown: make(chan struct{})}
	s.log = cfg.log.with("", "wstunnel::tunnel::server")
	var tlsCfg *tls.Config
	if cfg.scheme == "wss" {
		cr, err := newCertReloader(cfg.certFile, cfg.keyFile, s.log)
		if err != nil {
			return nil, err
		}
		s.certs = cr
		tlsCfg = &tls.Config{
			GetCertificate: cr.get,
			// The real server offers h2 too; the double speaks HTTP/1.1 (WebSocket) only.
			NextProtos: []string{"http/1.1"},
			MinVersion: tls.VersionTLS12,
		}
	}
	network := "tcp"
	if ip, err := netip.ParseAddr(cfg.bindHost); err == nil {
		if ip.Is4() {
			network = "tcp4" // tokio binds 0.0.0.0 as IPv4 only
		} else {
			network = "tcp6"
		}
	}
	addr := net.JoinHostPort(cfg.bindHost, strconv.Itoa(int(cfg.bindPort)))
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("Failed to bind to socket on %s: %w", addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.ln = ln
	s.httpSrv = &http.Server{
		Handler:      s,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, // no HTTP/2
		ErrorLog:     nil,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.log.child("cnx{peer=" + c.RemoteAddr().String() + "}").Infof("Accepting connection")
			}
		},
	}
	s.httpSrv.ErrorLog = newStdLogAdapter(s.log)
	return s, nil
}

func (s *server) Addr() net.Addr { return s.ln.Addr() }

func (s *server) tunnelCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tunnels
}

// Serve runs until ctx is done, then closes every connection and waits for all tunnels.
func (s *server) Serve(ctx context.Context) error {
	rules := "Allow All"
	if s.cfg.prefixes != nil {
		rules = fmt.Sprintf("%d path prefix rule(s) (values not logged)", len(s.cfg.prefixes))
	}
	s.log.Infof("Starting wstunnel server v%s (lab test double) with restrictions: %s, restrict-to: %d rule(s)", mimickedVersion, rules, len(s.cfg.restrictTo))
	s.log.Infof("Starting wstunnel server listening on %s", s.ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- s.httpSrv.Serve(s.ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.mu.Lock()
	s.closed = true
	close(s.shutdown)
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.httpSrv.Close()
	if err == nil {
		err = <-errc
	}
	s.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.tunnels++
	return true
}

func (s *server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

func badRequest(w http.ResponseWriter) {
	w.Header()["Content-Type"] = nil // hyper sends none
	w.Header().Set("Content-Length", "15")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte("Invalid request"))
}

// extractPathPrefix is utils.rs extract_path_prefix: "/<prefix>/...events".
func extractPathPrefix(path string) (string, error) {
	if !strings.HasPrefix(path, "/") {
		return "", errors.New("bad path prefix in upgrade request")
	}
	l, r, ok := strings.Cut(path[1:], "/")
	if !ok || !strings.HasSuffix(r, "events") {
		return "", errors.New("bad upgrade request")
	}
	return l, nil
}

// requestPath returns the raw (not percent-decoded) path of the request target, like
// hyper's req.uri().path().
func requestPath(r *http.Request) string {
	uri := r.RequestURI
	if strings.HasPrefix(uri, "/") {
		if i := strings.IndexByte(uri, '?'); i >= 0 {
			return uri[:i]
		}
		return uri
	}
	if r.URL != nil {
		return r.URL.EscapedPath()
	}
	return ""
}

// extractJWT is utils.rs extract_tunnel_info: the text after "authorization.bearer." in the
// first Sec-WebSocket-Protocol header, else the whole first Cookie header.
func extractJWT(h http.Header) string {
	if v := h.Values("Sec-WebSocket-Protocol"); len(v) > 0 {
		if _, tok, ok := strings.Cut(v[0], jwtHeaderPrefix); ok {
			return tok
		}
	}
	if v := h.Values("Cookie"); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peer := r.RemoteAddr
	log := s.log.child("cnx{peer=" + peer + "}:tunnel")
	uriForLog := redactPath(r.RequestURI)

	if !headerHasToken(r.Header.Values("Connection"), "upgrade") || !headerHasToken(r.Header.Values("Upgrade"), "websocket") {
		if r.ProtoMajor == 2 {
			log.Errorf("Invalid protocol version request, got HTTP/2 while expecting websocket http1 upgrade (HTTP/2 transport is not implemented by the lab double)")
		}
		log.Warnf("Rejecting connection with bad upgrade request: %s", uriForLog)
		badRequest(w)
		return
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if ip, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
			log.Infof("Request X-Forwarded-For: %s", ip)
		}
	}
	prefix, err := extractPathPrefix(requestPath(r))
	if err != nil {
		log.Warnf("Rejecting connection with %v: %s", err, uriForLog)
		badRequest(w)
		return
	}
	claims, err := decodeTunnelJWT(extractJWT(r.Header))
	if err != nil {
		log.Warnf("Rejecting connection with bad tunnel info (error while decoding jwt for tunnel info header): %v", err)
		badRequest(w)
		return
	}
	log = s.log.child(fmt.Sprintf("cnx{peer=%s}:tunnel{id=%s remote=%s:%d}", peer, claims.ID, claims.R, claims.RP))
	h, err := parseHost(claims.R)
	if err != nil {
		log.Warnf("Rejecting connection with bad tunnel info: %v %s", err, uriForLog)
		badRequest(w)
		return
	}
	remoteDbg := fmt.Sprintf("RemoteAddr { protocol: %s, host: %s, port: %d }", claims.P.Debug(), h.Debug(), claims.RP)
	ruleName, ok := s.validate(prefix, claims.P, h, claims.RP)
	if !ok {
		log.Warnf("Rejecting connection with not allowed destination: %s", remoteDbg)
		badRequest(w)
		return
	}
	log.Infof("Tunnel accepted due to matched restriction: %s", ruleName)

	local, err := s.execTunnel(claims.P, h, claims.RP)
	if err != nil {
		log.Warnf("Rejecting connection with bad upgrade request: %v %s", err, uriForLog)
		badRequest(w)
		return
	}
	log.Infof("connected to %s %s:%d", claims.P.Debug(), h.String(), claims.RP)

	// fastwebsockets::upgrade::upgrade
	if len(r.Header.Values("Sec-WebSocket-Key")) == 0 {
		_ = local.Close()
		log.Warnf("Rejecting connection with bad upgrade request: Sec-Websocket-Key header is missing %s", uriForLog)
		badRequest(w)
		return
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) == 0 || v[0] != "13" {
		_ = local.Close()
		log.Warnf("Rejecting connection with bad upgrade request: Sec-Websocket-Version must be 13 %s", uriForLog)
		badRequest(w)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = local.Close()
		badRequest(w)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		_ = local.Close()
		log.Errorf("Error during http upgrade request: %v", err)
		return
	}
	if !s.track(conn) {
		_ = local.Close()
		_ = conn.Close()
		return
	}
	defer s.untrack(conn)
	_ = conn.SetDeadline(time.Time{})
	resp := "HTTP/1.1 101 Switching Protocols\r\n" +
		"connection: upgrade\r\n" +
		"upgrade: websocket\r\n" +
		"sec-websocket-accept: " + wsAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n" +
		"sec-websocket-protocol: v1\r\n" +
		"date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n\r\n"
	if _, err := brw.Writer.WriteString(resp); err != nil {
		_ = local.Close()
		_ = conn.Close()
		return
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = local.Close()
		_ = conn.Close()
		return
	}
	ws := newWSConn(conn, brw.Reader, false)
	pumpTunnel(ws, local, s.cfg.pingEvery, log)
}

// validate is utils.rs validate_tunnel for the rules that --restrict-to and
// --restrict-http-upgrade-path-prefix build. It returns the rule name to log (never the
// prefix value itself).
func (s *server) validate(prefix string, p tunnelProto, h host, port uint16) (string, bool) {
	name := "Allow All"
	if s.cfg.prefixes != nil {
		found := false
		for _, want := range s.cfg.prefixes {
			if prefix == want {
				found = true
				break
			}
		}
		if !found {
			return "", false
		}
		name = "Allow path prefix <redacted>"
	}
	if s.cfg.restrictTo == nil {
		return name, true // AllowTunnel + AllowReverseTunnel with everything open
	}
	if p.isReverse() {
		return "", false // only AllowConfig::Tunnel rules exist
	}
	for _, rule := range s.cfg.restrictTo {
		if rule.port != port {
			continue
		}
		if rule.ip.IsValid() {
			if h.kind != hostDomain && h.ip == rule.ip {
				return name, true
			}
		} else if h.kind == hostDomain && h.domain == rule.domain {
			return name, true
		}
	}
	return "", false
}

// execTunnel opens the destination side (server.rs exec_tunnel).
func (s *server) execTunnel(p tunnelProto, h host, port uint16) (localSide, error) {
	switch p.name {
	case "Udp":
		timeout := 10 * time.Second
		if p.timeout != nil {
			timeout = *p.timeout
		}
		network := "udp"
		switch h.kind {
		case hostIPv4:
			network = "udp4"
		case hostIPv6:
			network = "udp6"
		}
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial(network, h.dialAddr(port))
		if err != nil {
			return nil, fmt.Errorf("Cannot connect to udp peer %s:%d reason %v", h, port, err)
		}
		return &connLocal{c: c}, nil
	case "Tcp":
		if p.proxyProtocol {
			return nil, errors.New("proxy_protocol is not implemented by the lab double")
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", h.dialAddr(port))
		if err != nil {
			return nil, fmt.Errorf("Cannot connect to tcp endpoint %s:%d reason %v", h, port, err)
		}
		return &connLocal{c: c, stream: true}, nil
	default:
		return nil, errors.New("Invalid upgrade request (protocol not served by the lab double)")
	}
}

// connLocal adapts a connected UDP (datagram) or TCP (stream) socket.
type connLocal struct {
	c      net.Conn
	stream bool
}

func (l *connLocal) Read(buf []byte) (int, error) { return l.c.Read(buf) }
func (l *connLocal) Write(p []byte) error {
	_, err := l.c.Write(p)
	return err
}
func (l *connLocal) Close() error { return l.c.Close() }

// certReloader serves the certificate/key files and reloads them when they change, like
// the real server's TlsReloader. Without files it serves a self-signed certificate (the
// real server embeds one).
type certReloader struct {
	certFile, keyFile string
	log               spanLogger
	mu                sync.Mutex
	cert              *tls.Certificate
	certMod, keyMod   time.Time
	lastCheck         time.Time
}

func newCertReloader(certFile, keyFile string, log spanLogger) (*certReloader, error) {
	cr := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if certFile == "" && keyFile == "" {
		c, err := selfSigned()
		if err != nil {
			return nil, err
		}
		cr.cert = c
		return cr, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("Cannot load tls certificate: both --tls-certificate and --tls-private-key are needed by the lab double")
	}
	if err := cr.load(); err != nil {
		return nil, fmt.Errorf("Cannot load tls certificate: %w", err)
	}
	return cr, nil
}

func modTime(p string) time.Time {
	st, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

func (cr *certReloader) load() error {
	cm, km := modTime(cr.certFile), modTime(cr.keyFile)
	c, err := tls.LoadX509KeyPair(cr.certFile, cr.keyFile)
	if err != nil {
		return err
	}
	cr.cert, cr.certMod, cr.keyMod = &c, cm, km
	return nil
}

func (cr *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.certFile != "" && time.Since(cr.lastCheck) > 500*time.Millisecond {
		cr.lastCheck = time.Now()
		if !modTime(cr.certFile).Equal(cr.certMod) || !modTime(cr.keyFile).Equal(cr.keyMod) {
			old := *cr.cert
			if err := cr.load(); err != nil {
				cr.log.Errorf("Cannot reload TLS certificate %v", err)
				cr.cert = &old
			} else {
				cr.log.Infof("TLS certificate reloaded")
			}
		}
	}
	return cr.cert, nil
}

func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "wstunnel-double self-signed"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// stdLogAdapter routes net/http's internal error log (TLS handshake errors…) to our logger.
type stdLogAdapter struct{ log spanLogger }

func (a stdLogAdapter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		a.log.Errorf("error while accepting TLS connection %s", strings.TrimPrefix(msg, "http: "))
	} else {
		a.log.Warnf("%s", msg)
	}
	return len(p), nil
}

func newStdLogAdapter(l spanLogger) *stdlog.Logger { return stdlog.New(stdLogAdapter{l}, "", 0) }
