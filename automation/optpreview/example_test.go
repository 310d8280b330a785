package optpreview_test

import (
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/automation/optpreview"
)

// A preview's options as Stack.Preview applies them, in order (a later one
// overrides an earlier one). In a program:
//
//	res, err := st.Preview(ctx, optpreview.ExpectNoChanges(), optpreview.Plan("plan.json"))
//	if automation.IsChangesFound(err) { ... } // exit 2 in the CLI
func Example() {
	var o optpreview.Options
	for _, opt := range []optpreview.Option{
		optpreview.Parallel(8),
		optpreview.ExpectNoChanges(),
		optpreview.Policies("/tmp/packs/prod"),
		optpreview.Retry(3, time.Second),
		optpreview.Plan("plan.json"),
		optpreview.Parallel(4), // the later one wins
	} {
		opt.ApplyOption(&o)
	}
	fmt.Printf("parallel %d, expect no changes %v, policies %v, %d attempts from %s, plan %s\n",
		o.Parallel, o.ExpectNoChanges, o.Policies, o.Attempts, o.Backoff, o.Plan)
	// Output: parallel 4, expect no changes true, policies [/tmp/packs/prod], 3 attempts from 1s, plan plan.json
}
