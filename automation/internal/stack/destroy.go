package stack

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/slipwayhq/slipway/automation/internal/engine"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/slipwayhq/slipway/automation/outcome"
)

// kubernetesProviderType is the type token of Kubernetes provider resources in a stack's state.
const kubernetesProviderType = "pulumi:providers:kubernetes"

// destroyStateOnly destroys and removes a stack opened without its program
// (NoProgram): the Kubernetes provider is resolved first when the state
// holds a Kubernetes provider, since no program's Plugins say so.
func (s *Stack) DestroyStateOnly(ctx context.Context, opc *engine.Operation) (*outcome.Result, error) {
	if s.engine != nil {
		// The state straight from the backend's store when it has one (no
		// pulumi process), else exported by the engine.
		store, err := opc.State(ctx)
		if err != nil {
			store = nil
		}
		dep, _, err := s.deployment(ctx, store)
		if err != nil {
			return nil, s.wrap("destroy", err)
		}
		if holdsKubernetesProvider(dep) {
			if err := s.engine.Kubernetes(ctx); err != nil {
				return nil, err
			}
		}
	}
	return s.RunDestroy(ctx, OpConfig{Remove: true})
}

// holdsKubernetesProvider reports whether an exported deployment holds a
// Kubernetes provider resource (so destroying it needs the provider plugin).
// An unreadable deployment counts as holding one: resolving is harmless.
func holdsKubernetesProvider(deployment []byte) bool {
	var d struct {
		Resources []struct {
			Type string `json:"type"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(deployment, &d); err != nil {
		return true
	}
	for _, r := range d.Resources {
		if r.Type == kubernetesProviderType {
			return true
		}
	}
	return false
}

// NoProgram stands in for a program when only the stack's state matters (destroy).
func NoProgram(*pulumi.Context) error {
	return errors.New("automation: this stack was opened for destroy only")
}
