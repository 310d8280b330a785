// Command docgen writes the slipway binary's command reference into the
// directory it is given (docs/cli: `go generate ./cmd/slipway`), removing
// the pages of commands that are gone.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/stacks/web"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: docgen DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	old, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			fmt.Fprintln(os.Stderr, "docgen:", err)
			os.Exit(1)
		}
	}
	// The options of cmd/slipway/main.go: the default binary's reference.
	if err := cli.Docs(dir, cli.Definitions(web.Definition)); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}
