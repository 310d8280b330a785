package operator

import (
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/operator/internal/jitter"
)

// writeCounter counts the API writes (every method but GET) an operator
// makes about Environments, Runs, Events and Secrets, as "METHOD
// resource[/subresource]"; leader election's Lease renewals are the
// operator's, not an Environment's, and are left out.
type writeCounter struct {
	on     atomic.Bool
	mu     sync.Mutex
	writes []string
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// resourcePath is the resource (and subresource) of a namespaced API path.
var resourcePath = regexp.MustCompile(`/namespaces/[^/]+/(environments|runs|events|secrets)(?:/[^/]+(/status)?)?$`)

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodGet && w.on.Load() {
			if m := resourcePath.FindStringSubmatch(r.URL.Path); m != nil {
				w.mu.Lock()
				w.writes = append(w.writes, r.Method+" "+m[1]+m[2])
				w.mu.Unlock()
			}
		}
		return rt.RoundTrip(r)
	})
}

func (w *writeCounter) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.writes
	w.writes = nil
	return out
}

// TestDriftCheck_QuietCheckWritesLittle counts the operator's API writes
// for one routine drift check that finds no drift, from its slot to the
// deletion of its Run after the Run TTL: the Run (under the name the fold
// of the last Run reserved, status.nextDriftRun, so no status write comes
// before it), the status folding it (and reserving the next name), and the
// Run's deletion — no Event, no Secret read or written. (The runner's
// writes — claim, Lease, status — are the runner's and not counted here.)
func TestDriftCheck_QuietCheckWritesLittle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var wc writeCounter
	h.wrap = wc.wrap
	h.start(Options{Registry: registry, RunTTL: time.Minute})
	env := h.newEnv("quiet", "")
	env.Spec.Drift = &v1alpha1.DriftCheck{Interval: metav1.Duration{Duration: 10 * time.Minute}}
	h.create(env)
	h.waitRun("quiet-1")
	h.finish("quiet-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.waitEnv("quiet", hasCond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded), "Ready")
	// The up's Run is deleted after its TTL before counting starts.
	h.clock.Set(jitter.Due(h.ns+"/quiet", h.clock.Now(), h.clock.Now(), 10*time.Minute).Add(-time.Second))
	h.pokeRun("quiet-1")
	h.eventually(func() bool { return len(h.runs("quiet")) == 0 }, "quiet-1 deleted after its TTL")
	h.poke("quiet")

	wc.on.Store(true)
	h.clock.Advance(time.Second)
	h.poke("quiet")
	h.waitRun("quiet-2")
	h.finish("quiet-2", v1alpha1.RunSucceeded, v1alpha1.ReasonNoDrift, "drift: none found", nil)
	h.waitEnv("quiet", func(e *v1alpha1.Environment) bool {
		return e.Status.LastRun != nil && e.Status.LastRun.Name == "quiet-2" && hasCond(v1alpha1.ConditionDrifted, metav1.ConditionFalse, v1alpha1.ReasonNoDrift)(e)
	}, "quiet-2 folded")
	h.poke("quiet")
	h.clock.Advance(time.Minute)
	h.pokeRun("quiet-2")
	h.eventually(func() bool { return len(h.runs("quiet")) == 0 }, "quiet-2 deleted after its TTL")
	h.poke("quiet")

	writes := wc.take()
	t.Logf("operator writes for one quiet drift check: %v", writes)
	assert.Equal(t, []string{"POST runs", "PUT environments/status", "DELETE runs"}, writes,
		"the operator's writes for a drift check that found no drift, in order")
	env = h.env("quiet")
	assert.Equal(t, "quiet-3", env.Status.NextDriftRun, "the fold of quiet-2 reserved the next check's name")
	assert.Empty(t, env.Status.ActiveRun)
	assert.NotContains(t, writes, "POST events", "a routine drift check sends no Event")
}

// TestDriftCheck_ReservedName: the fold of a Run reserves the next drift
// check's name (status.nextDriftRun); the check is created under it with
// activeRun empty, a spec change waits for the check in flight, and an up
// that comes before the check takes the reserved name.
func TestDriftCheck_ReservedName(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(Options{Registry: registry})
	env := h.newEnv("res", `{"replicas":1}`)
	env.Spec.Drift = &v1alpha1.DriftCheck{Interval: metav1.Duration{Duration: 10 * time.Minute}}
	h.create(env)
	h.waitRun("res-1")
	h.finish("res-1", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	env = h.waitEnv("res", func(e *v1alpha1.Environment) bool { return e.Status.NextDriftRun == "res-2" }, "res-2 reserved")
	assert.Empty(t, env.Status.ActiveRun)
	assert.Equal(t, metav1.ConditionTrue, cond(env, v1alpha1.ConditionReady).Status)

	h.clock.Set(jitter.Due(h.ns+"/res", h.clock.Now(), h.clock.Now(), 10*time.Minute))
	h.poke("res")
	run := h.waitRun("res-2")
	assert.Equal(t, v1alpha1.OpDrift, run.Spec.Operation)
	env = h.env("res")
	assert.Empty(t, env.Status.ActiveRun, "a reserved check is created without a status write")
	assert.Equal(t, "res-2", env.Status.NextDriftRun)

	// A new spec waits for the check in flight.
	h.update("res", func(e *v1alpha1.Environment) { e.Spec.Params.Raw = []byte(`{"replicas":3}`) })
	h.poke("res")
	assert.Len(t, h.runs("res"), 2, "no up while the drift check runs")
	h.finish("res-2", v1alpha1.RunSucceeded, v1alpha1.ReasonNoDrift, "", nil)
	run = h.waitRun("res-3")
	assert.Equal(t, v1alpha1.OpUp, run.Spec.Operation, "the up follows the check")
	env = h.env("res")
	assert.Equal(t, "res-3", env.Status.ActiveRun)
	assert.Empty(t, env.Status.NextDriftRun)
	h.finish("res-3", v1alpha1.RunSucceeded, v1alpha1.ReasonSucceeded, "", nil)
	h.waitEnv("res", func(e *v1alpha1.Environment) bool { return e.Status.NextDriftRun == "res-4" }, "res-4 reserved")

	// An up before the check's slot takes the reserved name: no gap.
	h.update("res", func(e *v1alpha1.Environment) { e.Spec.Params.Raw = []byte(`{"replicas":4}`) })
	run = h.waitRun("res-4")
	assert.Equal(t, v1alpha1.OpUp, run.Spec.Operation)
	env = h.env("res")
	assert.Equal(t, "res-4", env.Status.ActiveRun)
	assert.Empty(t, env.Status.NextDriftRun)
}

// pokeRun changes an annotation of a Run so the reconcilers look at it.
func (h *harness) pokeRun(name string) {
	h.t.Helper()
	r := &v1alpha1.Run{}
	require.NoError(h.t, h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: name}, r))
	metav1.SetMetaDataAnnotation(&r.ObjectMeta, pokeAnnotation, time.Now().String())
	require.NoError(h.t, h.c.Update(h.ctx(), r))
}
