// Package slipwaytest is Slipway's test harness for environments, in the
// spirit of Terratest: a test brings a real environment up on a local
// Kubernetes cluster, asserts on it, and the harness destroys it and fails
// the test if anything is left behind. Its mock side runs a program without
// an engine and checks its resource graph against policy packs in-process.
//
// One line in the test package sets everything up:
//
//	func TestMain(m *testing.M) { slipwaytest.Main(m) }
//
// Main serves the policy analyzer (the engine starts the test binary as its
// policy plugin), starts one local cluster for the package's tests on first
// use (integration/localk8s) and stops it when they end. Set
// SLIPWAY_TEST_KUBECONFIG to use an existing cluster instead (for example
// one started with `slipway cluster up`).
//
// Live side: New brings a program up under a unique stack name (programs
// name what they create after ctx.Stack(), so parallel tests never
// collide), and registers destroy, stack removal and a leak check in
// t.Cleanup. Env gives typed outputs (Output), Up and Preview results,
// Kubernetes helpers (WaitForDeployment, ConfigMap, Owned) and a client-go
// clientset. AssertGolden compares a preview's changes with a golden file;
// SLIPWAYTEST_UPDATE=1 (or a test package's own boolean -update flag)
// rewrites them; the package registers no flag.
// Eventually and Retry poll with a context, a timeout and an interval.
//
// With SLIPWAY_TEST_KEEP=1, a failed test keeps its environment (stack,
// backend directory and objects) and logs where to find it; otherwise the
// environment is always destroyed.
//
// Drills: a Drill injects a fault, runs a repair and polls a health check
// until the environment is back, failing past a stated bound and reporting
// how long the recovery took. Package fault (integration/slipwaytest/fault)
// has ready-made injectors — DeletePods, EditObject (out-of-band edits),
// KillAt (kill -9 the engine mid-step), SetMetric (a metric turning bad) —,
// a repair (RepairDrift) and health checks (DeploymentReady, PodsReady).
//
// Mock side: Mock runs a program under pulumi.WithMocks (package mocktest:
// as an update, or as a preview with mocktest.Preview(), so unknown values
// stay unknown) and returns its mocktest.Graph; AssertCompliant and
// Findings evaluate policy packs on it in-process.
package slipwaytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/integration/slipwaytest/internal/child"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/all"
)

// Environment variables the harness reads.
const (
	// KubeconfigEnv names an existing cluster's kubeconfig; when set, no
	// local cluster is started.
	KubeconfigEnv = "SLIPWAY_TEST_KUBECONFIG"
	// KeepEnv set to 1 keeps the environments of failed tests for inspection.
	KeepEnv = "SLIPWAY_TEST_KEEP"
)

// shared is the package's one local cluster.
var shared struct {
	mu      sync.Mutex
	main    bool // Main was called: it stops the cluster at the end
	cluster *localk8s.Cluster
	err     error // a failed start is not retried
}

// Main is all a test package's TestMain needs:
//
//	func TestMain(m *testing.M) { slipwaytest.Main(m) }
//
// It serves the policy analyzer first (Slipway's packs and the extra packs
// given, for WithPolicies), runs the child a process started by
// fault.StartChild runs (see fault.Child) and exits, or runs the tests, stops the shared cluster if a
// test started it, and exits with the tests' code.
func Main(m *testing.M, packs ...*policypacks.Pack) {
	policypacks.ServeIfAnalyzer(append(all.Packs(), packs...)...)
	child.RunIfChild() // a process fault.StartChild started runs its child and exits
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	if c := shared.cluster; c != nil {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "slipwaytest: stopping the local cluster:", err)
			if code == 0 {
				code = 1
			}
		}
		shared.cluster = nil
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Kubeconfig returns the kubeconfig path of the package's shared cluster:
// $SLIPWAY_TEST_KUBECONFIG when set, else the local cluster, started on the
// first call (building its binaries on a cold machine takes minutes). It
// fails the test when the cluster cannot start, or when Main is not the
// package's TestMain (nothing would stop the cluster).
func Kubeconfig(t testing.TB) string {
	t.Helper()
	if kc := os.Getenv(KubeconfigEnv); kc != "" {
		return kc
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	switch {
	case shared.cluster != nil:
		return shared.cluster.Kubeconfig
	case shared.err != nil:
		t.Fatalf("slipwaytest: the shared cluster failed to start earlier: %v", shared.err)
	case !shared.main:
		t.Fatalf("slipwaytest: the shared cluster needs `func TestMain(m *testing.M) { slipwaytest.Main(m) }` " +
			"in the test package (it stops the cluster when the tests end), or " + KubeconfigEnv + " naming a cluster")
	}
	t.Logf("slipwaytest: starting the package's local cluster (the first build of its binaries takes minutes)")
	var log logBuffer
	var w io.Writer = &log
	if testing.Verbose() {
		w = io.MultiWriter(&log, os.Stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c, err := localk8s.StartCluster(ctx, localk8s.WithLog(w))
	if err != nil {
		shared.err = fmt.Errorf("%w\n%s", err, log.tail(4096))
		t.Fatalf("slipwaytest: starting the local cluster: %v", shared.err)
	}
	shared.cluster = c
	return c.Kubeconfig
}

// logBuffer collects the cluster's progress, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail returns the last n bytes written.
func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
