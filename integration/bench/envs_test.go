package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// webResources is the number of resources of a `web` dev environment on
// the kubernetes target (stack, provider, baseline and its objects,
// ConfigMap, workload and its objects), checked against each up.
const webResources = 15

// BenchmarkFourEnvs brings four `web` dev environments up with one Engine:
// one after another (side=bare, the baseline: Engine.Each with concurrency
// 1) and all at once (side=slipway: concurrency 4). The stacks exist before
// the timer starts; the destroys between iterations are not timed.
func BenchmarkFourEnvs(b *testing.B) {
	b.Run("base=sequential", func(b *testing.B) {
		for _, side := range sides {
			b.Run("side="+side, func(b *testing.B) { runFourEnvs(b, b, b.N, side) })
		}
	})
}

// runFourEnvs is the body of BenchmarkFourEnvs for one side.
func runFourEnvs(tb testing.TB, tm timer, iterations int, side string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	concurrency := map[string]int{"bare": 1, "slipway": 4}[side]
	e := newEngine(tb)
	var progs []automation.Program
	for i := range 4 {
		p, err := web.Definition.Program(web.Environment{Name: fmt.Sprintf("four-%s-%d", side, i), Kind: stacks.Dev,
			Kubeconfig: cluster.Kubeconfig})
		must(tb, err)
		progs = append(progs, p)
		_, err = e.UpsertStack(ctx, p)
		must(tb, err)
	}
	destroy := func(ctx context.Context) error {
		for _, r := range e.Each(ctx, progs, automation.Destroy(), 4) {
			if r.Err != nil {
				return fmt.Errorf("destroying %s: %w", r.Stack, r.Err)
			}
		}
		return nil
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		if err := destroy(ctx); err != nil {
			tb.Error(err)
		}
	})
	tm.StopTimer()
	tm.ResetTimer()
	for i := range iterations {
		if i > 0 {
			must(tb, destroy(ctx))
		}
		tm.StartTimer()
		res := e.Each(ctx, progs, automation.Up(), concurrency)
		tm.StopTimer()
		for _, r := range res {
			must(tb, r.Err)
			expect(tb, r.Result.Summary, map[string]int{"create": webResources})
		}
	}
}
