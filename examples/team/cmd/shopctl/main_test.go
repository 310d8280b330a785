package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/integration/slipwaytest"
)

// TestMain serves the policy analyzer and shares one local cluster among
// the package's tests (started by the first test that asks for it).
func TestMain(m *testing.M) { slipwaytest.Main(m) }

// build builds a command into dir and returns its path.
func build(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput()
	require.NoError(t, err, "go build %s:\n%s", pkg, b)
	return out
}

// The thin binary has every command of slipway, with the same flags
// except the definitions' own parameter shorthands.
func TestShopctl_HasEveryCommandOfSlipway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	shopctl := treeOf(t, binaryRunner(build(t, dir, "shopctl", ".")))
	slipway := treeOf(t, binaryRunner(build(t, dir, "slipway", "github.com/slipwayhq/slipway/cmd/slipway")))
	assert.Equal(t, "shopctl", shopctl[""].name, "cli.Name")
	assert.Equal(t, "slipway", slipway[""].name)
	require.Equal(t, slipway.paths(), shopctl.paths(), "the same commands")
	for _, want := range []string{"preview", "up", "refresh", "destroy", "drift", "ephemeral create", "ephemeral destroy", "promote",
		"rollback", "render", "gc", "policy check", "policy list", "cluster up"} {
		assert.Contains(t, shopctl.paths(), want)
	}
	// The definitions' shorthands (web: --image --replicas --namespace
	// --set --strategy --gateway; shop: --log-level too) may differ; every
	// other flag is the same.
	own := map[string]bool{"image": true, "replicas": true, "namespace": true, "set": true, "strategy": true, "gateway": true, "log-level": true}
	for _, p := range slipway.paths() {
		strip := func(h help) []string {
			return slices.Sorted(func(yield func(string) bool) {
				for f := range maps.Keys(h.flags) {
					if !own[f] && !yield(f) {
						return
					}
				}
			})
		}
		assert.Equal(t, strip(slipway[p]), strip(shopctl[p]), "flags of %q", p)
	}
	if h := shopctl["up"]; assert.Contains(t, h.flags, "log-level", "shop's own flag") {
		assert.True(t, h.flags["log-level"], "--log-level takes a value")
	}
}

// The thin binary drives a shop environment end to end on the local
// cluster, with the exit codes and outputs of slipway.
func TestShopctl_EndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := build(t, dir, "shopctl", ".")
	kc := slipwaytest.Kubeconfig(t)
	work := filepath.Join(dir, "work")
	state := filepath.Join(dir, "state") // a file backend's directory must exist (as an S3 bucket must)
	require.NoError(t, os.MkdirAll(state, 0o755))
	backend := "file://" + state
	run := func(args ...string) outcome {
		t.Helper()
		r := binaryRunner(bin)(t, append([]string{"--dir", work, "--backend", backend}, args...)...)
		t.Logf("shopctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		return r
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	require.NoError(t, err)
	client, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	ctx := context.Background()
	// gone reports whether a namespace is deleted or being deleted.
	gone := func(ns string) bool {
		n, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true
		}
		require.NoError(t, err)
		return n.DeletionTimestamp != nil
	}
	t.Cleanup(func() { // after a failure, leave the shared cluster clean
		for _, env := range []string{"dev", "pr-7"} {
			if !gone("shop-" + env) {
				run("destroy", "--yes", "--env", env, "--kubeconfig", kc, "--remove")
			}
		}
	})

	// Policy under mocks: no engine, cluster or backend.
	r := run("policy", "check", "--env", "prod", "--policy", "kubernetes")
	assert.Equal(t, 0, r.code, "policy check of prod")
	files, err := os.ReadDir(state)
	require.NoError(t, err)
	assert.Empty(t, files, "policy check touches no backend")

	// A bad parameter: exit 1, the parameter named, nothing touched.
	r = run("up", "--env", "dev", "--param", "replicas=abc", "--kubeconfig", kc)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "replicas")
	assert.Contains(t, r.stderr, "abc")
	assert.True(t, gone("shop-dev"), "no namespace")
	stacks, err := filepath.Glob(filepath.Join(state, ".pulumi", "stacks", "shop", "*.json"))
	require.NoError(t, err)
	assert.Empty(t, stacks, "no stack")

	// A preview as a pull-request summary: 2 means changes found.
	r = run("preview", "--env", "dev", "--kubeconfig", kc, "--format", "markdown")
	assert.Contains(t, []int{0, 2}, r.code, "preview")
	assert.Contains(t, r.stdout, "dev")
	assert.Contains(t, r.stdout, "Deployment")

	// Up with the team's parameters and the Kubernetes pack.
	r = run("up", "--env", "dev", "--param", "image=nginx:1.27", "--param", "replicas=2", "--kubeconfig", kc, "--policy", "kubernetes")
	require.Equal(t, 0, r.code, "up")
	assert.False(t, gone("shop-dev"), "namespace shop-dev")
	d, err := client.AppsV1().Deployments("shop-dev").Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, d.Spec.Replicas)
	assert.EqualValues(t, 2, *d.Spec.Replicas)
	assert.Equal(t, "nginx:1.27", d.Spec.Template.Spec.Containers[0].Image)
	cm, err := client.CoreV1().ConfigMaps("shop-dev").Get(ctx, "shop-config", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "debug", cm.Data["LOG_LEVEL"], "dev's default")

	// No drift right after the up.
	r = run("drift", "--env", "dev", "--kubeconfig", kc)
	assert.Equal(t, 0, r.code, "drift")

	// A pull request's environment, then its removal.
	r = run("ephemeral", "create", "--env", "pr-7", "--key", "7", "--ttl", "1h", "--kubeconfig", kc)
	require.Equal(t, 0, r.code, "ephemeral create")
	assert.False(t, gone("shop-pr-7"), "namespace shop-pr-7")
	r = run("ephemeral", "destroy", "--yes", "--env", "pr-7") // the stack knows its cluster
	assert.Equal(t, 0, r.code, "ephemeral destroy")
	assert.True(t, gone("shop-pr-7"), "namespace shop-pr-7 removed")

	r = run("destroy", "--yes", "--env", "dev", "--remove", "--kubeconfig", kc)
	assert.Equal(t, 0, r.code, "destroy")
	assert.True(t, gone("shop-dev"), "namespace shop-dev removed")
	_, err = client.AppsV1().Deployments("shop-dev").Get(ctx, "shop", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the Deployment is deleted: %v", err)
	stacks, err = filepath.Glob(filepath.Join(state, ".pulumi", "stacks", "shop", "*.json"))
	require.NoError(t, err)
	assert.Empty(t, stacks, "--remove removed the stacks")
}

// shopctl params shows the shop's own parameters and a kind's defaults.
func TestShopctl_ParamsAreTheShops(t *testing.T) {
	t.Parallel()
	r := inProcess(t, "params", "--kind", "prod")
	require.Equal(t, 0, r.code, r.stderr)
	var out struct {
		Definitions []struct {
			Name  string
			Paths []string
		}
		Params map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Len(t, out.Definitions, 1)
	assert.Equal(t, "shop", out.Definitions[0].Name)
	assert.Contains(t, out.Definitions[0].Paths, "QueueDepth")
	assert.Contains(t, out.Definitions[0].Paths, "Resources.CPULimit")
	assert.Equal(t, "shop-prod", out.Params["Namespace"])
	assert.EqualValues(t, 3, out.Params["Replicas"])
	assert.Equal(t, "warn", out.Params["LogLevel"])
}

// Invalid parameters are refused before anything is touched, every
// problem named with the flag that gave it, exit 1.
func TestShopctl_RefusesInvalidParamsBeforeAnything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	work := filepath.Join(dir, "work")
	r := inProcess(t, "--dir", work, "up", "--env", "prod", "--kubeconfig", kc,
		"--replicas", "1", "--param", "image=ghcr.io/acme/shop:latest", "--log-level", "loud")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "shopctl: shop: ")
	assert.Contains(t, r.stderr, `Env.Params.Image: "ghcr.io/acme/shop:latest" has no pinned tag`)
	assert.Contains(t, r.stderr, "Env.Params.Replicas: 1 is too few for a prod environment")
	assert.Contains(t, r.stderr, `Env.Params.LogLevel: "loud" is not a level`)
	assert.Contains(t, r.stderr, "--log-level loud")
	_, err := os.Stat(work)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing written")

	r = inProcess(t, "--dir", work, "preview", "--env", "dev", "--kubeconfig", kc, "--param", "replica=2")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "replica")
	assert.Contains(t, r.stderr, "QueueDepth", "the valid paths are listed")
}
