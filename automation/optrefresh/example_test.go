package optrefresh_test

import (
	"fmt"

	"github.com/slipwayhq/slipway/automation/optrefresh"
)

// A refresh's options as Stack.Refresh applies them. ExpectNoChanges with
// PreviewOnly compares live state with the stack's and writes nothing: a
// drift check for CI. In a program:
//
//	_, err := st.Refresh(ctx, optrefresh.ExpectNoChanges(), optrefresh.PreviewOnly())
//	if automation.IsChangesFound(err) { ... } // live state drifted
//
// or on several environments at once:
//
//	out := eng.Each(ctx, progs, automation.Refresh(optrefresh.ExpectNoChanges()), 4)
func Example() {
	var o optrefresh.Options
	for _, opt := range []optrefresh.Option{optrefresh.ExpectNoChanges(), optrefresh.PreviewOnly(), optrefresh.Parallel(16)} {
		opt.ApplyOption(&o)
	}
	fmt.Printf("expect no changes %v, preview only %v, parallel %d\n", o.ExpectNoChanges, o.PreviewOnly, o.Parallel)
	// Output: expect no changes true, preview only true, parallel 16
}
