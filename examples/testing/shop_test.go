// Package testing shows a team's own environment (examples/team/shop)
// tested both ways with Slipway's harness, integration/slipwaytest:
//
//   - under mocks, in milliseconds: the program's resource graph, and the
//     policy packs evaluated on it in-process (no engine, no cluster);
//   - live, on a local Kubernetes cluster the package's tests share: a
//     preview compared with a golden file, and a real environment brought
//     up, inspected with typed outputs and client-go, then destroyed and
//     checked for leaks.
//
// The one line of setup is TestMain. Run it with
//
//	go test ./examples/testing/                   # the first run builds the cluster's binaries
//	go test ./examples/testing/ -run Golden -update  # rewrite testdata/*.golden (or SLIPWAYTEST_UPDATE=1)
//	SLIPWAY_TEST_KEEP=1 go test ./examples/testing/  # keep a failed test's environment
package shoptest

import (
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/examples/team/shop"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
	"github.com/slipwayhq/slipway/stacks"
)

// TestMain serves the policy analyzer, shares one local cluster among the
// package's tests and stops it at the end.
func TestMain(m *testing.M) { slipwaytest.Main(m) }

// program builds a shop environment's program, failing the test on invalid
// parameters.
func program(t *testing.T, e shop.Env) automation.Program {
	t.Helper()
	prog, err := shop.Definition.Program(e)
	require.NoError(t, err)
	return prog
}

// devName is a dev environment name of the test's own: the shop names its
// namespace after it ("shop-<name>"), so parallel tests never share one.
func devName() string { return "dev-" + strings.ToLower(rand.Text()[:6]) }

// Under mocks: prod's program, without an engine or a cluster. The Deployment
// runs prod's three replicas with prod's resources, and the Kubernetes pack
// at prod's settings (every policy at its own, mandatory, level) finds
// nothing blocking.
func TestShop_ProdUnderMocks(t *testing.T) {
	t.Parallel()
	kc := filepath.Join(t.TempDir(), "kubeconfig") // Check wants a file; under mocks nothing connects to it
	require.NoError(t, os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	prog := program(t, shop.Env{Name: "prod", Kind: stacks.Prod, Kubeconfig: kc})

	g := slipwaytest.Mock(t, prog.Run, mocktest.Preview())
	deps := g.OfType("kubernetes:apps/v1:Deployment")
	require.Len(t, deps, 1)
	assert.EqualValues(t, 3, mocktest.Dig(deps[0].Inputs, "spec", "replicas"))
	assert.Equal(t, "1", mocktest.Dig(deps[0].Inputs, "spec", "template", "spec", "containers", 0, "resources", "limits", "cpu"))
	assert.Equal(t, 1, g.Count("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"), "prod scales out")
	assert.Equal(t, 1, g.Count("kubernetes:policy/v1:PodDisruptionBudget"))
	assert.Positive(t, g.Count("kubernetes:networking.k8s.io/v1:NetworkPolicy"), "the baseline's default-deny")

	slipwaytest.AssertCompliant(t, g, policypacks.Settings{Kind: "prod"}, kubernetes.Pack())
}

// The package's -update flag: slipwaytest registers none, and its
// AssertGolden honours this one (as it does SLIPWAYTEST_UPDATE=1).
var _ = flag.Bool("update", false, "rewrite testdata/*.golden")

// A preview of a new dev environment on the local cluster, compared with
// testdata/dev-preview.golden (rewrite it with -update): a change to the
// program's resources shows up as a diff in review.
func TestShop_DevPreviewGolden(t *testing.T) {
	t.Parallel()
	kc := slipwaytest.Kubeconfig(t)
	env := slipwaytest.New(t, program(t, shop.Env{Name: devName(), Kind: stacks.Dev, Kubeconfig: kc}), slipwaytest.WithoutUp())
	res := env.Preview()
	assert.Equal(t, "preview", res.Operation)
	slipwaytest.AssertGolden(t, res, "testdata/dev-preview.golden")
}

// A live dev environment: up with two replicas and an extra setting, under
// the Kubernetes pack, then its outputs, its rolled-out Deployment and its
// ConfigMap. The harness destroys it when the test ends and fails the test
// if anything is left behind.
func TestShop_DevLive(t *testing.T) {
	t.Parallel()
	kc := slipwaytest.Kubeconfig(t)
	e := shop.Env{Name: devName(), Kind: stacks.Dev, Kubeconfig: kc,
		Params: shop.Params{Replicas: 2, Settings: map[string]string{"FEATURE_CHECKOUT_V2": "on"}}}
	env := slipwaytest.New(t, program(t, e),
		slipwaytest.WithPolicies(policypacks.Settings{Kind: "dev"}, kubernetes.Pack()))

	ns := slipwaytest.Output[string](env, "namespace")
	assert.Equal(t, "shop-"+e.Name, ns)
	assert.Equal(t, 2, slipwaytest.Output[int](env, "replicas"))
	assert.Equal(t, "nginx:1.27", slipwaytest.Output[string](env, "image"), "dev's default image")
	deployment := slipwaytest.Output[string](env, "deployment")

	env.WaitForDeployment(ns, deployment, 3*time.Minute)
	cm := env.ConfigMap(ns, slipwaytest.Output[string](env, "configMap"))
	assert.Equal(t, map[string]string{"LOG_LEVEL": "debug", "QUEUE_DEPTH": "10", "SHOP_ENVIRONMENT": e.Name, "FEATURE_CHECKOUT_V2": "on"}, cm)

	assert.Contains(t, env.Owned(), slipwaytest.Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: deployment})
	assert.Contains(t, env.Owned(), slipwaytest.Object{APIVersion: "v1", Kind: "Namespace", Name: ns})

	// The same program again changes nothing.
	res := env.Up()
	assert.Zero(t, res.Changes(), "a second up of the same program: %s", slipwaytest.RenderChanges(res))
}
