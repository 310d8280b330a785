// The results of verbs that the envelope's items carry (policy list's rules,
// params' document, image build's image).

package app

import (
	"encoding/json"

	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks"
)

// Rule is one policy as policy list prints it.
type Rule struct {
	Pack        string                             `json:"pack"`
	Policy      string                             `json:"policy"`
	Description string                             `json:"description"`
	Severity    policypacks.Severity               `json:"severity"`
	Enforcement map[string]policypacks.Enforcement `json:"enforcement"`
	Controls    []policypacks.Control              `json:"controls"`
}

// DefinitionInfo is one registered definition as params prints it.
type DefinitionInfo struct {
	Name        string     `json:"name"`
	Project     string     `json:"project"`
	Description string     `json:"description"`
	Flags       []FlagInfo `json:"flags"`
	Paths       []string   `json:"paths"`
	// Plugins are the resource plugins its programs list with each kind's
	// defaults (stacks.Info.Plugins): what its image must hold.
	Plugins []PluginInfo `json:"plugins"`
}

// PluginInfo names a resource plugin and its version.
type PluginInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// FlagInfo is one parameter shorthand of a definition.
type FlagInfo struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Usage string `json:"usage,omitempty"`
}

// ParamsDoc is what params prints.
type ParamsDoc struct {
	Definitions []DefinitionInfo `json:"definitions"`
	Definition  string           `json:"definition"`
	Kind        stacks.Kind      `json:"kind"`
	Params      json.RawMessage  `json:"params"`
}

// ImageJSON is what `image build --json` reports.
type ImageJSON struct {
	Digest    string   `json:"digest"`
	Reference string   `json:"reference,omitempty"`
	Platforms []string `json:"platforms"`
	Layout    string   `json:"ociLayout,omitempty"`
	Tarball   string   `json:"tarball,omitempty"`
	Seconds   float64  `json:"seconds"`
}
