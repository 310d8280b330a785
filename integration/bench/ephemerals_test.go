package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/slipwayhq/slipway/automation"
	slipdestroy "github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// twenty is how many ephemeral environments BenchmarkTwentyEphemerals and
// TestEphemerals_TwentyInParallelThenGCLeaveNothing create.
const twenty = 20

// ephemeralsTest needs the local cluster (see needsCluster).
const ephemeralsTest = "TestEphemerals_TwentyInParallelThenGCLeaveNothing"

// ephemeralsTTL is the TTL of the twenty: so short that they have expired
// by the time the creates return (the body waits for the latest expiry
// all the same, and GC runs on the real clock, as `slipway gc` does).
const ephemeralsTTL = time.Second

// envLabel is the label the web program puts on an environment's namespace.
const envLabel = "slipway.dev/environment"

// BenchmarkTwentyEphemerals creates twenty ephemeral `web` environments
// with Engine.CreateEphemeral (what `slipway ephemeral create` runs) on one
// Engine and one file backend: one after another (side=bare, the baseline)
// and all at once (side=slipway). Once they have expired, Engine.GC (what
// `slipway gc` runs) collects them: one at a time on the sequential side
// (`gc --concurrency 1`), all at once on the parallel one (`gc
// --concurrency 20`). ns/op is the wall time of the twenty creates, gc-s/op
// that of the GC, backend-files-left/op the files of the twenty that the
// backend still holds after it (the test requires none). Both sides are
// Slipway. The checks (every environment created and in the cluster; GC's
// report; no stack, lock or Kubernetes object of any of them left) are not
// timed.
func BenchmarkTwentyEphemerals(b *testing.B) {
	b.Run("base=sequential", func(b *testing.B) {
		for _, side := range sides {
			b.Run("side="+side, func(b *testing.B) {
				concurrency := map[string]int{"bare": 1, "slipway": twenty}[side]
				if files, summary := runTwentyEphemerals(b, b, b.N, newTwentyEphemerals(b, "tw-"+side, concurrency)); files != 0 {
					b.Logf("after GC %s", summary)
				}
			})
		}
	})
}

// TestEphemerals_TwentyInParallelThenGCLeaveNothing is the parallel side's
// body once: twenty ephemeral environments created at once with a TTL of
// one second; once the latest has expired, GC collects them all at once.
// It checks that GC collects nothing before the expiry, that its report
// names exactly the twenty (with their keys and expiries, each destroyed),
// that nothing of them is left in the API server (no object of any type in
// their namespaces, no namespace, nothing labelled with their names) or in
// the backend (no stack, no checkpoint, history, backup or lock file), and
// that GC left a non-ephemeral environment of the same backend alone.
func TestEphemerals_TwentyInParallelThenGCLeaveNothing(t *testing.T) {
	w := newTwentyEphemerals(t, "gc20", twenty)
	keep := w.addBystander(t)
	if files, summary := runTwentyEphemerals(t, noTimer{}, 1, w); files != 0 {
		t.Errorf("after GC %s", summary)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	names, err := w.e.Stacks(ctx, web.Project)
	must(t, err)
	if !slices.Equal(names, []string{keep}) {
		t.Fatalf("after GC the backend holds stacks %v, want only the non-ephemeral %s", names, keep)
	}
}

// twentyEphemerals is the fixture of both: twenty ephemeral `web`
// environments on an Engine and a file backend of their own.
type twentyEphemerals struct {
	e     *automation.Engine
	progs []automation.Program
	// keys are the ephemeral keys (pull-request numbers), by stack.
	keys map[string]string
	// nss are the namespaces, by stack.
	nss map[string]string
	// concurrency bounds the creates and the GC (1: one at a time).
	concurrency int
	// bystander is the program of a non-ephemeral environment, if any.
	bystander *automation.Program
}

// newTwentyEphemerals builds the twenty programs, named prefix-00 to
// prefix-19, on a new Engine; whatever the backend still holds when tb
// ends is destroyed and removed then.
func newTwentyEphemerals(tb testing.TB, prefix string, concurrency int) *twentyEphemerals {
	tb.Helper()
	w := &twentyEphemerals{e: newEngine(tb), keys: map[string]string{}, nss: map[string]string{}, concurrency: concurrency}
	for i := range twenty {
		env := web.Environment{Name: fmt.Sprintf("%s-%02d", prefix, i), Kind: stacks.Ephemeral, Kubeconfig: cluster.Kubeconfig}
		p, err := web.Definition.Program(env)
		must(tb, err)
		w.progs = append(w.progs, p)
		w.keys[p.Stack] = fmt.Sprintf("pr-%d", 1000+i)
		w.nss[p.Stack] = web.Definition.WithDefaults(env).Params.Namespace
	}
	if len(w.progs) != twenty || len(w.nss) != twenty {
		tb.Fatalf("%d programs in %d namespaces, want %d", len(w.progs), len(w.nss), twenty)
	}
	tb.Cleanup(func() {
		if err := w.cleanup(); err != nil {
			tb.Error(err)
		}
	})
	return w
}

// addBystander adds a non-ephemeral `web` environment to the backend (its
// stack, the program not deployed) and returns its name.
func (w *twentyEphemerals) addBystander(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := strings.TrimSuffix(w.progs[0].Stack, "-00") + "-keep"
	p, err := web.Definition.Program(web.Environment{Name: name, Kind: stacks.Dev, Kubeconfig: cluster.Kubeconfig})
	must(tb, err)
	_, err = w.e.UpsertStack(ctx, p)
	must(tb, err)
	w.bystander = &p
	return p.Stack
}

// cleanup destroys and removes every stack the backend still holds: the
// twenty with DestroyEphemeral (as `slipway ephemeral destroy`), the
// bystander with a destroy.
func (w *twentyEphemerals) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	names, err := w.e.Stacks(ctx, web.Project)
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	var errs []error
	for _, n := range names {
		if w.bystander != nil && n == w.bystander.Stack {
			st, err := w.e.SelectStack(ctx, *w.bystander)
			if err == nil {
				_, err = st.Destroy(ctx, slipdestroy.RemoveStack())
			}
			errs = append(errs, err)
			continue
		}
		_, err := w.e.DestroyEphemeral(ctx, web.Project, n)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	return nil
}

// create creates the twenty with CreateEphemeral, at most w.concurrency
// at a time, in order; it returns each one's expiry and fails unless each
// was created whole.
func (w *twentyEphemerals) create(ctx context.Context, tb testing.TB, tm timer) map[string]time.Time {
	type created struct {
		res *outcome.Result
		eph *automation.Ephemeral
		err error
	}
	out := make([]created, len(w.progs))
	sem := make(chan struct{}, w.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	tm.StartTimer()
	for i, p := range w.progs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res, eph, err := w.e.CreateEphemeral(ctx, p, w.keys[p.Stack], ephemeralsTTL)
			out[i] = created{res, eph, err}
		})
	}
	wg.Wait()
	tm.StopTimer()
	end := time.Now()
	expires := map[string]time.Time{}
	for i, c := range out {
		name := w.progs[i].Stack
		if c.err != nil {
			tb.Fatalf("ephemeral create of %s: %v", name, c.err)
		}
		expect(tb, c.res.Summary, map[string]int{"create": webResources})
		if c.eph == nil || c.eph.Stack != name || c.eph.Key != w.keys[name] {
			tb.Fatalf("ephemeral create of %s returned %+v, want stack %s with key %s", name, c.eph, name, w.keys[name])
		}
		// The expiry is the create's start plus the TTL, in whole seconds.
		if lo, hi := start.Add(ephemeralsTTL-time.Second), end.Add(ephemeralsTTL); c.eph.Expires.Before(lo) || c.eph.Expires.After(hi) {
			tb.Fatalf("%s expires at %s, want between %s and %s", name, c.eph.Expires, lo, hi)
		}
		expires[name] = c.eph.Expires
	}
	if len(expires) != twenty {
		tb.Fatalf("%d environments created, want %d", len(expires), twenty)
	}
	tb.Logf("%d ephemeral creates, at most %d at a time: %.1f s", twenty, w.concurrency, end.Sub(start).Seconds())
	return expires
}

// runTwentyEphemerals is the body of BenchmarkTwentyEphemerals: iterations
// × (timed: the twenty creates; untimed: their checks and the wait until
// the latest expired; timed on its own, reported as gc-s/op: GC; untimed:
// its checks). The files of the twenty that the backend still holds after
// GC are reported as backend-files-left/op; it returns those of the last
// iteration (count and summary).
func runTwentyEphemerals(tb testing.TB, tm timer, iterations int, w *twentyEphemerals) (files int, summary string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	k := newKubeScan(tb)
	var gcTime time.Duration
	filesLeft := 0
	tm.StopTimer()
	tm.ResetTimer()
	for range iterations {
		expires := w.create(ctx, tb, tm)
		live := k.objects(ctx, tb, w.nss)
		if len(live) != twenty {
			tb.Fatalf("%d of the %d environments have objects in the API server, want all", len(live), twenty)
		}
		for name := range w.nss {
			ephemeralObjects(tb, name, live[name])
		}
		// Before the earliest expiry, nothing is due.
		earliest, latest := slices.MinFunc(slices.Collect(maps.Values(expires)), time.Time.Compare),
			slices.MaxFunc(slices.Collect(maps.Values(expires)), time.Time.Compare)
		start := time.Now()
		early, err := w.e.GC(ctx, web.Project, earliest, w.concurrency)
		must(tb, err)
		tb.Logf("GC before the earliest expiry: %.1f s", time.Since(start).Seconds())
		if len(early) != 0 {
			tb.Fatalf("GC at %s (the earliest expiry) collected %d environment(s), want none: %+v", earliest, len(early), early)
		}
		// Wait until the latest has expired (GC collects what expired
		// strictly before now).
		for !time.Now().After(latest) {
			time.Sleep(time.Until(latest) + time.Millisecond)
		}
		start = time.Now()
		out, err := w.e.GC(ctx, web.Project, time.Now(), w.concurrency)
		took := time.Since(start)
		gcTime += took
		must(tb, err)
		tb.Logf("GC of %d environment(s), at most %d at a time: %.1f s", len(out), w.concurrency, took.Seconds())
		w.checkGC(ctx, tb, out, expires)
		files, summary = w.backendFiles(tb)
		filesLeft += files
		left := k.objects(ctx, tb, w.nss)
		if len(left) != 0 {
			var lines []string
			for _, name := range slices.Sorted(maps.Keys(left)) {
				lines = append(lines, fmt.Sprintf("%s: %s", name, strings.Join(left[name], ", ")))
			}
			tb.Fatalf("after GC, %d of the %d environments left objects in the API server:\n  %s", len(left), twenty, strings.Join(lines, "\n  "))
		}
	}
	tm.ReportMetric(gcTime.Seconds()/float64(iterations), "gc-s/op")
	tm.ReportMetric(float64(filesLeft)/float64(iterations), "backend-files-left/op")
	return files, summary
}

// checkGC fails unless GC's report names exactly the twenty, each
// destroyed (every resource deleted) with the key and expiry it was
// created with, and the backend lists none of them among its stacks or
// its ephemeral environments.
func (w *twentyEphemerals) checkGC(ctx context.Context, tb testing.TB, out []automation.GCResult, expires map[string]time.Time) {
	tb.Helper()
	var got []string
	for _, r := range out {
		if r.Error != "" {
			tb.Errorf("GC of %s failed: %s", r.Stack, r.Error)
			continue
		}
		if r.Key != w.keys[r.Stack] || !r.Expires.Equal(expires[r.Stack]) {
			tb.Errorf("GC reports %s with key %q expiring at %s, want key %q and %s", r.Stack, r.Key, r.Expires, w.keys[r.Stack], expires[r.Stack])
		}
		if r.Result == nil {
			tb.Errorf("GC reports no result for %s", r.Stack)
		} else {
			expect(tb, r.Result.Summary, map[string]int{"delete": webResources})
		}
		got = append(got, r.Stack)
	}
	slices.Sort(got)
	want := slices.Sorted(maps.Keys(w.nss))
	if !slices.Equal(got, want) {
		tb.Fatalf("GC collected %d environment(s) %v, want the %d %v", len(got), got, len(want), want)
	}
	names, err := w.e.Stacks(ctx, web.Project)
	must(tb, err)
	ephs, err := w.e.Ephemerals(ctx, web.Project)
	must(tb, err)
	if len(ephs) != 0 || slices.ContainsFunc(names, func(n string) bool { return w.nss[n] != "" }) {
		tb.Fatalf("after GC the backend lists stacks %v and ephemerals %+v, want none of the twenty", names, ephs)
	}
}

// backendFiles returns how many files of the twenty the file backend
// holds (any file whose path names one of them: a directory <name> or a
// file <name>.*) and a summary of them by kind (the name as <env>, the
// varying digits as #); it fails when the backend holds a lock file.
func (w *twentyEphemerals) backendFiles(tb testing.TB) (int, string) {
	tb.Helper()
	u, err := url.Parse(w.e.Backend())
	must(tb, err)
	if u.Scheme != "file" || u.Path == "" {
		tb.Fatalf("backend %s is not a file backend", w.e.Backend())
	}
	left, envs, files := map[string]int{}, map[string]bool{}, 0
	var locks []string
	must(tb, filepath.WalkDir(u.Path, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(u.Path, path)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if slices.Contains(parts, "locks") {
			locks = append(locks, rel)
		}
		i := slices.IndexFunc(parts, func(p string) bool {
			stem, _, _ := strings.Cut(p, ".")
			return w.nss[stem] != ""
		})
		if i < 0 {
			return nil
		}
		stem, _, _ := strings.Cut(parts[i], ".")
		envs[stem] = true
		left[digits.ReplaceAllString(strings.ReplaceAll(rel, stem, "<env>"), "#")]++
		files++
		return nil
	}))
	if len(locks) != 0 {
		tb.Fatalf("after GC the backend %s holds %d lock file(s):\n  %s", u.Path, len(locks), strings.Join(locks, "\n  "))
	}
	if files == 0 {
		return 0, ""
	}
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(left)) {
		lines = append(lines, fmt.Sprintf("%4d × %s", left[k], k))
	}
	return files, fmt.Sprintf("the backend %s holds %d file(s) of %d of the twenty environments:\n  %s",
		u.Path, files, len(envs), strings.Join(lines, "\n  "))
}

// digits are the varying parts (timestamps, IDs) of the backend's file names.
var digits = regexp.MustCompile(`[0-9]{8}T[0-9.]+Z(-[0-9a-f]{8})?|[0-9]{6,}`)

// ephemeralObjects fails unless an ephemeral `web` environment's objects
// (by kind, from kubeScan.objects) are all in the API server: the
// namespace, a quota, a limit range, three network policies, the
// application's ConfigMap, Deployment, Service, PodDisruptionBudget and
// HorizontalPodAutoscaler.
func ephemeralObjects(tb testing.TB, name string, objs []string) {
	tb.Helper()
	kinds := map[string]int{}
	for _, o := range objs {
		kind, _, _ := strings.Cut(o, "/")
		kinds[kind]++
	}
	want := map[string]int{"Namespace": 1, "ResourceQuota": 1, "LimitRange": 1, "NetworkPolicy": 3, "Deployment": 1,
		"Service": 1, "PodDisruptionBudget": 1, "HorizontalPodAutoscaler": 1}
	for kind, n := range want {
		if kinds[kind] != n {
			tb.Fatalf("environment %s has %d %s object(s) in the API server, want %d; it has %s", name, kinds[kind], kind, n, strings.Join(objs, ", "))
		}
	}
	if !slices.Contains(objs, "ConfigMap/web-config") {
		tb.Fatalf("environment %s has no ConfigMap web-config in the API server; it has %s", name, strings.Join(objs, ", "))
	}
}

// kubeScan lists every object of every type the API server serves.
type kubeScan struct {
	dyn  dynamic.Interface
	disc discovery.DiscoveryInterface
}

func newKubeScan(tb testing.TB) *kubeScan {
	tb.Helper()
	dyn, err := dynamic.NewForConfig(cluster.Config)
	must(tb, err)
	disc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
	must(tb, err)
	return &kubeScan{dyn: dyn, disc: disc}
}

// objects returns, by environment (nss maps each environment to its
// namespace), the objects of the environment in the API server as
// "Kind/name": every object of any listable type in its namespace, the
// namespace itself, and any object labelled with the environment's name.
// Environments without an object are left out.
func (k *kubeScan) objects(ctx context.Context, tb testing.TB, nss map[string]string) map[string][]string {
	tb.Helper()
	envOf := map[string]string{} // namespace -> environment
	for env, ns := range nss {
		envOf[ns] = env
	}
	lists, err := k.disc.ServerPreferredResources()
	must(tb, err)
	out := map[string][]string{}
	types := 0
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		must(tb, err)
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || strings.Contains(r.Name, "/") {
				continue
			}
			types++
			items, err := k.dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{})
			must(tb, err)
			for _, o := range items.Items {
				env, ok := envOf[o.GetNamespace()]
				if !ok && r.Kind == "Namespace" {
					env, ok = envOf[o.GetName()]
				}
				if l := o.GetLabels()[envLabel]; !ok && nss[l] != "" {
					env, ok = l, true
				}
				if ok {
					out[env] = append(out[env], r.Kind+"/"+o.GetName())
				}
			}
		}
	}
	// The scan must have seen the types the environments are made of.
	if types < 10 {
		tb.Fatalf("the API server serves %d listable types; the scan cannot be trusted", types)
	}
	for env := range out {
		slices.Sort(out[env])
	}
	return out
}
