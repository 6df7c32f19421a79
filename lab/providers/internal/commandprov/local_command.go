// LAB-ONLY STAND-IN for pulumi-resource-command 1.2.1, used only because the real provider cannot be
// built in the wg-relay lab (see provider.go); never used for a real deployment.

package commandprov

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// localCommandInputs are the real local CommandInputs (common.ResourceInputs + BaseInputs).
var localCommandInputs = []string{
	"triggers", "create", "update", "delete",
	"stdin", "logging", "interpreter", "dir", "environment", "assetPaths", "archivePaths", "addPreviousOutputInEnv",
}

var localCommandTypes = map[string]string{
	"triggers": "array", "create": "string", "update": "string", "delete": "string", "stdin": "string",
	"logging": "string", "interpreter": "stringList", "dir": "string", "environment": "stringMap",
	"assetPaths": "stringList", "archivePaths": "stringList", "addPreviousOutputInEnv": "boolean",
}

// checkLocalCommand fills addPreviousOutputInEnv = true like the real one; assetPaths and
// archivePaths are not implemented by this stand-in and are refused.
func checkLocalCommand(news resource.PropertyMap) []failure {
	failures := checkScalars(news, localCommandTypes)
	for _, k := range []resource.PropertyKey{"assetPaths", "archivePaths"} {
		if v, ok := news[k]; ok && !v.IsNull() {
			failures = append(failures, failure{string(k),
				string(k) + " is not implemented by this lab-only stand-in of pulumi-resource-command"})
		}
	}
	if len(failures) > 0 {
		return failures
	}
	if v, ok := news["addPreviousOutputInEnv"]; !ok || v.IsNull() {
		news["addPreviousOutputInEnv"] = resource.NewBoolProperty(true)
	}
	return nil
}

func (p *Provider) createLocalCommand(ctx context.Context, urn resource.URN, props resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	return p.create(ctx, urn, props, preview, localCommandInputs, p.runLocal)
}

func (p *Provider) updateLocalCommand(ctx context.Context, urn resource.URN, olds, news resource.PropertyMap, preview bool) (resource.PropertyMap, error) {
	return p.update(ctx, urn, olds, news, preview, localCommandInputs, p.runLocal)
}

func (p *Provider) deleteLocalCommand(ctx context.Context, urn resource.URN, props resource.PropertyMap) error {
	return deleteWith(ctx, urn, props, p.runLocal)
}

// runLocal mirrors the real local run(): interpreter (default /bin/sh -c), dir (default the
// plugin's working directory), the plugin's environment plus `environment` plus
// PULUMI_COMMAND_STDOUT/STDERR, stdin, logging, and the same error text and trimming as remote.
func (p *Provider) runLocal(ctx context.Context, urn resource.URN, props resource.PropertyMap, command, prevStdout, prevStderr string) (string, string, error) {
	args := stringList(props, "interpreter")
	if len(args) == 0 {
		args = []string{"/bin/sh", "-c"}
	}
	args = append(args, command)

	var stdoutbuf, stderrbuf bytes.Buffer
	stdouterr := &lockedBuffer{}
	r, w := io.Pipe()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	lg := logging{strPtr(props, "logging")}
	stdoutWriters := []io.Writer{&stdoutbuf, stdouterr}
	if lg.stdout() {
		stdoutWriters = append(stdoutWriters, w)
	}
	cmd.Stdout = io.MultiWriter(stdoutWriters...)
	stderrWriters := []io.Writer{&stderrbuf, stdouterr}
	if lg.stderr() {
		stderrWriters = append(stderrWriters, w)
	}
	cmd.Stderr = io.MultiWriter(stderrWriters...)

	if dir, ok := str(props, "dir"); ok {
		cmd.Dir = dir
	} else {
		wd, err := os.Getwd()
		if err != nil {
			return "", "", err
		}
		cmd.Dir = wd
	}
	cmd.Env = os.Environ()
	for _, kv := range stringMap(props, "environment") {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s", kv[0], kv[1]))
	}
	if add := boolPtr(props, "addPreviousOutputInEnv"); add == nil || *add {
		if prevStdout != "" {
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s", envStdout, prevStdout))
		}
		if prevStderr != "" {
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s", envStderr, prevStderr))
		}
	}
	if stdin, ok := str(props, "stdin"); ok && len(stdin) > 0 {
		cmd.Stdin = strings.NewReader(stdin)
	}

	done := make(chan struct{})
	go p.logOutput(ctx, urn, r, done)
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	w.Close()
	<-done

	if err != nil {
		return "", "", fmt.Errorf("%w: running %q:\n%s", err, command, stdouterr.String())
	}
	return strings.TrimSuffix(stdoutbuf.String(), "\n"), strings.TrimSuffix(stderrbuf.String(), "\n"), nil
}
