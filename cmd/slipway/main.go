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

// The command reference in docs/cli comes from this binary's command tree
// (internal/docgen registers the same definitions; cli's TestDocs fails when
// the pages are stale).
//go:generate go run ./internal/docgen ../../docs/cli

func main() { cli.Main(cli.Definitions(web.Definition)) }
