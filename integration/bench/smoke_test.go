package bench

import (
	"sync"
	"testing"
)

// TestBench_EveryBodyWorks runs every benchmark's body once, untimed, with
// its checks, so the benchmarks cannot rot: the engine operations at n=10
// chained on one stack per side (up, no-op preview, preview of a change,
// refresh, destroy), a recovery of planted pending operations per side,
// an ephemeral environment created and destroyed per side, and four environments brought up at once (the sequential side is
// the same body with a concurrency of 1). The groups run at the same time,
// whatever -parallel says: most of their time is spent waiting for the
// cluster.
func TestBench_EveryBodyWorks(t *testing.T) {
	const n = 10
	groups := map[string]func(t *testing.T){
		"fourenvs/side=slipway": func(t *testing.T) { runFourEnvs(t, noTimer{}, 1, "slipway") },
		"clipreview": func(t *testing.T) {
			c := newCLIEnv(t, "smoke-cli")
			for _, side := range sides {
				runCLIPreview(t, noTimer{}, 1, side, c)
			}
		},
	}
	for _, side := range sides {
		groups["engine/side="+side] = func(t *testing.T) {
			f := newFixture(t, side, "smoke-"+side, n)
			for _, o := range ops {
				runOp(t, noTimer{}, 1, o, f)
			}
		}
		groups["recover/side="+side] = func(t *testing.T) { runRecover(t, noTimer{}, 1, side, n, false) }
		groups["ephemeral/side="+side] = func(t *testing.T) {
			runEphemeral(t, noTimer{}, 1, newEphemeral(t, side), true)
		}
	}
	var wg sync.WaitGroup
	for name, f := range groups {
		wg.Go(func() { t.Run(name, f) })
	}
	wg.Wait()
}
