// LAB-ONLY STAND-IN. This code exists only so the wg-relay lab can run `pulumi up`
// on a machine where the real pulumi-random / pulumi-tls provider plugins cannot be
// built or downloaded. It is never used for a real deployment.
//
// Package labprov is a deliberately small Pulumi resource-provider framework: a
// resource is described by a Resource value (its type token, its input and output
// properties, and a Create function); Provider turns a set of them into a
// pulumirpc.ResourceProviderServer that the Pulumi engine can drive (Check, Diff,
// Create, Read, Update, Delete, preview included).
package labprov

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Notice is the lab-only disclaimer every binary prints with --version and every
// schema carries in its description.
func Notice(pkg, upstream string) string {
	return fmt.Sprintf("LAB-ONLY stand-in for the real %s provider (%s), built by the wg-relay lab "+
		"only because the real provider cannot be built there; it implements a small subset and "+
		"is never used for a real deployment", pkg, upstream)
}

// Type is the type of a property.
type Type int

const (
	String Type = iota
	Integer
	Boolean
	StringList
	AnyMap // map of arbitrary values (random's keepers)
	Object // a nested object, described by Prop.Fields
)

// Prop describes one property of a resource.
type Prop struct {
	Name     string
	Type     Type
	Ref      string // Object only: the schema type token (e.g. tls:index/CertRequestSubject:CertRequestSubject)
	Fields   []Prop // Object only
	Required bool   // inputs only: Check reports a failure when it is absent
	Default  any    // inputs only: filled in by Check when absent (string, int, bool)
	Secret   bool   // the value is always stored as a secret
	Desc     string
}

// Failure is a Check failure on one property.
type Failure struct{ Property, Reason string }

// Resource describes one resource type.
type Resource struct {
	Token   string
	Desc    string
	Inputs  []Prop
	Outputs []Prop // computed-only outputs (inputs are echoed into the state as well)
	// Updatable lists the inputs whose change is applied in place; a change to any
	// other input replaces the resource (as the real providers' RequiresReplace does).
	Updatable []string
	// Normalize may adjust the checked inputs (e.g. keep two aliases in sync). It sees
	// the raw property map, unknowns and secrets included, before defaults are filled.
	Normalize func(news resource.PropertyMap) []Failure
	// Validate checks the known values (unknown values are absent from v).
	Validate func(v Values) []Failure
	// Create generates the resource from fully known, secret-free inputs, returning
	// its ID and the computed outputs.
	Create func(v Values) (id string, outputs map[string]any, err error)
	// Refresh recomputes outputs that depend on time (e.g. readyForRenewal) from the
	// state; it may return nil.
	Refresh func(state Values) map[string]any
	// ForceReplace reports extra reasons to replace (e.g. a certificate that is due
	// for renewal), given the old state and the new inputs.
	ForceReplace func(state, news Values) []string
}

func (r *Resource) inputNames() []string {
	names := make([]string, 0, len(r.Inputs))
	for _, p := range r.Inputs {
		names = append(names, p.Name)
	}
	return names
}

func (r *Resource) isUpdatable(k string) bool {
	for _, u := range r.Updatable {
		if u == k {
			return true
		}
	}
	return false
}

func (r *Resource) secretKeys() map[string]bool {
	m := map[string]bool{}
	for _, p := range append(append([]Prop{}, r.Inputs...), r.Outputs...) {
		if p.Secret {
			m[p.Name] = true
		}
	}
	return m
}

// Provider serves a set of resources over the Pulumi resource-provider protocol.
type Provider struct {
	pulumirpc.UnimplementedResourceProviderServer

	Name      string // package name: "random", "tls"
	Version   string // version reported to the engine (the real provider's version)
	Upstream  string // what it stands in for, for the notice
	Resources []*Resource

	host *provider.HostClient
}

// Main runs the provider as a plugin process (the engine starts it and reads the
// port from stdout). `--version` prints the version and the lab-only notice.
func (p *Provider) Main() {
	for _, a := range os.Args[1:] {
		if a == "--version" || a == "-version" || a == "version" {
			fmt.Printf("%s %s (%s)\n", "pulumi-resource-"+p.Name, p.Version, Notice(p.Name, p.Upstream))
			return
		}
	}
	err := provider.Main(p.Name, func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		p.host = host
		return p, nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-%s (lab-only stand-in): %v\n", p.Name, err)
		os.Exit(1)
	}
}

func (p *Provider) lookup(typ, urn string) (*Resource, error) {
	if typ == "" && urn != "" {
		typ = string(resource.URN(urn).Type())
	}
	for _, r := range p.Resources {
		if r.Token == typ {
			return r, nil
		}
	}
	return nil, status.Errorf(codes.InvalidArgument,
		"%s: resource type %q is not implemented by this lab-only stand-in provider", p.Name, typ)
}

var inOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipInternalKeys: true}
var outOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true}

// --- plugin / configuration ---------------------------------------------------

func (p *Provider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: p.Version}, nil
}

func (p *Provider) GetSchema(_ context.Context, req *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	s, err := p.Schema()
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetSchemaResponse{Schema: s}, nil
}

func (p *Provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *Provider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *Provider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

func (p *Provider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (p *Provider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, status.Errorf(codes.Unimplemented,
		"%s: function %q is not implemented by this lab-only stand-in provider", p.Name, req.GetTok())
}

// --- resources ------------------------------------------------------------------

func (p *Provider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	r, err := p.lookup(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), inOpts)
	if err != nil {
		return nil, err
	}
	var failures []Failure
	if r.Normalize != nil {
		failures = append(failures, r.Normalize(news)...)
	}
	for _, in := range r.Inputs {
		k := resource.PropertyKey(in.Name)
		v, ok := news[k]
		if (!ok || v.IsNull()) && in.Default != nil {
			news[k] = ToValue(in.Default)
			continue
		}
		if (!ok || v.IsNull()) && in.Required {
			failures = append(failures, Failure{in.Name, fmt.Sprintf("Missing required argument %q", in.Name)})
			continue
		}
		if ok && !v.IsNull() && !v.ContainsUnknowns() {
			if msg := typeCheck(in, Plain(v)); msg != "" {
				failures = append(failures, Failure{in.Name, msg})
			}
		}
	}
	if r.Validate != nil && len(failures) == 0 {
		failures = append(failures, r.Validate(KnownValues(news))...)
	}
	inputs, err := plugin.MarshalProperties(news, outOpts)
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.CheckResponse{Inputs: inputs}
	for _, f := range failures {
		resp.Failures = append(resp.Failures, &pulumirpc.CheckFailure{Property: f.Property, Reason: f.Reason})
	}
	return resp, nil
}

func (p *Provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	r, err := p.lookup(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := plugin.UnmarshalProperties(req.GetOlds(), inOpts)
	if err != nil {
		return nil, err
	}
	olds := state
	if req.GetOldInputs() != nil && len(req.GetOldInputs().GetFields()) > 0 {
		if olds, err = plugin.UnmarshalProperties(req.GetOldInputs(), inOpts); err != nil {
			return nil, err
		}
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), inOpts)
	if err != nil {
		return nil, err
	}
	ignore := map[string]bool{}
	for _, k := range req.GetIgnoreChanges() {
		ignore[k] = true
	}

	resp := &pulumirpc.DiffResponse{DetailedDiff: map[string]*pulumirpc.PropertyDiff{}, HasDetailedDiff: true}
	for _, name := range r.inputNames() {
		if ignore[name] {
			continue
		}
		k := resource.PropertyKey(name)
		ov, oldHas := olds[k]
		nv, newHas := news[k]
		oldHas = oldHas && !ov.IsNull()
		newHas = newHas && !nv.IsNull()
		changed := false
		switch {
		case !oldHas && !newHas:
		case newHas && nv.ContainsUnknowns():
			changed = true // unknown during preview: may change
		case oldHas != newHas:
			changed = true
		default:
			changed = !Unsecret(ov).DeepEquals(Unsecret(nv))
		}
		if !changed {
			continue
		}
		replace := !r.isUpdatable(name)
		kind := pulumirpc.PropertyDiff_UPDATE
		switch {
		case !oldHas:
			kind = pulumirpc.PropertyDiff_ADD
		case !newHas:
			kind = pulumirpc.PropertyDiff_DELETE
		}
		if replace {
			kind++ // ADD_REPLACE / DELETE_REPLACE / UPDATE_REPLACE follow their plain kinds
			resp.Replaces = append(resp.Replaces, name)
		}
		resp.Diffs = append(resp.Diffs, name)
		resp.DetailedDiff[name] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
	}
	if r.ForceReplace != nil {
		for _, name := range r.ForceReplace(KnownValues(state), KnownValues(news)) {
			if _, seen := resp.DetailedDiff[name]; seen {
				continue
			}
			resp.Replaces = append(resp.Replaces, name)
			resp.Diffs = append(resp.Diffs, name)
			resp.DetailedDiff[name] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE_REPLACE}
		}
	}
	sort.Strings(resp.Replaces)
	sort.Strings(resp.Diffs)
	if len(resp.Diffs) > 0 {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	} else {
		resp.Changes = pulumirpc.DiffResponse_DIFF_NONE
	}
	return resp, nil
}

func (p *Provider) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	r, err := p.lookup(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, err
	}
	props, err := plugin.UnmarshalProperties(req.GetProperties(), inOpts)
	if err != nil {
		return nil, err
	}
	secret := r.secretKeys()
	state := props.Copy()

	if req.GetPreview() || props.ContainsUnknowns() {
		if !req.GetPreview() {
			return nil, status.Errorf(codes.InvalidArgument, "%s: cannot create %s with unknown inputs", p.Name, r.Token)
		}
		for _, out := range r.Outputs {
			v := resource.MakeComputed(resource.NewStringProperty(""))
			if out.Secret {
				v = resource.MakeSecret(v)
			}
			state[resource.PropertyKey(out.Name)] = v
		}
		st, err := plugin.MarshalProperties(state, outOpts)
		if err != nil {
			return nil, err
		}
		return &pulumirpc.CreateResponse{Properties: st}, nil
	}

	id, outs, err := r.Create(KnownValues(props))
	if err != nil {
		return nil, status.Errorf(codes.Unknown, "%s: creating %s: %v", p.Name, r.Token, err)
	}
	for k, v := range outs {
		state[resource.PropertyKey(k)] = ToValue(v)
	}
	markSecrets(state, secret)
	st, err := plugin.MarshalProperties(state, outOpts)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: st}, nil
}

func (p *Provider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	r, err := p.lookup(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := plugin.UnmarshalProperties(req.GetProperties(), inOpts)
	if err != nil {
		return nil, err
	}
	p.refresh(r, state)
	inputs := req.GetInputs()
	if inputs == nil || len(inputs.GetFields()) == 0 {
		in := resource.PropertyMap{}
		for _, name := range r.inputNames() {
			if v, ok := state[resource.PropertyKey(name)]; ok {
				in[resource.PropertyKey(name)] = v
			}
		}
		if inputs, err = plugin.MarshalProperties(in, outOpts); err != nil {
			return nil, err
		}
	}
	st, err := plugin.MarshalProperties(state, outOpts)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: st, Inputs: inputs}, nil
}

func (p *Provider) refresh(r *Resource, state resource.PropertyMap) {
	if r.Refresh == nil || state.ContainsUnknowns() {
		return
	}
	for k, v := range r.Refresh(KnownValues(state)) {
		pk := resource.PropertyKey(k)
		nv := ToValue(v)
		if old, ok := state[pk]; ok && old.IsSecret() {
			nv = resource.MakeSecret(nv)
		}
		state[pk] = nv
	}
}

// Update applies in-place changes (only the inputs listed in Resource.Updatable can
// get here; every other change is a replacement): the new inputs are written over
// the old state and time-dependent outputs recomputed.
func (p *Provider) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	r, err := p.lookup(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := plugin.UnmarshalProperties(req.GetOlds(), inOpts)
	if err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), inOpts)
	if err != nil {
		return nil, err
	}
	for _, name := range r.inputNames() {
		k := resource.PropertyKey(name)
		if v, ok := news[k]; ok {
			state[k] = v
		} else {
			delete(state, k)
		}
	}
	p.refresh(r, state)
	markSecrets(state, r.secretKeys())
	st, err := plugin.MarshalProperties(state, outOpts)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: st}, nil
}

func (p *Provider) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil // nothing exists outside the state
}

func markSecrets(state resource.PropertyMap, secret map[string]bool) {
	for k := range secret {
		pk := resource.PropertyKey(k)
		if v, ok := state[pk]; ok && !v.IsNull() && !v.IsSecret() {
			state[pk] = resource.MakeSecret(v)
		}
	}
}
