// Package all bundles Slipway's policy packs: AWS, Kubernetes and cost guards.
package all

import (
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/aws"
	"github.com/slipwayhq/slipway/policypacks/cost"
	"github.com/slipwayhq/slipway/policypacks/kubernetes"
)

// Packs returns every Slipway pack.
func Packs() []*policypacks.Pack {
	return []*policypacks.Pack{aws.Pack(), kubernetes.Pack(), cost.Pack()}
}

// ByName returns the named packs ("aws", "kubernetes", "cost" or their full
// names), or an error naming the unknown one.
func ByName(names ...string) ([]*policypacks.Pack, error) {
	var out []*policypacks.Pack
	for _, n := range names {
		var found *policypacks.Pack
		for _, p := range Packs() {
			if p.Name == n || p.Name == "slipway-"+n {
				found = p
			}
		}
		if found == nil {
			return nil, &UnknownPackError{Name: n}
		}
		out = append(out, found)
	}
	return out, nil
}

// UnknownPackError names a pack that does not exist.
// Get it with errors.As (a *UnknownPackError).
type UnknownPackError struct{ Name string }

func (e *UnknownPackError) Error() string {
	return "policypacks: no pack named " + e.Name + "; use aws, kubernetes or cost"
}

// ServeIfAnalyzer serves every Slipway pack when the binary runs as the
// engine's analyzer plugin (see policypacks.ServeIfAnalyzer).
func ServeIfAnalyzer() { policypacks.ServeIfAnalyzer(Packs()...) }
