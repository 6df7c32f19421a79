package main

import (
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A small clap look-alike for the subset of the real command line the product uses.
// Flag names, short forms, env variables and defaults are those of wstunnel/src/config.rs
// (v10): --local-to-remote/-L, --tls-verify-certificate, --http-upgrade-path-prefix/-P
// (env WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX, default "v1"); --tls-certificate,
// --tls-private-key, --restrict-to, --restrict-http-upgrade-path-prefix/-r (env
// WSTUNNEL_RESTRICT_HTTP_UPGRADE_PATH_PREFIX, one value from env). Everything else is refused
// with exit status 2, like clap refuses an unknown argument.

type argSpec struct {
	long      string
	short     byte
	takes     bool // takes a value
	multi     bool // may repeat (ArgAction::Append)
	env       string
	def       string
	valueName string
	help      string
}

func (a argSpec) display() string {
	s := "--" + a.long
	if a.takes {
		s += " <" + a.valueName + ">"
	}
	return s
}

type cmdSpec struct {
	name    string
	about   string
	args    []argSpec
	posName string // "<ws[s]://0.0.0.0[:port]>"
	posHelp string
}

func (c *cmdSpec) usage() string {
	return "wstunnel " + c.name + " [OPTIONS] " + c.posName
}

var serverSpec = &cmdSpec{
	name:    "server",
	about:   "Start a wstunnel server (lab test double; websocket over TLS, udp tunnels)",
	posName: "<ws[s]://0.0.0.0[:port]>",
	posHelp: "Address of the wstunnel server to bind to. Example: With TLS wss://0.0.0.0:8080 or without ws://[::]:8080",
	args: []argSpec{
		{long: "restrict-to", takes: true, multi: true, valueName: "DEST:PORT",
			help: "Server will only accept connection from the specified tunnel information. Can be specified multiple time"},
		{long: "restrict-http-upgrade-path-prefix", short: 'r', takes: true, multi: true,
			env: "WSTUNNEL_RESTRICT_HTTP_UPGRADE_PATH_PREFIX", valueName: "RESTRICT_HTTP_UPGRADE_PATH_PREFIX",
			help: "Server will only accept connection if this specific path prefix is used during websocket upgrade. Can be specified multiple time"},
		{long: "tls-certificate", takes: true, valueName: "FILE_PATH",
			help: "[Optional] Use custom certificate (pem) instead of the default embedded self-signed certificate. Reloaded if it changes"},
		{long: "tls-private-key", takes: true, valueName: "FILE_PATH",
			help: "[Optional] Use a custom tls key (pem, ec, rsa) that the server will use instead of the default embedded one"},
	},
}

var clientSpec = &cmdSpec{
	name:    "client",
	about:   "Start a wstunnel client (lab test double; udp:// local-to-remote tunnels only)",
	posName: "<ws[s]|http[s]://wstunnel.server.com[:port]>",
	posHelp: "Address of the wstunnel server. The lab double supports wss:// and ws:// only",
	args: []argSpec{
		{long: "local-to-remote", short: 'L', takes: true, multi: true, valueName: "{tcp,udp,socks5,stdio,unix}://[BIND:]PORT:HOST:PORT",
			help: "Listen on local and forwards traffic from remote. Can be specified multiple times. 'udp://1212:1.1.1.1:53?timeout_sec=10' (0 disables the timeout) [default: 30]; only udp:// in the lab double"},
		{long: "tls-verify-certificate",
			help: "Enable TLS certificate verification (system trust store). Disabled by default"},
		{long: "http-upgrade-path-prefix", short: 'P', takes: true, env: "WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX", def: "v1",
			valueName: "HTTP_UPGRADE_PATH_PREFIX",
			help:      "Use a specific prefix that will show up in the http path during the upgrade request"},
	},
}

func (c *cmdSpec) helpText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nUsage: %s\n\nArguments:\n  %s\n          %s\n\nOptions:\n", c.about, c.usage(), c.posName, c.posHelp)
	for _, a := range c.args {
		left := "      " + a.display()
		if a.short != 0 {
			left = "  -" + string(a.short) + ", " + a.display()
		}
		fmt.Fprintf(&b, "%s\n          %s\n", left, a.help)
		if a.env != "" {
			fmt.Fprintf(&b, "          [env: %s=]\n", a.env)
		}
		if a.def != "" {
			fmt.Fprintf(&b, "          [default: %s]\n", a.def)
		}
		b.WriteString("\n")
	}
	b.WriteString("  -h, --help\n          Print help\n\n")
	b.WriteString("Note: this is " + versionLine + ".\n")
	return b.String()
}

const topUsage = "wstunnel [OPTIONS] <COMMAND>"

func topHelp() string {
	return "Use Websocket protocol to tunnel UDP traffic (lab test double of erebe/wstunnel)\n" +
		"wsTunnelClient <---> wsTunnelServer <---> RemoteHost\n\n" +
		"Usage: " + topUsage + "\n\n" +
		"Commands:\n  client  \n  server  \n  help    Print this message or the help of the given subcommand(s)\n\n" +
		"Options:\n  -h, --help     Print help\n  -V, --version  Print version\n\n" +
		"Note: this is " + versionLine + ".\n"
}

// cliError is a clap-style usage error (exit status 2).
type cliError struct {
	msg   string
	usage string // "" for value errors, which clap prints without usage
}

func (e *cliError) Error() string { return e.msg }

func (e *cliError) render() string {
	s := "error: " + e.msg + "\n\n"
	if e.usage != "" {
		s += "Usage: " + e.usage + "\n\n"
	}
	return s + "For more information, try '--help'.\n"
}

type parsedCmd struct {
	vals       map[string][]string
	flags      map[string]bool
	positional string
	help       bool
}

func looksLikeFlag(s string) bool { return len(s) > 1 && s[0] == '-' }

// parseCmd parses the arguments after the subcommand name, clap-style.
func parseCmd(spec *cmdSpec, args []string, lookupEnv func(string) (string, bool)) (*parsedCmd, *cliError) {
	p := &parsedCmd{vals: map[string][]string{}, flags: map[string]bool{}}
	seen := map[string]bool{}
	hasPos := false
	trailing := false
	uerr := func(format string, a ...any) *cliError {
		return &cliError{msg: fmt.Sprintf(format, a...), usage: spec.usage()}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if trailing || !looksLikeFlag(a) {
			if hasPos {
				return nil, uerr("unexpected argument '%s' found", a)
			}
			p.positional, hasPos = a, true
			continue
		}
		if a == "--" {
			trailing = true
			continue
		}
		var spec_ *argSpec
		var val string
		hasVal := false
		var shown string
		if strings.HasPrefix(a, "--") {
			name, v, eq := strings.Cut(a[2:], "=")
			if name == "help" {
				if eq {
					return nil, uerr("unexpected value '%s' for '--help' found; no more were expected", v)
				}
				p.help = true
				return p, nil
			}
			for j := range spec.args {
				if spec.args[j].long == name {
					spec_ = &spec.args[j]
				}
			}
			if spec_ == nil {
				return nil, uerr("unexpected argument '--%s' found", name)
			}
			val, hasVal, shown = v, eq, "--"+name
		} else {
			c := a[1]
			if c == 'h' && len(a) == 2 {
				p.help = true
				return p, nil
			}
			for j := range spec.args {
				if spec.args[j].short != 0 && spec.args[j].short == c {
					spec_ = &spec.args[j]
				}
			}
			if spec_ == nil {
				return nil, uerr("unexpected argument '-%c' found", c)
			}
			if rest := a[2:]; rest != "" {
				val, hasVal = strings.TrimPrefix(rest, "="), true
			}
			shown = "-" + string(c)
		}
		if !spec_.takes {
			if hasVal {
				return nil, uerr("unexpected value '%s' for '%s' found; no more were expected", val, shown)
			}
			if seen[spec_.long] {
				return nil, uerr("the argument '%s' cannot be used multiple times", spec_.display())
			}
			seen[spec_.long] = true
			p.flags[spec_.long] = true
			continue
		}
		if !hasVal {
			if i+1 >= len(args) || looksLikeFlag(args[i+1]) {
				return nil, uerr("a value is required for '%s' but none was supplied", spec_.display())
			}
			i++
			val = args[i]
		}
		if seen[spec_.long] && !spec_.multi {
			return nil, uerr("the argument '%s' cannot be used multiple times", spec_.display())
		}
		seen[spec_.long] = true
		p.vals[spec_.long] = append(p.vals[spec_.long], val)
	}
	if !hasPos {
		return nil, &cliError{msg: "the following required arguments were not provided:\n  " + spec.posName, usage: spec.usage()}
	}
	// env, then defaults, for arguments absent from the command line (clap add_env/add_defaults);
	// a present-but-empty variable counts as a value.
	for _, a := range spec.args {
		if _, ok := p.vals[a.long]; ok || !a.takes {
			continue
		}
		if a.env != "" {
			if v, ok := lookupEnv(a.env); ok {
				p.vals[a.long] = []string{v}
				continue
			}
		}
		if a.def != "" {
			p.vals[a.long] = []string{a.def}
		}
	}
	return p, nil
}

func valueErr(arg argSpec, val string, err error) *cliError {
	return &cliError{msg: fmt.Sprintf("invalid value '%s' for '%s': %v", val, arg.display(), err)}
}

func posErr(spec *cmdSpec, val string, err error) *cliError {
	return &cliError{msg: fmt.Sprintf("invalid value '%s' for '%s': %v", val, spec.posName, err)}
}

// parseServerURL is parsers::parse_server_url restricted to the schemes the double serves.
func parseServerURL(arg string) (scheme string, h host, port uint16, err error) {
	u, perr := url.Parse(arg)
	if perr != nil || u.Scheme == "" || u.Opaque != "" {
		return "", host{}, 0, fmt.Errorf("cannot parse server url %s", arg)
	}
	scheme = strings.ToLower(u.Scheme)
	switch scheme {
	case "ws", "wss":
	case "http", "https":
		return "", host{}, 0, fmt.Errorf("the http2 transport (%s://) is not implemented by the lab double", scheme)
	default:
		return "", host{}, 0, fmt.Errorf("invalid scheme %s", scheme)
	}
	hn := u.Hostname()
	if hn == "" {
		return "", host{}, 0, fmt.Errorf("invalid server host %s", arg)
	}
	if strings.HasPrefix(u.Host, "[") {
		hn = "[" + hn + "]"
	}
	if h, err = parseHost(hn); err != nil {
		return "", host{}, 0, fmt.Errorf("cannot parse server url %s", arg)
	}
	port = 443
	if scheme == "ws" {
		port = 80
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			return "", host{}, 0, fmt.Errorf("cannot parse server url %s", arg)
		}
		port = uint16(n)
	}
	return scheme, h, port, nil
}

type localToRemote struct {
	bind     netip.AddrPort
	dest     host
	destPort uint16
	timeout  time.Duration // 0 = none
}

// parseLocalToRemote is parsers::parse_tunnel_arg for "udp://".
func parseLocalToRemote(arg string) (localToRemote, error) {
	var r localToRemote
	proto, info, ok := strings.Cut(arg, "://")
	if !ok {
		return r, fmt.Errorf("cannot parse protocol from %s", arg)
	}
	switch proto {
	case "udp":
	case "tcp", "unix", "http", "socks5", "stdio", "tproxy+tcp", "tproxy+udp":
		return r, fmt.Errorf("%s:// tunnels are not implemented by the lab double (only udp://)", proto)
	default:
		return r, fmt.Errorf("Invalid local protocol for tunnel %s", arg)
	}
	bind, remaining, err := parseLocalBind(info)
	if err != nil {
		return r, err
	}
	r.bind = bind
	u, perr := url.Parse("https://" + remaining)
	if perr != nil {
		return r, fmt.Errorf("cannot parse remote from %s", remaining)
	}
	hn := u.Hostname()
	if hn == "" {
		return r, fmt.Errorf("cannot parse remote from %s", remaining)
	}
	if strings.HasPrefix(u.Host, "[") {
		hn = "[" + hn + "]"
	}
	if r.dest, err = parseHost(hn); err != nil {
		return r, fmt.Errorf("cannot parse remote from %s", remaining)
	}
	ps := u.Port()
	if ps == "" {
		return r, fmt.Errorf("cannot parse remote port from %s", remaining)
	}
	n, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return r, fmt.Errorf("cannot parse remote from %s", remaining)
	}
	if n == 443 && !(strings.HasSuffix(remaining, ":443") || strings.Contains(remaining, ":443?")) {
		return r, fmt.Errorf("cannot parse remote port from %s", remaining)
	}
	r.destPort = uint16(n)
	r.timeout = 30 * time.Second
	if vs := u.Query()["timeout_sec"]; len(vs) > 0 {
		if secs, err := strconv.ParseUint(vs[len(vs)-1], 10, 64); err == nil {
			if secs == 0 {
				r.timeout = 0
			} else if secs > uint64((1<<63-1)/int64(time.Second)) {
				r.timeout = time.Duration(1<<63 - 1)
			} else {
				r.timeout = time.Duration(secs) * time.Second
			}
		}
	}
	return r, nil
}

func parseLocalBind(arg string) (netip.AddrPort, string, error) {
	var ip netip.Addr
	var remaining string
	if strings.HasPrefix(arg, "[") {
		v6, rem, ok := strings.Cut(arg, "]")
		if !ok {
			return netip.AddrPort{}, "", fmt.Errorf("cannot parse IPv6 bind from %s", arg)
		}
		a, err := netip.ParseAddr(v6[1:])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.AddrPort{}, "", fmt.Errorf("cannot parse IPv6 bind from %s", v6)
		}
		ip, remaining = a, rem
	} else {
		v4, rem, found := strings.Cut(arg, ":")
		if !found {
			v4, rem = arg, ""
		}
		if a, err := netip.ParseAddr(v4); err == nil && a.Is4() {
			ip, remaining = a, rem
		} else {
			ip, remaining = netip.AddrFrom4([4]byte{127, 0, 0, 1}), arg
		}
	}
	remaining = strings.TrimLeft(remaining, ":")
	portStr, rest := remaining, ""
	if i := strings.IndexAny(remaining, ":?"); i >= 0 {
		portStr, rest = remaining[:i], remaining[i+1:]
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, "", fmt.Errorf("cannot parse bind port from %s", portStr)
	}
	return netip.AddrPortFrom(ip, uint16(port)), rest, nil
}

// invocation is a fully parsed command line.
type invocation struct {
	server  *serverConfig
	clients []clientConfig
}

// parseCommandLine handles --help/--version itself (printing to stdout, exit 0) and usage
// errors (printing to stderr, exit 2). It returns nil and the exit code in those cases.
func parseCommandLine(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) (*invocation, int) {
	fail := func(e *cliError) (*invocation, int) {
		_, _ = io.WriteString(stderr, e.render())
		return nil, 2
	}
	if len(args) == 0 {
		_, _ = io.WriteString(stderr, topHelp())
		return nil, 2
	}
	switch a := args[0]; {
	case a == "-h" || a == "--help":
		_, _ = io.WriteString(stdout, topHelp())
		return nil, 0
	case a == "-V" || a == "--version":
		_, _ = io.WriteString(stdout, versionLine+"\n")
		return nil, 0
	case a == "help":
		if len(args) > 1 {
			switch args[1] {
			case "server":
				_, _ = io.WriteString(stdout, serverSpec.helpText())
				return nil, 0
			case "client":
				_, _ = io.WriteString(stdout, clientSpec.helpText())
				return nil, 0
			case "help":
				_, _ = io.WriteString(stdout, topHelp())
				return nil, 0
			default:
				return fail(&cliError{msg: fmt.Sprintf("unrecognized subcommand '%s'", args[1]), usage: "wstunnel help [COMMAND]..."})
			}
		}
		_, _ = io.WriteString(stdout, topHelp())
		return nil, 0
	case a == "server" || a == "client":
		// handled below
	case looksLikeFlag(a):
		name := a
		if strings.HasPrefix(a, "--") {
			name, _, _ = strings.Cut(a, "=")
		} else {
			name = a[:2]
		}
		return fail(&cliError{msg: fmt.Sprintf("unexpected argument '%s' found", name), usage: topUsage})
	default:
		return fail(&cliError{msg: fmt.Sprintf("unrecognized subcommand '%s'", a), usage: topUsage})
	}

	if args[0] == "server" {
		p, cerr := parseCmd(serverSpec, args[1:], lookupEnv)
		if cerr != nil {
			return fail(cerr)
		}
		if p.help {
			_, _ = io.WriteString(stdout, serverSpec.helpText())
			return nil, 0
		}
		scheme, h, port, err := parseServerURL(p.positional)
		if err != nil {
			return fail(posErr(serverSpec, p.positional, err))
		}
		cfg := &serverConfig{
			scheme:    scheme,
			bindHost:  h.tlsName(),
			bindPort:  port,
			pingEvery: 30 * time.Second,
		}
		if v := p.vals["tls-certificate"]; len(v) > 0 {
			cfg.certFile = v[0]
		}
		if v := p.vals["tls-private-key"]; len(v) > 0 {
			cfg.keyFile = v[0]
		}
		if v, ok := p.vals["restrict-http-upgrade-path-prefix"]; ok {
			cfg.prefixes = append([]string{}, v...)
		}
		// --restrict-to is checked at start-up in the real program (a panic, not a usage error)
		if v, ok := p.vals["restrict-to"]; ok {
			cfg.restrictTo = []allowRule{}
			for _, r := range v {
				rule, err := parseRestrictTo(r)
				if err != nil {
					_, _ = fmt.Fprintf(stderr, "thread 'main' panicked at wstunnel/src/lib.rs:\n%v: %q\n(wstunnel lab test double)\n", err, r)
					return nil, 101
				}
				cfg.restrictTo = append(cfg.restrictTo, rule)
			}
		}
		return &invocation{server: cfg}, 0
	}

	p, cerr := parseCmd(clientSpec, args[1:], lookupEnv)
	if cerr != nil {
		return fail(cerr)
	}
	if p.help {
		_, _ = io.WriteString(stdout, clientSpec.helpText())
		return nil, 0
	}
	ltrSpec := clientSpec.args[0]
	var ltrs []localToRemote
	for _, v := range p.vals["local-to-remote"] {
		r, err := parseLocalToRemote(v)
		if err != nil {
			return fail(valueErr(ltrSpec, v, err))
		}
		ltrs = append(ltrs, r)
	}
	scheme, h, port, err := parseServerURL(p.positional)
	if err != nil {
		return fail(posErr(clientSpec, p.positional, err))
	}
	prefix := "v1"
	if v := p.vals["http-upgrade-path-prefix"]; len(v) > 0 {
		prefix = v[0]
	}
	inv := &invocation{clients: []clientConfig{}}
	for _, r := range ltrs {
		inv.clients = append(inv.clients, clientConfig{
			bind:            r.bind,
			dest:            r.dest,
			destPort:        r.destPort,
			udpTimeout:      r.timeout,
			scheme:          scheme,
			server:          h,
			serverPort:      port,
			verify:          p.flags["tls-verify-certificate"],
			prefix:          prefix,
			pingEvery:       30 * time.Second,
			connectRetryMax: 5 * time.Minute,
		})
	}
	return inv, 0
}
