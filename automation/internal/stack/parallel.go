package stack

import (
	"cmp"
	"context"
	"sync"

	"github.com/slipwayhq/slipway/automation/internal/engine"

	"github.com/slipwayhq/slipway/automation/outcome"
)

// EnvResult is one environment's outcome in a run of Each.
type EnvResult struct {
	Stack  string          `json:"stack"`
	Result *outcome.Result `json:"result,omitempty"`
	Err    error           `json:"-"`
	Error  string          `json:"error,omitempty"`
}

// Each runs op on every program's stack, at most concurrency environments
// at a time (all at once when concurrency < 1). The resource operations
// inside one environment are bounded by the verb's own Parallel option.
// Each environment has its own workspace directory, so runs share no
// workspace files. Results come back in the order of progs.
//
// Only an operation that may create an environment (Up, Preview) creates a
// missing stack; the others refuse it with an *UnknownStackError.
func Each(ctx context.Context, e *engine.Engine, progs []engine.Program, op Op, concurrency int) []EnvResult {
	if concurrency < 1 || concurrency > len(progs) {
		concurrency = len(progs)
	}
	out := make([]EnvResult, len(progs))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, p := range progs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = EnvResult{Stack: p.Stack, Err: ctx.Err(), Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			r := EnvResult{Stack: p.Stack}
			open := Select
			if op.Creates {
				open = Upsert
			}
			ctx, o := e.Observe(ctx, cmp.Or(op.Name, "op"), p)
			st, err := open(ctx, e, p)
			if err == nil {
				r.Result, err = op.Run(ctx, st)
			}
			o.End(r.Result, err)
			if err != nil {
				r.Err, r.Error = err, err.Error()
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// Op is an operation that Each runs on each environment's stack.
type Op struct {
	// Name is the verb: preview, up, refresh or destroy.
	Name string
	// Creates says whether the operation may create a missing stack.
	Creates bool
	// Run runs the operation on one stack.
	Run func(context.Context, *Stack) (*outcome.Result, error)
}
