// Package stacks defines Slipway environments: one program serves every
// environment, and dev, qa, staging, prod and ephemeral environments differ
// only in typed, validated parameters.
//
// An environment targets either "kubernetes" (the in-cluster baseline and the
// application on any cluster, e.g. the local one) or "aws" (VPC, EKS, an S3
// bucket, then the same baseline and application on the new cluster).
package stacks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/toolchain"
	"github.com/slipwayhq/slipway/components/cluster"
	"github.com/slipwayhq/slipway/components/network"
	"github.com/slipwayhq/slipway/components/workload"
)

// Project is the Pulumi project name of every Slipway environment.
const Project = "slipway"

// Kind is the class of an environment.
type Kind string

// Environment kinds.
const (
	Dev       Kind = "dev"
	QA        Kind = "qa"
	Staging   Kind = "staging"
	Prod      Kind = "prod"
	Ephemeral Kind = "ephemeral"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case Dev, QA, Staging, Prod, Ephemeral:
		return true
	}
	return false
}

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
	// Secrets become the data of the Kubernetes Secret "<Name>-secrets",
	// which the application gets as environment variables (envFrom, after
	// the Settings, so a secret wins over a setting of the same key). They
	// are never part of Version, release records or JSON: Program passes
	// them as one secret stack configuration value (SecretsConfigKey), which
	// the secrets provider encrypts in the state. When non-empty they replace
	// the stack's whole set; when empty the stack keeps the set it has, so a
	// rollback (rebuilt from Version, without secrets) keeps the Secret.
	Secrets map[string]string `json:"-"`
	// ReadyTimeout bounds the wait for the application to become Ready (default 5m).
	ReadyTimeout time.Duration
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
	// KubernetesVersion of the EKS cluster (default "1.33").
	KubernetesVersion string
}

// Environment is one environment's typed parameters. Validate checks them
// and fills nothing in; WithDefaults fills in what is unset from the kind;
// Program turns them into the automation program of the environment's
// stack, and Version into a string that rebuilds it (secrets excepted).
type Environment struct {
	// Name is the environment and stack name, e.g. "dev" or "pr-42".
	Name string
	// Kind selects defaults and guards (dev, qa, staging, prod, ephemeral).
	Kind Kind
	// Target is kubernetes (default) or aws.
	Target Target
	// Kubeconfig is the path of the target cluster's kubeconfig (kubernetes target).
	Kubeconfig string
	// Namespace is the environment's namespace (default "slipway-<name>").
	Namespace string
	// App is the application to run.
	App App
	// AWS holds the aws target's parameters.
	AWS AWSParams
	// Tags are added to every AWS resource and as labels to the namespace.
	Tags map[string]string
	// RenderDir, when set, renders the Kubernetes side to YAML files in this
	// directory (for Argo CD or Flux) instead of applying it; no cluster is
	// needed. Such a program runs as stack "<name>-render".
	RenderDir string
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	keyRE    = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// WithDefaults returns e with unset fields filled in from its kind.
func (e Environment) WithDefaults() Environment {
	if e.Kind == "" {
		e.Kind = Dev
	}
	if e.Target == "" {
		e.Target = Kubernetes
	}
	if e.Namespace == "" && e.Name != "" {
		e.Namespace = "slipway-" + e.Name
	}
	if e.App.Name == "" {
		e.App.Name = "web"
	}
	if e.App.Image == "" {
		e.App.Image = "nginx:1.27"
	}
	if e.App.Strategy == "" {
		e.App.Strategy = workload.Rolling
	}
	if e.App.Replicas == 0 {
		e.App.Replicas = map[Kind]int{Staging: 2, Prod: 3}[e.Kind]
		if e.App.Replicas == 0 {
			e.App.Replicas = 1
		}
	}
	if e.AWS.CIDR == "" {
		e.AWS.CIDR = "10.0.0.0/16"
	}
	if e.AWS.AZCount == 0 {
		e.AWS.AZCount = 2
		if e.Kind == Staging || e.Kind == Prod {
			e.AWS.AZCount = 3
		}
	}
	if e.AWS.NAT == "" {
		e.AWS.NAT = map[Kind]string{Prod: network.NATPerAZ, Ephemeral: network.NATNone}[e.Kind]
		if e.AWS.NAT == "" {
			e.AWS.NAT = network.NATSingle
		}
	}
	if len(e.AWS.NodeGroups) == 0 {
		g := cluster.NodeGroup{Name: "general", InstanceTypes: []string{"t3.large"}, MinSize: 1, DesiredSize: 2, MaxSize: 3}
		switch e.Kind {
		case Prod:
			g = cluster.NodeGroup{Name: "general", InstanceTypes: []string{"m6i.xlarge"}, MinSize: 3, DesiredSize: 3, MaxSize: 12}
		case Ephemeral:
			g = cluster.NodeGroup{Name: "general", InstanceTypes: []string{"t3.large"}, MinSize: 1, DesiredSize: 1, MaxSize: 2}
		}
		e.AWS.NodeGroups = []cluster.NodeGroup{g}
	}
	tags := map[string]string{"slipway:environment": e.Name, "slipway:kind": string(e.Kind)}
	maps.Copy(tags, e.Tags)
	e.Tags = tags
	return e
}

// Validate checks every field (after defaults) and returns all problems at
// once, each naming the field and the fix. It runs before any engine run.
func (e Environment) Validate() error {
	e = e.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("stacks: Environment.%s: "+format, append([]any{field}, args...)...))
	}
	switch {
	case e.Name == "":
		errs = append(errs, errors.New("stacks: Environment.Name is empty; set it to a DNS label such as \"dev\" or \"pr-42\""))
	case len(e.Name) > 40 || !dnsLabel.MatchString(e.Name):
		bad("Name", "%q must be a lower-case DNS label of at most 40 characters (a-z, 0-9, '-'), e.g. \"pr-42\"", e.Name)
	}
	if !e.Kind.Valid() {
		bad("Kind", "%q is not a kind; use dev, qa, staging, prod or ephemeral", e.Kind)
	}
	switch e.Target {
	case Kubernetes:
		if e.RenderDir != "" {
			break
		}
		if e.Kubeconfig == "" {
			bad("Kubeconfig", "is empty; set the path of the target cluster's kubeconfig (e.g. from `slipway cluster up`)")
		} else if fi, err := os.Stat(e.Kubeconfig); err != nil || fi.IsDir() {
			bad("Kubeconfig", "%q is not a readable file; start a cluster (`slipway cluster up`) or pass its kubeconfig path", e.Kubeconfig)
		}
	case AWS:
		if e.Kind == Ephemeral && e.AWS.NAT == network.NATPerAZ {
			bad("AWS.NAT", "per-az is not allowed in ephemeral environments (cost); use none or single")
		}
		if e.Kind == Prod && e.AWS.AZCount < 2 {
			bad("AWS.AZCount", "%d is too few for prod; use at least 2 availability zones", e.AWS.AZCount)
		}
	default:
		bad("Target", "%q is not a target; use kubernetes or aws", e.Target)
	}
	if len(e.Namespace) > 63 || !dnsLabel.MatchString(e.Namespace) {
		bad("Namespace", "%q must be a lower-case DNS label of at most 63 characters", e.Namespace)
	} else if e.Namespace == "default" || strings.HasPrefix(e.Namespace, "kube-") {
		bad("Namespace", "%q is reserved; use a namespace of the environment's own such as \"slipway-%s\"", e.Namespace, e.Name)
	}
	if e.App.ReadyTimeout < 0 {
		bad("App.ReadyTimeout", "%s is negative; use e.g. 5m", e.App.ReadyTimeout)
	}
	if e.App.Replicas < 1 || e.App.Replicas > 100 {
		bad("App.Replicas", "%d is out of range; use 1 to 100", e.App.Replicas)
	}
	if (e.Kind == Prod || e.Kind == Staging) && e.App.Replicas < 2 {
		bad("App.Replicas", "%d is too few for a %s environment; use at least 2", e.App.Replicas, e.Kind)
	}
	for _, k := range slices.Sorted(maps.Keys(e.App.Settings)) {
		if len(k) > 253 || !keyRE.MatchString(k) {
			bad("App.Settings", "key %q is not a valid ConfigMap key; use letters, digits, '-', '_' or '.'", k)
		}
	}
	// Secret keys are named in errors; their values never are.
	for _, k := range slices.Sorted(maps.Keys(e.App.Secrets)) {
		if len(k) > 253 || !keyRE.MatchString(k) {
			bad("App.Secrets", "key %q is not a valid Secret key; use letters, digits, '-', '_' or '.'", k)
		}
	}
	if len(e.App.Secrets) > 0 && e.RenderDir != "" {
		bad("App.Secrets", "cannot be rendered (RenderDir): the YAML files would hold them in plain text; "+
			"deliver secrets to rendered environments with a secret manager instead")
	}
	// The components check the rest with their own field names.
	if err := e.workloadArgs(nil).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("stacks: Environment.App: %w", err))
	}
	if e.Target == AWS {
		if err := e.networkArgs().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("stacks: Environment.AWS: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Program returns the environment's automation program: the one Slipway
// program with this environment's parameters. It validates first, so bad
// input never reaches the engine.
func (e Environment) Program() (automation.Program, error) {
	if err := e.Validate(); err != nil {
		return automation.Program{}, err
	}
	// The version is the parameters as given (as Release records them).
	version := e.Version()
	e = e.WithDefaults()
	stack := e.Name
	if e.RenderDir != "" {
		stack += "-render"
		if e.Target != Kubernetes {
			return automation.Program{}, fmt.Errorf("stacks: Environment.RenderDir renders the kubernetes target only; Target is %q", e.Target)
		}
	}
	prog := automation.Program{Project: Project, Stack: stack, Run: e.run, Version: version}
	if e.Target == AWS {
		prog.Plugins = []automation.Plugin{{Name: "aws", Version: toolchain.AWSProviderVersion}}
	}
	if len(e.App.Secrets) > 0 {
		b, err := json.Marshal(e.App.Secrets)
		if err != nil {
			return automation.Program{}, fmt.Errorf("stacks: Environment.App.Secrets: %w", err)
		}
		prog.Config = map[string]automation.ConfigValue{SecretsConfigKey: {Value: string(b), Secret: true}}
	}
	return prog, nil
}

// SecretsConfigKey is the stack configuration key that carries
// Environment.App.Secrets (a JSON object, stored as a secret).
const SecretsConfigKey = Project + ":secrets"

// Version encodes the environment's parameters; ProgramFromVersion turns it
// back into the same program (for rollback and promotion records). It never
// holds App.Secrets; a program rebuilt from it uses the secrets the stack
// already has.
func (e Environment) Version() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// ProgramFromVersion rebuilds the program of an environment from its Version.
func ProgramFromVersion(v string) (automation.Program, error) {
	var e Environment
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return automation.Program{}, fmt.Errorf("stacks: version is not an encoded environment: %w", err)
	}
	return e.Program()
}

// Release returns the environment as a release with an optional smoke check.
func (e Environment) Release(smoke func(context.Context, *automation.Result) error) (automation.Release, error) {
	prog, err := e.Program()
	if err != nil {
		return automation.Release{}, err
	}
	return automation.Release{Version: e.Version(), Program: prog, Smoke: smoke}, nil
}

// Catalog returns the four standard environments on one cluster: dev, qa,
// staging and prod, each with its kind's defaults.
func Catalog(kubeconfig string) []Environment {
	var out []Environment
	for _, k := range []Kind{Dev, QA, Staging, Prod} {
		out = append(out, Environment{Name: string(k), Kind: k, Kubeconfig: kubeconfig})
	}
	return out
}
