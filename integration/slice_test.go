// Package integration holds end-to-end tests: the real Pulumi engine, the
// real Kubernetes provider and a real local control plane.
package integration

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/policypacks/all"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

var cluster *localk8s.Cluster

func TestMain(m *testing.M) {
	// The engine starts this test binary as its policy analyzer plugin.
	all.ServeIfAnalyzer()
	if os.Getenv("SLIPWAY_HELPER_UP") != "" {
		helperUp() // a child process of TestRecover_KilledUpIsRecoveredByTheNextRun
	}
	if os.Getenv("SLIPWAY_HELPER_ROLLOUT") != "" {
		helperRollout() // a child process of TestRollout_OnCluster_KilledInAPauseResumesAtItsStep
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	c, err := localk8s.StartCluster(ctx)
	cancel()
	if err != nil {
		println("integration: starting the local cluster:", err.Error())
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	_ = c.Stop()
	os.Exit(code)
}

func newEngine(t *testing.T) *automation.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	e, err := automation.New(ctx, automation.WithDir(t.TempDir()), automation.WithPulumiHome(t.TempDir()))
	require.NoError(t, err)
	return e
}

// TestSlice_PreviewUpDriftRefreshDestroy drives one environment through the
// whole life cycle on the real engine, provider and control plane.
func TestSlice_PreviewUpDriftRefreshDestroy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := newEngine(t)
	env := web.Environment{Name: "slice", Kind: stacks.Dev, Kubeconfig: cluster.Kubeconfig,
		Params: web.Params{App: web.App{Settings: map[string]string{"GREETING": "hello"}}}}
	prog, err := web.Definition.Program(env)
	require.NoError(t, err)
	st, err := e.UpsertStack(ctx, prog)
	require.NoError(t, err)
	k := cluster.Client

	pre, err := st.Preview(ctx)
	require.NoError(t, err)
	t.Logf("preview: %s %v", pre.Duration, pre.Summary)
	assert.Equal(t, len(pre.Resources), pre.Summary["create"], "everything is new")
	types := map[string]string{}
	require.NotEmpty(t, pre.Resources)
	for _, r := range pre.Resources {
		types[r.Type] = r.Op
	}
	assert.Equal(t, "create", types["kubernetes:core/v1:Namespace"])
	assert.Equal(t, "create", types["kubernetes:core/v1:ConfigMap"])
	assert.Equal(t, "create", types["kubernetes:apps/v1:Deployment"])
	_, err = k.CoreV1().Namespaces().Get(ctx, "slipway-slice", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "preview must create nothing, got %v", err)

	up, err := st.Up(ctx)
	require.NoError(t, err)
	t.Logf("up: %s %v", up.Duration, up.Summary)
	require.NotEmpty(t, up.Resources)
	for _, r := range up.Resources {
		t.Logf("  %-8s %-60s %s", r.Op, r.Type, r.Duration)
	}
	assert.Equal(t, pre.Summary["create"], up.Summary["create"], "up creates what preview showed")
	assert.Equal(t, "slipway-slice", up.Outputs["namespace"])
	assert.Equal(t, "web", up.Outputs["deployment"])
	assert.Equal(t, "web", up.Outputs["service"])
	cm, err := k.CoreV1().ConfigMaps("slipway-slice").Get(ctx, "web-config", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "hello", cm.Data["GREETING"])
	dep, err := k.AppsV1().Deployments("slipway-slice").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, dep.Status.ReadyReplicas)

	// Nothing changed: a second preview is empty.
	again, err := st.Preview(ctx, optpreview.ExpectNoChanges())
	require.NoError(t, err)
	assert.Zero(t, again.Changes(), again.Summary)

	// Drift: someone edits the ConfigMap out of band.
	cm.Data["GREETING"] = "tampered"
	_, err = k.CoreV1().ConfigMaps("slipway-slice").Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)

	ref, err := st.Refresh(ctx)
	require.NoError(t, err)
	t.Logf("refresh: %s %v %+v", ref.Duration, ref.Summary, ref.Resources)
	assert.Equal(t, 1, ref.Summary["update"], "the edited ConfigMap is the drift")
	var drifted []outcome.ResourceChange
	require.NotEmpty(t, ref.Resources)
	for _, r := range ref.Resources {
		if len(r.Diffs) > 0 || len(r.DetailedDiff) > 0 {
			drifted = append(drifted, r)
		}
	}
	require.Len(t, drifted, 1, "%+v", ref.Resources)
	assert.Equal(t, "kubernetes:core/v1:ConfigMap", drifted[0].Type)
	assert.Contains(t, drifted[0].Diffs, "data")
	require.Len(t, drifted[0].Properties, 1, "%+v", drifted[0].Properties)
	assert.Equal(t, outcome.PropertyChange{Path: "data.GREETING", Expected: "hello", Actual: "tampered"}, drifted[0].Properties[0])

	// After the refresh the state holds "tampered"; the program still wants "hello".
	post, err := st.Preview(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, post.Summary["update"], post.Summary)
	require.Len(t, post.Changed(), 1)
	assert.Equal(t, "kubernetes:core/v1:ConfigMap", post.Changed()[0].Type)

	des, err := st.Destroy(ctx, optdestroy.RemoveStack())
	require.NoError(t, err)
	t.Logf("destroy: %s %v", des.Duration, des.Summary)
	assert.Equal(t, up.Summary["create"], des.Summary["delete"])
	require.Eventually(t, func() bool {
		_, err := k.CoreV1().Namespaces().Get(ctx, "slipway-slice", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 2*time.Minute, 200*time.Millisecond, "namespace must be gone from the API server")
	stacksLeft, err := st.Auto().Workspace().ListStacks(ctx)
	require.NoError(t, err)
	assert.Empty(t, stacksLeft, "the stack must be removed from the backend")
}
