// Command minimalctl is examples/minimal's thin binary: every verb, flag,
// exit code and output format of slipway over the minimal definition.
//
//	go run ./examples/minimal/cmd/minimalctl preview --env dev
package main

import (
	"github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/examples/minimal"
)

func main() { cli.Main(cli.Definitions(minimal.Definition), cli.Name("minimalctl")) }
