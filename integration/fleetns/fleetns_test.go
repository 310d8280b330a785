// Package fleetns_test runs the fleet in the namespaced install mode on a
// local control plane of its own: the RBAC of install.Manifests with
// WatchNamespaces, an operator and a runner (in this process, each with
// its own client impersonating its generated ServiceAccount, so only that
// RBAC is what they run with) serving one namespace. An Environment there
// reaches Ready; the ServiceAccounts are Forbidden outside it; an
// Environment and a Run of a namespace not listed are never touched.
//
// The package is separate from integration/fleet, whose fleet is
// cluster-wide and would reconcile every namespace.
package fleetns_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	k8scorev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	k8smetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/install"
	"github.com/slipwayhq/slipway/automation/fleet/operator"
	"github.com/slipwayhq/slipway/automation/fleet/runner"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/integration/localk8s"
	"github.com/slipwayhq/slipway/stacks"
)

const (
	// fleetNS holds the fleet's ServiceAccounts and the operator's
	// leader-election Lease.
	fleetNS = "slipway-ns"
	// watched is the one namespace the fleet serves; other is not listed.
	watched = "tenant-a"
	other   = "tenant-b"
)

var (
	cluster *localk8s.Cluster
	admin   client.Client
	// state is the file backend's directory.
	state string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var err error
	if state, err = os.MkdirTemp("", "slipway-fleetns-"); err != nil {
		fmt.Fprintln(os.Stderr, "fleetns:", err)
		return 1
	}
	defer os.RemoveAll(state)
	log, err := os.Create(filepath.Join(state, "cluster.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetns:", err)
		return 1
	}
	defer log.Close()
	if cluster, err = localk8s.StartCluster(ctx, localk8s.WithLog(log)); err != nil {
		fmt.Fprintln(os.Stderr, "fleetns: starting the control plane:", err)
		return 1
	}
	code := 1
	if err := setup(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fleetns:", err)
	} else {
		code = m.Run()
	}
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "fleetns: stopping the control plane:", err)
		code = 1
	}
	return code
}

// setup installs the CRDs and the namespaced RBAC, and creates both
// tenants' namespaces with the same Secrets.
func setup(ctx context.Context) error {
	scheme, err := fleet.Scheme()
	if err != nil {
		return err
	}
	if admin, err = client.New(cluster.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	// The watched namespaces exist before the install: their tenants own
	// them; the install only adds the fleet's Roles there.
	for _, ns := range []string{watched, other} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	crds, err := install.CRDs()
	if err != nil {
		return err
	}
	rbac, err := install.RBAC(install.Options{Namespace: fleetNS, WatchNamespaces: []string{watched}})
	if err != nil {
		return err
	}
	if err := install.Apply(ctx, cluster.Config, append(crds, rbac...)); err != nil {
		return err
	}
	target, err := cluster.InlineKubeconfig("")
	if err != nil {
		return err
	}
	for _, ns := range []string{watched, other} {
		for name, data := range map[string]map[string]string{
			"target": {"kubeconfig": string(target)},
			"state":  {"passphrase": "fleetns-passphrase-not-secret"},
		} {
			if err := admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}); err != nil {
				return err
			}
		}
	}
	return nil
}

// as returns a client configuration acting as one of the fleet's
// ServiceAccounts, with the groups a real token of it has.
func as(sa string) *rest.Config {
	cfg := rest.CopyConfig(cluster.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + fleetNS + ":" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + fleetNS, "system:authenticated"},
	}
	return cfg
}

// TestNamespaced_ServiceAccountsForbiddenOutside: both ServiceAccounts of
// the namespaced install may read a Secret in the watched namespace, and
// are Forbidden to read one in a namespace not listed or to create a Lease
// in kube-system.
func TestNamespaced_ServiceAccountsForbiddenOutside(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, sa := range []string{install.OperatorName, install.RunnerName} {
		cs, err := kubernetes.NewForConfig(as(sa))
		require.NoError(t, err)
		_, err = cs.CoreV1().Secrets(watched).Get(ctx, "state", metav1.GetOptions{})
		require.NoError(t, err, "%s reads a Secret of %s", sa, watched)

		_, err = cs.CoreV1().Secrets(other).Get(ctx, "state", metav1.GetOptions{})
		assert.True(t, apierrors.IsForbidden(err), "%s: a Secret of %s: want Forbidden, got %v", sa, other, err)
		_, err = cs.CoordinationV1().Leases("kube-system").Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "slipway-fleetns-test"},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(sa)},
		}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		assert.True(t, apierrors.IsForbidden(err), "%s: a Lease in kube-system: want Forbidden, got %v", sa, err)
	}
}

// cmParams are the test program's parameters.
type cmParams struct {
	// Data is the ConfigMap's data.
	Data map[string]string
}

// cmDefinition is a tiny definition: a namespace "fleetns-<env>" and a
// ConfigMap "settings" in it.
var cmDefinition = &stacks.Definition[cmParams]{
	Name:        "cm",
	Project:     "fleetns",
	Description: "a namespace and one ConfigMap",
	Validate: func(e stacks.Env[cmParams]) error {
		if len(e.Params.Data) == 0 {
			return stacks.Errorf("Params.Data", "is empty; set at least one key")
		}
		return nil
	},
	Run: func(ctx *pulumi.Context, e stacks.Env[cmParams]) error {
		prov, err := e.KubernetesProvider(ctx, "k8s")
		if err != nil {
			return err
		}
		ns, err := k8scorev1.NewNamespace(ctx, "ns", &k8scorev1.NamespaceArgs{
			Metadata: &k8smetav1.ObjectMetaArgs{Name: pulumi.String("fleetns-" + e.Name)},
		}, pulumi.Provider(prov))
		if err != nil {
			return err
		}
		_, err = k8scorev1.NewConfigMap(ctx, "settings", &k8scorev1.ConfigMapArgs{
			Metadata: &k8smetav1.ObjectMetaArgs{Name: pulumi.String("settings"), Namespace: ns.Metadata.Name().Elem()},
			Data:     pulumi.ToStringMap(e.Params.Data),
		}, pulumi.Provider(prov))
		return err
	},
	Plugins: func(stacks.Env[cmParams]) []automation.Plugin {
		return []automation.Plugin{automation.KubernetesPlugin}
	},
}

// newEnv is an Environment of the cm definition in namespace ns.
func newEnv(ns, name string) *v1alpha1.Environment {
	return &v1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.EnvironmentSpec{Inputs: v1alpha1.Inputs{
			Definition: "cm",
			Kind:       "dev",
			Params:     &apiextensionsv1.JSON{Raw: []byte(`{"Data":{"tenant":"` + ns + `"}}`)},
			Target:     v1alpha1.Target{KubeconfigSecretRef: &v1alpha1.SecretKeyRef{Name: "target", Key: "kubeconfig"}},
			Backend: v1alpha1.Backend{URL: "file://" + filepath.Join(state, "backend-"+ns),
				PassphraseSecretRef: &v1alpha1.SecretKeyRef{Name: "state", Key: "passphrase"}},
		}},
	}
}

// TestNamespaced_EnvironmentReadyAndOtherNamespacesUntouched runs an
// operator and a runner serving only the watched namespace, each as its
// ServiceAccount. An Environment and a hand-made Run in the namespace not
// listed exist before they start; the watched namespace's Environment
// reaches Ready with its ConfigMap, and the other namespace's objects are
// never touched (no finalizer, no status, no Run, the Run still Pending).
func TestNamespaced_EnvironmentReadyAndOtherNamespacesUntouched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, dir := range []string{"backend-" + watched, "backend-" + other} {
		require.NoError(t, os.MkdirAll(filepath.Join(state, dir), 0o700))
	}
	outside := newEnv(other, "outside")
	require.NoError(t, admin.Create(ctx, outside))
	strayRun := &v1alpha1.Run{
		ObjectMeta: metav1.ObjectMeta{Name: "stray-1", Namespace: other, Labels: map[string]string{"slipway.dev/environment": "stray"}},
		Spec:       v1alpha1.RunSpec{Environment: "stray", Operation: v1alpha1.OpUp, Inputs: outside.Spec.Inputs},
	}
	require.NoError(t, admin.Create(ctx, strayRun))

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := fleet.Registry{Definitions: []stacks.Builder{cmDefinition}}
	runCtx, stop := context.WithCancel(ctx)
	errs := make(chan error, 2)
	go func() {
		errs <- operator.Run(runCtx, as(install.OperatorName), operator.Options{Registry: reg, Logger: logger.With("component", "operator")},
			operator.ManagerOptions{LeaderElection: true, LeaderElectionNamespace: fleetNS, Identity: "operator-0",
				Namespaces: []string{watched}, MetricsBindAddress: "0"})
	}()
	go func() {
		errs <- runner.Run(runCtx, as(install.RunnerName), runner.Options{Identity: "runner-0", Namespaces: []string{watched},
			Registry: reg, WorkDir: t.TempDir(), Logger: logger.With("component", "runner"), LeaseDuration: 6 * time.Second,
			Engine: []automation.EngineOption{automation.WithResolver(toolchain.New(toolchain.WithLog(os.Stderr)))}}, "0", "0")
	}()
	t.Cleanup(func() {
		stop()
		for range 2 {
			select {
			case err := <-errs:
				assert.NoError(t, err, "a fleet process stopped with an error")
			case <-time.After(time.Minute):
				t.Error("a fleet process did not stop within a minute")
			}
		}
	})

	env := newEnv(watched, "inside")
	require.NoError(t, admin.Create(ctx, env))
	deadline := time.Now().Add(5 * time.Minute)
	for {
		select {
		case err := <-errs:
			t.Fatalf("a fleet process stopped early: %v", err)
		default:
		}
		require.NoError(t, admin.Get(ctx, client.ObjectKeyFromObject(env), env))
		if meta.IsStatusConditionTrue(env.Status.Conditions, v1alpha1.ConditionReady) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Environment %s/%s not Ready after 5m; conditions: %+v", watched, env.Name, env.Status.Conditions)
		}
		time.Sleep(500 * time.Millisecond)
	}
	cm, err := cluster.Client.CoreV1().ConfigMaps("fleetns-inside").Get(ctx, "settings", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"tenant": watched}, cm.Data)
	t.Cleanup(func() {
		// The program's namespace; the Environment is left (its stack is
		// in a temporary directory, the control plane goes away).
		err := cluster.Client.CoreV1().Namespaces().Delete(context.Background(), "fleetns-inside", metav1.DeleteOptions{})
		assert.NoError(t, err)
	})

	// The other namespace: both processes have long listed and started
	// (the Environment is Ready); nothing of tenant-b was touched.
	require.NoError(t, admin.Get(ctx, client.ObjectKeyFromObject(outside), outside))
	assert.Empty(t, outside.Finalizers, "the operator added its finalizer to an Environment of %s", other)
	assert.Empty(t, outside.Status.Conditions, "the operator reconciled an Environment of %s", other)
	var runs v1alpha1.RunList
	require.NoError(t, admin.List(ctx, &runs, client.InNamespace(other)))
	require.Len(t, runs.Items, 1, "only the hand-made Run exists in %s", other)
	assert.Equal(t, "stray-1", runs.Items[0].Name)
	assert.Empty(t, runs.Items[0].Status.Phase, "a runner claimed a Run of %s", other)
	var leases coordinationv1.LeaseList
	require.NoError(t, admin.List(ctx, &leases, client.InNamespace(other)))
	assert.Empty(t, leases.Items, "a Lease in %s", other)
}
