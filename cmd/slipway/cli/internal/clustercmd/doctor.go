package clustercmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/discovery"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/policypacks"
)

// Outcomes of a doctor check.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "FAIL"
)

// check is one line of slipway doctor: what was checked, what was found
// and, when it is not ok, the fix.
type check struct {
	name, outcome, found, fix string
}

// doctorTimeout bounds each check that talks to a server.
const doctorTimeout = 15 * time.Second

// newDoctorCmd is the doctor verb: checks the toolchain, backend, target and plugins, each failing check naming its fix.
func newDoctorCmd(g *app.Globals) *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the toolchain, backend, passphrase, target cluster, policy analyzer and plugins; one line per check with its fix (exit 1 when one fails)",
		Long: "Check what a run needs, without building or changing anything: the pulumi CLI (Slipway's patched\n" +
			"build, or one from PATH), the backend (reachable) and its passphrase, the target cluster\n" +
			"(kubeconfig and server version), whether this binary serves the policy analyzer, and the resource\n" +
			"plugins. Each check prints one line: ok, warn or FAIL, what was found, and the fix.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checks := doctor(g, cmd.Context(), kubeconfig)
			failed := 0
			for _, c := range checks {
				var err error
				if c.outcome == checkFail {
					failed++
					err = errors.New(c.line())
				}
				g.Add(app.Item{Operation: "doctor " + c.name, Status: app.StatusOf(err), Error: app.ErrJSON(err)})
				if !g.JSON {
					fmt.Fprintln(g.Out, c.line())
				}
			}
			if failed > 0 {
				return fmt.Errorf("doctor: %d of %d check(s) failed; each FAIL line names its fix", failed, len(checks))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the target cluster (default $KUBECONFIG, ~/.kube/config)")
	return cmd
}

// line renders the check as one line.
func (c check) line() string {
	s := fmt.Sprintf("%-4s %-10s %s", c.outcome, c.name, c.found)
	if c.fix != "" {
		s += "; fix: " + c.fix
	}
	return s
}

// doctor runs every check, in a fixed order.
func doctor(g *app.Globals, ctx context.Context, kubeconfig string) []check {
	out := []check{checkToolchain(g, ctx)}
	out = append(out, checkBackend(g, ctx)...)
	return append(out, checkTarget(g, kubeconfig), checkAnalyzer(), checkPlugins(g))
}

// checkToolchain reports the pulumi CLI runs would use, without building it.
func checkToolchain(g *app.Globals, ctx context.Context) check {
	c := check{name: "toolchain"}
	p, err := g.Resolver().FindPulumi(ctx)
	switch {
	case err != nil:
		c.outcome, c.found, c.fix = checkFail, "no usable pulumi CLI", err.Error()
	case p.Patched:
		c.outcome, c.found = checkOK, fmt.Sprintf("pulumi v%s, Slipway's patched build (%s) at %s", p.Version, p.Source, p.Bin())
	default:
		c.outcome, c.found = checkWarn, fmt.Sprintf("pulumi v%s from %s at %s lacks Slipway's group-commit patch (updates write a checkpoint per step)", p.Version, p.Source, p.Bin())
		c.fix = "remove it from PATH and run `" + g.Config.Name + " toolchain build` for the patched build"
	}
	return c
}

// backendURL is the backend runs use: --backend, else the file backend in --dir.
func backendURL(g *app.Globals) (string, error) {
	if g.Backend != "" {
		return g.Backend, nil
	}
	dir, err := filepath.Abs(g.Dir)
	if err != nil {
		return "", app.BadInput("--dir %q: %v", g.Dir, err)
	}
	return "file://" + filepath.Join(dir, "state"), nil
}

// checkBackend reports whether the backend answers and whether secrets
// have a passphrase.
func checkBackend(g *app.Globals, ctx context.Context) []check {
	b := check{name: "backend"}
	pass := check{name: "passphrase"}
	url, err := backendURL(g)
	if err == nil {
		err = automation.ValidateBackend(url)
	}
	if err != nil {
		b.outcome, b.found, b.fix = checkFail, "the backend URL is not usable", err.Error()
		pass.outcome, pass.found = checkWarn, "not checked (no usable backend)"
		return []check{b, pass}
	}
	shown := url
	if i := strings.IndexByte(shown, '?'); i >= 0 {
		shown = shown[:i] // the query may carry credentials
	}
	local := strings.HasPrefix(url, "file://")
	switch {
	case local:
		dir := strings.TrimPrefix(url, "file://")
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			b.outcome, b.found = checkOK, "file backend "+shown
		} else if err == nil {
			b.outcome, b.found, b.fix = checkFail, "file backend "+shown+" is not a directory", "point --backend at a directory"
		} else {
			b.outcome, b.found = checkOK, "file backend "+shown+" (created on the first run)"
		}
	default:
		cctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		defer cancel()
		s, err := statestore.Open(cctx, url, nil)
		if errors.Is(err, statestore.ErrUnsupported) {
			b.outcome, b.found = checkWarn, "backend "+shown+" is checked only by the engine (no state-store driver)"
			break
		}
		if err == nil {
			_, err = s.Exists(cctx, "slipway-doctor", "probe")
			if cerr := s.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			b.outcome, b.found = checkFail, fmt.Sprintf("backend %s does not answer: %v", shown, err)
			b.fix = "check --backend (or PULUMI_BACKEND_URL) and its credentials (for s3://: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)"
		} else {
			b.outcome, b.found = checkOK, "backend "+shown+" answers"
		}
	}
	p, set := os.LookupEnv("PULUMI_CONFIG_PASSPHRASE")
	switch {
	case set && p != "":
		pass.outcome, pass.found = checkOK, "PULUMI_CONFIG_PASSPHRASE is set"
	case local:
		pass.outcome, pass.found = checkWarn, "PULUMI_CONFIG_PASSPHRASE is not set: secrets in the local file backend are encrypted with an empty passphrase"
		pass.fix = "set PULUMI_CONFIG_PASSPHRASE"
	case set:
		pass.outcome, pass.found = checkWarn, "PULUMI_CONFIG_PASSPHRASE is set but empty: secrets in the shared backend are encrypted with an empty passphrase"
		pass.fix = "set PULUMI_CONFIG_PASSPHRASE to a secret passphrase"
	default:
		pass.outcome, pass.found = checkFail, "PULUMI_CONFIG_PASSPHRASE is not set, and runs refuse a shared backend without it"
		pass.fix = "set PULUMI_CONFIG_PASSPHRASE"
	}
	return []check{b, pass}
}

// checkTarget reports the target cluster: its kubeconfig and server version.
func checkTarget(g *app.Globals, kubeconfig string) check {
	c := check{name: "target"}
	startFix := "start the local cluster with `" + g.Config.Name + " cluster up` and export the KUBECONFIG it prints, or point KUBECONFIG at your cluster"
	cfg, err := app.RestConfig(kubeconfig)
	if err != nil {
		c.outcome, c.found, c.fix = checkFail, "no kubeconfig", startFix
		return c
	}
	cfg.Timeout = doctorTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		c.outcome, c.found, c.fix = checkFail, fmt.Sprintf("kubeconfig for %s is not usable: %v", cfg.Host, err), startFix
		return c
	}
	v, err := dc.ServerVersion()
	if err != nil {
		c.outcome, c.found, c.fix = checkFail, fmt.Sprintf("cluster %s does not answer: %v", cfg.Host, err), startFix
		return c
	}
	c.outcome, c.found = checkOK, fmt.Sprintf("cluster %s, Kubernetes %s", cfg.Host, v.GitVersion)
	return c
}

// checkAnalyzer reports whether this binary serves the policy analyzer the
// engine starts for --policy.
func checkAnalyzer() check {
	c := check{name: "analyzer"}
	if policypacks.AnalyzerReady() {
		c.outcome, c.found = checkOK, "this binary serves the policy analyzer"
		return c
	}
	c.outcome, c.found = checkFail, "this binary never called ServeIfAnalyzer, so the engine cannot run its policy packs"
	c.fix = "call cli.Main (which serves it) or policypacks/all.ServeIfAnalyzer() first thing in main"
	return c
}

// checkPlugins reports the Kubernetes provider plugin and each --plugin.
func checkPlugins(g *app.Globals) check {
	c := check{name: "plugins", outcome: checkOK}
	var found, fixes []string
	k8s := false
	if home, err := toolchain.DefaultPulumiHome(); err == nil {
		if fi, err := os.Stat(toolchain.PluginPath(home, "resource", "kubernetes", toolchain.KubernetesProviderVersion)); err == nil && !fi.IsDir() {
			k8s = true
		}
	}
	for _, s := range g.Resolver().Status() {
		if s.Tool == "pulumi-resource-kubernetes" && s.Ready {
			k8s = true
		}
	}
	if k8s {
		found = append(found, "kubernetes v"+toolchain.KubernetesProviderVersion)
	} else {
		c.outcome = checkFail
		found = append(found, "kubernetes v"+toolchain.KubernetesProviderVersion+" is neither built nor installed")
		fixes = append(fixes, "run `"+g.Config.Name+" toolchain build`")
	}
	plugins, err := g.PluginBinaries()
	if err != nil {
		c.outcome = checkFail
		found = append(found, err.Error())
		fixes = append(fixes, "give --plugin NAME[@VERSION]=PATH (or $"+app.PluginsEnv+" entries) of an executable plugin binary")
	}
	for _, p := range plugins {
		found = append(found, fmt.Sprintf("%s v%s (%s)", p.Name, p.Version, p.From))
	}
	if g.PluginDownload {
		found = append(found, "others downloaded on demand (--allow-plugin-download)")
	} else {
		found = append(found, "no download (others must be given with --plugin, or allowed with --allow-plugin-download)")
	}
	c.found, c.fix = strings.Join(found, "; "), strings.Join(fixes, "; ")
	return c
}
