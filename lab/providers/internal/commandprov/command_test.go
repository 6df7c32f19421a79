// Tests for the LAB-ONLY pulumi-command stand-in (built only because the real provider cannot be built
// in the wg-relay lab; never used for a real deployment), driven
// over gRPC like the engine, against in-process SSH servers on 127.0.0.1.
package commandprov_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/emptypb"

	"wg-relay.lab/providers/internal/commandprov"
	"wg-relay.lab/providers/internal/labtest"
)

const (
	commandT = "command:remote:Command"
	copyT    = "command:remote:CopyToRemote"
	localT   = "command:local:Command"
)

type logLine struct {
	sev       diag.Severity
	msg       string
	ephemeral bool
}

type logs struct {
	mu    sync.Mutex
	lines []logLine
}

func (l *logs) log(_ context.Context, sev diag.Severity, _ resource.URN, msg string, ephemeral bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{sev, msg, ephemeral})
}

func (l *logs) status() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, x := range l.lines {
		if x.ephemeral && x.sev == diag.Info {
			out = append(out, x.msg)
		}
	}
	return out
}

func (l *logs) has(sev diag.Severity, substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lines {
		if x.sev == sev && strings.Contains(x.msg, substr) {
			return true
		}
	}
	return false
}

func setup(t *testing.T) (*labtest.Client, *logs) {
	t.Setenv("SSH_AUTH_SOCK", "") // the real provider would use an agent from the environment
	l := &logs{}
	return labtest.Serve(t, commandprov.New(l.log), "command"), l
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// conn is a connection input as @pulumi/command sends it: a secret object with the private key.
func conn(s *sshServer, key clientKey, extra resource.PropertyMap) resource.PropertyValue {
	obj := resource.PropertyMap{
		"host":           resource.NewStringProperty(s.host),
		"port":           resource.NewNumberProperty(float64(s.port)),
		"user":           resource.NewStringProperty("root"),
		"privateKey":     resource.MakeSecret(resource.NewStringProperty(key.pem)),
		"dialErrorLimit": resource.NewNumberProperty(2),
		"perDialTimeout": resource.NewNumberProperty(5),
	}
	for k, v := range extra {
		obj[k] = v
	}
	return resource.MakeSecret(resource.NewObjectProperty(obj))
}

func s(v string) resource.PropertyValue { return resource.NewStringProperty(v) }

func createErr(t *testing.T, c *labtest.Client, typ string, news resource.PropertyMap) error {
	t.Helper()
	in := c.MustCheck(typ, news)
	_, err := c.RPC.Create(ctx(t), &pulumirpc.CreateRequest{Urn: c.URN(typ, "r"), Type: typ, Properties: c.Marshal(in)})
	return err
}

func update(t *testing.T, c *labtest.Client, typ, id string, olds, news resource.PropertyMap, preview bool) (resource.PropertyMap, error) {
	t.Helper()
	in := c.MustCheck(typ, news)
	resp, err := c.RPC.Update(ctx(t), &pulumirpc.UpdateRequest{
		Id: id, Urn: c.URN(typ, "r"), Type: typ, Olds: c.Marshal(olds), News: c.Marshal(in), Preview: preview,
	})
	if err != nil {
		return nil, err
	}
	return c.Unmarshal(resp.GetProperties()), nil
}

func del(t *testing.T, c *labtest.Client, typ, id string, state resource.PropertyMap) error {
	t.Helper()
	_, err := c.RPC.Delete(ctx(t), &pulumirpc.DeleteRequest{Id: id, Urn: c.URN(typ, "r"), Type: typ, Properties: c.Marshal(state)})
	return err
}

func TestPluginInfoAndSchema(t *testing.T) {
	c, _ := setup(t)
	info, err := c.RPC.GetPluginInfo(ctx(t), &emptypb.Empty{})
	if err != nil || info.GetVersion() != "1.2.1" {
		t.Fatalf("GetPluginInfo = %v, %v; want 1.2.1", info, err)
	}
	sch, err := c.RPC.GetSchema(ctx(t), &pulumirpc.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Name, Version, Description string
		Resources                  map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(sch.GetSchema()), &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Name != "command" || schema.Version != "1.2.1" || !strings.Contains(schema.Description, "LAB-ONLY") {
		t.Fatalf("schema header: %+v", schema)
	}
	for _, typ := range []string{commandT, copyT, localT} {
		if _, ok := schema.Resources[typ]; !ok {
			t.Errorf("schema lacks %s", typ)
		}
	}
}

func TestCheckFillsDefaults(t *testing.T) {
	c, _ := setup(t)
	in := c.MustCheck(commandT, resource.PropertyMap{
		"connection": resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{
			"host":  s("10.0.0.1"),
			"proxy": resource.NewObjectProperty(resource.PropertyMap{"host": s("10.0.0.2")}),
		})),
		"create": s("true"),
	})
	if !labtest.IsSecret(in, "connection") {
		t.Fatal("connection lost its secret wrapper")
	}
	got := in["connection"].SecretValue().Element.ObjectValue()
	want := map[string]any{"host": "10.0.0.1", "user": "root", "port": 22.0, "dialErrorLimit": 10.0, "perDialTimeout": 15.0}
	for k, v := range want {
		if got[resource.PropertyKey(k)].V != v {
			t.Errorf("connection.%s = %v, want %v", k, got[resource.PropertyKey(k)].V, v)
		}
	}
	proxy := got["proxy"].ObjectValue()
	if proxy["user"].V != "root" || proxy["port"].V != 22.0 || proxy["dialErrorLimit"].V != 10.0 || proxy["perDialTimeout"].V != 15.0 {
		t.Errorf("proxy defaults not filled: %v", proxy)
	}
	if in["addPreviousOutputInEnv"].V != true {
		t.Errorf("addPreviousOutputInEnv = %v, want true", in["addPreviousOutputInEnv"])
	}

	_, failures := c.Check(commandT, resource.PropertyMap{"create": s("true")})
	if len(failures) != 1 || failures[0].GetProperty() != "connection" {
		t.Errorf("missing connection: failures %v", failures)
	}
	_, failures = c.Check(commandT, resource.PropertyMap{"connection": resource.NewObjectProperty(resource.PropertyMap{"user": s("x")})})
	if len(failures) != 1 || failures[0].GetProperty() != "connection.host" {
		t.Errorf("missing host: failures %v", failures)
	}
	// unknown during preview: left alone
	in = c.MustCheck(commandT, resource.PropertyMap{"connection": labtest.Computed(), "create": labtest.Computed()})
	if !in["connection"].ContainsUnknowns() {
		t.Errorf("unknown connection changed: %v", in["connection"])
	}
}

func TestCreateRunsAndCapturesOutput(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{})
	c, l := setup(t)
	id, state := c.Create(commandT, resource.PropertyMap{
		"connection": conn(srv, key, nil),
		"create":     s("echo hello; echo oops >&2; printf 'last\\n\\n'"),
	}, false)
	if !strings.HasPrefix(id, "r") || len(id) != len("r")+8 {
		t.Errorf("id = %q, want r + 8 hex characters", id)
	}
	if got := labtest.Str(t, state, "stdout"); got != "hello\nlast\n" {
		t.Errorf("stdout = %q (one trailing newline trimmed)", got)
	}
	if got := labtest.Str(t, state, "stderr"); got != "oops" {
		t.Errorf("stderr = %q", got)
	}
	if !labtest.IsSecret(state, "connection") || labtest.IsSecret(state, "stdout") {
		t.Errorf("secrets: connection %v stdout %v", labtest.IsSecret(state, "connection"), labtest.IsSecret(state, "stdout"))
	}
	if state["addPreviousOutputInEnv"].V != true || labtest.Str(t, state, "create") == "" {
		t.Errorf("inputs not echoed: %v", state)
	}
	st := l.status()
	for _, want := range []string{"hello", "oops", "last"} {
		found := false
		for _, line := range st {
			found = found || line == want
		}
		if !found {
			t.Errorf("status log lacks %q: %q", want, st)
		}
	}

	// logging: "stderr" logs only stderr, "none" nothing; outputs are captured regardless
	for _, tc := range []struct {
		logging string
		want    []string
	}{{"stderr", []string{"to-err"}}, {"stdout", []string{"to-out"}}, {"none", nil}} {
		c, l := setup(t)
		_, state := c.Create(commandT, resource.PropertyMap{
			"connection": conn(srv, key, nil), "create": s("echo to-out; echo to-err >&2"), "logging": s(tc.logging),
		}, false)
		if labtest.Str(t, state, "stdout") != "to-out" || labtest.Str(t, state, "stderr") != "to-err" {
			t.Errorf("logging %s: outputs %v", tc.logging, state)
		}
		if got := l.status(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("logging %s: status log %q, want %q", tc.logging, got, tc.want)
		}
	}

	// no create: nothing runs, empty outputs
	before := srv.execCount()
	_, state = c.Create(commandT, resource.PropertyMap{"connection": conn(srv, key, nil), "delete": s("true")}, false)
	if srv.execCount() != before || labtest.Str(t, state, "stdout") != "" {
		t.Errorf("without create something ran (%d execs) or stdout %q", srv.execCount()-before, labtest.Str(t, state, "stdout"))
	}
}

func TestStdinReachesCommand(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{})
	c, _ := setup(t)
	_, state := c.Create(commandT, resource.PropertyMap{
		"connection": conn(srv, key, nil),
		"create":     s("cat; echo; wc -c </dev/null"),
		"stdin":      resource.MakeSecret(s("s3cret-value")),
		"logging":    s("stderr"),
	}, false)
	if got := labtest.Str(t, state, "stdout"); !strings.HasPrefix(got, "s3cret-value\n") {
		t.Errorf("stdout = %q, want the stdin echoed", got)
	}
	if !labtest.IsSecret(state, "stdin") {
		t.Error("stdin is not secret in the outputs")
	}
}

func TestNonZeroExitFailsWithOutput(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{})
	c, _ := setup(t)
	cmd := "echo partial-out; echo broken-err >&2; exit 3"
	err := createErr(t, c, commandT, resource.PropertyMap{"connection": conn(srv, key, nil), "create": s(cmd)})
	if err == nil {
		t.Fatal("create succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"Process exited with status 3", `running "` + cmd + `"`, "partial-out", "broken-err"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestHostKey(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{})
	c, _ := setup(t)
	// the right key is accepted
	_, state := c.Create(commandT, resource.PropertyMap{
		"connection": conn(srv, key, resource.PropertyMap{"hostKey": s(srv.hostKey)}), "create": s("echo ok"),
	}, false)
	if labtest.Str(t, state, "stdout") != "ok" {
		t.Fatalf("stdout %q", labtest.Str(t, state, "stdout"))
	}
	// another key is refused, and nothing runs
	other := string(ssh.MarshalAuthorizedKey(newHostSigner(t).PublicKey()))
	before := srv.execCount()
	err := createErr(t, c, commandT, resource.PropertyMap{
		"connection": conn(srv, key, resource.PropertyMap{"hostKey": s(other), "dialErrorLimit": resource.NewNumberProperty(0)}),
		"create":     s("echo should-not-run"),
	})
	if err == nil || !strings.Contains(err.Error(), "host key mismatch") || !strings.Contains(err.Error(), "after 0 failed attempts") {
		t.Fatalf("wrong host key: err = %v", err)
	}
	if srv.execCount() != before {
		t.Fatal("a command ran on a host with the wrong key")
	}
	// a malformed key is an error
	err = createErr(t, c, commandT, resource.PropertyMap{
		"connection": conn(srv, key, resource.PropertyMap{"hostKey": s("AAAA-not-a-key")}), "create": s("true"),
	})
	if err == nil || !strings.Contains(err.Error(), "failed to parse host key") {
		t.Fatalf("malformed host key: err = %v", err)
	}
	// without hostKey any key is accepted (the real provider's InsecureIgnoreHostKey)
	_, state = c.Create(commandT, resource.PropertyMap{"connection": conn(srv, key, nil), "create": s("echo any")}, false)
	if labtest.Str(t, state, "stdout") != "any" {
		t.Fatal("without hostKey the connection failed")
	}
}

func TestPasswordAuth(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{password: "pw-123"})
	c, _ := setup(t)
	connection := resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{
		"host": s(srv.host), "port": resource.NewNumberProperty(float64(srv.port)),
		"password": resource.MakeSecret(s("pw-123")), "dialErrorLimit": resource.NewNumberProperty(0),
	}))
	_, state := c.Create(commandT, resource.PropertyMap{"connection": connection, "create": s("echo pw")}, false)
	if labtest.Str(t, state, "stdout") != "pw" {
		t.Fatal("password authentication failed")
	}
}

func TestUpdateRunsUpdateWithPreviousOutput(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{acceptEnv: true})
	c, _ := setup(t)
	news := resource.PropertyMap{
		"connection": conn(srv, key, nil),
		"create":     s("echo created"),
		"update":     s(`echo updated; echo "prev=$PULUMI_COMMAND_STDOUT"; echo "env=$GREETING"`),
		"environment": resource.NewObjectProperty(resource.PropertyMap{
			"GREETING": s("hi"),
		}),
	}
	id, state := c.Create(commandT, news, false)
	if labtest.Str(t, state, "stdout") != "created" {
		t.Fatalf("create stdout %q", labtest.Str(t, state, "stdout"))
	}
	news2 := news.Copy()
	news2["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{s("x")})
	state2, err := update(t, c, commandT, id, state, news2, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := labtest.Str(t, state2, "stdout"); got != "updated\nprev=created\nenv=hi" {
		t.Errorf("update stdout = %q", got)
	}
	if len(state2["triggers"].ArrayValue()) != 1 {
		t.Errorf("new inputs not in the state: %v", state2)
	}

	// without `update`, `create` runs again; addPreviousOutputInEnv false: no PULUMI_COMMAND_STDOUT
	news3 := resource.PropertyMap{
		"connection": conn(srv, key, nil), "create": s(`echo "again:${PULUMI_COMMAND_STDOUT:-unset}"`),
		"addPreviousOutputInEnv": resource.NewBoolProperty(false),
	}
	state3, err := update(t, c, commandT, id, state2, news3, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := labtest.Str(t, state3, "stdout"); got != "again:unset" {
		t.Errorf("create-on-update stdout = %q", got)
	}
	if _, ok := srv.lastEnv()["PULUMI_COMMAND_STDOUT"]; ok {
		t.Error("PULUMI_COMMAND_STDOUT sent although addPreviousOutputInEnv is false")
	}

	// neither update nor create: nothing runs, the old outputs stay
	before := srv.execCount()
	state4, err := update(t, c, commandT, id, state3, resource.PropertyMap{"connection": conn(srv, key, nil), "delete": s("true")}, false)
	if err != nil || srv.execCount() != before || labtest.Str(t, state4, "stdout") != "again:unset" {
		t.Errorf("no-command update: err %v, execs %d, stdout %q", err, srv.execCount()-before, labtest.Str(t, state4, "stdout"))
	}
}

func TestSetenvRefused(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{acceptEnv: false}) // like a default sshd without AcceptEnv
	c, l := setup(t)
	// `environment` refused: the step fails, like the real provider
	err := createErr(t, c, commandT, resource.PropertyMap{
		"connection": conn(srv, key, nil), "create": s("true"),
		"environment": resource.NewObjectProperty(resource.PropertyMap{"A": s("b")}),
	})
	if err == nil || !strings.Contains(err.Error(), `could not set environment variable "A"`) || !l.has(diag.Error, "AcceptEnv") {
		t.Fatalf("refused environment: err = %v", err)
	}
	// PULUMI_COMMAND_STDOUT refused: only a warning, the command runs
	id, state := c.Create(commandT, resource.PropertyMap{"connection": conn(srv, key, nil), "create": s("echo first")}, false)
	state2, err := update(t, c, commandT, id, state, resource.PropertyMap{"connection": conn(srv, key, nil), "create": s("echo second")}, false)
	if err != nil || labtest.Str(t, state2, "stdout") != "second" {
		t.Fatalf("update: %v %v", err, state2)
	}
	if !l.has(diag.Warning, "Unable to set 'PULUMI_COMMAND_STDOUT'") {
		t.Error("no warning about PULUMI_COMMAND_STDOUT")
	}
}

func TestDeleteRunsDelete(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{acceptEnv: true})
	c, _ := setup(t)
	marker := filepath.Join(t.TempDir(), "deleted")
	id, state := c.Create(commandT, resource.PropertyMap{
		"connection": conn(srv, key, nil), "create": s("echo made"),
		"delete": s(`echo "$PULUMI_COMMAND_STDOUT" > ` + marker),
	}, false)
	if err := del(t, c, commandT, id, state); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(marker)
	if err != nil || string(b) != "made\n" {
		t.Fatalf("delete did not run with the previous stdout: %q %v", b, err)
	}
	// no delete: nothing runs
	before := srv.execCount()
	id, state = c.Create(commandT, resource.PropertyMap{"connection": conn(srv, key, nil), "create": s("true")}, false)
	if err := del(t, c, commandT, id, state); err != nil || srv.execCount() != before+1 {
		t.Fatalf("delete without a delete command: %v, %d execs", err, srv.execCount()-before)
	}
	// a failing delete is an error
	id, state = c.Create(commandT, resource.PropertyMap{"connection": conn(srv, key, nil), "delete": s("exit 4")}, false)
	if err := del(t, c, commandT, id, state); err == nil || !strings.Contains(err.Error(), "status 4") {
		t.Fatalf("failing delete: %v", err)
	}
}

func TestPreviewRunsNothing(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{})
	c, _ := setup(t)
	news := resource.PropertyMap{"connection": conn(srv, key, nil), "create": s("echo x")}
	_, state := c.Create(commandT, news, true)
	if !labtest.IsUnknown(state, "stdout") || !labtest.IsUnknown(state, "stderr") || srv.execCount() != 0 {
		t.Fatalf("create preview: %v, %d execs", state, srv.execCount())
	}
	id, state := c.Create(commandT, news, false)
	// an update preview: unknown outputs when an input changed, nothing runs
	changed := news.Copy()
	changed["create"] = s("echo y")
	prev, err := update(t, c, commandT, id, state, changed, true)
	if err != nil || !labtest.IsUnknown(prev, "stdout") || srv.execCount() != 1 {
		t.Fatalf("update preview: %v %v, %d execs", err, prev, srv.execCount())
	}
	// unchanged inputs (e.g. an update forced by ignoreChanges): the old outputs stay known
	same, err := update(t, c, commandT, id, state, news, true)
	if err != nil || labtest.Str(t, same, "stdout") != "x" {
		t.Fatalf("unchanged update preview: %v %v", err, same)
	}
	// unknown input during preview
	unk := news.Copy()
	unk["create"] = labtest.Computed()
	prev, err = update(t, c, commandT, id, state, unk, true)
	if err != nil || !labtest.IsUnknown(prev, "stdout") || srv.execCount() != 1 {
		t.Fatalf("unknown-input preview: %v %v", err, prev)
	}
}

func TestProxy(t *testing.T) {
	key := newClientKey(t)
	bastion := startSSHServer(t, key, serverOpts{})
	target := startSSHServer(t, key, serverOpts{})
	c, l := setup(t)
	proxy := resource.NewObjectProperty(resource.PropertyMap{
		"host":       s(bastion.host),
		"port":       resource.NewNumberProperty(float64(bastion.port)),
		"privateKey": resource.MakeSecret(s(key.pem)),
		"hostKey":    s(bastion.hostKey),
	})
	_, state := c.Create(commandT, resource.PropertyMap{
		"connection": conn(target, key, resource.PropertyMap{"proxy": proxy, "hostKey": s(target.hostKey)}),
		"create":     s("echo through-proxy"),
	}, false)
	if labtest.Str(t, state, "stdout") != "through-proxy" {
		t.Fatalf("stdout %q", labtest.Str(t, state, "stdout"))
	}
	if target.execCount() != 1 || bastion.execCount() != 0 || bastion.forwardCount() != 1 {
		t.Fatalf("target execs %d, bastion execs %d, bastion forwards %d", target.execCount(), bastion.execCount(), bastion.forwardCount())
	}
	// a wrong bastion host key is refused, with the "proxy: " prefix
	badProxy := resource.NewObjectProperty(resource.PropertyMap{
		"host": s(bastion.host), "port": resource.NewNumberProperty(float64(bastion.port)),
		"privateKey": resource.MakeSecret(s(key.pem)), "hostKey": s(target.hostKey),
		"dialErrorLimit": resource.NewNumberProperty(1),
	})
	err := createErr(t, c, commandT, resource.PropertyMap{
		"connection": conn(target, key, resource.PropertyMap{"proxy": badProxy}), "create": s("true"),
	})
	if err == nil || !strings.Contains(err.Error(), "proxy: after 1 failed attempts") || !strings.Contains(err.Error(), "host key mismatch") {
		t.Fatalf("wrong bastion key: %v", err)
	}
	found := false
	for _, line := range l.status() {
		found = found || line == "Dial proxy 1/1 failed: retrying"
	}
	if !found {
		t.Errorf("no retry status message: %q", l.status())
	}
}

func TestDialRetriesUntilHostIsUp(t *testing.T) {
	key := newClientKey(t)
	// reserve a port, free it, and only start serving on it a little later (a booting host)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	started := make(chan bool, 1)
	go func() {
		time.Sleep(600 * time.Millisecond)
		l2, err := net.Listen("tcp", l.Addr().String())
		if err != nil {
			started <- false
			return
		}
		serveSSH(t, l2, key, serverOpts{})
		started <- true
	}()
	booting := &sshServer{host: "127.0.0.1", port: port}
	c, lg := setup(t)
	in := c.MustCheck(commandT, resource.PropertyMap{
		"connection": conn(booting, key, resource.PropertyMap{"dialErrorLimit": resource.NewNumberProperty(10)}),
		"create":     s("echo up"),
	})
	resp, err := c.RPC.Create(ctx(t), &pulumirpc.CreateRequest{Urn: c.URN(commandT, "r"), Type: commandT, Properties: c.Marshal(in)})
	if !<-started {
		t.Skip("could not listen again on the reserved port")
	}
	if err != nil {
		t.Fatal(err)
	}
	if labtest.Str(t, c.Unmarshal(resp.GetProperties()), "stdout") != "up" {
		t.Fatal("no output")
	}
	if st := lg.status(); len(st) == 0 || st[0] != "Dial 1/10 failed: retrying" {
		t.Errorf("status log %q", st)
	}
}

func TestDialGivesUp(t *testing.T) {
	key := newClientKey(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := &sshServer{host: "127.0.0.1", port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	c, lg := setup(t)
	// dialErrorLimit 2: three dials, then the real provider's error text (it counts from 0)
	err = createErr(t, c, commandT, resource.PropertyMap{"connection": conn(dead, key, nil), "create": s("true")})
	if err == nil || !strings.Contains(err.Error(), "after 2 failed attempts") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("dead host: %v", err)
	}
	if st := lg.status(); !reflect.DeepEqual(st, []string{"Dial 1/2 failed: retrying", "Dial 2/2 failed: retrying"}) {
		t.Errorf("status log %q", st)
	}
}

func TestDiff(t *testing.T) {
	c, _ := setup(t)
	connection := func(host string) resource.PropertyValue {
		return resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{"host": s(host)}))
	}
	base := resource.PropertyMap{"connection": connection("10.0.0.1"), "create": s("a"),
		"triggers": resource.NewArrayProperty([]resource.PropertyValue{s("t1")})}
	state := c.MustCheck(commandT, base)
	state["stdout"], state["stderr"] = s("out"), s("")

	check := func(name string, news resource.PropertyMap, wantChanges pulumirpc.DiffResponse_DiffChanges, wantDiffs, wantReplaces []string) {
		t.Helper()
		d := c.Diff(commandT, "id", state, news)
		if d.GetChanges() != wantChanges || !reflect.DeepEqual(d.GetDiffs(), wantDiffs) || !reflect.DeepEqual(d.GetReplaces(), wantReplaces) {
			t.Errorf("%s: changes %v diffs %q replaces %q; want %v %q %q", name, d.GetChanges(), d.GetDiffs(), d.GetReplaces(),
				wantChanges, wantDiffs, wantReplaces)
		}
		if !d.GetHasDetailedDiff() {
			t.Errorf("%s: no detailed diff", name)
		}
	}
	with := func(k string, v resource.PropertyValue) resource.PropertyMap {
		m := base.Copy()
		if v.IsNull() {
			delete(m, resource.PropertyKey(k))
		} else {
			m[resource.PropertyKey(k)] = v
		}
		return m
	}
	check("same", base, pulumirpc.DiffResponse_DIFF_NONE, nil, nil)
	check("create", with("create", s("b")), pulumirpc.DiffResponse_DIFF_SOME, []string{"create"}, nil)
	check("update added", with("update", s("u")), pulumirpc.DiffResponse_DIFF_SOME, []string{"update"}, nil)
	check("connection", with("connection", connection("10.0.0.9")), pulumirpc.DiffResponse_DIFF_SOME, []string{"connection"}, nil)
	check("stdin", with("stdin", resource.MakeSecret(s("x"))), pulumirpc.DiffResponse_DIFF_SOME, []string{"stdin"}, nil)
	// an element of triggers changed: "triggers[0]" is an update for the provider (the real
	// replaceOnChanges check matches only the key "triggers"); the SDK's replaceOnChanges
	// ["triggers[*]"] makes the engine replace.
	check("trigger element", with("triggers", resource.NewArrayProperty([]resource.PropertyValue{s("t2")})),
		pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers[0]"}, nil)
	// triggers added or removed as a whole: a replacement from the provider itself
	check("triggers removed", with("triggers", resource.NewNullProperty()), pulumirpc.DiffResponse_DIFF_SOME,
		[]string{"triggers"}, []string{"triggers"})
	noTrig := base.Copy()
	delete(noTrig, "triggers")
	stateNoTrig := c.MustCheck(commandT, noTrig)
	d := c.Diff(commandT, "id", stateNoTrig, base)
	if !reflect.DeepEqual(d.GetReplaces(), []string{"triggers"}) ||
		d.GetDetailedDiff()["triggers"].GetKind() != pulumirpc.PropertyDiff_ADD_REPLACE {
		t.Errorf("triggers added: %v", d)
	}
	// outputs in the old state are not inputs: no diff
	if d := c.Diff(commandT, "id", state, base); len(d.GetDiffs()) != 0 {
		t.Errorf("stdout counted as a diff: %v", d.GetDiffs())
	}
}
