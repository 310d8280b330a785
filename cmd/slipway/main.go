// Command slipway is the thin CI front end of the Slipway SDK: it previews,
// applies, refreshes and destroys environments through the Pulumi engine,
// checks them against policy packs, runs a local Kubernetes control plane,
// and runs the demo. It is Slipway's command-line library (package cli)
// over the built-in web environment, built exactly as a team builds its
// own thin binary.
//
// Exit codes: 0 success, 1 error, 2 success with changes or drift found,
// 3 blocked by policy (nothing applied), 4 another update holds the stack.
// With --json every verb prints one envelope (see `slipway schema`).
package main

import (
	"github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/stacks/web"
)

func main() { cli.Main(cli.Definitions(web.Definition)) }
