package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the built binary the way the lab hosts run it (static, CGO_ENABLED=0),
// with the exact command lines the program renders (components/render/wstunnel.ts).

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func doubleBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		binDir, binErr = os.MkdirTemp("", "wstunnel-double-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "wstunnel")
		cmd := exec.Command(goBin, "build", "-trimpath", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// syncBuffer is a goroutine-safe bytes.Buffer for a child's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

// startProc starts the binary and registers a cleanup that kills it and waits for it, so
// no child outlives the test.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(doubleBinary(t), args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("process %v ignored SIGTERM", p.cmd.Args)
	}
	// the process is gone: signal 0 must fail
	if err := p.cmd.Process.Signal(syscall.Signal(0)); err == nil {
		t.Errorf("process %d still exists", p.cmd.Process.Pid)
	}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX", "WSTUNNEL_RESTRICT_HTTP_UPGRADE_PATH_PREFIX", "RUST_LOG", "SSL_CERT_FILE", "SSL_CERT_DIR":
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func waitTCP(t *testing.T, addr string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("server exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not listening on %s\n%s", addr, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

func TestBinaryVersionAndUsageErrors(t *testing.T) {
	bin := doubleBinary(t)
	for _, a := range []string{"--version", "-V"} {
		out, err := exec.Command(bin, a).Output()
		if err != nil || string(out) != versionLine+"\n" {
			t.Fatalf("%s: %q %v", a, out, err)
		}
	}
	for _, args := range [][]string{
		{"server", "--bogus", "wss://127.0.0.1:1"},
		{"client", "--bogus", "wss://127.0.0.1:1"},
		{"tunnel"},
		{},
	} {
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := exitCode(err); code != 2 {
			t.Fatalf("%q: exit %d, want 2", args, code)
		}
	}
	out, err := exec.Command(bin, "server", "--help").Output()
	if err != nil || !strings.Contains(string(out), "--restrict-http-upgrade-path-prefix") {
		t.Fatalf("%q %v", out, err)
	}
}

func TestBinaryEndToEnd(t *testing.T) {
	const prefix = "e2e-Pr3fix-value"
	pki := newTestPKI(t, "proc")
	echo, _ := startEcho(t)
	sport := freeTCPPort(t)
	cport := freeUDPPort(t)
	srvAddr := "127.0.0.1:" + strconv.Itoa(sport)

	// exactly the server command line the program renders (restrict-to the echo service)
	srv := startProc(t, []string{"WSTUNNEL_RESTRICT_HTTP_UPGRADE_PATH_PREFIX=" + prefix},
		"server", "--tls-certificate", pki.certFile, "--tls-private-key", pki.keyFile,
		"--restrict-to", echo.String(), "wss://"+srvAddr)
	waitTCP(t, srvAddr, srv)

	// exactly the client command line, by DNS name, verifying against the test CA
	cli := startProc(t, []string{"WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX=" + prefix, "SSL_CERT_FILE=" + pki.caFile, "SSL_CERT_DIR="},
		"client", "--local-to-remote", fmt.Sprintf("udp://127.0.0.1:%d:127.0.0.1:%d?timeout_sec=0", cport, echo.Port()),
		"--tls-verify-certificate", "wss://localhost:"+strconv.Itoa(sport))

	local := newLocalUDP(t)
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(cport))
	if got := udpExchangeRetry(t, local, dst, "through-processes"); got != "echo:through-processes" {
		t.Fatalf("got %q", got)
	}

	// a second server on the same port cannot start: exit 101 like the real program's panic
	dup := exec.Command(doubleBinary(t), "server", "--tls-certificate", pki.certFile, "--tls-private-key", pki.keyFile, "wss://"+srvAddr)
	dup.Env = cleanEnv()
	if code := exitCode(dup.Run()); code != 101 {
		t.Fatalf("duplicate bind: exit %d, want 101", code)
	}

	cli.stop(t)
	srv.stop(t)
	for name, p := range map[string]*proc{"server": srv, "client": cli} {
		logs := p.stderr.String()
		if strings.Contains(logs, prefix) {
			t.Fatalf("%s logged the path prefix:\n%s", name, logs)
		}
		if name == "server" && !strings.Contains(logs, "Tunnel accepted due to matched restriction: Allow path prefix <redacted>") {
			t.Fatalf("server log:\n%s", logs)
		}
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !(ws.Signaled() || ws.Exited()) {
			t.Fatalf("%s: unexpected state %v", name, p.cmd.ProcessState)
		}
	}
}
