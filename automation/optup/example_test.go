package optup_test

import (
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/automation/optup"
)

// An up's options as Stack.Up applies them, in order (a later one
// overrides an earlier one). In a program:
//
//	res, err := st.Up(ctx, optup.Policies(dir), optup.Retry(3, time.Second), optup.Revision(sha))
//	if automation.IsPolicyBlocked(err) { ... } // nothing was applied; exit 3 in the CLI
func Example() {
	var o optup.Options
	for _, opt := range []optup.Option{
		optup.Parallel(8),
		optup.Policies("/tmp/packs/prod"),
		optup.Retry(3, time.Second),
		optup.Plan("plan.json"),
		optup.Revision("9d97d80"),
		optup.CommitTime(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)),
		optup.Message("release 1.4.2"),
	} {
		opt.ApplyOption(&o)
	}
	fmt.Printf("parallel %d, policies %v, %d attempts from %s, plan %s\n", o.Parallel, o.Policies, o.Attempts, o.Backoff, o.Plan)
	fmt.Printf("revision %s committed %s: %q\n", o.Revision, o.CommitTime.Format(time.RFC3339), o.Message)
	// Output:
	// parallel 8, policies [/tmp/packs/prod], 3 attempts from 1s, plan plan.json
	// revision 9d97d80 committed 2026-12-03T09:00:00Z: "release 1.4.2"
}
