// Command leaky is a team's thin binary whose one program fails with its
// secrets inside the error, as given, base64-encoded and JSON-quoted, the
// way a careless program or provider might: the CLI test of masking
// (TestCLI_SecretInAFailingOperationsErrorIsMasked) runs it.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/cmd/slipway/cli"
	"github.com/slipwayhq/slipway/stacks"
)

// params are leaky's parameters: none.
type params struct{}

var leaky = &stacks.Definition[params]{
	Name:        "leaky",
	Project:     "leaky",
	Description: "fails with its secrets in the error (a test of masking)",
	Run: func(_ *pulumi.Context, e stacks.Env[params]) error {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(e.Secrets)) {
			v := e.Secrets[k]
			q, _ := json.Marshal(v)
			fmt.Fprintf(&b, " %s=%s (base64 %s, json %s)", k, v, base64.StdEncoding.EncodeToString([]byte(v)), q)
		}
		return fmt.Errorf("connecting to the database failed with%s", b.String())
	},
}

func main() { cli.Main(cli.Definitions(leaky), cli.Name("leaky")) }
