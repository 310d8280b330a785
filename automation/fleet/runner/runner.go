// Package runner executes the fleet's Runs (slipway.dev/v1alpha1): any
// number of runner processes watch Runs, claim a Pending one with an
// optimistic status update (a Conflict means another runner won), hold a
// coordination.k8s.io Lease named "run-<run>" for it while the engine runs
// its operation, and write the outcome into the Run's status. A Run whose
// Lease stops being renewed (its runner died) is taken over by another
// runner, which proves the dead runner's stack locks stale
// (automation.WithDeadHosts) before running it again.
//
// At most one engine writes a stack's backend at any instant, even when a
// runner is paused (SIGSTOP, a GC pause) or cut off from the API server
// and then resumes: a runner's engine is fenced by RenewDeadline, counted
// from the start of its last successful renewal. Past it a watchdog timer
// (independent of the renewal calls) kills the engine's whole process tree
// (CLI and plugins, automation.ErrKill), and the engine Slipway builds
// refuses every write, copy and delete to the backend by itself (the fence
// file, see package fence and automation.WithFence), as do Slipway's own
// records. Another runner takes over only after seeing the Lease
// unrenewed for its own LeaseDuration (never the Lease's
// leaseDurationSeconds), which is longer. The residual window: a request
// that passed the fence check before the deadline and reaches the backend
// more than LeaseDuration-RenewDeadline later (a pause between the check
// and the request's last byte); the write's context ends at the deadline,
// but a request already sent in full may still be applied. No clocks need
// to agree across hosts (each runner measures durations on its own clock,
// and a runner and its engine share a host), only to run at about the same
// rate; a wall-clock jump on a runner's host moves its engine's fence.
//
// Each Run is bounded by its spec.timeout (the Environment's
// spec.runTimeout, default 1h): past it the engine is stopped and the Run
// fails with reason Timeout. A Run whose definition this binary does not have
// (runners and operator rolled at different times) is left Pending for a
// runner that has it, with an Event, never failed.
//
// Runners of one fleet must use the same WorkDir path: the target cluster's
// kubeconfig is written there, at a path per environment that the state
// records in the Kubernetes provider's configuration.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/runner/internal/lease"
)

// Options configure a Runner.
type Options struct {
	// Identity names the runner in Run status and Lease holders (default
	// "<hostname>-<pid>"). It must be unique among the fleet's runners.
	Identity string
	// Host is the hostname the backend's locks record for this runner's
	// engine processes (default os.Hostname).
	Host string
	// Namespaces are the namespaces the runner serves (the namespaced
	// install mode): it lists and watches Runs there only, and refuses
	// (never executes) a Run of any other namespace. A Run's Lease is
	// always created in the Run's own namespace. Empty: every namespace
	// (the cluster-wide mode, which needs cluster-wide RBAC).
	Namespaces []string
	// Concurrency bounds the Runs executing at once (default 2).
	Concurrency int
	// LeaseDuration is how long a Run's Lease stays valid without renewal
	// (default 15s): another runner takes the Run over after observing it
	// unrenewed this long, by its own clock and its own LeaseDuration (a
	// Lease's leaseDurationSeconds is ignored). Runners of a fleet must use
	// the same LeaseDuration and RenewDeadline.
	LeaseDuration time.Duration
	// RenewDeadline (default 2/3 of LeaseDuration; at least 1/4 of it and
	// shorter than it) bounds the engine of a Run whose Lease is not
	// renewed: the Lease is renewed every RenewDeadline/2, and once
	// RenewDeadline has passed since the start of the last successful
	// renewal, the engine's whole process tree is killed and its backend
	// writes are refused (the fence file's deadline). LeaseDuration minus
	// RenewDeadline is the margin for a paused runner.
	RenewDeadline time.Duration
	// Registry holds the definitions and policy packs Runs name.
	Registry fleet.Registry
	// Engine are options every Run's engine gets (the toolchain resolver,
	// WithAnalyzer, WithPlugin, ...); the runner adds WithDir, WithBackend,
	// WithPassphrase, WithEnv and, on a takeover, WithDeadHosts per Run.
	Engine []automation.EngineOption
	// WorkDir holds each Run's engine directory (removed after the Run) and
	// the target kubeconfigs (default $TMPDIR/slipway-runner). Every runner
	// of a fleet must use the same path.
	WorkDir string
	// Logger receives the runner's logs (default slog.Default()).
	Logger *slog.Logger
	// AllowRunnerCredentials are the namespaces whose Runs may omit
	// spec.target.kubeconfigSecretRef and so run their programs with this
	// runner's own cluster credentials (flag --allow-runner-credentials);
	// a Run of any other namespace without it is refused (fleet.CheckTarget).
	AllowRunnerCredentials []string
	// StandIn, for simulations only, makes the runner complete every Run
	// it claims after this fixed delay without an engine: no Secret is
	// read, no program built, no backend or cluster touched, and the Run
	// succeeds with a plausible result (no changes, no drift). Claims,
	// Leases, status writes and Events stay real, so a simulation measures
	// the operator, the runners' API traffic and the API server at a scale
	// no engine could run on one machine. No flag or configuration file
	// sets it: only a program embedding the runner can (zero: off).
	StandIn time.Duration
}

// Runner is a controller-runtime reconciler of Runs that claims and
// executes them.
type Runner struct {
	cfg *rest.Config
	o   Options
	log *slog.Logger

	// client reads Runs from the manager's cache and writes them;
	// api reads Secrets and fresh Runs (get only) without a cache.
	client client.Client
	api    client.Reader
	events events.EventRecorder

	// leases holds, renews and takes over the Runs' Leases, read and
	// written without a cache.
	leases *lease.Keeper
}

// New returns a runner for the cluster cfg names; SetupWithManager then
// registers it (or Run does both).
func New(cfg *rest.Config, o Options) (*Runner, error) {
	if cfg == nil {
		return nil, errors.New("runner: New needs the cluster's rest.Config")
	}
	if o.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("runner: Options.Host is empty and the hostname is unknown: %w", err)
		}
		o.Host = h
	}
	if o.Identity == "" {
		o.Identity = o.Host + "-" + strconv.Itoa(os.Getpid())
	}
	if o.Concurrency == 0 {
		o.Concurrency = 2
	}
	if o.Concurrency < 0 {
		return nil, fmt.Errorf("runner: Options.Concurrency %d is negative; use 1 or more", o.Concurrency)
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.LeaseDuration < time.Second {
		return nil, fmt.Errorf("runner: Options.LeaseDuration %s is below 1s; use e.g. 15s", o.LeaseDuration)
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = o.LeaseDuration * 2 / 3
	}
	if o.RenewDeadline >= o.LeaseDuration || o.RenewDeadline < o.LeaseDuration/4 {
		return nil, fmt.Errorf("runner: Options.RenewDeadline %s must be shorter than Options.LeaseDuration %s and at least a quarter of it; "+
			"use e.g. %s (0 = 2/3 of LeaseDuration)", o.RenewDeadline, o.LeaseDuration, o.LeaseDuration*2/3)
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(os.TempDir(), "slipway-runner")
	}
	dir, err := filepath.Abs(o.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("runner: Options.WorkDir %q: %w", o.WorkDir, err)
	}
	o.WorkDir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("runner: Options.WorkDir: %w", err)
	}
	if err := fleet.Namespaces(o.Namespaces).Check("runner: Options.Namespaces"); err != nil {
		return nil, err
	}
	if o.StandIn < 0 {
		return nil, fmt.Errorf("runner: Options.StandIn %s is negative; use 0 (off: Runs use the engine)", o.StandIn)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StandIn > 0 {
		o.Logger.Warn("runner: STAND-IN mode for simulations: Runs succeed without an engine", "delay", o.StandIn)
	}
	return &Runner{cfg: rest.CopyConfig(cfg), o: o, log: o.Logger.With("runner", o.Identity),
		leases: &lease.Keeper{Identity: o.Identity, Duration: o.LeaseDuration, RenewDeadline: o.RenewDeadline,
			FenceDir: filepath.Join(o.WorkDir, "fences")}}, nil
}

// Identity returns the runner's identity.
func (r *Runner) Identity() string { return r.o.Identity }

// SetupWithManager registers the runner as the manager's Run controller
// with Concurrency workers. A reconcile blocks while its Run executes,
// which bounds the Runs executing at once. Secrets are read with the
// manager's API reader (never cached) and Leases with a client of their
// own, so the manager's cache only needs Runs.
func (r *Runner) SetupWithManager(mgr ctrl.Manager) error {
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient()})
	if err != nil {
		return fmt.Errorf("runner: client: %w", err)
	}
	r.client, r.leases.Client, r.api = mgr.GetClient(), direct, mgr.GetAPIReader()
	r.events = mgr.GetEventRecorder("slipway-runner")
	active := predicate.NewPredicateFuncs(func(o client.Object) bool {
		run, ok := o.(*v1alpha1.Run)
		return ok && !run.Status.Phase.Finished() && fleet.Namespaces(r.o.Namespaces).Serves(run.Namespace)
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("run").
		For(&v1alpha1.Run{}, builder.WithPredicates(active)).
		// Several runners may share a process (tests, embedding): the
		// controller name only labels metrics.
		WithOptions(controller.Options{MaxConcurrentReconciles: r.o.Concurrency, SkipNameValidation: ptr.To(true)}).
		Complete(r)
}

// Run starts a runner in its own manager, without leader election (every
// runner works), serving metrics on metricsAddr and health probes
// (/healthz, /readyz) on probeAddr ("0" disables either), until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options, metricsAddr, probeAddr string) error {
	cfg = fleet.ClientConfig(cfg)
	r, err := New(cfg, o)
	if err != nil {
		return err
	}
	scheme, err := fleet.Scheme()
	if err != nil {
		return err
	}
	copts := cache.Options{DefaultNamespaces: fleet.Namespaces(r.o.Namespaces).Cache()}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logr.FromSlogHandler(r.log.Handler()),
		LeaderElection:         false,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		Cache:                  copts,
		// RBAC grants only get on Secrets: never list or watch them.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &coordinationv1.Lease{}}}},
	})
	if err != nil {
		return fmt.Errorf("runner: manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	r.log.Info("runner starting", "namespaces", fleet.Namespaces(r.o.Namespaces).String(), "concurrency", r.o.Concurrency, "leaseDuration", r.o.LeaseDuration)
	return mgr.Start(ctx)
}

// Reconcile claims a Pending Run and executes it, or checks whether the
// runner of a Claimed or Running Run still holds its Lease and takes the
// Run over when it does not. Finished Runs are never touched.
func (r *Runner) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if !fleet.Namespaces(r.o.Namespaces).Serves(req.Namespace) {
		// The cache and the predicate keep such Runs away; a Run reaching
		// here anyway (an embedding's own manager) is refused.
		r.log.Warn("refused a run outside the runner's namespaces", "run", req.String(), "namespaces", fleet.Namespaces(r.o.Namespaces).String())
		return ctrl.Result{}, nil
	}
	var run v1alpha1.Run
	if err := r.client.Get(ctx, req.NamespacedName, &run); err != nil {
		if apierrors.IsNotFound(err) {
			r.leases.Forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	switch run.Status.Phase {
	case "", v1alpha1.RunPending:
		return r.claim(ctx, &run)
	case v1alpha1.RunClaimed, v1alpha1.RunRunning:
		if res, skip := r.unknownDefinition(&run); skip {
			return res, nil
		}
		return r.checkLease(ctx, &run)
	default:
		r.leases.Forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
}

// claim takes a Pending Run with a status update on the version read: a
// Conflict means another runner (or a newer version) won, and the claim is
// not retried. A claimed Run is executed; when it ends without an outcome
// (lost Lease), the Run is checked again after LeaseDuration.
func (r *Runner) claim(ctx context.Context, cached *v1alpha1.Run) (ctrl.Result, error) {
	if ok, err := r.admit(ctx, cached); !ok || err != nil {
		return ctrl.Result{}, err
	}
	// Admitted first: a hand-made Run naming an unknown definition is
	// rejected, not left waiting for a runner that has it.
	if res, skip := r.unknownDefinition(cached); skip {
		return res, nil
	}
	run := cached.DeepCopy()
	now := metav1.Now()
	run.Status.Phase = v1alpha1.RunClaimed
	run.Status.Runner, run.Status.RunnerHost = r.o.Identity, r.o.Host
	run.Status.Attempts++
	run.Status.ClaimTime = &now
	run.Status.Lease = lease.Name(run)
	if err := r.client.Status().Update(ctx, run); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			r.log.Debug("claim lost", "run", key(run), "error", err)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("runner: claiming run %s: %w", key(run), err)
	}
	log := r.log.With("run", key(run).String(), "attempt", run.Status.Attempts)
	since := time.Now()
	held, err := r.leases.Acquire(ctx, run)
	if err != nil {
		// Without its Lease the Run is taken over after LeaseDuration (by
		// any runner, this one included).
		log.Error("claimed a run but could not create its lease", "error", err)
		return ctrl.Result{}, err
	}
	log.Info("claimed run", "operation", run.Spec.Operation, "environment", run.Spec.Environment)
	// A routine drift check's claim is in its status only: at thousands of
	// Environments its Events would be most of the fleet's writes.
	if run.Spec.Operation != v1alpha1.OpDrift {
		r.event(run, corev1.EventTypeNormal, "Claimed", "Claim", fmt.Sprintf("runner %s on %s claimed the run (attempt %d)", r.o.Identity, r.o.Host, run.Status.Attempts))
	}
	return r.execute(ctx, run, held, since, takeover{}, log), nil
}

// takeover is what a Run taken over from another runner carries into its
// execution.
type takeover struct {
	// from is the previous runner and host its host.
	from, host string
}

// deadHosts are the hosts an expired Lease proves dead: the previous
// runner's, when it is not this runner's (on the same host the PID
// liveness check decides).
func (t takeover) deadHosts(self string) []string {
	if t.host == "" || t.host == self {
		return nil
	}
	return []string{t.host}
}

// event records an Event on the Run; messages never hold secrets.
func (r *Runner) event(run *v1alpha1.Run, typ, reason, action, msg string) {
	if r.events != nil {
		r.events.Eventf(run, nil, typ, reason, action, "%s", msg)
	}
}

func key(run *v1alpha1.Run) types.NamespacedName {
	return types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
}
