// Tests for the LAB-ONLY random stand-in (never used for a real deployment).
package randomprov_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/emptypb"

	"wg-relay.lab/providers/internal/labtest"
	"wg-relay.lab/providers/internal/randomprov"
)

const (
	bytesT    = "random:index/randomBytes:RandomBytes"
	passwordT = "random:index/randomPassword:RandomPassword"
	idT       = "random:index/randomId:RandomId"
)

func client(t *testing.T) *labtest.Client { return labtest.Serve(t, randomprov.New(), "random") }

func TestPluginInfoAndSchema(t *testing.T) {
	c := client(t)
	info, err := c.RPC.GetPluginInfo(context.Background(), &emptypb.Empty{})
	if err != nil || info.GetVersion() != "4.21.2" {
		t.Fatalf("GetPluginInfo = %v, %v; want 4.21.2", info, err)
	}
	s, err := c.RPC.GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Name, Version, Description string
		Resources                  map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(s.GetSchema()), &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Name != "random" || schema.Version != "4.21.2" || !strings.Contains(schema.Description, "LAB-ONLY") {
		t.Fatalf("schema header: %+v", schema)
	}
	for _, typ := range []string{bytesT, passwordT, idT} {
		if _, ok := schema.Resources[typ]; !ok {
			t.Errorf("schema lacks %s", typ)
		}
	}
}

func TestRandomBytes(t *testing.T) {
	c := client(t)
	in := resource.PropertyMap{
		"length":  resource.NewNumberProperty(32),
		"keepers": resource.NewObjectProperty(resource.PropertyMap{"host": resource.NewStringProperty("relay")}),
	}
	id, st := c.Create(bytesT, in, false)
	if id != "none" {
		t.Errorf("id = %q, want none (as the real provider)", id)
	}
	raw, err := base64.StdEncoding.DecodeString(labtest.Str(t, st, "base64"))
	if err != nil || len(raw) != 32 {
		t.Fatalf("base64 = %d bytes (%v), want 32", len(raw), err)
	}
	if h := labtest.Str(t, st, "hex"); h != hex.EncodeToString(raw) {
		t.Errorf("hex %q does not match base64", h)
	}
	for _, k := range []string{"base64", "hex"} {
		if !labtest.IsSecret(st, k) {
			t.Errorf("%s must be a secret", k)
		}
	}
	if st["length"].NumberValue() != 32 || st["keepers"].ObjectValue()["host"].StringValue() != "relay" {
		t.Errorf("inputs not echoed into state: %v", st)
	}

	// A second resource gets different bytes.
	_, st2 := c.Create(bytesT, in, false)
	if labtest.Str(t, st2, "base64") == labtest.Str(t, st, "base64") {
		t.Error("two RandomBytes produced the same value")
	}

	// Diff: same inputs -> none; any input change -> replace.
	if d := c.Diff(bytesT, id, st, in); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE || len(d.GetReplaces()) > 0 {
		t.Errorf("unchanged inputs: diff %v", d)
	}
	changed := in.Copy()
	changed["length"] = resource.NewNumberProperty(16)
	if d := c.Diff(bytesT, id, st, changed); d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || strings.Join(d.GetReplaces(), ",") != "length" {
		t.Errorf("length change: diff %v", d)
	}
	changed = in.Copy()
	changed["keepers"] = resource.NewObjectProperty(resource.PropertyMap{"host": resource.NewStringProperty("rpi1")})
	if d := c.Diff(bytesT, id, st, changed); strings.Join(d.GetReplaces(), ",") != "keepers" {
		t.Errorf("keepers change: diff %v", d)
	}
	// An input that is unknown during preview may change: replace.
	changed = in.Copy()
	changed["keepers"] = resource.NewObjectProperty(resource.PropertyMap{"host": labtest.Computed()})
	if d := c.Diff(bytesT, id, st, changed); strings.Join(d.GetReplaces(), ",") != "keepers" {
		t.Errorf("unknown keepers: diff %v", d)
	}
	// A value that became secret is not a change.
	changed = in.Copy()
	changed["length"] = resource.MakeSecret(resource.NewNumberProperty(32))
	if d := c.Diff(bytesT, id, st, changed); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("secret-wrapped same value: diff %v", d)
	}

	// Read returns the state unchanged.
	r, err := c.RPC.Read(context.Background(), &pulumirpc.ReadRequest{Id: id, Urn: c.URN(bytesT, "r"), Type: bytesT, Properties: c.Marshal(st)})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Unmarshal(r.GetProperties()); labtest.Str(t, got, "base64") != labtest.Str(t, st, "base64") || !labtest.IsSecret(got, "base64") {
		t.Errorf("Read changed the state: %v", got)
	}
}

func TestRandomBytesPreviewAndCheck(t *testing.T) {
	c := client(t)
	id, st := c.Create(bytesT, resource.PropertyMap{"length": resource.NewNumberProperty(32)}, true)
	if id != "" || !labtest.IsUnknown(st, "base64") || !labtest.IsUnknown(st, "hex") || !labtest.IsSecret(st, "base64") {
		t.Errorf("preview: id %q state %v; want unknown secret outputs", id, st)
	}
	// Unknown length during preview is accepted by Check and yields unknown outputs.
	_, st = c.Create(bytesT, resource.PropertyMap{"length": labtest.Computed()}, true)
	if !labtest.IsUnknown(st, "base64") {
		t.Errorf("preview with unknown length: %v", st)
	}
	if _, f := c.Check(bytesT, resource.PropertyMap{}); len(f) != 1 || f[0].GetProperty() != "length" {
		t.Errorf("missing length: failures %v", f)
	}
	if _, f := c.Check(bytesT, resource.PropertyMap{"length": resource.NewNumberProperty(0)}); len(f) != 1 {
		t.Errorf("length 0: failures %v", f)
	}
	if _, f := c.Check(bytesT, resource.PropertyMap{"length": resource.NewStringProperty("many")}); len(f) != 1 {
		t.Errorf("length not a number: failures %v", f)
	}
}

func TestRandomPassword(t *testing.T) {
	c := client(t)
	in := resource.PropertyMap{
		"length":     resource.NewNumberProperty(24),
		"special":    resource.NewBoolProperty(false),
		"minUpper":   resource.NewNumberProperty(2),
		"minNumeric": resource.NewNumberProperty(3),
	}
	checked := c.MustCheck(passwordT, in)
	for k, want := range map[string]bool{"upper": true, "lower": true, "numeric": true, "number": true, "special": false} {
		if checked[resource.PropertyKey(k)].BoolValue() != want {
			t.Errorf("checked %s = %v, want %v", k, checked[resource.PropertyKey(k)], want)
		}
	}
	id, st := c.Create(passwordT, in, false)
	pw := labtest.Str(t, st, "result")
	if id != "none" || len(pw) != 24 || !regexp.MustCompile(`^[A-Za-z0-9]+$`).MatchString(pw) {
		t.Fatalf("id %q password %q: want 24 alphanumerics", id, pw)
	}
	if len(regexp.MustCompile(`[A-Z]`).FindAllString(pw, -1)) < 2 || len(regexp.MustCompile(`[0-9]`).FindAllString(pw, -1)) < 3 {
		t.Errorf("password %q misses its minimum counts", pw)
	}
	if !labtest.IsSecret(st, "result") || !labtest.IsSecret(st, "bcryptHash") {
		t.Error("result and bcryptHash must be secrets")
	}
	if err := bcrypt.CompareHashAndPassword([]byte(labtest.Str(t, st, "bcryptHash")), []byte(pw)); err != nil {
		t.Errorf("bcryptHash does not match: %v", err)
	}
	// Only special characters from overrideSpecial.
	_, st = c.Create(passwordT, resource.PropertyMap{
		"length": resource.NewNumberProperty(40), "upper": resource.NewBoolProperty(false), "lower": resource.NewBoolProperty(false),
		"numeric": resource.NewBoolProperty(false), "overrideSpecial": resource.NewStringProperty("-_"),
	}, false)
	if pw := labtest.Str(t, st, "result"); !regexp.MustCompile(`^[-_]{40}$`).MatchString(pw) {
		t.Errorf("overrideSpecial password %q", pw)
	}
	// number is numeric's alias.
	checked = c.MustCheck(passwordT, resource.PropertyMap{"length": resource.NewNumberProperty(8), "number": resource.NewBoolProperty(false)})
	if checked["numeric"].BoolValue() {
		t.Error("number=false must set numeric=false")
	}
	if _, f := c.Check(passwordT, resource.PropertyMap{"length": resource.NewNumberProperty(3), "minUpper": resource.NewNumberProperty(4)}); len(f) == 0 {
		t.Error("length below the sum of min* must fail")
	}
}

func TestRandomID(t *testing.T) {
	c := client(t)
	id, st := c.Create(idT, resource.PropertyMap{"byteLength": resource.NewNumberProperty(8), "prefix": resource.NewStringProperty("p-")}, false)
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != 8 {
		t.Fatalf("id %q: want 8 bytes base64url (%v)", id, err)
	}
	if got := labtest.Str(t, st, "hex"); got != "p-"+hex.EncodeToString(raw) {
		t.Errorf("hex = %q", got)
	}
	if got := labtest.Str(t, st, "b64Url"); got != "p-"+id {
		t.Errorf("b64Url = %q", got)
	}
	if got := labtest.Str(t, st, "b64Std"); got != "p-"+base64.StdEncoding.EncodeToString(raw) {
		t.Errorf("b64Std = %q", got)
	}
	if !regexp.MustCompile(`^p-[0-9]+$`).MatchString(labtest.Str(t, st, "dec")) || labtest.IsSecret(st, "hex") {
		t.Errorf("dec/hex: %v", st)
	}
}
