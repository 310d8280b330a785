package optdeploy_test

import (
	"fmt"

	"github.com/slipwayhq/slipway/automation/optdeploy"
	"github.com/slipwayhq/slipway/automation/optup"
)

// A deployment's options as Engine.Deploy applies them: the release's up
// (and a rollback's up) take optup options through optdeploy.Up. In a
// program:
//
//	res, err := eng.Deploy(ctx, release, definition.FromVersion, optdeploy.Up(optup.Policies(dir)))
func Example() {
	var o optdeploy.Options
	for _, opt := range []optdeploy.Option{optdeploy.Up(optup.Policies("/tmp/packs/prod"), optup.Parallel(4)), optdeploy.NoRollback()} {
		opt.ApplyOption(&o)
	}
	var up optup.Options
	for _, opt := range o.Up {
		opt.ApplyOption(&up)
	}
	fmt.Printf("no rollback %v; the up: policies %v, parallel %d\n", o.NoRollback, up.Policies, up.Parallel)
	// Output: no rollback true; the up: policies [/tmp/packs/prod], parallel 4
}
