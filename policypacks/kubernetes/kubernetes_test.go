package kubernetes_test

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/components/workload"
	"github.com/slipwayhq/slipway/integration/mocktest"
	p "github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
)

const deployment = "kubernetes:apps/v1:Deployment"

// good is a compliant container.
func good() map[string]any {
	return map[string]any{
		"name": "app", "image": "ghcr.io/acme/app:1.2.3",
		"securityContext": map[string]any{"privileged": false, "allowPrivilegeEscalation": false, "runAsNonRoot": true,
			"readOnlyRootFilesystem": true, "capabilities": map[string]any{"drop": []any{"ALL"}}},
		"resources":      map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "64Mi"}, "limits": map[string]any{"cpu": "1", "memory": "128Mi"}},
		"livenessProbe":  map[string]any{"httpGet": map[string]any{"path": "/"}},
		"readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/"}},
	}
}

// with returns a compliant container with one setting changed (path "a.b").
func with(path string, v any) map[string]any {
	c := good()
	m := c
	keys := splitPath(path)
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	if v == nil {
		delete(m, keys[len(keys)-1])
	} else {
		m[keys[len(keys)-1]] = v
	}
	return c
}

func splitPath(s string) []string {
	var out []string
	cur := ""
	for _, ch := range s {
		if ch == '.' {
			out = append(out, cur)
			cur = ""
			continue
		}
		cur += string(ch)
	}
	return append(out, cur)
}

func deploy(name string, c map[string]any, pod map[string]any) p.Resource {
	spec := map[string]any{"containers": []any{c}}
	for k, v := range pod {
		spec[k] = v
	}
	return p.Resource{URN: "urn:pulumi:s::p::" + deployment + "::" + name, Type: deployment, Name: name,
		Props: p.FromPlain(map[string]any{"metadata": map[string]any{"name": name, "namespace": "team"},
			"spec": map[string]any{"template": map[string]any{"spec": spec}}})}
}

func obj(typ, name string, props map[string]any) p.Resource {
	return p.Resource{URN: "urn:pulumi:s::p::" + typ + "::" + name, Type: typ, Name: name, Props: p.FromPlain(props)}
}

type fixture struct {
	policy     string
	config     map[string]any
	pass, fail []p.Resource
}

var ns = obj(kubernetes.Namespace, "team", map[string]any{"metadata": map[string]any{"name": "team"}})

var fixtures = []fixture{
	{policy: "no-privileged", pass: []p.Resource{deploy("d", good(), nil)}, fail: []p.Resource{deploy("d", with("securityContext.privileged", true), nil)}},
	{policy: "no-privilege-escalation", pass: []p.Resource{deploy("d", good(), nil)},
		fail: []p.Resource{deploy("d", with("securityContext.allowPrivilegeEscalation", nil), nil)}},
	{policy: "run-as-non-root", pass: []p.Resource{deploy("d", with("securityContext.runAsNonRoot", nil), map[string]any{"securityContext": map[string]any{"runAsNonRoot": true}})},
		fail: []p.Resource{deploy("d", with("securityContext.runAsNonRoot", false), nil)}},
	{policy: "read-only-root-fs", pass: []p.Resource{deploy("d", good(), nil)}, fail: []p.Resource{deploy("d", with("securityContext.readOnlyRootFilesystem", nil), nil)}},
	{policy: "drop-all-capabilities", pass: []p.Resource{deploy("d", good(), nil)},
		fail: []p.Resource{deploy("d", with("securityContext.capabilities.drop", []any{"NET_RAW"}), nil)}},
	{policy: "resources-set", pass: []p.Resource{deploy("d", good(), nil)}, fail: []p.Resource{deploy("d", with("resources.limits", nil), nil)}},
	{policy: "probes-set", pass: []p.Resource{deploy("d", good(), nil)}, fail: []p.Resource{deploy("d", with("livenessProbe", nil), nil)}},
	{policy: "image-pinned", pass: []p.Resource{deploy("d", with("image", "nginx@sha256:"+sha), nil)},
		fail: []p.Resource{deploy("a", with("image", "nginx:latest"), nil), deploy("b", with("image", "localhost:5000/app"), nil)}},
	{policy: "image-registry-allowlist", pass: []p.Resource{deploy("d", with("image", "nginx:1.27"), nil)},
		fail: []p.Resource{deploy("d", with("image", "evil.example.com/app:1.0"), nil)}},
	{policy: "image-registry-allowlist", config: map[string]any{"registries": []any{"registry.internal"}},
		pass: []p.Resource{deploy("d", with("image", "registry.internal/team/app:1.0"), nil)}, fail: []p.Resource{deploy("d", with("image", "nginx:1.27"), nil)}},
	{policy: "no-default-namespace", pass: []p.Resource{deploy("d", good(), nil)},
		fail: []p.Resource{obj("kubernetes:core/v1:ConfigMap", "c", map[string]any{"metadata": map[string]any{"namespace": "default"}}),
			obj(kubernetes.Service, "s", map[string]any{"metadata": map[string]any{"name": "s"}})}},
	{policy: "no-host-namespaces", pass: []p.Resource{deploy("d", good(), map[string]any{"hostNetwork": false})},
		fail: []p.Resource{deploy("d", good(), map[string]any{"hostPID": true})}},
	{policy: "no-host-path", pass: []p.Resource{deploy("d", good(), map[string]any{"volumes": []any{map[string]any{"name": "tmp", "emptyDir": map[string]any{}}}})},
		fail: []p.Resource{deploy("d", good(), map[string]any{"volumes": []any{map[string]any{"name": "root", "hostPath": map[string]any{"path": "/"}}}})}},
	{policy: "loadbalancer-where-allowed", pass: []p.Resource{obj(kubernetes.Service, "s", map[string]any{"spec": map[string]any{"type": "ClusterIP"}})},
		fail: []p.Resource{obj(kubernetes.Service, "s", map[string]any{"metadata": map[string]any{"namespace": "team"}, "spec": map[string]any{"type": "LoadBalancer"}})}},
	{policy: "loadbalancer-where-allowed", config: map[string]any{"namespaces": []any{"ingress"}},
		pass: []p.Resource{obj(kubernetes.Service, "s", map[string]any{"metadata": map[string]any{"namespace": "ingress"}, "spec": map[string]any{"type": "LoadBalancer"}})}},
	{policy: "namespace-network-policy",
		pass: []p.Resource{ns, obj(kubernetes.NetworkPolicy, "np", map[string]any{"metadata": map[string]any{"namespace": "team"}})},
		fail: []p.Resource{ns, obj(kubernetes.NetworkPolicy, "np", map[string]any{"metadata": map[string]any{"namespace": "other"}})}},
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func only(policy string, config map[string]any) p.Settings {
	s := p.Settings{Kind: "prod", Overrides: map[string]p.Override{}}
	for _, pol := range kubernetes.Pack().Policies {
		if pol.Name != policy {
			s.Overrides[pol.Name] = p.Override{Enforcement: p.Disabled}
		}
	}
	s.Overrides[policy] = p.Override{Config: config}
	return s
}

func TestPack_IsWellFormedWithAtLeast12Rules(t *testing.T) {
	pack := kubernetes.Pack()
	require.NoError(t, pack.Validate())
	assert.GreaterOrEqual(t, len(pack.Policies), 12)
}

func TestPack_EveryRuleHasPassingAndFailingFixtures(t *testing.T) {
	pass, fail := map[string]bool{}, map[string]bool{}
	for _, f := range fixtures {
		t.Run(f.policy, func(t *testing.T) {
			s := only(f.policy, f.config)
			if f.pass != nil {
				assert.Empty(t, p.Evaluate(f.pass, s, kubernetes.Pack()).Results)
				pass[f.policy] = true
			}
			if f.fail != nil {
				rep := p.Evaluate(f.fail, s, kubernetes.Pack())
				assert.NotEmpty(t, rep.Violations())
				fail[f.policy] = true
			}
		})
	}
	for _, pol := range kubernetes.Pack().Policies {
		assert.True(t, pass[pol.Name], "%s needs a passing fixture", pol.Name)
		assert.True(t, fail[pol.Name], "%s needs a failing fixture", pol.Name)
	}
}

func TestRegistry(t *testing.T) {
	for img, want := range map[string]string{"nginx": "docker.io", "library/nginx:1": "docker.io", "ghcr.io/a/b:1": "ghcr.io",
		"localhost:5000/x": "localhost:5000", "123.dkr.ecr.us-east-1.amazonaws.com/app:1": "123.dkr.ecr.us-east-1.amazonaws.com"} {
		assert.Equal(t, want, kubernetes.Registry(img), img)
	}
}

// TestComponents_SecureDefaultsPassThePack: the baseline and a workload of
// every strategy produce no finding.
func TestComponents_SecureDefaultsPassThePack(t *testing.T) {
	for _, strategy := range []workload.Strategy{workload.Rolling, workload.BlueGreen, workload.Canary} {
		g, err := mocktest.Run(func(ctx *pulumi.Context) error {
			b, err := baseline.New(ctx, "base", baseline.Args{Namespace: "team"})
			if err != nil {
				return err
			}
			_, err = workload.New(ctx, "app", workload.Args{Namespace: b.Namespace, Name: "web", Image: "nginx:1.28",
				Strategy: strategy, Canary: workload.CanaryArgs{StableImage: "nginx:1.27"}})
			return err
		}, nil)
		require.NoError(t, err)
		rep := p.Evaluate(g.PolicyResources(), p.Settings{Kind: "prod"}, kubernetes.Pack())
		assert.Empty(t, rep.Results, "%s: %+v", strategy, rep.Results)
	}
}
