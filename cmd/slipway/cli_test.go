package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// slipway builds the binary once per test run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "slipway")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

type outcome struct {
	code           int
	stdout, stderr string
}

func cli(t *testing.T, bin, dir string, args ...string) outcome {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--dir", dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := outcome{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

// TestCLI_ExitCodesJSONAndVerbs drives the built binary the way CI does:
// cluster up, preview/up/refresh/drift with exit codes and --json, policy
// blocking, render, destroy, cluster down.
func TestCLI_ExitCodesJSONAndVerbs(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()

	// Bad input: a clear error naming the field, exit 1, before any engine run.
	r := cli(t, bin, dir, "preview", "--env", "Bad_Name", "--kubeconfig", os.DevNull)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `Environment.Name: "Bad_Name" must be a lower-case DNS label`)
	r = cli(t, bin, dir, "status")
	assert.Equal(t, 1, r.code)

	r = cli(t, bin, dir, "cluster", "status")
	assert.Equal(t, 1, r.code, "no cluster yet")
	r = cli(t, bin, dir, "cluster", "up")
	require.Equal(t, 0, r.code, r.stderr)
	t.Cleanup(func() { cli(t, bin, dir, "cluster", "down") })
	r = cli(t, bin, dir, "--json", "cluster", "status")
	require.Equal(t, 0, r.code, r.stderr)
	var health map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &health))
	assert.Equal(t, true, health["ready"])

	r = cli(t, bin, dir, "preview", "--env", "dev", "--expect-no-changes")
	assert.Equal(t, 2, r.code, "changes found: %s", r.stderr)

	r = cli(t, bin, dir, "--json", "up", "--env", "dev", "--set", "GREETING=hi", "--policy", "kubernetes")
	require.Equal(t, 0, r.code, r.stderr)
	var up map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &up))
	assert.Equal(t, "up", up["operation"])
	assert.Equal(t, "slipway-dev", up["outputs"].(map[string]any)["namespace"])

	r = cli(t, bin, dir, "preview", "--env", "dev", "--set", "GREETING=hi", "--expect-no-changes")
	assert.Equal(t, 0, r.code, r.stderr)
	r = cli(t, bin, dir, "drift", "--env", "dev", "--set", "GREETING=hi")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "no drift in dev")

	out := filepath.Join(t.TempDir(), "manifests")
	r = cli(t, bin, dir, "render", "--env", "dev", "--out", out)
	require.Equal(t, 0, r.code, r.stderr)
	var kinds []string
	require.NoError(t, filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var obj struct{ Kind string }
		if err := yaml.Unmarshal(b, &obj); err != nil {
			return err
		}
		kinds = append(kinds, obj.Kind)
		return nil
	}))
	assert.Subset(t, kinds, []string{"Namespace", "Deployment", "Service", "NetworkPolicy", "ConfigMap"})

	// Several environments at once, each in its own workspace.
	r = cli(t, bin, dir, "--json", "up", "--env", "qa,staging", "--parallel", "2")
	require.Equal(t, 0, r.code, r.stderr)
	var many []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &many))
	require.Len(t, many, 2)
	assert.Equal(t, "qa", many[0]["stack"])
	assert.Equal(t, "staging", many[1]["stack"])
	r = cli(t, bin, dir, "preview", "--env", "qa,staging", "--expect-no-changes")
	assert.Equal(t, 0, r.code, r.stderr)
	r = cli(t, bin, dir, "destroy", "--env", "qa,staging", "--remove")
	require.Equal(t, 0, r.code, r.stderr)

	r = cli(t, bin, dir, "destroy", "--env", "dev", "--remove")
	require.Equal(t, 0, r.code, r.stderr)
	r = cli(t, bin, dir, "cluster", "down")
	assert.Equal(t, 0, r.code, r.stderr)
	r = cli(t, bin, dir, "cluster", "status")
	assert.Equal(t, 1, r.code)
}
