// Package cost is Slipway's cost-guard policy pack: instance types and node
// group sizes allowed per environment, no NAT gateway per AZ in ephemeral
// environments, and storage size and class limits.
package cost

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	p "github.com/slipwayhq/slipway/policypacks"
)

// Type tokens the pack judges.
const (
	NodeGroup      = "aws:eks/nodeGroup:NodeGroup"
	Instance       = "aws:ec2/instance:Instance"
	LaunchTemplate = "aws:ec2/launchTemplate:LaunchTemplate"
	NatGateway     = "aws:ec2/natGateway:NatGateway"
	EBSVolume      = "aws:ebs/volume:Volume"
	PVC            = "kubernetes:core/v1:PersistentVolumeClaim"
)

var (
	small = []any{"t3.*", "t3a.*", "t4g.*"}
	// DefaultInstanceTypes are the instance type patterns allowed per environment ("*" matches a suffix).
	DefaultInstanceTypes = map[string]any{
		"dev": small, "qa": small, "ephemeral": small,
		"staging": []any{"t3.*", "m6i.*", "m7i.*", "c6i.*"},
		"prod":    []any{"m6i.*", "m7i.*", "c6i.*", "c7i.*", "r6i.*", "t3.*"},
	}
	// DefaultMaxNodes is the largest node group maxSize per environment.
	DefaultMaxNodes = map[string]any{"dev": float64(3), "qa": float64(3), "ephemeral": float64(2), "staging": float64(10), "prod": float64(50)}
	// DefaultMaxVolumeGiB is the largest EBS volume or PVC per environment.
	DefaultMaxVolumeGiB = map[string]any{"dev": float64(100), "qa": float64(100), "ephemeral": float64(50), "staging": float64(500), "prod": float64(4096)}
)

func ctl(id string) []p.Control { return []p.Control{{Framework: p.PCI, ID: id}} }

// perEnv returns the environment's entry of a per-environment setting.
func perEnv(a *p.Args, key string) (any, bool) {
	m := a.Config.Map(key)
	v, ok := m[a.Kind]
	return v, ok
}

func typeAllowed(a *p.Args, typ string) (bool, []string) {
	v, ok := perEnv(a, "instanceTypes")
	if !ok {
		return true, nil
	}
	var pats []string
	if l, ok := v.([]any); ok {
		for _, e := range l {
			if s, ok := e.(string); ok {
				pats = append(pats, s)
			}
		}
	}
	for _, pat := range pats {
		if pat == typ || (strings.HasSuffix(pat, "*") && strings.HasPrefix(typ, strings.TrimSuffix(pat, "*"))) {
			return true, pats
		}
	}
	return false, pats
}

// Pack returns the cost-guard pack.
func Pack() *p.Pack {
	return &p.Pack{Name: "slipway-cost", Version: "0.1.0", Policies: []*p.Policy{
		{
			Name: "instance-types", Description: "Instance types are within the environment's allowed families",
			Severity: p.Medium, Enforcement: p.Mandatory, Types: []string{NodeGroup, Instance, LaunchTemplate},
			Controls:     ctl("12.5.1"),
			Config:       p.Config{"instanceTypes": DefaultInstanceTypes},
			ConfigSchema: map[string]map[string]any{"instanceTypes": {"type": "object"}},
			Validate: func(r p.Resource, a *p.Args) {
				var types []string
				var st p.State
				if r.Type == NodeGroup {
					types, st = r.Props.Strings("instanceTypes")
				} else {
					var t string
					t, st = r.Props.String("instanceType")
					types = []string{t}
				}
				if st == p.Missing {
					return
				}
				for _, t := range types {
					ok, pats := typeAllowed(a, t)
					a.Check(r, st, ok, "instance type %s is not allowed in %s (allowed: %v)", t, a.Kind, pats)
				}
			},
		},
		{
			Name: "node-group-size", Description: "Node groups stay within the environment's maximum size",
			Severity: p.Medium, Enforcement: p.Mandatory, Types: []string{NodeGroup},
			Controls:     ctl("12.5.1"),
			Config:       p.Config{"maxNodes": DefaultMaxNodes},
			ConfigSchema: map[string]map[string]any{"maxNodes": {"type": "object"}},
			Validate: func(r p.Resource, a *p.Args) {
				limit, ok := perEnv(a, "maxNodes")
				if !ok {
					return
				}
				n, st := r.Props.Number("scalingConfig.maxSize")
				a.Check(r, st, n <= limit.(float64), "node group %s may grow to %v nodes; %s allows %v", r.Name, n, a.Kind, limit)
			},
		},
		{
			Name: "no-nat-per-az-ephemeral", Description: "Ephemeral environments use at most one NAT gateway",
			Severity: p.Low, Enforcement: p.Mandatory,
			Controls:     ctl("12.5.1"),
			Config:       p.Config{"environments": []any{"ephemeral"}, "max": float64(1)},
			ConfigSchema: map[string]map[string]any{"environments": {"type": "array"}, "max": {"type": "integer"}},
			ValidateStack: func(rs []p.Resource, a *p.Args) {
				if !slices.Contains(a.Config.Strings("environments"), a.Kind) {
					return
				}
				nats := p.OfType(rs, NatGateway)
				if max := a.Config.Int("max"); len(nats) > max {
					a.Report(nats[0].URN, "%d NAT gateways in a %s environment; use one (NAT single) or none", len(nats), a.Kind)
				}
			},
		},
		{
			Name: "storage-limits", Description: "Volumes and claims stay within the environment's size and class limits",
			Severity: p.Medium, Enforcement: p.Mandatory, Types: []string{EBSVolume, PVC},
			Controls: ctl("12.5.1"),
			Config: p.Config{"maxGiB": DefaultMaxVolumeGiB,
				"expensiveTypes": []any{"io1", "io2"}, "expensiveAllowedIn": []any{"prod"}, "storageClasses": []any{}},
			ConfigSchema: map[string]map[string]any{"maxGiB": {"type": "object"}, "expensiveTypes": {"type": "array"},
				"expensiveAllowedIn": {"type": "array"}, "storageClasses": {"type": "array"}},
			Validate: func(r p.Resource, a *p.Args) {
				var gib float64
				var st p.State
				if r.Type == EBSVolume {
					gib, st = r.Props.Number("size")
					t, _ := r.Props.String("type")
					if slices.Contains(a.Config.Strings("expensiveTypes"), t) && !slices.Contains(a.Config.Strings("expensiveAllowedIn"), a.Kind) {
						a.Report(r.URN, "volume type %s is not allowed in %s; use gp3", t, a.Kind)
					}
				} else {
					var v any
					v, st = r.Props.Get("spec.resources.requests.storage")
					if st == p.Known {
						q, _ := v.(string)
						var err error
						if gib, err = parseGiB(q); err != nil {
							// Fail closed: a size the guard cannot read is not a size it may allow.
							a.Report(r.URN, "%s asks for storage %v, which is not a Kubernetes quantity; use e.g. \"10Gi\"", r.Name, quote(v))
							st = p.Missing
						}
					}
					cls, _ := r.Props.String("spec.storageClassName")
					if allowed := a.Config.Strings("storageClasses"); len(allowed) > 0 && !slices.Contains(allowed, cls) {
						a.Report(r.URN, "storage class %q is not in %v", cls, allowed)
					}
				}
				if limit, ok := perEnv(a, "maxGiB"); ok && st != p.Missing {
					a.Check(r, st, gib <= limit.(float64), "%s asks for %v GiB; %s allows %v GiB", r.Name, gib, a.Kind, limit)
				}
			},
		},
	}}
}

// parseGiB converts a Kubernetes quantity ("10Gi", "500Ki", "2Pi", "1Ei",
// "20G", "1.5e3M") to GiB; it fails on anything resource.ParseQuantity
// rejects and on negative sizes.
func parseGiB(q string) (float64, error) {
	qty, err := resource.ParseQuantity(q)
	if err != nil {
		return 0, err
	}
	if qty.Sign() < 0 {
		return 0, fmt.Errorf("negative quantity %s", q)
	}
	return qty.AsApproximateFloat64() / (1 << 30), nil
}

// quote renders a property value for a message: strings quoted, others as is.
func quote(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}
