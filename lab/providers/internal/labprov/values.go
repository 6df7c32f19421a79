// LAB-ONLY STAND-IN (see labprov.go): never used for a real deployment.

package labprov

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Values holds plain (secret-free, fully known) property values: string, float64,
// bool, []any, map[string]any.
type Values map[string]any

// KnownValues strips secrets and drops every top-level property that is null or
// still (partly) unknown.
func KnownValues(pm resource.PropertyMap) Values {
	v := Values{}
	for k, pv := range pm {
		if pv.IsNull() || pv.ContainsUnknowns() {
			continue
		}
		v[string(k)] = Plain(pv)
	}
	return v
}

// Plain converts a property value to plain Go values, stripping secrets.
func Plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return Plain(v.SecretValue().Element)
	case v.IsOutput():
		return Plain(v.OutputValue().Element)
	case v.IsComputed():
		return nil
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]any, len(arr))
		for i, e := range arr {
			out[i] = Plain(e)
		}
		return out
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			if e.IsNull() {
				continue
			}
			out[string(k)] = Plain(e)
		}
		return out
	default:
		return v.V
	}
}

// Unsecret removes secret wrappers anywhere inside v.
func Unsecret(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return Unsecret(v.SecretValue().Element)
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]resource.PropertyValue, len(arr))
		for i, e := range arr {
			out[i] = Unsecret(e)
		}
		return resource.NewArrayProperty(out)
	case v.IsObject():
		out := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			if e.IsNull() {
				continue // an absent and a null field mean the same
			}
			out[k] = Unsecret(e)
		}
		return resource.NewObjectProperty(out)
	default:
		return v
	}
}

// ToValue converts a plain Go value to a property value.
func ToValue(v any) resource.PropertyValue {
	switch x := v.(type) {
	case nil:
		return resource.NewNullProperty()
	case resource.PropertyValue:
		return x
	case string:
		return resource.NewStringProperty(x)
	case bool:
		return resource.NewBoolProperty(x)
	case int:
		return resource.NewNumberProperty(float64(x))
	case int64:
		return resource.NewNumberProperty(float64(x))
	case float64:
		return resource.NewNumberProperty(x)
	case []string:
		arr := make([]resource.PropertyValue, len(x))
		for i, s := range x {
			arr[i] = resource.NewStringProperty(s)
		}
		return resource.NewArrayProperty(arr)
	case []any:
		arr := make([]resource.PropertyValue, len(x))
		for i, e := range x {
			arr[i] = ToValue(e)
		}
		return resource.NewArrayProperty(arr)
	case map[string]string:
		pm := resource.PropertyMap{}
		for k, e := range x {
			pm[resource.PropertyKey(k)] = resource.NewStringProperty(e)
		}
		return resource.NewObjectProperty(pm)
	case map[string]any:
		pm := resource.PropertyMap{}
		for k, e := range x {
			pm[resource.PropertyKey(k)] = ToValue(e)
		}
		return resource.NewObjectProperty(pm)
	case Values:
		return ToValue(map[string]any(x))
	default:
		panic(fmt.Sprintf("labprov.ToValue: unsupported type %T", v))
	}
}

// Has reports whether k is present (known and not null).
func (v Values) Has(k string) bool { _, ok := v[k]; return ok }

// Str returns a string value, or "" when absent.
func (v Values) Str(k string) string {
	switch x := v[k].(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// Int returns an integer value (numbers, or strings holding one), or def when absent.
func (v Values) Int(k string, def int) int {
	switch x := v[k].(type) {
	case float64:
		return int(x)
	case string:
		if n, err := strconv.Atoi(x); err == nil {
			return n
		}
	}
	return def
}

// Bool returns a boolean value (booleans, or "true"/"false"), or def when absent.
func (v Values) Bool(k string, def bool) bool {
	switch x := v[k].(type) {
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return b
		}
	}
	return def
}

// Strings returns a list of strings, or nil when absent.
func (v Values) Strings(k string) []string {
	arr, _ := v[k].([]any)
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	if arr == nil {
		return nil
	}
	return out
}

// Obj returns a nested object, or an empty Values when absent.
func (v Values) Obj(k string) Values {
	m, _ := v[k].(map[string]any)
	if m == nil {
		return Values{}
	}
	return Values(m)
}

// typeCheck returns a failure reason when a known value does not have the
// property's type, or "".
func typeCheck(p Prop, v any) string {
	bad := func(want string) string {
		return fmt.Sprintf("%s: expected %s, got %T", p.Name, want, v)
	}
	switch p.Type {
	case String:
		switch v.(type) {
		case string, float64, bool: // the bridge coerces scalars to strings
			return ""
		}
		return bad("a string")
	case Integer:
		switch x := v.(type) {
		case float64:
			if x != math.Trunc(x) {
				return bad("an integer")
			}
			return ""
		case string:
			if _, err := strconv.Atoi(x); err != nil {
				return bad("an integer")
			}
			return ""
		}
		return bad("an integer")
	case Boolean:
		switch x := v.(type) {
		case bool:
			return ""
		case string:
			if _, err := strconv.ParseBool(x); err == nil {
				return ""
			}
		}
		return bad("a boolean")
	case StringList:
		arr, ok := v.([]any)
		if !ok {
			return bad("a list of strings")
		}
		for _, e := range arr {
			if _, ok := e.(string); !ok {
				return bad("a list of strings")
			}
		}
		return ""
	case AnyMap:
		if _, ok := v.(map[string]any); !ok {
			return bad("a map")
		}
		return ""
	case Object:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var field *Prop
			for i := range p.Fields {
				if p.Fields[i].Name == k {
					field = &p.Fields[i]
				}
			}
			if field == nil {
				return fmt.Sprintf("%s: unknown field %q", p.Name, k)
			}
			f := *field
			f.Name = p.Name + "." + f.Name
			if msg := typeCheck(f, m[k]); msg != "" {
				return msg
			}
		}
		return ""
	}
	return ""
}
