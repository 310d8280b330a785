package drills_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/examples/drills"
	"github.com/slipwayhq/slipway/integration/promtest"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/integration/slipwaytest/fault"
)

// TestMain serves the policy analyzer, runs the rollout child of the kill
// drill when this binary is that child, and shares one local cluster among
// the drills.
func TestMain(m *testing.M) {
	fault.Child("rollout", rolloutChild)
	slipwaytest.Main(m)
}

// The versions: stable serves today, next is rolled out.
const (
	stable = "nginx:1.27"
	next   = "nginx:1.28"
)

// newWeb brings the web workload up at stable as its stack's first good
// release (a recorded deploy, so a rollout has something to go back to).
// The namespace is the stack's name.
func newWeb(t testing.TB, opts ...slipwaytest.Option) *slipwaytest.Env {
	t.Helper()
	env := slipwaytest.New(t, automation.Program{Run: drills.Run(drills.Args(stable, stable, 0))}, append(opts, slipwaytest.WithoutUp())...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := env.Engine.Deploy(ctx, automation.Release{Version: stable, Program: env.Program}, drills.Lookup(env.Program))
	require.NoError(t, err, "the stable release")
	env.WaitForDeployment(env.Name, drills.Name, 2*time.Minute)
	return env
}

// serving is the health check of a stable track only: the Deployment runs
// image with every replica available, and no canary Deployment is left.
func serving(env *slipwaytest.Env, image string) func(ctx context.Context) (bool, error) {
	ready := fault.DeploymentReady(env.Client, env.Name, drills.Name, image)
	return func(ctx context.Context) (bool, error) {
		if ok, err := ready(ctx); !ok {
			return false, err
		}
		_, err := env.Client.AppsV1().Deployments(env.Name).Get(ctx, drills.Name+"-canary", metav1.GetOptions{})
		switch {
		case err == nil:
			return false, errors.New("the canary Deployment is still there")
		case !apierrors.IsNotFound(err):
			return false, err
		}
		return true, nil
	}
}

// Pods deleted: every pod of the workload is deleted at once; the
// Deployment's controller brings two Ready pods back within 60 s, with no
// engine run.
func TestDrill_PodsDeleted(t *testing.T) {
	t.Parallel()
	env := newWeb(t)
	before := podUIDs(t, env)
	require.Len(t, before, drills.Replicas)
	pods := fault.PodsReady(env.Client, env.Name, drills.Selector, drills.Replicas)
	res := slipwaytest.RunDrill(t, slipwaytest.Drill{
		Name:   "pods deleted",
		Inject: fault.DeletePods(env.Client, env.Name, drills.Selector),
		Healthy: func(ctx context.Context) (bool, error) {
			if ok, err := pods(ctx); !ok {
				return false, err
			}
			return serving(env, stable)(ctx)
		},
		Within: 60 * time.Second,
	})
	t.Logf("%s: recovered in %s", res.Name, res.Recovery)
	assert.Positive(t, res.Polls)
	assert.LessOrEqual(t, res.Recovery, 60*time.Second)
	after := podUIDs(t, env)
	assert.Len(t, after, drills.Replicas)
	for _, uid := range after {
		assert.NotContains(t, before, uid, "every pod serving now is a new one")
	}
}

// podUIDs returns the UIDs of the workload's pods.
func podUIDs(t *testing.T, env *slipwaytest.Env) []types.UID {
	t.Helper()
	l, err := env.Client.CoreV1().Pods(env.Name).List(context.Background(), metav1.ListOptions{LabelSelector: drills.Selector})
	require.NoError(t, err)
	var out []types.UID
	for _, p := range l.Items {
		out = append(out, p.UID)
	}
	return out
}

// Object edited out of band: someone changes the stable Deployment's image
// with client-go; the engine's drift check finds it and its remediation
// puts the declared image back, rolled out, within 2 minutes.
func TestDrill_ObjectEditedOutOfBand(t *testing.T) {
	t.Parallel()
	env := newWeb(t)
	dep := slipwaytest.Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: env.Name, Name: drills.Name}
	edit := fault.EditObject(env.RESTConfig(), dep, types.JSONPatchType,
		`[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.26"}]`)
	res := slipwaytest.RunDrill(t, slipwaytest.Drill{
		Name: "object edited out of band",
		Inject: func(ctx context.Context) error {
			if err := edit(ctx); err != nil {
				return err
			}
			d, err := env.Client.AppsV1().Deployments(env.Name).Get(ctx, drills.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if img := d.Spec.Template.Spec.Containers[0].Image; img != "nginx:1.26" {
				return fmt.Errorf("the edit did not hold: the Deployment runs %s", img)
			}
			return nil
		},
		Recover: fault.RepairDrift(env.Stack),
		Healthy: serving(env, stable),
		Within:  2 * time.Minute,
	})
	t.Logf("%s: recovered in %s (the drift repair took %s)", res.Name, res.Recovery, res.Recover)
	assert.Positive(t, res.Recover, "the remediation ran")
	assert.LessOrEqual(t, res.Recovery, 2*time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := env.Stack.CheckDrift(ctx)
	require.NoError(t, err)
	assert.False(t, d.Found(), "no drift is left: %+v", d.Resources)
}

// killSteps are the kill drill's steps: the canary at 50 %, a pause in
// which the engine is killed, then 75 %.
var killSteps = []rollout.Step{{Weight: 50}, {Pause: 10 * time.Second}, {Weight: 75}}

// Environment of the rollout child.
const (
	childDir        = "DRILLS_ENGINE_DIR"
	childHome       = "DRILLS_PULUMI_HOME"
	childStack      = "DRILLS_STACK"
	childKubeconfig = "DRILLS_KUBECONFIG"
)

// childProgram is the kill drill's program as the child rebuilds it: the
// program slipwaytest.New runs, from the stack name and kubeconfig.
func childProgram(stack, kubeconfig string) automation.Program {
	return automation.Program{Project: slipwaytest.DefaultProject, Stack: stack,
		Config:  map[string]automation.ConfigValue{slipwaytest.KubeconfigKey: {Value: kubeconfig}},
		Plugins: []automation.Plugin{automation.KubernetesPlugin}}
}

// rolloutChild is the engine the kill drill kills: it rolls next out
// with killSteps, signalling "step N" when step N is done and recorded.
func rolloutChild(ctx context.Context) error {
	e, err := automation.New(ctx, automation.WithDir(os.Getenv(childDir)), automation.WithPulumiHome(os.Getenv(childHome)))
	if err != nil {
		return err
	}
	prog := childProgram(os.Getenv(childStack), os.Getenv(childKubeconfig))
	st, err := e.Rollout(ctx, drills.Canary(prog, stable, next, killSteps, func(ev rollout.Event) {
		if ev.What == "step" {
			fault.Signal(fmt.Sprintf("step %d", ev.Step))
		}
	}), drills.Lookup(prog))
	if err != nil {
		return err
	}
	return fmt.Errorf("the rollout ended (%s) before it was killed", st.Phase)
}

// Engine killed mid-step: a process rolling the canary out is killed -9
// in its pause (step 1, after the 50 % step is recorded); the rerun
// resumes at the pause — it does not set 50 % again —, waits what is left
// of it, and promotes, within 3 minutes of the kill.
func TestDrill_EngineKilledMidStep(t *testing.T) {
	t.Parallel()
	dir, home := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(home))
	require.NoError(t, err)
	env := newWeb(t, slipwaytest.WithEngine(e))
	require.Equal(t, childProgram(env.Name, env.Kubeconfig).Config, env.Program.Config, "the child runs the same program")

	child := fault.StartChild(t, "rollout", childDir+"="+dir, childHome+"="+home,
		childStack+"="+env.Name, childKubeconfig+"="+env.Kubeconfig)
	kill := fault.KillAt(child, "step 0")
	var events []string
	res := slipwaytest.RunDrill(t, slipwaytest.Drill{
		Name: "engine killed mid-step",
		Inject: func(ctx context.Context) error {
			if err := kill(ctx); err != nil {
				return err
			}
			st, ok, err := e.RolloutOf(ctx, env.Project, env.Name)
			switch {
			case err != nil:
				return err
			case !ok || st.Step != 1 || st.Phase != rollout.Progressing:
				return fmt.Errorf("the killed rollout is not in its pause: record %v, step %d, %s", ok, st.Step, st.Phase)
			}
			return nil
		},
		Recover: func(ctx context.Context) error {
			c := drills.Canary(env.Program, stable, next, killSteps, func(ev rollout.Event) {
				events = append(events, fmt.Sprintf("%s %d", ev.What, ev.Step))
			})
			st, err := e.Rollout(ctx, c, drills.Lookup(env.Program))
			if err != nil {
				return err
			}
			if st.Phase != rollout.Promoted {
				return fmt.Errorf("the rerun ended %s: %s", st.Phase, st.Cause)
			}
			return nil
		},
		Healthy: serving(env, next),
		Within:  3 * time.Minute,
	})
	t.Logf("%s: recovered in %s", res.Name, res.Recovery)
	assert.Equal(t, []string{"resumed 1", "step 1", "step 2", "promoted -1"}, events, "resumed at the pause; the 50 % step is not run again")
	assert.Less(t, res.Recovery, killSteps[1].Pause+3*time.Minute)
}

// Metric turning bad mid-rollout: the canary's error rate, pushed to a
// Pushgateway and scraped by a real Prometheus, is healthy when the
// rollout starts and turns bad once the canary takes 50 %; the analysis
// that follows fails, the rollout aborts by itself, and stable (never
// touched) serves alone again within 3 minutes, the release recorded as
// failed.
func TestDrill_MetricTurnsBadMidRollout(t *testing.T) {
	t.Parallel()
	prom := promtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.NoError(t, fault.SetMetric(prom, "canary", "canary_error_rate", 0.01)(ctx))
	env := newWeb(t)

	cond, err := analysis.ParseCondition("result < 0.05")
	require.NoError(t, err)
	gate := rollout.AnalysisGate(analysis.Metric{Name: "error-rate", Count: 1, SuccessCondition: cond,
		Provider: analysis.Prometheus{Address: prom.URL, Query: `canary_error_rate{job="canary"}`}})
	steps := []rollout.Step{{Weight: 50}, {Gates: []rollout.Gate{gate}}, {Weight: 75}, {Gates: []rollout.Gate{gate}}}
	atWeight, resume := make(chan struct{}), make(chan struct{})
	type outcome struct {
		st  rollout.State
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		st, err := env.Engine.Rollout(ctx, drills.Canary(env.Program, stable, next, steps, func(ev rollout.Event) {
			if ev.What == "step" && ev.Step == 0 { // the canary takes 50 %: hold the rollout while the metric turns
				close(atWeight)
				select {
				case <-resume:
				case <-ctx.Done():
				}
			}
		}), drills.Lookup(env.Program))
		done <- outcome{st, err}
	}()
	bad := fault.SetMetric(prom, "canary", "canary_error_rate", 0.4)
	var final rollout.State
	res := slipwaytest.RunDrill(t, slipwaytest.Drill{
		Name: "metric turns bad mid-rollout",
		Inject: func(ctx context.Context) error {
			select {
			case <-atWeight:
			case o := <-done:
				return fmt.Errorf("the rollout ended before its 50 %% step: %s %v", o.st.Phase, o.err)
			case <-ctx.Done():
				return ctx.Err()
			}
			defer close(resume)
			return bad(ctx)
		},
		Recover: func(ctx context.Context) error { // nothing to do but wait: the rollout aborts by itself
			select {
			case o := <-done:
				if o.err != nil {
					return o.err
				}
				if final = o.st; final.Phase != rollout.Aborted {
					return fmt.Errorf("the rollout ended %s, not Aborted: %s", final.Phase, final.Cause)
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		Healthy: serving(env, stable),
		Within:  3 * time.Minute,
	})
	t.Logf("%s: recovered in %s", res.Name, res.Recovery)
	assert.LessOrEqual(t, res.Recovery, 3*time.Minute)
	assert.Contains(t, final.Cause, "step 1: analysis error-rate failed")
	require.Len(t, final.Checks, 1, "one analysis ran, and failed")
	assert.Equal(t, rollout.Failed, final.Checks[0].Verdict)
	recs, err := env.Engine.Releases(ctx, env.Project, env.Name)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	last := recs[len(recs)-1]
	assert.Equal(t, next, last.Version)
	assert.Equal(t, "failed", last.Status)
}
