// Package web is Slipway's built-in environment: one program serves every
// environment, and dev, qa, staging, prod and ephemeral environments differ
// only in typed, validated parameters. It is one stacks.Definition, the
// way a team declares its own.
//
// An environment targets either "kubernetes" (the in-cluster baseline and
// the application on any cluster, e.g. the local one) or "aws" (VPC, EKS,
// an S3 bucket, then the same baseline and application on the new cluster).
package web

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/components/cluster"
	"github.com/slipwayhq/slipway/components/network"
	"github.com/slipwayhq/slipway/components/workload"
	"github.com/slipwayhq/slipway/stacks"
)

// Project is the Pulumi project of every web environment.
const Project = "slipway"

// Target is where an environment runs.
type Target string

// Targets.
const (
	// Kubernetes deploys the baseline and the application to an existing cluster.
	Kubernetes Target = "kubernetes"
	// AWS provisions a VPC, an EKS cluster and a bucket, then deploys to the cluster.
	AWS Target = "aws"
)

// App describes the application an environment runs.
type App struct {
	// Name of the Deployment, Service and ConfigMap (default "web").
	Name string
	// Image is the container image, with an explicit tag (default "nginx:1.27").
	Image string
	// Replicas is the replica count (default 1; 2 in staging, 3 in prod).
	Replicas int
	// Strategy is the rollout strategy (default rolling).
	Strategy workload.Strategy
	// Settings become the application's ConfigMap data (plain text: in the
	// cluster, in the stack's state and in Version).
	Settings map[string]string
	// ReadyTimeout bounds the wait for the application to become Ready (default 5m).
	ReadyTimeout time.Duration
	// Route splits a canary's traffic (Strategy canary, rolled out with
	// `slipway rollout`) with a Gateway API HTTPRoute when Route.Gateway is
	// set; without it the canary's share is the ratio of its pods.
	Route Route
}

// Route is the Gateway API HTTPRoute of a canary application (see
// workload.RouteArgs); the Gateway API CRDs must be installed.
type Route struct {
	// Gateway is the name of the Gateway the route attaches to (empty: no route).
	Gateway string
	// GatewayNamespace is the Gateway's namespace (default the environment's).
	GatewayNamespace string
	// Hostnames are the route's host names (default: every host the Gateway accepts).
	Hostnames []string
}

// AWSParams are the parameters of the aws target.
type AWSParams struct {
	// CIDR is the VPC block (default "10.0.0.0/16").
	CIDR string
	// AZCount is the number of availability zones (default 2; 3 in staging and prod).
	AZCount int
	// NAT is none, single or per-az (default single; per-az in prod; none when ephemeral).
	NAT string
	// NodeGroups of the EKS cluster (default one group sized by kind).
	NodeGroups []cluster.NodeGroup
	// PublicAccessCIDRs opens the EKS endpoint to these networks (default: private only).
	PublicAccessCIDRs []string
	// KubernetesVersion of the EKS cluster (default: the cluster component's).
	KubernetesVersion string
}

// Params are a web environment's parameters.
//
// The environment's secrets (stacks.Env.Secrets) become the data of the
// Kubernetes Secret "<App.Name>-secrets", which the application gets as
// environment variables (envFrom, after the Settings, so a secret wins
// over a setting of the same key).
type Params struct {
	// Target is kubernetes (default) or aws.
	Target Target
	// Namespace is the environment's namespace (default "slipway-<id>",
	// where the id is the environment's name, or in the fleet a name
	// unique per Environment object; see stacks.Env.ID).
	Namespace string
	// App is the application to run.
	App App
	// AWS holds the aws target's parameters.
	AWS AWSParams
	// Tags are added to every AWS resource; "slipway:environment" and
	// "slipway:kind" are always set unless given.
	Tags map[string]string
}

// Environment is one web environment.
type Environment = stacks.Env[Params]

// Definition is the built-in web environment.
var Definition = &stacks.Definition[Params]{
	Name:        "web",
	Project:     Project,
	Description: "the built-in web environment: namespace baseline, application ConfigMap, Secret and Deployment (kubernetes), on a new VPC and EKS cluster (aws)",
	Defaults:    defaults(),
	// "<anything>-<kind>" names its kind ("shop-prod"); any other name
	// that is not a kind needs --kind.
	KindOf:   stacks.KindBySuffix,
	Complete: complete,
	Validate: validate,
	Run:      run,
	Canary:   canaryAt,
	Plugins:  plugins,
	Flags: []stacks.Flag{
		{Name: "image", Path: "App.Image", Usage: "application image with a pinned tag (default nginx:1.27)"},
		{Name: "replicas", Path: "App.Replicas", Usage: "application replicas (default 1, 2 in staging, 3 in prod)"},
		{Name: "namespace", Path: "Namespace", Usage: "namespace of a single environment (default slipway-<env>)"},
		{Name: "set", Path: "App.Settings", Usage: "application setting KEY=VALUE, into its ConfigMap (repeatable)"},
		{Name: "strategy", Path: "App.Strategy", Usage: "rollout strategy: rolling, bluegreen or canary (rollout start needs canary; default rolling)"},
		{Name: "gateway", Path: "App.Route.Gateway", Usage: "Gateway API Gateway whose HTTPRoute splits a canary's traffic (default: by the ratio of pods)"},
	},
}

// defaults are the parameters per kind.
func defaults() map[stacks.Kind]Params {
	out := map[stacks.Kind]Params{}
	for _, k := range stacks.Kinds() {
		p := Params{
			Target: Kubernetes,
			App:    App{Name: "web", Image: "nginx:1.27", Replicas: 1, Strategy: workload.Rolling},
			AWS: AWSParams{CIDR: "10.0.0.0/16", AZCount: 2, NAT: network.NATSingle,
				NodeGroups: []cluster.NodeGroup{{Name: "general", InstanceTypes: []string{"t3.large"}, MinSize: 1, DesiredSize: 2, MaxSize: 3}}},
		}
		switch k {
		case stacks.Staging:
			p.App.Replicas, p.AWS.AZCount = 2, 3
		case stacks.Prod:
			p.App.Replicas, p.AWS.AZCount, p.AWS.NAT = 3, 3, network.NATPerAZ
			p.AWS.NodeGroups = []cluster.NodeGroup{{Name: "general", InstanceTypes: []string{"m6i.xlarge"}, MinSize: 3, DesiredSize: 3, MaxSize: 12}}
		case stacks.Ephemeral:
			p.AWS.NAT = network.NATNone
			p.AWS.NodeGroups = []cluster.NodeGroup{{Name: "general", InstanceTypes: []string{"t3.large"}, MinSize: 1, DesiredSize: 1, MaxSize: 2}}
		}
		out[k] = p
	}
	return out
}

// complete derives the namespace from the environment's ID (its name, or
// a name unique per tenant and name) and the environment tags.
func complete(e *Environment) {
	if e.Params.Namespace == "" && e.Name != "" {
		e.Params.Namespace = "slipway-" + e.ID()
	}
	tags := map[string]string{"slipway:environment": e.Name, "slipway:kind": string(e.Kind)}
	if e.Tenant != "" {
		tags["slipway:tenant"] = e.Tenant
	}
	maps.Copy(tags, e.Params.Tags)
	e.Params.Tags = tags
}

// plugins: the Kubernetes provider always, the AWS provider for aws.
func plugins(e Environment) []automation.Plugin {
	out := []automation.Plugin{automation.KubernetesPlugin}
	if e.Params.Target == AWS {
		out = append(out, automation.Plugin{Name: "aws", Version: toolchain.AWSProviderVersion})
	}
	return out
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	keyRE    = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// validate checks a defaulted environment's parameters; every problem
// names its field and the fix.
func validate(e Environment) error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, stacks.Errorf(field, format, args...)) }
	p := e.Params
	switch p.Target {
	case Kubernetes:
		if e.RenderDir == "" && e.Kubeconfig == "" {
			bad("Kubeconfig", "is empty; set the path of the target cluster's kubeconfig (e.g. from `slipway cluster up`)")
		}
	case AWS:
		if e.RenderDir != "" {
			bad("RenderDir", "renders the kubernetes target only; Params.Target is %q", p.Target)
		}
		if e.Kind == stacks.Ephemeral && p.AWS.NAT == network.NATPerAZ {
			bad("Params.AWS.NAT", "per-az is not allowed in ephemeral environments (cost); use none or single")
		}
		if e.Kind == stacks.Prod && p.AWS.AZCount < 2 {
			bad("Params.AWS.AZCount", "%d is too few for prod; use at least 2 availability zones", p.AWS.AZCount)
		}
	default:
		bad("Params.Target", "%q is not a target; use kubernetes or aws", p.Target)
	}
	if len(p.Namespace) > 63 || !dnsLabel.MatchString(p.Namespace) {
		bad("Params.Namespace", "%q must be a lower-case DNS label of at most 63 characters", p.Namespace)
	} else if p.Namespace == "default" || strings.HasPrefix(p.Namespace, "kube-") {
		bad("Params.Namespace", "%q is reserved; use a namespace of the environment's own such as \"slipway-%s\"", p.Namespace, e.Name)
	}
	if p.App.ReadyTimeout < 0 {
		bad("Params.App.ReadyTimeout", "%s is negative; use e.g. 5m", p.App.ReadyTimeout)
	}
	if p.App.Replicas < 1 || p.App.Replicas > 100 {
		bad("Params.App.Replicas", "%d is out of range; use 1 to 100", p.App.Replicas)
	}
	if (e.Kind == stacks.Prod || e.Kind == stacks.Staging) && p.App.Replicas < 2 {
		bad("Params.App.Replicas", "%d is too few for a %s environment; use at least 2", p.App.Replicas, e.Kind)
	}
	for _, k := range slices.Sorted(maps.Keys(p.App.Settings)) {
		if len(k) > 253 || !keyRE.MatchString(k) {
			bad("Params.App.Settings", "key %q is not a valid ConfigMap key; use letters, digits, '-', '_' or '.'", k)
		}
	}
	if r := p.App.Route; r.Gateway == "" && (r.GatewayNamespace != "" || len(r.Hostnames) > 0) {
		bad("Params.App.Route.Gateway", "is empty but the route's namespace or host names are set; name the Gateway (--gateway) or leave the route out")
	}
	// The components check the rest with their own field names.
	if err := workloadArgs(e, nil).Validate(); err != nil {
		bad("Params.App", "%w", err)
	}
	if p.Target == AWS {
		if err := networkArgs(e).Validate(); err != nil {
			bad("Params.AWS", "%w", err)
		}
	}
	return errors.Join(errs...)
}

// canaryAt is the web environment's canary at weight beside stable (the
// Definition's Canary): both run the canary strategy, and next's image
// differs from the one stable serves.
func canaryAt(next, stable Environment, weight int) (func(*pulumi.Context) error, error) {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, stacks.Errorf(field, format, args...)) }
	if s := next.Params.App.Strategy; s != workload.Canary {
		bad("Params.App.Strategy", "is %q; a rollout needs canary (--strategy canary)", s)
	}
	if s := stable.Params.App.Strategy; s != workload.Canary {
		bad("Params.App.Strategy", "of the last good release is %q; deploy the stable version with --strategy canary first (`up`), so that the canary runs beside it", s)
	}
	if next.Params.App.Name != stable.Params.App.Name || next.Params.Namespace != stable.Params.Namespace {
		bad("Params.App.Name", "%s/%s differs from the last good release's %s/%s; a canary runs beside the same application",
			next.Params.Namespace, next.Params.App.Name, stable.Params.Namespace, stable.Params.App.Name)
	}
	if next.Params.App.Image == stable.Params.App.Image {
		bad("Params.App.Image", "%q is what the last good release runs; roll out another image (--image)", next.Params.App.Image)
	}
	step := &canaryStep{stableImage: stable.Params.App.Image, weight: weight}
	if len(errs) == 0 {
		if err := step.at(workloadArgs(next, nil)).Validate(); err != nil {
			bad("Params.App", "at %d %%: %w", weight, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return func(ctx *pulumi.Context) error { return runAt(ctx, next, step) }, nil
}
