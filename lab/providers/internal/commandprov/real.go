// LAB-ONLY STAND-IN for pulumi-resource-command 1.2.1, used only because the real provider cannot be
// built in the wg-relay lab (see provider.go); never used for a real deployment.

package commandprov

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// NoRealPluginEnv, when set to a non-empty value, makes the stand-in serve even if a real
// pulumi-resource-command is installed (for the stand-in's own tests only).
const NoRealPluginEnv = "WG_RELAY_LAB_COMMAND_IGNORE_REAL_PLUGIN"

// The Pulumi engine prefers a plugin found on $PATH (where the lab puts this stand-in) over the
// plugin cache, so the stand-in itself gives way: if a real pulumi-resource-command is installed
// in $PULUMI_HOME/plugins (default ~/.pulumi/plugins), the stand-in execs it with the same
// arguments and environment before serving anything.

// ExecRealPlugin replaces the current process by a real installed pulumi-resource-command, if
// there is one; it returns nil when there is none (or NoRealPluginEnv is set).
func ExecRealPlugin() error {
	if os.Getenv(NoRealPluginEnv) != "" {
		return nil
	}
	self, _ := os.Executable()
	real, ok := FindRealPlugin(pulumiHome(), self)
	if !ok {
		return nil
	}
	if err := syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ()); err != nil {
		return fmt.Errorf("exec the installed real plugin %s: %w", real, err)
	}
	return nil
}

func pulumiHome() string {
	if h := os.Getenv("PULUMI_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".pulumi")
}

// FindRealPlugin looks for installed command plugins in <home>/plugins/resource-command-v<version>/
// (complete installs only: no .partial marker) and returns the executable of version 1.2.1 if
// installed, else of the newest installed version. self (this executable) is never returned.
func FindRealPlugin(home, self string) (string, bool) {
	if home == "" {
		return "", false
	}
	dir := filepath.Join(home, "plugins")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	var best string
	var bestV [3]int
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, "resource-command-v") {
			continue
		}
		v, ok := parseSemver(strings.TrimPrefix(name, "resource-command-v"))
		if !ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, name+".partial")); err == nil {
			continue
		}
		exe := filepath.Join(dir, name, "pulumi-resource-command")
		st, err := os.Stat(exe)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			continue
		}
		if self != "" {
			if ss, err := os.Stat(self); err == nil && os.SameFile(ss, st) {
				continue
			}
		}
		if strings.TrimPrefix(name, "resource-command-v") == Version {
			return exe, true
		}
		if best == "" || less(bestV, v) {
			best, bestV = exe, v
		}
	}
	return best, best != ""
}

func parseSemver(s string) ([3]int, bool) {
	var v [3]int
	s, _, _ = strings.Cut(s, "-")
	s, _, _ = strings.Cut(s, "+")
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
