package bench

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// ephemeralKey is the key (e.g. a pull-request number) of the ephemeral
// environments the benchmarks create.
const ephemeralKey = "bench"

// ephemeral is one side of the ephemeral benchmarks: it creates and
// destroys one ephemeral `web` environment.
type ephemeral interface {
	create(ctx context.Context) error
	destroy(ctx context.Context) error
	// namespace is the environment's namespace.
	namespace() string
}

// BenchmarkEphemeralCreate creates an ephemeral `web` environment:
// Engine.CreateEphemeral (side=slipway) against kubectl applying the
// manifests `slipway render` writes for it and waiting until it is ready
// (side=bare). The destroys between iterations are not timed.
func BenchmarkEphemeralCreate(b *testing.B) {
	b.Run("base=kubectl", func(b *testing.B) {
		for _, side := range sides {
			b.Run("side="+side, func(b *testing.B) { runEphemeral(b, b, b.N, newEphemeral(b, side), true) })
		}
	})
}

// BenchmarkEphemeralDestroy destroys it: Engine.DestroyEphemeral against
// kubectl deleting the same manifests and waiting until they are gone. The
// creates between iterations are not timed.
func BenchmarkEphemeralDestroy(b *testing.B) {
	b.Run("base=kubectl", func(b *testing.B) {
		for _, side := range sides {
			b.Run("side="+side, func(b *testing.B) { runEphemeral(b, b, b.N, newEphemeral(b, side), false) })
		}
	})
}

// runEphemeral times the create (or the destroy) of eph, iterations times,
// and checks both; the other half of the cycle is not timed.
func runEphemeral(tb testing.TB, tm timer, iterations int, eph ephemeral, timeCreate bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	timed := func(f func(context.Context) error, on bool) error {
		if !on {
			return f(ctx)
		}
		tm.StartTimer()
		defer tm.StopTimer()
		return f(ctx)
	}
	tm.StopTimer()
	tm.ResetTimer()
	for range iterations {
		must(tb, timed(eph.create, timeCreate))
		ephemeralReady(tb, eph.namespace())
		must(tb, timed(eph.destroy, !timeCreate))
		namespaceGone(tb, eph.namespace())
	}
}

// ephemeralReady fails unless the environment's namespace is Active and
// its Deployment Available, with the baseline's quota and network policies.
func ephemeralReady(tb testing.TB, ns string) {
	tb.Helper()
	ctx := context.Background()
	k := cluster.Client
	n, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	must(tb, err)
	if n.Status.Phase != "Active" {
		tb.Fatalf("namespace %s is %s, want Active", ns, n.Status.Phase)
	}
	d, err := k.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	must(tb, err)
	if d.Status.AvailableReplicas < 1 {
		tb.Fatalf("deployment %s/web has %d available replicas, want 1", ns, d.Status.AvailableReplicas)
	}
	q, err := k.CoreV1().ResourceQuotas(ns).List(ctx, metav1.ListOptions{})
	must(tb, err)
	p, err := k.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
	must(tb, err)
	if len(q.Items) == 0 || len(p.Items) == 0 {
		tb.Fatalf("namespace %s has %d quotas and %d network policies, want some of each", ns, len(q.Items), len(p.Items))
	}
}

func newEphemeral(tb testing.TB, side string) ephemeral {
	tb.Helper()
	env := web.Environment{Name: "eph-" + side, Kind: stacks.Ephemeral, Kubeconfig: cluster.Kubeconfig}
	switch side {
	case "slipway":
		prog, err := web.Definition.Program(env)
		must(tb, err)
		s := &slipwayEphemeral{e: newEngine(tb), prog: prog, ns: web.Definition.WithDefaults(env).Params.Namespace}
		tb.Cleanup(func() { s.cleanup(tb) })
		return s
	case "bare":
		k := &kubectlEphemeral{ns: web.Definition.WithDefaults(env).Params.Namespace, files: render(tb, env)}
		tb.Cleanup(func() { k.cleanup(tb) })
		return k
	}
	tb.Fatalf("unknown side %q", side)
	return nil
}

// slipwayEphemeral is Slipway's side.
type slipwayEphemeral struct {
	e    *automation.Engine
	prog automation.Program
	ns   string
	live bool
}

func (s *slipwayEphemeral) namespace() string { return s.ns }

func (s *slipwayEphemeral) create(ctx context.Context) error {
	s.live = true
	_, _, err := s.e.CreateEphemeral(ctx, s.prog, ephemeralKey, time.Hour)
	return err
}

func (s *slipwayEphemeral) destroy(ctx context.Context) error {
	if !s.live {
		return nil
	}
	_, err := s.e.DestroyEphemeral(ctx, s.prog.Project, s.prog.Stack)
	if err == nil {
		s.live = false
	}
	return err
}

func (s *slipwayEphemeral) cleanup(tb testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := s.destroy(ctx); err != nil {
		tb.Errorf("cleanup of %s: %v", s.prog.Stack, err)
	}
}

// kubectlEphemeral is the baseline: kubectl and the rendered manifests.
type kubectlEphemeral struct {
	ns string
	// files are the manifests, the namespace first.
	files []string
}

func (k *kubectlEphemeral) namespace() string { return k.ns }

// create applies every manifest (the namespace first, so the objects in
// it can be created in the same run) and waits until the Deployment is
// Available and the namespace Active.
func (k *kubectlEphemeral) create(ctx context.Context) error {
	args := []string{"apply"}
	for _, f := range k.files {
		args = append(args, "-f", f)
	}
	if err := runKubectl(ctx, args...); err != nil {
		return err
	}
	if err := runKubectl(ctx, "wait", "--for=condition=Available", "--timeout=5m", "-n", k.ns, "deployment", "--all"); err != nil {
		return err
	}
	return runKubectl(ctx, "wait", "--for=jsonpath={.status.phase}=Active", "--timeout=5m", "namespace/"+k.ns)
}

// destroy deletes every manifest (the namespace last); kubectl waits until
// each object, the namespace included, is gone.
func (k *kubectlEphemeral) destroy(ctx context.Context) error {
	args := []string{"delete", "--ignore-not-found", "--wait=true", "--timeout=5m"}
	for _, f := range slices.Backward(k.files) {
		args = append(args, "-f", f)
	}
	return runKubectl(ctx, args...)
}

func (k *kubectlEphemeral) cleanup(tb testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := k.destroy(ctx); err != nil {
		tb.Errorf("cleanup of %s: %v", k.ns, err)
	}
}

func runKubectl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// render writes env's manifests as `slipway render` does (the program in
// render mode on a throw-away engine) and returns their paths, the
// namespace first.
func render(tb testing.TB, env web.Environment) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env.RenderDir = tb.TempDir()
	prog, err := web.Definition.Program(env)
	must(tb, err)
	e, err := automation.New(ctx, automation.WithDir(tb.TempDir()), automation.WithPulumiHome(pulumiHome),
		automation.WithPassphrase("render"))
	must(tb, err)
	st, err := e.UpsertStack(ctx, prog)
	must(tb, err)
	_, err = st.Up(ctx)
	must(tb, err)
	var files []string
	must(tb, filepath.WalkDir(env.RenderDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return err
	}))
	// The namespace first: a namespaced object cannot be created before it.
	slices.SortStableFunc(files, func(a, b string) int {
		return boolCmp(!isNamespace(tb, a), !isNamespace(tb, b))
	})
	if len(files) == 0 || !isNamespace(tb, files[0]) {
		tb.Fatalf("render wrote no namespace manifest: %v", files)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	tb.Logf("kubectl applies %d rendered manifests: %s", len(files), strings.Join(names, " "))
	return files
}

func isNamespace(tb testing.TB, path string) bool {
	b, err := os.ReadFile(path)
	must(tb, err)
	return bytes.Contains(b, []byte("\nkind: Namespace\n")) || bytes.HasPrefix(b, []byte("kind: Namespace\n"))
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
