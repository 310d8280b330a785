// Package kubernetes is Slipway's Kubernetes policy pack: pod security
// (privilege, escalation, root, file system, capabilities, host namespaces
// and paths), resources and probes, image hygiene, namespaces, Service
// exposure and per-namespace NetworkPolicies. Policies map to the CIS
// Kubernetes Benchmark, PCI-DSS v4 and HIPAA controls.
package kubernetes

import (
	"fmt"
	"slices"
	"strings"

	p "github.com/slipwayhq/slipway/policypacks"
)

// Workload type tokens and where each keeps its pod spec.
var podSpecPaths = map[string]string{
	"kubernetes:core/v1:Pod":                   "spec",
	"kubernetes:apps/v1:Deployment":            "spec.template.spec",
	"kubernetes:apps/v1:StatefulSet":           "spec.template.spec",
	"kubernetes:apps/v1:DaemonSet":             "spec.template.spec",
	"kubernetes:apps/v1:ReplicaSet":            "spec.template.spec",
	"kubernetes:batch/v1:Job":                  "spec.template.spec",
	"kubernetes:batch/v1:CronJob":              "spec.jobTemplate.spec.template.spec",
	"kubernetes:core/v1:ReplicationController": "spec.template.spec",
}

// Other type tokens the pack judges.
const (
	Namespace     = "kubernetes:core/v1:Namespace"
	Service       = "kubernetes:core/v1:Service"
	NetworkPolicy = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
)

// WorkloadTypes are the resource types that carry a pod spec.
func WorkloadTypes() []string {
	out := make([]string, 0, len(podSpecPaths))
	for t := range podSpecPaths {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func ctl(pairs ...string) []p.Control {
	out := make([]p.Control, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, p.Control{Framework: pairs[i], ID: pairs[i+1]})
	}
	return out
}

// container is one container of a workload with the pod spec around it.
type container struct {
	name string
	c    p.Props
	pod  p.Props
}

// podSpec returns a workload's pod spec and its state.
func podSpec(r p.Resource) (p.Props, p.State) {
	return r.Props.Map(podSpecPaths[r.Type])
}

// containers visits every container and init container of a workload; it
// reports unverifiable when the pod spec is not known yet.
func containers(r p.Resource, a *p.Args, fn func(container)) {
	pod, st := podSpec(r)
	if st == p.Unknowable {
		a.Unverifiable(r.URN, "the pod spec is not known until update")
		return
	}
	for _, key := range []string{"initContainers", "containers"} {
		l, _ := pod.List(key)
		for i := range l {
			c, _ := pod.Map(fmt.Sprintf("%s.%d", key, i))
			name, _ := c.String("name")
			fn(container{name: name, c: c, pod: pod})
		}
	}
}

// eachContainer builds a resource validation that checks every container.
func eachContainer(check func(r p.Resource, c container, a *p.Args)) func(p.Resource, *p.Args) {
	return func(r p.Resource, a *p.Args) {
		containers(r, a, func(c container) { check(r, c, a) })
	}
}

// podOrContainerBool reads a security setting from the container, falling back to the pod.
func podOrContainerBool(c container, key string) (bool, p.State) {
	if v, st := c.c.Bool("securityContext." + key); st != p.Missing {
		return v, st
	}
	return c.pod.Bool("securityContext." + key)
}

// Registry returns the registry host of an image reference ("docker.io" for short names).
func Registry(image string) string {
	first, _, found := strings.Cut(image, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io"
	}
	return first
}

// imageTag returns the tag of an image ("" when untagged; "@digest" pins by digest).
func imageTag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		return "@digest"
	}
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[i+1:]
	}
	return ""
}

// Pack returns the Kubernetes policy pack.
func Pack() *p.Pack {
	workloads := WorkloadTypes()
	return &p.Pack{Name: "slipway-kubernetes", Version: "0.1.0", Policies: []*p.Policy{
		{
			Name: "no-privileged", Description: "Containers do not run privileged",
			Severity: p.Critical, Enforcement: p.Mandatory, Types: workloads,
			Controls: ctl(p.CISK8s, "5.2.2", p.PCI, "2.2.1", p.HIPAA, "164.312(a)(1)"),
			Validate: eachContainer(func(r p.Resource, c container, a *p.Args) {
				v, st := c.c.Bool("securityContext.privileged")
				a.Check(r, st, !v, "container %q runs privileged", c.name)
			}),
		},
		{
			Name: "no-privilege-escalation", Description: "Containers set allowPrivilegeEscalation: false",
			Severity: p.High, Enforcement: p.Mandatory, Types: workloads,
			Controls: ctl(p.CISK8s, "5.2.5", p.PCI, "2.2.1"),
			Validate: eachContainer(func(r p.Resource, c container, a *p.Args) {
				v, st := c.c.Bool("securityContext.allowPrivilegeEscalation")
				a.Check(r, st, st == p.Known && !v, "container %q does not set allowPrivilegeEscalation: false", c.name)
			}),
		},
		{
			Name: "run-as-non-root", Description: "Containers run as a non-root user",
			Severity: p.High, Enforcement: p.Mandatory, Types: workloads,
			Controls: ctl(p.CISK8s, "5.2.6", p.PCI, "2.2.1", p.HIPAA, "164.312(a)(1)"),
			Validate: eachContainer(func(r p.Resource, c container, a *p.Args) {
				v, st := podOrContainerBool(c, "runAsNonRoot")
				a.Check(r, st, v, "container %q may run as root; set runAsNonRoot: true", c.name)
			}),
		},
		{
			Name: "read-only-root-fs", Description: "Containers mount their root file system read-only",
			Severity: p.Medium, Enforcement: p.Mandatory, Types: workloads,
			Controls: ctl(p.CISK8s, "5.7.3", p.PCI, "11.5.2"),
			Validate: eachContainer(func(r p.Resource, c container, a *p.Args) {
				v, st := c.c.Bool("securityContext.readOnlyRootFilesystem")
				a.Check(r, st, v, "container %q has a writable root file system", c.name)
			}),
		},
		{
			Name: "drop-all-capabilities", Description: "Containers drop all Linux capabilities",
			Severity: p.Medium, Enforcement: p.Advisory, Types: workloads,
			Controls: ctl(p.CISK8s, "5.2.9"),
			Validate: eachContainer(func(r p.Resource, c container, a *p.Args) {
				drop, st := c.c.Strings("securityContext.capabilities.drop")
				a.Check(r, st, slices.Contains(drop, "ALL"), "container %q does not drop ALL capabilities", c.name)
			}),
		},
		{
			Name: "resources-set", Description: "Containers set CPU and memory requests and limits",
			Severity: p.Medium, Enforcement: p.Mandatory, Types: workloads,
			Controls: ctl(p.CISK8s, "5.7.4", p.PCI, "6.4.1"),
			Validate: eachContainer(func(r p.Resource, c container, a *p.Args) {
				var missing []string
				unknown := false
				for _, k := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
					switch _, st := c.c.Get("resources." + k); st {
					case p.Missing:
						missing = append(missing, k)
					case p.Unknowable:
						unknown = true
					}
				}
				st := p.Known
				if unknown && len(missing) == 0 {
					st = p.Unknowable
				}
				a.Check(r, st, len(missing) == 0, "container %q sets no %s", c.name, strings.Join(missing, ", "))
			}),
		},
		{
			Name: "probes-set", Description: "Long-running containers have liveness and readiness probes",
			Severity: p.Low, Enforcement: p.Mandatory,
			Types:    []string{"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet"},
			Controls: ctl(p.PCI, "6.4.1"),
			Validate: func(r p.Resource, a *p.Args) {
				pod, st := podSpec(r)
				if st == p.Unknowable {
					a.Unverifiable(r.URN, "the pod spec is not known until update")
					return
				}
				l, _ := pod.List("containers")
				for i := range l {
					c, _ := pod.Map(fmt.Sprintf("containers.%d", i))
					name, _ := c.String("name")
					for _, probe := range []string{"livenessProbe", "readinessProbe"} {
						_, st := c.Get(probe)
						a.Check(r, st, st != p.Missing, "container %q has no %s", name, probe)
					}
				}
			},
		},
		{
			Name: "image-pinned", Description: "Images carry an explicit tag other than latest, or a digest",
			Severity: p.Medium, Enforcement: p.Mandatory, Types: workloads,
			Controls: ctl(p.CISK8s, "5.5.1", p.PCI, "6.3.2"),
			Validate: eachContainer(func(r p.Resource, c container, a *p.Args) {
				img, st := c.c.String("image")
				tag := imageTag(img)
				a.Check(r, st, tag != "" && tag != "latest", "container %q image %q is not pinned; use an explicit version", c.name, img)
			}),
		},
		{
			Name: "image-registry-allowlist", Description: "Images come from allowed registries",
			Severity: p.High, Enforcement: p.Mandatory, Types: workloads,
			Controls:     ctl(p.CISK8s, "5.5.1", p.PCI, "6.3.2"),
			Config:       p.Config{"registries": []any{"docker.io", "ghcr.io", "registry.k8s.io", "public.ecr.aws", "quay.io"}},
			ConfigSchema: map[string]map[string]any{"registries": {"type": "array", "items": map[string]any{"type": "string"}}},
			Validate: eachContainer(func(r p.Resource, c container, a *p.Args) {
				img, st := c.c.String("image")
				allowed := a.Config.Strings("registries")
				reg := Registry(img)
				ok := slices.ContainsFunc(allowed, func(s string) bool { return reg == s || strings.HasSuffix(reg, "."+s) })
				a.Check(r, st, ok, "container %q pulls from %s, which is not in %v", c.name, reg, allowed)
			}),
		},
		{
			Name: "no-default-namespace", Description: "Namespaced objects do not live in the default namespace",
			Severity: p.Low, Enforcement: p.Mandatory, Types: append(slices.Clone(workloads), Service, "kubernetes:core/v1:ConfigMap",
				"kubernetes:core/v1:Secret", NetworkPolicy, "kubernetes:core/v1:ServiceAccount"),
			Controls: ctl(p.CISK8s, "5.7.4"),
			Validate: func(r p.Resource, a *p.Args) {
				ns, st := r.Props.String("metadata.namespace")
				a.Check(r, st, st != p.Missing && ns != "default" && ns != "", "%s %s is in the default namespace; give it the environment's namespace", r.Type, r.Name)
			},
		},
		{
			Name: "no-host-namespaces", Description: "Pods do not share the host's network, PID or IPC namespaces",
			Severity: p.Critical, Enforcement: p.Mandatory, Types: workloads,
			Controls: ctl(p.CISK8s, "5.2.3", p.PCI, "2.2.1", p.HIPAA, "164.312(a)(1)"),
			Validate: func(r p.Resource, a *p.Args) {
				pod, st := podSpec(r)
				if st == p.Unknowable {
					a.Unverifiable(r.URN, "the pod spec is not known until update")
					return
				}
				for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
					v, st := pod.Bool(k)
					a.Check(r, st, !v, "%s is true", k)
				}
			},
		},
		{
			Name: "no-host-path", Description: "Pods do not mount hostPath volumes",
			Severity: p.High, Enforcement: p.Mandatory, Types: workloads,
			Controls: ctl(p.CISK8s, "5.2.12", p.PCI, "2.2.1"),
			Validate: func(r p.Resource, a *p.Args) {
				pod, st := podSpec(r)
				if st == p.Unknowable {
					a.Unverifiable(r.URN, "the pod spec is not known until update")
					return
				}
				l, _ := pod.List("volumes")
				for i := range l {
					if _, st := pod.Get(fmt.Sprintf("volumes.%d.hostPath", i)); st != p.Missing {
						name, _ := pod.String(fmt.Sprintf("volumes.%d.name", i))
						a.Report(r.URN, "volume %q mounts a host path", name)
					}
				}
			},
		},
		{
			Name: "loadbalancer-where-allowed", Description: "Services of type LoadBalancer only in namespaces allowed by config",
			Severity: p.Medium, Enforcement: p.Mandatory, Types: []string{Service},
			Controls:     ctl(p.PCI, "1.4.1", p.HIPAA, "164.312(e)(1)"),
			Config:       p.Config{"namespaces": []any{}},
			ConfigSchema: map[string]map[string]any{"namespaces": {"type": "array", "items": map[string]any{"type": "string"}}},
			Validate: func(r p.Resource, a *p.Args) {
				typ, st := r.Props.String("spec.type")
				if st == p.Unknowable {
					a.Unverifiable(r.URN, "the Service type is not known until update")
					return
				}
				if typ != "LoadBalancer" {
					return
				}
				ns, _ := r.Props.String("metadata.namespace")
				a.Check(r, p.Known, slices.Contains(a.Config.Strings("namespaces"), ns),
					"Service %s exposes a load balancer in namespace %q; allow the namespace in config or use ClusterIP behind an ingress", r.Name, ns)
			},
		},
		{
			Name: "namespace-network-policy", Description: "Every namespace of the stack has a NetworkPolicy",
			Severity: p.High, Enforcement: p.Mandatory,
			Controls: ctl(p.CISK8s, "5.3.2", p.PCI, "1.2.1", p.HIPAA, "164.312(e)(1)"),
			ValidateStack: func(rs []p.Resource, a *p.Args) {
				for _, ns := range p.OfType(rs, Namespace) {
					name, st := ns.Props.String("metadata.name")
					has := false
					for _, np := range p.OfType(rs, NetworkPolicy) {
						if np.DependsOn("metadata", ns.URN) {
							has = true
						} else if n, _ := np.Props.String("metadata.namespace"); st == p.Known && n == name {
							has = true
						}
					}
					a.Check(ns, p.Known, has, "namespace %s has no NetworkPolicy; traffic is unrestricted", ns.Name)
				}
			},
		},
	}}
}
