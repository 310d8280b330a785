package optdestroy_test

import (
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/automation/optdestroy"
)

// A destroy's options as Stack.Destroy applies them: RemoveStack also
// removes the emptied stack from the backend. In a program:
//
//	_, err := st.Destroy(ctx, optdestroy.RemoveStack(), optdestroy.Retry(3, 2*time.Second))
func Example() {
	var o optdestroy.Options
	for _, opt := range []optdestroy.Option{optdestroy.RemoveStack(), optdestroy.Retry(3, 2*time.Second), optdestroy.Message("pr-42 closed")} {
		opt.ApplyOption(&o)
	}
	fmt.Printf("remove stack %v, %d attempts from %s, %q\n", o.RemoveStack, o.Attempts, o.Backoff, o.Message)
	// Output: remove stack true, 3 attempts from 2s, "pr-42 closed"
}
