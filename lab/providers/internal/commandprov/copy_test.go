// Tests for the LAB-ONLY pulumi-command stand-in (built only because the real provider cannot be built
// in the wg-relay lab; never used for a real deployment):
// CopyToRemote over SFTP, the local command, the binary and its deference to a real plugin.
package commandprov_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/archive"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/asset"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"

	"wg-relay.lab/providers/internal/commandprov"
	"wg-relay.lab/providers/internal/labtest"
)

func fileAsset(t *testing.T, path string) resource.PropertyValue {
	t.Helper()
	a, err := asset.FromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	return resource.NewAssetProperty(a)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("remote file: %v", err)
	}
	return string(b)
}

func TestCopyToRemote(t *testing.T) {
	key := newClientKey(t)
	srv := startSSHServer(t, key, serverOpts{})
	c, _ := setup(t)
	local := t.TempDir()
	remote := t.TempDir()
	src := filepath.Join(local, "payload.bin")
	if err := os.WriteFile(src, []byte("payload v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// FileAsset to a new path
	dest := filepath.Join(remote, "copied.bin")
	news := resource.PropertyMap{
		"connection": conn(srv, key, resource.PropertyMap{"hostKey": s(srv.hostKey)}),
		"source":     fileAsset(t, src),
		"remotePath": s(dest),
		"triggers":   resource.NewArrayProperty([]resource.PropertyValue{s("hash-1")}),
	}
	id, state := c.Create(copyT, news, false)
	if len(id) != 8 || readFile(t, dest) != "payload v1\n" {
		t.Fatalf("id %q, copy %q", id, readFile(t, dest))
	}
	if !labtest.IsSecret(state, "connection") || !state["source"].IsAsset() || labtest.Str(t, state, "remotePath") != dest {
		t.Errorf("state %v", state)
	}

	// same source and path (e.g. a connection change): Update copies nothing
	if err := os.Remove(dest); err != nil {
		t.Fatal(err)
	}
	same := news.Copy()
	same["connection"] = conn(srv, key, nil)
	if _, err := update(t, c, copyT, id, state, same, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatal("an update without a source/remotePath change copied again")
	}
	// changed content: copied again (overwriting)
	if err := os.WriteFile(src, []byte("payload v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := news.Copy()
	changed["source"] = fileAsset(t, src)
	if _, err := update(t, c, copyT, id, state, changed, false); err != nil {
		t.Fatal(err)
	}
	if readFile(t, dest) != "payload v2\n" {
		t.Fatal("changed source not copied")
	}
	// preview: nothing copied
	if err := os.Remove(dest); err != nil {
		t.Fatal(err)
	}
	c.Create(copyT, news, true)
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatal("a preview copied")
	}

	// existing directory: the file goes into it
	_, _ = c.Create(copyT, resource.PropertyMap{"connection": conn(srv, key, nil), "source": fileAsset(t, src), "remotePath": s(remote)}, false)
	if readFile(t, filepath.Join(remote, "payload.bin")) != "payload v2\n" {
		t.Fatal("copy into an existing directory")
	}

	// StringAsset
	text, err := asset.FromText("some text")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Create(copyT, resource.PropertyMap{"connection": conn(srv, key, nil),
		"source": resource.NewAssetProperty(text), "remotePath": s(filepath.Join(remote, "text.txt"))}, false)
	if readFile(t, filepath.Join(remote, "text.txt")) != "some text" {
		t.Fatal("string asset")
	}

	// FileArchive of a directory: copied recursively as remote/<dir>
	tree := filepath.Join(local, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(tree, "a.txt"), []byte("A"), 0o644)
	_ = os.WriteFile(filepath.Join(tree, "sub", "b.txt"), []byte("B"), 0o644)
	arch, err := archive.FromPath(tree)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Create(copyT, resource.PropertyMap{"connection": conn(srv, key, nil),
		"source": resource.NewArchiveProperty(arch), "remotePath": s(remote)}, false)
	if readFile(t, filepath.Join(remote, "tree", "a.txt")) != "A" || readFile(t, filepath.Join(remote, "tree", "sub", "b.txt")) != "B" {
		t.Fatal("archive copy")
	}

	// Delete removes nothing
	if err := del(t, c, copyT, id, state); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(remote, "payload.bin")); err != nil {
		t.Fatal("delete removed a file")
	}

	// a copy error (missing remote parent directory) fails the step
	err = createErr(t, c, copyT, resource.PropertyMap{"connection": conn(srv, key, nil), "source": fileAsset(t, src),
		"remotePath": s(filepath.Join(remote, "missing", "x"))})
	if err == nil || !strings.Contains(err.Error(), "failed to create remote file") {
		t.Fatalf("copy to a missing directory: %v", err)
	}

	// Diff: a new remotePath is an update, a triggers change replaces (element via the SDK)
	d := c.Diff(copyT, id, state, changed)
	if len(d.GetReplaces()) != 0 || len(d.GetDiffs()) == 0 {
		t.Errorf("source change diff %v", d)
	}
	noTrig := news.Copy()
	delete(noTrig, "triggers")
	if d := c.Diff(copyT, id, state, noTrig); len(d.GetReplaces()) != 1 || d.GetReplaces()[0] != "triggers" {
		t.Errorf("triggers removed diff %v", d)
	}

	// Check: a URI asset is refused, remotePath is required
	uri := &asset.Asset{URI: "https://example.invalid/x"}
	if _, f := c.Check(copyT, resource.PropertyMap{"connection": conn(srv, key, nil),
		"source": resource.NewAssetProperty(uri), "remotePath": s("/x")}); len(f) != 1 || f[0].GetProperty() != "asset" {
		t.Errorf("uri asset failures %v", f)
	}
	if _, f := c.Check(copyT, resource.PropertyMap{"connection": conn(srv, key, nil), "source": fileAsset(t, src)}); len(f) != 1 ||
		f[0].GetProperty() != "remotePath" {
		t.Errorf("missing remotePath failures %v", f)
	}
}

func TestLocalCommand(t *testing.T) {
	c, l := setup(t)
	dir := t.TempDir()
	id, state := c.Create(localT, resource.PropertyMap{
		"create": s(`echo hi; pwd; echo "$FOO"`), "dir": s(dir),
		"environment": resource.NewObjectProperty(resource.PropertyMap{"FOO": s("bar")}),
	}, false)
	if got := labtest.Str(t, state, "stdout"); got != "hi\n"+dir+"\nbar" {
		t.Fatalf("stdout %q", got)
	}
	if len(l.status()) != 3 {
		t.Errorf("status log %q", l.status())
	}
	state2, err := update(t, c, localT, id, state, resource.PropertyMap{"create": s(`echo "prev=$PULUMI_COMMAND_STDOUT" | head -1`)}, false)
	if err != nil || labtest.Str(t, state2, "stdout") != "prev=hi" {
		t.Fatalf("update: %v %v", err, state2)
	}
	err = createErr(t, c, localT, resource.PropertyMap{"create": s("echo nope; exit 2")})
	if err == nil || !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("failing local command: %v", err)
	}
	if _, f := c.Check(localT, resource.PropertyMap{"create": s("x"), "assetPaths": resource.NewArrayProperty(nil)}); len(f) != 1 {
		t.Errorf("assetPaths accepted: %v", f)
	}
}

func TestFindRealPlugin(t *testing.T) {
	home := t.TempDir()
	if _, ok := commandprov.FindRealPlugin(home, ""); ok {
		t.Fatal("found a plugin in an empty home")
	}
	mk := func(version string, partial bool) string {
		dir := filepath.Join(home, "plugins", "resource-command-v"+version)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		exe := filepath.Join(dir, "pulumi-resource-command")
		if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if partial {
			_ = os.WriteFile(dir+".partial", nil, 0o644)
		}
		return exe
	}
	mk("1.3.0", true) // an incomplete install is ignored
	if _, ok := commandprov.FindRealPlugin(home, ""); ok {
		t.Fatal("used a partial install")
	}
	v110 := mk("1.1.0", false)
	if got, _ := commandprov.FindRealPlugin(home, ""); got != v110 {
		t.Fatalf("got %q, want %q", got, v110)
	}
	v121 := mk("1.2.1", false)
	mk("1.4.0", false)
	if got, _ := commandprov.FindRealPlugin(home, ""); got != v121 {
		t.Fatalf("got %q, want the exact version %q", got, v121)
	}
	if got, _ := commandprov.FindRealPlugin(home, v121); got == v121 {
		t.Fatal("returned itself")
	}
}

func buildBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "pulumi-resource-command")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	if b, err := exec.Command(gobin, "build", "-buildvcs=false", "-o", out, "../../cmd/pulumi-resource-command").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestBinary(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.Contains(string(out), "pulumi-resource-command 1.2.1") || !strings.Contains(string(out), "LAB-ONLY") ||
		!strings.Contains(string(out), "always preferred") {
		t.Fatalf("--version: %q %v", out, err)
	}

	// no real plugin installed: it serves (prints its port) and answers as 1.2.1
	home := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PULUMI_HOME="+home)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	port, _ := bufio.NewReader(stdout).ReadString('\n')
	c := labtest.Dial(t, "127.0.0.1:"+strings.TrimSpace(port), "command")
	info, err := c.RPC.GetPluginInfo(ctx(t), &emptypb.Empty{})
	if err != nil || info.GetVersion() != "1.2.1" {
		t.Fatalf("GetPluginInfo %v %v", info, err)
	}
	if _, err := c.RPC.Check(ctx(t), &pulumirpc.CheckRequest{Urn: c.URN(localT, "r"), Type: localT,
		News: c.Marshal(resource.PropertyMap{"create": s("true")})}); err != nil {
		t.Fatal(err)
	}

	// a real plugin installed: the stand-in execs it with the same arguments
	dir := filepath.Join(home, "plugins", "resource-command-v1.2.1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(home, "real-ran")
	script := "#!/bin/sh\necho \"real $*\" > " + marker + "\n"
	if err := os.WriteFile(filepath.Join(dir, "pulumi-resource-command"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := exec.Command(bin, "127.0.0.1:1")
	run.Env = append(os.Environ(), "PULUMI_HOME="+home)
	if b, err := run.CombinedOutput(); err != nil {
		t.Fatalf("run with a real plugin installed: %v %s", err, b)
	}
	if got := readFile(t, marker); got != "real 127.0.0.1:1\n" {
		t.Fatalf("real plugin ran with %q", got)
	}
	// ... unless explicitly told to ignore it (the stand-in's own tests)
	_ = os.Remove(marker)
	ign := exec.Command(bin, "--version")
	ign.Env = append(os.Environ(), "PULUMI_HOME="+home, commandprov.NoRealPluginEnv+"=1")
	if b, err := ign.Output(); err != nil || !strings.Contains(string(b), "LAB-ONLY") {
		t.Fatalf("ignore: %q %v", b, err)
	}
}
