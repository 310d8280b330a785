// Command acmectl is a team's thin binary with a policy pack of its own:
// every verb of slipway over examples/minimal's environment, with the acme
// pack beside Slipway's (aws, kubernetes, cost). --policy acme enforces it
// in the engine; the binary serves it as the engine's policy analyzer.
//
//	go run ./examples/policy/cmd/acmectl policy list --policy acme
//	go run ./examples/policy/cmd/acmectl up --env dev --policy acme,kubernetes
package main

import (
	"github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/examples/minimal"
	"github.com/slipwayhq/slipway/examples/policy"
)

// options are the binary's definitions and packs (its tests run the same).
var options = []cli.Option{cli.Definitions(minimal.Definition), cli.PolicyPacks(policy.Pack()), cli.Name("acmectl")}

func main() { cli.Main(options...) }
