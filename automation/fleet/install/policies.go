package install

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Names of the NetworkPolicies and of the PodDisruptionBudgets (these are
// named after their Deployments, OperatorName and RunnerName).
const (
	// DefaultDenyName names the NetworkPolicy that denies every ingress
	// and egress of the fleet's pods not allowed by another policy.
	DefaultDenyName = "slipway-default-deny"
)

// EgressPorts are the TCP ports the fleet's pods may reach on any address
// (besides DNS, port 53 over UDP and TCP): 443 and 6443 for the API
// server (its address is not selectable by a NetworkPolicy: it is no pod),
// and, on 443, the state backends (S3, GCS, Azure Blob, HTTPS) and the
// providers' cloud APIs; the operator may also reach Git servers on 22
// (SSH). Anything else, such as a backend on another port, a Git server
// on 9418, or a provider endpoint on a custom port, needs a NetworkPolicy
// of the user's selecting the pods by the label
// app.kubernetes.io/component (operator or runner) and allowing that egress:
// NetworkPolicies add up.
var EgressPorts = map[string][]int32{"operator": {443, 6443, 22}, "runner": {443, 6443}}

// policies returns the PodDisruptionBudgets of the operator and the
// runners, and their NetworkPolicies: a default deny for every pod of the
// fleet, then per component ingress to the metrics and health ports only,
// and egress to DNS and EgressPorts only.
func policies(o Options) ([]*unstructured.Unstructured, error) {
	var objs []runtime.Object
	kinds := []string{}
	for _, c := range []struct{ name, component string }{{OperatorName, "operator"}, {RunnerName, "runner"}} {
		// At most one pod of each away at a time: a drain keeps a
		// leader candidate and the runners' capacity; with one replica
		// the drain still proceeds.
		objs = append(objs, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: o.Namespace, Labels: componentLabels(c.component)},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: ptr.To(intstr.FromInt32(1)),
				Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels(c.component)},
			},
		})
		kinds = append(kinds, "PodDisruptionBudget")
	}
	objs = append(objs, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultDenyName, Namespace: o.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": partOf}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "slipway"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	})
	kinds = append(kinds, "NetworkPolicy")
	tcp, udp := ptr.To(corev1.ProtocolTCP), ptr.To(corev1.ProtocolUDP)
	for _, c := range []struct{ name, component string }{{OperatorName, "operator"}, {RunnerName, "runner"}} {
		egress := []networkingv1.NetworkPolicyPort{
			{Protocol: udp, Port: ptr.To(intstr.FromInt32(53))},
			{Protocol: tcp, Port: ptr.To(intstr.FromInt32(53))},
		}
		for _, p := range EgressPorts[c.component] {
			egress = append(egress, networkingv1.NetworkPolicyPort{Protocol: tcp, Port: ptr.To(intstr.FromInt32(p))})
		}
		objs = append(objs, &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: o.Namespace, Labels: componentLabels(c.component)},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels(c.component)},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{
					{Protocol: tcp, Port: ptr.To(intstr.FromString("metrics"))},
					{Protocol: tcp, Port: ptr.To(intstr.FromString("health"))},
				}}},
				Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: egress}},
			},
		})
		kinds = append(kinds, "NetworkPolicy")
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, obj := range objs {
		u, err := toUnstructured(obj, kinds[i])
		if err != nil {
			return nil, err
		}
		out[i] = u
	}
	return out, nil
}

// selectorLabels select the pods of a component (the Deployments' selector).
func selectorLabels(component string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": "slipway", "app.kubernetes.io/component": component}
}

// componentLabels are the labels of a component's objects.
func componentLabels(component string) map[string]string {
	l := selectorLabels(component)
	l["app.kubernetes.io/part-of"] = partOf
	return l
}
