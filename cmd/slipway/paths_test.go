package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// evil is an image from a registry the Kubernetes pack does not allow: a
// parameter that passes validation and fails policy.
const evil = "evil.example.com/web:1.0"

// TestCLI_PolicyAppliesOnEveryPath gives a non-compliant parameter to every
// verb that can change infrastructure, with --policy, and asserts exit 3 and
// through client-go that nothing was created or changed: one environment,
// several, promotion, ephemeral create, drift remediation and rollback.
func TestCLI_PolicyAppliesOnEveryPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k := []string{"--kubeconfig", cluster.Kubeconfig}
	pol := []string{"--policy", "kubernetes"}
	args := func(a ...string) []string { return append(append(a, k...), pol...) }

	t.Run("one environment", func(t *testing.T) {
		r := exe(t, dir, nil, args("--json", "up", "--env", "pp-one", "--kind", "staging", "--image", evil)...)
		assert.Equal(t, ExitPolicy, r.code, r.stderr)
		env := envelopeOf(t, r)
		assert.Equal(t, "policy_blocked", env["error"].(map[string]any)["code"])
		assert.Equal(t, "blocked", results(t, env)[0]["status"])
		assert.Contains(t, r.stderr, "image-registry-allowlist")
		assert.False(t, namespaceExists(t, "slipway-pp-one"), "nothing was created")
	})
	t.Run("several environments", func(t *testing.T) {
		r := exe(t, dir, nil, args("--json", "up", "--env", "pp-many-a,pp-many-b", "--kind", "staging", "--image", evil)...)
		assert.Equal(t, ExitPolicy, r.code, r.stderr)
		res := results(t, envelopeOf(t, r))
		require.Len(t, res, 2)
		for i, name := range []string{"pp-many-a", "pp-many-b"} {
			assert.Equal(t, name, res[i]["environment"])
			assert.Equal(t, "blocked", res[i]["status"])
			assert.False(t, namespaceExists(t, "slipway-"+name), "nothing was created in %s", name)
		}
	})
	t.Run("promotion", func(t *testing.T) {
		r := exe(t, dir, nil, args("--json", "promote", "--through", "pp-pa,pp-pb", "--kind", "staging", "--image", evil)...)
		assert.Equal(t, ExitPolicy, r.code, r.stderr)
		res := results(t, envelopeOf(t, r))
		require.Len(t, res, 1, "the chain stops at the first stage")
		assert.Equal(t, "blocked", res[0]["status"])
		assert.False(t, namespaceExists(t, "slipway-pp-pa"))
		assert.False(t, namespaceExists(t, "slipway-pp-pb"))
	})
	t.Run("ephemeral create", func(t *testing.T) {
		r := exe(t, dir, nil, args("ephemeral", "create", "--env", "pp-pr-1", "--image", evil, "--policy-level", "image-registry-allowlist=mandatory")...)
		assert.Equal(t, ExitPolicy, r.code, r.stderr)
		assert.False(t, namespaceExists(t, "slipway-pp-pr-1"), "nothing was created")
		r = exe(t, dir, nil, "ephemeral", "destroy", "--env", "pp-pr-1", "--yes")
		assert.Equal(t, 0, r.code, "the tagged, empty stack is removed: %s", r.stderr)
	})
	t.Run("drift remediation", func(t *testing.T) {
		r := exe(t, dir, nil, args("up", "--env", "pp-drift", "--kind", "staging", "--set", "GREETING=hello")...)
		require.Equal(t, 0, r.code, r.stderr)
		destroyAfter(t, dir, "pp-drift")
		editConfigMap(t, "slipway-pp-drift", "GREETING", "edited")
		r = exe(t, dir, nil, args("--json", "drift", "--env", "pp-drift", "--kind", "staging", "--set", "GREETING=hello", "--remediate", "--image", evil)...)
		assert.Equal(t, ExitPolicy, r.code, r.stderr)
		env := envelopeOf(t, r)
		require.NotEmpty(t, results(t, env)[0]["drift"].(map[string]any)["resources"], "the drift was found")
		assert.Equal(t, "nginx:1.27", image(t, "slipway-pp-drift"), "the remediation applied nothing")
	})
	t.Run("rollback", func(t *testing.T) {
		// Release 1 is non-compliant (applied without policy), release 2 is
		// compliant; rolling back to release 1 with policy is blocked.
		r := exe(t, dir, nil, append([]string{"up", "--env", "pp-rb", "--kind", "staging", "--image", evil}, k...)...)
		require.Equal(t, 0, r.code, r.stderr)
		destroyAfter(t, dir, "pp-rb")
		r = exe(t, dir, nil, args("up", "--env", "pp-rb", "--kind", "staging")...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "nginx:1.27", image(t, "slipway-pp-rb"))
		r = exe(t, dir, nil, args("--json", "rollback", "--env", "pp-rb", "--kind", "staging")...)
		assert.Equal(t, ExitPolicy, r.code, r.stderr)
		envelopeOf(t, r)
		assert.Equal(t, "nginx:1.27", image(t, "slipway-pp-rb"), "the rollback applied nothing")
	})
	t.Run("rollout", func(t *testing.T) {
		// Every weight step is held to the policies: the canary of a
		// non-compliant image is blocked and the rollout aborted to stable.
		r := exe(t, dir, nil, args("up", "--env", "pp-ro", "--kind", "staging", "--strategy", "canary")...)
		require.Equal(t, 0, r.code, r.stderr)
		destroyAfter(t, dir, "pp-ro")
		r = exe(t, dir, nil, args("--json", "rollout", "start", "--env", "pp-ro", "--kind", "staging", "--strategy", "canary", "--image", evil, "--step", "weight=50")...)
		assert.Equal(t, ExitPolicy, r.code, r.stderr)
		env := envelopeOf(t, r)
		assert.Equal(t, "policy_blocked", env["error"].(map[string]any)["code"])
		ro := results(t, env)[0]["rollout"].(map[string]any)
		assert.Equal(t, "Aborted", ro["phase"])
		assert.Contains(t, ro["cause"], "image-registry-allowlist")
		assert.Equal(t, "nginx:1.27", image(t, "slipway-pp-ro"), "no canary ran; stable is untouched")
	})
}

// TestCLI_ExitCodesAndOneJSONEnvelopePerVerb drives every verb with --json
// and validates each output against schema/envelope.v1.json, asserting the
// exit codes: 0 success, 1 error (never hidden behind 2), 2 changes or
// drift, 4 stack locked (3 is covered by TestCLI_PolicyAppliesOnEveryPath).
func TestCLI_ExitCodesAndOneJSONEnvelopePerVerb(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k := []string{"--kubeconfig", cluster.Kubeconfig}
	run := func(want int, a ...string) (outcome, map[string]any) {
		t.Helper()
		r := exe(t, dir, nil, append([]string{"--json"}, a...)...)
		require.Equal(t, want, r.code, "%v\nstdout: %s\nstderr: %s", a, r.stdout, r.stderr)
		env := envelopeOf(t, r)
		if want != 0 {
			require.NotNil(t, env["error"], "a non-zero exit carries an error object")
			assert.EqualValues(t, want, env["error"].(map[string]any)["exitCode"])
		} else {
			assert.Nil(t, env["error"])
		}
		return r, env
	}
	first := func(env map[string]any) map[string]any {
		res := results(t, env)
		require.NotEmpty(t, res)
		return res[0]
	}

	run(0, "toolchain", "status")
	_, env := run(1, "cluster", "status") // this --dir has no cluster of its own
	assert.Equal(t, "failed", first(env)["status"])

	_, env = run(ExitChanges, append([]string{"preview", "--env", "ec-dev", "--expect-no-changes"}, k...)...)
	assert.Equal(t, "changes", first(env)["status"])
	assert.Equal(t, "changes_found", env["error"].(map[string]any)["code"])

	_, env = run(0, append([]string{"up", "--env", "ec-dev", "--set", "GREETING=hi"}, k...)...)
	destroyAfter(t, dir, "ec-dev")
	res := first(env)["result"].(map[string]any)
	assert.Equal(t, "slipway-ec-dev", res["outputs"].(map[string]any)["namespace"])
	assert.Greater(t, res["durationSeconds"].(float64), 0.0)
	assert.Less(t, res["durationSeconds"].(float64), 600.0, "seconds, not nanoseconds")

	run(0, append([]string{"preview", "--env", "ec-dev", "--set", "GREETING=hi", "--expect-no-changes"}, k...)...)
	_, env = run(0, append([]string{"drift", "--env", "ec-dev", "--set", "GREETING=hi"}, k...)...)
	assert.Empty(t, first(env)["drift"].(map[string]any)["resources"])

	editConfigMap(t, "slipway-ec-dev", "GREETING", "edited")
	_, env = run(ExitChanges, append([]string{"refresh", "--env", "ec-dev", "--expect-no-changes"}, k...)...)
	assert.Equal(t, "changes", first(env)["status"])
	// refresh --expect-no-changes wrote nothing: the drift is still there.
	_, env = run(ExitChanges, append([]string{"drift", "--env", "ec-dev", "--set", "GREETING=hi"}, k...)...)
	assert.Equal(t, "drift_found", env["error"].(map[string]any)["code"])
	drifted := first(env)["drift"].(map[string]any)["resources"].([]any)
	require.NotEmpty(t, drifted)
	// A watch that saw drift exits 2 when interrupted, not 0.
	assert.Equal(t, ExitChanges, watchDrift(t, dir, "ec-dev", "--set", "GREETING=hi", "--kubeconfig", cluster.Kubeconfig))
	_, env = run(0, append([]string{"drift", "--env", "ec-dev", "--set", "GREETING=hi", "--remediate"}, k...)...)
	assert.NotNil(t, first(env)["drift"].(map[string]any)["remediated"])
	run(0, append([]string{"drift", "--env", "ec-dev", "--set", "GREETING=hi"}, k...)...)

	// A broken preview with --expect-no-changes is an error (1), printed,
	// never "changes pending" (2): here the stack's secrets cannot be
	// decrypted with the wrong passphrase.
	r := exe(t, dir, []string{"PULUMI_CONFIG_PASSPHRASE=wrong"}, append([]string{"--json", "preview", "--env", "ec-dev", "--set", "GREETING=edited", "--expect-no-changes"}, k...)...)
	require.Equal(t, ExitError, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	env = envelopeOf(t, r)
	assert.Equal(t, "failed", first(env)["status"])
	assert.Equal(t, "error", env["error"].(map[string]any)["code"])
	assert.Contains(t, r.stderr, "passphrase", "the engine's error is printed")

	// Another update holds the stack: exit 4.
	release := holdLock(t, dir, "ec-dev")
	_, env = run(ExitLocked, append([]string{"up", "--env", "ec-dev", "--set", "GREETING=hi"}, k...)...)
	assert.Equal(t, "stack_locked", env["error"].(map[string]any)["code"])
	assert.Equal(t, "locked", first(env)["status"])
	release()

	// A lock from another host cannot be proven dead: it is kept (exit 4,
	// naming the way out) until --force-unlock removes it.
	writeLock(t, dir, "ec-dev", "another-host.example") // removed below by --force-unlock
	r, env = run(ExitLocked, append([]string{"up", "--env", "ec-dev", "--set", "GREETING=hi"}, k...)...)
	assert.Equal(t, "stack_locked", env["error"].(map[string]any)["code"])
	assert.Contains(t, r.stderr, "--force-unlock")
	run(0, append([]string{"--force-unlock", "up", "--env", "ec-dev", "--set", "GREETING=hi"}, k...)...)
	locks, err := os.ReadDir(filepath.Join(dir, "state", ".pulumi", "locks", "organization", "slipway", "ec-dev"))
	require.NoError(t, err)
	assert.Empty(t, locks, "--force-unlock removed the lock")

	// Approval: refused without it, given for several stages at once.
	promote := append([]string{"--json", "promote", "--through", "ec-dev", "--approve", "ec-dev", "--set", "GREETING=hi"}, k...)
	r = exe(t, dir, []string{"-SLIPWAY_APPROVE"}, promote...)
	require.Equal(t, ExitError, r.code, r.stderr)
	assert.Contains(t, r.stderr, "stage ec-dev needs approval: set SLIPWAY_APPROVE=ec-dev")
	r = exe(t, dir, []string{"SLIPWAY_APPROVE=ec-qa,ec-dev"}, promote...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "succeeded", first(envelopeOf(t, r))["status"])

	_, env = run(0, append([]string{"ephemeral", "create", "--env", "ec-pr-1", "--ttl", "1s"}, k...)...)
	eph := first(env)["ephemeral"].(map[string]any)
	assert.Equal(t, "ec-pr-1", eph["key"])
	expires, err := time.Parse(time.RFC3339, eph["expires"].(string))
	require.NoError(t, err)
	time.Sleep(time.Until(expires.Add(time.Second))) // the TTL must pass for gc to collect it
	// gc --dry-run lists what gc would collect and destroys nothing.
	_, env = run(0, "gc", "--dry-run")
	would := results(t, env)
	require.Len(t, would, 1)
	assert.Equal(t, "ec-pr-1", would[0]["environment"])
	assert.Equal(t, "gc dry-run", would[0]["operation"])
	assert.True(t, namespaceExists(t, "slipway-ec-pr-1"), "a dry run destroys nothing")
	// Without a terminal, the destructive verbs need --yes; refused, they destroy nothing.
	for _, verb := range [][]string{{"gc"}, {"ephemeral", "destroy", "--env", "ec-pr-1"}, append([]string{"destroy", "--env", "ec-dev"}, k...)} {
		r := exe(t, dir, nil, verb...)
		assert.Equal(t, ExitError, r.code, "%v: %s", verb, r.stderr)
		assert.Contains(t, r.stderr, "pass --yes (nothing was destroyed)", verb)
	}
	// On a terminal they ask; anything but yes destroys nothing.
	r = onTerminal(t, dir, "no\n", "gc")
	assert.Equal(t, ExitError, r.code, r.stdout)
	assert.Contains(t, r.stdout, "ephemeral environment ec-pr-1 (key ec-pr-1, expired", "gc shows what it will destroy")
	assert.Contains(t, r.stdout, `not confirmed (answered "no"); nothing was destroyed`)
	assert.True(t, namespaceExists(t, "slipway-ec-pr-1"))
	assert.True(t, namespaceExists(t, "slipway-ec-dev"))
	_, env = run(0, "gc", "--yes")
	collected := results(t, env)
	require.Len(t, collected, 1)
	assert.Equal(t, "ec-pr-1", collected[0]["environment"])
	assert.False(t, namespaceExists(t, "slipway-ec-pr-1"), "gc destroyed it")
	run(0, "ephemeral", "destroy", "--env", "ec-pr-1", "--missing-ok", "--yes")
	_, env = run(0, "render", "--env", "ec-dev", "--out", t.TempDir())
	assert.Equal(t, "render", first(env)["operation"])
	// Answered yes on a terminal, destroy acts.
	r = onTerminal(t, dir, "yes\n", append([]string{"destroy", "--env", "ec-dev", "--remove"}, k...)...)
	assert.Equal(t, 0, r.code, r.stdout)
	assert.Contains(t, r.stdout, "destroy will destroy every resource of:\r\n  - environment ec-dev (stack slipway/ec-dev)")
	assert.False(t, namespaceExists(t, "slipway-ec-dev"))
}

// watchDrift runs drift --interval, waits for its first report, interrupts
// it and returns its exit code.
func watchDrift(t *testing.T, dir, env string, args ...string) int {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--dir", dir, "drift", "--env", env, "--interval", "10s"}, args...)...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	reported := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "drift check of "+env) {
			reported = true
			break
		}
	}
	require.True(t, reported, "the watch reported a first check")
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	go func() { _, _ = io.Copy(io.Discard, out) }()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}

// holdLock writes a lock of the stack as a live update of this process
// would (the DIY backend's format) and returns its removal.
func holdLock(t *testing.T, dir, stack string) func() {
	t.Helper()
	host, err := os.Hostname()
	require.NoError(t, err)
	return writeLock(t, dir, stack, host)
}

// writeLock writes a lock of the stack held by this process on host.
func writeLock(t *testing.T, dir, stack, host string) func() {
	t.Helper()
	locks := filepath.Join(dir, "state", ".pulumi", "locks", "organization", "slipway", stack)
	require.NoError(t, os.MkdirAll(locks, 0o755))
	p := filepath.Join(locks, "5d6f8a0e-0000-4000-8000-000000000001.json")
	b, _ := json.Marshal(map[string]any{"pid": os.Getpid(), "username": "test", "hostname": host, "timestamp": time.Now().UTC()})
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return func() { require.NoError(t, os.Remove(p)) }
}

// TestCLI_SecretsNeverReachAnyOutput plants a canary secret with --secret
// and checks it reaches the workload through a Kubernetes Secret, and never
// any output the product writes: stdout, --json, verbose logs, release
// history, workspace files and the state (where it is encrypted).
func TestCLI_SecretsNeverReachAnyOutput(t *testing.T) {
	t.Parallel()
	const canary = "canary-7f3c9e21d4b8"
	dir := t.TempDir()
	k := []string{"--kubeconfig", cluster.Kubeconfig}
	var outputs []string
	run := func(want int, a ...string) {
		t.Helper()
		r := exe(t, dir, nil, append(append([]string{"-v"}, a...), k...)...)
		require.Equal(t, want, r.code, "%v: %s", a, r.stderr)
		outputs = append(outputs, r.stdout, r.stderr)
	}
	run(0, "--json", "up", "--env", "sc-dev", "--secret", "API_TOKEN="+canary, "--set", "GREETING=hi")
	destroyAfter(t, dir, "sc-dev")
	run(0, "up", "--env", "sc-dev", "--secret", "API_TOKEN="+canary, "--set", "GREETING=hi")
	run(0, "--json", "preview", "--env", "sc-dev", "--secret", "API_TOKEN="+canary, "--set", "GREETING=hi", "--expect-no-changes")
	run(0, "--json", "drift", "--env", "sc-dev", "--set", "GREETING=hi")
	run(0, "--json", "promote", "--through", "sc-dev", "--secret", "API_TOKEN="+canary, "--set", "GREETING=hi")
	run(0, "up", "--env", "sc-dev", "--set", "GREETING=v2") // no --secret: the stack keeps its secrets
	run(0, "--json", "rollback", "--env", "sc-dev")

	ctx := context.Background()
	sec, err := cluster.Client.CoreV1().Secrets("slipway-sc-dev").Get(ctx, "web-secrets", metav1.GetOptions{})
	require.NoError(t, err, "the secret reaches the cluster as a Kubernetes Secret")
	assert.Equal(t, canary, string(sec.Data["API_TOKEN"]), "an up without --secret and the rollback kept the secret")
	cm, err := cluster.Client.CoreV1().ConfigMaps("slipway-sc-dev").Get(ctx, "web-config", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "hi", cm.Data["GREETING"], "rolled back to the release before v2")
	assert.NotContains(t, fmt.Sprint(cm.Data), canary, "not in the ConfigMap")
	ds, err := cluster.Client.AppsV1().Deployments("slipway-sc-dev").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, ds.Items, 1)
	refs := fmt.Sprint(ds.Items[0].Spec.Template.Spec.Containers[0].EnvFrom)
	assert.Contains(t, refs, "web-secrets", "the workload reads it through envFrom")

	for i, o := range outputs {
		assert.NotContains(t, o, canary, "output %d of the CLI", i)
	}
	files := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(p, filepath.Join(dir, "cluster")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		assert.NotContains(t, string(b), canary, "file %s", p)
		return nil
	}))
	assert.Greater(t, files, 5, "the walk saw the state, workspaces and release files")
}

// onTerminal runs the binary on a pseudo-terminal (util-linux script) and,
// once it asks, types answer; stdout holds everything the terminal showed.
// The answer waits for the question: what a terminal holds before is read
// by whatever queries the terminal first.
func onTerminal(t *testing.T, dir, answer string, args ...string) outcome {
	t.Helper()
	line := strings.Join(append([]string{binary, "--dir", dir}, args...), " ")
	cmd := exec.Command("script", "-qec", line, "/dev/null")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var out bytes.Buffer
	asked, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for seen := false; ; {
			n, err := stdout.Read(buf)
			out.Write(buf[:n])
			if !seen && strings.Contains(out.String(), "Type yes to confirm") {
				seen = true
				close(asked)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-asked:
		_, err := io.WriteString(stdin, answer)
		assert.NoError(t, err, "typing the answer")
	case <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		t.Errorf("%s asked nothing within 5 minutes", line)
	}
	assert.NoError(t, stdin.Close())
	<-done
	return exited(t, cmd.Wait(), out.String(), "")
}
