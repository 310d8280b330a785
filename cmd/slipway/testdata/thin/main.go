// Command thin is a team's thin binary as the CLI tests build it: two
// definitions (the shop of examples/team first, then Slipway's web) and a
// policy pack of the team's own, handed over to Slipway's command line.
package main

import (
	"github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/examples/team/shop"
	"github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// teamPack asks every namespace for an owner label (advisory).
func teamPack() *policypacks.Pack {
	return &policypacks.Pack{Name: "team", Version: "0.1.0", Policies: []*policypacks.Policy{{
		Name:        "team-namespace-owner",
		Description: "Namespaces carry an owner label so on-call knows whom to page.",
		Severity:    policypacks.Low,
		Enforcement: policypacks.Advisory,
		Types:       []string{"kubernetes:core/v1:Namespace"},
		Controls:    []policypacks.Control{{Framework: "Team runbook", ID: "OWN-1"}},
		Validate: func(r policypacks.Resource, a *policypacks.Args) {
			owner, st := r.Props.String("metadata.labels.owner")
			a.Check(r, st, owner != "", "namespace has no owner label")
		},
	}}}
}

func main() {
	cli.Main(cli.Definitions(shop.Definition, web.Definition), cli.Name("thin"), cli.PolicyPacks(teamPack()))
}
