package workload

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/mocktest"
)

const deploymentType = "kubernetes:apps/v1:Deployment"

func run(t *testing.T, args Args) *mocktest.Graph {
	t.Helper()
	g, err := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := New(ctx, "app", args)
		return err
	}, nil)
	require.NoError(t, err)
	return g
}

func base() Args {
	return Args{Namespace: pulumi.String("team-a"), Name: "web", Image: "nginx:1.27"}
}

func TestWorkload_SecureByDefault(t *testing.T) {
	g := run(t, base())
	assert.Equal(t, 1, g.Count(deploymentType))
	assert.Equal(t, 1, g.Count("kubernetes:core/v1:Service"))
	assert.Equal(t, 1, g.Count("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"))
	assert.Equal(t, 1, g.Count("kubernetes:policy/v1:PodDisruptionBudget"))
	comp, _ := g.Named(Type, "app")
	for _, r := range g.Resources {
		if r.Type != Type {
			assert.Equal(t, comp.URN, r.Parent, r.Name)
		}
	}
	d := g.OfType(deploymentType)[0].Inputs
	assert.EqualValues(t, 2, mocktest.Dig(d, "spec", "replicas"))
	pod := mocktest.Dig(d, "spec", "template", "spec")
	assert.Equal(t, true, mocktest.Dig(pod, "securityContext", "runAsNonRoot"))
	assert.EqualValues(t, 10001, mocktest.Dig(pod, "securityContext", "runAsUser"))
	assert.Equal(t, "RuntimeDefault", mocktest.Dig(pod, "securityContext", "seccompProfile", "type"))
	assert.Equal(t, false, mocktest.Dig(pod, "automountServiceAccountToken"))
	c := mocktest.Dig(pod, "containers", 0)
	assert.Equal(t, false, mocktest.Dig(c, "securityContext", "allowPrivilegeEscalation"))
	assert.Equal(t, false, mocktest.Dig(c, "securityContext", "privileged"))
	assert.Equal(t, true, mocktest.Dig(c, "securityContext", "readOnlyRootFilesystem"))
	assert.Equal(t, []any{"ALL"}, mocktest.Dig(c, "securityContext", "capabilities", "drop"))
	assert.Equal(t, "100m", mocktest.Dig(c, "resources", "requests", "cpu"))
	assert.Equal(t, "256Mi", mocktest.Dig(c, "resources", "limits", "memory"))
	assert.Equal(t, "/", mocktest.Dig(c, "readinessProbe", "httpGet", "path"))
	assert.NotNil(t, mocktest.Dig(c, "livenessProbe", "httpGet"))
	assert.Equal(t, "25%", mocktest.Dig(d, "spec", "strategy", "rollingUpdate", "maxSurge"))
	assert.EqualValues(t, 0, mocktest.Dig(d, "spec", "strategy", "rollingUpdate", "maxUnavailable"))
	pdb := g.OfType("kubernetes:policy/v1:PodDisruptionBudget")[0].Inputs
	assert.Equal(t, "50%", mocktest.Dig(pdb, "spec", "minAvailable"))
	hpa := g.OfType("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")[0].Inputs
	assert.EqualValues(t, 6, mocktest.Dig(hpa, "spec", "maxReplicas"))
	assert.EqualValues(t, 70, mocktest.Dig(hpa, "spec", "metrics", 0, "resource", "target", "averageUtilization"))
}

func TestWorkload_Overrides(t *testing.T) {
	a := base()
	a.Replicas, a.Port, a.RunAsUser, a.DisableHPA, a.MaxSurge, a.MaxUnavailable = 1, 9090, 2000, true, "1", "1"
	a.Env = map[string]string{"B": "2", "A": "1"}
	g := run(t, a)
	assert.Equal(t, 0, g.Count("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"))
	d := g.OfType(deploymentType)[0].Inputs
	c := mocktest.Dig(d, "spec", "template", "spec", "containers", 0)
	assert.EqualValues(t, 9090, mocktest.Dig(c, "ports", 0, "containerPort"))
	assert.Equal(t, "A", mocktest.Dig(c, "env", 0, "name"), "env is sorted for stable diffs")
	assert.EqualValues(t, 2000, mocktest.Dig(d, "spec", "template", "spec", "securityContext", "runAsUser"))
	assert.EqualValues(t, 1, mocktest.Dig(d, "spec", "strategy", "rollingUpdate", "maxSurge"))
	pdb := g.OfType("kubernetes:policy/v1:PodDisruptionBudget")[0].Inputs
	assert.EqualValues(t, 1, mocktest.Dig(pdb, "spec", "maxUnavailable"), "one replica: allow the one disruption")
	svc := g.OfType("kubernetes:core/v1:Service")[0].Inputs
	assert.EqualValues(t, 9090, mocktest.Dig(svc, "spec", "ports", 0, "targetPort"))
}

func TestWorkload_BlueGreenSlotsFollowTheVersion(t *testing.T) {
	a := base()
	a.Strategy = BlueGreen
	g1 := run(t, a)
	a.Image = "nginx:1.28"
	g2 := run(t, a)
	d1 := g1.OfType(deploymentType)[0]
	d2 := g2.OfType(deploymentType)[0]
	assert.NotEqual(t, d1.Name, d2.Name, "a new version gets a new slot")
	assert.Equal(t, Slot("web", "nginx:1.28"), mocktest.Dig(d2.Inputs, "metadata", "name"))
	svc := g2.OfType("kubernetes:core/v1:Service")[0].Inputs
	assert.Equal(t, Slot("web", "nginx:1.28"), mocktest.Dig(svc, "spec", "selector", "slipway.dev/slot"))
}

func TestWorkload_CanaryRunsBesideStable(t *testing.T) {
	a := base()
	a.Strategy, a.Replicas, a.Canary = Canary, 10, CanaryArgs{StableImage: "nginx:1.27", Weight: 30}
	a.Image = "nginx:1.28"
	g := run(t, a)
	require.Equal(t, 2, g.Count(deploymentType))
	stable, _ := g.Named(deploymentType, "app-stable")
	canary, _ := g.Named(deploymentType, "app-canary")
	assert.Equal(t, "nginx:1.27", mocktest.Dig(stable.Inputs, "spec", "template", "spec", "containers", 0, "image"))
	assert.Equal(t, "nginx:1.28", mocktest.Dig(canary.Inputs, "spec", "template", "spec", "containers", 0, "image"))
	assert.EqualValues(t, 10, mocktest.Dig(stable.Inputs, "spec", "replicas"))
	assert.EqualValues(t, 4, mocktest.Dig(canary.Inputs, "spec", "replicas"), "4 of 14 pods: round(10×30/70), the nearest share to 30 %")
	svc := g.OfType("kubernetes:core/v1:Service")[0].Inputs
	assert.Equal(t, map[string]any{"app.kubernetes.io/name": "web"}, mocktest.Dig(svc, "spec", "selector"), "the Service spans both tracks")

	a.Canary.StableImage = a.Image // promoted
	g = run(t, a)
	assert.Equal(t, 1, g.Count(deploymentType))
}

const routeType = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"

// routeWeights returns the stable and canary backend weights of the
// workload's HTTPRoute, checking the backends' names and ports.
func routeWeights(t *testing.T, g *mocktest.Graph) (stable, canary any) {
	t.Helper()
	require.Equal(t, 1, g.Count(routeType), "one HTTPRoute")
	r := g.OfType(routeType)[0].Inputs
	assert.Equal(t, "web", mocktest.Dig(r, "metadata", "name"))
	assert.Equal(t, "shop-gw", mocktest.Dig(r, "spec", "parentRefs", 0, "name"))
	assert.Equal(t, "infra", mocktest.Dig(r, "spec", "parentRefs", 0, "namespace"))
	assert.Equal(t, []any{"shop.example.com"}, mocktest.Dig(r, "spec", "hostnames"))
	assert.Equal(t, "web-stable", mocktest.Dig(r, "spec", "rules", 0, "backendRefs", 0, "name"))
	assert.Equal(t, "web-canary", mocktest.Dig(r, "spec", "rules", 0, "backendRefs", 1, "name"))
	assert.EqualValues(t, 80, mocktest.Dig(r, "spec", "rules", 0, "backendRefs", 1, "port"))
	return mocktest.Dig(r, "spec", "rules", 0, "backendRefs", 0, "weight"), mocktest.Dig(r, "spec", "rules", 0, "backendRefs", 1, "weight")
}

// With Canary.Route the HTTPRoute's backend weights follow Canary.Weight
// (up to 100 % before the promotion), each track has its own Service, and
// the canary runs the pods its share of the requests needs; promoted, the
// canary backend weighs 0.
func TestWorkload_CanaryRouteWeighsTheBackends(t *testing.T) {
	a := base()
	a.Strategy, a.Replicas, a.Image = Canary, 4, "nginx:1.28"
	a.Canary = CanaryArgs{StableImage: "nginx:1.27", Route: &RouteArgs{Gateway: "shop-gw", GatewayNamespace: "infra", Hostnames: []string{"shop.example.com"}}}
	for _, tc := range []struct{ weight, stable, canary, pods int }{{10, 90, 10, 1}, {50, 50, 50, 2}, {100, 0, 100, 4}} {
		a.Canary.Weight = tc.weight
		g := run(t, a)
		s, c := routeWeights(t, g)
		assert.EqualValues(t, tc.stable, s, "stable's weight at %d %%", tc.weight)
		assert.EqualValues(t, tc.canary, c, "the canary's weight at %d %%", tc.weight)
		canary, ok := g.Named(deploymentType, "app-canary")
		require.True(t, ok)
		assert.EqualValues(t, tc.pods, mocktest.Dig(canary.Inputs, "spec", "replicas"), "canary pods at %d %%", tc.weight)
		stable, _ := g.Named(deploymentType, "app-stable")
		assert.EqualValues(t, 4, mocktest.Dig(stable.Inputs, "spec", "replicas"), "stable is untouched")
		sel := map[string]any{}
		for _, svc := range g.OfType("kubernetes:core/v1:Service") {
			sel[mocktest.Dig(svc.Inputs, "metadata", "name").(string)] = mocktest.Dig(svc.Inputs, "spec", "selector", "slipway.dev/track")
		}
		assert.Equal(t, map[string]any{"web": nil, "web-stable": "stable", "web-canary": "canary"}, sel)
	}

	a.Canary.StableImage = a.Image // promoted
	g := run(t, a)
	assert.Equal(t, 1, g.Count(deploymentType))
	s, c := routeWeights(t, g)
	assert.EqualValues(t, 100, s)
	assert.EqualValues(t, 0, c)
}

func TestWorkload_ValidationErrorsNameTheField(t *testing.T) {
	mod := func(f func(*Args)) Args { a := base(); f(&a); return a }
	cases := map[string]struct {
		args Args
		want string
	}{
		"no namespace":                    {mod(func(a *Args) { a.Namespace = nil }), "Args.Namespace: is nil"},
		"bad name":                        {mod(func(a *Args) { a.Name = "Web App" }), "Args.Name: \"Web App\""},
		"no image":                        {mod(func(a *Args) { a.Image = "" }), "Args.Image: is empty"},
		"latest":                          {mod(func(a *Args) { a.Image = "nginx:latest" }), "Args.Image: \"nginx:latest\" has no pinned tag"},
		"untagged":                        {mod(func(a *Args) { a.Image = "registry:5000/nginx" }), "has no pinned tag"},
		"replicas":                        {mod(func(a *Args) { a.Replicas = -3 }), "Args.Replicas: -3 is out of range"},
		"port":                            {mod(func(a *Args) { a.Port = 70000 }), "Args.Port: 70000 is not a port"},
		"root":                            {mod(func(a *Args) { a.RunAsUser = -1 }), "Args.RunAsUser: -1 would run as root"},
		"max replicas":                    {mod(func(a *Args) { a.MaxReplicas = 1 }), "Args.MaxReplicas: 1 is below Replicas 2"},
		"cpu target":                      {mod(func(a *Args) { a.TargetCPU = 150 }), "Args.TargetCPU: 150% is out of range"},
		"strategy":                        {mod(func(a *Args) { a.Strategy = "yolo" }), "Args.Strategy: \"yolo\" is not a strategy"},
		"canary weight":                   {mod(func(a *Args) { a.Canary.Weight = 100 }), "Args.Canary.Weight: 100% is out of range"},
		"canary weight 100 without route": {mod(func(a *Args) { a.Canary.Weight = 100 }), "100 needs Canary.Route"},
		"route weight":                    {mod(func(a *Args) { a.Strategy = Canary; a.Canary.Route = &RouteArgs{Gateway: "gw"}; a.Canary.Weight = 101 }), "Args.Canary.Weight: 101% is out of range; use 1-100"},
		"route strategy":                  {mod(func(a *Args) { a.Canary.Route = &RouteArgs{Gateway: "gw"} }), "Args.Canary.Route: is set but Strategy is \"rolling\""},
		"route gateway":                   {mod(func(a *Args) { a.Strategy = Canary; a.Canary.Route = &RouteArgs{} }), "Args.Canary.Route.Gateway: \"\" must be the name of a Gateway"},
		"route gateway ns": {mod(func(a *Args) {
			a.Strategy = Canary
			a.Canary.Route = &RouteArgs{Gateway: "gw", GatewayNamespace: "Infra"}
		}), "Args.Canary.Route.GatewayNamespace: \"Infra\""},
		"route hostname": {mod(func(a *Args) {
			a.Strategy = Canary
			a.Canary.Route = &RouteArgs{Gateway: "gw", Hostnames: []string{"ok.example.com", "bad host"}}
		}), "Args.Canary.Route.Hostnames[1]: \"bad host\" is not a host name"},
		"canary stable":    {mod(func(a *Args) { a.Strategy = Canary; a.Canary.StableImage = "nginx" }), "Args.Canary.StableImage: \"nginx\" has no pinned tag"},
		"surge":            {mod(func(a *Args) { a.MaxSurge = "lots" }), "Args.MaxSurge: \"lots\""},
		"stuck rollout":    {mod(func(a *Args) { a.MaxSurge = "0" }), "Args.MaxUnavailable: and MaxSurge are both 0"},
		"quantity":         {mod(func(a *Args) { a.CPULimit = "fast" }), "Args.CPULimit: \"fast\" is not a Kubernetes quantity"},
		"request > limit":  {mod(func(a *Args) { a.MemoryRequest = "1Gi" }), "Args.MemoryRequest: 1Gi exceeds MemoryLimit 256Mi"},
		"negative timeout": {mod(func(a *Args) { a.ReadyTimeout = -1 }), "Args.ReadyTimeout"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := mocktest.Run(func(ctx *pulumi.Context) error {
				_, err := New(ctx, "app", tc.args)
				return err
			}, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "workload: ")
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, g.Resources)
		})
	}
}

func TestProgressCanary_PromotesOnlyAfterTheCanarySucceeds(t *testing.T) {
	a := base()
	a.Strategy, a.Image, a.Canary.StableImage = Canary, "nginx:1.28", "nginx:1.27"
	var applied []Args
	out, err := ProgressCanary(context.Background(), a, func(_ context.Context, x Args) error {
		applied = append(applied, x)
		return nil
	})
	require.NoError(t, err)
	assert.True(t, out.Promoted)
	require.Len(t, applied, 2)
	assert.Equal(t, "nginx:1.27", applied[0].Canary.StableImage, "first the canary beside stable")
	assert.Equal(t, "nginx:1.28", applied[1].Canary.StableImage, "then stable moves to the canary's version")
}

func TestProgressCanary_RollsBackWhenTheCanaryFails(t *testing.T) {
	a := base()
	a.Strategy, a.Image, a.Canary.StableImage = Canary, "nginx:1.28", "nginx:1.27"
	var applied []Args
	out, err := ProgressCanary(context.Background(), a, func(_ context.Context, x Args) error {
		applied = append(applied, x)
		if x.Image == "nginx:1.28" {
			return errors.New("canary never became Ready")
		}
		return nil
	})
	require.NoError(t, err)
	assert.True(t, out.RolledBack)
	assert.False(t, out.Promoted)
	assert.ErrorContains(t, out.CanaryErr, "never became Ready")
	require.Len(t, applied, 2)
	assert.Equal(t, "nginx:1.27", applied[1].Image, "rollback removes the canary")
	assert.Equal(t, "nginx:1.27", applied[1].Canary.StableImage, "and leaves stable alone")
}

// TestWorkload_HPAOwnsTheReplicasOfTheScaledDeployment: with the HPA on,
// the Deployment it scales is created at Replicas and ignores spec.replicas
// afterwards (the engine neither reverts the autoscaler's count on an up or
// a drift remediation nor reports it as drift), and the HPA's minReplicas
// carries the requested count. A Deployment the HPA does not scale (the
// canary), or any Deployment with the HPA off, keeps managing its replicas.
func TestWorkload_HPAOwnsTheReplicasOfTheScaledDeployment(t *testing.T) {
	hpaType := "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
	for _, strategy := range []Strategy{Rolling, BlueGreen, Canary} {
		t.Run(string(strategy), func(t *testing.T) {
			a := base()
			a.Strategy, a.Replicas = strategy, 4
			g := run(t, a)
			require.Equal(t, 1, g.Count(deploymentType))
			d := g.OfType(deploymentType)[0]
			assert.Equal(t, []string{ScaledField}, d.IgnoreChanges, "the autoscaler's replica count is left alone")
			assert.EqualValues(t, 4, mocktest.Dig(d.Inputs, "spec", "replicas"), "created at the requested size")
			require.Equal(t, 1, g.Count(hpaType))
			hpa := g.OfType(hpaType)[0].Inputs
			assert.EqualValues(t, 4, mocktest.Dig(hpa, "spec", "minReplicas"))
			assert.Equal(t, mocktest.Dig(d.Inputs, "metadata", "name"), mocktest.Dig(hpa, "spec", "scaleTargetRef", "name"),
				"the HPA scales the Deployment that ignores its replicas")
		})
	}

	t.Run("canary beside stable", func(t *testing.T) {
		a := base()
		a.Strategy, a.Replicas, a.Image, a.Canary.StableImage = Canary, 10, "nginx:1.28", "nginx:1.27"
		g := run(t, a)
		stable, ok := g.Named(deploymentType, "app-stable")
		require.True(t, ok)
		canary, ok := g.Named(deploymentType, "app-canary")
		require.True(t, ok)
		assert.Equal(t, []string{ScaledField}, stable.IgnoreChanges)
		assert.Empty(t, canary.IgnoreChanges, "the HPA does not scale the canary; its share is Slipway's")
		assert.EqualValues(t, 3, mocktest.Dig(canary.Inputs, "spec", "replicas"), "round(10×20/80): 3 of 13 pods")
	})

	t.Run("no HPA", func(t *testing.T) {
		a := base()
		a.DisableHPA, a.Replicas = true, 3
		g := run(t, a)
		assert.Zero(t, g.Count(hpaType))
		d := g.OfType(deploymentType)[0]
		assert.Empty(t, d.IgnoreChanges, "without an HPA, Slipway owns the replica count and repairs drift in it")
		assert.EqualValues(t, 3, mocktest.Dig(d.Inputs, "spec", "replicas"))
	})
}

// TestWorkload_EnvFromSecret: a Secret named in EnvFromSecret reaches the
// container through envFrom.secretRef, after the ConfigMap.
func TestWorkload_EnvFromSecret(t *testing.T) {
	a := base()
	a.EnvFromConfigMap, a.EnvFromSecret = pulumi.String("web-config"), pulumi.String("web-secrets")
	g := run(t, a)
	c := mocktest.Dig(g.OfType(deploymentType)[0].Inputs, "spec", "template", "spec", "containers", 0)
	assert.Equal(t, "web-config", mocktest.Dig(c, "envFrom", 0, "configMapRef", "name"))
	assert.Equal(t, "web-secrets", mocktest.Dig(c, "envFrom", 1, "secretRef", "name"))

	g = run(t, base())
	c = mocktest.Dig(g.OfType(deploymentType)[0].Inputs, "spec", "template", "spec", "containers", 0)
	assert.Nil(t, mocktest.Dig(c, "envFrom"), "no envFrom without a ConfigMap or Secret")
}

func TestArgs_CanaryAtPromotedAborted(t *testing.T) {
	a := base()
	a.Strategy, a.Image, a.Canary.StableImage = Canary, "nginx:1.28", "nginx:1.27"
	at := a.CanaryAt(50)
	assert.Equal(t, 50, at.Canary.Weight)
	assert.Equal(t, "nginx:1.28", at.Image)
	assert.Equal(t, "nginx:1.27", at.Canary.StableImage, "stable is left as it is")
	p := a.Promoted()
	assert.Equal(t, "nginx:1.28", p.Canary.StableImage)
	assert.Equal(t, 1, run(t, p).Count(deploymentType), "promoted: no canary")
	ab := a.Aborted()
	assert.Equal(t, "nginx:1.27", ab.Image)
	assert.Equal(t, "nginx:1.27", ab.Canary.StableImage)
	assert.Equal(t, 1, run(t, ab).Count(deploymentType), "aborted: no canary")
	assert.Equal(t, "nginx:1.27", mocktest.Dig(run(t, ab).OfType(deploymentType)[0].Inputs, "spec", "template", "spec", "containers", 0, "image"))
}

const serviceType = "kubernetes:core/v1:Service"

// services returns each Service's slot selector by name.
func services(t *testing.T, g *mocktest.Graph) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, svc := range g.OfType(serviceType) {
		out[mocktest.Dig(svc.Inputs, "metadata", "name").(string)] = mocktest.Dig(svc.Inputs, "spec", "selector", "slipway.dev/slot")
	}
	return out
}

// slots returns each Deployment's image and replicas by resource name.
func slots(t *testing.T, g *mocktest.Graph) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range g.OfType(deploymentType) {
		out[d.Name] = fmt.Sprintf("%v×%v", mocktest.Dig(d.Inputs, "spec", "template", "spec", "containers", 0, "image"), mocktest.Dig(d.Inputs, "spec", "replicas"))
	}
	return out
}

// TestWorkload_BlueGreenPhases: each phase of a blue/green rollout as
// data. Previewed, the new version runs beside blue behind the preview
// Service while the main Service and the HPA stay on blue, whose
// Deployment is the same object with the same inputs as before the
// rollout; switched, the main Service and the HPA move to green and blue
// keeps running as it was; promoted, blue is gone; aborted, green and the
// preview Service are gone and blue is as it was.
func TestWorkload_BlueGreenPhases(t *testing.T) {
	blue, green := Slot("web", "nginx:1.27"), Slot("web", "nginx:1.28")
	a := base()
	a.Strategy, a.Replicas = BlueGreen, 3
	before := run(t, a)
	blueBefore, ok := before.Named(deploymentType, "app-"+blue)
	require.True(t, ok)
	assert.Equal(t, map[string]any{"web": blue}, services(t, before))

	a.Image, a.BlueGreen.ActiveImage = "nginx:1.28", "nginx:1.27"
	hpaTarget := func(g *mocktest.Graph) any {
		return mocktest.Dig(g.OfType("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")[0].Inputs, "spec", "scaleTargetRef", "name")
	}
	for _, tc := range []struct {
		phase    string
		args     Args
		services map[string]any
		slots    map[string]string
		hpa      string
	}{
		{"previewed", a.BlueGreenAt(false), map[string]any{"web": blue, "web-preview": green},
			map[string]string{"app-" + blue: "nginx:1.27×3", "app-" + green: "nginx:1.28×3"}, blue},
		{"switched", a.BlueGreenAt(true), map[string]any{"web": green, "web-preview": green},
			map[string]string{"app-" + blue: "nginx:1.27×3", "app-" + green: "nginx:1.28×3"}, green},
		{"promoted", a.BlueGreenAt(true).Promoted(), map[string]any{"web": green},
			map[string]string{"app-" + green: "nginx:1.28×3"}, green},
		{"aborted", a.BlueGreenAt(true).Aborted(), map[string]any{"web": blue},
			map[string]string{"app-" + blue: "nginx:1.27×3"}, blue},
	} {
		t.Run(tc.phase, func(t *testing.T) {
			g := run(t, tc.args)
			assert.Equal(t, tc.services, services(t, g), "the Services' slot selectors")
			assert.Equal(t, tc.slots, slots(t, g), "the slots' images and sizes")
			assert.Equal(t, tc.hpa, hpaTarget(g), "the HPA scales the slot the main Service selects")
			for _, d := range g.OfType(deploymentType) {
				assert.Equal(t, []string{ScaledField}, d.IgnoreChanges, "%s keeps the pods it has when the HPA moves", d.Name)
			}
			if b, ok := g.Named(deploymentType, "app-"+blue); ok {
				assert.Equal(t, blueBefore.Inputs, b.Inputs, "blue's Deployment is never changed")
			}
		})
	}
}

func TestWorkload_BlueGreenValidationNamesTheField(t *testing.T) {
	mod := func(f func(*Args)) Args { a := base(); a.Strategy = BlueGreen; f(&a); return a }
	for name, tc := range map[string]struct {
		args Args
		want string
	}{
		"phase without the strategy": {mod(func(a *Args) { a.Strategy = Rolling; a.BlueGreen.ActiveImage = "nginx:1.26" }),
			"Args.BlueGreen: is set but Strategy is \"rolling\""},
		"active image unpinned":  {mod(func(a *Args) { a.BlueGreen.ActiveImage = "nginx" }), "Args.BlueGreen.ActiveImage: \"nginx\" has no pinned tag"},
		"switched to nothing":    {mod(func(a *Args) { a.BlueGreen.Switched = true }), "Args.BlueGreen.Switched: is set but no preview runs"},
		"switched to the same":   {mod(func(a *Args) { a.BlueGreen = BlueGreenArgs{ActiveImage: a.Image, Switched: true} }), "Args.BlueGreen.Switched"},
		"active image malformed": {mod(func(a *Args) { a.BlueGreen.ActiveImage = "Nginx:1.27" }), "Args.BlueGreen.ActiveImage: \"Nginx:1.27\" is not an image reference"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.args.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
