package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

// TestCLI_DoctorOnAReadyMachine: with the toolchain built, a passphrase,
// the local cluster as target and the binary serving its analyzer, every
// check of doctor passes: exit 0, one "ok" line per check, naming the
// patched pulumi build and the cluster's Kubernetes version; the
// passphrase itself appears nowhere.
func TestCLI_DoctorOnAReadyMachine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	home := t.TempDir()
	r := toolchain.New(toolchain.WithoutPATH(), toolchain.WithLog(io.Discard))
	_, err := r.Pulumi(ctx)
	require.NoError(t, err)
	_, err = r.KubernetesProvider(ctx, home)
	require.NoError(t, err)

	const passphrase = "doctor-canary-4f1e"
	dir := t.TempDir()
	// No pulumi on PATH: it would be used instead of the patched build.
	path := slices.DeleteFunc(strings.Split(os.Getenv("PATH"), ":"), func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "pulumi"))
		return err == nil
	})
	out := exe(t, dir, []string{"PULUMI_CONFIG_PASSPHRASE=" + passphrase, "PULUMI_HOME=" + home, "-KUBECONFIG",
		"PATH=" + strings.Join(path, ":")}, "doctor", "--kubeconfig", cluster.Kubeconfig)
	require.Equal(t, 0, out.code, "stdout:\n%s\nstderr:\n%s", out.stdout, out.stderr)
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	require.Len(t, lines, 6, out.stdout)
	names := []string{"toolchain", "backend", "passphrase", "target", "analyzer", "plugins"}
	for i, l := range lines {
		f := strings.Fields(l)
		require.GreaterOrEqual(t, len(f), 3, l)
		assert.Equal(t, "ok", f[0], l)
		assert.Equal(t, names[i], f[1], l)
		assert.NotContains(t, l, "; fix:", "an ok line needs no fix")
	}
	assert.Contains(t, lines[0], "pulumi v"+toolchain.PatchedPulumiVersion+", Slipway's patched build (cache)")
	assert.Contains(t, lines[3], "Kubernetes v"+toolchain.KubernetesVersion)
	assert.Contains(t, lines[5], "kubernetes v"+toolchain.KubernetesProviderVersion)
	assert.NotContains(t, out.stdout+out.stderr, passphrase)

	// The same machine with the cluster out of reach: that line fails, naming the fix.
	out = exe(t, dir, []string{"PULUMI_CONFIG_PASSPHRASE=" + passphrase, "PULUMI_HOME=" + home}, "doctor", "--kubeconfig", filepath.Join(dir, "none"))
	assert.Equal(t, ExitError, out.code)
	assert.Regexp(t, `(?m)^FAIL target .*; fix: start the local cluster with .slipway cluster up.`, out.stdout)
}
