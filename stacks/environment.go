// Package stacks defines Slipway environments: one program serves every
// environment, and dev, qa, staging, prod and ephemeral environments differ
// only in typed, validated parameters.
package stacks

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/slipwayhq/slipway/automation"
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

// App describes the application an environment runs.
type App struct {
	// Name of the Deployment and ConfigMap (default "web").
	Name string
	// Image is the container image, with an explicit tag (default "nginx:1.27").
	Image string
	// Replicas is the Deployment's replica count (default 1; 2 in staging and prod).
	Replicas int
	// Settings become the application's ConfigMap data.
	Settings map[string]string
}

// Environment is one environment's typed parameters.
type Environment struct {
	// Name is the environment and stack name, e.g. "dev" or "pr-42".
	Name string
	// Kind selects defaults and guards (dev, qa, staging, prod, ephemeral).
	Kind Kind
	// Kubeconfig is the path of the kubeconfig of the target cluster.
	Kubeconfig string
	// Namespace is the environment's namespace (default "slipway-<name>").
	Namespace string
	// App is the application to run.
	App App
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	imageRef = regexp.MustCompile(`^[a-z0-9]+([._/:-][a-z0-9]+)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
	keyRE    = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// WithDefaults returns e with unset fields filled in.
func (e Environment) WithDefaults() Environment {
	if e.Kind == "" {
		e.Kind = Dev
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
	if e.App.Replicas == 0 {
		e.App.Replicas = 1
		if e.Kind == Staging || e.Kind == Prod {
			e.App.Replicas = 2
		}
	}
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
	if e.Kubeconfig == "" {
		bad("Kubeconfig", "is empty; set the path of the target cluster's kubeconfig (e.g. from `slipway cluster up`)")
	} else if fi, err := os.Stat(e.Kubeconfig); err != nil || fi.IsDir() {
		bad("Kubeconfig", "%q is not a readable file; start a cluster (`slipway cluster up`) or pass its kubeconfig path", e.Kubeconfig)
	}
	if len(e.Namespace) > 63 || !dnsLabel.MatchString(e.Namespace) {
		bad("Namespace", "%q must be a lower-case DNS label of at most 63 characters", e.Namespace)
	} else if e.Namespace == "default" || strings.HasPrefix(e.Namespace, "kube-") {
		bad("Namespace", "%q is reserved; use a namespace of the environment's own such as \"slipway-%s\"", e.Namespace, e.Name)
	}
	if !dnsLabel.MatchString(e.App.Name) || len(e.App.Name) > 50 {
		bad("App.Name", "%q must be a lower-case DNS label of at most 50 characters", e.App.Name)
	}
	if !imageRef.MatchString(e.App.Image) {
		bad("App.Image", "%q is not an image reference; use e.g. \"nginx:1.27\"", e.App.Image)
	} else if tag := imageTag(e.App.Image); tag == "" || tag == "latest" {
		bad("App.Image", "%q has no pinned tag; use an explicit version such as \"nginx:1.27\" (not :latest)", e.App.Image)
	}
	if e.App.Replicas < 0 || e.App.Replicas > 100 {
		bad("App.Replicas", "%d is out of range; use 1 to 100", e.App.Replicas)
	}
	if (e.Kind == Prod || e.Kind == Staging) && e.App.Replicas < 2 {
		bad("App.Replicas", "%d is too few for a %s environment; use at least 2", e.App.Replicas, e.Kind)
	}
	keys := make([]string, 0, len(e.App.Settings))
	for k := range e.App.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(k) > 253 || !keyRE.MatchString(k) {
			bad("App.Settings", "key %q is not a valid ConfigMap key; use letters, digits, '-', '_' or '.'", k)
		}
	}
	return errors.Join(errs...)
}

func imageTag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		return "digest"
	}
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[i+1:]
	}
	return ""
}

// Program returns the environment's automation program: the one Slipway
// program with this environment's parameters. It validates first.
func (e Environment) Program() (automation.Program, error) {
	if err := e.Validate(); err != nil {
		return automation.Program{}, err
	}
	e = e.WithDefaults()
	return automation.Program{Project: Project, Stack: e.Name, Run: e.run}, nil
}
