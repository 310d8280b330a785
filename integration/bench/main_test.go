package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/policypacks/all"
)

// smokeTest is the name of the test that runs every benchmark body once.
const smokeTest = "TestBench_EveryBodyWorks"

// The fixtures every benchmark shares, set up by TestMain when a benchmark
// or the smoke test is selected.
var (
	cluster *localk8s.Cluster
	// upstreamRoot is the pulumi CLI (Root/bin/pulumi) without Slipway's
	// patches: the engine of the bare side. The Slipway side resolves its own
	// (patched) engine through the toolchain, as a user's program does.
	upstreamRoot string
	// pulumiHome is the one PULUMI_HOME of both sides, with the Kubernetes
	// provider plugin installed.
	pulumiHome string
	// kubectl is the toolchain's kubectl binary.
	kubectl string
	// scratch is a directory that lives as long as the process.
	scratch string
	// atExit runs after the tests and benchmarks, before the cluster stops.
	atExit []func() error
)

func TestMain(m *testing.M) {
	// The engine may start this test binary as its policy analyzer plugin.
	all.ServeIfAnalyzer()
	if os.Getenv(crashHelperEnv) != "" {
		// A child process of TestCrash_KillNineAtAnyMomentAt1000Resources
		// (after the analyzer check: the analyzer inherits its environment).
		os.Exit(crashHelper())
	}
	flag.Parse()
	if !needsCluster() {
		os.Exit(m.Run())
	}
	code, err := withFixtures(m.Run)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// needsCluster reports whether the run selects a benchmark or a test that
// needs the cluster.
func needsCluster() bool {
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		return true
	}
	run := ""
	if f := flag.Lookup("test.run"); f != nil {
		run = f.Value.String()
	}
	if run == "" {
		return true
	}
	// The top-level part of -run decides whether those tests run.
	re, err := regexp.Compile(strings.SplitN(run, "/", 2)[0])
	return err != nil || re.MatchString(smokeTest) || re.MatchString(crashTest) || re.MatchString(ephemeralsTest)
}

// withFixtures resolves the toolchain, starts the local cluster, runs run and
// stops the cluster.
func withFixtures(run func() int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	res := toolchain.New()
	var err error
	if _, err = res.PulumiCLI(ctx); err != nil {
		return 0, err
	}
	if upstreamRoot, err = res.UpstreamPulumiCLI(ctx); err != nil {
		return 0, err
	}
	if pulumiHome, err = os.MkdirTemp("", "slipway-bench-home-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(pulumiHome)
	if _, err := res.KubernetesProvider(ctx, pulumiHome); err != nil {
		return 0, err
	}
	if kubectl, err = res.Kubectl(ctx); err != nil {
		return 0, err
	}
	if cluster, err = localk8s.StartCluster(ctx); err != nil {
		return 0, fmt.Errorf("starting the local cluster: %w", err)
	}
	defer cluster.Stop()
	if scratch, err = os.MkdirTemp("", "slipway-bench-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(scratch)
	code := run()
	for _, f := range atExit {
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			code = 1
		}
	}
	return code, nil
}
