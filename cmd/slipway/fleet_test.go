package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/stacks"
)

// TestCLI_OperatorInstallPrintWritesEveryManifest checks `operator install
// --print`: CRDs, RBAC and both Deployments, with the replicas and image
// asked for, and nothing applied.
func TestCLI_OperatorInstallPrintWritesEveryManifest(t *testing.T) {
	t.Parallel()
	r := exe(t, t.TempDir(), nil, "operator", "install", "--print", "--cluster-wide", "--namespace", "fleet-system", "--image", "registry.example.com/team/shopctl:1.2.3",
		"--operators", "2", "--runners", "4", "--runner-concurrency", "3")
	require.Equal(t, 0, r.code, r.stderr)
	dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(r.stdout), 4096)
	kinds := map[string]int{}
	deployments := map[string]appsv1.Deployment{}
	for {
		var u unstructured.Unstructured
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if u.Object == nil {
			continue
		}
		kinds[u.GetKind()]++
		if u.GetKind() == "Deployment" {
			var d appsv1.Deployment
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d))
			assert.Equal(t, "fleet-system", d.Namespace)
			deployments[d.Name] = d
		}
		assert.NotEqual(t, "Secret", u.GetKind(), "no Secret is printed")
	}
	assert.Equal(t, 2, kinds["CustomResourceDefinition"])
	assert.Equal(t, 2, kinds["ServiceAccount"])
	assert.Equal(t, 2, kinds["ClusterRole"])
	assert.Equal(t, 2, kinds["Deployment"])
	require.Contains(t, deployments, "slipway-operator")
	require.Contains(t, deployments, "slipway-runner")
	op, run := deployments["slipway-operator"], deployments["slipway-runner"]
	assert.Equal(t, int32(2), *op.Spec.Replicas)
	assert.Equal(t, int32(4), *run.Spec.Replicas)
	assert.Equal(t, "registry.example.com/team/shopctl:1.2.3", run.Spec.Template.Spec.Containers[0].Image)
	assert.Contains(t, run.Spec.Template.Spec.Containers[0].Args, "--concurrency=3")
	assert.Contains(t, op.Spec.Template.Spec.Containers[0].Args, "--leader-election-namespace=fleet-system")
	assert.Equal(t, "slipway-runner", run.Spec.Template.Spec.ServiceAccountName)
}

// TestCLI_OperatorInstallKustomizeWritesBothOverlays checks `operator
// install --kustomize DIR --watch-namespaces ...`: the base and both
// overlays are written, the namespaced one with a Role per namespace and the
// image digest intact.
func TestCLI_OperatorInstallKustomizeWritesBothOverlays(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	image := "registry.example.com/team/shopctl@sha256:" + strings.Repeat("ab", 32)
	r := exe(t, t.TempDir(), nil, "operator", "install", "--kustomize", dir, "--watch-namespaces", "team-a,team-b", "--image", image)
	require.Equal(t, 0, r.code, r.stderr)
	for _, p := range []string{"base/kustomization.yaml", "base/deployments.yaml", "base/policies.yaml",
		"overlays/cluster-wide/kustomization.yaml", "overlays/namespaced/kustomization.yaml", "overlays/namespaced/rbac.yaml"} {
		assert.FileExists(t, filepath.Join(dir, p))
	}
	b, err := os.ReadFile(filepath.Join(dir, "base", "deployments.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "image: "+image)
	b, err = os.ReadFile(filepath.Join(dir, "overlays", "namespaced", "kustomization.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "--watch-namespaces=team-a,team-b")
	b, err = os.ReadFile(filepath.Join(dir, "overlays", "namespaced", "rbac.yaml"))
	require.NoError(t, err)
	assert.NotContains(t, string(b), "ClusterRole")
	assert.Equal(t, 4, strings.Count(string(b), "\nkind: Role\n"), "a Role per component and namespace")
}

// TestCLI_OperatorInstallAppliesCRDsAndRBAC applies the CRDs and RBAC to the
// package's cluster through the binary; a second install changes nothing.
func TestCLI_OperatorInstallAppliesCRDsAndRBAC(t *testing.T) {
	t.Parallel()
	for i := range 2 {
		r := exe(t, t.TempDir(), nil, "--json", "operator", "install", "--cluster-wide", "--kubeconfig", cluster.Kubeconfig, "--namespace", "cli-fleet")
		require.Equal(t, 0, r.code, "install %d: %s", i, r.stderr)
		envelopeOf(t, r)
	}
	ctx := context.Background()
	for _, sa := range []string{"slipway-operator", "slipway-runner"} {
		_, err := cluster.Client.CoreV1().ServiceAccounts("cli-fleet").Get(ctx, sa, metav1.GetOptions{})
		assert.NoError(t, err, sa)
	}
	res, err := cluster.Client.Discovery().ServerResourcesForGroupVersion("slipway.dev/v1alpha1")
	require.NoError(t, err)
	var names []string
	for _, r := range res.APIResources {
		names = append(names, r.Name)
	}
	assert.Subset(t, names, []string{"environments", "runs", "environments/status", "runs/status"})
}

// TestCLI_FleetLocal runs the README's fleet command: `fleet local` starts
// a local control plane of its own, installs the CRDs and RBAC, and runs an
// operator and a runner; an Environment applied to it becomes Ready with
// its objects, is destroyed on deletion, and an interrupt stops the fleet
// with exit code 0.
func TestCLI_FleetLocal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	probe := freeAddr(t)
	cmd := exec.Command(binary, "--dir", dir, "fleet", "local", "--metrics-bind-address", "0", "--health-probe-bind-address", probe,
		// The Environment below gives no target kubeconfig: its program uses the fleet's own credentials.
		"--allow-runner-credentials", "default")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-done
		}
		if r := exe(t, dir, nil, "cluster", "down"); r.code != 0 {
			t.Errorf("cluster down: %s", r.stderr)
		}
		if t.Failed() {
			t.Logf("fleet local's log:\n%s", logs.String())
		}
	})
	ctx := context.Background()
	var c client.Client
	waitUntil(t, done, 5*time.Minute, "the fleet's operator ready", func() bool {
		resp, err := http.Get("http://" + probe + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "cluster", "kubeconfig"))
	require.NoError(t, err)
	scheme, err := fleet.Scheme()
	require.NoError(t, err)
	c, err = client.New(cfg, client.Options{Scheme: scheme})
	require.NoError(t, err)
	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "state", Namespace: "default"},
		StringData: map[string]string{"passphrase": "fleet-local"}}))
	env := &v1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "local-dev", Namespace: "default"},
		Spec: v1alpha1.EnvironmentSpec{Inputs: v1alpha1.Inputs{Definition: "web", Kind: "dev",
			Backend: v1alpha1.Backend{URL: "file://" + filepath.Join(dir, "fleet-state"),
				PassphraseSecretRef: &v1alpha1.SecretKeyRef{Name: "state", Key: "passphrase"}}}}}
	require.NoError(t, c.Create(ctx, env))
	waitUntil(t, done, 5*time.Minute, "local-dev Ready", func() bool {
		if err := c.Get(ctx, client.ObjectKeyFromObject(env), env); err != nil {
			return false
		}
		return meta.IsStatusConditionTrue(env.Status.Conditions, v1alpha1.ConditionReady)
	})
	var dep appsv1.Deployment
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "slipway-" + stacks.EnvID("default", "local-dev"), Name: "web"}, &dep), "the environment's Deployment")
	require.NoError(t, c.Delete(ctx, env))
	waitUntil(t, done, 5*time.Minute, "local-dev destroyed and deleted", func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(env), env))
	})
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	stopped = true
	select {
	case err := <-done:
		assert.NoError(t, err, "an interrupt stops the fleet cleanly")
		assert.NotContains(t, logs.String(), "was never called", "the fleet sets controller-runtime's logger")
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("fleet local did not stop within a minute of an interrupt")
	}
}

// waitUntil polls cond until it holds, failing when timeout passes or the
// process ends (done).
func waitUntil(t *testing.T, done chan error, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("%s: fleet local exited: %v", what, err)
		case <-deadline:
			t.Fatalf("%s: not within %s", what, timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}
