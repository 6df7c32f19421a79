// LAB-ONLY STAND-IN for pulumi-resource-command 1.2.1, used only because the real provider cannot be
// built in the wg-relay lab (see provider.go); never used for a real deployment.

package commandprov

import "encoding/json"

// schemaJSON is a minimal package schema of the implemented subset, with the real property
// names, types, defaults, secret and required markers (provider/cmd/pulumi-resource-command/
// schema.json of v1.2.x).
func schemaJSON() string {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	connProps := func(proxy bool) map[string]any {
		m := map[string]any{
			"host":               str("The address of the resource to connect to."),
			"port":               map[string]any{"type": "number", "default": 22},
			"user":               map[string]any{"type": "string", "default": "root"},
			"password":           str("The password we should use for the connection."),
			"privateKey":         str("The contents of an SSH key to use for the connection."),
			"privateKeyPassword": str("The password to use in case the private key is encrypted."),
			"agentSocketPath":    str("SSH Agent socket path. Default to environment variable SSH_AUTH_SOCK if present."),
			"hostKey":            str("The expected host key to verify the server's identity. If not provided, the host key will be ignored."),
			"dialErrorLimit":     map[string]any{"type": "integer", "default": 10},
			"perDialTimeout":     map[string]any{"type": "integer", "default": 15},
		}
		if !proxy {
			m["proxy"] = map[string]any{"$ref": "#/types/command:remote:ProxyConnection"}
		}
		return m
	}
	logging := map[string]any{"type": "string", "enum": []map[string]any{
		{"value": "stdout"}, {"value": "stderr"}, {"value": "stdoutAndStderr"}, {"value": "none"},
	}}
	anyArray := map[string]any{"type": "array", "items": map[string]any{"$ref": "pulumi.json#/Any"}}
	strMap := map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
	strList := map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	connection := map[string]any{"$ref": "#/types/command:remote:Connection", "secret": true}
	merge := func(ms ...map[string]any) map[string]any {
		out := map[string]any{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	common := map[string]any{
		"triggers": anyArray, "create": str("The command to run on create."),
		"update": str("The command to run on update, if empty, create will run again."),
		"delete": str("The command to run on delete."), "stdin": str("Pass a string to the command's process as standard in"),
		"logging":                map[string]any{"$ref": "#/types/command:remote:Logging"},
		"addPreviousOutputInEnv": map[string]any{"type": "boolean", "default": true},
		"environment":            strMap,
	}
	outputs := map[string]any{"stdout": str("The standard output of the command's process"),
		"stderr": str("The standard error of the command's process")}
	remoteIn := merge(common, map[string]any{"connection": connection})
	localIn := merge(common, map[string]any{
		"logging": map[string]any{"$ref": "#/types/command:local:Logging"}, "interpreter": strList,
		"dir": str("The directory from which to run the command from."), "assetPaths": strList, "archivePaths": strList,
	})
	copyIn := map[string]any{
		"connection": connection, "triggers": anyArray,
		"source":     map[string]any{"$ref": "pulumi.json#/AssetOrArchive"},
		"remotePath": str("The destination path on the remote host."),
	}
	notice := Notice() + "."
	schema := map[string]any{
		"name": "command", "version": Version, "description": notice,
		"config":   map[string]any{},
		"provider": map[string]any{"type": "object", "description": notice},
		"types": map[string]any{
			"command:remote:Connection": map[string]any{"type": "object", "properties": connProps(false), "required": []string{"host"}},
			"command:remote:ProxyConnection": map[string]any{"type": "object", "properties": connProps(true),
				"required": []string{"host"}},
			"command:remote:Logging": logging,
			"command:local:Logging":  logging,
		},
		"resources": map[string]any{
			remoteCommandT: map[string]any{
				"description":     "A command to run on a remote host. The connection is established via ssh.\n\n" + notice,
				"inputProperties": remoteIn, "requiredInputs": []string{"connection"},
				"properties": merge(remoteIn, outputs), "required": []string{"connection", "stderr", "stdout"},
			},
			copyToRemoteT: map[string]any{
				"description":     "Copy an Asset or Archive to a remote host.\n\n" + notice,
				"inputProperties": copyIn, "requiredInputs": []string{"connection", "remotePath", "source"},
				"properties": copyIn, "required": []string{"connection", "remotePath", "source"},
			},
			localCommandT: map[string]any{
				"description":     "A local command to be executed.\n\n" + notice,
				"inputProperties": localIn, "properties": merge(localIn, outputs), "required": []string{"stderr", "stdout"},
			},
		},
	}
	b, _ := json.MarshalIndent(schema, "", "  ")
	return string(b)
}
