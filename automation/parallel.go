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
func (e *Engine) Parallel(ctx context.Context, progs []Program, limit int, op func(context.Context, *Stack) (*Result, error)) []EnvResult {
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
			st, err := e.Stack(ctx, p)
			if err == nil {
				r.Result, err = op(ctx, st)
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

// Up is an op for Parallel that runs Stack.Up.
func Up(opts ...Option) func(context.Context, *Stack) (*Result, error) {
	return func(ctx context.Context, s *Stack) (*Result, error) { return s.Up(ctx, opts...) }
}

// Preview is an op for Parallel that runs Stack.Preview.
func Preview(opts ...Option) func(context.Context, *Stack) (*Result, error) {
	return func(ctx context.Context, s *Stack) (*Result, error) { return s.Preview(ctx, opts...) }
}

// Destroy is an op for Parallel that runs Stack.Destroy.
func Destroy(opts ...Option) func(context.Context, *Stack) (*Result, error) {
	return func(ctx context.Context, s *Stack) (*Result, error) { return s.Destroy(ctx, opts...) }
}
