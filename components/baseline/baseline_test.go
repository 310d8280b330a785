package baseline

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/mocktest"
)

func run(t *testing.T, args Args) *mocktest.Graph {
	t.Helper()
	g, err := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := New(ctx, "base", args)
		return err
	}, nil)
	require.NoError(t, err)
	return g
}

func TestBaseline_SecureByDefault(t *testing.T) {
	g := run(t, Args{Namespace: "team-a"})
	assert.Equal(t, 1, g.Count(Type))
	assert.Equal(t, 1, g.Count("kubernetes:core/v1:Namespace"))
	assert.Equal(t, 1, g.Count("kubernetes:core/v1:ResourceQuota"))
	assert.Equal(t, 1, g.Count("kubernetes:core/v1:LimitRange"))
	assert.Equal(t, 3, g.Count("kubernetes:networking.k8s.io/v1:NetworkPolicy"), "default-deny, same-namespace, DNS egress")

	comp, _ := g.Named(Type, "base")
	for _, r := range g.Resources {
		if r.Type != Type {
			assert.Equal(t, comp.URN, r.Parent, "%s %s must be parented to the component", r.Type, r.Name)
		}
	}
	ns, _ := g.Named("kubernetes:core/v1:Namespace", "base")
	labels := mocktest.Dig(ns.Inputs, "metadata", "labels").(map[string]any)
	assert.Equal(t, "restricted", labels["pod-security.kubernetes.io/enforce"])
	assert.Equal(t, "restricted", labels["pod-security.kubernetes.io/warn"])

	deny, ok := g.Named("kubernetes:networking.k8s.io/v1:NetworkPolicy", "base-default-deny")
	require.True(t, ok)
	assert.Equal(t, []any{"Ingress", "Egress"}, mocktest.Dig(deny.Inputs, "spec", "policyTypes"))
	assert.Nil(t, mocktest.Dig(deny.Inputs, "spec", "ingress"), "default deny has no allow rules")

	q, _ := g.Named("kubernetes:core/v1:ResourceQuota", "base-quota")
	assert.Equal(t, "50", mocktest.Dig(q.Inputs, "spec", "hard", "pods"))
	lr, _ := g.Named("kubernetes:core/v1:LimitRange", "base-limits")
	item := mocktest.Dig(lr.Inputs, "spec", "limits").([]any)[0].(map[string]any)
	assert.Equal(t, "500m", mocktest.Dig(item, "default", "cpu"))
	assert.Equal(t, "4", mocktest.Dig(item, "max", "cpu"))
}

func TestBaseline_Overrides(t *testing.T) {
	g := run(t, Args{
		Namespace: "team-b", PodSecurity: "baseline", Quota: Quota{Pods: 7, RequestsCPU: "2"},
		AllowIngressFrom: []string{"ingress-nginx", "monitoring"}, AllowEgressCIDRs: []string{"10.0.0.0/8"},
		DisableDNSEgress: true, Labels: map[string]string{"team": "b"},
	})
	assert.Equal(t, 4, g.Count("kubernetes:networking.k8s.io/v1:NetworkPolicy"))
	_, dns := g.Named("kubernetes:networking.k8s.io/v1:NetworkPolicy", "base-allow-dns-egress")
	assert.False(t, dns)
	in, ok := g.Named("kubernetes:networking.k8s.io/v1:NetworkPolicy", "base-allow-ingress-from-namespaces")
	require.True(t, ok)
	from := mocktest.Dig(in.Inputs, "spec", "ingress").([]any)[0].(map[string]any)["from"].([]any)
	assert.Len(t, from, 2)
	ns, _ := g.Named("kubernetes:core/v1:Namespace", "base")
	assert.Equal(t, "baseline", mocktest.Dig(ns.Inputs, "metadata", "labels", "pod-security.kubernetes.io/enforce"))
	assert.Equal(t, "b", mocktest.Dig(ns.Inputs, "metadata", "labels", "team"))
	q, _ := g.Named("kubernetes:core/v1:ResourceQuota", "base-quota")
	assert.Equal(t, "7", mocktest.Dig(q.Inputs, "spec", "hard", "pods"))
	assert.Equal(t, "2", mocktest.Dig(q.Inputs, "spec", "hard", "requests.cpu"))
}

func TestBaseline_ValidationErrorsNameTheField(t *testing.T) {
	cases := map[string]struct {
		args Args
		want string
	}{
		"empty namespace":    {Args{}, "Args.Namespace: is empty"},
		"bad namespace":      {Args{Namespace: "Team_A"}, "Args.Namespace: \"Team_A\" must be a lower-case DNS label"},
		"system namespace":   {Args{Namespace: "kube-system"}, "is a system namespace"},
		"default namespace":  {Args{Namespace: "default"}, "is a system namespace"},
		"psa level":          {Args{Namespace: "a", PodSecurity: "strict"}, "Args.PodSecurity: \"strict\""},
		"quota pods":         {Args{Namespace: "a", Quota: Quota{Pods: -1}}, "Args.Quota.Pods: -1 is out of range"},
		"bad quantity":       {Args{Namespace: "a", Quota: Quota{RequestsCPU: "lots"}}, "Args.Quota.RequestsCPU: \"lots\" is not a Kubernetes quantity"},
		"request over limit": {Args{Namespace: "a", Limits: Limits{DefaultRequestCPU: "2", DefaultCPU: "1"}}, "Args.Limits.DefaultRequestCPU: 2 is larger than Limits.DefaultCPU"},
		"default over max":   {Args{Namespace: "a", Limits: Limits{DefaultMemory: "16Gi"}}, "Args.Limits.DefaultMemory: 16Gi is larger than Limits.MaxMemory"},
		"ingress ns":         {Args{Namespace: "a", AllowIngressFrom: []string{"Bad Name"}}, "Args.AllowIngressFrom[0]"},
		"egress cidr":        {Args{Namespace: "a", AllowEgressCIDRs: []string{"10.0.0.0"}}, "Args.AllowEgressCIDRs[0]: \"10.0.0.0\" is not an IPv4 CIDR"},
		"egress anywhere":    {Args{Namespace: "a", AllowEgressCIDRs: []string{"0.0.0.0/0"}}, "would undo default-deny egress"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := mocktest.Run(func(ctx *pulumi.Context) error {
				_, err := New(ctx, "base", tc.args)
				return err
			}, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "baseline: Args.")
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, g.Resources, "nothing may be registered when Args are invalid")
		})
	}
}
