package install

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/slipwayhq/slipway/integration/localk8s"
)

var (
	environments = schema.GroupVersionResource{Group: "slipway.dev", Version: "v1alpha1", Resource: "environments"}
	runs         = schema.GroupVersionResource{Group: "slipway.dev", Version: "v1alpha1", Resource: "runs"}
)

// One control plane for the package, started by the first test that needs
// it and stopped by TestMain.
var (
	clusterOnce sync.Once
	shared      *localk8s.Cluster
	sharedErr   error
	sharedLog   lockedBuffer

	installOnce sync.Once
	installErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "localk8s: stop:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// lockedBuffer collects the cluster's progress output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cluster returns the package's control plane, starting it on first use.
func cluster(t *testing.T) *localk8s.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		shared, sharedErr = localk8s.StartCluster(ctx, localk8s.WithLog(&sharedLog))
	})
	require.NoError(t, sharedErr, "starting the control plane:\n%s", sharedLog.String())
	return shared
}

// installed returns the control plane with Manifests(Options{ClusterWide:
// true, Image: digestImage}) applied.
func installed(t *testing.T) *localk8s.Cluster {
	t.Helper()
	c := cluster(t)
	installOnce.Do(func() {
		objs, err := Manifests(Options{ClusterWide: true, Image: digestImage})
		if err != nil {
			installErr = err
			return
		}
		installErr = Apply(testContext(t), c.Config, objs)
	})
	require.NoError(t, installErr)
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// namespace creates a namespace for one test and deletes it afterwards.
func namespace(t *testing.T, c *localk8s.Cluster, name string) string {
	t.Helper()
	ctx := testContext(t)
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		err := c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
	return name
}

func TestApply_CRDsEstablishedAndIdempotent(t *testing.T) {
	c := cluster(t)
	ctx := testContext(t)
	crds, err := CRDs()
	require.NoError(t, err)
	require.Len(t, crds, 2)
	rbac, err := RBAC(Options{ClusterWide: true})
	require.NoError(t, err)
	objs := append(crds, rbac...)

	require.NoError(t, Apply(ctx, c.Config, objs))
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	for _, crd := range crds {
		got, err := dyn.Resource(crdResource).Get(ctx, crd.GetName(), metav1.GetOptions{})
		require.NoError(t, err)
		assert.True(t, hasCondition(got, "Established"), "%s is not Established: %v", crd.GetName(), got.Object["status"])
	}
	// The kinds are served: listing them works.
	for _, gvr := range []schema.GroupVersionResource{environments, runs} {
		_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		require.NoError(t, err, gvr.Resource)
	}

	before := resourceVersions(t, dyn, objs)
	require.NoError(t, Apply(ctx, c.Config, objs), "applying again")
	assert.Equal(t, before, resourceVersions(t, dyn, objs), "applying the same objects again changed them")
}

// resourceVersions returns the resourceVersion of every object, by kind/namespace/name.
func resourceVersions(t *testing.T, dyn dynamic.Interface, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	gvrs := map[string]schema.GroupVersionResource{
		"CustomResourceDefinition": crdResource,
		"Namespace":                {Version: "v1", Resource: "namespaces"},
		"ServiceAccount":           {Version: "v1", Resource: "serviceaccounts"},
		"ClusterRole":              {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
		"Role":                     {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
		"ClusterRoleBinding":       {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
		"RoleBinding":              {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	}
	out := map[string]string{}
	for _, obj := range objs {
		gvr, ok := gvrs[obj.GetKind()]
		require.True(t, ok, obj.GetKind())
		var ri dynamic.ResourceInterface = dyn.Resource(gvr)
		if obj.GetNamespace() != "" {
			ri = dyn.Resource(gvr).Namespace(obj.GetNamespace())
		}
		got, err := ri.Get(context.Background(), obj.GetName(), metav1.GetOptions{})
		require.NoError(t, err)
		out[obj.GetKind()+" "+obj.GetNamespace()+"/"+obj.GetName()] = got.GetResourceVersion()
	}
	return out
}

func hasCondition(obj *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if c, ok := c.(map[string]any); ok && c["type"] == typ && c["status"] == "True" {
			return true
		}
	}
	return false
}

func TestApply_DeploymentsBecomeReady(t *testing.T) {
	c := installed(t)
	ctx := testContext(t)
	for name, want := range map[string]int32{OperatorName: DefaultOperators, RunnerName: DefaultRunners} {
		// The ServiceAccount admission refuses pods of a missing account,
		// and the API server validates the pod template: ready replicas
		// prove both are right (kwok plays the kubelet).
		require.Eventually(t, func() bool {
			d, err := c.Client.AppsV1().Deployments(DefaultNamespace).Get(ctx, name, metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == want
		}, time.Minute, 200*time.Millisecond, "Deployment %s never had %d ready replicas", name, want)
	}
}

func env(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "slipway.dev/v1alpha1", "kind": "Environment",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"definition": "web", "kind": "dev",
			"backend": map[string]any{"url": "s3://state?endpoint=http://127.0.0.1:9000"},
		},
	}}
}

func run(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "slipway.dev/v1alpha1", "kind": "Run",
		"metadata": map[string]any{"name": name, "namespace": ns,
			"labels": map[string]any{"slipway.dev/environment": "app"}},
		"spec": map[string]any{
			"environment": "app", "operation": "up", "definition": "web",
			"backend": map[string]any{"url": "s3://state"},
		},
	}}
}

func TestSchema_RefusesBadInput(t *testing.T) {
	c := installed(t)
	ctx := testContext(t)
	ns := namespace(t, c, "schema-test")
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	// The valid objects are accepted, so the refusals below are for the
	// field each case breaks. A 40-character name is the longest allowed.
	_, err = dyn.Resource(environments).Namespace(ns).Create(ctx, env(ns, strings.Repeat("a", 40)), dryRun)
	require.NoError(t, err)
	_, err = dyn.Resource(runs).Namespace(ns).Create(ctx, run(ns, "app-1"), dryRun)
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		obj    *unstructured.Unstructured
		edit   func(m map[string]any)
		gvr    schema.GroupVersionResource
		fields []string
	}{{
		name:   "name longer than 40 characters",
		obj:    env(ns, strings.Repeat("a", 41)),
		gvr:    environments,
		fields: []string{"metadata.name names the stack: use a DNS label of at most 40 characters"},
	}, {
		name:   "unknown kind",
		obj:    env(ns, "kind"),
		edit:   func(m map[string]any) { m["kind"] = "production" },
		gvr:    environments,
		fields: []string{"spec.kind", `Unsupported value: "production"`},
	}, {
		name:   "backend URL scheme",
		obj:    env(ns, "backend"),
		edit:   func(m map[string]any) { m["backend"] = map[string]any{"url": "ftp://x"} },
		gvr:    environments,
		fields: []string{"spec.backend.url", "should match"},
	}, {
		name: "source ref with branch and tag",
		obj:  env(ns, "source"),
		edit: func(m map[string]any) {
			m["source"] = map[string]any{"url": "https://git.example/params", "path": "dev.yaml",
				"ref": map[string]any{"branch": "main", "tag": "v1"}}
		},
		gvr:    environments,
		fields: []string{"spec.source.ref", "set exactly one of branch, tag or commit"},
	}, {
		name:   "run operation",
		obj:    run(ns, "app-2"),
		edit:   func(m map[string]any) { m["operation"] = "apply" },
		gvr:    runs,
		fields: []string{"spec.operation", `Unsupported value: "apply"`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.edit != nil {
				tc.edit(tc.obj.Object["spec"].(map[string]any))
			}
			_, err := dyn.Resource(tc.gvr).Namespace(ns).Create(ctx, tc.obj, dryRun)
			require.Error(t, err, "the schema accepted it")
			t.Log(err)
			assert.True(t, apierrors.IsInvalid(err), "want Invalid, got %v", err)
			for _, f := range tc.fields {
				assert.Contains(t, err.Error(), f)
			}
		})
	}
}

// clients impersonates a ServiceAccount of DefaultNamespace, with the
// groups a real token of it has.
func clients(t *testing.T, c *localk8s.Cluster, sa string) (kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	return clientsOf(t, c, DefaultNamespace, sa)
}

// clientsOf returns clients acting as the ServiceAccount sa of namespace ns.
func clientsOf(t *testing.T, c *localk8s.Cluster, ns, sa string) (kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	return cs, dyn
}

// action is one API call made as a ServiceAccount.
type action struct {
	name string
	do   func(ctx context.Context) error
}

// check makes the allowed calls, which must succeed, in order, then the
// refused ones, which must fail with Forbidden.
func check(t *testing.T, allowed, refused []action) {
	ctx := testContext(t)
	for _, a := range allowed {
		t.Run("allowed/"+a.name, func(t *testing.T) {
			require.NoError(t, a.do(ctx))
		})
	}
	for _, a := range refused {
		t.Run("refused/"+a.name, func(t *testing.T) {
			err := a.do(ctx)
			require.Error(t, err, "the call was allowed")
			assert.True(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
		})
	}
}

// fixtures creates an Environment "app", its Run "app-1" and a Secret
// "creds" in a new namespace, as the admin.
func fixtures(t *testing.T, c *localk8s.Cluster, name string) string {
	t.Helper()
	ctx := testContext(t)
	ns := namespace(t, c, name)
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	_, err = dyn.Resource(environments).Namespace(ns).Create(ctx, env(ns, "app"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = dyn.Resource(runs).Namespace(ns).Create(ctx, run(ns, "app-1"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		StringData: map[string]string{"passphrase": "not-a-real-one"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return ns
}

var (
	dryCreate = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	dryUpdate = metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}
	dryDelete = metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}
)

func lease(name string) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("test"), LeaseDurationSeconds: ptr.To[int32](15)},
	}
}

func coreEvent(ns string) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "app-", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{APIVersion: "slipway.dev/v1alpha1", Kind: "Run", Namespace: ns, Name: "app-1"},
		Reason:         "Test", Message: "test", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "test"},
	}
}

func newEvent(ns string) *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: ns},
		EventTime:  metav1.NowMicro(), ReportingController: "slipway.dev/test", ReportingInstance: "test",
		Action: "Test", Reason: "Test", Type: corev1.EventTypeNormal, Note: "test",
		Regarding: corev1.ObjectReference{APIVersion: "slipway.dev/v1alpha1", Kind: "Run", Namespace: ns, Name: "app-1"},
	}
}

func TestRBAC_RunnerLeastPrivilege(t *testing.T) {
	c := installed(t)
	ns := fixtures(t, c, "runner-rbac")
	cs, dyn := clients(t, c, RunnerName)
	runsIn := dyn.Resource(runs).Namespace(ns)
	leases := cs.CoordinationV1().Leases(ns)
	admin, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	adminEnv, err := admin.Resource(environments).Namespace(ns).Get(testContext(t), "app", metav1.GetOptions{})
	require.NoError(t, err)

	check(t, []action{
		{"list runs", func(ctx context.Context) error { _, err := runsIn.List(ctx, metav1.ListOptions{}); return err }},
		{"list runs in all namespaces", func(ctx context.Context) error {
			_, err := dyn.Resource(runs).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch runs", func(ctx context.Context) error {
			w, err := dyn.Resource(runs).Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"update runs/status (claim)", func(ctx context.Context) error {
			r, err := runsIn.Get(ctx, "app-1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if err := unstructured.SetNestedField(r.Object, "Claimed", "status", "phase"); err != nil {
				return err
			}
			_, err = runsIn.UpdateStatus(ctx, r, metav1.UpdateOptions{})
			return err
		}},
		{"get a secret by name", func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets(ns).Get(ctx, "creds", metav1.GetOptions{})
			return err
		}},
		// A Run is executed only when its Environment asked for it
		// (fleet.Admit): the runner reads that one Environment.
		{"get an environment by name", func(ctx context.Context) error {
			_, err := dyn.Resource(environments).Namespace(ns).Get(ctx, "app", metav1.GetOptions{})
			return err
		}},
		{"create a lease", func(ctx context.Context) error {
			_, err := leases.Create(ctx, lease("run-app-1"), metav1.CreateOptions{})
			return err
		}},
		{"renew a lease", func(ctx context.Context) error {
			l, err := leases.Get(ctx, "run-app-1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			l.Spec.RenewTime = ptr.To(metav1.NowMicro())
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
			return err
		}},
		{"delete a lease", func(ctx context.Context) error {
			return leases.Delete(ctx, "run-app-1", metav1.DeleteOptions{})
		}},
		{"create an event", func(ctx context.Context) error {
			_, err := cs.CoreV1().Events(ns).Create(ctx, coreEvent(ns), metav1.CreateOptions{})
			return err
		}},
		{"create an events.k8s.io event", func(ctx context.Context) error {
			_, err := cs.EventsV1().Events(ns).Create(ctx, newEvent(ns), metav1.CreateOptions{})
			return err
		}},
	}, []action{
		{"create runs", func(ctx context.Context) error {
			_, err := runsIn.Create(ctx, run(ns, "app-9"), dryCreate)
			return err
		}},
		{"delete runs", func(ctx context.Context) error { return runsIn.Delete(ctx, "app-1", dryDelete) }},
		{"list environments", func(ctx context.Context) error {
			_, err := dyn.Resource(environments).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"update environments/status", func(ctx context.Context) error {
			_, err := dyn.Resource(environments).Namespace(ns).UpdateStatus(ctx, adminEnv, dryUpdate)
			return err
		}},
		{"list secrets", func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create a secret", func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, dryCreate)
			return err
		}},
		{"create a deployment", func(ctx context.Context) error {
			d := runnerDeployment(Options{Namespace: ns, Image: digestImage, Runners: 1, RunnerConcurrency: 1})
			_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, dryCreate)
			return err
		}},
		{"create a configmap", func(ctx context.Context) error {
			_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, dryCreate)
			return err
		}},
		{"delete namespaces", func(ctx context.Context) error { return cs.CoreV1().Namespaces().Delete(ctx, ns, dryDelete) }},
	})
}

func TestRBAC_OperatorLeastPrivilege(t *testing.T) {
	c := installed(t)
	ns := fixtures(t, c, "operator-rbac")
	cs, dyn := clients(t, c, OperatorName)
	envsIn := dyn.Resource(environments).Namespace(ns)
	runsIn := dyn.Resource(runs).Namespace(ns)
	leases := cs.CoordinationV1().Leases(DefaultNamespace)
	admin, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	adminRun, err := admin.Resource(runs).Namespace(ns).Get(testContext(t), "app-1", metav1.GetOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		err := c.Client.CoordinationV1().Leases(DefaultNamespace).Delete(context.Background(), "slipway-test-leader", metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting the test lease: %v", err)
		}
	})

	check(t, []action{
		{"list environments", func(ctx context.Context) error { _, err := envsIn.List(ctx, metav1.ListOptions{}); return err }},
		{"list environments in all namespaces", func(ctx context.Context) error {
			_, err := dyn.Resource(environments).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch environments", func(ctx context.Context) error {
			w, err := dyn.Resource(environments).Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"update environments", func(ctx context.Context) error {
			e, err := envsIn.Get(ctx, "app", metav1.GetOptions{})
			if err != nil {
				return err
			}
			e.SetAnnotations(map[string]string{"slipway.dev/test": "1"})
			_, err = envsIn.Update(ctx, e, metav1.UpdateOptions{})
			return err
		}},
		{"update environments/status", func(ctx context.Context) error {
			e, err := envsIn.Get(ctx, "app", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if err := unstructured.SetNestedField(e.Object, int64(1), "status", "runCount"); err != nil {
				return err
			}
			_, err = envsIn.UpdateStatus(ctx, e, metav1.UpdateOptions{})
			return err
		}},
		{"create runs", func(ctx context.Context) error {
			e, err := envsIn.Get(ctx, "app", metav1.GetOptions{})
			if err != nil {
				return err
			}
			r := run(ns, "app-2")
			r.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "slipway.dev/v1alpha1", Kind: "Environment",
				Name: "app", UID: e.GetUID(), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}})
			_, err = runsIn.Create(ctx, r, metav1.CreateOptions{})
			return err
		}},
		{"get runs/status", func(ctx context.Context) error {
			_, err := runsIn.Get(ctx, "app-2", metav1.GetOptions{}, "status")
			return err
		}},
		{"delete runs", func(ctx context.Context) error { return runsIn.Delete(ctx, "app-2", metav1.DeleteOptions{}) }},
		{"get a secret by name", func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets(ns).Get(ctx, "creds", metav1.GetOptions{})
			return err
		}},
		{"create a lease in " + DefaultNamespace, func(ctx context.Context) error {
			_, err := leases.Create(ctx, lease("slipway-test-leader"), metav1.CreateOptions{})
			return err
		}},
		{"renew a lease in " + DefaultNamespace, func(ctx context.Context) error {
			l, err := leases.Get(ctx, "slipway-test-leader", metav1.GetOptions{})
			if err != nil {
				return err
			}
			l.Spec.RenewTime = ptr.To(metav1.NowMicro())
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
			return err
		}},
		{"create an event", func(ctx context.Context) error {
			_, err := cs.CoreV1().Events(ns).Create(ctx, coreEvent(ns), metav1.CreateOptions{})
			return err
		}},
		{"create an events.k8s.io event", func(ctx context.Context) error {
			_, err := cs.EventsV1().Events(ns).Create(ctx, newEvent(ns), metav1.CreateOptions{})
			return err
		}},
	}, []action{
		{"update runs/status", func(ctx context.Context) error {
			_, err := runsIn.UpdateStatus(ctx, adminRun, dryUpdate)
			return err
		}},
		{"update runs", func(ctx context.Context) error {
			_, err := runsIn.Update(ctx, adminRun, dryUpdate)
			return err
		}},
		{"list secrets", func(ctx context.Context) error {
			_, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create a lease in another namespace", func(ctx context.Context) error {
			_, err := cs.CoordinationV1().Leases(ns).Create(ctx, lease("slipway-test-leader"), dryCreate)
			return err
		}},
		{"delete a lease", func(ctx context.Context) error {
			return leases.Delete(ctx, "slipway-test-leader", dryDelete)
		}},
		{"create a deployment", func(ctx context.Context) error {
			d := operatorDeployment(Options{Namespace: DefaultNamespace, Image: digestImage, Operators: 1})
			d.Name = "x"
			_, err := cs.AppsV1().Deployments(DefaultNamespace).Create(ctx, d, dryCreate)
			return err
		}},
		{"delete namespaces", func(ctx context.Context) error { return cs.CoreV1().Namespaces().Delete(ctx, ns, dryDelete) }},
	})
}

func TestWrite_Manifests(t *testing.T) {
	o := Options{ClusterWide: true, Namespace: "fleet", Image: "registry.example/slipway:v1", Operators: 3, Runners: 5, RunnerConcurrency: 4}
	objs, err := Manifests(o)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, objs))

	var again bytes.Buffer
	objs2, err := Manifests(o)
	require.NoError(t, err)
	require.NoError(t, Write(&again, objs2))
	assert.Equal(t, buf.String(), again.String(), "the same options gave different YAML")

	back, err := decode(&buf)
	require.NoError(t, err)
	require.Len(t, back, len(objs))
	kinds := map[string]int{}
	for i, obj := range back {
		kinds[obj.GetKind()]++
		assert.Equal(t, objs[i].GetKind()+"/"+objs[i].GetName(), obj.GetKind()+"/"+obj.GetName())
		assert.NotEqual(t, "Secret", obj.GetKind())
		assert.Equal(t, "slipway", obj.GetLabels()["app.kubernetes.io/part-of"], obj.GetKind()+"/"+obj.GetName())
		switch obj.GetKind() {
		case "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition":
			assert.Empty(t, obj.GetNamespace(), obj.GetName())
		default:
			assert.Equal(t, "fleet", obj.GetNamespace(), obj.GetKind()+"/"+obj.GetName())
		}
	}
	assert.Equal(t, map[string]int{"CustomResourceDefinition": 2, "Namespace": 1, "ServiceAccount": 2, "ClusterRole": 2,
		"Role": 1, "ClusterRoleBinding": 2, "RoleBinding": 1, "Deployment": 2, "PodDisruptionBudget": 2, "NetworkPolicy": 3}, kinds)
	assert.NotContains(t, buf.String(), "stringData")

	deployments := map[string]*unstructured.Unstructured{}
	for _, obj := range back {
		if obj.GetKind() == "Deployment" {
			deployments[obj.GetName()] = obj
		}
	}
	for name, want := range map[string]struct {
		replicas int64
		args     []any
	}{
		OperatorName: {3, []any{"operator", "--leader-election-namespace=fleet", "--dir=/var/lib/slipway", "--identity=$(POD_NAME)", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"}},
		RunnerName:   {5, []any{"runner", "--concurrency=4", "--dir=/var/lib/slipway", "--identity=$(POD_NAME)", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"}},
	} {
		d := deployments[name]
		require.NotNil(t, d, name)
		replicas, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
		assert.Equal(t, want.replicas, replicas, name)
		pod, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
		assert.Equal(t, name, pod["serviceAccountName"])
		containers, _, _ := unstructured.NestedSlice(pod, "containers")
		require.Len(t, containers, 1)
		ctr := containers[0].(map[string]any)
		assert.Equal(t, "registry.example/slipway:v1", ctr["image"])
		assert.Equal(t, want.args, ctr["args"], name)
		ro, _, _ := unstructured.NestedBool(ctr, "securityContext", "readOnlyRootFilesystem")
		assert.True(t, ro, name)
		path, _, _ := unstructured.NestedString(ctr, "livenessProbe", "httpGet", "path")
		assert.Equal(t, "/healthz", path)
		path, _, _ = unstructured.NestedString(ctr, "readinessProbe", "httpGet", "path")
		assert.Equal(t, "/readyz", path)
	}

	for _, obj := range back {
		if obj.GetKind() == "RoleBinding" || obj.GetKind() == "ClusterRoleBinding" {
			subjects, _, _ := unstructured.NestedSlice(obj.Object, "subjects")
			require.Len(t, subjects, 1)
			assert.Equal(t, map[string]any{"kind": "ServiceAccount", "name": obj.GetName(), "namespace": "fleet"}, subjects[0])
		}
	}
}

func TestManifests_RefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{ClusterWide: true, Image: digestImage, Namespace: "Not_A_Name"}, "Namespace"},
		{Options{ClusterWide: true, Image: digestImage, Operators: -1}, "Operators"},
		{Options{ClusterWide: true, Image: digestImage, Runners: -1}, "Runners"},
		{Options{ClusterWide: true, Image: digestImage, RunnerConcurrency: -2}, "RunnerConcurrency"},
		{Options{ClusterWide: true, Image: "registry.example/Team/slipway:v1"}, "Image"},
		{Options{ClusterWide: true, Image: "registry.example/slipway@sha256:nothex"}, "Image"},
	} {
		_, err := Manifests(tc.o)
		require.Error(t, err, "%+v", tc.o)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// TestManifests_RefuseAnEmptyImage checks that there is no default image:
// Manifests and Kustomize refuse an empty Image with ErrNoImage, whose
// message names the option and the fix, while RBAC (no Deployment, no
// image) does not need it.
func TestManifests_RefuseAnEmptyImage(t *testing.T) {
	for _, o := range []Options{{ClusterWide: true}, {WatchNamespaces: []string{"team-a"}}} {
		objs, err := Manifests(o)
		require.ErrorIs(t, err, ErrNoImage)
		assert.Nil(t, objs)
		for _, want := range []string{"Image is empty", "slipway image build --push", "--image REPOSITORY@sha256:"} {
			assert.Contains(t, err.Error(), want)
		}
		files, err := Kustomize(o)
		require.ErrorIs(t, err, ErrNoImage)
		assert.Nil(t, files)
		rbac, err := RBAC(o)
		require.NoError(t, err, "RBAC names no image")
		assert.NotEmpty(t, rbac)
	}
	dir := t.TempDir()
	_, err := WriteKustomize(dir, Options{ClusterWide: true})
	require.ErrorIs(t, err, ErrNoImage)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing is written without an image")
}

func TestManifests_KeepTheImageDigest(t *testing.T) {
	ref := "registry.example:5000/team/slipway@sha256:" + strings.Repeat("ab", 32)
	objs, err := Manifests(Options{ClusterWide: true, Image: ref})
	require.NoError(t, err)
	n := 0
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		require.NoError(t, err)
		require.Len(t, containers, 1)
		assert.Equal(t, ref, containers[0].(map[string]any)["image"], "%s names the image by its digest, unchanged", o.GetName())
		n++
	}
	assert.Equal(t, 2, n, "the operator's and the runners' Deployments")
}
