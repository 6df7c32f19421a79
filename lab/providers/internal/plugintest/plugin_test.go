// Tests the built LAB-ONLY stand-in plugin binaries (never used for a real
// deployment) as the Pulumi engine runs them: as a separate process that prints its
// gRPC port, then Configure/Check/Create over gRPC.
package plugintest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"google.golang.org/protobuf/types/known/emptypb"

	"wg-relay.lab/providers/internal/labtest"
)

func build(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	cmd := exec.Command(gobin, "build", "-buildvcs=false", "-o", out, "../../cmd/"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

// start runs the plugin with no engine address (attach mode) and returns the
// address it listens on; the process is stopped (by its own handle) at cleanup.
func start(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
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
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case port := <-line:
		if port == "" {
			t.Fatalf("%s printed no port", bin)
		}
		return "127.0.0.1:" + port
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not print its port", bin)
	}
	return ""
}

func TestPluginBinaries(t *testing.T) {
	for _, tc := range []struct {
		name, version, typ string
		inputs             resource.PropertyMap
		output             string
	}{
		{"pulumi-resource-random", "4.21.2", "random:index/randomBytes:RandomBytes",
			resource.PropertyMap{"length": resource.NewNumberProperty(32)}, "base64"},
		{"pulumi-resource-tls", "5.6.1", "tls:index/privateKey:PrivateKey",
			resource.PropertyMap{"algorithm": resource.NewStringProperty("ED25519")}, "privateKeyPem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := build(t, tc.name)
			v, err := exec.Command(bin, "--version").Output()
			if err != nil || !strings.Contains(string(v), tc.version) || !strings.Contains(string(v), "LAB-ONLY") ||
				!strings.Contains(string(v), "never used for a real deployment") {
				t.Fatalf("--version = %q (%v)", v, err)
			}
			c := labtest.Dial(t, start(t, bin), "")
			info, err := c.RPC.GetPluginInfo(context.Background(), &emptypb.Empty{})
			if err != nil || info.GetVersion() != tc.version {
				t.Fatalf("GetPluginInfo = %v, %v", info, err)
			}
			_, st := c.Create(tc.typ, tc.inputs, false)
			if labtest.Str(t, st, tc.output) == "" || !labtest.IsSecret(st, tc.output) {
				t.Errorf("%s: %s missing or not secret", tc.typ, tc.output)
			}
		})
	}
}
