// Package baseline is the in-cluster baseline of a Slipway environment: a
// namespace with Pod Security Admission labels, a ResourceQuota, a LimitRange,
// a default-deny NetworkPolicy and explicit allow rules (same namespace, DNS
// egress, ingress from named namespaces). It works on any cluster.
//
// The zero value of Args is the secure default: PSA "restricted" enforced,
// quota and limits set, all traffic denied except within the namespace and DNS.
package baseline

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Type is the Pulumi type token of the component.
const Type = "slipway:baseline:Baseline"

// Quota bounds what the namespace may request in total.
type Quota struct {
	// Pods is the maximum number of pods (default 50).
	Pods int
	// RequestsCPU and RequestsMemory bound the sum of requests (default "8", "16Gi").
	RequestsCPU, RequestsMemory string
	// LimitsCPU and LimitsMemory bound the sum of limits (default "16", "32Gi").
	LimitsCPU, LimitsMemory string
}

// Limits are the LimitRange defaults applied to containers that set none.
type Limits struct {
	// DefaultRequestCPU and DefaultRequestMemory (default "100m", "128Mi").
	DefaultRequestCPU, DefaultRequestMemory string
	// DefaultCPU and DefaultMemory are default limits (default "500m", "512Mi").
	DefaultCPU, DefaultMemory string
	// MaxCPU and MaxMemory cap one container (default "4", "8Gi").
	MaxCPU, MaxMemory string
}

// Args configures a Baseline. The zero value (with Namespace set) is secure.
type Args struct {
	// Namespace is the environment's namespace name (required).
	Namespace string
	// PodSecurity is the Pod Security Admission level enforced: "restricted"
	// (default), "baseline" or "privileged".
	PodSecurity string
	// Quota is the namespace's ResourceQuota.
	Quota Quota
	// Limits is the namespace's LimitRange.
	Limits Limits
	// AllowIngressFrom names namespaces whose pods may connect to this one.
	AllowIngressFrom []string
	// AllowEgressCIDRs are extra destinations pods may reach (e.g. "10.0.0.0/8").
	AllowEgressCIDRs []string
	// DisableDNSEgress turns off the rule that lets pods reach kube-dns.
	DisableDNSEgress bool
	// Labels are added to the namespace.
	Labels map[string]string
}

// Baseline is the component.
type Baseline struct {
	pulumi.ResourceState

	// Namespace is the namespace's name.
	Namespace pulumi.StringOutput
	// NamespaceResource is the namespace, for DependsOn.
	NamespaceResource *corev1.Namespace
	// NetworkPolicies are the names of the policies created.
	NetworkPolicies pulumi.StringArrayOutput
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// withDefaults fills unset fields.
func (a Args) withDefaults() Args {
	if a.PodSecurity == "" {
		a.PodSecurity = "restricted"
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	if a.Quota.Pods == 0 {
		a.Quota.Pods = 50
	}
	def(&a.Quota.RequestsCPU, "8")
	def(&a.Quota.RequestsMemory, "16Gi")
	def(&a.Quota.LimitsCPU, "16")
	def(&a.Quota.LimitsMemory, "32Gi")
	def(&a.Limits.DefaultRequestCPU, "100m")
	def(&a.Limits.DefaultRequestMemory, "128Mi")
	def(&a.Limits.DefaultCPU, "500m")
	def(&a.Limits.DefaultMemory, "512Mi")
	def(&a.Limits.MaxCPU, "4")
	def(&a.Limits.MaxMemory, "8Gi")
	return a
}

// Validate reports every invalid field, naming it and the fix.
func (a Args) Validate() error {
	a = a.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("baseline: Args.%s: "+format, append([]any{field}, args...)...))
	}
	switch {
	case a.Namespace == "":
		bad("Namespace", "is empty; set the environment's namespace, e.g. \"slipway-dev\"")
	case len(a.Namespace) > 63 || !dnsLabel.MatchString(a.Namespace):
		bad("Namespace", "%q must be a lower-case DNS label of at most 63 characters", a.Namespace)
	case a.Namespace == "default" || strings.HasPrefix(a.Namespace, "kube-"):
		bad("Namespace", "%q is a system namespace; give the environment its own", a.Namespace)
	}
	switch a.PodSecurity {
	case "restricted", "baseline", "privileged":
	default:
		bad("PodSecurity", "%q is not a Pod Security level; use restricted, baseline or privileged", a.PodSecurity)
	}
	if a.Quota.Pods < 1 || a.Quota.Pods > 10000 {
		bad("Quota.Pods", "%d is out of range; use 1 to 10000", a.Quota.Pods)
	}
	qty := map[string]string{
		"Quota.RequestsCPU": a.Quota.RequestsCPU, "Quota.RequestsMemory": a.Quota.RequestsMemory,
		"Quota.LimitsCPU": a.Quota.LimitsCPU, "Quota.LimitsMemory": a.Quota.LimitsMemory,
		"Limits.DefaultRequestCPU": a.Limits.DefaultRequestCPU, "Limits.DefaultRequestMemory": a.Limits.DefaultRequestMemory,
		"Limits.DefaultCPU": a.Limits.DefaultCPU, "Limits.DefaultMemory": a.Limits.DefaultMemory,
		"Limits.MaxCPU": a.Limits.MaxCPU, "Limits.MaxMemory": a.Limits.MaxMemory,
	}
	for _, f := range slices.Sorted(maps.Keys(qty)) {
		if _, err := resource.ParseQuantity(qty[f]); err != nil {
			bad(f, "%q is not a Kubernetes quantity; use e.g. \"500m\" or \"512Mi\"", qty[f])
		}
	}
	if len(errs) == 0 {
		le := func(small, big string, fs, fb string) {
			if s, b := resource.MustParse(small), resource.MustParse(big); s.Cmp(b) > 0 {
				bad(fs, "%s is larger than %s %s; lower it or raise %s", small, fb, big, fb)
			}
		}
		le(a.Limits.DefaultRequestCPU, a.Limits.DefaultCPU, "Limits.DefaultRequestCPU", "Limits.DefaultCPU")
		le(a.Limits.DefaultRequestMemory, a.Limits.DefaultMemory, "Limits.DefaultRequestMemory", "Limits.DefaultMemory")
		le(a.Limits.DefaultCPU, a.Limits.MaxCPU, "Limits.DefaultCPU", "Limits.MaxCPU")
		le(a.Limits.DefaultMemory, a.Limits.MaxMemory, "Limits.DefaultMemory", "Limits.MaxMemory")
	}
	for i, ns := range a.AllowIngressFrom {
		if !dnsLabel.MatchString(ns) {
			bad(fmt.Sprintf("AllowIngressFrom[%d]", i), "%q is not a namespace name", ns)
		}
	}
	for i, c := range a.AllowEgressCIDRs {
		if !cidrRE.MatchString(c) {
			bad(fmt.Sprintf("AllowEgressCIDRs[%d]", i), "%q is not an IPv4 CIDR such as \"10.0.0.0/8\"", c)
		} else if c == "0.0.0.0/0" {
			bad(fmt.Sprintf("AllowEgressCIDRs[%d]", i), "0.0.0.0/0 would undo default-deny egress; list the networks pods need")
		}
	}
	return errors.Join(errs...)
}

var cidrRE = regexp.MustCompile(`^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$`)

// New registers the baseline. Invalid Args fail before any resource is registered.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Baseline, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	a := args.withDefaults()
	b := &Baseline{}
	if err := ctx.RegisterComponentResource(Type, name, b, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(b)
	labels := pulumi.StringMap{
		"pod-security.kubernetes.io/enforce": pulumi.String(a.PodSecurity),
		"pod-security.kubernetes.io/audit":   pulumi.String("restricted"),
		"pod-security.kubernetes.io/warn":    pulumi.String("restricted"),
		"app.kubernetes.io/managed-by":       pulumi.String("slipway"),
	}
	for k, v := range a.Labels {
		labels[k] = pulumi.String(v)
	}
	ns, err := corev1.NewNamespace(ctx, name, &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(a.Namespace), Labels: labels},
	}, child)
	if err != nil {
		return nil, err
	}
	nsName := ns.Metadata.Name().Elem()
	inNS := []pulumi.ResourceOption{child, pulumi.DependsOn([]pulumi.Resource{ns})}
	meta := func(n string) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(n), Namespace: nsName,
			Labels: pulumi.StringMap{"app.kubernetes.io/managed-by": pulumi.String("slipway")}}
	}
	if _, err := corev1.NewResourceQuota(ctx, name+"-quota", &corev1.ResourceQuotaArgs{
		Metadata: meta("slipway-quota"),
		Spec: &corev1.ResourceQuotaSpecArgs{Hard: pulumi.StringMap{
			"pods":            pulumi.Sprintf("%d", a.Quota.Pods),
			"requests.cpu":    pulumi.String(a.Quota.RequestsCPU),
			"requests.memory": pulumi.String(a.Quota.RequestsMemory),
			"limits.cpu":      pulumi.String(a.Quota.LimitsCPU),
			"limits.memory":   pulumi.String(a.Quota.LimitsMemory),
		}},
	}, inNS...); err != nil {
		return nil, err
	}
	if _, err := corev1.NewLimitRange(ctx, name+"-limits", &corev1.LimitRangeArgs{
		Metadata: meta("slipway-limits"),
		Spec: &corev1.LimitRangeSpecArgs{Limits: corev1.LimitRangeItemArray{&corev1.LimitRangeItemArgs{
			Type:           pulumi.String("Container"),
			DefaultRequest: pulumi.StringMap{"cpu": pulumi.String(a.Limits.DefaultRequestCPU), "memory": pulumi.String(a.Limits.DefaultRequestMemory)},
			Default:        pulumi.StringMap{"cpu": pulumi.String(a.Limits.DefaultCPU), "memory": pulumi.String(a.Limits.DefaultMemory)},
			Max:            pulumi.StringMap{"cpu": pulumi.String(a.Limits.MaxCPU), "memory": pulumi.String(a.Limits.MaxMemory)},
		}}},
	}, inNS...); err != nil {
		return nil, err
	}
	policies := []networkPolicy{{
		name: "default-deny",
		spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{},
			PolicyTypes: pulumi.StringArray{pulumi.String("Ingress"), pulumi.String("Egress")},
		},
	}, {
		name: "allow-same-namespace",
		spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{},
			PolicyTypes: pulumi.StringArray{pulumi.String("Ingress"), pulumi.String("Egress")},
			Ingress:     networkingv1.NetworkPolicyIngressRuleArray{&networkingv1.NetworkPolicyIngressRuleArgs{From: networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{PodSelector: &metav1.LabelSelectorArgs{}}}}},
			Egress:      networkingv1.NetworkPolicyEgressRuleArray{&networkingv1.NetworkPolicyEgressRuleArgs{To: networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{PodSelector: &metav1.LabelSelectorArgs{}}}}},
		},
	}}
	if !a.DisableDNSEgress {
		policies = append(policies, networkPolicy{name: "allow-dns-egress", spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{},
			PolicyTypes: pulumi.StringArray{pulumi.String("Egress")},
			Egress: networkingv1.NetworkPolicyEgressRuleArray{&networkingv1.NetworkPolicyEgressRuleArgs{
				To: networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{
					NamespaceSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String("kube-system")}},
					PodSelector:       &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"k8s-app": pulumi.String("kube-dns")}},
				}},
				Ports: networkingv1.NetworkPolicyPortArray{
					&networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("UDP"), Port: pulumi.Int(53)},
					&networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(53)},
				},
			}},
		}})
	}
	if len(a.AllowIngressFrom) > 0 {
		var from networkingv1.NetworkPolicyPeerArray
		for _, n := range a.AllowIngressFrom {
			from = append(from, &networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: &metav1.LabelSelectorArgs{
				MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(n)}}})
		}
		policies = append(policies, networkPolicy{name: "allow-ingress-from-namespaces", spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{},
			PolicyTypes: pulumi.StringArray{pulumi.String("Ingress")},
			Ingress:     networkingv1.NetworkPolicyIngressRuleArray{&networkingv1.NetworkPolicyIngressRuleArgs{From: from}},
		}})
	}
	if len(a.AllowEgressCIDRs) > 0 {
		var to networkingv1.NetworkPolicyPeerArray
		for _, c := range a.AllowEgressCIDRs {
			to = append(to, &networkingv1.NetworkPolicyPeerArgs{IpBlock: &networkingv1.IPBlockArgs{Cidr: pulumi.String(c)}})
		}
		policies = append(policies, networkPolicy{name: "allow-egress-cidrs", spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{},
			PolicyTypes: pulumi.StringArray{pulumi.String("Egress")},
			Egress:      networkingv1.NetworkPolicyEgressRuleArray{&networkingv1.NetworkPolicyEgressRuleArgs{To: to}},
		}})
	}
	var names pulumi.StringArray
	for _, p := range policies {
		np, err := networkingv1.NewNetworkPolicy(ctx, name+"-"+p.name, &networkingv1.NetworkPolicyArgs{
			Metadata: meta(p.name), Spec: p.spec,
		}, inNS...)
		if err != nil {
			return nil, err
		}
		names = append(names, np.Metadata.Name().Elem())
	}
	b.Namespace = nsName
	b.NamespaceResource = ns
	b.NetworkPolicies = names.ToStringArrayOutput()
	if err := ctx.RegisterResourceOutputs(b, pulumi.Map{"namespace": b.Namespace, "networkPolicies": b.NetworkPolicies}); err != nil {
		return nil, err
	}
	return b, nil
}

type networkPolicy struct {
	name string
	spec *networkingv1.NetworkPolicySpecArgs
}
