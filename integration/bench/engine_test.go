package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sizes are the numbers of ConfigMaps the engine benchmarks run with.
var sizes = []int{10, 100, 1000}

// sides are the two sides of every benchmark, in the order of its name.
var sides = []string{"bare", "slipway"}

// memoryFrom is the size from which the engine benchmarks report memory.
const memoryFrom = 1000

// timer is what a benchmark body needs from *testing.B; the smoke test
// passes noTimer.
type timer interface {
	StartTimer()
	StopTimer()
	ResetTimer()
	ReportMetric(n float64, unit string)
}

type noTimer struct{}

func (noTimer) StartTimer()                  {}
func (noTimer) StopTimer()                   {}
func (noTimer) ResetTimer()                  {}
func (noTimer) ReportMetric(float64, string) {}

// op is one engine operation on the n-resource program. It runs on a
// stack that holds the program (deployed) or is empty, and leaves it
// deployed or empty; the benchmark restores the start state between
// iterations without timing it.
type op struct {
	name           string
	fromDeployed   bool
	leavesDeployed bool
	run            func(ctx context.Context, t target) (map[string]int, error)
	// check verifies the summary and the cluster after the operation.
	check func(tb testing.TB, ns string, n int, sum map[string]int)
}

// ops are the engine benchmarks, in the order they run (their functions'
// order below) and the smoke test chains them on one stack.
var ops = []op{
	{name: "Up", leavesDeployed: true,
		run: func(ctx context.Context, t target) (map[string]int, error) { return t.up(ctx) },
		check: func(tb testing.TB, ns string, n int, sum map[string]int) {
			expect(tb, sum, map[string]int{"create": resources(n)})
			configMaps(tb, ns, n)
		}},
	{name: "NoopPreview", fromDeployed: true, leavesDeployed: true,
		run: func(ctx context.Context, t target) (map[string]int, error) { return t.preview(ctx, false) },
		check: func(tb testing.TB, ns string, n int, sum map[string]int) {
			expect(tb, sum, map[string]int{"same": resources(n)})
		}},
	{name: "PreviewChange", fromDeployed: true, leavesDeployed: true,
		run: func(ctx context.Context, t target) (map[string]int, error) { return t.preview(ctx, true) },
		check: func(tb testing.TB, ns string, n int, sum map[string]int) {
			expect(tb, sum, map[string]int{"same": resources(n) - 1, "update": 1})
		}},
	{name: "Refresh", fromDeployed: true, leavesDeployed: true,
		run: func(ctx context.Context, t target) (map[string]int, error) { return t.refresh(ctx) },
		check: func(tb testing.TB, ns string, n int, sum map[string]int) {
			expect(tb, sum, map[string]int{"same": resources(n)})
		}},
	{name: "Destroy", fromDeployed: true,
		run: func(ctx context.Context, t target) (map[string]int, error) { return t.destroy(ctx) },
		check: func(tb testing.TB, ns string, n int, sum map[string]int) {
			expect(tb, sum, map[string]int{"delete": resources(n)})
			namespaceGone(tb, ns)
		}},
}

// BenchmarkUp times an up of the n-resource program from an empty stack.
func BenchmarkUp(b *testing.B) { benchOp(b, ops[0]) }

// BenchmarkNoopPreview times a preview of the deployed program, unchanged.
func BenchmarkNoopPreview(b *testing.B) { benchOp(b, ops[1]) }

// BenchmarkPreviewChange times a preview of the deployed program with one
// ConfigMap value changed.
func BenchmarkPreviewChange(b *testing.B) { benchOp(b, ops[2]) }

// BenchmarkRefresh times a refresh of the deployed program.
func BenchmarkRefresh(b *testing.B) { benchOp(b, ops[3]) }

// BenchmarkDestroy times a destroy of the deployed program (the stack stays).
func BenchmarkDestroy(b *testing.B) { benchOp(b, ops[4]) }

// benchOp runs o for every size and side.
func benchOp(b *testing.B, o op) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for _, side := range sides {
				b.Run("side="+side, func(b *testing.B) {
					runOp(b, b, b.N, o, sharedFixture(b, side, n))
				})
			}
		})
	}
}

// fixture is one side's stack of the n-resource program in namespace ns,
// and whether it holds the program now.
type fixture struct {
	t        target
	ns       string
	n        int
	deployed bool
}

// newFixture creates side's empty stack, destroyed and removed when tb ends.
func newFixture(tb testing.TB, side, ns string, n int) *fixture {
	tb.Helper()
	f := createFixture(tb, side, ns, n, tb.TempDir())
	tb.Cleanup(func() {
		if err := f.remove(); err != nil {
			tb.Error(err)
		}
	})
	return f
}

// fixtures are the stacks the engine benchmarks of one process share, by
// side and n (see sharedFixture).
var fixtures = map[string]*fixture{}

// sharedFixture returns the stack of side and n that every engine benchmark
// of this process uses, creating it empty the first time; TestMain destroys
// and removes it. Sharing saves setup: the benchmarks run in the order of
// ops, and each starts from the state the one before left when it can (Up
// leaves the program deployed for NoopPreview, ...); runOp brings the stack
// to the start state its operation needs, untimed, when it is not.
func sharedFixture(tb testing.TB, side string, n int) *fixture {
	tb.Helper()
	key := fmt.Sprintf("%s-%d", side, n)
	if f, ok := fixtures[key]; ok {
		return f
	}
	dir, err := os.MkdirTemp(scratch, key+"-")
	must(tb, err)
	f := createFixture(tb, side, key, n, dir)
	fixtures[key] = f
	atExit = append(atExit, f.remove)
	return f
}

func createFixture(tb testing.TB, side, ns string, n int, dir string) *fixture {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	f := &fixture{t: newTarget(tb, side, ns, n, dir), ns: ns, n: n}
	must(tb, f.t.create(ctx))
	return f
}

// remove destroys what the stack holds and removes it.
func (f *fixture) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := f.t.remove(ctx); err != nil {
		return fmt.Errorf("cleanup of %s: %w", f.ns, err)
	}
	return nil
}

// runOp is the body of an engine benchmark: iterations × (untimed: bring
// the stack to o's start state, an up or a destroy; timed: o; untimed:
// check its summary and the cluster). At n >= memoryFrom it reports the
// peaks of resident memory during o.
func runOp(tb testing.TB, tm timer, iterations int, o op, f *fixture) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	var self, engine, provider float64
	tm.StopTimer()
	tm.ResetTimer()
	for range iterations {
		if o.fromDeployed != f.deployed {
			var err error
			if o.fromDeployed {
				_, err = f.t.up(ctx)
			} else {
				_, err = f.t.destroy(ctx)
			}
			must(tb, err)
			f.deployed = o.fromDeployed
		}
		var w *memWatch
		if f.n >= memoryFrom {
			w = watchMemory()
		}
		tm.StartTimer()
		sum, err := o.run(ctx, f.t)
		tm.StopTimer()
		if w != nil {
			s, e, p := w.end()
			self, engine, provider = max(self, s), max(engine, e), max(provider, p)
		}
		if err != nil {
			tb.Fatalf("%s of %s: %v", o.name, f.ns, err)
		}
		o.check(tb, f.ns, f.n, sum)
		f.deployed = o.leavesDeployed
	}
	if f.n >= memoryFrom {
		tm.ReportMetric(self, "peak-rss-MiB")
		tm.ReportMetric(engine, "engine-peak-rss-MiB")
		tm.ReportMetric(provider, "provider-peak-rss-MiB")
	}
}

// expect fails unless the summary's counts are exactly want.
func expect(tb testing.TB, got, want map[string]int) {
	tb.Helper()
	for k, v := range got {
		if v != 0 && want[k] != v {
			tb.Fatalf("summary %v, want %v", got, want)
		}
	}
	for k, v := range want {
		if got[k] != v {
			tb.Fatalf("summary %v, want %v", got, want)
		}
	}
}

// configMaps fails unless namespace ns holds the program's n ConfigMaps.
func configMaps(tb testing.TB, ns string, n int) {
	tb.Helper()
	l, err := cluster.Client.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{LabelSelector: benchLabel + "=true"})
	must(tb, err)
	if len(l.Items) != n {
		tb.Fatalf("namespace %s holds %d ConfigMaps of the program, want %d", ns, len(l.Items), n)
	}
}

// namespaceGone fails unless namespace ns no longer exists.
func namespaceGone(tb testing.TB, ns string) {
	tb.Helper()
	_, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		tb.Fatalf("namespace %s is still there after the destroy (%v)", ns, err)
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
