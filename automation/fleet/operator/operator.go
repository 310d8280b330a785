// Package operator is the fleet's operator: a controller-runtime manager
// whose Environment reconciler turns Environments (slipway.dev/v1alpha1)
// into Runs, one at a time per Environment, and folds each finished Run
// back into the Environment's status and conditions; its Run reconciler
// deletes finished Runs after their TTL. Runners (package runner) execute
// the Runs.
//
// The reconcilers are level-based: every pass derives what to do from the
// objects as they are (never from the event that caused it), writes the
// Environment's status with optimistic concurrency (a conflict requeues),
// and only then creates a Run, so a stale cache or a second operator can
// never create two Runs for one Environment.
//
// Deletion follows spec.deletionPolicy: destroy (the default, but for
// prod-kind Environments and those whose kind cannot be resolved) runs a
// destroy Run and then removes the finalizer; orphan removes it at once
// and records where the stack is kept. The Secrets a destroy reads carry
// the Environment's finalizer until then, so deleting the whole namespace
// completes: Kubernetes refuses the destroy Run in a terminating
// namespace, and the operator runs that destroy itself (Options.Destroy).
// A new revision (spec, Git commit, or the definition's version in the
// binary) clears Stalled.
package operator

import (
	"context"
	"fmt"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/gitsource"
)

// Name is the operator's name: its leader election ID and the reporting
// controller of its Events.
const Name = "slipway-operator"

// DefaultNamespace is where the leader election Lease lives unless
// ManagerOptions.LeaderElectionNamespace says otherwise.
const DefaultNamespace = "slipway-system"

// Defaults of Options and of an Environment's spec.
const (
	// DefaultBackoff is the wait after the first failed Run.
	DefaultBackoff = 10 * time.Second
	// DefaultMaxBackoff caps the doubling wait.
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultMaxFailures failed Runs in a row stall an Environment.
	DefaultMaxFailures = 5
	// DefaultRunTTL is how long a finished Run is kept.
	DefaultRunTTL = time.Hour
	// DefaultSourceInterval is the Git source's poll interval.
	DefaultSourceInterval = time.Minute
)

// Condition reasons the operator sets besides the Run reasons of package
// v1alpha1 (ReasonSucceeded, ReasonFailed, ReasonInvalidSpec, ...).
const (
	// ReasonRetriesExhausted: Stalled after MaxFailures failed Runs in a row.
	ReasonRetriesExhausted = "RetriesExhausted"
	// ReasonSourceFailed: the Git source could not be read.
	ReasonSourceFailed = "SourceFailed"
	// ReasonRunning: Reconciling while a Run is in flight.
	ReasonRunning = "Running"
	// ReasonIdle: nothing to do until the next drift check or source poll.
	ReasonIdle = "Idle"
	// ReasonBackingOff: waiting for status.nextAttempt after a failure.
	ReasonBackingOff = "BackingOff"
	// ReasonSuspended: spec.suspend stops new Runs.
	ReasonSuspended = "Suspended"
	// ReasonStalled: Reconciling is False because Stalled is True.
	ReasonStalled = "Stalled"
	// ReasonProgressing: Ready is Unknown until the first up finishes.
	ReasonProgressing = "Progressing"
	// ReasonRetryRequested: the retry annotation cleared Stalled.
	ReasonRetryRequested = "RetryRequested"
	// ReasonSpecChanged: a new generation cleared Stalled.
	ReasonSpecChanged = "SpecChanged"
	// ReasonDestroying: the Environment is being deleted.
	ReasonDestroying = "Destroying"
	// ReasonOrphaned: the Environment was deleted with deletion policy
	// orphan; its stack is kept.
	ReasonOrphaned = "Orphaned"
	// ReasonRevisionChanged: a new revision (Git commit or definition
	// version) cleared Stalled.
	ReasonRevisionChanged = "RevisionChanged"
	// ReasonNamespaceTerminating: a destroy Run cannot be created in a
	// namespace being deleted.
	ReasonNamespaceTerminating = "NamespaceTerminating"
)

// Event reasons, one per transition.
const (
	// EventRunCreated: a Run was created.
	EventRunCreated = "RunCreated"
	// EventRunSucceeded: a Run succeeded.
	EventRunSucceeded = "RunSucceeded"
	// EventRunFailed: a Run failed.
	EventRunFailed = "RunFailed"
	// EventReady: Ready became True.
	EventReady = "Ready"
	// EventDriftDetected: a drift check found drift it did not correct.
	EventDriftDetected = "DriftDetected"
	// EventDriftRemediated: a drift check corrected drift.
	EventDriftRemediated = "DriftRemediated"
	// EventPolicyBlocked: policy blocked a Run.
	EventPolicyBlocked = "PolicyBlocked"
	// EventStalled: the operator stopped trying.
	EventStalled = "Stalled"
	// EventInvalidSpec: the spec was refused before any Run.
	EventInvalidSpec = "InvalidSpec"
	// EventExpired: spec.ttl passed; the Environment is deleted.
	EventExpired = "Expired"
	// EventDestroyed: the stack is destroyed; the finalizer is removed.
	EventDestroyed = "Destroyed"
	// EventOrphaned: the Environment was deleted without destroying its
	// stack (deletion policy orphan); the message says where it is kept.
	EventOrphaned = "Orphaned"
	// EventSourceUpdated: the Git source has a new commit.
	EventSourceUpdated = "SourceUpdated"
	// EventSourceFailed: the Git source could not be read.
	EventSourceFailed = "SourceFailed"
	// EventRetry: the retry annotation reset the failures.
	EventRetry = "RetryRequested"
)

// Options configure the reconcilers; zero fields take the defaults.
type Options struct {
	// Registry holds the definitions and policy packs an Environment may name.
	Registry fleet.Registry
	// Git reads an Environment's Git source (default gitsource.Fetch).
	Git func(context.Context, gitsource.Source) (gitsource.Result, error)
	// Backoff is the wait after the first failed Run, doubled after each
	// further one up to MaxBackoff (defaults 10s and 5m); an
	// Environment's spec.retry wins.
	Backoff, MaxBackoff time.Duration
	// MaxFailures failed Runs in a row make an Environment Stalled (default 5).
	MaxFailures int32
	// RunTTL is how long a finished Run is kept when its
	// spec.ttlSecondsAfterFinished is unset; new Runs get it (default 1h).
	RunTTL time.Duration
	// Destroy, when set, runs the destroy of an Environment whose namespace
	// is being deleted (Kubernetes refuses new Runs there) in the operator
	// itself, reading the Secrets with secrets; it returns the status the
	// Run ends with (runner.Detached.Execute). Unset, such an Environment
	// is Stalled with reason NamespaceTerminating, saying how to finish.
	Destroy func(ctx context.Context, secrets client.Reader, run *v1alpha1.Run) v1alpha1.RunStatus
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Logger logs (default slog.Default()).
	Logger *slog.Logger
	// AllowRunnerCredentials are the namespaces whose Environments may omit
	// spec.target.kubeconfigSecretRef and so run their programs with the
	// runners' own cluster credentials (flag --allow-runner-credentials;
	// the runners must allow them too). Any other such Environment is
	// refused: InvalidSpec on spec.target.kubeconfigSecretRef.
	AllowRunnerCredentials []string

	// namespaces are the namespaces the reconcilers act on (Run sets
	// them from ManagerOptions.Namespaces; empty: all).
	namespaces fleet.Namespaces

	// onReconciled, when set, sees every Environment a pass of the
	// reconciler finished without error or conflict (for tests).
	onReconciled func(*v1alpha1.Environment)
}

func (o Options) withDefaults() Options {
	if o.Git == nil {
		o.Git = gitsource.Fetch
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = DefaultMaxFailures
	}
	if o.RunTTL <= 0 {
		o.RunTTL = DefaultRunTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// now is the clock read to whole seconds, the precision the API stores
// times with, so what a pass computes is what the next one reads back.
func (o Options) now() time.Time { return o.Now().Truncate(time.Second) }

// ManagerOptions configure the manager Run starts.
type ManagerOptions struct {
	// LeaderElection makes one operator process of many active.
	LeaderElection bool
	// LeaderElectionNamespace holds the Lease (default slipway-system).
	LeaderElectionNamespace string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election
	// (controller-runtime's defaults 15s, 10s, 2s when zero).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// MetricsBindAddress serves /metrics, e.g. ":8080" (empty: off).
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz, e.g. ":8081"
	// (empty: off).
	HealthProbeBindAddress string
	// PprofBindAddress serves Go's profiles (net/http/pprof under
	// /debug/pprof/), e.g. "127.0.0.1:6060" (empty: off). Profiles show
	// the operator's code and data, never Secrets' values (Secrets are not
	// cached), but bind it to loopback or a port only operators reach.
	PprofBindAddress string
	// Namespaces are the namespaces the operator serves (the namespaced
	// install mode): its cache lists and watches Environments and Runs
	// there only, and an Environment or Run of any other namespace is
	// refused (logged, never reconciled). Empty: every namespace (the
	// cluster-wide mode, which needs cluster-wide RBAC).
	Namespaces []string
	// Identity is this operator's holder identity in the leader election
	// Lease (default controller-runtime's "<hostname>_<uuid>"); give each
	// operator a unique one, e.g. its pod name.
	Identity string
	// QPS and Burst are the operator's client-side budget of API requests
	// (zero: the rest.Config's own limits, else DefaultQPS and
	// DefaultBurst). Negative QPS turns client-side throttling off,
	// leaving the API server's priority and fairness to pace it.
	QPS   float32
	Burst int
}

// The operator's default client budget. Its reconcilers run at most
// MaxConcurrentReconciles requests at once, so the budget only paces
// bursts: at 50 requests/s (the runners' fleet.DefaultQPS) a fleet of
// 1,000 new Environments — about five requests each — waited ≈ 100 s for
// its own throttle (see docs/performance.md).
const (
	DefaultQPS   = 300
	DefaultBurst = 600
)

var setLoggerOnce sync.Once

// Run runs the operator until ctx is done: a manager with the Environment
// and Run reconcilers, leader election (ID "slipway-operator", released on
// cancel) and health checks. Secrets are never cached: the Git
// credentials are read with the manager's uncached API reader.
func Run(ctx context.Context, cfg *rest.Config, o Options, m ManagerOptions) error {
	cfg = rest.CopyConfig(cfg)
	switch {
	case m.QPS != 0:
		cfg.QPS, cfg.Burst, cfg.RateLimiter = m.QPS, max(m.Burst, int(m.QPS)), nil
	case cfg.QPS == 0 && cfg.RateLimiter == nil:
		cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	}
	o = o.withDefaults()
	log := logr.FromSlogHandler(o.Logger.Handler())
	setLoggerOnce.Do(func() { ctrllog.SetLogger(log) })
	scheme, err := fleet.Scheme()
	if err != nil {
		return err
	}
	mo := manager.Options{
		Scheme:                        scheme,
		Logger:                        log,
		LeaderElection:                m.LeaderElection,
		LeaderElectionID:              Name,
		LeaderElectionNamespace:       m.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Metrics:                       metricsserver.Options{BindAddress: m.MetricsBindAddress},
		HealthProbeBindAddress:        m.HealthProbeBindAddress,
		PprofBindAddress:              m.PprofBindAddress,
		Client: client.Options{Cache: &client.CacheOptions{
			// Secrets are read with get only (RBAC), never listed or watched.
			DisableFor: []client.Object{&corev1.Secret{}},
		}},
		// One process may run several managers (tests do).
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if mo.LeaderElectionNamespace == "" {
		mo.LeaderElectionNamespace = DefaultNamespace
	}
	if mo.Metrics.BindAddress == "" {
		mo.Metrics.BindAddress = "0"
	}
	for _, d := range []struct {
		to **time.Duration
		v  time.Duration
	}{{&mo.LeaseDuration, m.LeaseDuration}, {&mo.RenewDeadline, m.RenewDeadline}, {&mo.RetryPeriod, m.RetryPeriod}} {
		if d.v > 0 {
			*d.to = ptr.To(d.v)
		}
	}
	ns := fleet.Namespaces(m.Namespaces)
	if err := ns.Check("operator: ManagerOptions.Namespaces"); err != nil {
		return err
	}
	o.namespaces = ns
	mo.Cache = cache.Options{DefaultNamespaces: ns.Cache()}
	if m.LeaderElection && m.Identity != "" {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("operator: %w", err)
		}
		lock, err := resourcelock.New(resourcelock.LeasesResourceLock, mo.LeaderElectionNamespace, Name,
			cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: m.Identity})
		if err != nil {
			return fmt.Errorf("operator: leader election lock: %w", err)
		}
		mo.LeaderElectionResourceLockInterface = lock
	}
	mgr, err := ctrl.NewManager(cfg, mo)
	if err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	if err := (&EnvironmentReconciler{Options: o}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	if err := (&RunReconciler{Options: o}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	synced := func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("caches not synced")
		}
		return nil
	}
	if err := mgr.AddReadyzCheck("caches", synced); err != nil {
		return err
	}
	o.Logger.Info("operator starting", "leaderElection", m.LeaderElection, "namespaces", namespacesLog(ns))
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	return nil
}

// namespacesLog is how logs name the namespaces served.
func namespacesLog(ns fleet.Namespaces) string {
	if ns.All() {
		return "all"
	}
	return ns.String()
}

// refused reports (and logs) whether an object of namespace ns is outside
// the namespaces the operator serves.
func (o Options) refused(kind string, req ctrl.Request) bool {
	if o.namespaces.Serves(req.Namespace) {
		return false
	}
	o.Logger.Warn("refused: the operator does not serve this namespace", "kind", kind,
		"object", req.String(), "namespaces", o.namespaces.String())
	return true
}
