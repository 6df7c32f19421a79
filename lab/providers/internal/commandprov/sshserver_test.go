// Test helpers for the LAB-ONLY pulumi-command stand-in (built only because the real provider cannot
// be built in the wg-relay lab; never used for a real deployment): an
// in-process SSH server on 127.0.0.1 that runs exec requests with /bin/sh -c (stdin, env,
// exit status), serves the sftp subsystem and forwards direct-tcpip channels to loopback
// addresses only (so it can act as a bastion).
package commandprov_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// clientKey is the key every test server authorizes.
type clientKey struct {
	pem    string // OpenSSH private key
	public ssh.PublicKey
}

func newClientKey(t *testing.T) clientKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{pem: string(pem.EncodeToMemory(block)), public: signer.PublicKey()}
}

type serverOpts struct {
	acceptEnv bool   // accept "env" requests (OpenSSH's AcceptEnv); refused otherwise, like a default sshd
	password  string // also accept this password
}

type sshServer struct {
	t       *testing.T
	addr    string
	host    string
	port    int
	hostKey string // authorized_keys line of the host key

	mu       sync.Mutex
	execs    []string
	envs     []map[string]string
	sftps    int
	forwards []string
}

func newHostSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startSSHServer serves on a new loopback port.
func startSSHServer(t *testing.T, key clientKey, opts serverOpts) *sshServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveSSH(t, l, key, opts)
}

func serveSSH(t *testing.T, l net.Listener, key clientKey, opts serverOpts) *sshServer {
	hostSigner := newHostSigner(t)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if string(k.Marshal()) == string(key.public.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	if opts.password != "" {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == opts.password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	cfg.AddHostKey(hostSigner)
	host, portStr, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(portStr)
	s := &sshServer{t: t, addr: l.Addr().String(), host: host, port: port,
		hostKey: string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.handleConn(c, cfg, opts)
		}
	}()
	return s
}

func (s *sshServer) handleConn(c net.Conn, cfg *ssh.ServerConfig, opts serverOpts) {
	defer c.Close()
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, reqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go s.handleSession(ch, reqs, opts)
		case "direct-tcpip":
			go s.handleForward(nc)
		default:
			_ = nc.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
}

func (s *sshServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request, opts serverOpts) {
	defer ch.Close()
	env := map[string]string{}
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) != nil || !opts.acceptEnv {
				_ = req.Reply(false, nil)
				continue
			}
			env[kv.Name] = kv.Value
			_ = req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if ssh.Unmarshal(req.Payload, &p) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			s.mu.Lock()
			s.execs = append(s.execs, p.Command)
			envCopy := map[string]string{}
			for k, v := range env {
				envCopy[k] = v
			}
			s.envs = append(s.envs, envCopy)
			s.mu.Unlock()
			code := s.run(ch, p.Command, env)
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
			return
		case "subsystem":
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			s.mu.Lock()
			s.sftps++
			s.mu.Unlock()
			srv, err := sftp.NewServer(ch)
			if err == nil {
				_ = srv.Serve()
				srv.Close()
			}
			return
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

func (s *sshServer) run(ch ssh.Channel, command string, env map[string]string) int {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = ch
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		return 255
	}
}

// handleForward serves a direct-tcpip channel (ssh -J / proxyClient.Dial) to loopback only.
func (s *sshServer) handleForward(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	if ip := net.ParseIP(p.Host); ip == nil || !ip.IsLoopback() {
		_ = nc.Reject(ssh.Prohibited, "loopback only")
		return
	}
	target, err := net.Dial("tcp", net.JoinHostPort(p.Host, fmt.Sprint(p.Port)))
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		target.Close()
		return
	}
	s.mu.Lock()
	s.forwards = append(s.forwards, target.RemoteAddr().String())
	s.mu.Unlock()
	go ssh.DiscardRequests(reqs)
	go func() { _, _ = io.Copy(target, ch); target.(*net.TCPConn).CloseWrite() }()
	_, _ = io.Copy(ch, target)
	ch.Close()
	target.Close()
}

func (s *sshServer) execCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.execs)
}

func (s *sshServer) lastEnv() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.envs) == 0 {
		return nil
	}
	return s.envs[len(s.envs)-1]
}

func (s *sshServer) forwardCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.forwards)
}
