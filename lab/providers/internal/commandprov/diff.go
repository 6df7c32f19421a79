// LAB-ONLY STAND-IN for pulumi-resource-command 1.2.1, used only because the real provider cannot be
// built in the wg-relay lab (see provider.go); never used for a real deployment.

package commandprov

import (
	"fmt"
	"math"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// replaceOnChanges lists the inputs tagged provider:"replaceOnChanges" in the real provider
// (common.ResourceInputs.Triggers for the commands, CopyToRemoteInputs.Triggers): only
// `triggers`. The connection is tagged only provider:"secret" since v1, so a connection change
// is an update.
var replaceOnChanges = map[string]bool{"triggers": true}

// inferDiff mirrors pulumi-go-provider's default infer Diff for a resource that implements
// CustomUpdate (all three do): the old state restricted to the input properties is diffed
// against the new inputs with resource.PropertyMap.Diff, turned into a detailed diff with
// plugin.NewDetailedDiffFromObjectDiff (keys are property paths such as "create",
// "connection" or "triggers[0]"), and a key is a replacement only when the key itself names a
// replaceOnChanges input. So adding or removing `triggers` replaces from the provider's side,
// while a change of one element ("triggers[0]") is an update here and becomes a replacement in
// the engine through the SDK's replaceOnChanges: ["triggers[*]"] resource option — exactly as
// with the real provider.
func inferDiff(olds, news resource.PropertyMap, inputs []string, ignoreChanges []string) *pulumirpc.DiffResponse {
	for _, k := range ignoreChanges {
		news[resource.PropertyKey(k)] = olds[resource.PropertyKey(k)]
	}
	oldInputs := resource.PropertyMap{}
	for _, k := range inputs {
		oldInputs[resource.PropertyKey(k)] = olds[resource.PropertyKey(k)]
	}
	objDiff := oldInputs.Diff(news)
	detailed := plugin.NewDetailedDiffFromObjectDiff(objDiff, false)

	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff: true,
	}
	if objDiff.AnyChanges() {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	for k, v := range detailed {
		kind := v.Kind
		if replaceOnChanges[k] {
			kind = kind.AsReplace()
		}
		var rk pulumirpc.PropertyDiff_Kind
		switch kind {
		case plugin.DiffAdd:
			rk = pulumirpc.PropertyDiff_ADD
		case plugin.DiffAddReplace:
			rk = pulumirpc.PropertyDiff_ADD_REPLACE
		case plugin.DiffDelete:
			rk = pulumirpc.PropertyDiff_DELETE
		case plugin.DiffDeleteReplace:
			rk = pulumirpc.PropertyDiff_DELETE_REPLACE
		case plugin.DiffUpdate:
			rk = pulumirpc.PropertyDiff_UPDATE
		case plugin.DiffUpdateReplace:
			rk = pulumirpc.PropertyDiff_UPDATE_REPLACE
		default:
			continue
		}
		resp.DetailedDiff[k] = &pulumirpc.PropertyDiff{Kind: rk, InputDiff: v.InputDiff}
		resp.Diffs = append(resp.Diffs, k)
		if kind.IsReplace() {
			resp.Replaces = append(resp.Replaces, k)
		}
	}
	sort.Strings(resp.Diffs)
	sort.Strings(resp.Replaces)
	return resp
}

// --- Check ---------------------------------------------------------------------------------------

// connectionDefaults are the real Connection/ProxyConnection defaults (schema.json, connection.go,
// proxyConnection.go): user "root", port 22, dialErrorLimit 10, perDialTimeout 15.
var connectionDefaults = []struct {
	key string
	v   resource.PropertyValue
}{
	{"user", resource.NewStringProperty("root")},
	{"port", resource.NewNumberProperty(22)},
	{"dialErrorLimit", resource.NewNumberProperty(10)},
	{"perDialTimeout", resource.NewNumberProperty(15)},
}

var connectionFields = map[string]string{
	"host": "string", "port": "number", "user": "string", "password": "string",
	"privateKey": "string", "privateKeyPassword": "string", "agentSocketPath": "string",
	"hostKey": "string", "dialErrorLimit": "integer", "perDialTimeout": "integer", "proxy": "object",
}

// withConnectionDefaults fills the connection defaults (and the proxy's) like the real provider's
// infer applyDefaults, keeping secret wrappers and leaving unknown values alone.
func withConnectionDefaults(v resource.PropertyValue, proxy bool) resource.PropertyValue {
	if v.IsSecret() {
		return resource.MakeSecret(withConnectionDefaults(v.SecretValue().Element, proxy))
	}
	if !v.IsObject() {
		return v
	}
	obj := v.ObjectValue().Copy()
	for _, d := range connectionDefaults {
		if cur, ok := obj[resource.PropertyKey(d.key)]; !ok || cur.IsNull() {
			obj[resource.PropertyKey(d.key)] = d.v
		}
	}
	if !proxy {
		if pv, ok := obj["proxy"]; ok && !pv.IsNull() {
			obj["proxy"] = withConnectionDefaults(pv, true)
		}
	}
	return resource.NewObjectProperty(obj)
}

// checkConnection reports missing/mistyped connection fields, like the decoding failures of the
// real provider's Check.
func checkConnection(v resource.PropertyValue, path string) []failure {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if isComputed(v) {
		return nil
	}
	if !v.IsObject() {
		return []failure{{path, fmt.Sprintf("%s: expected an object, got %s", path, v.TypeString())}}
	}
	obj := v.ObjectValue()
	var out []failure
	if h, ok := obj["host"]; !ok || h.IsNull() {
		out = append(out, failure{path + ".host", fmt.Sprintf("Missing required field 'host' on '%s'", path)})
	}
	keys := obj.StableKeys()
	for _, k := range keys {
		fv := obj[k]
		field := path + "." + string(k)
		want, known := connectionFields[string(k)]
		if !known {
			out = append(out, failure{field, fmt.Sprintf("%s: unknown field", field)})
			continue
		}
		if string(k) == "proxy" && path == "proxy" {
			out = append(out, failure{field, fmt.Sprintf("%s: unknown field", field)})
			continue
		}
		if fv.IsNull() || fv.ContainsUnknowns() {
			continue
		}
		if want == "object" {
			out = append(out, checkConnection(fv, "proxy")...)
			continue
		}
		if msg := typeMismatch(fv, want); msg != "" {
			out = append(out, failure{field, field + ": " + msg})
		}
	}
	return out
}

// typeMismatch checks a known scalar value against a schema type.
func typeMismatch(v resource.PropertyValue, want string) string {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	switch want {
	case "string":
		if !v.IsString() {
			return "expected a string, got " + v.TypeString()
		}
	case "number":
		if !v.IsNumber() {
			return "expected a number, got " + v.TypeString()
		}
	case "integer":
		if !v.IsNumber() || v.NumberValue() != math.Trunc(v.NumberValue()) {
			return "expected an integer, got " + v.TypeString()
		}
	case "boolean":
		if !v.IsBool() {
			return "expected a boolean, got " + v.TypeString()
		}
	case "array":
		if !v.IsArray() {
			return "expected an array, got " + v.TypeString()
		}
	case "stringMap":
		if !v.IsObject() {
			return "expected a map of strings, got " + v.TypeString()
		}
		for _, e := range v.ObjectValue() {
			if !e.IsNull() && !e.ContainsUnknowns() && typeMismatch(e, "string") != "" {
				return "expected a map of strings"
			}
		}
	case "stringList":
		if !v.IsArray() {
			return "expected a list of strings, got " + v.TypeString()
		}
		for _, e := range v.ArrayValue() {
			if !e.ContainsUnknowns() && typeMismatch(e, "string") != "" {
				return "expected a list of strings"
			}
		}
	}
	return ""
}

// checkScalars type-checks the known top-level inputs listed in types.
func checkScalars(news resource.PropertyMap, types map[string]string) []failure {
	var out []failure
	names := make([]string, 0, len(types))
	for k := range types {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, ok := news[resource.PropertyKey(k)]
		if !ok || v.IsNull() || v.ContainsUnknowns() {
			continue
		}
		if msg := typeMismatch(v, types[k]); msg != "" {
			out = append(out, failure{k, k + ": " + msg})
		}
	}
	return out
}
