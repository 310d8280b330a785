package integration

import (
	"context"
	"testing"
	"time"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/workload"
)

// appStack deploys a baseline and, when w is set, a workload in it.
type appStack struct {
	t   *testing.T
	e   *automation.Engine
	env string
	ns  string
}

func newAppStack(t *testing.T, env string) *appStack {
	return newAppStackOn(t, env, newEngine(t))
}

// newAppStackOn is newAppStack on engine e.
func newAppStackOn(t *testing.T, env string, e *automation.Engine) *appStack {
	s := &appStack{t: t, e: e, env: env, ns: "comp-" + env}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		st, err := s.stack(ctx, baseline.Args{Namespace: s.ns}, nil)
		if err == nil {
			_, err = st.Destroy(ctx, optdestroy.RemoveStack())
		}
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return s
}

func (s *appStack) stack(ctx context.Context, b baseline.Args, w *workload.Args) (*automation.Stack, error) {
	return s.e.UpsertStack(ctx, s.program(b, w))
}

// program is the stack's program: the baseline and, when w is set, the
// workload in it.
func (s *appStack) program(b baseline.Args, w *workload.Args) automation.Program {
	return automation.Program{Project: "components", Stack: s.env, Run: func(ctx *pulumi.Context) error {
		prov, err := kubernetes.NewProvider(ctx, "k8s", &kubernetes.ProviderArgs{Kubeconfig: pulumi.String(cluster.Kubeconfig)})
		if err != nil {
			return err
		}
		base, err := baseline.New(ctx, "base", b, pulumi.Providers(prov))
		if err != nil {
			return err
		}
		if w == nil {
			return nil
		}
		a := *w
		a.Namespace = base.Namespace
		_, err = workload.New(ctx, "app", a, pulumi.Providers(prov), pulumi.DependsOn([]pulumi.Resource{base}))
		return err
	}, Plugins: []automation.Plugin{automation.KubernetesPlugin}}
}

func (s *appStack) up(ctx context.Context, b baseline.Args, w *workload.Args) (*outcome.Result, error) {
	st, err := s.stack(ctx, b, w)
	if err != nil {
		return nil, err
	}
	return st.Up(ctx)
}

func restrictedPod(name string, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "c", Image: "nginx:1.27",
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{"cpu": kresource.MustParse(cpu), "memory": kresource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{"cpu": kresource.MustParse(cpu), "memory": kresource.MustParse("64Mi")},
				},
			}},
		},
	}
}

func TestBaseline_OnCluster_QuotaPSAAndNetworkPolicies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newAppStack(t, "base")
	_, err := s.up(ctx, baseline.Args{Namespace: s.ns, Quota: baseline.Quota{RequestsCPU: "1", LimitsCPU: "2"}, AllowIngressFrom: []string{"ingress"}}, nil)
	require.NoError(t, err)
	k := cluster.Client

	ns, err := k.CoreV1().Namespaces().Get(ctx, s.ns, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"])
	nps, err := k.NetworkingV1().NetworkPolicies(s.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	require.NotEmpty(t, nps.Items)
	for _, np := range nps.Items {
		names = append(names, np.Name)
	}
	assert.ElementsMatch(t, []string{"default-deny", "allow-same-namespace", "allow-dns-egress", "allow-ingress-from-namespaces"}, names)

	// Within quota: admitted.
	_, err = k.CoreV1().Pods(s.ns).Create(ctx, restrictedPod("small", "500m"), metav1.CreateOptions{})
	require.NoError(t, err)
	// Over the namespace's CPU quota: the API server refuses it.
	_, err = k.CoreV1().Pods(s.ns).Create(ctx, restrictedPod("big", "2"), metav1.CreateOptions{})
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
	assert.Contains(t, err.Error(), "exceeded quota")
	// Privileged: refused by Pod Security Admission.
	priv := restrictedPod("priv", "100m")
	priv.Spec.Containers[0].SecurityContext.Privileged = ptr.To(true)
	priv.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	_, err = k.CoreV1().Pods(s.ns).Create(ctx, priv, metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "violates PodSecurity \"restricted")
	// No resources set: the LimitRange fills in the defaults.
	bare := restrictedPod("bare", "100m")
	bare.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
	created, err := k.CoreV1().Pods(s.ns).Create(ctx, bare, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, "500m", created.Spec.Containers[0].Resources.Limits.Cpu().String())
	require.NoError(t, k.CoreV1().Pods(s.ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}))
}

func deploymentImage(t *testing.T, ns, name string) (string, int32) {
	t.Helper()
	d, err := cluster.Client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d.Spec.Template.Spec.Containers[0].Image, d.Status.ReadyReplicas
}

func deploymentNames(t *testing.T, ns string) []string {
	t.Helper()
	l, err := cluster.Client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	var out []string
	for _, d := range l.Items {
		out = append(out, d.Name)
	}
	return out
}

func TestWorkload_OnCluster_RollingUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newAppStack(t, "rolling")
	b := baseline.Args{Namespace: s.ns}
	w := &workload.Args{Name: "web", Image: "nginx:1.27", Replicas: 2}
	res, err := s.up(ctx, b, w)
	require.NoError(t, err)
	img, ready := deploymentImage(t, s.ns, "web")
	assert.Equal(t, "nginx:1.27", img)
	assert.EqualValues(t, 2, ready)
	assert.Positive(t, res.Summary["create"])

	w.Image = "nginx:1.28"
	res, err = s.up(ctx, b, w)
	require.NoError(t, err)
	img, ready = deploymentImage(t, s.ns, "web")
	assert.Equal(t, "nginx:1.28", img)
	assert.EqualValues(t, 2, ready)
	assert.Equal(t, 1, res.Summary["update"], "the Deployment is updated in place: %v", res.Summary)
	assert.Equal(t, []string{"web"}, deploymentNames(t, s.ns))
}

func TestWorkload_OnCluster_BlueGreenSwitch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newAppStack(t, "bluegreen")
	b := baseline.Args{Namespace: s.ns}
	w := &workload.Args{Name: "web", Image: "nginx:1.27", Replicas: 2, Strategy: workload.BlueGreen}
	_, err := s.up(ctx, b, w)
	require.NoError(t, err)
	blue := workload.Slot("web", "nginx:1.27")
	assert.Equal(t, []string{blue}, deploymentNames(t, s.ns))

	// Record the order in which the engine touches resources.
	w.Image = "nginx:1.28"
	green := workload.Slot("web", "nginx:1.28")
	st, err := s.stack(ctx, b, w)
	require.NoError(t, err)
	res, err := st.Up(ctx)
	require.NoError(t, err)
	var order []string
	require.NotEmpty(t, res.Resources)
	for _, r := range res.Resources {
		order = append(order, r.Op+" "+r.Type)
	}
	create := indexOf(order, "create kubernetes:apps/v1:Deployment")
	update := indexOf(order, "update kubernetes:core/v1:Service")
	del := indexOf(order, "delete kubernetes:apps/v1:Deployment")
	require.True(t, create >= 0 && update >= 0 && del >= 0, "%v", order)
	assert.Less(t, create, update, "the new colour is Ready before the selector switches")
	assert.Less(t, update, del, "the old colour is removed after the switch")

	svc, err := cluster.Client.CoreV1().Services(s.ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, green, svc.Spec.Selector["slipway.dev/slot"])
	assert.Equal(t, []string{green}, deploymentNames(t, s.ns))
	_, ready := deploymentImage(t, s.ns, green)
	assert.EqualValues(t, 2, ready)
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func canaryApply(s *appStack, b baseline.Args) workload.Apply {
	return func(ctx context.Context, a workload.Args) error {
		_, err := s.up(ctx, b, &a)
		return err
	}
}

func TestWorkload_OnCluster_CanaryPromotion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newAppStack(t, "canary")
	b := baseline.Args{Namespace: s.ns}
	w := workload.Args{Namespace: pulumi.String(s.ns), Name: "web", Image: "nginx:1.27", Replicas: 4, Strategy: workload.Canary}
	_, err := s.up(ctx, b, &w)
	require.NoError(t, err)
	assert.Equal(t, []string{"web"}, deploymentNames(t, s.ns))

	w.Canary.StableImage, w.Image = "nginx:1.27", "nginx:1.28"
	var sawCanary bool
	out, err := workload.ProgressCanary(ctx, w, func(ctx context.Context, a workload.Args) error {
		err := canaryApply(s, b)(ctx, a)
		if a.Canary.StableImage != a.Image && err == nil {
			_, ready := deploymentImage(t, s.ns, "web-canary")
			sawCanary = ready == 1
			img, _ := deploymentImage(t, s.ns, "web")
			assert.Equal(t, "nginx:1.27", img, "stable is untouched while the canary runs")
		}
		return err
	})
	require.NoError(t, err)
	assert.True(t, sawCanary, "the canary ran Ready beside stable")
	assert.True(t, out.Promoted)
	img, ready := deploymentImage(t, s.ns, "web")
	assert.Equal(t, "nginx:1.28", img)
	assert.EqualValues(t, 4, ready)
	assert.Equal(t, []string{"web"}, deploymentNames(t, s.ns), "the canary is removed after promotion")
}

func TestWorkload_OnCluster_FailedCanaryIsRolledBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newAppStack(t, "canaryfail")
	b := baseline.Args{Namespace: s.ns}
	w := workload.Args{Namespace: pulumi.String(s.ns), Name: "web", Image: "nginx:1.27", Replicas: 2, Strategy: workload.Canary,
		ReadyTimeout: 10 * time.Second}
	_, err := s.up(ctx, b, &w)
	require.NoError(t, err)

	// kwok never makes pods with this label Ready: the canary cannot become healthy.
	w.Canary.StableImage, w.Image = "nginx:1.27", "nginx:1.29-broken"
	w.CanaryPodLabels = map[string]string{toolchain.NeverReadyLabel: "true"}
	out, err := workload.ProgressCanary(ctx, w, canaryApply(s, b))
	require.NoError(t, err)
	assert.True(t, out.RolledBack)
	assert.False(t, out.Promoted)
	require.Error(t, out.CanaryErr)
	t.Logf("canary failure: %v", out.CanaryErr)

	img, ready := deploymentImage(t, s.ns, "web")
	assert.Equal(t, "nginx:1.27", img, "stable keeps its version")
	assert.EqualValues(t, 2, ready, "stable keeps serving")
	assert.Equal(t, []string{"web"}, deploymentNames(t, s.ns), "the failed canary is removed")
	eps, err := cluster.Client.DiscoveryV1().EndpointSlices(s.ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
	require.NoError(t, err)
	n := 0
	require.NotEmpty(t, eps.Items, "the Service has endpoint slices")
	for _, sl := range eps.Items {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				n++
			}
		}
	}
	assert.Equal(t, 2, n, "the Service still has the stable endpoints")
}
