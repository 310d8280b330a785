package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/runs"
	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/workload"
	"github.com/slipwayhq/slipway/integration/internal/proctree"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/integration/promtest"
)

// httpRoute reads the HTTPRoute name in ns from the cluster.
func httpRoute(t *testing.T, ns, name string) *gatewayv1.HTTPRoute {
	t.Helper()
	dc, err := dynamic.NewForConfig(cluster.Config)
	require.NoError(t, err)
	u, err := dc.Resource(schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}).
		Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	var r gatewayv1.HTTPRoute
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r))
	return &r
}

// routeWeights returns the weights of the route's backends by Service name.
func routeWeights(t *testing.T, r *gatewayv1.HTTPRoute) map[string]int32 {
	t.Helper()
	require.Len(t, r.Spec.Rules, 1, "one rule")
	out := map[string]int32{}
	for _, b := range r.Spec.Rules[0].BackendRefs {
		require.NotNil(t, b.Weight, "backend %s has a weight", b.Name)
		out[string(b.Name)] = *b.Weight
	}
	return out
}

// TestWorkload_OnCluster_CanaryRouteFollowsTheWeights: with the Gateway
// API's CRDs installed, a canary workload with a route keeps an HTTPRoute
// whose backend weights are what each step asks (10 → 50 → 100 % to the
// canary) while stable's Deployment is untouched, and the promotion sends
// everything back to stable, now on the new version, with the canary gone.
func TestWorkload_OnCluster_CanaryRouteFollowsTheWeights(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, cluster.InstallGatewayAPI(ctx))
	s := newAppStack(t, "canaryroute")
	b := baseline.Args{Namespace: s.ns}
	w := workload.Args{Namespace: pulumi.String(s.ns), Name: "web", Image: "nginx:1.27", Replicas: 2, Strategy: workload.Canary,
		Canary: workload.CanaryArgs{Route: &workload.RouteArgs{Gateway: "shop-gw", Hostnames: []string{"shop.example.com"}}}}
	_, err := s.up(ctx, b, &w)
	require.NoError(t, err)
	r := httpRoute(t, s.ns, "web")
	assert.Equal(t, map[string]int32{"web-stable": 100, "web-canary": 0}, routeWeights(t, r), "no canary: stable takes everything")
	require.Len(t, r.Spec.ParentRefs, 1)
	assert.Equal(t, "shop-gw", string(r.Spec.ParentRefs[0].Name))
	assert.Equal(t, []gatewayv1.Hostname{"shop.example.com"}, r.Spec.Hostnames)

	w.Canary.StableImage, w.Image = "nginx:1.27", "nginx:1.28"
	for _, weight := range []int32{10, 50, 100} {
		w.Canary.Weight = int(weight)
		_, err := s.up(ctx, b, &w)
		require.NoError(t, err, "step %d %%", weight)
		assert.Equal(t, map[string]int32{"web-stable": 100 - weight, "web-canary": weight}, routeWeights(t, httpRoute(t, s.ns, "web")),
			"the route's weights at step %d %%", weight)
		img, ready := deploymentImage(t, s.ns, "web")
		assert.Equal(t, "nginx:1.27", img, "stable is untouched at step %d %%", weight)
		assert.EqualValues(t, 2, ready, "stable keeps its pods at step %d %%", weight)
		cimg, cready := deploymentImage(t, s.ns, "web-canary")
		assert.Equal(t, "nginx:1.28", cimg)
		assert.Positive(t, cready, "the canary runs Ready pods at step %d %%", weight)
	}

	w.Canary.StableImage = w.Image // the promotion
	_, err = s.up(ctx, b, &w)
	require.NoError(t, err)
	assert.Equal(t, map[string]int32{"web-stable": 100, "web-canary": 0}, routeWeights(t, httpRoute(t, s.ns, "web")), "promoted: stable takes everything")
	img, ready := deploymentImage(t, s.ns, "web")
	assert.Equal(t, "nginx:1.28", img, "stable runs the canary's version")
	assert.EqualValues(t, 2, ready)
	assert.Equal(t, []string{"web"}, deploymentNames(t, s.ns), "the canary is removed after the promotion")
}

// rolloutStack is one stack of the engine-level rollout tests: a baseline
// and a canary workload with a route, rebuilt from its image (the release
// version).
type rolloutStack struct {
	s     *appStack
	b     baseline.Args
	route *workload.RouteArgs
}

// args is the workload running image as stable, with no canary.
func (r *rolloutStack) args(image string) workload.Args {
	return workload.Args{Name: "web", Image: image, Replicas: 2, Strategy: workload.Canary,
		Canary: workload.CanaryArgs{StableImage: image, Route: r.route}}
}

// canary is the rollout of image over stable with steps.
func (r *rolloutStack) canary(ctx context.Context, stable, image string, steps []rollout.Step, onEvent func(rollout.Event)) automation.Canary {
	next := r.args(image)
	return automation.Canary{
		Release: automation.Release{Version: image, Program: r.s.program(r.b, &next)},
		At: func(weight int) (automation.Program, error) {
			a := r.args(image)
			a.Canary.StableImage = stable
			a = a.CanaryAt(weight)
			return r.s.program(r.b, &a), nil
		},
		Steps:   steps,
		OnEvent: onEvent,
	}
}

// lookup rebuilds a release from its version, the image.
func (r *rolloutStack) lookup(version string) (automation.Program, error) {
	a := r.args(version)
	return r.s.program(r.b, &a), nil
}

// rolloutOnCluster deploys nginx:1.27 as the stack's first good release,
// then rolls nginx:1.28 out in three weight steps (10, 50, 100 %) with the
// analysis gate after each of the first two, recording the HTTPRoute's
// weights after every weight step. It returns the rollout's record and the
// weights seen.
func rolloutOnCluster(ctx context.Context, t *testing.T, r *rolloutStack, gate rollout.Gate, afterWeight func(int)) (rollout.State, []map[string]int32) {
	t.Helper()
	require.NoError(t, cluster.InstallGatewayAPI(ctx))
	prog, err := r.lookup("nginx:1.27")
	require.NoError(t, err)
	_, err = r.s.e.Deploy(ctx, automation.Release{Version: "nginx:1.27", Program: prog}, r.lookup)
	require.NoError(t, err, "the stable release")

	var seen []map[string]int32
	steps := []rollout.Step{{Weight: 10}, {Gates: []rollout.Gate{gate}}, {Weight: 50}, {Gates: []rollout.Gate{gate}}, {Weight: 100}}
	c := r.canary(ctx, "nginx:1.27", "nginx:1.28", steps, func(ev rollout.Event) {
		if ev.What == "step" && steps[ev.Step].Weight > 0 {
			seen = append(seen, routeWeights(t, httpRoute(t, r.s.ns, "web")))
			img, ready := deploymentImage(t, r.s.ns, "web")
			assert.Equal(t, "nginx:1.27", img, "stable is untouched at %d %%", steps[ev.Step].Weight)
			assert.EqualValues(t, 2, ready, "stable keeps serving at %d %%", steps[ev.Step].Weight)
			if afterWeight != nil {
				afterWeight(steps[ev.Step].Weight)
			}
		}
	})
	st, err := r.s.e.Rollout(ctx, c, r.lookup)
	require.NoError(t, err)
	got, ok, err := r.s.e.RolloutOf(ctx, "components", r.s.env)
	require.NoError(t, err)
	require.True(t, ok, "the rollout's record is in the backend")
	assert.Equal(t, st.Phase, got.Phase)
	return st, seen
}

// TestRollout_OnCluster_HealthyCanaryIsPromotedThroughTheWeights: every
// analysis passes; the HTTPRoute follows 10 → 50 → 100 % while stable is
// untouched, then the promotion moves stable to the new version, removes
// the canary and records the release verified.
func TestRollout_OnCluster_HealthyCanaryIsPromotedThroughTheWeights(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := &rolloutStack{s: newAppStack(t, "rollout-ok"), route: &workload.RouteArgs{Gateway: "shop-gw"}}
	r.b = baseline.Args{Namespace: r.s.ns}
	st, seen := rolloutOnCluster(ctx, t, r, healthyGate(t), nil)
	require.Equal(t, rollout.Promoted, st.Phase, st.Cause)
	assert.Equal(t, []map[string]int32{{"web-stable": 90, "web-canary": 10}, {"web-stable": 50, "web-canary": 50}, {"web-stable": 0, "web-canary": 100}}, seen)
	assert.Equal(t, map[string]int32{"web-stable": 100, "web-canary": 0}, routeWeights(t, httpRoute(t, r.s.ns, "web")))
	img, ready := deploymentImage(t, r.s.ns, "web")
	assert.Equal(t, "nginx:1.28", img)
	assert.EqualValues(t, 2, ready)
	assert.Equal(t, []string{"web"}, deploymentNames(t, r.s.ns))
	require.Len(t, st.Checks, 2, "both analyses are kept")
	recs, err := r.s.e.Releases(ctx, "components", r.s.env)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	assert.Equal(t, "nginx:1.28", recs[len(recs)-1].Version)
	assert.Equal(t, "verified", recs[len(recs)-1].Status)
}

// TestRollout_OnCluster_FailedAnalysisRollsBack: the analysis is a
// PromQL query on a real Prometheus scraping a Pushgateway; the canary's
// error rate is healthy at 10 % and turns bad at 50 %: the analysis fails,
// the canary is removed, stable (untouched throughout) takes 100 % again,
// and the release is recorded failed with the cause and the measurements.
func TestRollout_OnCluster_FailedAnalysisRollsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var notes []chatops.Event
	notifier := chatops.NotifierFunc(func(_ context.Context, ev chatops.Event) error {
		mu.Lock()
		defer mu.Unlock()
		notes = append(notes, ev)
		return nil
	})
	e, err := automation.New(ctx, automation.WithDir(t.TempDir()), automation.WithPulumiHome(t.TempDir()), automation.WithNotifier(notifier))
	require.NoError(t, err)
	r := &rolloutStack{s: newAppStackOn(t, "rollout-bad", e), route: &workload.RouteArgs{Gateway: "shop-gw"}}
	r.b = baseline.Args{Namespace: r.s.ns}
	prom := promtest.Start(t)
	prom.Push(t, "canary", "canary_error_rate", 0.01)
	prom.WaitFor(t, `canary_error_rate{job="canary"}`, 0.01)
	gate := rollout.AnalysisGate(analysis.Metric{Name: "error-rate", Count: 2, Interval: time.Second,
		Provider:         analysis.Prometheus{Address: prom.URL, Query: `canary_error_rate{job="canary"}`},
		SuccessCondition: mustCondition(t, "result < 0.05")})
	st, seen := rolloutOnCluster(ctx, t, r, gate, func(weight int) {
		if weight == 50 { // the new version degrades under more traffic
			prom.Push(t, "canary", "canary_error_rate", 0.4)
			prom.WaitFor(t, `canary_error_rate{job="canary"}`, 0.4)
		}
	})
	require.Equal(t, rollout.Aborted, st.Phase)
	assert.Contains(t, st.Cause, "step 3: analysis error-rate failed")
	assert.Equal(t, []map[string]int32{{"web-stable": 90, "web-canary": 10}, {"web-stable": 50, "web-canary": 50}}, seen, "no step after the failed analysis")
	assert.Equal(t, map[string]int32{"web-stable": 100, "web-canary": 0}, routeWeights(t, httpRoute(t, r.s.ns, "web")), "stable takes everything again")
	img, ready := deploymentImage(t, r.s.ns, "web")
	assert.Equal(t, "nginx:1.27", img, "stable keeps its version")
	assert.EqualValues(t, 2, ready, "stable keeps serving")
	assert.Equal(t, []string{"web"}, deploymentNames(t, r.s.ns), "the canary is removed")
	recs, err := r.s.e.Releases(ctx, "components", r.s.env)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	last := recs[len(recs)-1]
	assert.Equal(t, "nginx:1.28", last.Version)
	assert.Equal(t, "failed", last.Status)
	assert.Contains(t, last.Cause, "rollout aborted: step 3: analysis error-rate failed")
	require.Len(t, st.Checks, 2)
	assert.Equal(t, rollout.Successful, st.Checks[0].Verdict, "healthy at 10 %")
	res, ok := st.Checks[1].Detail.(analysis.Result)
	require.True(t, ok, "the failed check keeps the analysis: %T", st.Checks[1].Detail)
	assert.Equal(t, analysis.PhaseFailed, res.Phase)
	require.NotEmpty(t, res.Measurements)
	require.NotNil(t, res.Measurements[0].Value)
	assert.InDelta(t, 0.4, *res.Measurements[0].Value, 1e-9, "the measured error rate")

	// Notified: each step, the abort with its cause and measurements, the
	// automatic rollback.
	mu.Lock()
	var kinds []chatops.Kind
	var aborted *chatops.Event
	for i, ev := range notes {
		if ev.Operation != "rollout" {
			continue // the stable release's deploy
		}
		kinds = append(kinds, ev.Kind)
		if ev.Kind == chatops.RolloutAborted {
			aborted = &notes[i]
		}
	}
	mu.Unlock()
	assert.Equal(t, []chatops.Kind{chatops.RolloutStep, chatops.RolloutStep, chatops.RolloutStep, chatops.RolloutAborted, chatops.RollbackDone}, kinds)
	require.NotNil(t, aborted)
	details := strings.Join(aborted.Details, "\n")
	assert.Contains(t, details, "cause: step 3: analysis error-rate failed")
	assert.Contains(t, details, "0.4 Failed", "the measurement that failed")
	// The run record keeps the rollout with every measurement.
	store, err := r.s.e.Store(ctx)
	require.NoError(t, err)
	defer store.Close()
	recs2, err := runs.List(ctx, store, "components", r.s.env)
	require.NoError(t, err)
	require.NotEmpty(t, recs2)
	run := recs2[len(recs2)-1]
	assert.Equal(t, "rollout", run.Operation)
	assert.Equal(t, runs.Failed, run.Result, "an aborted rollout is a failed change")
	require.NotNil(t, run.Rollout)
	require.Len(t, run.Rollout.Checks, 2)
	rres, ok := run.Rollout.Checks[1].Analysis()
	require.True(t, ok)
	require.NotEmpty(t, rres.Measurements)
	require.NotNil(t, rres.Measurements[0].Value)
	assert.InDelta(t, 0.4, *rres.Measurements[0].Value, 1e-9)
}

// mustCondition parses a success condition.
func mustCondition(t *testing.T, s string) analysis.Condition {
	t.Helper()
	c, err := analysis.ParseCondition(s)
	require.NoError(t, err)
	return c
}

// healthyGate passes every time.
func healthyGate(t *testing.T) rollout.Gate {
	return rollout.GateFunc{GateName: "error-rate", CheckFunc: func(context.Context) (rollout.Verdict, any, error) {
		return rollout.Successful, 0.01, nil
	}}
}

// killSteps are the steps of the kill -9 test: a long pause between two
// weights.
var killSteps = []rollout.Step{{Weight: 10}, {Pause: 10 * time.Minute}, {Weight: 100}}

// helperRollout is the child process of
// TestRollout_OnCluster_KilledInAPauseResumesAtItsStep: it rolls
// nginx:1.28 out with killSteps, printing each event, and is killed in
// the pause.
func helperRollout() {
	ctx := context.Background()
	cluster = &localk8s.Cluster{Kubeconfig: os.Getenv("SLIPWAY_HELPER_KUBECONFIG")}
	e, err := automation.New(ctx, automation.WithDir(os.Getenv("SLIPWAY_HELPER_DIR")), automation.WithPulumiHome(os.Getenv("SLIPWAY_HELPER_HOME")))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	r := killedRollout(&appStack{e: e, env: "rollout-kill", ns: "comp-rollout-kill"})
	_, err = e.Rollout(ctx, r.canary(ctx, "nginx:1.27", "nginx:1.28", killSteps, func(ev rollout.Event) {
		fmt.Println("EVENT", ev.What, ev.Step, ev.State.Step)
	}), r.lookup)
	fmt.Println("DONE", err)
	os.Exit(0)
}

// killedRollout is the rollout stack of the kill -9 test on s.
func killedRollout(s *appStack) *rolloutStack {
	return &rolloutStack{s: s, b: baseline.Args{Namespace: s.ns}, route: &workload.RouteArgs{Gateway: "shop-gw"}}
}

// TestRollout_OnCluster_KilledInAPauseResumesAtItsStep: a process rolling
// a canary out is killed -9 in a pause (after the 10 % step); the next
// Rollout of the same release, from another process, resumes at the pause
// — it does not set the 10 % again —, waits only what is left of it, and
// promotes.
func TestRollout_OnCluster_KilledInAPauseResumesAtItsStep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.NoError(t, cluster.InstallGatewayAPI(ctx))
	dir, home := t.TempDir(), t.TempDir()
	e, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(home))
	require.NoError(t, err)
	r := killedRollout(newAppStackOn(t, "rollout-kill", e))
	prog, err := r.lookup("nginx:1.27")
	require.NoError(t, err)
	_, err = e.Deploy(ctx, automation.Release{Version: "nginx:1.27", Program: prog}, r.lookup)
	require.NoError(t, err, "the stable release")

	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLIPWAY_HELPER_ROLLOUT=1", "SLIPWAY_HELPER_DIR="+dir, "SLIPWAY_HELPER_HOME="+home,
		"SLIPWAY_HELPER_KUBECONFIG="+cluster.Kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	paused := false
	sc := bufio.NewScanner(out)
	for !paused && sc.Scan() {
		line := sc.Text()
		require.False(t, strings.HasPrefix(line, "ERR") || strings.HasPrefix(line, "DONE"), "the helper ended early: %s", line)
		paused = line == "EVENT step 0 1" // the 10 % step is done and recorded; the pause has begun
	}
	require.True(t, paused, "the helper never reached the pause: %v", sc.Err())
	procs, err := proctree.KillNine(cmd.Process.Pid, time.Minute)
	require.NoError(t, err)
	require.NotEmpty(t, procs)
	_ = cmd.Wait()

	before, ok, err := e.RolloutOf(ctx, "components", "rollout-kill")
	require.NoError(t, err)
	require.True(t, ok, "the killed process left its record in the backend")
	assert.Equal(t, 1, before.Step, "at the pause")
	assert.Equal(t, rollout.Progressing, before.Phase)
	assert.Equal(t, map[string]int32{"web-stable": 90, "web-canary": 10}, routeWeights(t, httpRoute(t, r.s.ns, "web")))

	// The rerun's clock is 8 minutes on: 2 minutes of the pause are left,
	// less the time the kill and this test took since it began.
	var events []string
	var waited []time.Duration
	c := r.canary(ctx, "nginx:1.27", "nginx:1.28", killSteps, func(ev rollout.Event) {
		events = append(events, fmt.Sprintf("%s %d", ev.What, ev.Step))
	})
	c.Now = func() time.Time { return time.Now().Add(8 * time.Minute) }
	c.After = func(d time.Duration) <-chan time.Time {
		waited = append(waited, d)
		ch := make(chan time.Time, 1)
		ch <- time.Now()
		return ch
	}
	st, err := e.Rollout(ctx, c, r.lookup)
	require.NoError(t, err)
	assert.Equal(t, rollout.Promoted, st.Phase, st.Cause)
	assert.Equal(t, []string{"resumed 1", "step 1", "step 2", "promoted -1"}, events, "resumed at the pause; the 10 % step is not run again")
	require.Len(t, waited, 1)
	assert.LessOrEqual(t, waited[0], 2*time.Minute, "only what is left of the pause")
	assert.Greater(t, waited[0], 2*time.Minute-time.Since(start), "the pause counts from its start in the killed process")
	img, _ := deploymentImage(t, r.s.ns, "web")
	assert.Equal(t, "nginx:1.28", img)
	assert.Equal(t, map[string]int32{"web-stable": 100, "web-canary": 0}, routeWeights(t, httpRoute(t, r.s.ns, "web")))
}
