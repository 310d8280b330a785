package toolchain

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/toolchain/internal/toolspec"
)

// listModules returns the module version of every package the go build of
// pkgs in dir compiles, as go list -deps resolves them without changing
// go.mod or go.sum (what a build does).
func listModules(t *testing.T, dir string, pkgs ...string) map[string]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-mod=readonly", "-deps", "-f", "{{with .Module}}{{.Path}} {{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}{{end}}"}, pkgs...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	var stderr string
	if exit, ok := err.(*exec.ExitError); ok {
		stderr = string(exit.Stderr)
	}
	require.NoError(t, err, "go list in %s: %s", dir, stderr)
	mods := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, version, ok := strings.Cut(l, " "); ok && version != "" {
			mods[path] = version
		}
	}
	require.NotEmpty(t, mods)
	return mods
}

// TestModules_ResolveAsEmbeddedWithOneSetOfVersions checks every tool's
// embedded module as its build uses it: its go.mod and go.sum resolve the
// build's packages without a change (a missing requirement or go.sum entry
// would stop the first run's build), and the slipway command, pulumi, the
// control plane and kwok agree on the version of every module they share,
// so the Go build cache compiles a shared package once (the Kubernetes
// provider keeps the versions it was released with; see docs/performance.md).
func TestModules_ResolveAsEmbeddedWithOneSetOfVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("lists the tools' module graphs")
	}
	require.Len(t, toolspec.Tools, 4)
	versions := map[string]map[string]string{"slipway": listModules(t, "../..", "./cmd/slipway")}
	for _, tl := range toolspec.Tools {
		dir := t.TempDir()
		require.NoError(t, toolspec.WriteModule(toolspec.Modules, tl.Module, dir))
		if tl.Name == kubernetesProviderTool.name {
			// What the tool's prepare copies from the provider's module.
			for _, f := range []string{"schema.json", "terraform-mapping.json"} {
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644))
			}
		}
		versions[tl.Name] = listModules(t, dir, tl.Packages...)
	}
	aligned := []string{"slipway", pulumiTool.name, kubernetesTool.name, kwokTool.name}
	shared := 0
	for _, a := range aligned {
		for _, b := range aligned {
			if a >= b {
				continue
			}
			for mod, va := range versions[a] {
				if vb, ok := versions[b][mod]; ok {
					shared++
					assert.Equal(t, va, vb, "%s: %s and %s must use one version (raise the lower one in its go.mod)", mod, a, b)
				}
			}
		}
	}
	assert.Greater(t, shared, 100, "modules shared between the aligned builds")
}
