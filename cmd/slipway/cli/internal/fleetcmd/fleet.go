package fleetcmd

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/install"
	"github.com/slipwayhq/slipway/automation/fleet/operator"
	"github.com/slipwayhq/slipway/automation/fleet/runner"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/integration/localk8s"
)

// managerFlags are the flags every fleet process takes.
type managerFlags struct {
	kubeconfig, metrics, probes string
}

func (f *managerFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster holding the Environments (default $KUBECONFIG, ~/.kube/config, or in-cluster)")
	cmd.Flags().StringVar(&f.metrics, "metrics-bind-address", ":8080", "address of /metrics (0 turns it off)")
	cmd.Flags().StringVar(&f.probes, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 turns them off)")
}

// newOperatorCmd is the operator verb (and its install): the fleet's controller.
func newOperatorCmd(g *app.Globals) *cobra.Command {
	var mf managerFlags
	var o operator.Options
	var m operator.ManagerOptions
	var watch string
	var workDir string
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Reconcile Environment objects (slipway.dev/v1alpha1) into Runs; leader-elected, run several",
		Long: `Run the fleet's operator: it watches Environments and creates the Runs
that runners execute (an up on a spec or Git change, drift checks on their
interval, a destroy on deletion or TTL expiry), with back-off and Stalled
after repeated failures. Run two or more for availability: one leads
(a coordination.k8s.io Lease), the others wait. Install the CRDs and RBAC
first: ` + "`operator install`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDurations(map[string]time.Duration{"--backoff": o.Backoff, "--max-backoff": o.MaxBackoff,
				"--run-ttl": o.RunTTL, "--lease-duration": m.LeaseDuration, "--renew-deadline": m.RenewDeadline, "--retry-period": m.RetryPeriod}); err != nil {
				return err
			}
			if m.RenewDeadline >= m.LeaseDuration {
				return app.BadInput("--renew-deadline %s must be shorter than --lease-duration %s", m.RenewDeadline, m.LeaseDuration)
			}
			if o.MaxFailures < 1 {
				return app.BadInput("--max-failures %d must be at least 1", o.MaxFailures)
			}
			ns, err := fleet.ParseNamespaces("--watch-namespaces", watch)
			if err != nil {
				return app.BadInput("%v", err)
			}
			m.Namespaces = ns
			if err := checkNamespaces(o.AllowRunnerCredentials); err != nil {
				return err
			}
			cfg, err := app.RestConfig(mf.kubeconfig)
			if err != nil {
				return err
			}
			o.Registry = g.Registry()
			o.Logger = g.FleetLogger("operator")
			if o.Destroy, err = detachedDestroy(g, cfg, o.Registry, workDir, o.AllowRunnerCredentials, o.Logger); err != nil {
				return err
			}
			m.MetricsBindAddress, m.HealthProbeBindAddress = mf.metrics, mf.probes
			return operator.Run(cmd.Context(), cfg, o, m)
		},
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&m.LeaderElection, "leader-elect", true, "elect one leader among the operators (turn off only for a single operator)")
	f.StringVar(&m.LeaderElectionNamespace, "leader-election-namespace", "slipway-system", "namespace of the leader election Lease")
	f.StringVar(&m.PprofBindAddress, "pprof-bind-address", "", "address of Go's profiles, /debug/pprof/ (default off; bind to loopback, e.g. 127.0.0.1:6060)")
	f.StringVar(&m.Identity, "identity", "", "this operator's identity in the leader election (default <hostname>_<random>)")
	f.Float32Var(&m.QPS, "kube-api-qps", operator.DefaultQPS, "API requests per second the operator may send (negative: no client-side limit; the API server's priority and fairness paces it)")
	f.IntVar(&m.Burst, "kube-api-burst", operator.DefaultBurst, "API requests the operator may send at once above --kube-api-qps")
	f.StringVar(&watch, "watch-namespaces", "", "serve only these namespaces, comma-separated (the namespaced install mode; Environments elsewhere are refused); default: every namespace")
	f.DurationVar(&m.LeaseDuration, "lease-duration", 15*time.Second, "how long a leader's Lease lasts without renewal: the take-over time when a leader dies")
	f.DurationVar(&m.RenewDeadline, "renew-deadline", 10*time.Second, "how long the leader tries to renew before it gives up leading")
	f.DurationVar(&m.RetryPeriod, "retry-period", 2*time.Second, "how often candidates try to acquire or renew the Lease")
	f.DurationVar(&o.Backoff, "backoff", 10*time.Second, "wait after an Environment's first failed run; doubles after each further one (spec.retry.backoff wins)")
	f.DurationVar(&o.MaxBackoff, "max-backoff", 5*time.Minute, "longest wait between failed runs (spec.retry.maxBackoff wins)")
	f.Int32Var(&o.MaxFailures, "max-failures", 5, "failed runs in a row before an Environment is Stalled (spec.retry.maxFailures wins)")
	f.DurationVar(&o.RunTTL, "run-ttl", time.Hour, "how long finished Runs are kept (spec.ttlSecondsAfterFinished wins)")
	f.StringSliceVar(&o.AllowRunnerCredentials, "allow-runner-credentials", nil, allowRunnerCredentialsUsage)
	f.StringVar(&workDir, "work-dir", "", "the runners' --work-dir: where the operator destroys an Environment whose namespace is being deleted (default <dir>/runner)")
	cmd.AddCommand(newInstallCmd(g))
	return cmd
}

func newInstallCmd(g *app.Globals) *cobra.Command {
	var kubeconfig, watch, kustomize string
	var print, clusterWide bool
	var o install.Options
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Apply the fleet's CRDs and least-privilege RBAC to a cluster (--print: write every manifest, Deployments included; --kustomize: a kustomize base and overlays)",
		Long: `Install the fleet. Choose the mode explicitly:

  --watch-namespaces a,b  the namespaced mode: the operator and runners serve
                          these namespaces only, with Roles and RoleBindings
                          there (no ClusterRole); recommended in a shared cluster.
  --cluster-wide          ClusterRoles: the fleet serves every namespace, and
                          its runners may read any Secret and write Leases in
                          any namespace, kube-system included.

Without --print or --kustomize it applies the CRDs and RBAC (server-side
apply). --kustomize DIR writes DIR/base, DIR/overlays/cluster-wide and, with
--watch-namespaces, DIR/overlays/namespaced (Deployments,
PodDisruptionBudgets and NetworkPolicies included); build one with
kustomize build or kubectl apply -k. --print and --kustomize need --image,
the image of your binary that ` + "`image build`" + ` makes (there is no default
image); it accepts repo@sha256:... and keeps the digest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Operators < 1 || o.Runners < 1 || o.RunnerConcurrency < 1 {
				return app.BadInput("--operators, --runners and --runner-concurrency must be at least 1")
			}
			switch {
			case clusterWide && watch != "":
				return app.BadInput("--cluster-wide and --watch-namespaces exclude each other; give one")
			case !clusterWide && watch == "":
				return app.BadInput("choose the install mode: --watch-namespaces a,b (Roles in those namespaces only; recommended in a shared cluster) or --cluster-wide (ClusterRoles: the runners may read every Secret in the cluster)")
			case print && kustomize != "":
				return app.BadInput("--print and --kustomize exclude each other; give one")
			case (print || kustomize != "") && o.Image == "":
				// No default image: the Deployments run the team's own binary.
				return app.BadInput("--image is required with --print and --kustomize (there is no default image: it holds your binary); "+
					"build it with `%s image build --main ./cmd/yours --push REPOSITORY` and pass its digest, e.g. --image REPOSITORY@sha256:...", g.Config.Name)
			}
			ns, err := fleet.ParseNamespaces("--watch-namespaces", watch)
			if err != nil {
				return app.BadInput("%v", err)
			}
			o.WatchNamespaces, o.ClusterWide = ns, clusterWide
			if kustomize != "" {
				overlays, err := install.WriteKustomize(kustomize, o)
				if err != nil {
					return err
				}
				g.Add(app.Item{Operation: "operator install", Status: "succeeded"})
				fmt.Fprintf(g.Errw, "%s: wrote the kustomize base and overlays %v\n", g.Config.Name, overlays)
				return nil
			}
			if print {
				objs, err := install.Manifests(o)
				if err != nil {
					return err
				}
				return install.Write(g.Out, objs)
			}
			cfg, err := app.RestConfig(kubeconfig)
			if err != nil {
				return err
			}
			crds, err := install.CRDs()
			if err != nil {
				return err
			}
			rbac, err := install.RBAC(o)
			if err != nil {
				return err
			}
			if err := install.Apply(cmd.Context(), cfg, append(crds, rbac...)); err != nil {
				return err
			}
			g.Add(app.Item{Operation: "operator install", Status: "succeeded"})
			mode := "cluster-wide"
			if len(o.WatchNamespaces) > 0 {
				mode = "namespaced: " + ns.String()
			}
			fmt.Fprintf(g.Errw, "%s: installed %d CRDs and the operator's and runners' RBAC (namespace %s, %s)\n", g.Config.Name, len(crds), o.Namespace, mode)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default $KUBECONFIG, ~/.kube/config, or in-cluster)")
	f.BoolVar(&print, "print", false, "write the manifests (CRDs, RBAC, operator and runner Deployments) to stdout instead of applying")
	f.StringVar(&o.Namespace, "namespace", "slipway-system", "namespace of the operator and runners")
	f.StringVar(&o.Image, "image", "", "image of your binary, from `image build`, best by digest (repo@sha256:...); required with --print and --kustomize (no default)")
	f.StringVar(&watch, "watch-namespaces", "", "the namespaced mode: the namespaces the fleet serves, comma-separated (Roles there only)")
	f.BoolVar(&clusterWide, "cluster-wide", false, "the cluster-wide mode: ClusterRoles, every namespace served")
	f.StringVar(&kustomize, "kustomize", "", "write a kustomize base and overlays (cluster-wide, namespaced) under this directory instead of applying")
	f.IntVar(&o.Operators, "operators", 2, "operator replicas (--print)")
	f.IntVar(&o.Runners, "runners", 3, "runner replicas (--print)")
	f.IntVar(&o.RunnerConcurrency, "runner-concurrency", 2, "Runs each runner executes at once (--print)")
	return cmd
}

// newRunnerCmd is the runner verb: the fleet process that runs operations.
func newRunnerCmd(g *app.Globals) *cobra.Command {
	var mf managerFlags
	var o runner.Options
	var watch string
	cmd := &cobra.Command{
		Use:   "runner",
		Short: "Claim and execute Runs (slipway.dev/v1alpha1); stateless, run any number",
		Long: `Run a fleet runner: it claims Pending Runs (optimistic concurrency on
the Run), holds a Lease per Run with a heartbeat, executes the operation
with the engine and writes the result to the Run's status. When a runner
dies mid-run its Lease expires and another runner takes the Run over,
recovers the stack and completes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Concurrency < 1 {
				return app.BadInput("--concurrency %d must be at least 1", o.Concurrency)
			}
			if err := checkDurations(map[string]time.Duration{"--lease-duration": o.LeaseDuration}); err != nil {
				return err
			}
			ns, err := fleet.ParseNamespaces("--watch-namespaces", watch)
			if err != nil {
				return app.BadInput("%v", err)
			}
			o.Namespaces = ns
			if o.RenewDeadline != 0 && (o.RenewDeadline >= o.LeaseDuration || o.RenewDeadline < o.LeaseDuration/4) {
				return app.BadInput("--renew-deadline %s must be shorter than --lease-duration %s and at least a quarter of it (0 = 2/3 of it)",
					o.RenewDeadline, o.LeaseDuration)
			}
			if err := checkNamespaces(o.AllowRunnerCredentials); err != nil {
				return err
			}
			cfg, err := app.RestConfig(mf.kubeconfig)
			if err != nil {
				return err
			}
			if o.WorkDir == "" {
				o.WorkDir = filepath.Join(g.Dir, "runner")
			}
			if o.Engine, err = g.RunnerEngineOptions(); err != nil {
				return err
			}
			o.Registry = g.Registry()
			o.Logger = g.FleetLogger("runner")
			return runner.Run(cmd.Context(), cfg, o, mf.metrics, mf.probes)
		},
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Identity, "identity", "", "this runner's identity in Runs and Leases (default <hostname>-<pid>)")
	f.StringVar(&watch, "watch-namespaces", "", "serve only Runs of these namespaces, comma-separated (the namespaced install mode; Runs elsewhere are refused); default: every namespace")
	f.IntVar(&o.Concurrency, "concurrency", 2, "Runs executed at once")
	f.DurationVar(&o.LeaseDuration, "lease-duration", 15*time.Second, "how long a Run's Lease lasts without a heartbeat: the take-over time when a runner dies")
	f.DurationVar(&o.RenewDeadline, "renew-deadline", 0, "how long after its last renewal a Run's engine is killed and fenced off the backend (default 2/3 of --lease-duration)")
	f.StringVar(&o.WorkDir, "work-dir", "", "directory for the engine's per-Run workspaces (default <dir>/runner)")
	f.StringSliceVar(&o.AllowRunnerCredentials, "allow-runner-credentials", nil, allowRunnerCredentialsUsage)
	return cmd
}

// allowRunnerCredentialsUsage is the help of the operator's and runner's
// --allow-runner-credentials (fleet.AllowRunnerCredentialsFlag).
const allowRunnerCredentialsUsage = "namespaces (comma-separated) whose Environments may omit spec.target.kubeconfigSecretRef and run their programs " +
	"with the runners' own cluster credentials; give the operator and the runners the same list (default: none, every Environment brings its kubeconfig)"

// detachedDestroy is the operator's destroy of an Environment whose
// namespace is being deleted (Kubernetes refuses the destroy Run there):
// the runner's execution, with the runners' engine options and work
// directory, in the operator process.
func detachedDestroy(g *app.Globals, cfg *rest.Config, reg fleet.Registry, workDir string, allow []string, log *slog.Logger) (func(context.Context, client.Reader, *v1alpha1.Run) v1alpha1.RunStatus, error) {
	engine, err := g.RunnerEngineOptions()
	if err != nil {
		return nil, err
	}
	if workDir == "" {
		workDir = filepath.Join(g.Dir, "runner")
	}
	d, err := runner.NewDetached(cfg, runner.Options{Registry: reg, Engine: engine, WorkDir: workDir, AllowRunnerCredentials: allow, Logger: log.With("component", "detached-destroy")})
	if err != nil {
		return nil, err
	}
	return d.Execute, nil
}

// newFleetCmd is the fleet verb: operator and runner on the local control plane.
func newFleetCmd(g *app.Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "fleet", Short: "Run the fleet (operator and runners) on the local control plane"}
	var timeout time.Duration
	var metrics, probes string
	var allow []string
	local := &cobra.Command{
		Use:   "local",
		Short: "Start the local control plane, install the CRDs and RBAC, and run an operator and a runner until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			engine, err := g.RunnerEngineOptions() // bad input is refused before anything starts
			if err != nil {
				return err
			}
			if err := checkNamespaces(allow); err != nil {
				return err
			}
			dir := g.ClusterDir()
			c, err := localk8s.Load(dir)
			if err != nil || !c.Health(ctx).Ready {
				if c, err = localk8s.StartCluster(ctx, localk8s.WithStateDir(dir), localk8s.Detached(),
					localk8s.WithResolver(g.Resolver()), localk8s.WithStartTimeout(timeout)); err != nil {
					return err
				}
			}
			crds, err := install.CRDs()
			if err != nil {
				return err
			}
			rbac, err := install.RBAC(install.Options{ClusterWide: true})
			if err != nil {
				return err
			}
			if err := install.Apply(ctx, c.Config, append(crds, rbac...)); err != nil {
				return err
			}
			log := g.FleetLogger("fleet")
			log.Info("fleet running on the local control plane; create Environments with kubectl --kubeconfig "+c.Kubeconfig, "kubeconfig", c.Kubeconfig)
			reg := g.Registry()
			grp, gctx := errgroup.WithContext(ctx)
			grp.Go(func() error {
				destroy, err := detachedDestroy(g, c.Config, reg, filepath.Join(g.Dir, "runner"), allow, log)
				if err != nil {
					return err
				}
				return operator.Run(gctx, c.Config, operator.Options{Registry: reg, Logger: log.With("component", "operator"), AllowRunnerCredentials: allow, Destroy: destroy},
					operator.ManagerOptions{MetricsBindAddress: metrics, HealthProbeBindAddress: probes})
			})
			grp.Go(func() error {
				return runner.Run(gctx, c.Config, runner.Options{Registry: reg, Logger: log.With("component", "runner"),
					WorkDir: filepath.Join(g.Dir, "runner"), Engine: engine, AllowRunnerCredentials: allow}, "0", "0")
			})
			err = grp.Wait()
			if ctx.Err() != nil {
				return nil // interrupted: the normal way to stop
			}
			return err
		},
	}
	local.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "deadline from start to a Ready node")
	local.Flags().StringSliceVar(&allow, "allow-runner-credentials", nil, allowRunnerCredentialsUsage)
	local.Flags().StringVar(&metrics, "metrics-bind-address", "127.0.0.1:8080", "address of the operator's /metrics (0 turns it off)")
	local.Flags().StringVar(&probes, "health-probe-bind-address", "127.0.0.1:8081", "address of the operator's /healthz and /readyz (0 turns them off)")
	cmd.AddCommand(local)
	return cmd
}

// checkDurations refuses durations that are not positive, naming the flag.
func checkDurations(ds map[string]time.Duration) error {
	for name, d := range ds {
		if d <= 0 {
			return app.BadInput("%s %s must be positive", name, d)
		}
	}
	return nil
}

// checkNamespaces refuses an --allow-runner-credentials entry that is not
// a namespace name.
func checkNamespaces(ns []string) error {
	if err := fleet.Namespaces(ns).Check("--allow-runner-credentials"); err != nil {
		return app.BadInput("%v", err)
	}
	return nil
}
