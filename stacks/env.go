// Package stacks turns a team's Pulumi program into Slipway environments.
//
// A Definition declares a program once: its typed parameters P, their
// defaults per kind of environment (dev, qa, staging, prod, ephemeral), a
// validation run before any engine run, and the run function. Every
// environment is an Env[P]: a name, a kind and parameters. The definition
// then gives, for free, the environment's automation program (stack,
// version for rollback and promotion records, secrets as one encrypted
// configuration value, plugins, render mode), the catalog of standard
// environments, releases, and an untyped Builder that the CLI builds
// environments with from flags, PATH=VALUE settings and JSON.
//
// The built-in web environment is one such definition (package stacks/web).
package stacks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/automation"
)

// Kind is the class of an environment: it selects the parameters'
// defaults and the guards a definition applies.
type Kind string

// Environment kinds.
const (
	Dev       Kind = "dev"
	QA        Kind = "qa"
	Staging   Kind = "staging"
	Prod      Kind = "prod"
	Ephemeral Kind = "ephemeral"
)

// Kinds returns every kind, from the least to the most guarded, then
// ephemeral.
func Kinds() []Kind { return []Kind{Dev, QA, Staging, Prod, Ephemeral} }

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return slices.Contains(Kinds(), k) }

// KindOf returns the kind an environment gets when none is given: its name
// when that is a kind ("prod"). Any other name ("production", "prod-eu",
// "pr-42") has no kind by default and gets a *KindError: a guard never
// weakens because a name was not recognised (dev's policies are advisory).
// Definition.KindOf adds a definition's own names.
func KindOf(name string) (Kind, error) {
	if k := Kind(name); k.Valid() {
		return k, nil
	}
	return "", &KindError{Name: name}
}

// KindBySuffix maps a name that ends in "-" and a long-lived kind to that
// kind ("shop-prod" → prod, "team-a-dev" → dev); it maps nothing else, so
// "production", "prod-eu" and "pr-42" still need an explicit kind.
// Ephemeral environments are never named into being: they get their kind
// from the ephemeral verbs. A Definition uses it as its KindOf.
func KindBySuffix(name string) (Kind, bool) {
	for _, k := range []Kind{Dev, QA, Staging, Prod} {
		if rest, ok := strings.CutSuffix(name, "-"+string(k)); ok && rest != "" {
			return k, true
		}
	}
	return "", false
}

// KindError is an environment given no kind whose name is not a kind: it is
// refused rather than given the least guarded kind. Get it with errors.As.
type KindError struct {
	// Name is the environment's name.
	Name string
}

// Error names the environment and every way to give it a kind.
func (e *KindError) Error() string {
	return fmt.Sprintf("environment %q is not named after a kind and was given none: set its kind (dev, qa, staging, prod or ephemeral) "+
		"with --kind on the command line (Kind in Go, spec.kind in an Environment object), or map the name in the definition's KindOf", e.Name)
}

// SecretsConfigKey is the stack configuration key that carries an
// environment's Secrets: one JSON object, stored as a secret (encrypted by
// the stack's secrets provider). Programs read it with Secrets.
const SecretsConfigKey = "slipway:secrets"

// Env is one environment of a definition with parameters P.
type Env[P any] struct {
	// Name is the environment and stack name, a lower-case DNS label of at
	// most 40 characters, e.g. "dev" or "pr-42".
	Name string
	// Kind selects the parameters' defaults and guards (default: the name
	// when it is a kind or the definition's KindOf maps it; any other name
	// without a kind is refused, see KindError).
	Kind Kind
	// Tenant, when set, is the owner the environment belongs to where
	// several owners share one state backend and one cluster: the fleet
	// sets it to the Environment object's namespace. Two environments of
	// one name and different tenants never share a stack (Stack) or the
	// names a definition derives its objects from (ID). A lower-case DNS
	// label of at most 63 characters; empty outside the fleet.
	Tenant string `json:",omitempty"`
	// Kubeconfig is the path of the target cluster's kubeconfig, for
	// programs that use one (see KubernetesProvider).
	Kubeconfig string `json:",omitempty"`
	// RenderDir, when set, renders the Kubernetes objects to YAML files in
	// this directory (for Argo CD or Flux) instead of applying them; no
	// cluster is needed. Such a program runs as stack "<name>-render".
	RenderDir string `json:",omitempty"`
	// Params are the definition's typed parameters; zero fields are filled
	// from the definition's defaults for the kind.
	Params P
	// Secrets reach the program as one secret stack configuration value
	// (SecretsConfigKey). They are never part of Version, release records
	// or JSON. When non-empty they replace the stack's whole set; when empty
	// the stack keeps the set it has, so a rollback (rebuilt from Version,
	// without secrets) keeps them.
	Secrets map[string]string `json:"-"`
}

// Stack is the environment's stack name: its name, or "<name>-render" when
// it renders (RenderDir), so rendering never touches the applied stack.
// With a Tenant the name is "<tenant>.<name>": a DNS label holds no '.',
// so no two (tenant, name) pairs, and no environment without a tenant,
// share a stack.
func (e Env[P]) Stack() string {
	return StackName(e.Tenant, e.Name, e.RenderDir != "")
}

// StackName is the stack name of the environment name of tenant (see
// Env.Stack): "<name>", "<tenant>.<name>", with "-render" when rendering.
func StackName(tenant, name string, render bool) string {
	s := name
	if tenant != "" {
		s = tenant + "." + name
	}
	if render {
		s += "-render"
	}
	return s
}

// ID is what a definition derives the names of its objects from (a
// target namespace, a cluster, cloud resources): the environment's name
// without a Tenant; with one, "<tenant>-<name>" shortened to 31
// characters, then "-" and 8 hexadecimal digits of a hash of tenant and
// name, so that environments of one name in different tenants get
// different objects. Either way a lower-case DNS label of at most 40
// characters, like Name, so any name a definition derived from Name fits.
func (e Env[P]) ID() string { return EnvID(e.Tenant, e.Name) }

// EnvID is Env.ID of the environment name of tenant.
func EnvID(tenant, name string) string {
	if tenant == "" {
		return name
	}
	sum := sha256.Sum256([]byte(tenant + "/" + name))
	prefix := strings.TrimRight(clipString(tenant+"-"+name, 31), "-")
	return prefix + "-" + hex.EncodeToString(sum[:4])
}

func clipString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Param sets one parameter: Path is a dotted path into the parameters
// (Go field names or JSON names, case-insensitive, e.g. "App.Replicas"),
// Value its text (see Spec.Params for how each type is read).
type Param struct{ Path, Value string }

// ParseParam reads "PATH=VALUE".
func ParseParam(s string) (Param, error) {
	path, value, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(path) == "" {
		return Param{}, fmt.Errorf("stacks: parameter %q: use PATH=VALUE, e.g. App.Replicas=2", s)
	}
	return Param{Path: strings.TrimSpace(path), Value: value}, nil
}

// Flag is a command-line shorthand for one parameter, e.g.
// Flag{Name: "image", Path: "App.Image"} makes `--image X` mean
// `--param App.Image=X`. Map and slice parameters make repeatable flags.
type Flag struct {
	// Name is the flag's name without dashes.
	Name string
	// Path is the parameter it sets (as in Param.Path).
	Path string
	// Usage is the flag's help text.
	Usage string
}

// Param returns the setting the flag stands for with value v.
func (f Flag) Param(v string) Param { return Param{Path: f.Path, Value: v} }

// Spec is an untyped environment request, as the CLI builds it from its
// flags; Builder.Build turns it into a typed, validated program.
type Spec struct {
	// Name is the environment's name.
	Name string
	// Kind is its kind (default: Builder.KindFor of the name; a name that
	// is not a kind and is not mapped is refused).
	Kind Kind
	// Tenant, Kubeconfig and RenderDir are as in Env.
	Tenant, Kubeconfig, RenderDir string
	// ParamsJSON, when set, is a JSON object decoded into the parameters
	// first (e.g. from --params FILE); unknown fields are refused.
	ParamsJSON []byte
	// Params are then applied in order, typed by reflection: strings (and
	// string types), integers, unsigned integers, floats, bools,
	// time.Duration ("5m"), encoding.TextUnmarshaler; map[string]T as
	// "KEY=VALUE" (each adds a key); []T (each appends). Any other type
	// (a struct, a slice of structs) takes a JSON value. Setting part of a
	// map or slice replaces the kind's default for it.
	Params []Param
	// Secrets are as in Env.
	Secrets map[string]string `json:"-"`
}

// Info describes a definition to a command line.
type Info struct {
	// Name, Project and Description are the definition's.
	Name, Project, Description string
	// Flags are its parameter shorthands.
	Flags []Flag
	// Paths are the parameters' leaf paths (Go field names), for Param.
	Paths []string
	// Plugins are the resource plugins its programs list with each kind's
	// defaults (an environment named after its kind), sorted by name then
	// version, each once: what an image of the binary must provide (`image
	// build` checks them). An environment whose parameters differ from the
	// defaults may list others.
	Plugins []automation.Plugin
}

// Builder is a definition with its parameter type erased: what a command
// line (or a fleet) holds to build any team's environments.
// *Definition[P] implements it.
type Builder interface {
	// Info names and describes the definition.
	Info() Info
	// Build checks the spec (typed, before any engine run) and returns the
	// environment's program.
	Build(Spec) (automation.Program, error)
	// FromVersion rebuilds a program from its Version (for Rollback,
	// Promote and Deploy lookups).
	FromVersion(string) (automation.Program, error)
	// KindFor returns the kind an environment of that name gets when none
	// is given (the definition's KindOf, then the name when it is a kind),
	// or a *KindError.
	KindFor(name string) (Kind, error)
	// DefaultParams returns the parameters an environment of that name and
	// kind gets when none are given, as JSON.
	DefaultParams(name string, kind Kind) (json.RawMessage, error)
	// ParamType says how the parameter at path (as in Param.Path) takes
	// its value, or fails naming the path.
	ParamType(path string) (ParamType, error)
}

// CanaryBuilder is a Builder whose environments can roll out in steps
// (automation.Engine.Rollout). *Definition[P] implements it; CanaryAt
// fails naming the fix when the definition has no Canary.
type CanaryBuilder interface {
	Builder
	// CanaryAt returns the program of the release version running its
	// canary at weight percent of the traffic beside stableVersion (the
	// last good release of the same environment), both as Version
	// encodes them.
	CanaryAt(version, stableVersion string, weight int) (automation.Program, error)
}

// ParamType is the kind of value a parameter takes from PATH=VALUE.
type ParamType string

// Parameter types.
const (
	StringParam   ParamType = "string"
	IntParam      ParamType = "int"
	UintParam     ParamType = "uint"
	FloatParam    ParamType = "float"
	BoolParam     ParamType = "bool"
	DurationParam ParamType = "duration"
	// MapParam takes KEY=VALUE; each setting adds a key.
	MapParam ParamType = "map"
	// ListParam takes one value per setting, appended.
	ListParam ParamType = "list"
	// JSONParam takes a JSON value (a slice of structs, say).
	JSONParam ParamType = "json"
)

// Repeated reports whether settings of the type accumulate (maps and lists).
func (t ParamType) Repeated() bool { return t == MapParam || t == ListParam }

// FieldError is one problem with one field of an environment; Field is its
// path from the Env, e.g. "Name" or "Params.App.Replicas", and the message
// says what is wrong and how to fix it.
// Get it with errors.As (a *FieldError).
type FieldError struct {
	Field string
	Err   error
}

// Error implements error.
func (e *FieldError) Error() string { return "Env." + e.Field + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// Errorf returns a FieldError for field with a formatted message (%w wraps).
func Errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// InvalidError lists every problem found with an environment (or with the
// definition itself) before any engine run.
// Get it with errors.As (a *InvalidError).
type InvalidError struct {
	// Definition is the definition's name.
	Definition string
	// Env is the environment's name.
	Env string
	// Problems are the problems, most of them *FieldError.
	Problems []error
}

// Error prints one problem per line, each prefixed with the definition.
func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.Definition + ": " + p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems.
func (e *InvalidError) Unwrap() []error { return e.Problems }

// flatten spreads joined errors (errors.Join) into their parts.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	keyRE     = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	projectRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)
	flagRE    = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)
