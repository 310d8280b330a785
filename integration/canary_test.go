package integration

import (
	"context"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/workload"
)

// httpRoute reads the HTTPRoute name in ns from the cluster.
func httpRoute(t *testing.T, ns, name string) *gatewayv1.HTTPRoute {
	t.Helper()
	dc, err := dynamic.NewForConfig(cluster.Config)
	require.NoError(t, err)
	u, err := dc.Resource(schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}).
		Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	var r gatewayv1.HTTPRoute
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r))
	return &r
}

// routeWeights returns the weights of the route's backends by Service name.
func routeWeights(t *testing.T, r *gatewayv1.HTTPRoute) map[string]int32 {
	t.Helper()
	require.Len(t, r.Spec.Rules, 1, "one rule")
	out := map[string]int32{}
	for _, b := range r.Spec.Rules[0].BackendRefs {
		require.NotNil(t, b.Weight, "backend %s has a weight", b.Name)
		out[string(b.Name)] = *b.Weight
	}
	return out
}

// TestWorkload_OnCluster_CanaryRouteFollowsTheWeights: with the Gateway
// API's CRDs installed, a canary workload with a route keeps an HTTPRoute
// whose backend weights are what each step asks (10 → 50 → 100 % to the
// canary) while stable's Deployment is untouched, and the promotion sends
// everything back to stable, now on the new version, with the canary gone.
func TestWorkload_OnCluster_CanaryRouteFollowsTheWeights(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, cluster.InstallGatewayAPI(ctx))
	s := newAppStack(t, "canaryroute")
	b := baseline.Args{Namespace: s.ns}
	w := workload.Args{Namespace: pulumi.String(s.ns), Name: "web", Image: "nginx:1.27", Replicas: 2, Strategy: workload.Canary,
		Canary: workload.CanaryArgs{Route: &workload.RouteArgs{Gateway: "shop-gw", Hostnames: []string{"shop.example.com"}}}}
	_, err := s.up(ctx, b, &w)
	require.NoError(t, err)
	r := httpRoute(t, s.ns, "web")
	assert.Equal(t, map[string]int32{"web-stable": 100, "web-canary": 0}, routeWeights(t, r), "no canary: stable takes everything")
	require.Len(t, r.Spec.ParentRefs, 1)
	assert.Equal(t, "shop-gw", string(r.Spec.ParentRefs[0].Name))
	assert.Equal(t, []gatewayv1.Hostname{"shop.example.com"}, r.Spec.Hostnames)

	w.Canary.StableImage, w.Image = "nginx:1.27", "nginx:1.28"
	for _, weight := range []int32{10, 50, 100} {
		w.Canary.Weight = int(weight)
		_, err := s.up(ctx, b, &w)
		require.NoError(t, err, "step %d %%", weight)
		assert.Equal(t, map[string]int32{"web-stable": 100 - weight, "web-canary": weight}, routeWeights(t, httpRoute(t, s.ns, "web")),
			"the route's weights at step %d %%", weight)
		img, ready := deploymentImage(t, s.ns, "web")
		assert.Equal(t, "nginx:1.27", img, "stable is untouched at step %d %%", weight)
		assert.EqualValues(t, 2, ready, "stable keeps its pods at step %d %%", weight)
		cimg, cready := deploymentImage(t, s.ns, "web-canary")
		assert.Equal(t, "nginx:1.28", cimg)
		assert.Positive(t, cready, "the canary runs Ready pods at step %d %%", weight)
	}

	w.Canary.StableImage = w.Image // the promotion
	_, err = s.up(ctx, b, &w)
	require.NoError(t, err)
	assert.Equal(t, map[string]int32{"web-stable": 100, "web-canary": 0}, routeWeights(t, httpRoute(t, s.ns, "web")), "promoted: stable takes everything")
	img, ready := deploymentImage(t, s.ns, "web")
	assert.Equal(t, "nginx:1.28", img, "stable runs the canary's version")
	assert.EqualValues(t, 2, ready)
	assert.Equal(t, []string{"web"}, deploymentNames(t, s.ns), "the canary is removed after the promotion")
}
