package outcome

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/policypacks"
)

// TestResultChanges_FromTheSummary: every operation but same, read and
// refresh counts.
func TestResultChanges_FromTheSummary(t *testing.T) {
	r := &Result{Summary: map[string]int{"create": 2, "update": 1, "delete": 1, "replace": 1, "same": 7, "read": 2, "refresh": 9},
		// Steps disagree on purpose: with a summary, the summary counts.
		Resources: []ResourceChange{{URN: "a", Op: "create"}}}
	assert.Equal(t, 5, r.Changes())
	assert.Zero(t, (&Result{Summary: map[string]int{"same": 3, "read": 1, "refresh": 4}}).Changes())
}

// TestResultChanges_WithoutASummaryCountsSteps: a failed run carries no
// summary; then the steps count, except same, read, refresh and the stack.
func TestResultChanges_WithoutASummaryCountsSteps(t *testing.T) {
	r := &Result{Resources: []ResourceChange{
		{URN: "urn:stack", Type: "pulumi:pulumi:Stack", Op: "update"},
		{URN: "a", Type: "kubernetes:core/v1:ConfigMap", Op: "update"},
		{URN: "b", Type: "kubernetes:core/v1:Namespace", Op: "same"},
		{URN: "c", Type: "kubernetes:core/v1:Service", Op: "refresh"},
		{URN: "d", Type: "aws:index/getRegion:getRegion", Op: "read"},
		{URN: "e", Type: "kubernetes:apps/v1:Deployment", Op: "create"},
		{URN: "f", Type: "kubernetes:apps/v1:Deployment", Op: "delete"},
	}}
	assert.Equal(t, 3, r.Changes())
	assert.Zero(t, (&Result{}).Changes())
	changed := r.Changed()
	require.Len(t, changed, 5, "Changed leaves out same and read only")
	for _, c := range changed {
		assert.NotContains(t, []string{"same", "read"}, c.Op)
	}
}

func step(op apitype.OpType, urn string) *apitype.StepEventMetadata {
	return &apitype.StepEventMetadata{Op: op, URN: urn, Type: "kubernetes:core/v1:ConfigMap"}
}

func state(outputs map[string]any) *apitype.StepEventStateMetadata {
	return &apitype.StepEventStateMetadata{Outputs: outputs}
}

// collect feeds steps to a collector and returns what it kept.
func collect(t *testing.T, steps ...func(*Collector)) []ResourceChange {
	t.Helper()
	c := NewCollector(nil)
	for _, s := range steps {
		s(c)
	}
	return c.wait()
}

func add(md *apitype.StepEventMetadata, took time.Duration) func(*Collector) {
	return func(c *Collector) { c.add(md, time.Time{}, took) }
}

// TestCollector_RefreshAnnounceIsReplacedByTheFinding: a refresh announces
// each resource ("refresh"), then reports what it found; only the finding
// stays, in the announce's place.
func TestCollector_RefreshAnnounceIsReplacedByTheFinding(t *testing.T) {
	found := step(apitype.OpUpdate, "b")
	found.Old = state(map[string]any{"data": map[string]any{"K": "v"}, "metadata": map[string]any{"resourceVersion": "1"}})
	found.New = state(map[string]any{"data": map[string]any{"K": "edited"}, "metadata": map[string]any{"resourceVersion": "2"}})
	got := collect(t,
		add(step(apitype.OpRefresh, "a"), 0),
		add(step(apitype.OpRefresh, "b"), 0),
		add(step(apitype.OpSame, "a"), 0),
		add(found, 0),
	)
	require.Len(t, got, 2)
	assert.Equal(t, "a", got[0].URN)
	assert.Equal(t, "same", got[0].Op)
	assert.Equal(t, "b", got[1].URN)
	assert.Equal(t, "update", got[1].Op)
	assert.Equal(t, []PropertyChange{{Path: "data.K", Expected: "v", Actual: "edited"}}, got[1].Properties,
		"the server's bookkeeping (resourceVersion) is not drift")
	assert.Equal(t, []string{"data"}, got[1].Diffs, "diffs derived from the changed properties")
}

// TestCollector_PreAndOutputsEventsMerge: the outputs event repeats the
// pre event of a step; one change is kept, with the richer diff and the
// step's duration, and an outputs event without a diff does not erase it.
func TestCollector_PreAndOutputsEventsMerge(t *testing.T) {
	pre := step(apitype.OpUpdate, "a")
	pre.Diffs = []string{"data"}
	pre.DetailedDiff = map[string]apitype.PropertyDiff{"data.K": {Kind: apitype.DiffUpdate}}
	bare := step(apitype.OpUpdate, "a")
	got := collect(t,
		add(pre, 0),
		add(bare, 3*time.Second),
		add(step(apitype.OpCreate, "b"), 0),
		add(step(apitype.OpCreate, "b"), time.Second),
	)
	require.Len(t, got, 2)
	assert.Equal(t, ResourceChange{URN: "a", Type: "kubernetes:core/v1:ConfigMap", Op: "update", Diffs: []string{"data"},
		DetailedDiff: map[string]string{"data.K": "update"}, Duration: 3 * time.Second}, got[0])
	assert.Equal(t, "b", got[1].URN)
	assert.Equal(t, time.Second, got[1].Duration)

	// A richer outputs event replaces the pre event's.
	rich := step(apitype.OpUpdate, "a")
	rich.DetailedDiff = map[string]apitype.PropertyDiff{"data.K": {Kind: apitype.DiffUpdate}, "data.L": {Kind: apitype.DiffAdd}}
	got = collect(t, add(step(apitype.OpUpdate, "a"), 0), add(rich, 0))
	require.Len(t, got, 1)
	assert.Equal(t, map[string]string{"data.K": "update", "data.L": "add"}, got[0].DetailedDiff)
	assert.Equal(t, []string{"data"}, got[0].Diffs)
}

// TestCollector_DistinctStepsOfOneResourceStay: a replacement's steps on
// one URN are different operations and all stay, in order.
func TestCollector_DistinctStepsOfOneResourceStay(t *testing.T) {
	got := collect(t,
		add(step(apitype.OpCreateReplacement, "a"), 0),
		add(step(apitype.OpReplace, "a"), 0),
		add(step(apitype.OpDeleteReplaced, "a"), 0),
		add(step(apitype.OpDeleteReplaced, "a"), time.Second),
	)
	var ops []string
	for _, c := range got {
		ops = append(ops, c.Op)
	}
	assert.Equal(t, []string{"create-replacement", "replace", "delete-replaced"}, ops)
}

// TestCollector_NoEventAfterTheOperationReturned: once wait returns, OnEvent
// is never called again, and the reader goroutine ends on its own.
func TestCollector_NoEventAfterTheOperationReturned(t *testing.T) {
	var calls atomic.Int32
	c := NewCollector(func(events.EngineEvent) { calls.Add(1) })
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
	c = NewCollector(nil)
	done := make(chan []ResourceChange)
	go func() { done <- c.wait() }()
	select {
	case steps := <-done:
		assert.Empty(t, steps)
	case <-time.After(time.Second):
		t.Fatal("wait blocked on a stream that was never opened")
	}
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

// TestCollector_DriftPropertiesFollowTheEnginesDiff: a recorded property
// the engine does not diff (ignoreChanges, e.g. replicas owned by an
// autoscaler) is not reported as drifted even though the live value moved;
// a field someone added out of band is.
func TestCollector_DriftPropertiesFollowTheEnginesDiff(t *testing.T) {
	c := NewCollector(nil)
	md := &apitype.StepEventMetadata{URN: "urn:pulumi:dev::p::kubernetes:apps/v1:Deployment::web", Type: "kubernetes:apps/v1:Deployment", Op: apitype.OpUpdate,
		Old: &apitype.StepEventStateMetadata{Outputs: map[string]any{"spec": map[string]any{"replicas": 1.0, "template": map[string]any{"image": "a"}},
			"metadata": map[string]any{"labels": map[string]any{}}}},
		New: &apitype.StepEventStateMetadata{Outputs: map[string]any{"spec": map[string]any{"replicas": 3.0, "template": map[string]any{"image": "b"}},
			"metadata": map[string]any{"labels": map[string]any{"added": "out-of-band"}}}},
		DetailedDiff: map[string]apitype.PropertyDiff{"spec.template.image": {Kind: apitype.DiffUpdate}}}
	c.add(md, time.Time{}, 0)
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

func TestDiffProperties_SkipsBookkeeping(t *testing.T) {
	old := map[string]any{"data": map[string]any{"a": "1"}, "metadata": map[string]any{"resourceVersion": "1", "labels": map[string]any{"x": "y"}},
		"status": map[string]any{"phase": "A"}}
	cur := map[string]any{"data": map[string]any{"a": "2", "b": "3"}, "metadata": map[string]any{"resourceVersion": "9", "labels": map[string]any{"x": "y"}},
		"status": map[string]any{"phase": "B"}}
	assert.Equal(t, []PropertyChange{{Path: "data.a", Expected: "1", Actual: "2"}, {Path: "data.b", Actual: "3"}}, diffProperties(old, cur))
}

// TestPolicyFinding_FromEngineEvents: the engine's policy events become
// policypacks.Finding (the one finding type), typed, and a check the
// analyzer could not run is the finding of its own policy, unverified and
// never blocking.
func TestPolicyFinding_FromEngineEvents(t *testing.T) {
	const urnDep = "urn:pulumi:prod::slipway::kubernetes:apps/v1:Deployment::app"
	_, ok := PolicyFinding(events.EngineEvent{})
	assert.False(t, ok)

	f, ok := PolicyFinding(events.EngineEvent{EngineEvent: apitype.EngineEvent{PolicyEvent: &apitype.PolicyEvent{
		PolicyName: "no-privileged", PolicyPackName: "slipway", ResourceURN: urnDep, Severity: "high",
		Message: "Containers do not run privileged\ncontainer app is privileged\n", EnforcementLevel: "mandatory"}}})
	require.True(t, ok)
	assert.Equal(t, policypacks.Finding{Pack: "slipway", Policy: "no-privileged", URN: urnDep, Severity: policypacks.High,
		Enforcement: policypacks.Mandatory, Message: "Containers do not run privileged\ncontainer app is privileged"}, f)
	assert.True(t, f.Blocking())

	u, ok := PolicyFinding(events.EngineEvent{EngineEvent: apitype.EngineEvent{PolicyEvent: &apitype.PolicyEvent{
		PolicyName: policypacks.UnverifiedPolicy, PolicyPackName: "slipway", ResourceURN: urnDep,
		Message: "Checks that could not run\nimage-pinned: image is not known until update", EnforcementLevel: "mandatory"}}})
	require.True(t, ok)
	assert.Equal(t, "image-pinned", u.Policy)
	assert.Equal(t, "image is not known until update", u.Message)
	assert.True(t, u.Unverified)
	assert.False(t, u.Blocking(), "an unverified check never blocks")
}
