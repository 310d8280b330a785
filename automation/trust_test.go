package automation

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/policypacks"
)

func noop(*pulumi.Context) error { return nil }

// TestOpen_MissingPluginFailsBeforeTheEngineRuns: a program that needs a
// plugin Slipway does not build is refused with the way to provide it, and
// the engine is never started (this Engine has no pulumi command at all).
func TestOpen_MissingPluginFailsBeforeTheEngineRuns(t *testing.T) {
	home := t.TempDir()
	e := &Engine{dir: t.TempDir(), pulumiHome: home}
	prog := Program{Project: "p", Stack: "dev", Run: noop, Plugins: []Plugin{{Name: "aws", Version: toolchain.AWSProviderVersion}}}
	for _, open := range []func(context.Context, Program) (*Stack, error){e.UpsertStack, e.SelectStack} {
		_, err := open(context.Background(), prog)
		var mp *MissingPluginError
		require.ErrorAs(t, err, &mp)
		assert.Equal(t, "aws", mp.Plugin.Name)
		assert.Contains(t, err.Error(), "never downloads")
		assert.Contains(t, err.Error(), filepath.Join(home, "plugins", "resource-aws-v"+toolchain.AWSProviderVersion, "pulumi-resource-aws"))
		assert.Contains(t, err.Error(), "automation.WithPlugin")
	}
	_, err := os.Stat(filepath.Join(e.dir, "workspaces"))
	assert.True(t, os.IsNotExist(err), "no workspace was made")

	// Installed, it passes the check.
	bin := filepath.Join(t.TempDir(), "pulumi-resource-aws")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755))
	_, err = toolchain.InstallPlugin(bin, home, "resource", "aws", toolchain.AWSProviderVersion)
	require.NoError(t, err)
	assert.NoError(t, e.checkPlugins(prog))
}

// TestWorkspace_NeverDownloadsPlugins: every engine run has automatic plugin
// acquisition turned off.
func TestWorkspace_NeverDownloadsPlugins(t *testing.T) {
	e := &Engine{backend: "file:///tmp/x", env: map[string]string{}}
	opts := e.workspaceOptions(t.TempDir())
	require.NotEmpty(t, opts)
	b, err := json.Marshal(e.engineEnv())
	require.NoError(t, err)
	assert.Contains(t, string(b), `"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION":"true"`)
}

// TestPolicyDir_RefusesABinaryThatNeverCalledServeIfAnalyzer: this test
// binary never calls ServeIfAnalyzer, so using it as the analyzer fails
// before any engine run, naming the missing call.
func TestPolicyDir_RefusesABinaryThatNeverCalledServeIfAnalyzer(t *testing.T) {
	require.False(t, policypacks.AnalyzerReady())
	self, err := os.Executable()
	require.NoError(t, err)
	e := &Engine{dir: t.TempDir(), analyzer: self}
	_, err = e.PolicyDir("dev", policypacks.Settings{Environment: "dev"}, &policypacks.Pack{Name: "p", Version: "0.1.0"})
	require.ErrorIs(t, err, ErrAnalyzerNotServed)
	assert.Contains(t, err.Error(), "ServeIfAnalyzer()")
	_, err = os.Stat(filepath.Join(e.dir, "policy", "dev"))
	assert.True(t, os.IsNotExist(err), "no pack directory was written")

	// A program carrying a pack directory linked to this binary is refused too.
	dir := t.TempDir()
	require.NoError(t, os.Symlink(self, policypacks.Entry(dir)))
	_, err = e.UpsertStack(context.Background(), Program{Project: "p", Stack: "dev", Run: noop, Policies: []string{dir}})
	require.ErrorIs(t, err, ErrAnalyzerNotServed)
	_, err = e.UpsertStack(context.Background(), Program{Project: "p", Stack: "dev", Run: noop, Policies: []string{t.TempDir()}})
	assert.ErrorContains(t, err, "is not a policy pack directory")
}

func TestValidateBackend_NamesTheProblem(t *testing.T) {
	for url, want := range map[string]string{
		"ftp://x":                  "is not supported",
		"file://relative/dir":      "needs an absolute directory",
		"file://":                  "needs an absolute directory",
		"s3://":                    "names no bucket",
		"gs://":                    "names no bucket",
		"https://":                 "names no host",
		"s3://b?access_key=SECRET": "",
		"::bad":                    "does not parse",
	} {
		err := ValidateBackend(url)
		if want == "" {
			assert.NoError(t, err, url)
			continue
		}
		require.Error(t, err, url)
		assert.Contains(t, err.Error(), want, url)
		assert.NotContains(t, err.Error(), "SECRET")
	}
	for _, ok := range []string{"file:///var/state", "file://~/state", "s3://bucket?region=eu-west-1", "https://api.pulumi.com", "azblob://c"} {
		assert.NoError(t, ValidateBackend(ok), ok)
	}
}

// TestCollector_NoEventAfterTheOperationReturned: once wait returns, OnEvent
// is never called again, and the reader goroutine ends on its own.
func TestCollector_NoEventAfterTheOperationReturned(t *testing.T) {
	var calls atomic.Int32
	c := newCollector(func(events.EngineEvent) { calls.Add(1) })
	ev := events.EngineEvent{EngineEvent: apitype.EngineEvent{ResourcePreEvent: &apitype.ResourcePreEvent{
		Metadata: apitype.StepEventMetadata{URN: "urn:pulumi:dev::p::t::a", Type: "t", Op: apitype.OpCreate}}}}
	c.ch <- ev // unbuffered: handled before the send returns... or being handled
	steps := c.wait()
	require.Len(t, steps, 1)
	assert.EqualValues(t, 1, calls.Load())
	c.ch <- ev // a straggler from the engine's event server
	assert.EqualValues(t, 1, calls.Load(), "OnEvent fired after the call returned")
	select {
	case <-c.exited:
	case <-time.After(drainWindow + 5*time.Second):
		t.Fatal("the reader goroutine did not end")
	}

	// A stream the engine never opened (e.g. a lock error) does not block wait.
	c = newCollector(nil)
	done := make(chan []ResourceChange)
	go func() { done <- c.wait() }()
	select {
	case steps := <-done:
		assert.Empty(t, steps)
	case <-time.After(time.Second):
		t.Fatal("wait blocked on a stream that was never opened")
	}
}

func TestChangesError_IsTypedAndDistinctFromFailures(t *testing.T) {
	err := error(&OpError{Op: "preview", Stack: "dev", Err: &ChangesError{Op: "preview", Stack: "dev", Changes: 3}})
	assert.True(t, IsChangesFound(err))
	assert.False(t, IsChangesFound(errors.New("preview failed")))
	assert.False(t, IsChangesFound(&PolicyError{Op: "up"}))
	assert.Contains(t, err.Error(), "found 3 change(s)")
}

func TestResultJSON_DurationsInSecondsAndCamelCase(t *testing.T) {
	r := Result{Operation: "up", Project: "p", Stack: "dev", Summary: map[string]int{"create": 2},
		Resources: []ResourceChange{{URN: "u", Type: "t", Op: "create", Duration: 1500 * time.Millisecond}}, Duration: 2500 * time.Millisecond}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, 2.5, m["durationSeconds"])
	assert.EqualValues(t, 2, m["changes"])
	assert.NotContains(t, m, "duration")
	assert.Equal(t, 1.5, m["resources"].([]any)[0].(map[string]any)["durationSeconds"])
	for k := range m {
		assert.Equal(t, strings.ToLower(k[:1]), k[:1], "camelCase key %s", k)
	}
	d, err := json.Marshal(Drift{Stack: "dev", Duration: time.Second})
	require.NoError(t, err)
	assert.Contains(t, string(d), `"durationSeconds":1`)
	assert.Contains(t, string(d), `"resources":[]`)
}

// TestComparePlans_FindsChangedGoalsIgnoringCiphertexts: the reviewed plan
// and a fresh one are compared per resource; re-encryption is not a change.
func TestComparePlans_FindsChangedGoalsIgnoringCiphertexts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, image, cipher string) string {
		p := filepath.Join(dir, name)
		deps := []string{"urn:pulumi:dev::p::t::x", "urn:pulumi:dev::p::t::y"}
		if name == "b.json" {
			deps = []string{deps[1], deps[0]} // registered in another order
		}
		doc := map[string]any{"resourcePlans": map[string]any{
			"urn:a": map[string]any{"goal": map[string]any{"inputs": map[string]any{"image": image}, "dependencies": deps}, "steps": []string{"create"}, "seed": name},
			"urn:s": map[string]any{"goal": map[string]any{"inputs": map[string]any{"token": map[string]any{"ciphertext": cipher}}}, "steps": []string{"create"}},
		}}
		b, _ := json.Marshal(doc)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	a := write("a.json", "nginx:1.27", "v1:abc")
	same := write("b.json", "nginx:1.27", "v1:xyz")
	changed := write("c.json", "nginx:1.28", "v1:abc")
	diff, err := comparePlans(a, same)
	require.NoError(t, err)
	assert.Empty(t, diff)
	diff, err = comparePlans(a, changed)
	require.NoError(t, err)
	assert.Equal(t, []string{"urn:a"}, diff)
	err = &PlanChangedError{Stack: "dev", Resources: diff}
	assert.True(t, IsPlanChanged(err))
	assert.Contains(t, err.Error(), "nothing was applied")
}

// TestCollector_DriftPropertiesFollowTheEnginesDiff: a recorded property
// the engine does not diff (ignoreChanges, e.g. replicas owned by an
// autoscaler) is not reported as drifted even though the live value moved;
// a field someone added out of band is.
func TestCollector_DriftPropertiesFollowTheEnginesDiff(t *testing.T) {
	c := newCollector(nil)
	md := &apitype.StepEventMetadata{URN: "urn:pulumi:dev::p::kubernetes:apps/v1:Deployment::web", Type: "kubernetes:apps/v1:Deployment", Op: apitype.OpUpdate,
		Old: &apitype.StepEventStateMetadata{Outputs: map[string]any{"spec": map[string]any{"replicas": 1.0, "template": map[string]any{"image": "a"}},
			"metadata": map[string]any{"labels": map[string]any{}}}},
		New: &apitype.StepEventStateMetadata{Outputs: map[string]any{"spec": map[string]any{"replicas": 3.0, "template": map[string]any{"image": "b"}},
			"metadata": map[string]any{"labels": map[string]any{"added": "out-of-band"}}}},
		DetailedDiff: map[string]apitype.PropertyDiff{"spec.template.image": {Kind: apitype.DiffUpdate}}}
	c.add(md, 0)
	steps := c.wait()
	require.Len(t, steps, 1)
	var paths []string
	for _, p := range steps[0].Properties {
		paths = append(paths, p.Path)
	}
	assert.Equal(t, []string{"metadata.labels.added", "spec.template.image"}, paths,
		"the ignored replicas are left out; a field added out of band is reported")

	assert.True(t, underAny("spec.template.spec.containers", map[string]string{"spec.template.spec.containers[0].image": "update"}))
	assert.True(t, underAny("data.GREETING", map[string]string{"data": "update"}))
	assert.False(t, underAny("spec.replicas", map[string]string{"spec.template": "update"}))
	assert.True(t, underAny("data.DB.HOST", map[string]string{`data["DB.HOST"]`: "update"}))
}
