package install

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/slipwayhq/slipway/integration/localk8s"
)

// digestImage is an image named by digest, as `slipway image build` gives.
const digestImage = "registry.example/team/slipway@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// byKey indexes objects by kind, namespace and name, failing on a
// duplicate.
func byKey(t *testing.T, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		k := o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
		require.NotContains(t, m, k, "duplicate object")
		m[k] = o
	}
	return m
}

// generatedRules are the rules of a generated ClusterRole (operator or
// runner).
func generatedRules(t *testing.T, dir string) []any {
	t.Helper()
	objs, err := readDir(rbacFiles, "rbac/"+dir)
	require.NoError(t, err)
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			rules, ok, err := unstructured.NestedSlice(o.Object, "rules")
			require.NoError(t, err)
			require.True(t, ok)
			require.NotEmpty(t, rules)
			return rules
		}
	}
	t.Fatalf("rbac/%s has no ClusterRole", dir)
	return nil
}

// TestRBAC_NamespacedHasNoClusterWideRule: in the namespaced mode every
// generated ClusterRole becomes a Role with the same rules in each watched
// namespace, nothing cluster-scoped grants anything, the only Role in the
// fleet's own namespace is the operator's leader election, and the
// Deployments get --watch-namespaces.
func TestRBAC_NamespacedHasNoClusterWideRule(t *testing.T) {
	t.Parallel()
	o := Options{Namespace: "fleet", WatchNamespaces: []string{"team-a", "team-b"}, Image: digestImage}
	objs, err := Manifests(o)
	require.NoError(t, err)
	m := byKey(t, objs)
	for k, obj := range m {
		switch obj.GetKind() {
		case "ClusterRole", "ClusterRoleBinding":
			t.Errorf("namespaced mode has %s", k)
		case "CustomResourceDefinition", "Namespace":
			assert.Empty(t, obj.GetNamespace(), k)
		default:
			assert.Contains(t, []string{"fleet", "team-a", "team-b"}, obj.GetNamespace(), k)
		}
	}
	for _, ns := range o.WatchNamespaces {
		for sa, dir := range map[string]string{OperatorName: "operator", RunnerName: "runner"} {
			role := m["Role/"+ns+"/"+sa]
			require.NotNil(t, role, "Role %s/%s", ns, sa)
			rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
			assert.Equal(t, generatedRules(t, dir), rules, "Role %s/%s has the generated rules", ns, sa)
			b := m["RoleBinding/"+ns+"/"+sa]
			require.NotNil(t, b, "RoleBinding %s/%s", ns, sa)
			subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
			assert.Equal(t, []any{map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": "fleet"}}, subjects)
			ref, _, _ := unstructured.NestedStringMap(b.Object, "roleRef")
			assert.Equal(t, map[string]string{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa}, ref)
		}
	}
	// In the fleet's namespace: the operator's leader election only (no
	// Secrets there; the runner has nothing there).
	var own []string
	for k, obj := range m {
		if obj.GetKind() == "Role" && obj.GetNamespace() == "fleet" {
			own = append(own, k)
			rules, _, _ := unstructured.NestedSlice(obj.Object, "rules")
			for _, r := range rules {
				assert.Equal(t, []any{"leases"}, r.(map[string]any)["resources"], k)
			}
		}
	}
	assert.Equal(t, []string{"Role/fleet/" + OperatorName}, own)
	for _, name := range []string{OperatorName, RunnerName} {
		d := m["Deployment/fleet/"+name]
		require.NotNil(t, d)
		ctrs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		require.Len(t, ctrs, 1)
		ctr := ctrs[0].(map[string]any)
		assert.Equal(t, digestImage, ctr["image"], "the digest is kept")
		args := ctr["args"].([]any)
		assert.Equal(t, "--watch-namespaces=team-a,team-b", args[len(args)-1], name)
	}
	// The cluster-wide mode, for contrast, is ClusterRoles only.
	cw, err := Manifests(Options{Namespace: "fleet", ClusterWide: true, Image: digestImage})
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, obj := range cw {
		kinds[obj.GetKind()]++
	}
	assert.Equal(t, 2, kinds["ClusterRole"])
	assert.Equal(t, 1, kinds["Role"])
}

func TestManifests_RefusesBadWatchNamespaces(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ns   []string
		want string
	}{
		{[]string{"Team_A"}, `WatchNamespaces: "Team_A" is not a namespace name`},
		{[]string{"a", "a"}, `WatchNamespaces: namespace "a" is listed twice`},
		{[]string{""}, "WatchNamespaces"},
	} {
		_, err := Manifests(Options{WatchNamespaces: tc.ns})
		require.Error(t, err, "%q", tc.ns)
		assert.Contains(t, err.Error(), tc.want)
		_, err = Kustomize(Options{WatchNamespaces: tc.ns})
		require.Error(t, err, "%q", tc.ns)
	}
}

// TestPolicies_DisruptionBudgetsAndNetworkPolicies: one PDB per
// Deployment selecting its pods, a default deny for every pod of the
// fleet, and per component ingress to metrics and health only, egress to
// DNS and EgressPorts only.
func TestPolicies_DisruptionBudgetsAndNetworkPolicies(t *testing.T) {
	t.Parallel()
	objs, err := Manifests(Options{Namespace: "fleet", ClusterWide: true, Image: digestImage})
	require.NoError(t, err)
	m := byKey(t, objs)
	for _, c := range []struct{ name, component string }{{OperatorName, "operator"}, {RunnerName, "runner"}} {
		d := m["Deployment/fleet/"+c.name]
		require.NotNil(t, d)
		podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
		pdb := m["PodDisruptionBudget/fleet/"+c.name]
		require.NotNil(t, pdb)
		sel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
		require.NotEmpty(t, sel)
		for k, v := range sel {
			assert.Equal(t, v, podLabels[k], "the PDB of %s selects its pods", c.name)
		}
		mu, _, _ := unstructured.NestedInt64(pdb.Object, "spec", "maxUnavailable")
		assert.Equal(t, int64(1), mu)

		np := m["NetworkPolicy/fleet/"+c.name]
		require.NotNil(t, np)
		sel, _, _ = unstructured.NestedStringMap(np.Object, "spec", "podSelector", "matchLabels")
		assert.Equal(t, selectorLabels(c.component), sel)
		ingress, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
		require.Len(t, ingress, 1)
		assert.Nil(t, ingress[0].(map[string]any)["from"], "probes and scrapers come from anywhere")
		assert.Equal(t, []any{map[string]any{"protocol": "TCP", "port": "metrics"}, map[string]any{"protocol": "TCP", "port": "health"}},
			ingress[0].(map[string]any)["ports"])
		egress, _, _ := unstructured.NestedSlice(np.Object, "spec", "egress")
		require.Len(t, egress, 1)
		var ports []string
		for _, p := range egress[0].(map[string]any)["ports"].([]any) {
			p := p.(map[string]any)
			ports = append(ports, fmt.Sprintf("%v/%v", p["protocol"], p["port"]))
		}
		want := []string{"UDP/53", "TCP/53"}
		for _, p := range EgressPorts[c.component] {
			want = append(want, fmt.Sprintf("TCP/%d", p))
		}
		assert.Equal(t, want, ports, c.name)
	}
	deny := m["NetworkPolicy/fleet/"+DefaultDenyName]
	require.NotNil(t, deny)
	types, _, _ := unstructured.NestedStringSlice(deny.Object, "spec", "policyTypes")
	assert.Equal(t, []string{"Ingress", "Egress"}, types)
	_, hasIn, _ := unstructured.NestedFieldNoCopy(deny.Object, "spec", "ingress")
	_, hasEg, _ := unstructured.NestedFieldNoCopy(deny.Object, "spec", "egress")
	assert.False(t, hasIn || hasEg, "the default deny allows nothing")
	sel, _, _ := unstructured.NestedStringMap(deny.Object, "spec", "podSelector", "matchLabels")
	assert.Equal(t, map[string]string{"app.kubernetes.io/name": "slipway"}, sel)
}

// build runs kustomize (krusty) on an overlay of a Kustomize layout.
func build(t *testing.T, files map[string][]byte, overlay string) []*unstructured.Unstructured {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	for p, b := range files {
		require.NoError(t, fs.WriteFile("/k/"+p, b))
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/k/"+overlay)
	require.NoError(t, err, "kustomize build %s", overlay)
	var objs []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		m, err := r.Map()
		require.NoError(t, err)
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// sameObjects asserts that got and want hold the same objects (in any
// order), compared as JSON.
func sameObjects(t *testing.T, want, got []*unstructured.Unstructured, what string) {
	t.Helper()
	w, g := byKey(t, want), byKey(t, got)
	require.Equal(t, keys(w), keys(g), "%s: the objects", what)
	for k, wo := range w {
		wj, err := wo.MarshalJSON()
		require.NoError(t, err)
		gj, err := g[k].MarshalJSON()
		require.NoError(t, err)
		assert.JSONEq(t, string(wj), string(gj), "%s: %s", what, k)
	}
}

func keys(m map[string]*unstructured.Unstructured) []string {
	return slices.Sorted(maps.Keys(m))
}

// TestKustomize_OverlaysBuildToManifests builds both overlays with
// kustomize (krusty): each gives exactly what Manifests gives for its
// mode, the image digest intact, so the layout cannot drift from the Go.
func TestKustomize_OverlaysBuildToManifests(t *testing.T) {
	t.Parallel()
	o := Options{Namespace: "fleet", Image: digestImage, WatchNamespaces: []string{"team-a", "team-b"}, Runners: 4}
	files, err := Kustomize(o)
	require.NoError(t, err)
	for _, p := range []string{"base/kustomization.yaml", "overlays/cluster-wide/kustomization.yaml", "overlays/namespaced/kustomization.yaml"} {
		require.Contains(t, files, p)
	}
	ns, err := Manifests(o)
	require.NoError(t, err)
	sameObjects(t, ns, build(t, files, KustomizeNamespaced), "namespaced overlay")
	cwOpts := o
	cwOpts.WatchNamespaces, cwOpts.ClusterWide = nil, true
	cw, err := Manifests(cwOpts)
	require.NoError(t, err)
	sameObjects(t, cw, build(t, files, KustomizeClusterWide), "cluster-wide overlay")

	again, err := Kustomize(o)
	require.NoError(t, err)
	assert.Equal(t, files, again, "the same options gave different files")
	// Without namespaces there is no namespaced overlay.
	only, err := Kustomize(cwOpts)
	require.NoError(t, err)
	assert.NotContains(t, only, "overlays/namespaced/kustomization.yaml")
	sameObjects(t, cw, build(t, only, KustomizeClusterWide), "cluster-wide overlay alone")
}

// applyBuilt applies the objects kustomize built to the cluster.
func applyBuilt(t *testing.T, c *localk8s.Cluster, objs []*unstructured.Unstructured) {
	t.Helper()
	require.NoError(t, Apply(testContext(t), c.Config, objs))
}

// TestKustomize_NamespacedOverlayAppliedIsLeastPrivilege applies the
// kustomize-built namespaced overlay to the control plane (server-side
// apply, for real: Deployments, PDBs and NetworkPolicies included), then
// acts as its ServiceAccounts: what the fleet needs in the watched
// namespace is allowed; a Secret of a namespace not listed, a Lease in
// kube-system, and anything cluster-wide are Forbidden.
func TestKustomize_NamespacedOverlayAppliedIsLeastPrivilege(t *testing.T) {
	c := installed(t)
	watched := fixtures(t, c, "kz-watched")
	other := fixtures(t, c, "kz-other")
	const fleetNS = "slipway-kz"
	t.Cleanup(func() {
		err := c.Client.CoreV1().Namespaces().Delete(context.Background(), fleetNS, metav1.DeleteOptions{})
		assert.NoError(t, err)
	})
	files, err := Kustomize(Options{Namespace: fleetNS, Image: digestImage, WatchNamespaces: []string{watched}})
	require.NoError(t, err)
	objs := build(t, files, KustomizeNamespaced)
	applyBuilt(t, c, objs)
	applyBuilt(t, c, objs) // idempotent
	d, err := c.Client.AppsV1().Deployments(fleetNS).Get(testContext(t), RunnerName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, digestImage, d.Spec.Template.Spec.Containers[0].Image)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--watch-namespaces="+watched)
	_, err = c.Client.PolicyV1().PodDisruptionBudgets(fleetNS).Get(testContext(t), OperatorName, metav1.GetOptions{})
	require.NoError(t, err)
	_, err = c.Client.NetworkingV1().NetworkPolicies(fleetNS).Get(testContext(t), DefaultDenyName, metav1.GetOptions{})
	require.NoError(t, err)

	for _, sa := range []string{RunnerName, OperatorName} {
		t.Run(sa, func(t *testing.T) {
			cs, dyn := clientsOf(t, c, fleetNS, sa)
			allowed := []action{
				{"get a secret in " + watched, func(ctx context.Context) error {
					_, err := cs.CoreV1().Secrets(watched).Get(ctx, "creds", metav1.GetOptions{})
					return err
				}},
				{"list runs in " + watched, func(ctx context.Context) error {
					_, err := dyn.Resource(runs).Namespace(watched).List(ctx, metav1.ListOptions{})
					return err
				}},
			}
			refused := []action{
				{"get a secret in " + other, func(ctx context.Context) error {
					_, err := cs.CoreV1().Secrets(other).Get(ctx, "creds", metav1.GetOptions{})
					return err
				}},
				{"get a secret in kube-system", func(ctx context.Context) error {
					_, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "creds", metav1.GetOptions{})
					return err
				}},
				{"create a lease in kube-system", func(ctx context.Context) error {
					_, err := cs.CoordinationV1().Leases("kube-system").Create(ctx, lease("slipway-test"), dryCreate)
					return err
				}},
				{"create a lease in " + other, func(ctx context.Context) error {
					_, err := cs.CoordinationV1().Leases(other).Create(ctx, lease("slipway-test"), dryCreate)
					return err
				}},
				{"list runs in all namespaces", func(ctx context.Context) error {
					_, err := dyn.Resource(runs).List(ctx, metav1.ListOptions{})
					return err
				}},
				{"list runs in " + other, func(ctx context.Context) error {
					_, err := dyn.Resource(runs).Namespace(other).List(ctx, metav1.ListOptions{})
					return err
				}},
				{"list environments in all namespaces", func(ctx context.Context) error {
					_, err := dyn.Resource(environments).List(ctx, metav1.ListOptions{})
					return err
				}},
			}
			if sa == RunnerName {
				allowed = append(allowed, action{"create a run's lease in " + watched, func(ctx context.Context) error {
					_, err := cs.CoordinationV1().Leases(watched).Create(ctx, lease("run-app-1"), dryCreate)
					return err
				}})
				refused = append(refused, action{"create a lease in its own namespace", func(ctx context.Context) error {
					_, err := cs.CoordinationV1().Leases(fleetNS).Create(ctx, lease("slipway-test"), dryCreate)
					return err
				}})
			} else {
				allowed = append(allowed, action{"create the leader election lease in " + fleetNS, func(ctx context.Context) error {
					_, err := cs.CoordinationV1().Leases(fleetNS).Create(ctx, lease(OperatorName), dryCreate)
					return err
				}}, action{"list environments in " + watched, func(ctx context.Context) error {
					_, err := dyn.Resource(environments).Namespace(watched).List(ctx, metav1.ListOptions{})
					return err
				}})
				refused = append(refused, action{"create a lease in " + watched, func(ctx context.Context) error {
					_, err := cs.CoordinationV1().Leases(watched).Create(ctx, lease("slipway-test"), dryCreate)
					return err
				}}, action{"get an environment in " + other, func(ctx context.Context) error {
					_, err := dyn.Resource(environments).Namespace(other).Get(ctx, "app", metav1.GetOptions{})
					return err
				}})
			}
			check(t, allowed, refused)
		})
	}
}

// TestKustomize_ClusterWideOverlayApplies applies the kustomize-built
// cluster-wide overlay (the same objects the package's install applied)
// to the control plane with server-side apply.
func TestKustomize_ClusterWideOverlayApplies(t *testing.T) {
	c := installed(t)
	files, err := Kustomize(Options{ClusterWide: true, Image: digestImage})
	require.NoError(t, err)
	objs := build(t, files, KustomizeClusterWide)
	applyBuilt(t, c, objs)
	_, err = c.Client.RbacV1().ClusterRoleBindings().Get(testContext(t), RunnerName, metav1.GetOptions{})
	require.NoError(t, err)
	_, err = c.Client.PolicyV1().PodDisruptionBudgets(DefaultNamespace).Get(testContext(t), RunnerName, metav1.GetOptions{})
	require.NoError(t, err)
}

// TestApply_NamespacedNeedsTheNamespaces: a namespace served that does not
// exist stops the install with an error naming it and the fix.
func TestApply_NamespacedNeedsTheNamespaces(t *testing.T) {
	c := installed(t)
	const fleetNS = "slipway-missing"
	t.Cleanup(func() {
		err := c.Client.CoreV1().Namespaces().Delete(context.Background(), fleetNS, metav1.DeleteOptions{})
		assert.NoError(t, err)
	})
	objs, err := RBAC(Options{Namespace: fleetNS, WatchNamespaces: []string{"no-such-tenant"}})
	require.NoError(t, err)
	err = Apply(testContext(t), c.Config, objs)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "create namespace no-such-tenant first")
}

// TestManifests_TheModeIsNeverADefault: Options without WatchNamespaces
// or ClusterWide, or with both, are refused naming them (the zero value
// is not the cluster-wide mode, in which the runners read every Secret).
func TestManifests_TheModeIsNeverADefault(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{{}, {ClusterWide: true, WatchNamespaces: []string{"team-a"}}} {
		for name, f := range map[string]func(Options) error{
			"Manifests": func(o Options) error { _, err := Manifests(o); return err },
			"RBAC":      func(o Options) error { _, err := RBAC(o); return err },
			"Kustomize": func(o Options) error { _, err := Kustomize(o); return err },
		} {
			err := f(o)
			require.Error(t, err, "%s(%+v)", name, o)
			assert.Contains(t, err.Error(), "WatchNamespaces", name)
			assert.Contains(t, err.Error(), "ClusterWide", name)
		}
	}
}
