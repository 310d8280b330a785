package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/automation"
	slipdestroy "github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

// project is the Pulumi project of the n-resource program on both sides.
const project = "bench"

// passphrase encrypts both sides' stack secrets (there are none).
const passphrase = "bench"

// benchLabel marks the ConfigMaps of the program, so checks can count them.
const benchLabel = "slipway.dev/bench"

// program is a namespace, n ConfigMaps and one Deployment. With change,
// ConfigMap cm-0 holds another value: one update.
func program(ns string, n int, change bool) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		prov, err := kubernetes.NewProvider(ctx, "k8s", &kubernetes.ProviderArgs{
			Kubeconfig: pulumi.String(cluster.Kubeconfig), EnableConfigMapMutable: pulumi.Bool(true)})
		if err != nil {
			return err
		}
		opt := pulumi.Provider(prov)
		nsr, err := corev1.NewNamespace(ctx, "ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ns)}}, opt)
		if err != nil {
			return err
		}
		name := nsr.Metadata.Name().Elem()
		for i := range n {
			v := "v"
			if change && i == 0 {
				v = "changed"
			}
			if _, err := corev1.NewConfigMap(ctx, fmt.Sprintf("cm-%d", i), &corev1.ConfigMapArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.Sprintf("cm-%d", i), Namespace: name,
					Labels: pulumi.StringMap{benchLabel: pulumi.String("true")}},
				Data: pulumi.StringMap{"k": pulumi.String(v)}}, opt); err != nil {
				return err
			}
		}
		labels := pulumi.StringMap{"app": pulumi.String("b")}
		_, err = appsv1.NewDeployment(ctx, "d", &appsv1.DeploymentArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("d"), Namespace: name},
			Spec: &appsv1.DeploymentSpecArgs{Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
				Template: &corev1.PodTemplateSpecArgs{Metadata: &metav1.ObjectMetaArgs{Labels: labels},
					Spec: &corev1.PodSpecArgs{Containers: corev1.ContainerArray{&corev1.ContainerArgs{
						Name: pulumi.String("c"), Image: pulumi.String("nginx:1.27")}}}}},
		}, opt)
		return err
	}
}

// resources is how many resources the program has: the stack, the
// provider, the namespace, n ConfigMaps and the Deployment.
func resources(n int) int { return n + 4 }

// target is one side: it opens the program's existing stack the way one
// command does and runs a verb, returning the engine's summary (resources
// per operation).
type target interface {
	// create makes the empty stack (setup, not timed).
	create(ctx context.Context) error
	preview(ctx context.Context, change bool) (map[string]int, error)
	up(ctx context.Context) (map[string]int, error)
	refresh(ctx context.Context) (map[string]int, error)
	destroy(ctx context.Context) (map[string]int, error)
	// remove destroys what is left and removes the stack (cleanup).
	remove(ctx context.Context) error
}

// newTarget returns side ("bare" or "slipway") for the n-resource program
// in namespace ns, with a stack named ns and a file backend of its own, both
// under dir.
func newTarget(tb testing.TB, side, ns string, n int, dir string) target {
	tb.Helper()
	switch side {
	case "bare":
		return newBare(tb, ns, n, dir)
	case "slipway":
		return newSlipway(tb, ns, n, dir)
	}
	tb.Fatalf("unknown side %q", side)
	return nil
}

// bare drives the program with the bare Automation API.
type bare struct {
	stack, ns string
	n         int
	opts      []auto.LocalWorkspaceOption
}

func newBare(tb testing.TB, ns string, n int, dir string) *bare {
	tb.Helper()
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: upstreamRoot, Version: semver.MustParse(toolchain.PulumiVersion)})
	if err != nil {
		tb.Fatal(err)
	}
	// The bare side measures the upstream engine, never Slipway's patched one.
	if v := cmd.Version().String(); v != toolchain.PulumiVersion {
		tb.Fatalf("the bare side runs pulumi %s from %s, not the upstream build %s", v, upstreamRoot, toolchain.PulumiVersion)
	}
	state, work := filepath.Join(dir, "state"), filepath.Join(dir, "work")
	if err := errors.Join(os.MkdirAll(state, 0o755), os.MkdirAll(work, 0o755)); err != nil {
		tb.Fatal(err)
	}
	// The environment Slipway gives every engine run (automation.engineEnv).
	env := map[string]string{
		"PULUMI_BACKEND_URL":                          "file://" + state,
		"PULUMI_CONFIG_PASSPHRASE":                    passphrase,
		"PULUMI_SKIP_UPDATE_CHECK":                    "true",
		"PULUMI_DIY_BACKEND_NO_LEGACY_WARNING":        "true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
	}
	return &bare{stack: ns, ns: ns, n: n, opts: []auto.LocalWorkspaceOption{auto.WorkDir(work), auto.Pulumi(cmd),
		auto.PulumiHome(pulumiHome), auto.EnvVars(env), auto.SecretsProvider("passphrase")}}
}

// open opens the stack as a command would: upsert for preview and up,
// select for refresh and destroy (as Slipway does).
func (s *bare) open(ctx context.Context, create, change bool) (auto.Stack, error) {
	if create {
		return auto.UpsertStackInlineSource(ctx, s.stack, project, program(s.ns, s.n, change), s.opts...)
	}
	return auto.SelectStackInlineSource(ctx, s.stack, project, program(s.ns, s.n, change), s.opts...)
}

func (s *bare) create(ctx context.Context) error {
	_, err := s.open(ctx, true, false)
	return err
}

func (s *bare) preview(ctx context.Context, change bool) (map[string]int, error) {
	st, err := s.open(ctx, true, change)
	if err != nil {
		return nil, err
	}
	d := drain()
	r, err := st.Preview(ctx, optpreview.EventStreams(d.ch))
	d.wait()
	return outcome.Summary(r.ChangeSummary), err
}

func (s *bare) up(ctx context.Context) (map[string]int, error) {
	st, err := s.open(ctx, true, false)
	if err != nil {
		return nil, err
	}
	d := drain()
	r, err := st.Up(ctx, optup.EventStreams(d.ch))
	d.wait()
	return summary(r.Summary), err
}

func (s *bare) refresh(ctx context.Context) (map[string]int, error) {
	st, err := s.open(ctx, false, false)
	if err != nil {
		return nil, err
	}
	d := drain()
	r, err := st.Refresh(ctx, optrefresh.EventStreams(d.ch))
	d.wait()
	return summary(r.Summary), err
}

func (s *bare) destroy(ctx context.Context) (map[string]int, error) {
	st, err := s.open(ctx, false, false)
	if err != nil {
		return nil, err
	}
	d := drain()
	r, err := st.Destroy(ctx, optdestroy.EventStreams(d.ch))
	d.wait()
	return summary(r.Summary), err
}

func (s *bare) remove(ctx context.Context) error {
	st, err := s.open(ctx, false, false)
	if err != nil {
		return err
	}
	if _, err := st.Destroy(ctx, optdestroy.Remove()); err != nil {
		return err
	}
	return nil
}

// summary returns an update's resource changes (nil when the run failed).
func summary(s auto.UpdateSummary) map[string]int {
	if s.ResourceChanges == nil {
		return nil
	}
	return *s.ResourceChanges
}

// drainer receives every engine event in a goroutine of its own, as a
// program that streams events does (Slipway's collector does more with
// each one).
type drainer struct {
	ch     chan events.EngineEvent
	done   chan struct{}
	events int
}

func drain() *drainer {
	d := &drainer{ch: make(chan events.EngineEvent), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for range d.ch {
			d.events++
		}
	}()
	return d
}

// wait waits until the Automation API closed the stream (it does before
// the operation returns when the engine ran) or gives up after 2 s (when the
// engine never started, nothing closes it).
func (d *drainer) wait() {
	select {
	case <-d.done:
	case <-time.After(2 * time.Second):
	}
}

// slipway drives the program through Slipway's Engine.
type slipway struct {
	e    *automation.Engine
	prog automation.Program
	n    int
	ns   string
}

func newSlipway(tb testing.TB, ns string, n int, dir string) *slipway {
	tb.Helper()
	return &slipway{e: newEngineIn(tb, dir), prog: benchProgram(ns, ns, n, false), n: n, ns: ns}
}

// newEngine returns an Engine with a directory and a file backend of its own
// and the shared PULUMI_HOME.
func newEngine(tb testing.TB) *automation.Engine {
	tb.Helper()
	return newEngineIn(tb, tb.TempDir())
}

// newEngineIn is newEngine in directory dir.
func newEngineIn(tb testing.TB, dir string) *automation.Engine {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e, err := automation.New(ctx, automation.WithDir(dir), automation.WithPulumiHome(pulumiHome),
		automation.WithPassphrase(passphrase))
	if err != nil {
		tb.Fatal(err)
	}
	requirePatched(tb, e)
	return e
}

// requirePatched fails tb unless e runs Slipway's patched pulumi build (a
// pulumi on PATH would be used instead, and the figures would be upstream's):
// the engine says so, and the binary prints the patched stamp.
func requirePatched(tb testing.TB, e *automation.Engine) {
	tb.Helper()
	p := e.Pulumi()
	out, err := exec.Command(p.Bin(), "version").Output()
	if err != nil {
		tb.Fatalf("running %s version: %v", p.Bin(), err)
	}
	if got := strings.TrimSpace(string(out)); !p.Patched || got != "v"+toolchain.PatchedPulumiVersion {
		tb.Fatalf("Slipway's side must run the patched pulumi build v%s; it runs %s (%s, from %s); remove pulumi from PATH",
			toolchain.PatchedPulumiVersion, got, p.Bin(), p.Source)
	}
}

func benchProgram(stack, ns string, n int, change bool) automation.Program {
	return automation.Program{Project: project, Stack: stack, Run: program(ns, n, change),
		Plugins: []automation.Plugin{automation.KubernetesPlugin}}
}

func (s *slipway) create(ctx context.Context) error {
	_, err := s.e.UpsertStack(ctx, s.prog)
	return err
}

func (s *slipway) preview(ctx context.Context, change bool) (map[string]int, error) {
	st, err := s.e.UpsertStack(ctx, benchProgram(s.prog.Stack, s.ns, s.n, change))
	if err != nil {
		return nil, err
	}
	return result(st.Preview(ctx))
}

func (s *slipway) up(ctx context.Context) (map[string]int, error) {
	st, err := s.e.UpsertStack(ctx, s.prog)
	if err != nil {
		return nil, err
	}
	return result(st.Up(ctx))
}

func (s *slipway) refresh(ctx context.Context) (map[string]int, error) {
	st, err := s.e.SelectStack(ctx, s.prog)
	if err != nil {
		return nil, err
	}
	return result(st.Refresh(ctx))
}

func (s *slipway) destroy(ctx context.Context) (map[string]int, error) {
	st, err := s.e.SelectStack(ctx, s.prog)
	if err != nil {
		return nil, err
	}
	return result(st.Destroy(ctx))
}

func (s *slipway) remove(ctx context.Context) error {
	st, err := s.e.SelectStack(ctx, s.prog)
	if err != nil {
		return err
	}
	_, err = st.Destroy(ctx, slipdestroy.RemoveStack())
	return err
}

func result(r *outcome.Result, err error) (map[string]int, error) {
	if r == nil {
		return nil, err
	}
	return r.Summary, err
}
