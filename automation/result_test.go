package automation

import (
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
func collect(t *testing.T, steps ...func(*collector)) []ResourceChange {
	t.Helper()
	c := newCollector(nil)
	for _, s := range steps {
		s(c)
	}
	return c.wait()
}

func add(md *apitype.StepEventMetadata, took time.Duration) func(*collector) {
	return func(c *collector) { c.add(md, took) }
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
