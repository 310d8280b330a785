// Package shop is a team's own environment definition, written the way any
// team writes one: typed parameters, per-kind defaults, validation that
// names the field and the fix, and one Pulumi program built from Slipway's
// components. Slipway gives it, for free, the catalog of dev, qa, staging
// and prod, promotion, ephemeral pull-request environments, rendering to
// YAML, and (through cmd/shopctl, a three-line main) every verb, flag, exit
// code and output format of the slipway command.
//
// An environment is a namespace "shop-<name>" with a quota, container
// limits and default-deny network policies (components/baseline), the
// shop's settings as a ConfigMap, its secrets as a Secret, and the shop
// application itself: a Deployment and a Service, with a
// HorizontalPodAutoscaler where MaxReplicas asks for one
// (components/workload).
package shop

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/components/baseline"
	"github.com/slipwayhq/slipway/stacks"
)

// Project is the Pulumi project of every shop environment.
const Project = "shop"

// AppName names the shop's Deployment and Service; its ConfigMap is
// "shop-config" and its Secret "shop-secrets".
const AppName = "shop"

// Resources are the shop container's requests and limits, as Kubernetes
// quantities ("250m", "256Mi").
type Resources struct {
	CPURequest, CPULimit       string
	MemoryRequest, MemoryLimit string
}

// Params are a shop environment's parameters. Every zero field gets the
// kind's default (see Definition.Defaults).
type Params struct {
	// Image is the shop's container image with a pinned tag, e.g.
	// "ghcr.io/acme/shop:1.4.2" (default "nginx:1.27", a stand-in).
	Image string
	// Replicas is the number of shop pods (default 1; 2 in staging, 3 in prod).
	Replicas int
	// MaxReplicas, when set, turns on a HorizontalPodAutoscaler scaling
	// between Replicas and MaxReplicas (default: none in dev, qa and
	// ephemeral environments; 4 in staging, 10 in prod).
	MaxReplicas int
	// Namespace is the environment's namespace (default "shop-<name>").
	Namespace string
	// LogLevel is debug, info, warn or error (default debug; info in
	// staging, warn in prod); the shop reads it as LOG_LEVEL.
	LogLevel string
	// QueueDepth bounds the shop's order queue (default 10; 100 in staging,
	// 500 in prod); the shop reads it as QUEUE_DEPTH.
	QueueDepth int
	// Settings are extra settings for the shop's ConfigMap (plain text:
	// they are in the cluster, the state and the release records; use
	// secrets for credentials).
	Settings map[string]string
	// Resources are the container's requests and limits (small in dev,
	// larger in staging and prod).
	Resources Resources
	// Quota bounds what the namespace may request in total (see
	// components/baseline; its zero fields are the component's defaults).
	Quota baseline.Quota
}

// Env is one shop environment.
type Env = stacks.Env[Params]

// Definition is the shop: register it with the CLI (cli.Definitions) or
// build environments from it in Go (Definition.Program, Catalog, Release).
var Definition = &stacks.Definition[Params]{
	Name:        "shop",
	Project:     Project,
	Description: "the shop: namespace baseline, settings ConfigMap, secrets and the shop Deployment and Service",
	Defaults:    defaults(),
	Complete:    complete,
	Validate:    validate,
	Run:         run,
	Plugins:     func(Env) []automation.Plugin { return []automation.Plugin{automation.KubernetesPlugin} },
	Flags: []stacks.Flag{
		{Name: "image", Path: "Image", Usage: "shop image with a pinned tag (default nginx:1.27)"},
		{Name: "replicas", Path: "Replicas", Usage: "shop replicas (default 1, 2 in staging, 3 in prod)"},
		{Name: "namespace", Path: "Namespace", Usage: "namespace of a single environment (default shop-<env>)"},
		{Name: "log-level", Path: "LogLevel", Usage: "debug, info, warn or error (default by kind)"},
		{Name: "set", Path: "Settings", Usage: "extra shop setting KEY=VALUE, into its ConfigMap (repeatable)"},
	},
}

// defaults are the parameters per kind: dev, qa and ephemeral
// environments are small and chatty, staging is prod-like at a smaller
// scale, prod runs three pods that scale to ten.
func defaults() map[stacks.Kind]Params {
	small := Resources{CPURequest: "50m", CPULimit: "250m", MemoryRequest: "64Mi", MemoryLimit: "128Mi"}
	smallQuota := baseline.Quota{Pods: 10, RequestsCPU: "2", RequestsMemory: "2Gi", LimitsCPU: "4", LimitsMemory: "4Gi"}
	return map[stacks.Kind]Params{
		stacks.Dev:       {Image: "nginx:1.27", Replicas: 1, LogLevel: "debug", QueueDepth: 10, Resources: small, Quota: smallQuota},
		stacks.QA:        {Image: "nginx:1.27", Replicas: 1, LogLevel: "debug", QueueDepth: 50, Resources: small, Quota: smallQuota},
		stacks.Ephemeral: {Image: "nginx:1.27", Replicas: 1, LogLevel: "debug", QueueDepth: 10, Resources: small, Quota: smallQuota},
		stacks.Staging: {Image: "nginx:1.27", Replicas: 2, MaxReplicas: 4, LogLevel: "info", QueueDepth: 100,
			Resources: Resources{CPURequest: "100m", CPULimit: "500m", MemoryRequest: "128Mi", MemoryLimit: "256Mi"},
			Quota:     baseline.Quota{Pods: 20, RequestsCPU: "4", RequestsMemory: "8Gi", LimitsCPU: "8", LimitsMemory: "16Gi"}},
		stacks.Prod: {Image: "nginx:1.27", Replicas: 3, MaxReplicas: 10, LogLevel: "warn", QueueDepth: 500,
			Resources: Resources{CPURequest: "250m", CPULimit: "1", MemoryRequest: "256Mi", MemoryLimit: "512Mi"},
			Quota:     baseline.Quota{Pods: 50, RequestsCPU: "8", RequestsMemory: "16Gi", LimitsCPU: "16", LimitsMemory: "32Gi"}},
	}
}

// complete derives the namespace from the environment's ID (its name, or
// in the fleet a name unique per Environment object).
func complete(e *Env) {
	if e.Params.Namespace == "" && e.Name != "" {
		e.Params.Namespace = "shop-" + e.ID()
	}
}

// reserved are the ConfigMap keys the program sets from parameters.
var reserved = map[string]string{"LOG_LEVEL": "LogLevel", "QUEUE_DEPTH": "QueueDepth", "SHOP_ENVIRONMENT": "the environment's name"}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	keyRE    = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// validate checks a defaulted environment; every problem names its field
// and the fix, and all of them are reported at once.
func validate(e Env) error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, stacks.Errorf(field, format, args...)) }
	p := e.Params
	if e.RenderDir == "" && e.Kubeconfig == "" {
		bad("Kubeconfig", "is empty; pass the target cluster's kubeconfig (--kubeconfig, or `shopctl cluster up` for a local one)")
	}
	switch {
	case len(p.Namespace) > 63 || !dnsLabel.MatchString(p.Namespace):
		bad("Params.Namespace", "%q must be a lower-case DNS label of at most 63 characters, e.g. \"shop-%s\"", p.Namespace, e.Name)
	case p.Namespace == "default" || strings.HasPrefix(p.Namespace, "kube-"):
		bad("Params.Namespace", "%q is reserved; use a namespace of the environment's own such as \"shop-%s\"", p.Namespace, e.Name)
	}
	switch i := strings.LastIndexAny(p.Image, ":@/"); {
	case p.Image == "":
		bad("Params.Image", "is empty; use an image with a pinned tag such as \"ghcr.io/acme/shop:1.4.2\"")
	case i < 0 || p.Image[i] == '/' || p.Image[i+1:] == "latest":
		bad("Params.Image", "%q has no pinned tag; use an explicit version such as \"%s:1.4.2\"", p.Image, strings.TrimSuffix(p.Image, ":latest"))
	}
	if p.Replicas < 1 || p.Replicas > 50 {
		bad("Params.Replicas", "%d is out of range; use 1 to 50", p.Replicas)
	} else if (e.Kind == stacks.Staging || e.Kind == stacks.Prod) && p.Replicas < 2 {
		bad("Params.Replicas", "%d is too few for a %s environment (one pod is one outage); use at least 2", p.Replicas, e.Kind)
	}
	if p.MaxReplicas != 0 && p.MaxReplicas < p.Replicas {
		bad("Params.MaxReplicas", "%d is below Params.Replicas %d; raise it to at least %d, or lower the replicas", p.MaxReplicas, p.Replicas, p.Replicas)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, p.LogLevel) {
		bad("Params.LogLevel", "%q is not a level; use debug, info, warn or error", p.LogLevel)
	}
	if p.QueueDepth < 1 || p.QueueDepth > 10000 {
		bad("Params.QueueDepth", "%d is out of range; use 1 to 10000", p.QueueDepth)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Settings)) {
		if param, ok := reserved[k]; ok {
			bad("Params.Settings", "key %q is set by the shop from %s; set that instead", k, param)
		} else if len(k) > 253 || !keyRE.MatchString(k) {
			bad("Params.Settings", "key %q is not a valid ConfigMap key; use letters, digits, '-', '_' or '.'", k)
		}
	}
	// The components check the quantities, naming their own fields; the
	// image and replicas, checked above, are left out of their checks.
	wa := workloadArgs(e, nil)
	wa.Image, wa.Replicas, wa.MaxReplicas = "nginx:1.27", 1, 0
	if err := wa.Validate(); err != nil {
		bad("Params.Resources", "%w", err)
	}
	if err := baselineArgs(e).Validate(); err != nil {
		bad("Params.Quota", "%w", err)
	}
	return errors.Join(errs...)
}
