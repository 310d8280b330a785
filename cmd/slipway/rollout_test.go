package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/integration/promtest"
)

// deploymentImages returns the image of each Deployment in ns by name.
func deploymentImages(t *testing.T, ns string) map[string]string {
	t.Helper()
	ds, err := cluster.Client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	out := map[string]string{}
	for _, d := range ds.Items {
		out[d.Name] = d.Spec.Template.Spec.Containers[0].Image
	}
	return out
}

// rolloutOf runs `--json rollout status` and returns the environment's
// rollout record.
func rolloutOf(t *testing.T, dir, env string) map[string]any {
	t.Helper()
	r := exe(t, dir, nil, "--json", "rollout", "status", "--env", env)
	require.Equal(t, 0, r.code, r.stderr)
	res := results(t, envelopeOf(t, r))
	require.Len(t, res, 1)
	assert.Equal(t, "rollout status", res[0]["operation"])
	ro, ok := res[0]["rollout"].(map[string]any)
	require.True(t, ok, "the item carries the rollout: %v", res[0])
	return ro
}

// TestCLI_RolloutPausesIsPromotedAndFinishes: over a stable canary
// release, `rollout start` sets the weight and returns at the pause that
// waits for a promotion, with the canary beside stable; a second version
// is refused while it runs; `rollout promote` then `rollout start` again
// finishes: stable runs the new version and the canary is gone.
func TestCLI_RolloutPausesIsPromotedAndFinishes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k := []string{"--kind", "dev", "--kubeconfig", cluster.Kubeconfig, "--strategy", "canary"}
	r := exe(t, dir, nil, append([]string{"up", "--env", "ro-a", "--image", "nginx:1.27"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	destroyAfter(t, dir, "ro-a")

	start := append([]string{"rollout", "start", "--env", "ro-a", "--image", "nginx:1.28", "--step", "weight=50", "--step", "pause"}, k...)
	r = exe(t, dir, nil, start...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "rollout slipway/ro-a: Paused at step 1 (pause until promoted), canary weight 50 %")
	assert.Contains(t, r.stderr, "rollout ro-a: step 0 (weight 50): done")
	assert.Equal(t, map[string]string{"web": "nginx:1.27", "web-canary": "nginx:1.28"}, deploymentImages(t, "slipway-ro-a"), "the canary runs beside stable")

	ro := rolloutOf(t, dir, "ro-a")
	assert.Equal(t, "Paused", ro["phase"])
	assert.EqualValues(t, 1, ro["step"])
	assert.EqualValues(t, 50, ro["weight"])
	assert.Equal(t, []any{"weight 50", "pause until promoted"}, ro["plan"])

	r = exe(t, dir, nil, "--json", "rollout", "start", "--env", "ro-a", "--image", "nginx:1.29", "--step", "weight=50", "--step", "pause",
		"--kind", "dev", "--kubeconfig", cluster.Kubeconfig, "--strategy", "canary")
	assert.Equal(t, ExitLocked, r.code, r.stderr)
	env := envelopeOf(t, r)
	assert.Equal(t, "rollout_in_progress", env["error"].(map[string]any)["code"])
	assert.Contains(t, r.stderr, "another rollout is in progress")
	assert.Contains(t, r.stderr, "promote or abort it first")
	assert.Equal(t, map[string]string{"web": "nginx:1.27", "web-canary": "nginx:1.28"}, deploymentImages(t, "slipway-ro-a"), "the refused version touched nothing")

	r = exe(t, dir, nil, "rollout", "promote", "--env", "ro-a")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "rerun `slipway rollout start` with the same flags to go on")

	r = exe(t, dir, nil, start...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "rollout slipway/ro-a: Promoted")
	assert.Equal(t, map[string]string{"web": "nginx:1.28"}, deploymentImages(t, "slipway-ro-a"), "stable runs the new version, the canary is gone")
	assert.Equal(t, "Promoted", rolloutOf(t, dir, "ro-a")["phase"])

	r = exe(t, dir, nil, "rollout", "status", "--env", "ro-a", "--watch")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "slipway/ro-a: Promoted", "--watch returns at a final phase")
}

// TestCLI_RolloutAbortsToStable: a Prometheus analysis that finds the
// canary's error rate too high aborts the rollout (the command fails, the
// canary is removed, stable untouched) and status shows the cause and the
// measurement; the bearer token, read from a file, is in no output. A
// later rollout aborted with `rollout abort` leaves stable too.
func TestCLI_RolloutAbortsToStable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prom := promtest.Start(t)
	prom.Push(t, "canary", "canary_error_rate", 0.4)
	prom.WaitFor(t, `canary_error_rate{job="canary"}`, 0.4)
	const token = "prom-token-7c1e0b"
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))

	k := []string{"--kind", "dev", "--kubeconfig", cluster.Kubeconfig, "--strategy", "canary"}
	r := exe(t, dir, nil, append([]string{"up", "--env", "ro-b", "--image", "nginx:1.27"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	destroyAfter(t, dir, "ro-b")

	r = exe(t, dir, nil, append([]string{"rollout", "start", "--env", "ro-b", "--image", "nginx:1.28",
		"--analysis", "errors.prometheus=" + prom.URL, "--analysis", `errors.query=canary_error_rate{job="canary"}`,
		"--analysis", "errors.condition=result < 0.05", "--analysis", "errors.bearer-token-file=" + tokenFile,
		"--step", "weight=50", "--step", "analysis=errors", "--step", "weight=90"}, k...)...)
	assert.Equal(t, ExitError, r.code, r.stderr)
	assert.Contains(t, r.stderr, "the rollout of ro-b was aborted and the last good release restored: step 1: analysis errors failed")
	assert.Equal(t, map[string]string{"web": "nginx:1.27"}, deploymentImages(t, "slipway-ro-b"), "the canary is removed, stable untouched")

	st := exe(t, dir, nil, "rollout", "status", "--env", "ro-b")
	require.Equal(t, 0, st.code, st.stderr)
	assert.Contains(t, st.stdout, "rollout slipway/ro-b: Aborted")
	assert.Contains(t, st.stdout, "cause    step 1: analysis errors failed")
	assert.Contains(t, st.stdout, "0.4          Failed")
	assert.Contains(t, st.stdout, "version  image nginx:1.28 (sha256:")
	ro := rolloutOf(t, dir, "ro-b")
	assert.Equal(t, "Aborted", ro["phase"])
	checks := ro["checks"].([]any)
	require.Len(t, checks, 1)
	check := checks[0].(map[string]any)
	assert.Equal(t, "Failed", check["verdict"])
	ms := check["detail"].(map[string]any)["measurements"].([]any)
	require.Len(t, ms, 1)
	assert.InDelta(t, 0.4, ms[0].(map[string]any)["value"], 1e-9)
	for _, out := range []string{r.stdout, r.stderr, st.stdout, st.stderr} {
		assert.NotContains(t, out, token)
	}

	start := append([]string{"rollout", "start", "--env", "ro-b", "--image", "nginx:1.29", "--step", "weight=50", "--step", "pause"}, k...)
	r = exe(t, dir, nil, start...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, map[string]string{"web": "nginx:1.27", "web-canary": "nginx:1.29"}, deploymentImages(t, "slipway-ro-b"))
	r = exe(t, dir, nil, "rollout", "abort", "--env", "ro-b", "--kind", "dev", "--kubeconfig", cluster.Kubeconfig, "--cause", "latency too high")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "rollout slipway/ro-b: Aborted")
	assert.Equal(t, map[string]string{"web": "nginx:1.27"}, deploymentImages(t, "slipway-ro-b"), "abort leaves stable")
	ro = rolloutOf(t, dir, "ro-b")
	assert.Equal(t, "Aborted", ro["phase"])
	assert.Equal(t, "latency too high", ro["cause"])

	r = exe(t, dir, nil, "--json", "dora", "--env", "ro-b", "--since", "1d")
	require.Equal(t, 0, r.code, r.stderr)
	d := results(t, envelopeOf(t, r))[0]["dora"].(map[string]any)
	assert.EqualValues(t, 2, d["failures"], "both aborted releases are failed changes in the history")

	r = exe(t, dir, nil, start...)
	assert.Equal(t, ExitError, r.code, "rerunning an aborted rollout reports the abort; it does not start again")
	assert.Equal(t, map[string]string{"web": "nginx:1.27"}, deploymentImages(t, "slipway-ro-b"))
}

// TestCLI_RolloutKilledMidPauseResumesAtItsStep: a `rollout start` killed
// (SIGKILL) during a timed pause leaves its record at that step; the same
// command again resumes there, waits out the rest of the pause and
// promotes, without applying the weight step again.
func TestCLI_RolloutKilledMidPauseResumesAtItsStep(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k := []string{"--kind", "dev", "--kubeconfig", cluster.Kubeconfig, "--strategy", "canary"}
	r := exe(t, dir, nil, append([]string{"up", "--env", "ro-k", "--image", "nginx:1.27"}, k...)...)
	require.Equal(t, 0, r.code, r.stderr)
	destroyAfter(t, dir, "ro-k")

	start := append([]string{"--dir", dir, "rollout", "start", "--env", "ro-k", "--image", "nginx:1.28", "--step", "weight=50", "--step", "pause=15s"}, k...)
	cmd := exec.Command(binary, start...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitUntil(t, done, 3*time.Minute, "the rollout reaches its pause", func() bool {
		s := exe(t, dir, nil, "--json", "rollout", "status", "--env", "ro-k")
		if s.code != 0 {
			return false
		}
		ro, ok := results(t, envelopeOf(t, s))[0]["rollout"].(map[string]any)
		return ok && ro["step"] == 1.0
	})
	require.NoError(t, cmd.Process.Kill())
	<-done
	assert.Equal(t, map[string]string{"web": "nginx:1.27", "web-canary": "nginx:1.28"}, deploymentImages(t, "slipway-ro-k"))
	ro := rolloutOf(t, dir, "ro-k")
	assert.Equal(t, "Progressing", ro["phase"], "the killed process left its record mid-way")
	assert.EqualValues(t, 1, ro["step"])

	r = exe(t, dir, nil, start[2:]...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "rollout ro-k: resumed at step 1 (pause 15s)")
	assert.NotContains(t, r.stderr, "step 0 (weight 50): done", "the weight step is not applied again")
	assert.Contains(t, r.stdout, "rollout slipway/ro-k: Promoted")
	assert.Equal(t, map[string]string{"web": "nginx:1.28"}, deploymentImages(t, "slipway-ro-k"))
}
