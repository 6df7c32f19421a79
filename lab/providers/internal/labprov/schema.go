// LAB-ONLY STAND-IN (see labprov.go): never used for a real deployment.

package labprov

import (
	"encoding/json"
	"sort"
)

func propSchema(p Prop, types map[string]any) map[string]any {
	var s map[string]any
	switch p.Type {
	case String:
		s = map[string]any{"type": "string"}
	case Integer:
		s = map[string]any{"type": "integer"}
	case Boolean:
		s = map[string]any{"type": "boolean"}
	case StringList:
		s = map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	case AnyMap:
		s = map[string]any{"type": "object", "additionalProperties": map[string]any{"$ref": "pulumi.json#/Any"}}
	case Object:
		fields := map[string]any{}
		for _, f := range p.Fields {
			fields[f.Name] = propSchema(f, types)
		}
		types[p.Ref] = map[string]any{"type": "object", "properties": fields}
		s = map[string]any{"$ref": "#/types/" + p.Ref}
	}
	if p.Desc != "" {
		s["description"] = p.Desc
	}
	if p.Secret {
		s["secret"] = true
	}
	if p.Default != nil {
		s["default"] = p.Default
	}
	return s
}

// Schema returns a Pulumi package schema describing the implemented subset.
func (p *Provider) Schema() (string, error) {
	types := map[string]any{}
	resources := map[string]any{}
	for _, r := range p.Resources {
		inputs, props := map[string]any{}, map[string]any{}
		var requiredInputs, required []string
		for _, in := range r.Inputs {
			s := propSchema(in, types)
			inputs[in.Name] = s
			props[in.Name] = s
			if in.Required {
				requiredInputs = append(requiredInputs, in.Name)
				required = append(required, in.Name)
			} else if in.Default != nil {
				required = append(required, in.Name)
			}
		}
		for _, out := range r.Outputs {
			props[out.Name] = propSchema(out, types)
			required = append(required, out.Name)
		}
		sort.Strings(required)
		sort.Strings(requiredInputs)
		resources[r.Token] = map[string]any{
			"description":     r.Desc + "\n\n" + Notice(p.Name, p.Upstream) + ".",
			"inputProperties": inputs,
			"requiredInputs":  requiredInputs,
			"properties":      props,
			"required":        required,
		}
	}
	b, err := json.MarshalIndent(map[string]any{
		"name":        p.Name,
		"version":     p.Version,
		"description": Notice(p.Name, p.Upstream) + ".",
		"types":       types,
		"resources":   resources,
		"provider":    map[string]any{"description": Notice(p.Name, p.Upstream) + "."},
	}, "", "  ")
	return string(b), err
}
