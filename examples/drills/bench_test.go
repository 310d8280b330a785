package drills_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/examples/drills"
	"github.com/slipwayhq/slipway/integration/promtest"
)

// order alternates which side of BenchmarkRollout_Overhead runs first,
// across iterations and across the benchmark's runs (-count).
var order atomic.Int64

// BenchmarkRollout_Overhead measures what the rollout machinery costs: a
// three-step canary (weights 25, 50, 75 %, each followed by a 1 s pause and
// one analysis of two measurements 1 s apart on a real Prometheus), end to
// end with its promotion, against a plain up of the same change (stable
// nginx:1.27 → nginx:1.28, no canary) on the same stack. Each side starts
// from stable nginx:1.27, reset outside the timer; which side runs first
// alternates. It reports, in seconds per side:
//
//	rollout-s   the rollout, stack opening to promotion
//	up-s        the plain up, stack opening included
//	waits-s     the rollout's pauses and analysis intervals (6 s)
//	overhead-s  rollout-s − up-s − waits-s: the machinery beyond its waits
//
// Run it with, for example,
//
//	go test ./examples/drills/ -run '^$' -bench Rollout_Overhead -benchtime=2x -count=4
func BenchmarkRollout_Overhead(b *testing.B) {
	const pause, interval, measurements = time.Second, time.Second, 2
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	prom := promtest.Start(b)
	if err := prom.Set(ctx, "canary", "canary_error_rate", 0.01); err != nil {
		b.Fatal(err)
	}
	env := newWeb(b)
	cond, err := analysis.ParseCondition("result < 0.05")
	if err != nil {
		b.Fatal(err)
	}
	gate := []rollout.Gate{rollout.AnalysisGate(analysis.Metric{Name: "error-rate", Count: measurements, Interval: interval,
		SuccessCondition: cond, Provider: analysis.Prometheus{Address: prom.URL, Query: `canary_error_rate{job="canary"}`}})}
	var steps []rollout.Step
	for _, w := range []int{25, 50, 75} {
		steps = append(steps, rollout.Step{Weight: w}, rollout.Step{Pause: pause}, rollout.Step{Gates: gate})
	}
	waits := 3 * (pause + (measurements-1)*interval)

	up := func(image string) time.Duration { // opening the stack as a command would, then up
		start := time.Now()
		st, err := env.Engine.UpsertStack(ctx, drills.With(env.Program, drills.Args(image, image, 0)))
		if err == nil {
			_, err = st.Up(ctx)
		}
		if err != nil {
			b.Fatalf("up of %s: %v", image, err)
		}
		return time.Since(start)
	}
	var runs int
	rollOut := func() time.Duration {
		runs++
		version := fmt.Sprintf("%s#%d", next, runs) // a new release each time: a promoted one is not rolled out again
		start := time.Now()
		st, err := env.Engine.Rollout(ctx, drills.Canary(env.Program, stable, version, steps, nil), drills.Lookup(env.Program))
		d := time.Since(start)
		if err != nil || st.Phase != rollout.Promoted {
			b.Fatalf("rollout of %s: %s %s %v", version, st.Phase, st.Cause, err)
		}
		if len(st.Checks) != 3 {
			b.Fatalf("rollout of %s ran %d analyses, not 3", version, len(st.Checks))
		}
		return d
	}

	var rolloutTime, upTime time.Duration
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		sides := []func(){
			func() { up(stable); b.StartTimer(); rolloutTime += rollOut(); b.StopTimer() },
			func() { up(stable); b.StartTimer(); upTime += up(next); b.StopTimer() },
		}
		if order.Add(1)%2 == 0 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			side()
		}
	}
	n := float64(b.N)
	b.ReportMetric(rolloutTime.Seconds()/n, "rollout-s")
	b.ReportMetric(upTime.Seconds()/n, "up-s")
	b.ReportMetric(waits.Seconds(), "waits-s")
	b.ReportMetric((rolloutTime-upTime).Seconds()/n-waits.Seconds(), "overhead-s")
}
