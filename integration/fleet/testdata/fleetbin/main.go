// Command fleetbin is the binary the fleet's end-to-end tests run as
// operator and runner processes: Slipway's command line with the built-in
// web program and one test program, built exactly as a team builds its own
// thin binary (cli.Main with its programs).
package main

import (
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/stacks"
	"github.com/slipwayhq/slipway/stacks/web"
)

// sleepParams are the sleep program's parameters.
type sleepParams struct {
	// Seconds the program sleeps before it declares nothing.
	Seconds int
}

// sleep is a program that hangs for Params.Seconds (or until its engine
// stops): a stand-in for a hung engine, for spec.runTimeout.
var sleep = &stacks.Definition[sleepParams]{
	Name:        "sleep",
	Project:     "sleep",
	Description: "sleeps for Params.Seconds and declares nothing (tests)",
	Validate: func(e stacks.Env[sleepParams]) error {
		if e.Params.Seconds < 0 {
			return stacks.Errorf("Params.Seconds", "%d is negative; use 0 or more", e.Params.Seconds)
		}
		return nil
	},
	Run: func(ctx *pulumi.Context, e stacks.Env[sleepParams]) error {
		select {
		case <-time.After(time.Duration(e.Params.Seconds) * time.Second):
		case <-ctx.Context().Done():
		}
		return nil
	},
}

func main() { cli.Main(cli.Definitions(web.Definition, sleep)) }
