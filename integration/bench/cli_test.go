package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/automation"
	slippreview "github.com/slipwayhq/slipway/automation/optpreview"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// BenchmarkCLIPreview previews an unchanged `web` dev environment (15
// resources) that the slipway binary brought up: side=slipway runs
// `slipway preview --env <env> --expect-no-changes --json` as a whole
// process, exec to exit; side=bare, the baseline, is what that process
// does inside, in this process: automation.New on the same directory and
// backend, the same program, Engine.Each with a Preview. The binary is
// built, the environment brought up and one preview run (warm) before the
// timer starts; each preview's report (exit 0, every resource the same) is
// checked outside the timer.
func BenchmarkCLIPreview(b *testing.B) {
	b.Run("base=library", func(b *testing.B) {
		for _, side := range sides {
			b.Run("side="+side, func(b *testing.B) { runCLIPreview(b, b, b.N, side, sharedCLIEnv(b)) })
		}
	})
}

// cliEnv is a `web` dev environment brought up by the slipway binary, with
// a --dir (workspaces and file backend) of its own.
type cliEnv struct {
	bin, dir, name, ns string
	// environ is the binary's process environment: this process's, with the
	// benchmarks' PULUMI_HOME and passphrase.
	environ []string
}

var (
	// cliBuild builds the slipway binary once per process.
	cliBuild = sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp(scratch, "slipway-bin-")
		if err != nil {
			return "", err
		}
		bin := filepath.Join(dir, "slipway")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/slipwayhq/slipway/cmd/slipway").CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("building slipway: %v\n%s", err, out)
		}
		return bin, nil
	})
	// cliShared is the environment the benchmarks of this process share.
	cliShared *cliEnv
)

// sharedCLIEnv returns the environment of this process's benchmarks,
// bringing it up the first time; TestMain destroys it.
func sharedCLIEnv(tb testing.TB) *cliEnv {
	tb.Helper()
	if cliShared == nil {
		dir, err := os.MkdirTemp(scratch, "cli-")
		must(tb, err)
		cliShared = upCLIEnv(tb, "bench-cli", dir)
		atExit = append(atExit, cliShared.destroy)
	}
	return cliShared
}

// newCLIEnv brings environment name up, destroyed when tb ends.
func newCLIEnv(tb testing.TB, name string) *cliEnv {
	tb.Helper()
	c := upCLIEnv(tb, name, tb.TempDir())
	tb.Cleanup(func() {
		if err := c.destroy(); err != nil {
			tb.Error(err)
		}
	})
	return c
}

// upCLIEnv builds the binary (once) and runs `slipway up` of environment
// name in dir.
func upCLIEnv(tb testing.TB, name, dir string) *cliEnv {
	tb.Helper()
	bin, err := cliBuild()
	must(tb, err)
	c := &cliEnv{bin: bin, dir: dir, name: name, ns: "slipway-" + name,
		environ: append(os.Environ(), "PULUMI_HOME="+pulumiHome, "PULUMI_CONFIG_PASSPHRASE="+passphrase)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := c.run(ctx, "up", "--env", name, "--kind", "dev", "--kubeconfig", cluster.Kubeconfig, "--json")
	must(tb, err)
	expect(tb, r.summary(tb, "up", name), map[string]int{"create": webResources})
	return c
}

// destroy runs `slipway destroy --remove` and checks that the namespace is gone.
func (c *cliEnv) destroy() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := c.run(ctx, "destroy", "--yes", "--env", c.name, "--kind", "dev", "--kubeconfig", cluster.Kubeconfig, "--remove", "--json"); err != nil {
		return fmt.Errorf("cleanup of %s: %w", c.name, err)
	}
	if _, err := cluster.Client.CoreV1().Namespaces().Get(ctx, c.ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return fmt.Errorf("cleanup of %s: namespace %s is still there after the destroy (%v)", c.name, c.ns, err)
	}
	return nil
}

// cliRun is one run of the binary: its --json envelope.
type cliRun struct {
	stdout, stderr []byte
	envelope       struct {
		Results []struct {
			Environment, Operation, Status string
			Result                         *struct {
				Summary map[string]int `json:"summary"`
			} `json:"result"`
		} `json:"results"`
		Error *struct {
			Code, Message string
		} `json:"error"`
	}
}

// run runs the binary with --dir and args; an exit code other than 0 is an
// error.
func (c *cliEnv) run(ctx context.Context, args ...string) (*cliRun, error) {
	cmd := c.command(ctx, args...)
	r := &cliRun{}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r.stdout, r.stderr = out.Bytes(), errb.Bytes()
	return r, r.parse(args, err)
}

// command is the binary's command with --dir and args.
func (c *cliEnv) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--dir", c.dir}, args...)...)
	cmd.Env = c.environ
	return cmd
}

// parse decodes the envelope of a run that ended with err.
func (r *cliRun) parse(args []string, err error) error {
	if err != nil {
		return fmt.Errorf("slipway %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, r.stdout, r.stderr)
	}
	if err := json.Unmarshal(r.stdout, &r.envelope); err != nil {
		return fmt.Errorf("slipway %v: stdout is not the JSON envelope (%v):\n%s", args, err, r.stdout)
	}
	return nil
}

// summary returns the summary of the run's one result, which must be op's
// on environment env, succeeded.
func (r *cliRun) summary(tb testing.TB, op, env string) map[string]int {
	tb.Helper()
	e := r.envelope
	if e.Error != nil || len(e.Results) != 1 || e.Results[0].Environment != env || e.Results[0].Operation != op ||
		e.Results[0].Status != "succeeded" || e.Results[0].Result == nil {
		tb.Fatalf("slipway %s --env %s printed %s, want one succeeded %s of %s with its result", op, env, r.stdout, op, env)
	}
	return e.Results[0].Result.Summary
}

// runCLIPreview is the body of BenchmarkCLIPreview for one side: one warm-up
// preview, then iterations timed previews, each checked.
func runCLIPreview(tb testing.TB, tm timer, iterations int, side string, c *cliEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	preview := map[string]func(context.Context, timer) (map[string]int, error){
		"slipway": c.previewCLI, "bare": c.previewLibrary}[side]
	if preview == nil {
		tb.Fatalf("unknown side %q", side)
	}
	tm.StopTimer()
	tm.ResetTimer()
	for i := range iterations + 1 {
		t := tm
		if i == 0 {
			t = noTimer{} // warm-up
		}
		sum, err := preview(ctx, t)
		must(tb, err)
		expect(tb, sum, map[string]int{"same": webResources})
	}
}

// previewCLI runs `slipway preview --expect-no-changes --json` of the
// environment, timed from exec to exit, and returns the summary it printed.
func (c *cliEnv) previewCLI(ctx context.Context, tm timer) (map[string]int, error) {
	args := []string{"preview", "--env", c.name, "--kind", "dev", "--kubeconfig", cluster.Kubeconfig, "--expect-no-changes", "--json"}
	cmd := c.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	tm.StartTimer()
	err := cmd.Run()
	tm.StopTimer()
	r := &cliRun{stdout: out.Bytes(), stderr: errb.Bytes()}
	if err := r.parse(args, err); err != nil {
		return nil, err
	}
	e := r.envelope
	if e.Error != nil || len(e.Results) != 1 || e.Results[0].Status != "succeeded" || e.Results[0].Result == nil {
		return nil, fmt.Errorf("slipway preview printed %s, want one succeeded preview with its result", r.stdout)
	}
	return e.Results[0].Result.Summary, nil
}

// previewLibrary is what the binary's preview does, in this process: an
// Engine on the same directory, the environment's program, Each with a
// Preview that expects no changes.
func (c *cliEnv) previewLibrary(ctx context.Context, tm timer) (map[string]int, error) {
	tm.StartTimer()
	e, err := automation.New(ctx, automation.WithDir(c.dir), automation.WithPulumiHome(pulumiHome), automation.WithPassphrase(passphrase))
	var res []automation.EnvResult
	if err == nil {
		var p automation.Program
		p, err = web.Definition.Program(web.Environment{Name: c.name, Kind: stacks.Dev, Kubeconfig: cluster.Kubeconfig})
		if err == nil {
			res = e.Each(ctx, []automation.Program{p}, automation.Preview(slippreview.ExpectNoChanges()), 4)
		}
	}
	tm.StopTimer()
	if err != nil {
		return nil, err
	}
	if len(res) != 1 {
		return nil, fmt.Errorf("%d preview results, want 1", len(res))
	}
	if res[0].Err != nil || res[0].Result == nil {
		return nil, errors.Join(errors.New("library preview failed"), res[0].Err)
	}
	return res[0].Result.Summary, nil
}
