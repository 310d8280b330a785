package app

import (
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/slipwayhq/slipway/automation/fleet"
)

// Registry is what this binary's fleet can run: its definitions and packs.
func (g *Globals) Registry() fleet.Registry {
	return fleet.Registry{Definitions: g.Config.Definitions, Packs: g.Config.AllPacks()}
}

// RestConfig loads a client configuration: --kubeconfig, else $KUBECONFIG,
// ~/.kube/config, or the in-cluster service account.
func RestConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, BadInput("no cluster to connect to: %v; pass --kubeconfig, set KUBECONFIG, or run inside a cluster", err)
	}
	return cfg, nil
}

// FleetLogger is the long-running processes' logger: info and above on
// stderr (or debug with -v), also behind controller-runtime's logr.
func (g *Globals) FleetLogger(component string) *slog.Logger {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	h := g.logHandler(level)
	ctrl.SetLogger(logr.FromSlogHandler(h))
	return slog.New(h).With("component", component)
}
