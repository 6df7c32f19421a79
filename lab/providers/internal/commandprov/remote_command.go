// LAB-ONLY STAND-IN for pulumi-resource-command 1.2.1, used only because the real provider cannot be
// built in the wg-relay lab (see provider.go); never used for a real deployment.

package commandprov

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

const (
	envStdout = "PULUMI_COMMAND_STDOUT"
	envStderr = "PULUMI_COMMAND_STDERR"
)

// remoteCommandInputs are the real CommandInputs (common.ResourceInputs + remote fields).
var remoteCommandInputs = []string{
	"triggers", "create", "update", "delete",
	"stdin", "logging", "connection", "environment", "addPreviousOutputInEnv",
}

var remoteCommandTypes = map[string]string{
	"triggers": "array", "create": "string", "update": "string", "delete": "string",
	"stdin": "string", "logging": "string", "environment": "stringMap", "addPreviousOutputInEnv": "boolean",
}

// checkRemoteCommand fills the defaults (connection defaults, addPreviousOutputInEnv = true) and
// reports decoding failures, like the real provider's default infer Check.
func checkRemoteCommand(news resource.PropertyMap) []failure {
	failures := checkScalars(news, remoteCommandTypes)
	if c, ok := news["connection"]; !ok || c.IsNull() {
		failures = append(failures, failure{"connection", "Missing required field 'connection' on 'remote.CommandInputs'"})
	} else {
		failures = append(failures, checkConnection(c, "connection")...)
	}
	if len(failures) > 0 {
		return failures
	}
	news["connection"] = withConnectionDefaults(news["connection"], false)
	if v, ok := news["addPreviousOutputInEnv"]; !ok || v.IsNull() {
		news["addPreviousOutputInEnv"] = resource.NewBoolProperty(true)
	}
	return nil
}

// logging mirrors the real Logging enum: nil logs both streams.
type logging struct{ v *string }

func (l logging) stdout() bool { return l.v == nil || *l.v == "stdout" || *l.v == "stdoutAndStderr" }
func (l logging) stderr() bool { return l.v == nil || *l.v == "stderr" || *l.v == "stdoutAndStderr" }

// previous returns the stdout/stderr a state carries (the real BaseOutputs).
func previous(state resource.PropertyMap) (string, string) {
	out, _ := str(state, "stdout")
	errs, _ := str(state, "stderr")
	return out, errs
}

// createRemoteCommand mirrors the real Command.Create: id = <name><8 hex>; on preview nothing runs
// (stdout/stderr unknown, as pulumi-go-provider marks non-input outputs of a create preview);
// without `create` nothing runs and stdout/stderr are empty.
func (p *Provider) createRemoteCommand(ctx context.Context, urn resource.URN, props resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	return p.create(ctx, urn, props, preview, remoteCommandInputs, p.runRemote)
}

// create is Create for both command resources; they differ only in their inputs and in where they run.
func (p *Provider) create(ctx context.Context, urn resource.URN, props resource.PropertyMap, preview bool,
	inputs []string, run runner) (string, resource.PropertyMap, error) {
	state := echoInputs(props, inputs)
	id, err := resource.NewUniqueHex(urn.Name(), 8, 0)
	if err != nil {
		return "", nil, err
	}
	if preview {
		state["stdout"], state["stderr"] = computedString(), computedString()
		return id, state, nil
	}
	state["stdout"], state["stderr"] = resource.NewStringProperty(""), resource.NewStringProperty("")
	cmd, ok := str(props, "create")
	if !ok {
		return id, state, nil
	}
	stdout, stderr, err := run(ctx, urn, props, cmd, "", "")
	if err != nil {
		return "", nil, err
	}
	state["stdout"], state["stderr"] = resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)
	return id, state, nil
}

// updateRemoteCommand mirrors the real Command.Update: the new inputs with the old
// stdout/stderr; `update` runs if set, else `create`, else nothing. On preview nothing runs and
// stdout/stderr become unknown when an input is unknown or differs from the old state
// (pulumi-go-provider's default dependency flow: every output depends on every input).
func (p *Provider) updateRemoteCommand(ctx context.Context, urn resource.URN, olds, news resource.PropertyMap, preview bool) (resource.PropertyMap, error) {
	return p.update(ctx, urn, olds, news, preview, remoteCommandInputs, p.runRemote)
}

type runner func(ctx context.Context, urn resource.URN, props resource.PropertyMap, cmd, prevStdout, prevStderr string) (string, string, error)

func (p *Provider) update(ctx context.Context, urn resource.URN, olds, news resource.PropertyMap, preview bool,
	inputs []string, run runner) (resource.PropertyMap, error) {
	state := echoInputs(news, inputs)
	prevOut, prevErr := previous(olds)
	state["stdout"], state["stderr"] = resource.NewStringProperty(prevOut), resource.NewStringProperty(prevErr)
	if preview {
		for _, name := range inputs {
			k := resource.PropertyKey(name)
			ov, hasOld := olds[k]
			if isComputed(news[k]) || (hasOld && !deepEquals(news[k], ov)) {
				state["stdout"], state["stderr"] = computedString(), computedString()
				break
			}
		}
		return state, nil
	}
	cmd, ok := str(news, "update")
	if !ok {
		cmd, ok = str(news, "create")
	}
	if !ok {
		return state, nil
	}
	stdout, stderr, err := run(ctx, urn, news, cmd, prevOut, prevErr)
	if err != nil {
		return nil, err
	}
	state["stdout"], state["stderr"] = resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)
	return state, nil
}

// deleteRemoteCommand mirrors the real Command.Delete: `delete` runs with the stored connection
// and the stored stdout/stderr as PULUMI_COMMAND_STDOUT/STDERR; without it nothing happens.
func (p *Provider) deleteRemoteCommand(ctx context.Context, urn resource.URN, props resource.PropertyMap) error {
	return deleteWith(ctx, urn, props, p.runRemote)
}

// deleteWith is Delete for both command resources: `delete`, if set, runs with the old outputs in reach.
func deleteWith(ctx context.Context, urn resource.URN, props resource.PropertyMap, run runner) error {
	cmd, ok := str(props, "delete")
	if !ok {
		return nil
	}
	prevOut, prevErr := previous(props)
	_, _, err := run(ctx, urn, props, cmd, prevOut, prevErr)
	return err
}

// runRemote mirrors the real CommandOutputs.run: dial, one session, Setenv for `environment`
// (a refusal — sshd without AcceptEnv — is logged as an error and fails the step), then
// PULUMI_COMMAND_STDOUT/STDERR of the previous run when addPreviousOutputInEnv is unset or true
// and they are non-empty (a refusal is only a warning), stdin when non-empty, stdout and stderr
// captured separately and together, the streams selected by `logging` sent line by line to the
// engine as Info status messages, and on failure "<err>: running "<cmd>":\n<stdout+stderr>".
// Outputs lose one trailing newline.
func (p *Provider) runRemote(ctx context.Context, urn resource.URN, props resource.PropertyMap, cmd, prevStdout, prevStderr string) (string, string, error) {
	con, err := parseConnection(props)
	if err != nil {
		return "", "", err
	}
	client, closeClient, err := p.dial(ctx, urn, con)
	if err != nil {
		return "", "", err
	}
	defer closeClient()

	session, err := client.NewSession()
	if err != nil {
		return "", "", err
	}
	defer session.Close()

	for _, kv := range stringMap(props, "environment") {
		if err := session.Setenv(kv[0], kv[1]); err != nil {
			return "", "", p.setenvErr(ctx, urn, diag.Error, kv[0], err)
		}
	}
	if add := boolPtr(props, "addPreviousOutputInEnv"); add == nil || *add {
		if prevStdout != "" {
			if err := session.Setenv(envStdout, prevStdout); err != nil {
				_ = p.setenvErr(ctx, urn, diag.Warning, envStdout, err)
			}
		}
		if prevStderr != "" {
			if err := session.Setenv(envStderr, prevStderr); err != nil {
				_ = p.setenvErr(ctx, urn, diag.Warning, envStderr, err)
			}
		}
	}
	if stdin, ok := str(props, "stdin"); ok && len(stdin) > 0 {
		session.Stdin = strings.NewReader(stdin)
	}

	var stdoutbuf, stderrbuf bytes.Buffer
	stdouterr := &lockedBuffer{}
	r, w := io.Pipe()
	logw := &lockedWriter{w: w}
	lg := logging{strPtr(props, "logging")}
	stdoutWriters := []io.Writer{&stdoutbuf, stdouterr}
	if lg.stdout() {
		stdoutWriters = append(stdoutWriters, logw)
	}
	session.Stdout = io.MultiWriter(stdoutWriters...)
	stderrWriters := []io.Writer{&stderrbuf, stdouterr}
	if lg.stderr() {
		stderrWriters = append(stderrWriters, logw)
	}
	session.Stderr = io.MultiWriter(stderrWriters...)

	done := make(chan struct{})
	go p.logOutput(ctx, urn, r, done)

	err = session.Run(cmd)

	w.Close()
	<-done

	if err != nil {
		return "", "", fmt.Errorf("%w: running %q:\n%s", err, cmd, stdouterr.String())
	}
	return strings.TrimSuffix(stdoutbuf.String(), "\n"), strings.TrimSuffix(stderrbuf.String(), "\n"), nil
}

// setenvErr mirrors the real logAndWrapSetenvErr.
func (p *Provider) setenvErr(ctx context.Context, urn resource.URN, sev diag.Severity, key string, err error) error {
	p.logf(ctx, sev, urn, false, `Unable to set '%s'. This only works if your SSH server is configured to accept
	these variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the remote host, you could
	prefix the command itself with the variables in the form 'VAR=value command'`, key)
	return fmt.Errorf("could not set environment variable %q: %w", key, err)
}

// logOutput mirrors the real util.LogOutput: every line becomes an Info status message of the
// resource. (Unlike bufio.Scanner it has no line-length limit, so a very long line cannot stall
// the command.)
func (p *Provider) logOutput(ctx context.Context, urn resource.URN, r io.Reader, done chan<- struct{}) {
	defer close(done)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			p.logf(ctx, diag.Info, urn, true, "%s", line)
		}
		if err != nil {
			_, _ = io.Copy(io.Discard, r)
			return
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
