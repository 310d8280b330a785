package minimal_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/examples/minimal"
	"github.com/slipwayhq/slipway/integration/mocktest"
	"github.com/slipwayhq/slipway/integration/slipwaytest"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
	"github.com/slipwayhq/slipway/stacks"
)

// TestMain serves the policy analyzer and shares one local cluster among
// the package's live tests (started by the first that asks for it).
func TestMain(m *testing.M) { slipwaytest.Main(m) }

// Under mocks, prod's program registers the baseline's namespace with prod's
// pod quota and the greeting's ConfigMap in it, and passes the Kubernetes
// pack at prod's (mandatory) enforcement.
func TestMinimal_ProdUnderMocks(t *testing.T) {
	t.Parallel()
	kc := filepath.Join(t.TempDir(), "kubeconfig") // Check wants a file; under mocks nothing connects to it
	require.NoError(t, os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	e := minimal.Definition.Env("prod", stacks.Prod)
	e.Kubeconfig = kc
	prog, err := minimal.Definition.Program(e)
	require.NoError(t, err)

	g := slipwaytest.Mock(t, prog.Run)
	nss := g.OfType("kubernetes:core/v1:Namespace")
	require.Len(t, nss, 1)
	assert.Equal(t, "minimal-prod", mocktest.Dig(nss[0].Inputs, "metadata", "name"))
	quotas := g.OfType("kubernetes:core/v1:ResourceQuota")
	require.Len(t, quotas, 1)
	assert.Equal(t, "20", mocktest.Dig(quotas[0].Inputs, "spec", "hard", "pods"), "prod's default")
	cms := g.OfType("kubernetes:core/v1:ConfigMap")
	require.Len(t, cms, 1)
	assert.Equal(t, map[string]any{"greeting": "hello"}, mocktest.Dig(cms[0].Inputs, "data"))
	assert.Positive(t, g.Count("kubernetes:networking.k8s.io/v1:NetworkPolicy"), "the baseline's default-deny")
	slipwaytest.AssertCompliant(t, g, policypacks.Settings{Kind: "prod"}, kubernetes.Pack())
}

// Live, on the package's local cluster: a dev environment with a greeting
// of its own comes up, its namespace and ConfigMap are there, a second up
// changes nothing; the harness destroys it and fails on anything left.
func TestMinimal_DevLive(t *testing.T) {
	t.Parallel()
	e := minimal.Definition.Env("dev-"+strings.ToLower(rand.Text()[:6]), stacks.Dev)
	e.Kubeconfig = slipwaytest.Kubeconfig(t)
	e.Params.Greeting = "hello, cluster"
	prog, err := minimal.Definition.Program(e)
	require.NoError(t, err)
	env := slipwaytest.New(t, prog, slipwaytest.WithPolicies(policypacks.Settings{Kind: "dev"}, kubernetes.Pack()))

	ns := slipwaytest.Output[string](env, "namespace")
	assert.Equal(t, "minimal-"+e.Name, ns)
	assert.Equal(t, map[string]string{"greeting": "hello, cluster"}, env.ConfigMap(ns, "hello"))
	assert.Contains(t, env.Owned(), slipwaytest.Object{APIVersion: "v1", Kind: "Namespace", Name: ns})
	res := env.Up()
	assert.Zero(t, res.Changes(), "a second up of the same program: %s", slipwaytest.RenderChanges(res))
}
