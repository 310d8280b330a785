package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/integration/localk8s"
)

func (g *globals) resolver() *toolchain.Resolver {
	opts := []toolchain.Option{toolchain.WithLog(g.errw)}
	if g.cacheDir != "" {
		opts = append(opts, toolchain.WithCacheDir(g.cacheDir))
	}
	return toolchain.New(opts...)
}

func (g *globals) clusterDir() string { return filepath.Join(g.dir, "cluster") }

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Run a local Kubernetes control plane (etcd, apiserver, controllers, kwok nodes)"}
	var port int
	var timeout time.Duration
	up := &cobra.Command{
		Use:   "up",
		Short: "Build (first run) and start the local cluster in the background",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := g.clusterDir()
			if c, err := localk8s.Load(dir); err == nil && c.Health(cmd.Context()).Ready {
				return g.report(c, "already running")
			}
			c, err := localk8s.StartCluster(cmd.Context(), localk8s.WithStateDir(dir), localk8s.Detached(),
				localk8s.WithResolver(g.resolver()), localk8s.WithAPIPort(port), localk8s.WithStartTimeout(timeout))
			if err != nil {
				return err
			}
			return g.report(c, "started")
		},
	}
	up.Flags().IntVar(&port, "api-port", 0, "API server port (default: a free port)")
	up.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "deadline from start to a Ready node")
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop the local cluster and remove its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := g.clusterDir()
			c, err := localk8s.Load(dir)
			if c == nil && err != nil {
				if errors.Is(err, localk8s.ErrNotRunning) {
					g.add(item{Operation: "cluster down", Status: "succeeded"})
					fmt.Fprintln(g.errw, g.cfg.name+": no local cluster is running")
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
			g.add(item{Operation: "cluster down", Status: "succeeded"})
			fmt.Fprintln(g.errw, g.cfg.name+": local cluster stopped")
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Report whether the local cluster runs and is ready (exit 1 when not)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := localk8s.Load(g.clusterDir())
			if err != nil {
				g.add(item{Operation: "cluster status", Status: "failed", Cluster: localk8s.Health{Error: err.Error()}, Error: errJSON(err)})
				return err
			}
			h := c.Health(cmd.Context())
			var herr error
			if !h.Ready {
				herr = fmt.Errorf("local cluster is not ready: %s", h.Error)
			}
			g.add(item{Operation: "cluster status", Status: statusOf(herr), Cluster: h, Error: errJSON(herr)})
			if !g.json {
				fmt.Fprintf(g.out, "server:     %s\nready:      %v\nkubeconfig: %s\n", h.Server, h.Ready, c.Kubeconfig)
				for name, alive := range h.Processes {
					fmt.Fprintf(g.out, "  %-24s %v\n", name, map[bool]string{true: "running", false: "stopped"}[alive])
				}
			}
			return herr
		},
	}
	cmd.AddCommand(up, down, status)
	return cmd
}

func (g *globals) report(c *localk8s.Cluster, what string) error {
	g.add(item{Operation: "cluster " + what, Status: "succeeded", Cluster: map[string]string{"status": what, "server": c.Server, "kubeconfig": c.Kubeconfig}})
	if g.json {
		return nil
	}
	fmt.Fprintf(g.out, "local cluster %s: %s\nexport KUBECONFIG=%s\n", what, c.Server, c.Kubeconfig)
	return nil
}

func newToolchainCmd(g *globals) *cobra.Command {
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
			return g.resolver().All(cmd.Context(), "")
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "List the tools and whether they are built",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st := g.resolver().Status()
			g.add(item{Operation: "toolchain status", Status: "succeeded", Tools: st})
			if g.json {
				return nil
			}
			for _, s := range st {
				state := "ready"
				if !s.Ready {
					state = s.Reason
				}
				fmt.Fprintf(g.out, "%-28s %-9s %s\n  %s\n", s.Tool, s.Version, state, s.Dir)
			}
			return nil
		},
	}
	cmd.AddCommand(build, status)
	return cmd
}
