// LAB-ONLY STAND-IN for the real pulumi-command provider plugin (pulumi-resource-command 1.2.1,
// @pulumi/command 1.2.1). The wg-relay lab builds it only because the Go module proxy there
// refuses github.com/pulumi/pulumi-command/provider, so the real plugin cannot be built; it is
// never used for a real deployment. A real pulumi-resource-command installed in the Pulumi plugin
// cache is always preferred: at start-up this binary execs it instead of serving (see real.go).
//
// Package commandprov implements, with the real provider's type tokens, property names, defaults,
// diff rules and error texts (mirrored from pulumi/pulumi-command provider/pkg/provider/remote and
// from the default resource logic of pulumi-go-provider's infer package, which the real provider
// uses):
//
//   - command:remote:Command      (create/update/delete over SSH, stdin, environment, logging,
//     PULUMI_COMMAND_STDOUT/STDERR, hostKey, proxy, dial retries)
//   - command:remote:CopyToRemote (SFTP upload of a FileAsset, StringAsset or FileArchive)
//   - command:local:Command       (a small subset, enough for the lab's toolchain check)
package commandprov

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"wg-relay.lab/providers/internal/labprov"
)

// Version is the real provider version this stand-in answers to.
const Version = "1.2.1"

const (
	remoteCommandT = "command:remote:Command"
	copyToRemoteT  = "command:remote:CopyToRemote"
	localCommandT  = "command:local:Command"
)

// Upstream names what this binary stands in for.
const Upstream = "pulumi-resource-command " + Version + " from github.com/pulumi/pulumi-command, used by @pulumi/command " + Version

// Notice is the lab-only disclaimer printed by --version and carried by the schema.
func Notice() string {
	return labprov.Notice("command", Upstream) +
		"; a real pulumi-resource-command installed in the Pulumi plugin cache is always preferred " +
		"(this binary execs it instead of serving)"
}

// LogFunc receives the engine log messages of a resource: ephemeral ones are status messages
// (the real provider's InfoStatus/DebugStatus), the others regular diagnostics.
type LogFunc func(ctx context.Context, sev diag.Severity, urn resource.URN, msg string, ephemeral bool)

// Provider is the lab stand-in resource provider. The plugin-level RPCs (GetPluginInfo,
// CheckConfig, DiffConfig, Configure, Cancel, Invoke) come from the shared labprov scaffolding.
type Provider struct {
	*labprov.Provider

	// Log receives the engine log messages; nil discards them.
	Log LogFunc
}

// New returns the stand-in provider; log may be nil.
func New(log LogFunc) *Provider {
	return &Provider{
		Provider: &labprov.Provider{Name: "command", Version: Version, Upstream: Upstream},
		Log:      log,
	}
}

// Main runs the provider as a plugin process: `--version` prints the version and the lab-only
// notice; otherwise a real installed pulumi-resource-command, if any, replaces this process.
func Main() {
	for _, a := range os.Args[1:] {
		if a == "--version" || a == "-version" || a == "version" {
			fmt.Printf("pulumi-resource-command %s (%s)\n", Version, Notice())
			return
		}
	}
	if err := ExecRealPlugin(); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-command (lab-only stand-in): %v\n", err)
		os.Exit(1)
	}
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		if host == nil { // attach mode: no engine to log to
			return New(nil), nil
		}
		return New(func(ctx context.Context, sev diag.Severity, urn resource.URN, msg string, ephemeral bool) {
			if ephemeral {
				_ = host.LogStatus(ctx, sev, urn, msg)
			} else {
				_ = host.Log(ctx, sev, urn, msg)
			}
		}), nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-command (lab-only stand-in): %v\n", err)
		os.Exit(1)
	}
}

func (p *Provider) logf(ctx context.Context, sev diag.Severity, urn resource.URN, ephemeral bool, format string, args ...any) {
	if p.Log != nil {
		p.Log(ctx, sev, urn, fmt.Sprintf(format, args...), ephemeral)
	}
}

// --- marshalling -------------------------------------------------------------------------------

var inOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipInternalKeys: true}
var outOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, inOpts)
}

func marshal(pm resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(pm, outOpts)
}

func resourceType(typ, urn string) string {
	if typ == "" && urn != "" {
		return string(resource.URN(urn).Type())
	}
	return typ
}

func unimplemented(typ string) error {
	return status.Errorf(codes.InvalidArgument,
		"command: resource type %q is not implemented by this lab-only stand-in provider", typ)
}

// failed turns an error of a resource operation into the gRPC error the engine shows.
func failed(err error) error {
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	return status.Error(codes.Unknown, err.Error())
}

// --- resource RPCs -----------------------------------------------------------------------------

// GetSchema returns a minimal schema of the implemented subset.
func (p *Provider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: schemaJSON()}, nil
}

func (p *Provider) Check(ctx context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var failures []failure
	switch typ {
	case remoteCommandT:
		failures = checkRemoteCommand(news)
	case copyToRemoteT:
		failures = checkCopyToRemote(news)
	case localCommandT:
		failures = checkLocalCommand(news)
	default:
		return nil, unimplemented(typ)
	}
	inputs, err := marshal(news)
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.CheckResponse{Inputs: inputs}
	for _, f := range failures {
		resp.Failures = append(resp.Failures, &pulumirpc.CheckFailure{Property: f.property, Reason: f.reason})
	}
	return resp, nil
}

func (p *Provider) Diff(ctx context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	var inputs []string
	switch typ {
	case remoteCommandT:
		inputs = remoteCommandInputs
	case copyToRemoteT:
		inputs = copyToRemoteInputs
	case localCommandT:
		inputs = localCommandInputs
	default:
		return nil, unimplemented(typ)
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	return inferDiff(olds, news, inputs, req.GetIgnoreChanges()), nil
}

func (p *Provider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	urn := resource.URN(req.GetUrn())
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	var id string
	var state resource.PropertyMap
	switch typ {
	case remoteCommandT:
		id, state, err = p.createRemoteCommand(ctx, urn, props, req.GetPreview())
	case copyToRemoteT:
		id, state, err = p.createCopyToRemote(ctx, urn, props, req.GetPreview())
	case localCommandT:
		id, state, err = p.createLocalCommand(ctx, urn, props, req.GetPreview())
	default:
		return nil, unimplemented(typ)
	}
	if err != nil {
		return nil, failed(err)
	}
	st, err := marshal(state)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: st}, nil
}

// Read returns the state and inputs unchanged, like pulumi-go-provider's default Read (none of
// the real resources implements its own).
func (p *Provider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	if typ != remoteCommandT && typ != copyToRemoteT && typ != localCommandT {
		return nil, unimplemented(typ)
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (p *Provider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	urn := resource.URN(req.GetUrn())
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	// pulumi-go-provider: ignored changes keep their old value.
	for _, k := range req.GetIgnoreChanges() {
		news[resource.PropertyKey(k)] = olds[resource.PropertyKey(k)]
	}
	var state resource.PropertyMap
	switch typ {
	case remoteCommandT:
		state, err = p.updateRemoteCommand(ctx, urn, olds, news, req.GetPreview())
	case copyToRemoteT:
		state, err = p.updateCopyToRemote(ctx, urn, olds, news, req.GetPreview())
	case localCommandT:
		state, err = p.updateLocalCommand(ctx, urn, olds, news, req.GetPreview())
	default:
		return nil, unimplemented(typ)
	}
	if err != nil {
		return nil, failed(err)
	}
	st, err := marshal(state)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: st}, nil
}

func (p *Provider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	urn := resource.URN(req.GetUrn())
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	switch typ {
	case remoteCommandT:
		err = p.deleteRemoteCommand(ctx, urn, props)
	case copyToRemoteT:
		// The real CopyToRemote has no Delete: nothing is removed from the host.
	case localCommandT:
		err = p.deleteLocalCommand(ctx, urn, props)
	default:
		return nil, unimplemented(typ)
	}
	if err != nil {
		return nil, failed(err)
	}
	return &emptypb.Empty{}, nil
}

// --- shared helpers ----------------------------------------------------------------------------

type failure struct{ property, reason string }

// echoInputs builds a state from the checked inputs the way the real provider's outputs embed
// its inputs: every non-null input as given (secrets and unknowns kept), the connection always
// secret (it is tagged provider:"secret").
func echoInputs(news resource.PropertyMap, inputs []string) resource.PropertyMap {
	state := resource.PropertyMap{}
	for _, name := range inputs {
		k := resource.PropertyKey(name)
		if v, ok := news[k]; ok && !v.IsNull() {
			state[k] = v
		}
	}
	if v, ok := state["connection"]; ok && !v.IsSecret() {
		state["connection"] = resource.MakeSecret(v)
	}
	return state
}

func computedString() resource.PropertyValue {
	return resource.MakeComputed(resource.NewStringProperty(""))
}

// str returns a known string input (through a secret), and whether it is set.
func str(pm resource.PropertyMap, k string) (string, bool) {
	v, ok := pm[resource.PropertyKey(k)]
	if !ok {
		return "", false
	}
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !v.IsString() {
		return "", false
	}
	return v.StringValue(), true
}

func strPtr(pm resource.PropertyMap, k string) *string {
	if s, ok := str(pm, k); ok {
		return &s
	}
	return nil
}

// boolPtr returns a known boolean input, or nil.
func boolPtr(pm resource.PropertyMap, k string) *bool {
	v, ok := pm[resource.PropertyKey(k)]
	if !ok {
		return nil
	}
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !v.IsBool() {
		return nil
	}
	b := v.BoolValue()
	return &b
}

// stringMap returns a known map of strings (environment), sorted by key.
func stringMap(pm resource.PropertyMap, k string) [][2]string {
	v, ok := pm[resource.PropertyKey(k)]
	if !ok || v.ContainsUnknowns() {
		return nil
	}
	m, _ := labprov.Plain(v).(map[string]any)
	out := make([][2]string, 0, len(m))
	for k, e := range m {
		out = append(out, [2]string{k, fmt.Sprint(e)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func stringList(pm resource.PropertyMap, k string) []string {
	v, ok := pm[resource.PropertyKey(k)]
	if !ok || v.ContainsUnknowns() {
		return nil
	}
	arr, _ := labprov.Plain(v).([]any)
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// isComputed reports whether v is unknown at the top level (possibly inside a secret), like
// pulumi-go-provider's ende.IsComputed.
func isComputed(v resource.PropertyValue) bool {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v.IsComputed() || (v.IsOutput() && !v.OutputValue().Known)
}

// deepEquals compares two values ignoring secretness.
func deepEquals(a, b resource.PropertyValue) bool {
	return labprov.Unsecret(a).DeepEquals(labprov.Unsecret(b))
}
