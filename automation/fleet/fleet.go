// Package fleet runs Slipway on Kubernetes: Environment objects
// (slipway.dev/v1alpha1) are reconciled by an operator (package operator),
// which turns their changes into Run objects that a pool of stateless
// runners (package runner) claim and execute with the engine. State and
// coordination live in the Kubernetes API (leases, optimistic concurrency,
// finalizers, conditions) and in the shared state backend.
//
// This package holds what both sides share: the Registry of environment definitions and
// policy packs compiled into the binary, the check of an Environment's
// inputs, its revision, and what keeps tenants (the namespaces holding
// Environments) apart, which the operator checks before it creates a Run
// and each runner again before it executes one: a stack and derived object
// names per namespace and name (Spec), only Runs an Environment asked for
// (Admit), target kubeconfigs with inline credentials only
// (CheckKubeconfig), the runners' own credentials only in allowed
// namespaces (CheckTarget), and no engine variable from a tenant's Secret
// (CheckEnvKeys).
package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks"
)

// Registry is what a fleet binary can run: the definitions (stacks
// definitions) and policy packs compiled into it, found by name.
type Registry struct {
	// Definitions are the definitions an Environment's spec.definition names.
	Definitions []stacks.Builder
	// Packs are the policy packs spec.policy.packs names.
	Packs []*policypacks.Pack
	// Version is the version of the definitions compiled into the binary; it
	// is part of every Environment's revision, so a new binary with a
	// changed definition applies it again (and clears Stalled). A definition
	// that implements VersionedDefinition gives its own version instead.
	// Default: BuildID, which changes with any change of the binary.
	Version string
}

// VersionedDefinition is a definition (a stacks.Builder) that says its own
// version: only a change of it (not any change of the binary) gives its
// Environments a new revision.
type VersionedDefinition interface {
	DefinitionVersion() string
}

// DefinitionVersion is the version of the named definition that goes into an
// Environment's revision: the definition's own (VersionedDefinition), else
// Registry.Version, else BuildID. An unknown definition has version "".
func (r Registry) DefinitionVersion(name string) string {
	b, err := r.Definition(name)
	if err != nil {
		return ""
	}
	if v, ok := b.(VersionedDefinition); ok {
		return v.DefinitionVersion()
	}
	if r.Version != "" {
		return r.Version
	}
	return BuildID()
}

// BuildID identifies the running binary: a SHA-256 of its executable (the
// first 16 hex digits), else its module version and VCS revision from the
// build information, else "unknown".
var BuildID = sync.OnceValue(func() string {
	if path, err := os.Executable(); err == nil {
		if f, err := os.Open(path); err == nil {
			defer f.Close()
			h := sha256.New()
			if _, err := io.Copy(h, f); err == nil {
				return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
			}
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		id := bi.Main.Path + "@" + bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				id += " " + s.Key + "=" + s.Value
			}
		}
		return id
	}
	return "unknown"
})

// Revision is the revision of the inputs and Git commit for this
// registry: fleet.Revision with the definition's version (DefinitionVersion)
// mixed in, so a new version of the definition is a new revision.
func (r Registry) Revision(in v1alpha1.Inputs, commit string) string {
	return RevisionOf(in, commit, r.DefinitionVersion(in.Definition))
}

// FieldError is an Environment input that cannot work: Field is its path in
// the object (e.g. "spec.params"), and the message says the fix.
// Get it with errors.As (a *FieldError).
type FieldError struct {
	Field string
	Err   error
}

// Error names the field first.
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// Definition returns the registered definition with that name.
func (r Registry) Definition(name string) (stacks.Builder, error) {
	var names []string
	for _, b := range r.Definitions {
		if b.Info().Name == name {
			return b, nil
		}
		names = append(names, b.Info().Name)
	}
	return nil, &FieldError{Field: "spec.definition", Err: fmt.Errorf("no definition %q is compiled into this binary; use one of %s", name, strings.Join(names, ", "))}
}

// PolicyPacks returns the named packs (full names, or without the
// "slipway-" prefix).
func (r Registry) PolicyPacks(names []string) ([]*policypacks.Pack, error) {
	var out []*policypacks.Pack
	for i, n := range names {
		j := slices.IndexFunc(r.Packs, func(p *policypacks.Pack) bool { return p.Name == n || p.Name == "slipway-"+n })
		if j < 0 {
			var all []string
			for _, p := range r.Packs {
				all = append(all, p.Name)
			}
			return nil, &FieldError{Field: fmt.Sprintf("spec.policy.packs[%d]", i), Err: fmt.Errorf("no policy pack %q is compiled into this binary; use one of %s", n, strings.Join(all, ", "))}
		}
		out = append(out, r.Packs[j])
	}
	return out, nil
}

// Settings decodes spec.policy.settings for the kind and checks them
// against the packs.
func Settings(in v1alpha1.Inputs, kind stacks.Kind, packs []*policypacks.Pack) (policypacks.Settings, error) {
	var s policypacks.Settings
	if in.Policy.Settings != nil && len(in.Policy.Settings.Raw) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(in.Policy.Settings.Raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			return s, &FieldError{Field: "spec.policy.settings", Err: fmt.Errorf("%v; the fields are levels and overrides", err)}
		}
	}
	s.Kind = string(kind)
	if err := s.Validate(packs...); err != nil {
		return s, &FieldError{Field: "spec.policy.settings", Err: err}
	}
	return s, nil
}

// Kind is the environment kind the inputs ask for: spec.kind, else what
// the program's definition gives the name (its KindOf mapping, or the name
// when it is a kind). Any other name is refused (a *FieldError on
// spec.kind), never given dev's advisory policies.
func Kind(b stacks.Builder, name string, in v1alpha1.Inputs) (stacks.Kind, error) {
	if in.Kind != "" {
		return stacks.Kind(in.Kind), nil
	}
	k, err := b.KindFor(name)
	if err != nil {
		return "", &FieldError{Field: "spec.kind", Err: err}
	}
	return k, nil
}

// Spec is the stacks.Spec of the Environment namespace/name's inputs,
// without its secrets and target cluster (which the runner reads from
// Secrets). The namespace is the spec's Tenant, so Environments of one
// name in two namespaces never share a stack or derived object names
// (stacks.Env.Stack, stacks.Env.ID). An empty spec.kind stays empty: the
// definition resolves it when it builds (see Kind).
func Spec(namespace, name string, in v1alpha1.Inputs) stacks.Spec {
	s := stacks.Spec{Name: name, Tenant: namespace, Kind: stacks.Kind(in.Kind)}
	if in.Params != nil && len(in.Params.Raw) > 0 && string(in.Params.Raw) != "null" {
		s.ParamsJSON = in.Params.Raw
	}
	return s
}

// Check validates the inputs of the Environment namespace/name without
// touching anything: the definition is registered, its parameters decode and
// pass the definition's checks, the policy packs exist and their settings
// are valid. The error (a *FieldError) names the field and the fix.
// What depends on Secrets or on the operator's configuration is checked
// by CheckTarget, CheckEnvKeys and CheckKubeconfig.
func (r Registry) Check(namespace, name string, in v1alpha1.Inputs) error {
	if err := CheckBackend(in.Backend.URL); err != nil {
		return err
	}
	b, err := r.Definition(in.Definition)
	if err != nil {
		return err
	}
	kind, err := Kind(b, name, in)
	if err != nil {
		return err
	}
	s := Spec(namespace, name, in)
	// The target cluster's kubeconfig is a Secret the runner reads; a
	// definition checks only that its path is set and readable.
	s.Kubeconfig = os.DevNull
	if _, err := b.Build(s); err != nil {
		return &FieldError{Field: "spec.params", Err: fmt.Errorf("definition %s: %w", in.Definition, err)}
	}
	packs, err := r.PolicyPacks(in.Policy.Packs)
	if err != nil {
		return err
	}
	_, err = Settings(in, kind, packs)
	return err
}

// MergeParams merges a parameters file (JSON or YAML, one object) from a
// Git source over the spec's parameters: objects merge key by key, any
// other value of the file replaces the spec's.
func MergeParams(spec []byte, file []byte, path string) ([]byte, error) {
	overlay, err := yaml.YAMLToJSON(file)
	if err != nil {
		return nil, &FieldError{Field: "spec.source.path", Err: fmt.Errorf("%s is not JSON or YAML: %v", path, err)}
	}
	var over map[string]any
	if err := json.Unmarshal(overlay, &over); err != nil || over == nil {
		return nil, &FieldError{Field: "spec.source.path", Err: fmt.Errorf("%s must hold one object of parameters", path)}
	}
	base := map[string]any{}
	if len(spec) > 0 && string(spec) != "null" {
		if err := json.Unmarshal(spec, &base); err != nil {
			return nil, &FieldError{Field: "spec.params", Err: err}
		}
	}
	return json.Marshal(merge(base, over))
}

func merge(base, over map[string]any) map[string]any {
	for k, v := range over {
		bm, ok1 := base[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			base[k] = merge(bm, om)
			continue
		}
		base[k] = v
	}
	return base
}

// Revision identifies what an up applies: a hash of the inputs (secret
// references, not values) and the Git commit. A new revision means a new
// up. The operator uses Registry.Revision, which adds the definition's
// version.
func Revision(in v1alpha1.Inputs, commit string) string {
	return RevisionOf(in, commit, "")
}

// RevisionOf is Revision with a definition version mixed in ("" = none, the
// same hash as Revision).
func RevisionOf(in v1alpha1.Inputs, commit, definitionVersion string) string {
	b, _ := json.Marshal(struct {
		In      v1alpha1.Inputs `json:"in"`
		Commit  string          `json:"commit,omitempty"`
		Version string          `json:"version,omitempty"`
	}{in, commit, definitionVersion})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// BackendSchemes are the state backends the fleet accepts in
// spec.backend.url: those whose stale locks a runner taking over a Run
// can prove and remove (package statestore).
var BackendSchemes = []string{"file", "s3"}

// CheckBackend refuses a backend URL the fleet cannot recover locks of
// (gs://, azblob://, https:// Pulumi Cloud, ...), with a *FieldError on
// spec.backend.url naming the allowed schemes.
func CheckBackend(raw string) error {
	scheme, _, ok := strings.Cut(raw, "://")
	if ok && slices.Contains(BackendSchemes, scheme) {
		return nil
	}
	return &FieldError{Field: "spec.backend.url", Err: fmt.Errorf("%q is not supported by the fleet: a runner that takes over a dead runner's Run "+
		"can recover stack locks only in file:// and s3:// backends; use file:///<shared dir> or s3://<bucket>", mask.URL(raw))}
}

// DeletionPolicy is what deleting the Environment does to its stack:
// spec.deletionPolicy when set; else orphan for a prod-kind Environment
// and destroy for any other kind. When the kind cannot be resolved (the
// definition is not registered, or the name has no kind) it is orphan: a
// deletion never destroys prod by accident. The kind is returned too
// ("" when unresolved), for messages.
func (r Registry) DeletionPolicy(name string, spec v1alpha1.EnvironmentSpec) (v1alpha1.DeletionPolicy, stacks.Kind) {
	kind := stacks.Kind(spec.Kind)
	if kind == "" {
		if b, err := r.Definition(spec.Definition); err == nil {
			kind, _ = Kind(b, name, spec.Inputs)
		}
	}
	if spec.DeletionPolicy != "" {
		return spec.DeletionPolicy, kind
	}
	if kind == "" || kind == stacks.Prod {
		return v1alpha1.DeletionOrphan, kind
	}
	return v1alpha1.DeletionDestroy, kind
}

// Client-side rate limits of the fleet's processes when the configuration
// sets none: client-go's default (5 requests/s, burst 10) makes a fleet of
// 50 Environments wait seconds per Run for its own throttle.
const (
	DefaultQPS   = 50
	DefaultBurst = 100
)

// ClientConfig returns a copy of cfg with DefaultQPS and DefaultBurst when
// it sets no rate limits of its own.
func ClientConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	if c.QPS == 0 && c.RateLimiter == nil {
		c.QPS, c.Burst = DefaultQPS, DefaultBurst
	}
	return c
}

// Scheme returns a scheme with the Kubernetes built-in types and
// slipway.dev/v1alpha1: what the operator's and runners' managers (and
// clients of the fleet's objects) need.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}
