package fleet_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/runner"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// BenchmarkFleet_Scale simulates a fleet of many Environments: the real
// operator (the slipway binary, as its service account, with its own
// /metrics) and stand-in runners in this process (runner.Options.StandIn:
// each Run succeeds after a fixed delay without an engine), so only the
// operator and the API server are measured. It creates N Environments of
// the web definition with a drift interval, and reports:
//
//   - s-to-all-ready: from the first create to the last Environment Ready;
//   - ms-overhead/run(median), (p90): the controller's latency per Run as
//     BenchmarkFleet_50Environments measures it (creation to Run, Run done
//     to Ready, seen through watches): under a burst of N creations it is
//     mostly waiting in the work queue;
//   - ms-reconcile/run: the Environment reconciler's working time per Run
//     (controller_runtime_reconcile_time_seconds' sum over the Runs: mostly
//     waiting on API round trips), and ms-reconcile(median),
//     reconciles/run; ms-cpu/run: the operator process's CPU time per Run
//     (process_cpu_seconds_total);
//   - <METHOD>/s, writes/env(to-ready): the operator's API requests per
//     second by method while the fleet is created
//     (rest_client_requests_total), and its writes per Environment;
//   - MiB-heap, MiB-rss: the operator's memory after all are Ready;
//   - s-restart-settle: a restarted operator (SIGTERM, a new process) from
//     its start to having reconciled every Environment with an empty
//     queue; it must create no Run (asserted);
//   - ms-overhead/run(steady-median), (steady-p90): the same latency at
//     rest: with the fleet Ready (and its drift checks going on, when
//     the interval was watched), the parameters of SLIPWAY_SIM_STEADY
//     Environments (default 20) are changed one at a time, each after the
//     one before is Ready again; ms-reconcile/run(steady),
//     reconciles/run(steady): the reconciler's working time and passes
//     per Run meanwhile (with the drift checks', if any, counted in);
//   - checks/tenth(min), (max): the drift checks started in each tenth of
//     one interval after the restart (from half an interval after the last
//     Ready, when every Environment checks once), and writes/check,
//     writes/env/interval: the operator's writes in it.
//
// Knobs: SLIPWAY_SIM_ENVS (default 1000), SLIPWAY_SIM_DRIFT (drift
// interval, default 10m), SLIPWAY_SIM_RUN (the stand-in's delay, default
// 1s), SLIPWAY_SIM_READY_TIMEOUT (default 30m), SLIPWAY_SIM_OPERATOR_FLAGS
// (extra operator flags, space-separated), SLIPWAY_SIM_OBSERVE=0 (skip the
// interval after the restart: no checks/tenth or writes/env/interval). It stops the fixture's
// operators and runners: run it alone, e.g.
//
//	go test -run '^$' -bench Fleet_Scale -benchtime 1x -timeout 90m ./integration/fleet/
func BenchmarkFleet_Scale(b *testing.B) {
	n := envInt(b, "SLIPWAY_SIM_ENVS", 1000)
	interval := envDuration(b, "SLIPWAY_SIM_DRIFT", 10*time.Minute)
	delay := envDuration(b, "SLIPWAY_SIM_RUN", time.Second)
	readyTimeout := envDuration(b, "SLIPWAY_SIM_READY_TIMEOUT", 30*time.Minute)
	observe := os.Getenv("SLIPWAY_SIM_OBSERVE") != "0"
	steady := envInt(b, "SLIPWAY_SIM_STEADY", 20)
	ctx := context.Background()
	b.StopTimer()
	// The fixture's processes serve every namespace: only the simulation's
	// operator may reconcile its Environments.
	fx.mu.Lock()
	var names []string
	for name := range fx.procs {
		names = append(names, name)
	}
	fx.mu.Unlock()
	for _, name := range names {
		if err := fx.kill9(name); err != nil {
			b.Fatal(err)
		}
	}
	for i := range b.N {
		ns := fmt.Sprintf("sim-%d-%d", i, time.Now().Unix())
		if err := fx.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		stopRunners := startStandIns(b, ns, delay)
		opName := "sim-operator-" + ns
		flags := append([]string{"--watch-namespaces", ns, "--allow-runner-credentials", ns,
			"--lease-duration", "15s", "--renew-deadline", "10s", "--retry-period", simLeaderRetry.String()},
			strings.Fields(os.Getenv("SLIPWAY_SIM_OPERATOR_FLAGS"))...)
		if err := fx.start(ctx, "operator", opName, flags...); err != nil {
			b.Fatal(err)
		}
		w := startWatch(b, ns)
		base := scrape(b, opName)

		b.StartTimer()
		start := time.Now()
		createEnvs(b, ns, n, interval, w)
		if err := w.waitReady(n, readyTimeout); err != nil {
			b.Fatal(err)
		}
		total := time.Since(start)
		b.StopTimer()
		ready := scrape(b, opName)
		over := w.overheads()
		b.ReportMetric(total.Seconds(), "s-to-all-ready")
		b.ReportMetric(float64(median(over).Milliseconds()), "ms-overhead/run(median)")
		b.ReportMetric(float64(percentile(over, 90).Milliseconds()), "ms-overhead/run(p90)")
		recSum, recCount := reconciledSince(base, ready)
		b.ReportMetric(recSum*1000/float64(n), "ms-reconcile/run")
		b.ReportMetric(ready.quantile("controller_runtime_reconcile_time_seconds", "controller", "environment", 0.5)*1000, "ms-reconcile(median)")
		b.ReportMetric(recCount/float64(n), "reconciles/run")
		// The operator's own CPU per Run (both controllers, its watches and
		// clients): what a Run costs it, apart from waiting on the API.
		b.ReportMetric((ready.counter("process_cpu_seconds_total")-base.counter("process_cpu_seconds_total"))*1000/float64(n), "ms-cpu/run")
		b.ReportMetric(ready.quantile("workqueue_queue_duration_seconds", "name", "environment", 0.5)*1000, "ms-queue-wait(median)")
		secs, writes := total.Seconds(), 0.0
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			d := ready.requests(m) - base.requests(m)
			b.ReportMetric(d/secs, m+"/s")
			if m != "GET" {
				writes += d
			}
		}
		b.ReportMetric(writes/float64(n), "writes/env(to-ready)")
		b.ReportMetric(ready.gauge("go_memstats_heap_inuse_bytes")/(1<<20), "MiB-heap")
		b.ReportMetric(ready.gauge("process_resident_memory_bytes")/(1<<20), "MiB-rss")
		firstReady := w.firstReady()

		// Restart: SIGTERM (as a rollout does), then a new process.
		runsBefore := w.runCount()
		if err := fx.stop(opName); err != nil {
			b.Fatal(err)
		}
		opName += "-2"
		restart := time.Now()
		if err := fx.start(ctx, "operator", opName, flags...); err != nil {
			b.Fatal(err)
		}
		settled := waitSettled(b, opName, n, 10*time.Minute)
		b.ReportMetric(settled.Sub(restart).Seconds(), "s-restart-settle")
		newRuns := w.runCount() - runsBefore
		if restart.Before(firstReady.Add(interval / 2)) {
			// No drift check can be due yet: the restart must start nothing.
			if newRuns != 0 {
				b.Fatalf("the restarted operator created %d Runs while settling; want none", newRuns)
			}
		}
		// Whenever it comes, a restart starts no Run but the drift
		// checks that are due: no up again, no second Run of one
		// Environment, no check before half an interval after its up.
		if wrong, seen := w.unduesSince(restart, interval); len(wrong) > 0 {
			b.Fatalf("of the %d Runs the restarted operator created while settling, %d should not have been: %s", seen, len(wrong), strings.Join(wrong[:min(len(wrong), 10)], "; "))
		}
		if newRuns > 0 {
			b.Logf("the restart came %s after the first Ready: %d drift checks were due and started while settling (each checked: a drift check, one per Environment, half an interval after its up)", restart.Sub(firstReady), newRuns)
		}
		b.ReportMetric(float64(newRuns), "runs-during-settle")

		if observe {
			observeInterval(b, w, opName, n, interval)
		}
		sb := scrape(b, opName)
		over = steadyOverheads(b, ns, min(n, steady))
		se := scrape(b, opName)
		b.ReportMetric(float64(median(over).Milliseconds()), "ms-overhead/run(steady-median)")
		b.ReportMetric(float64(percentile(over, 90).Milliseconds()), "ms-overhead/run(steady-p90)")
		steadySum, steadyCount := reconciledSince(sb, se)
		b.ReportMetric(steadySum*1000/float64(len(over)), "ms-reconcile/run(steady)")
		b.ReportMetric(steadyCount/float64(len(over)), "reconciles/run(steady)")
		w.stop()
		stopRunners()
		if err := fx.stop(opName); err != nil {
			b.Fatal(err)
		}
		// The Environments are left to the namespace's deletion: without an
		// operator their finalizers would hold it, so drop them first.
		dropFinalizers(b, ns)
		if err := fx.c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}
}

// observeInterval watches one drift interval after the restart, from
// half an interval after the last Environment became Ready: each
// Environment checks exactly once in it (its first check comes ½–1½
// intervals after its up, at its slot). It reports how the checks spread
// over the tenths of the window, and the operator's writes per check and
// per Environment: its POSTs, PUTs and PATCHes but the leader election
// Lease's renewals (one per retry period, simLeaderRetry), plus one DELETE
// per Run created (each Run is deleted once, after the Run TTL of 1 h,
// outside the window).
func observeInterval(b *testing.B, w *benchWatch, opName string, n int, interval time.Duration) {
	start := w.lastReady().Add(interval / 2)
	time.Sleep(time.Until(start))
	from := scrape(b, opName)
	t0 := time.Now()
	time.Sleep(time.Until(start.Add(interval)))
	end := scrape(b, opName)
	elapsed := time.Since(t0)
	per := w.driftPerTenth(start, interval)
	b.ReportMetric(float64(slices.Min(per)), "checks/tenth(min)")
	b.ReportMetric(float64(slices.Max(per)), "checks/tenth(max)")
	b.Logf("drift checks per tenth of the interval from %s after the last Ready: %v", interval/2, per)
	writes := 0.0
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		d := end.requests(m) - from.requests(m)
		if m != "DELETE" {
			writes += d
		}
		b.Logf("operator %s over %s: %.0f (%.2f/s)", m, elapsed.Round(time.Second), d, d/elapsed.Seconds())
	}
	checks := 0
	for _, c := range per {
		checks += c
	}
	renewals := elapsed.Seconds() / simLeaderRetry.Seconds()
	b.Logf("writes: %.0f, minus %.0f Lease renewals, plus %d Runs to delete", writes, renewals, checks)
	if checks > 0 {
		b.ReportMetric((writes-renewals)/float64(checks)+1, "writes/check")
	}
	b.ReportMetric(((writes-renewals)*interval.Seconds()/elapsed.Seconds()+float64(checks))/float64(n), "writes/env/interval")
	b.Logf("operator GET over the interval: %.2f/s", (end.requests("GET")-from.requests("GET"))/elapsed.Seconds())
}

// simLeaderRetry is the simulated operator's leader election retry
// period (the production default): the leader renews its Lease that often.
const simLeaderRetry = 2 * time.Second

func envInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	return def
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("%s=%q: want a positive duration", name, v)
		}
		return d
	}
	return def
}

// startStandIns runs four stand-in runners of ns in this process, each
// with 10 Runs at once and a client budget that keeps them from being the
// bottleneck (a real fleet has runner pods to match its size).
func startStandIns(b *testing.B, ns string, delay time.Duration) (stop func()) {
	cfg := rest.CopyConfig(fx.cluster.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range 4 {
		o := runner.Options{Identity: fmt.Sprintf("standin-%d", i), Namespaces: []string{ns}, Concurrency: 10,
			Registry: fleet.Registry{Definitions: []stacks.Builder{web.Definition}}, WorkDir: filepath.Join(fx.dir, "standin"),
			Logger: log, AllowRunnerCredentials: []string{ns}, StandIn: delay}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runner.Run(ctx, cfg, o, "0", "0"); err != nil {
				b.Errorf("stand-in runner %s: %v", o.Identity, err)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// createEnvs creates n Environments of the web definition, with no Secret
// (the runners' credentials, a file backend no engine opens).
func createEnvs(b *testing.B, ns string, n int, interval time.Duration, w *benchWatch) {
	ctx := context.Background()
	for j := range n {
		env := &v1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sim-%05d", j), Namespace: ns},
			Spec: v1alpha1.EnvironmentSpec{
				Inputs: v1alpha1.Inputs{Definition: "web", Kind: "dev", Params: &apiextensionsv1.JSON{Raw: []byte(`{}`)},
					Backend: v1alpha1.Backend{URL: "file:///nonexistent/slipway-sim"}},
				Drift: &v1alpha1.DriftCheck{Interval: metav1.Duration{Duration: interval}},
			}}
		if err := fx.c.Create(ctx, env); err != nil {
			b.Fatal(err)
		}
		w.created(env.Name)
	}
}

// steadyOverheads changes the parameters of the first k Environments one
// at a time, each after the one before is Ready again, and returns the
// controller's latency for each: from the change to its up Run seen, plus
// from that Run seen finished to the Environment seen Ready with it. The
// two are seen on two watches, whose events may come in either order: a
// Ready seen before its Run's end counts as no time.
func steadyOverheads(b *testing.B, ns string, k int) []time.Duration {
	b.Helper()
	ctx := context.Background()
	wc, err := client.NewWithWatch(fx.cluster.Config, client.Options{Scheme: fx.c.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	// Two watches for the whole series, from now: a watch started just
	// before each change would add the API server's wait for its watch
	// cache to reach the version asked for (up to a second) to what is
	// measured.
	runs := watchFromNow(b, wc, ns, &v1alpha1.RunList{})
	defer runs.Stop()
	envs := watchFromNow(b, wc, ns, &v1alpha1.EnvironmentList{})
	defer envs.Stop()
	out := make([]time.Duration, 0, k)
	for i := range k {
		name := fmt.Sprintf("sim-%05d", i)
		var env v1alpha1.Environment
		if err := fx.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &env); err != nil {
			b.Fatal(err)
		}
		env.Spec.Params = &apiextensionsv1.JSON{Raw: []byte(fmt.Sprintf(`{"App":{"Replicas":%d}}`, 2+i%2))}
		changed := time.Now()
		if err := fx.c.Update(ctx, &env); err != nil {
			b.Fatal(err)
		}
		prev := ""
		if env.Status.LastRun != nil {
			prev = env.Status.LastRun.Name
		}
		var run, readyRun string
		var seen, done, ready time.Time
		timeout := time.After(2 * time.Minute)
		for done.IsZero() || ready.IsZero() {
			select {
			case ev := <-runs.ResultChan():
				r, ok := ev.Object.(*v1alpha1.Run)
				if !ok || r.Spec.Environment != name || r.Spec.Operation != v1alpha1.OpUp {
					continue
				}
				if run == "" {
					run, seen = r.Name, time.Now()
				}
				if r.Name == run && done.IsZero() && r.Status.Phase.Finished() {
					done = time.Now()
				}
			case ev := <-envs.ResultChan():
				e, ok := ev.Object.(*v1alpha1.Environment)
				if ok && e.Name == name && ready.IsZero() && e.Generation == env.Generation && isTrue(e, v1alpha1.ConditionReady) &&
					e.Status.LastRun != nil && e.Status.LastRun.Name != prev && e.Status.LastRun.Operation == v1alpha1.OpUp {
					ready, readyRun = time.Now(), e.Status.LastRun.Name
				}
			case <-timeout:
				b.Fatalf("%s: not Ready again 2 min after its parameters changed (Run %q)", name, run)
			}
		}
		if readyRun != run {
			b.Fatalf("%s: Ready after Run %s, but the up seen was %s", name, readyRun, run)
		}
		out = append(out, seen.Sub(changed)+max(0, ready.Sub(done)))
	}
	return out
}

// watchFromNow watches list's kind in ns from the namespace's current
// version: what changes from now on, without the objects already there.
func watchFromNow(b *testing.B, wc client.WithWatch, ns string, list client.ObjectList) watch.Interface {
	b.Helper()
	ctx := context.Background()
	if err := fx.c.List(ctx, list, client.InNamespace(ns), client.Limit(1)); err != nil {
		b.Fatal(err)
	}
	w, err := wc.Watch(ctx, list, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.GetResourceVersion()}})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// dropFinalizers removes the Environments' finalizers.
func dropFinalizers(b *testing.B, ns string) {
	ctx := context.Background()
	var l v1alpha1.EnvironmentList
	if err := fx.c.List(ctx, &l, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	for i := range l.Items {
		e := &l.Items[i]
		if err := fx.c.Patch(ctx, e, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`))); err != nil {
			b.Fatal(err)
		}
	}
}

// metrics are one scrape of a process's /metrics.
type metrics map[string]*dto.MetricFamily

func scrape(b *testing.B, name string) metrics {
	b.Helper()
	fx.mu.Lock()
	p := fx.procs[name]
	fx.mu.Unlock()
	if p == nil {
		b.Fatalf("no process %s", name)
	}
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return mf
}

// reconciledSince returns the Environment controller's reconciler time
// (seconds) and passes between two scrapes.
func reconciledSince(from, to metrics) (seconds, passes float64) {
	const family = "controller_runtime_reconcile_time_seconds"
	return to.sum(family, "controller", "environment") - from.sum(family, "controller", "environment"),
		to.count(family, "controller", "environment") - from.count(family, "controller", "environment")
}

// series are the family's metrics whose label has the value.
func (m metrics) series(family, label, value string) []*dto.Metric {
	f := m[family]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, s := range f.Metric {
		for _, l := range s.Label {
			if l.GetName() == label && l.GetValue() == value {
				out = append(out, s)
			}
		}
	}
	return out
}

func (m metrics) sum(family, label, value string) float64 {
	t := 0.0
	for _, s := range m.series(family, label, value) {
		t += s.GetHistogram().GetSampleSum()
	}
	return t
}

func (m metrics) count(family, label, value string) float64 {
	t := 0.0
	for _, s := range m.series(family, label, value) {
		t += float64(s.GetHistogram().GetSampleCount())
	}
	return t
}

// quantile estimates a histogram's quantile q (linear within a bucket).
func (m metrics) quantile(family, label, value string, q float64) float64 {
	for _, s := range m.series(family, label, value) {
		h := s.GetHistogram()
		want := q * float64(h.GetSampleCount())
		lo, below := 0.0, 0.0
		for _, bk := range h.Bucket {
			c := float64(bk.GetCumulativeCount())
			if c >= want && c > below {
				return lo + (bk.GetUpperBound()-lo)*(want-below)/(c-below)
			}
			lo, below = bk.GetUpperBound(), c
		}
		return math.Inf(1)
	}
	return 0
}

// requests are the operator's API requests with the HTTP method.
func (m metrics) requests(method string) float64 {
	t := 0.0
	for _, s := range m.series("rest_client_requests_total", "method", method) {
		t += s.GetCounter().GetValue()
	}
	return t
}

func (m metrics) gauge(family string) float64 {
	if f := m[family]; f != nil && len(f.Metric) > 0 {
		return f.Metric[0].GetGauge().GetValue()
	}
	return 0
}

// counter is the value of a family's only counter, e.g.
// process_cpu_seconds_total.
func (m metrics) counter(family string) float64 {
	if f := m[family]; f != nil && len(f.Metric) > 0 {
		return f.Metric[0].GetCounter().GetValue()
	}
	return 0
}

// waitSettled waits until the operator reconciled n Environments since its
// start and its queue is empty, and returns when it saw that.
func waitSettled(b *testing.B, name string, n int, timeout time.Duration) time.Time {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		m := scrape(b, name)
		done := 0.0
		for _, s := range m.series("controller_runtime_reconcile_total", "controller", "environment") {
			done += s.GetCounter().GetValue()
		}
		depth := 0.0
		for _, s := range m.series("workqueue_depth", "name", "environment") {
			depth += s.GetGauge().GetValue()
		}
		if done >= float64(n) && depth == 0 {
			return time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("operator %s did not settle in %s", name, timeout)
	return time.Time{}
}
