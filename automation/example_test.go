package automation_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/automation"
)

// Example runs an inline program through the engine: it opens an engine on
// a file backend in a directory of its own, brings the stack up, reads the
// program's output and the change summary, then destroys the stack.
//
// The engine runs the pulumi CLI that package toolchain resolves (Slipway's
// build in ~/.cache/slipway, which `slipway toolchain build` makes once). The
// program lists no resource plugin, so nothing is downloaded; PULUMI_HOME is
// a directory of the example's own, so ~/.pulumi is left alone.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "slipway-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	e, err := automation.New(ctx,
		automation.WithDir(dir),
		automation.WithBackend("file://"+filepath.Join(dir, "state")),
		automation.WithPulumiHome(filepath.Join(dir, "pulumi-home")),
		automation.WithPassphrase(""), // a local file backend may use an empty passphrase
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	prog := automation.Program{
		Project: "hello",
		Stack:   "dev",
		Run: func(ctx *pulumi.Context) error {
			ctx.Export("greeting", pulumi.String("hello"))
			return nil
		},
	}
	st, err := e.UpsertStack(ctx, prog)
	if err != nil {
		fmt.Println(err)
		return
	}
	up, err := st.Up(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("up:", up.Summary, "greeting:", up.Outputs["greeting"])
	down, err := st.Destroy(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("destroy:", down.Summary)
	// Output:
	// up: map[create:1] greeting: hello
	// destroy: map[delete:1]
}

// ExampleProgram_Validate shows the error for a stack name the engine
// would refuse: Validate checks a program before any engine run, naming
// the field and what to use instead.
func ExampleProgram_Validate() {
	prog := automation.Program{
		Project: "hello",
		Stack:   "dev env",
		Run:     func(*pulumi.Context) error { return nil },
	}
	fmt.Println(prog.Validate())
	// Output:
	// automation: Program.Stack "dev env" is invalid; use letters, digits, '-', '_' or '.' (1-100 characters)
}

// ExampleValidateBackend checks backend URLs without contacting them.
func ExampleValidateBackend() {
	for _, u := range []string{
		"file:///var/lib/slipway/state",
		"s3://team-state?region=eu-west-1",
		"file://state", // a relative directory
		"ftp://example.com/state",
	} {
		if err := automation.ValidateBackend(u); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(u, "is usable")
	}
	// Output:
	// file:///var/lib/slipway/state is usable
	// s3://team-state?region=eu-west-1 is usable
	// automation: backend URL "file://state" needs an absolute directory, e.g. file:///var/lib/slipway/state or file://~/state
	// automation: backend URL "ftp://example.com/state" is not supported; use file:///abs/dir, s3://bucket, gs://bucket, azblob://container or https://api.pulumi.com
}
