// LAB-ONLY STAND-IN test helpers (see internal/labprov): drive a provider over real
// gRPC the way the Pulumi engine does. Never used for a real deployment.
package labtest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

var opts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true}

// Client wraps a provider client with engine-like helpers.
type Client struct {
	T   *testing.T
	RPC pulumirpc.ResourceProviderClient
	Pkg string
}

// Serve starts srv on a loopback port for the duration of the test.
func Serve(t *testing.T, srv pulumirpc.ResourceProviderServer, pkg string) *Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pulumirpc.RegisterResourceProviderServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return Dial(t, lis.Addr().String(), pkg)
}

// Dial connects to a provider listening on addr and configures it as the engine does.
func Dial(t *testing.T, addr, pkg string) *Client {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &Client{T: t, RPC: pulumirpc.NewResourceProviderClient(conn), Pkg: pkg}
	cfg, err := c.RPC.Configure(c.ctx(), &pulumirpc.ConfigureRequest{AcceptSecrets: true, AcceptResources: true})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.GetAcceptSecrets() || !cfg.GetSupportsPreview() {
		t.Fatalf("Configure: want acceptSecrets and supportsPreview, got %+v", cfg)
	}
	return c
}

func (c *Client) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c.T.Cleanup(cancel)
	return ctx
}

// URN builds a URN for a resource of type typ.
func (c *Client) URN(typ, name string) string {
	return "urn:pulumi:lab::wg-relay::" + typ + "::" + name
}

// Marshal marshals a property map keeping secrets and unknowns.
func (c *Client) Marshal(pm resource.PropertyMap) *structpb.Struct {
	c.T.Helper()
	s, err := plugin.MarshalProperties(pm, opts)
	if err != nil {
		c.T.Fatal(err)
	}
	return s
}

// Unmarshal unmarshals a property struct keeping secrets and unknowns.
func (c *Client) Unmarshal(s *structpb.Struct) resource.PropertyMap {
	c.T.Helper()
	pm, err := plugin.UnmarshalProperties(s, opts)
	if err != nil {
		c.T.Fatal(err)
	}
	return pm
}

// Check runs Check and returns the checked inputs and the failures.
func (c *Client) Check(typ string, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	c.T.Helper()
	resp, err := c.RPC.Check(c.ctx(), &pulumirpc.CheckRequest{
		Urn: c.URN(typ, "r"), Type: typ, News: c.Marshal(news), Olds: c.Marshal(resource.PropertyMap{}),
	})
	if err != nil {
		c.T.Fatalf("Check %s: %v", typ, err)
	}
	return c.Unmarshal(resp.GetInputs()), resp.GetFailures()
}

// MustCheck runs Check and fails the test on any failure.
func (c *Client) MustCheck(typ string, news resource.PropertyMap) resource.PropertyMap {
	c.T.Helper()
	in, failures := c.Check(typ, news)
	if len(failures) > 0 {
		c.T.Fatalf("Check %s: unexpected failures %v", typ, failures)
	}
	return in
}

// Create runs Check then Create (preview or not) and returns the ID and state.
func (c *Client) Create(typ string, news resource.PropertyMap, preview bool) (string, resource.PropertyMap) {
	c.T.Helper()
	in := c.MustCheck(typ, news)
	resp, err := c.RPC.Create(c.ctx(), &pulumirpc.CreateRequest{
		Urn: c.URN(typ, "r"), Type: typ, Properties: c.Marshal(in), Preview: preview,
	})
	if err != nil {
		c.T.Fatalf("Create %s: %v", typ, err)
	}
	return resp.GetId(), c.Unmarshal(resp.GetProperties())
}

// Diff runs Diff of checked news against an old state (and the old inputs = state).
func (c *Client) Diff(typ, id string, state, news resource.PropertyMap) *pulumirpc.DiffResponse {
	c.T.Helper()
	in := c.MustCheck(typ, news)
	resp, err := c.RPC.Diff(c.ctx(), &pulumirpc.DiffRequest{
		Id: id, Urn: c.URN(typ, "r"), Type: typ, Olds: c.Marshal(state), News: c.Marshal(in),
	})
	if err != nil {
		c.T.Fatalf("Diff %s: %v", typ, err)
	}
	return resp
}

// Str returns a known string output (through a secret, if any).
func Str(t *testing.T, pm resource.PropertyMap, k string) string {
	t.Helper()
	v, ok := pm[resource.PropertyKey(k)]
	if !ok {
		t.Fatalf("output %q missing", k)
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !v.IsString() {
		t.Fatalf("output %q: want a string, got %v", k, v)
	}
	return v.StringValue()
}

// IsSecret reports whether output k is a secret.
func IsSecret(pm resource.PropertyMap, k string) bool {
	v, ok := pm[resource.PropertyKey(k)]
	return ok && v.IsSecret()
}

// IsUnknown reports whether output k is unknown (possibly inside a secret).
func IsUnknown(pm resource.PropertyMap, k string) bool {
	v, ok := pm[resource.PropertyKey(k)]
	return ok && v.ContainsUnknowns()
}

// Computed is an unknown input value, as the engine sends during preview.
func Computed() resource.PropertyValue { return resource.MakeComputed(resource.NewStringProperty("")) }
