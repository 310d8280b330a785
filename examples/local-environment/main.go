// Command local-environment brings up a Slipway environment on a local
// Kubernetes control plane with the real Pulumi engine, prints its outputs
// and tears everything down:
//
//	go run ./examples/local-environment
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, ".slipway/example"); err != nil {
		fmt.Fprintln(os.Stderr, "local-environment:", err)
		os.Exit(1)
	}
}

// run starts a cluster, deploys the "qa" environment, prints its outputs and
// removes both.
func run(ctx context.Context, out io.Writer, dir string) error {
	c, err := localk8s.StartCluster(ctx, localk8s.WithLog(out))
	if err != nil {
		return err
	}
	defer c.Stop()
	eng, err := automation.New(ctx, automation.WithDir(dir))
	if err != nil {
		return err
	}
	env := web.Environment{Name: "qa", Kind: stacks.QA, Kubeconfig: c.Kubeconfig,
		Params: web.Params{App: web.App{Image: "nginx:1.27", Replicas: 2, Settings: map[string]string{"FEATURE_X": "on"}}}}
	prog, err := web.Definition.Program(env)
	if err != nil {
		return err
	}
	st, err := eng.UpsertStack(ctx, prog)
	if err != nil {
		return err
	}
	res, err := st.Up(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "up: %v in %s\n", res.Summary, res.Duration.Round(time.Millisecond))
	for k, v := range res.Outputs {
		fmt.Fprintf(out, "  %s = %v\n", k, v)
	}
	res, err = st.Destroy(ctx, optdestroy.RemoveStack())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "destroy: %v in %s\n", res.Summary, res.Duration.Round(time.Millisecond))
	return nil
}
