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
// deletion of its Run after the Run TTL: the status naming the Run in
// flight, the Run, the status folding it, and the Run's deletion — no
// Event, no Secret read or written. (The runner's writes — claim, Lease,
// status — are the runner's and not counted here.)
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
	assert.ElementsMatch(t, []string{"PUT environments/status", "POST runs", "PUT environments/status", "DELETE runs"}, writes,
		"the operator's writes for a drift check that found no drift")
	assert.NotContains(t, writes, "POST events", "a routine drift check sends no Event")
}

// pokeRun changes an annotation of a Run so the reconcilers look at it.
func (h *harness) pokeRun(name string) {
	h.t.Helper()
	r := &v1alpha1.Run{}
	require.NoError(h.t, h.c.Get(h.ctx(), client.ObjectKey{Namespace: h.ns, Name: name}, r))
	metav1.SetMetaDataAnnotation(&r.ObjectMeta, pokeAnnotation, time.Now().String())
	require.NoError(h.t, h.c.Update(h.ctx(), r))
}
