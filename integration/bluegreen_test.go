package integration

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/workload"
)

// blueGreenStack is one stack of the blue/green rollout tests: a baseline
// and a blue/green workload, rebuilt from its image (the release version).
type blueGreenStack struct {
	s *appStack
	b baseline.Args
}

func newBlueGreenStack(t *testing.T, env string) *blueGreenStack {
	s := newAppStack(t, env)
	return &blueGreenStack{s: s, b: baseline.Args{Namespace: s.ns}}
}

// args is the workload running image alone.
func (r *blueGreenStack) args(image string) workload.Args {
	return workload.Args{Name: "web", Image: image, Replicas: 2, Strategy: workload.BlueGreen}
}

// lookup rebuilds a release from its version, the image.
func (r *blueGreenStack) lookup(version string) (automation.Program, error) {
	a := r.args(version)
	return r.s.program(r.b, &a), nil
}

// rollout is the blue/green rollout of image over active with steps.
func (r *blueGreenStack) rollout(active, image string, steps []rollout.Step, onEvent func(rollout.Event)) automation.BlueGreen {
	next := r.args(image)
	return automation.BlueGreen{
		Release: automation.Release{Version: image, Program: r.s.program(r.b, &next)},
		At: func(switched bool) (automation.Program, error) {
			a := r.args(image)
			a.BlueGreen.ActiveImage = active
			a = a.BlueGreenAt(switched)
			return r.s.program(r.b, &a), nil
		},
		Steps:   steps,
		OnEvent: onEvent,
	}
}

// deployBlue deploys nginx:1.27 as the stack's first good release and
// returns blue's pods.
func (r *blueGreenStack) deployBlue(ctx context.Context, t *testing.T) slotPods {
	t.Helper()
	prog, err := r.lookup("nginx:1.27")
	require.NoError(t, err)
	_, err = r.s.e.Deploy(ctx, automation.Release{Version: "nginx:1.27", Program: prog}, r.lookup)
	require.NoError(t, err, "the blue release")
	return podsOf(t, r.s.ns, blue)
}

var (
	blue  = workload.Slot("web", "nginx:1.27")
	green = workload.Slot("web", "nginx:1.28")
)

// selectorOf returns the slot a Service selects, or "" when the Service is
// not there.
func selectorOf(t *testing.T, ns, svc string) string {
	t.Helper()
	s, err := cluster.Client.CoreV1().Services(ns).Get(context.Background(), svc, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	require.NoError(t, err)
	return s.Spec.Selector["slipway.dev/slot"]
}

// slotPods is what identifies a slot's pods: their UIDs and ReplicaSets,
// and its Deployment's generation (a changed spec bumps it).
type slotPods struct {
	UIDs        []string
	ReplicaSets []string
	Generation  int64
}

// podsOf returns slot's pods, all of them Ready.
func podsOf(t *testing.T, ns, slot string) slotPods {
	t.Helper()
	ctx := context.Background()
	d, err := cluster.Client.AppsV1().Deployments(ns).Get(ctx, slot, metav1.GetOptions{})
	require.NoError(t, err)
	l, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"slipway.dev/slot": slot}.String()})
	require.NoError(t, err)
	out := slotPods{Generation: d.Generation}
	rs := map[string]bool{}
	for _, p := range l.Items {
		require.True(t, podReady(p), "pod %s of %s is Ready", p.Name, slot)
		out.UIDs = append(out.UIDs, string(p.UID))
		for _, o := range p.OwnerReferences {
			rs[o.Name] = true
		}
	}
	for n := range rs {
		out.ReplicaSets = append(out.ReplicaSets, n)
	}
	sort.Strings(out.UIDs)
	sort.Strings(out.ReplicaSets)
	return out
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// previewGate is the analysis against the preview: the preview Service
// selects green, whose two pods run the new version and are Ready. The
// measured slot and pod count are its detail.
func previewGate(t *testing.T, ns string) rollout.Gate {
	return rollout.GateFunc{GateName: "preview-ready", CheckFunc: func(ctx context.Context) (rollout.Verdict, any, error) {
		slot := selectorOf(t, ns, "web-preview")
		if slot == "" {
			return rollout.Failed, nil, fmt.Errorf("no preview Service web-preview in %s", ns)
		}
		img, ready := deploymentImage(t, ns, slot)
		detail := map[string]any{"slot": slot, "image": img, "ready": ready}
		if slot != green || img != "nginx:1.28" || ready != 2 {
			return rollout.Failed, detail, nil
		}
		return rollout.Successful, detail, nil
	}}
}

// phase is what a test sees of the stack after a rollout event.
type phase struct {
	Step        string
	Main        string // the slot the main Service selects
	Preview     string // the slot the preview Service selects ("" when absent)
	Deployments []string
	Weight      int
}

func (r *blueGreenStack) phase(t *testing.T, ev rollout.Event) phase {
	t.Helper()
	names := deploymentNames(t, r.s.ns)
	sort.Strings(names)
	step := ev.What
	if ev.Step >= 0 && ev.Step < len(ev.State.Plan) {
		step = ev.State.Plan[ev.Step]
	}
	return phase{Step: step, Main: selectorOf(t, r.s.ns, "web"), Preview: selectorOf(t, r.s.ns, "web-preview"), Deployments: names, Weight: ev.State.Weight}
}

func sorted(xs ...string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

// TestRolloutBlueGreen_OnCluster_PreviewGateSwitchKeepOldScaleDown: a
// healthy blue/green rollout goes preview → analysis → switch → keep old
// → scale down. Until the switch the main Service selects blue and the
// preview Service green; at the switch the main Service moves to green
// while blue keeps its pods (same UIDs, same ReplicaSet, same
// generation) through the keep-old pause; the promotion removes blue and
// the preview Service and records the release verified.
func TestRolloutBlueGreen_OnCluster_PreviewGateSwitchKeepOldScaleDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := newBlueGreenStack(t, "bluegreen-ok")
	before := r.deployBlue(ctx, t)
	require.Len(t, before.UIDs, 2)
	assert.Equal(t, blue, selectorOf(t, r.s.ns, "web"))

	var seen []phase
	var waited []time.Duration
	b := r.rollout("nginx:1.27", "nginx:1.28", rollout.BlueGreen(5*time.Minute, previewGate(t, r.s.ns)), func(ev rollout.Event) {
		seen = append(seen, r.phase(t, ev))
		if ev.What == "step" {
			assert.Equal(t, before, podsOf(t, r.s.ns, blue), "blue's pods are untouched after %s", ev.State.Plan[ev.Step])
			_, ready := deploymentImage(t, r.s.ns, green)
			assert.EqualValues(t, 2, ready, "green runs its pods after %s", ev.State.Plan[ev.Step])
		}
	})
	b.After = func(d time.Duration) <-chan time.Time {
		waited = append(waited, d)
		return instantAfter(d)
	}
	st, err := r.s.e.RolloutBlueGreen(ctx, b, r.lookup)
	require.NoError(t, err)
	require.Equal(t, rollout.Promoted, st.Phase, st.Cause)
	both := sorted(blue, green)
	assert.Equal(t, []phase{
		{Step: "preview", Main: blue, Preview: green, Deployments: both, Weight: 0},
		{Step: "analysis preview-ready", Main: blue, Preview: green, Deployments: both, Weight: 0},
		{Step: "weight 100", Main: green, Preview: green, Deployments: both, Weight: 100},
		{Step: "pause 5m0s", Main: green, Preview: green, Deployments: both, Weight: 100},
		{Step: "promoted", Main: green, Preview: "", Deployments: []string{green}, Weight: 0},
	}, seen, "each phase's selectors and Deployments")
	require.Len(t, waited, 1)
	assert.LessOrEqual(t, waited[0], 5*time.Minute, "the old version is kept for the delay, counted from the switch")
	assert.Greater(t, waited[0], 4*time.Minute, "the old version is kept for the delay")
	require.Len(t, st.Checks, 1)
	assert.Equal(t, rollout.Successful, st.Checks[0].Verdict)
	_, ready := deploymentImage(t, r.s.ns, green)
	assert.EqualValues(t, 2, ready)
	recs, err := r.s.e.Releases(ctx, "components", r.s.env)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	assert.Equal(t, "nginx:1.28", recs[len(recs)-1].Version)
	assert.Equal(t, "verified", recs[len(recs)-1].Status)
}

// instantAfter is a pause that passes at once.
func instantAfter(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

// TestRolloutBlueGreen_OnCluster_FailedGateBeforeTheSwitch: the analysis
// of the preview fails; the main Service never left blue, whose pods are
// the same ones, green and the preview Service are removed, and the
// release is recorded failed with the cause.
func TestRolloutBlueGreen_OnCluster_FailedGateBeforeTheSwitch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := newBlueGreenStack(t, "bluegreen-bad")
	before := r.deployBlue(ctx, t)
	var mains []string
	bad := rollout.GateFunc{GateName: "error-rate", CheckFunc: func(context.Context) (rollout.Verdict, any, error) {
		return rollout.Failed, 0.4, nil
	}}
	b := r.rollout("nginx:1.27", "nginx:1.28", rollout.BlueGreen(time.Hour, bad), func(ev rollout.Event) {
		mains = append(mains, ev.What+" "+selectorOf(t, r.s.ns, "web"))
	})
	st, err := r.s.e.RolloutBlueGreen(ctx, b, r.lookup)
	require.NoError(t, err)
	require.Equal(t, rollout.Aborted, st.Phase)
	assert.Contains(t, st.Cause, "step 1: analysis error-rate failed")
	assert.Equal(t, []string{"step " + blue, "aborted " + blue}, mains, "the main Service never left blue")
	assert.Equal(t, []string{blue}, deploymentNames(t, r.s.ns), "green is removed")
	assert.Equal(t, "", selectorOf(t, r.s.ns, "web-preview"), "the preview Service is removed")
	assert.Equal(t, before, podsOf(t, r.s.ns, blue), "blue is untouched")
	recs, err := r.s.e.Releases(ctx, "components", r.s.env)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	last := recs[len(recs)-1]
	assert.Equal(t, "nginx:1.28", last.Version)
	assert.Equal(t, "failed", last.Status)
	assert.Contains(t, last.Cause, "rollout aborted: step 1: analysis error-rate failed")
}

// TestRolloutBlueGreen_OnCluster_AbortInTheKeepOldPauseSwitchesBack: the
// rollout has switched to green and keeps blue in its pause; an abort
// (AbortBlueGreen, as another process would) moves the main Service back
// to blue, whose pods were never restarted (same UIDs, same ReplicaSet,
// same generation: nothing had to start), and removes green. The process
// waiting in the pause then stops with the aborted record: it never
// promotes.
func TestRolloutBlueGreen_OnCluster_AbortInTheKeepOldPauseSwitchesBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := newBlueGreenStack(t, "bluegreen-abort")
	before := r.deployBlue(ctx, t)

	inPause, endPause := make(chan struct{}), make(chan time.Time)
	b := r.rollout("nginx:1.27", "nginx:1.28", rollout.BlueGreen(time.Hour, previewGate(t, r.s.ns)), nil)
	b.After = func(time.Duration) <-chan time.Time {
		close(inPause)
		return endPause
	}
	type result struct {
		st  rollout.State
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := r.s.e.RolloutBlueGreen(ctx, b, r.lookup)
		done <- result{st, err}
	}()
	select {
	case <-inPause:
	case res := <-done:
		t.Fatalf("the rollout ended before the keep-old pause: %+v %v", res.st, res.err)
	case <-ctx.Done():
		t.Fatal("the rollout never reached the keep-old pause")
	}
	assert.Equal(t, green, selectorOf(t, r.s.ns, "web"), "switched to green")
	assert.Equal(t, before, podsOf(t, r.s.ns, blue), "blue is kept as it was")
	during, ok, err := r.s.e.RolloutOf(ctx, "components", r.s.env)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 3, during.Step, "in the keep-old pause")

	st, err := r.s.e.AbortBlueGreen(ctx, b, r.lookup, "switch back")
	require.NoError(t, err)
	assert.Equal(t, rollout.Aborted, st.Phase)
	assert.Equal(t, blue, selectorOf(t, r.s.ns, "web"), "switched back to blue")
	assert.Equal(t, before, podsOf(t, r.s.ns, blue), "blue's pods were never restarted")
	assert.Equal(t, []string{blue}, deploymentNames(t, r.s.ns), "green is removed")
	assert.Equal(t, "", selectorOf(t, r.s.ns, "web-preview"))

	close(endPause)
	res := <-done
	require.NoError(t, res.err)
	assert.Equal(t, rollout.Aborted, res.st.Phase, "the waiting rollout stops: the abort's record wins")
	assert.Equal(t, "switch back", res.st.Cause)
	assert.Equal(t, blue, selectorOf(t, r.s.ns, "web"), "and it did not promote green")
	recs, err := r.s.e.Releases(ctx, "components", r.s.env)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	assert.Equal(t, "failed", recs[len(recs)-1].Status)
	assert.Contains(t, recs[len(recs)-1].Cause, "rollout aborted: switch back")
	var green128 []string
	for _, rec := range recs {
		if rec.Version == "nginx:1.28" {
			green128 = append(green128, rec.Status)
		}
	}
	assert.Equal(t, []string{"failed"}, green128, "the abort is recorded once, by the process that aborted")
}
