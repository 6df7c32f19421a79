// LAB-ONLY STAND-IN for pulumi-resource-command 1.2.1, used only because the real provider cannot be
// built in the wg-relay lab (see provider.go); never used for a real deployment.

package commandprov

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/retry"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

const sshAgentSocketEnvVar = "SSH_AUTH_SOCK"

const (
	dialErrorDefault   = 10
	dialErrorUnlimited = -1
)

// connectionBase mirrors the real remote.connectionBase.
type connectionBase struct {
	User               *string
	Password           *string
	Host               *string
	Port               *float64
	PrivateKey         *string
	PrivateKeyPassword *string
	AgentSocketPath    *string
	HostKey            *string
	DialErrorLimit     *int
	PerDialTimeout     *int
}

// Connection mirrors the real remote.Connection.
type Connection struct {
	connectionBase
	Proxy *connectionBase
}

// parseConnection reads the (known) connection input. Missing defaults are filled in as Check
// would (CopyToRemote's Check does not fill them, but the SDK always sends them).
func parseConnection(pm resource.PropertyMap) (*Connection, error) {
	v, ok := pm["connection"]
	for ok && v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !ok || !v.IsObject() {
		return nil, fmt.Errorf("missing the connection input")
	}
	obj := withConnectionDefaults(v, false).ObjectValue()
	c := &Connection{connectionBase: parseBase(obj)}
	if c.Host == nil {
		return nil, fmt.Errorf("connection: missing host")
	}
	if pv, ok := obj["proxy"]; ok {
		for pv.IsSecret() {
			pv = pv.SecretValue().Element
		}
		if pv.IsObject() {
			b := parseBase(pv.ObjectValue())
			if b.Host == nil {
				return nil, fmt.Errorf("connection: proxy: missing host")
			}
			c.Proxy = &b
		}
	}
	return c, nil
}

func parseBase(obj resource.PropertyMap) connectionBase {
	num := func(k string) *float64 {
		v, ok := obj[resource.PropertyKey(k)]
		for ok && v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !ok || !v.IsNumber() {
			return nil
		}
		n := v.NumberValue()
		return &n
	}
	integer := func(k string) *int {
		if n := num(k); n != nil {
			i := int(*n)
			return &i
		}
		return nil
	}
	return connectionBase{
		User:               strPtr(obj, "user"),
		Password:           strPtr(obj, "password"),
		Host:               strPtr(obj, "host"),
		Port:               num("port"),
		PrivateKey:         strPtr(obj, "privateKey"),
		PrivateKeyPassword: strPtr(obj, "privateKeyPassword"),
		AgentSocketPath:    strPtr(obj, "agentSocketPath"),
		HostKey:            strPtr(obj, "hostKey"),
		DialErrorLimit:     integer("dialErrorLimit"),
		PerDialTimeout:     integer("perDialTimeout"),
	}
}

func (con *connectionBase) user() string {
	if con.User == nil {
		return "root"
	}
	return *con.User
}

func (con *connectionBase) port() int {
	if con.Port == nil {
		return 22
	}
	return int(*con.Port)
}

func (con *connectionBase) endpoint() string {
	return net.JoinHostPort(*con.Host, fmt.Sprintf("%d", con.port()))
}

// SSHConfig mirrors the real connectionBase.SShConfig: private key (with its passphrase) first,
// then password and keyboard-interactive with the password, then the SSH agent at
// agentSocketPath or $SSH_AUTH_SOCK (an agent socket that cannot be dialled is an error);
// Timeout = perDialTimeout seconds (0: none). The host key is ignored unless hostKey is set;
// then it is parsed as an authorized_keys line ("ssh-ed25519 AAAA...") and only that key is
// accepted.
func (con *connectionBase) SSHConfig() (*ssh.ClientConfig, error) {
	timeout := 15
	if con.PerDialTimeout != nil {
		timeout = *con.PerDialTimeout
	}
	config := &ssh.ClientConfig{
		User:            con.user(),
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         time.Second * time.Duration(timeout),
	}
	if con.HostKey != nil {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*con.HostKey))
		if err != nil {
			return nil, fmt.Errorf("failed to parse host key: %w", err)
		}
		config.HostKeyCallback = ssh.FixedHostKey(key)
	}
	if con.PrivateKey != nil {
		var signer ssh.Signer
		var err error
		if con.PrivateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*con.PrivateKey), []byte(*con.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*con.PrivateKey))
		}
		if err != nil {
			return nil, err
		}
		config.Auth = append(config.Auth, ssh.PublicKeys(signer))
	}
	if con.Password != nil {
		password := *con.Password
		config.Auth = append(config.Auth, ssh.Password(password))
		config.Auth = append(config.Auth, ssh.KeyboardInteractive(
			func(user, instruction string, questions []string, echos []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range questions {
					answers[i] = password
				}
				return answers, nil
			}))
	}
	var sshAgentSocketPath *string
	if con.AgentSocketPath != nil {
		sshAgentSocketPath = con.AgentSocketPath
	}
	if envAgentSocketPath := os.Getenv(sshAgentSocketEnvVar); sshAgentSocketPath == nil && envAgentSocketPath != "" {
		sshAgentSocketPath = &envAgentSocketPath
	}
	if sshAgentSocketPath != nil {
		conn, err := net.Dial("unix", *sshAgentSocketPath)
		if err != nil {
			return nil, err
		}
		config.Auth = append(config.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	}
	return config, nil
}

func (con *connectionBase) getDialErrorLimit() int {
	if con.DialErrorLimit == nil {
		return dialErrorDefault
	}
	return *con.DialErrorLimit
}

func reachedDialingErrorLimit(dials, dialErrorLimit int) bool {
	return dialErrorLimit > dialErrorUnlimited && dials > dialErrorLimit
}

// dialWithRetry mirrors the real dialWithRetry: the SDK's retry.Until with its default backoff
// (100 ms, x1.5, at most 5 s), a status message "<msg> <n>/<limit> failed: retrying" after each
// failure, and "after <try> failed attempts: <err>" once more than maxAttempts dials failed
// (-1: unlimited).
func dialWithRetry[T any](ctx context.Context, log func(string), msg string, maxAttempts int, f func() (T, error)) (T, error) {
	var userError error
	ok, data, err := retry.Until(ctx, retry.Acceptor{
		Accept: func(try int, _ time.Duration) (bool, any, error) {
			var result T
			result, userError = f()
			if userError == nil {
				return true, result, nil
			}
			dials := try + 1
			if reachedDialingErrorLimit(dials, maxAttempts) {
				return true, nil, fmt.Errorf("after %d failed attempts: %w", try, userError)
			}
			limit := fmt.Sprintf("%d", maxAttempts)
			if maxAttempts == -1 {
				limit = "inf"
			}
			log(fmt.Sprintf("%s %d/%s failed: retrying", msg, dials, limit))
			return false, nil, nil
		},
	})
	if ok && err == nil {
		return data.(T), nil
	}
	var t T
	if err == nil {
		err = ctx.Err()
	}
	return t, err
}

// Dial mirrors the real Connection.Dial: a direct dial with retries, or with a proxy: dial the
// proxy (its own dialErrorLimit), then proxyClient.Dial("tcp", host:port) and
// ssh.NewClientConn over that connection, each step retried and its error prefixed "proxy: ".
// The returned closer also closes the proxy client.
func (p *Provider) dial(ctx context.Context, urn resource.URN, con *Connection) (*ssh.Client, func(), error) {
	status := func(msg string) { p.logf(ctx, diag.Info, urn, true, "%s", msg) }
	config, err := con.SSHConfig()
	if err != nil {
		return nil, nil, err
	}
	endpoint := con.endpoint()
	tries := con.getDialErrorLimit()
	if con.Proxy == nil {
		client, err := dialWithRetry(ctx, status, "Dial", tries, func() (*ssh.Client, error) {
			return ssh.Dial("tcp", endpoint, config)
		})
		if err != nil {
			return nil, nil, err
		}
		return client, func() { client.Close() }, nil
	}

	proxyConfig, err := con.Proxy.SSHConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	proxyClient, err := dialWithRetry(ctx, status, "Dial proxy", con.Proxy.getDialErrorLimit(), func() (*ssh.Client, error) {
		return ssh.Dial("tcp", con.Proxy.endpoint(), proxyConfig)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	conn, err := dialWithRetry(ctx, status, "Dial from proxy", tries, func() (net.Conn, error) {
		return proxyClient.Dial("tcp", endpoint)
	})
	if err != nil {
		proxyClient.Close()
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	var channels <-chan ssh.NewChannel
	var reqs <-chan *ssh.Request
	sshConn, err := dialWithRetry(ctx, status, "Dial", tries, func() (ssh.Conn, error) {
		c, ch, r, err := ssh.NewClientConn(conn, endpoint, config)
		channels, reqs = ch, r
		return c, err
	})
	if err != nil {
		proxyClient.Close()
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	client := ssh.NewClient(sshConn, channels, reqs)
	return client, func() { client.Close(); proxyClient.Close() }, nil
}
