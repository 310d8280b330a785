package fleet_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// BenchmarkFleet_50Environments reconciles 50 small Environments from
// scratch with 1 runner and with 3 runners (each executing 2 Runs at once)
// and reports the time until all are Ready, and the controller's overhead
// per Run: from the Environment's creation to its Run appearing, plus from
// the Run finishing to the Environment being Ready, as this process sees
// them through watches (the engine's own time is excluded). Each phase
// destroys its Environments outside the timer. Run it alone:
//
//	go test -run '^$' -bench Fleet -benchtime 1x -timeout 60m ./integration/fleet/
func BenchmarkFleet_50Environments(b *testing.B) {
	const n = 50
	for range b.N {
		// Alternate which pool goes first from one round (-count) to the next.
		i := benchRound
		benchRound++
		order := []int{1, 3}
		if i%2 == 1 {
			order = []int{3, 1}
		}
		for _, runners := range order {
			b.Run(fmt.Sprintf("runners=%d", runners), func(b *testing.B) {
				b.StopTimer()
				ctx := context.Background()
				setRunners(b, runners)
				ns := fmt.Sprintf("bench-%d-%d", runners, i)
				benchNamespace(b, ns)
				w := startWatch(b, ns)
				b.StartTimer()
				start := time.Now()
				for j := 1; j <= n; j++ {
					env := newEnv(fmt.Sprintf("b%d-%d-%02d", runners, i, j), `{}`)
					env.Namespace = ns
					if err := fx.c.Create(ctx, env); err != nil {
						b.Fatal(err)
					}
					w.created(env.Name)
				}
				if err := w.waitReady(n, 30*time.Minute); err != nil {
					b.Fatal(err)
				}
				total := time.Since(start)
				b.StopTimer()
				over := w.overheads()
				b.ReportMetric(total.Seconds(), "s-to-all-ready")
				b.ReportMetric(float64(median(over).Milliseconds()), "ms-controller-overhead/run(median)")
				b.ReportMetric(float64(percentile(over, 90).Milliseconds()), "ms-controller-overhead/run(p90)")
				w.stop()
				if err := fx.c.DeleteAllOf(ctx, &v1alpha1.Environment{}, client.InNamespace(ns)); err != nil {
					b.Fatal(err)
				}
				waitEmpty(b, ns)
			})
		}
	}
}

// benchRound numbers the benchmark's rounds (go test -count N).
var benchRound int

// setRunners kills or starts runner processes until exactly n run.
func setRunners(b *testing.B, n int) {
	b.Helper()
	fx.mu.Lock()
	var names []string
	for name, p := range fx.procs {
		if p.role == "runner" {
			names = append(names, name)
		}
	}
	fx.mu.Unlock()
	slices.Sort(names)
	for len(names) > n {
		if err := fx.kill9(names[len(names)-1]); err != nil {
			b.Fatal(err)
		}
		names = names[:len(names)-1]
	}
	for i := 0; len(names) < n; i++ {
		name := fmt.Sprintf("bench-runner-%d-%d", time.Now().UnixNano(), i)
		if err := fx.start(context.Background(), "runner", name); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
}

// benchNamespace creates a namespace with the Secrets the Environments name.
func benchNamespace(b *testing.B, ns string) {
	b.Helper()
	ctx := context.Background()
	if err := fx.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"state-credentials", "state-passphrase", "target", "app"} {
		var s corev1.Secret
		if err := fx.c.Get(ctx, client.ObjectKey{Namespace: envNS, Name: name}, &s); err != nil {
			b.Fatal(err)
		}
		cp := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: s.Data}
		if err := fx.c.Create(ctx, cp); err != nil {
			b.Fatal(err)
		}
	}
}

func waitEmpty(b *testing.B, ns string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		var l v1alpha1.EnvironmentList
		if err := fx.c.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		if len(l.Items) == 0 {
			return
		}
		time.Sleep(time.Second)
	}
	b.Fatalf("the Environments of %s were not destroyed in 30m", ns)
}

// benchWatch records when this process saw each step of each Environment.
type benchWatch struct {
	mu                              sync.Mutex
	createdAt, runSeen, runDone, ok map[string]time.Time
	// upCompleted is each Environment's up's status.completionTime (the
	// API's time, whole seconds), from which its drift checks count.
	upCompleted map[string]time.Time
	// runs is when each Run (any operation) was first seen.
	runs map[string]seenRun
	// readyCh is signalled (never blocking: it holds one signal) when an
	// Environment became Ready; waitReady counts ok.
	readyCh chan struct{}
	cancel  context.CancelFunc
}

func startWatch(b *testing.B, ns string) *benchWatch {
	b.Helper()
	wc, err := client.NewWithWatch(fx.cluster.Config, client.Options{Scheme: fx.c.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &benchWatch{createdAt: map[string]time.Time{}, runSeen: map[string]time.Time{}, runDone: map[string]time.Time{},
		ok: map[string]time.Time{}, upCompleted: map[string]time.Time{}, runs: map[string]seenRun{}, readyCh: make(chan struct{}, 1), cancel: cancel}
	runs, err := wc.Watch(ctx, &v1alpha1.RunList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	envs, err := wc.Watch(ctx, &v1alpha1.EnvironmentList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	go w.loop(ctx, runs, envs)
	return w
}

func (w *benchWatch) loop(ctx context.Context, runs, envs watch.Interface) {
	defer runs.Stop()
	defer envs.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-runs.ResultChan():
			r, ok := ev.Object.(*v1alpha1.Run)
			if !ok {
				continue
			}
			now := time.Now()
			w.mu.Lock()
			if _, seen := w.runs[r.Name]; !seen {
				w.runs[r.Name] = seenRun{op: r.Spec.Operation, env: r.Spec.Environment, at: now, created: r.CreationTimestamp.Time}
			}
			if r.Spec.Operation != v1alpha1.OpUp {
				w.mu.Unlock()
				continue
			}
			if _, seen := w.runSeen[r.Spec.Environment]; !seen {
				w.runSeen[r.Spec.Environment] = now
			}
			if _, done := w.runDone[r.Spec.Environment]; !done && r.Status.Phase.Finished() {
				w.runDone[r.Spec.Environment] = now
				if c := r.Status.CompletionTime; c != nil {
					w.upCompleted[r.Spec.Environment] = c.Time
				}
			}
			w.mu.Unlock()
		case ev := <-envs.ResultChan():
			e, ok := ev.Object.(*v1alpha1.Environment)
			if !ok || !isTrue(e, v1alpha1.ConditionReady) {
				continue
			}
			w.mu.Lock()
			if _, done := w.ok[e.Name]; !done {
				w.ok[e.Name] = time.Now()
				// A blocking send here, under mu, would stop the creator
				// (created takes mu) once the buffer is full: at 10,000
				// Environments, many are Ready before the last is created.
				select {
				case w.readyCh <- struct{}{}:
				default:
				}
			}
			w.mu.Unlock()
		}
	}
}

func (w *benchWatch) created(name string) {
	w.mu.Lock()
	w.createdAt[name] = time.Now()
	w.mu.Unlock()
}

func (w *benchWatch) waitReady(n int, timeout time.Duration) error {
	t := time.After(timeout)
	for {
		w.mu.Lock()
		ready := len(w.ok)
		w.mu.Unlock()
		if ready >= n {
			return nil
		}
		select {
		case <-w.readyCh:
		case <-t:
			return fmt.Errorf("only %d of %d Environments Ready after %s", ready, n, timeout)
		}
	}
}

func (w *benchWatch) stop() { w.cancel() }

// overheads are the controller's share of each Environment's time.
func (w *benchWatch) overheads() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []time.Duration
	for name, c := range w.createdAt {
		seen, done, ready := w.runSeen[name], w.runDone[name], w.ok[name]
		if seen.IsZero() || done.IsZero() || ready.IsZero() {
			continue
		}
		out = append(out, seen.Sub(c)+ready.Sub(done))
	}
	return out
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

// seenRun is a Run's operation, its Environment, when the watch first
// saw it and its creationTimestamp (the API's time, whole seconds).
type seenRun struct {
	op      v1alpha1.Operation
	env     string
	at      time.Time
	created time.Time
}

// unduesSince lists what is wrong with the Runs first seen at or after
// from, for an operator that must start no Run but the drift checks that
// are due: a Run of another operation, a second Run of one Environment,
// or a drift check created earlier than half an interval after its
// Environment's up completed (the first check comes ½–1½ intervals after
// an up; both times are the API's). It also returns how many Runs it
// looked at.
func (w *benchWatch) unduesSince(from time.Time, interval time.Duration) (wrong []string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	per := map[string]int{}
	for name, r := range w.runs {
		if r.at.Before(from) {
			continue
		}
		n++
		per[r.env]++
		switch {
		case r.op != v1alpha1.OpDrift:
			wrong = append(wrong, fmt.Sprintf("Run %s: operation %s", name, r.op))
		case per[r.env] == 2:
			wrong = append(wrong, fmt.Sprintf("Environment %s: a second Run (%s)", r.env, name))
		case w.upCompleted[r.env].IsZero():
			wrong = append(wrong, fmt.Sprintf("Run %s: a drift check of %s, whose up was not seen completed", name, r.env))
		case r.created.Before(w.upCompleted[r.env].Add(interval / 2)):
			wrong = append(wrong, fmt.Sprintf("Run %s: a drift check created %s after %s's up, before half the interval", name, r.created.Sub(w.upCompleted[r.env]), r.env))
		}
	}
	slices.Sort(wrong)
	return wrong, n
}

// runCount is the number of Runs seen.
func (w *benchWatch) runCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.runs)
}

// firstReady is when the first Environment was seen Ready.
func (w *benchWatch) firstReady() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, t := range w.ok {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// lastReady is when the last Environment was seen Ready.
func (w *benchWatch) lastReady() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Time
	for _, t := range w.ok {
		if t.After(last) {
			last = t
		}
	}
	return last
}

// driftPerTenth counts the drift Runs first seen in each tenth of the
// interval from from.
func (w *benchWatch) driftPerTenth(from time.Time, interval time.Duration) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	per := make([]int, 10)
	for _, r := range w.runs {
		if r.op != v1alpha1.OpDrift || r.at.Before(from) || !r.at.Before(from.Add(interval)) {
			continue
		}
		per[int(r.at.Sub(from)*10/interval)]++
	}
	return per
}
