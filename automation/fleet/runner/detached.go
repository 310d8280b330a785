package runner

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// Detached executes Runs that are not stored in the API server: the
// operator's destroy of an Environment whose namespace is being deleted,
// where Kubernetes refuses to create the destroy Run (and its Lease).
// There is no claim and no Lease: the caller is the only one that acts on
// the Environment (the operator's leader, one pass at a time), and the
// backend's stack lock still refuses a second engine. Without a Lease
// there is no fence file either: its engine runs unfenced.
type Detached struct {
	cfg *rest.Config
	o   Options
}

// NewDetached returns an executor of detached Runs with the runner options
// o (Registry, Engine, WorkDir: the same WorkDir as the runners', since the
// state records the target kubeconfig's path there). The options are
// checked as New checks them.
func NewDetached(cfg *rest.Config, o Options) (*Detached, error) {
	r, err := New(cfg, o)
	if err != nil {
		return nil, err
	}
	return &Detached{cfg: r.cfg, o: r.o}, nil
}

// Execute runs the Run's operation under its timeout, reading its Secrets
// with secrets (get only), and returns the status it ends with (Succeeded
// or Failed, with reason and message; never a secret).
func (d *Detached) Execute(ctx context.Context, secrets client.Reader, run *v1alpha1.Run) v1alpha1.RunStatus {
	r, err := New(d.cfg, d.o)
	if err != nil {
		var res result
		res.fail(err, nil)
		s := v1alpha1.RunStatus{}
		res.apply(&s)
		return s
	}
	r.api = secrets
	log := r.log.With("run", key(run).String(), "detached", true)
	start := metav1.Now()
	res := r.performWithin(ctx, run, takeover{}, "", log)
	done := metav1.Now()
	s := v1alpha1.RunStatus{Runner: r.o.Identity, RunnerHost: r.o.Host, Attempts: 1, StartTime: &start}
	res.apply(&s)
	s.CompletionTime = &done
	return s
}
