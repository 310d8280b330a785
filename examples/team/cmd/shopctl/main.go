// Command shopctl is the shop team's own thin binary: Slipway's command
// line (every verb, flag, exit code and output format of slipway) over the
// team's environment definition. CI builds it and calls it (see
// examples/ci).
//
//	go build -o bin/shopctl ./examples/team/cmd/shopctl
//	bin/shopctl preview --env dev --param image=ghcr.io/acme/shop:1.4.2
package main

import (
	"github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/examples/team/shop"
)

func main() { cli.Main(cli.Definitions(shop.Definition), cli.Name("shopctl")) }
