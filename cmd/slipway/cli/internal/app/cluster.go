package app

import (
	"fmt"
	"path/filepath"

	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/integration/localk8s"
)

// Resolver finds or builds the toolchain in the run's cache directory.
func (g *Globals) Resolver() *toolchain.Resolver {
	opts := []toolchain.Option{toolchain.WithLog(g.Errw)}
	if g.CacheDir != "" {
		opts = append(opts, toolchain.WithCacheDir(g.CacheDir))
	}
	return toolchain.New(opts...)
}

// ClusterDir is the local cluster's directory under --dir.
func (g *Globals) ClusterDir() string { return filepath.Join(g.Dir, "cluster") }

// Report prints the local cluster c's state (what happened to it) and adds it to the envelope.
func (g *Globals) Report(c *localk8s.Cluster, what string) error {
	g.Add(Item{Operation: "cluster " + what, Status: "succeeded", Cluster: map[string]string{"status": what, "server": c.Server, "kubeconfig": c.Kubeconfig}})
	if g.JSON {
		return nil
	}
	fmt.Fprintf(g.Out, "local cluster %s: %s\nexport KUBECONFIG=%s\n", what, c.Server, c.Kubeconfig)
	return nil
}
