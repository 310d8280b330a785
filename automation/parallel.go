package automation

import (
	"context"
	"sync"
)

// EnvResult is one environment's outcome in a parallel run.
type EnvResult struct {
	Stack  string  `json:"stack"`
	Result *Result `json:"result,omitempty"`
	Err    error   `json:"-"`
	Error  string  `json:"error,omitempty"`
}

// Parallel runs op on every program's stack, at most limit at a time (all at
// once when limit < 1). Each environment has its own workspace directory, so
// runs share no workspace files. Results come back in the order of progs.
//
// Only an operation that may create an environment (Up, Preview) creates a
// missing stack; the others refuse it with an *UnknownStackError.
func (e *Engine) Parallel(ctx context.Context, progs []Program, limit int, op Op) []EnvResult {
	if limit < 1 || limit > len(progs) {
		limit = len(progs)
	}
	out := make([]EnvResult, len(progs))
	sem := make(chan struct{}, limit)
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
			open := e.SelectStack
			if op.Creates {
				open = e.UpsertStack
			}
			st, err := open(ctx, p)
			if err == nil {
				r.Result, err = op.Run(ctx, st)
			}
			if err != nil {
				r.Err, r.Error = err, err.Error()
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// Op is an operation that Parallel runs on each environment's stack.
type Op struct {
	// Name is the verb: preview, up, refresh or destroy.
	Name string
	// Creates says whether the operation may create a missing stack.
	Creates bool
	// Run runs the operation on one stack.
	Run func(context.Context, *Stack) (*Result, error)
}

// Up is an Op for Parallel that runs Stack.Up (creating missing stacks).
func Up(opts ...Option) Op {
	return Op{Name: "up", Creates: true, Run: func(ctx context.Context, s *Stack) (*Result, error) { return s.Up(ctx, opts...) }}
}

// Preview is an Op for Parallel that runs Stack.Preview (creating missing stacks).
func Preview(opts ...Option) Op {
	return Op{Name: "preview", Creates: true, Run: func(ctx context.Context, s *Stack) (*Result, error) { return s.Preview(ctx, opts...) }}
}

// Refresh is an Op for Parallel that runs Stack.Refresh on existing stacks.
func Refresh(opts ...Option) Op {
	return Op{Name: "refresh", Run: func(ctx context.Context, s *Stack) (*Result, error) { return s.Refresh(ctx, opts...) }}
}

// Destroy is an Op for Parallel that runs Stack.Destroy on existing stacks.
func Destroy(opts ...Option) Op {
	return Op{Name: "destroy", Run: func(ctx context.Context, s *Stack) (*Result, error) { return s.Destroy(ctx, opts...) }}
}
