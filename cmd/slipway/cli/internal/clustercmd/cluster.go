package clustercmd

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/integration/localk8s"
)

// newClusterCmd is the cluster verb: the local Kubernetes cluster (start, stop, status).
func newClusterCmd(g *app.Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Run a local Kubernetes control plane (etcd, apiserver, controllers, kwok nodes)"}
	var port int
	var timeout time.Duration
	up := &cobra.Command{
		Use:   "up",
		Short: "Build (first run) and start the local cluster in the background",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := g.ClusterDir()
			if c, err := localk8s.Load(dir); err == nil && c.Health(cmd.Context()).Ready {
				return g.Report(c, "already running")
			}
			c, err := localk8s.StartCluster(cmd.Context(), localk8s.WithStateDir(dir), localk8s.Detached(),
				localk8s.WithResolver(g.Resolver()), localk8s.WithAPIPort(port), localk8s.WithStartTimeout(timeout))
			if err != nil {
				return err
			}
			return g.Report(c, "started")
		},
	}
	up.Flags().IntVar(&port, "api-port", 0, "API server port (default: a free port)")
	up.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "deadline from start to a Ready node")
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop the local cluster and remove its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := g.ClusterDir()
			c, err := localk8s.Load(dir)
			if c == nil && err != nil {
				if errors.Is(err, localk8s.ErrNotRunning) {
					g.Add(app.Item{Operation: "cluster down", Status: "succeeded"})
					fmt.Fprintln(g.Errw, g.Config.Name+": no local cluster is running")
					return nil
				}
				return err
			}
			if err := c.Stop(); err != nil {
				return err
			}
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			g.Add(app.Item{Operation: "cluster down", Status: "succeeded"})
			fmt.Fprintln(g.Errw, g.Config.Name+": local cluster stopped")
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Report whether the local cluster runs and is ready (exit 1 when not)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := localk8s.Load(g.ClusterDir())
			if err != nil {
				g.Add(app.Item{Operation: "cluster status", Status: "failed", Cluster: localk8s.Health{Error: err.Error()}, Error: app.ErrJSON(err)})
				return err
			}
			h := c.Health(cmd.Context())
			var herr error
			if !h.Ready {
				herr = fmt.Errorf("local cluster is not ready: %s", h.Error)
			}
			g.Add(app.Item{Operation: "cluster status", Status: app.StatusOf(herr), Cluster: h, Error: app.ErrJSON(herr)})
			if !g.JSON {
				fmt.Fprintf(g.Out, "server:     %s\nready:      %v\nkubeconfig: %s\n", h.Server, h.Ready, c.Kubeconfig)
				for name, alive := range h.Processes {
					fmt.Fprintf(g.Out, "  %-24s %v\n", name, map[bool]string{true: "running", false: "stopped"}[alive])
				}
			}
			return herr
		},
	}
	cmd.AddCommand(up, down, status)
	return cmd
}

// newToolchainCmd is the toolchain verb: build and locate the engine, providers and control plane.
func newToolchainCmd(g *app.Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "toolchain", Short: "Build or inspect the pulumi CLI, Kubernetes provider and control plane binaries"}
	build := &cobra.Command{
		Use:   "build",
		Short: "Build every missing tool the commands use, two at a time, with progress on stderr (idempotent)",
		Long: "Build every missing tool the commands use: the pulumi CLI, the Kubernetes provider and the local\n" +
			"control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok), two at a\n" +
			"time, reporting progress on stderr. kubectl is not among them: only the benchmarks use it, and\n" +
			"they build it on first use.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.Resolver().All(cmd.Context(), "")
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "List the tools and whether they are built",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st := g.Resolver().Status()
			g.Add(app.Item{Operation: "toolchain status", Status: "succeeded", Tools: st})
			if g.JSON {
				return nil
			}
			for _, s := range st {
				state := "ready"
				if !s.Ready {
					state = s.Reason
				}
				fmt.Fprintf(g.Out, "%-28s %-9s %s\n  %s\n", s.Tool, s.Version, state, s.Dir)
			}
			return nil
		},
	}
	cmd.AddCommand(build, status)
	return cmd
}
