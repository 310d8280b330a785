package stacks_test

import (
	"errors"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/stacks"
)

// Params are the example definition's typed parameters.
type Params struct {
	Image    string
	Replicas int
}

// A definition declares a program once; every environment of it gets its
// kind's defaults and is validated, naming the field and the fix, before any
// engine run. The CLI takes it as is (cli.Definitions(app)); a test or a tool
// builds environments in Go.
func Example() {
	app := &stacks.Definition[Params]{
		Name: "app", Project: "app",
		Defaults: map[stacks.Kind]Params{
			stacks.Dev:  {Image: "nginx:1.27", Replicas: 1},
			stacks.Prod: {Image: "nginx:1.27", Replicas: 3},
		},
		Validate: func(e stacks.Env[Params]) error {
			if e.Kind == stacks.Prod && e.Params.Replicas < 2 {
				return stacks.Errorf("Params.Replicas", "%d is too few for prod; use at least 2", e.Params.Replicas)
			}
			return nil
		},
		Run: func(ctx *pulumi.Context, e stacks.Env[Params]) error { return nil },
	}

	prod := app.Env("prod", "") // the name is a kind: prod's defaults
	fmt.Println(prod.Kind, prod.Params.Replicas, prod.Params.Image)

	prog, err := app.Program(prod)
	fmt.Println(prog.Project, prog.Stack, err)

	prod.Params.Replicas = 1
	_, err = app.Program(prod)
	fmt.Println(err)

	_, err = app.Program(stacks.Env[Params]{Name: "production"}) // not a kind: refused, never dev's defaults
	var invalid *stacks.InvalidError
	fmt.Println(errors.As(err, &invalid), len(invalid.Problems))
	// Output:
	// prod 3 nginx:1.27
	// app prod <nil>
	// app: Env.Params.Replicas: 1 is too few for prod; use at least 2
	// true 1
}
