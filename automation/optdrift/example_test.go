package optdrift_test

import (
	"fmt"

	"github.com/slipwayhq/slipway/automation/optdrift"
	"github.com/slipwayhq/slipway/automation/optup"
)

// A drift check's options as Stack.CheckDrift applies them: Remediate
// re-applies the desired state, and Up gives the remediation's up its
// options (policies hold there too). In a program:
//
//	d, err := st.CheckDrift(ctx, optdrift.Remediate(), optdrift.Up(optup.Policies(dir)))
func Example() {
	var o optdrift.Options
	for _, opt := range []optdrift.Option{optdrift.Remediate(), optdrift.Up(optup.Policies("/tmp/packs/prod"))} {
		opt.ApplyOption(&o)
	}
	var up optup.Options
	for _, opt := range o.Up {
		opt.ApplyOption(&up)
	}
	fmt.Printf("remediate %v; the remediation's up: policies %v\n", o.Remediate, up.Policies)
	// Output: remediate true; the remediation's up: policies [/tmp/packs/prod]
}
