// pulumi-language-nodejs — LAB STAND-IN, not Pulumi's real Node.js language host.
//
// The real host (Go module github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) is not
// served by the Go module proxy this lab can reach, and get.pulumi.com is unreachable, so
// lab/toolchain.sh builds this small program under the same name ONLY when the real host cannot be
// had. It is used by the wg-relay lab and nothing else; a user with a real `pulumi` on PATH uses
// the real host that comes with it.
//
// It implements the LanguageRuntime gRPC service well enough for `pulumi preview/up/destroy` of a
// TypeScript/JavaScript program (Pulumi.yaml `runtime: nodejs`). Run does what the real host does:
// it starts a ResourceMonitor proxy in front of the engine's monitor, creates the synchronous-invoke
// FIFO pair, and spawns
//
//	node <resolved @pulumi/pulumi/cmd/run> --monitor ADDR --engine ADDR --sync DIR --organization O
//	     --project P --root-directory R --stack S --pwd PROGRAMDIR [--dry-run] --parallel N
//	     [--tracing URL] ENTRYPOINT ARGS...
//
// with PULUMI_CONFIG, PULUMI_CONFIG_SECRET_KEYS and PULUMI_NODEJS_TYPESCRIPT/_TSCONFIG_PATH in the
// environment, so @pulumi/pulumi's own run entry (ts-node included) executes the program.
//
// Not implemented (answer Unimplemented): program/project/package generation, Pack, Link, RunPlugin
// (Node.js plugins and policy packs), debugger attach, the bun runtime, fnm version switching.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const (
	// Same default (and override variable) as the real host.
	defaultRunPath = "@pulumi/pulumi/cmd/run"
	runPathEnvVar  = "PULUMI_LANGUAGE_NODEJS_RUN_PATH"

	pulumiConfigVar           = "PULUMI_CONFIG"
	pulumiConfigSecretKeysVar = "PULUMI_CONFIG_SECRET_KEYS" //nolint:gosec // a variable name, not a secret

	// Exit code with which @pulumi/pulumi's run entry says "the user already saw an actionable message".
	exitCodeUserActionable = 32

	standInNote = "lab stand-in for pulumi-language-nodejs (wg-relay lab/toolchain)"
)

func main() {
	var tracing, runtimeName string
	flag.StringVar(&tracing, "tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint")
	flag.StringVar(&runtimeName, "runtime", "nodejs", "Runtime to use (only nodejs is supported by this stand-in)")
	showVersion := flag.Bool("version", false, "Print the plugin version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	if runtimeName != "nodejs" {
		cmdutil.Exit(fmt.Errorf("%s: unsupported runtime %q (only nodejs)", standInNote, runtimeName))
	}
	logging.InitLogging(false, 0, false)

	// The engine passes its own address as the last positional argument.
	var engineAddress string
	if args := flag.Args(); len(args) > 0 {
		engineAddress = args[len(args)-1]
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	cancelChannel := make(chan bool)
	go func() {
		<-ctx.Done()
		cancel()
		close(cancelChannel)
	}()

	// Exit when the engine goes away, like the real host.
	if engineAddress != "" {
		if err := rpcutil.Healthcheck(ctx, engineAddress, 5*time.Minute, cancel); err != nil {
			cmdutil.Exit(fmt.Errorf("could not start health check: %w", err))
		}
	}

	host := newHost(engineAddress, tracing)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancelChannel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start language host RPC server: %w", err))
	}
	// The engine reads our port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host RPC stopped serving: %w", err))
	}
}

type nodeHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	mu            sync.Mutex
	engineAddress string
	tracing       string
	cancelCtx     context.Context
	cancelFunc    context.CancelFunc
}

func newHost(engineAddress, tracing string) *nodeHost {
	ctx, cancel := context.WithCancel(context.Background())
	return &nodeHost{engineAddress: engineAddress, tracing: tracing, cancelCtx: ctx, cancelFunc: cancel}
}

func (h *nodeHost) engine() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engineAddress
}

// Handshake: the engine tells us its address (used when it starts us without a positional argument).
func (h *nodeHost) Handshake(ctx context.Context,
	req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	h.engineAddress = req.GetEngineAddress()
	h.mu.Unlock()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *nodeHost) GetPluginInfo(ctx context.Context, _ *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *nodeHost) Cancel(ctx context.Context, _ *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancelFunc()
	return &emptypb.Empty{}, nil
}

// ---------------------------------------------------------------------------------------------
// Options from Pulumi.yaml (runtime.options)

type nodeOptions struct {
	typescript   bool
	tsconfigpath string
	nodeargs     string
}

func parseOptions(info *pulumirpc.ProgramInfo) (nodeOptions, error) {
	opts := nodeOptions{typescript: true}
	if info == nil || info.GetOptions() == nil {
		return opts, nil
	}
	m := info.GetOptions().AsMap()
	if v, ok := m["typescript"]; ok {
		b, ok := v.(bool)
		if !ok {
			return opts, errors.New("typescript option must be a boolean")
		}
		opts.typescript = b
	}
	if v, ok := m["tsconfig"]; ok {
		s, ok := v.(string)
		if !ok {
			return opts, errors.New("tsconfig option must be a string")
		}
		opts.tsconfigpath = s
	}
	if v, ok := m["nodeargs"]; ok {
		s, ok := v.(string)
		if !ok {
			return opts, errors.New("nodeargs option must be a string")
		}
		opts.nodeargs = s
	}
	if v, ok := m["packagemanager"]; ok {
		if s, _ := v.(string); s != "" && s != "npm" && s != "auto" {
			return opts, fmt.Errorf("%s: packagemanager %q is not supported (npm only)", standInNote, s)
		}
	}
	return opts, nil
}

// ---------------------------------------------------------------------------------------------
// Plugins/packages required by the program. By default the stand-in reports NONE: the engine then
// loads each provider when the program first uses it and finds it on PATH, and `pulumi install`
// never tries to download one (it downloads every reported package whatever is on PATH, and
// get.pulumi.com is unreachable here). With PULUMI_LAB_LANGHOST_REPORT_PACKAGES=true it reports,
// as the real host does, the node_modules packages whose package.json has "pulumi": {"resource": true}.
const reportPackagesEnvVar = "PULUMI_LAB_LANGHOST_REPORT_PACKAGES"

type packageJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Pulumi  struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"pulumi"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
}

func pluginOf(info packageJSON) (*pulumirpc.PackageDependency, bool) {
	if !info.Pulumi.Resource {
		return nil, false
	}
	name := info.Pulumi.Name
	if name == "" {
		if !strings.HasPrefix(info.Name, "@pulumi/") {
			return nil, false // third-party packages must name their plugin; the real host errors here
		}
		name = strings.TrimPrefix(info.Name, "@pulumi/")
	}
	ver := info.Pulumi.Version
	if ver == "" {
		ver = info.Version
	}
	if ver == "" {
		return nil, false
	}
	if !strings.HasPrefix(ver, "v") {
		ver = "v" + ver
	}
	return &pulumirpc.PackageDependency{Name: name, Kind: "resource", Version: ver, Server: info.Pulumi.Server}, true
}

func packagesFromDir(dir string, inNodeModules bool, seen map[string]bool) []*pulumirpc.PackageDependency {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if seen[dir] {
		return nil
	}
	seen[dir] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []*pulumirpc.PackageDependency
	for _, e := range entries {
		curr := filepath.Join(dir, e.Name())
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if fi, err := os.Stat(curr); err == nil {
				isDir = fi.IsDir()
			}
		}
		switch {
		case isDir:
			out = append(out, packagesFromDir(curr, inNodeModules || filepath.Base(dir) == "node_modules", seen)...)
		case inNodeModules && e.Name() == "package.json":
			b, err := os.ReadFile(curr)
			if err != nil {
				continue
			}
			var info packageJSON
			if json.Unmarshal(b, &info) != nil {
				continue
			}
			if dep, ok := pluginOf(info); ok {
				out = append(out, dep)
			}
		}
	}
	return out
}

func (h *nodeHost) GetRequiredPackages(ctx context.Context,
	req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" || os.Getenv(reportPackagesEnvVar) != "true" {
		return &pulumirpc.GetRequiredPackagesResponse{}, nil
	}
	// The real host walks the whole program directory; the stand-in starts at node_modules, so lab
	// state next to the program (.lab/, mounted root file systems, .git) is never traversed.
	pkgs := packagesFromDir(filepath.Join(dir, "node_modules"), true, map[string]bool{})
	// One entry per name@version.
	uniq := map[string]*pulumirpc.PackageDependency{}
	for _, p := range pkgs {
		uniq[p.Name+"@"+p.Version] = p
	}
	keys := make([]string, 0, len(uniq))
	for k := range uniq {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, k := range keys {
		resp.Packages = append(resp.Packages, uniq[k])
	}
	return resp, nil
}

// GetRequiredPlugins is superseded by GetRequiredPackages; the real host answers Unimplemented too,
// which makes the engine use GetRequiredPackages.

// ---------------------------------------------------------------------------------------------
// Run

func locateModule(ctx context.Context, mod, programDir, nodeBin string) (string, error) {
	script := fmt.Sprintf(`try { console.log(require.resolve(%q)); } catch (error) { `+
		`if (error.code === 'MODULE_NOT_FOUND') { console.error("It looks like the Pulumi SDK has not been `+
		`installed. Have you run npm install (or bash lab/toolchain.sh)?"); } else { console.error(error.message); } `+
		`process.exit(1); }`, mod)
	cmd := exec.CommandContext(ctx, nodeBin, "-e", script)
	cmd.Dir = programDir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", errors.New(strings.TrimSpace(string(ee.Stderr)))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func (h *nodeHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if h.engine() == "" {
		return nil, errors.New("when debugging or running explicitly, must call Handshake before Run")
	}
	if req.GetAttachDebugger() {
		return &pulumirpc.RunResponse{Error: standInNote + ": attaching a debugger is not supported"}, nil
	}

	// Connect to the engine's resource monitor; node talks to our proxy, which forwards every call.
	conn, err := grpc.NewClient(req.GetMonitorAddress(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), rpcutil.GrpcChannelOptions())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	target := pulumirpc.NewResourceMonitorClient(conn)

	serverCancel := make(chan bool)
	defer func() {
		serverCancel <- true
		close(serverCancel)
	}()
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: serverCancel,
		Init: func(srv *grpc.Server) error {
			return nil // every method goes through the transparent proxy (see proxy.go)
		},
		Options: proxyServerOptions(conn),
	})
	if err != nil {
		return nil, err
	}

	pipes, err := newSyncPipes()
	if err != nil {
		return nil, err
	}
	defer pipes.shutdown()
	pipesDone := pipes.serve(ctx, target)

	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "could not find node on the $PATH: " + err.Error()}, nil
	}
	runPath := os.Getenv(runPathEnvVar)
	if runPath == "" {
		runPath = defaultRunPath
	}
	runPath, err = locateModule(ctx, runPath, req.GetInfo().GetProgramDirectory(), nodeBin)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	responses := make(chan *pulumirpc.RunResponse, 1)
	go func() {
		responses <- h.execNode(ctx, req, nodeBin, runPath, fmt.Sprintf("127.0.0.1:%d", handle.Port), pipes.dir)
	}()
	serverDone := handle.Done
	for {
		select {
		case err := <-serverDone:
			if err != nil {
				return &pulumirpc.RunResponse{Error: err.Error()}, nil
			}
			serverDone = nil
		case err := <-pipesDone:
			if err != nil {
				return &pulumirpc.RunResponse{Error: err.Error()}, nil
			}
			pipesDone = nil
		case resp := <-responses:
			return resp, nil
		}
	}
}

func (h *nodeHost) constructArguments(req *pulumirpc.RunRequest, runPath, monitor, syncDir string) []string {
	args := []string{runPath}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", monitor)
	add("engine", h.engine())
	add("sync", syncDir)
	add("organization", req.GetOrganization())
	add("project", req.GetProject())
	add("root-directory", req.GetInfo().GetRootDirectory())
	add("stack", req.GetStack())
	add("pwd", req.GetInfo().GetProgramDirectory())
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	if req.GetQueryMode() { // the engine no longer sets it; passed through only if it ever does
		args = append(args, "--query-mode", "true")
	}
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("tracing", h.tracing)
	entry := req.GetInfo().GetEntryPoint()
	if entry == "" {
		entry = "."
	}
	args = append(args, entry)
	return append(args, req.GetArgs()...)
}

func constructConfig(req *pulumirpc.RunRequest) (string, error) {
	cfg := req.GetConfig()
	if cfg == nil {
		return "{}", nil
	}
	// Same key shape as the real host: "<namespace>:config:<name>".
	out := make(map[string]string, len(cfg))
	for k, v := range cfg {
		pk, err := config.ParseKey(k)
		if err != nil {
			return "", err
		}
		out[pk.Namespace()+":config:"+pk.Name()] = v
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func constructConfigSecretKeys(req *pulumirpc.RunRequest) (string, error) {
	keys := req.GetConfigSecretKeys()
	if keys == nil {
		return "[]", nil
	}
	b, err := json.Marshal(keys)
	return string(b), err
}

func (h *nodeHost) execNode(ctx context.Context, req *pulumirpc.RunRequest,
	nodeBin, runPath, monitor, syncDir string,
) *pulumirpc.RunResponse {
	args := h.constructArguments(req, runPath, monitor, syncDir)
	cfg, err := constructConfig(req)
	if err != nil {
		return &pulumirpc.RunResponse{Error: "failed to serialize configuration: " + err.Error()}
	}
	secretKeys, err := constructConfigSecretKeys(req)
	if err != nil {
		return &pulumirpc.RunResponse{Error: "failed to serialize configuration secret keys: " + err.Error()}
	}
	opts, err := parseOptions(req.GetInfo())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}
	}

	env := os.Environ()
	env = append(env, pulumiConfigVar+"="+cfg, pulumiConfigSecretKeysVar+"="+secretKeys)
	if opts.typescript {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if opts.tsconfigpath != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+opts.tsconfigpath)
	}
	// nodeargs is split on white space (the real host uses shell-like quoting rules).
	nodeArgs := append(strings.Fields(opts.nodeargs), args...)

	logging.V(5).Infof("%s launching: %s %s", standInNote, nodeBin, strings.Join(nodeArgs, " "))

	cmdCtx, cmdCancel := context.WithCancel(h.cancelCtx)
	defer cmdCancel()
	context.AfterFunc(ctx, cmdCancel)
	cmd := exec.CommandContext(cmdCtx, nodeBin, nodeArgs...)
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
	// Node may switch its stdio to non-blocking mode; never hand it our own file descriptors.
	cmd.Stdout = struct{ io.Writer }{os.Stdout}
	cmd.Stderr = struct{ io.Writer }{os.Stderr}
	cmd.Env = env

	if err := cmd.Run(); err != nil {
		_ = os.Stdout.Sync()
		_ = os.Stderr.Sync()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			switch code := ee.ExitCode(); code {
			case 0:
				return &pulumirpc.RunResponse{Error: "Program exited unexpectedly: " + ee.Error()}
			case exitCodeUserActionable:
				return &pulumirpc.RunResponse{Bail: true}
			default:
				return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", code)}
			}
		}
		return &pulumirpc.RunResponse{
			Error: "Problem executing program (could not run language executor): " + err.Error(),
		}
	}
	return &pulumirpc.RunResponse{}
}

// ---------------------------------------------------------------------------------------------
// InstallDependencies (`pulumi install`, `pulumi new`): npm ci when a lock file exists, else npm install.

func (h *nodeHost) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()

	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetDirectory() //nolint:staticcheck // older engines
	}
	if _, err := parseOptions(req.GetInfo()); err != nil {
		return err
	}
	sub := "install"
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil {
		sub = "ci"
	}
	fmt.Fprintf(stdout, "Installing dependencies (npm %s, %s)...\n\n", sub, standInNote)
	cmd := exec.CommandContext(server.Context(), "npm", sub, "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm %s failed: %w", sub, err)
	}
	fmt.Fprintf(stdout, "Finished installing dependencies\n\n")
	return closer.Close()
}

func (h *nodeHost) RuntimeOptionsPrompts(ctx context.Context,
	req *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *nodeHost) Template(ctx context.Context, req *pulumirpc.TemplateRequest) (*pulumirpc.TemplateResponse, error) {
	return &pulumirpc.TemplateResponse{}, nil
}

// ---------------------------------------------------------------------------------------------
// About / GetProgramDependencies (`pulumi about`, update metadata)

func (h *nodeHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("could not find executable node: %w", err)
	}
	resp := &pulumirpc.AboutResponse{
		Executable: nodeBin,
		Metadata:   map[string]string{"packagemanager": "npm", "languagehost": standInNote},
	}
	if out, err := exec.CommandContext(ctx, nodeBin, "--version").Output(); err == nil {
		resp.Version = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "npm", "--version").Output(); err == nil {
		resp.Metadata["packagemanagerVersion"] = strings.TrimSpace(string(out))
	}
	return resp, nil
}

func readPackageJSON(path string) (packageJSON, error) {
	var info packageJSON
	b, err := os.ReadFile(path)
	if err != nil {
		return info, err
	}
	return info, json.Unmarshal(b, &info)
}

func (h *nodeHost) GetProgramDependencies(ctx context.Context,
	req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	dir := req.GetInfo().GetProgramDirectory()
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	if req.GetTransitiveDependencies() {
		// Every installed package, from npm's own record of node_modules.
		var lock struct {
			Packages map[string]struct {
				Version string `json:"version"`
			} `json:"packages"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", ".package-lock.json"))
		if err != nil {
			return nil, fmt.Errorf("failed to get node dependencies: %w", err)
		}
		if err := json.Unmarshal(b, &lock); err != nil {
			return nil, fmt.Errorf("failed to get node dependencies: %w", err)
		}
		names := make([]string, 0, len(lock.Packages))
		for p := range lock.Packages {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, p := range names {
			i := strings.LastIndex(p, "node_modules/")
			if i < 0 {
				continue
			}
			resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{
				Name: p[i+len("node_modules/"):], Version: lock.Packages[p].Version,
			})
		}
		return resp, nil
	}
	root, err := readPackageJSON(filepath.Join(dir, "package.json"))
	if err != nil {
		return nil, fmt.Errorf("failed to get node dependencies: %w", err)
	}
	names := []string{}
	for n := range root.Dependencies {
		names = append(names, n)
	}
	for n := range root.DevDependencies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		info, err := readPackageJSON(filepath.Join(dir, "node_modules", n, "package.json"))
		if err != nil {
			continue // declared but not installed: npm ls leaves these out as well
		}
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: n, Version: info.Version})
	}
	return resp, nil
}
