// Command tiny stands in for a team's binary in the image package's tests:
// it is built with Slipway (this module) and answers `toolchain status
// --json --cache-dir DIR` from the real toolchain resolver, as cli.Main
// does, without the weight of every program.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

func main() {
	if len(os.Args) < 3 || os.Args[1] != "toolchain" || os.Args[2] != "status" {
		fmt.Println("tiny")
		return
	}
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	cache := fs.String("cache-dir", "", "")
	fs.Bool("json", false, "")
	_ = fs.Parse(os.Args[3:])
	st := toolchain.New(toolchain.WithCacheDir(*cache)).Status()
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"results": []any{map[string]any{"tools": st}}})
}
