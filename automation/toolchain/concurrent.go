package toolchain

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// DefaultMaxBuilds is how many tools a Resolver builds at once by default.
// Two builds share 2 cores well: each links single-threaded and waits for
// downloads at times, when the other compiles.
const DefaultMaxBuilds = 2

// WithMaxBuilds sets how many tools the resolver builds at once (default
// DefaultMaxBuilds; less than 1 means 1). The limit is per Resolver.
func WithMaxBuilds(n int) Option { return func(r *Resolver) { r.maxBuilds = n } }

// acquireSlot waits for one of the resolver's build slots, saying so when it
// must wait. The returned function frees it.
func (r *Resolver) acquireSlot(ctx context.Context, t tool) (func(), error) {
	select {
	case r.slots <- struct{}{}:
	default:
		r.logf("%s: waiting for one of %d build slots", t.name, cap(r.slots))
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return func() { <-r.slots }, nil
}

// ensureAll resolves tools concurrently and returns their directories in the
// order of tools. Builds take the resolver's slots longest expected first, so
// the longest build does not start last. The first failure cancels the other
// builds and is returned; it names its tool (ensure's errors do).
func (r *Resolver) ensureAll(ctx context.Context, tools ...tool) ([]string, error) {
	order := make([]int, len(tools))
	expect := make([]int64, len(tools))
	for i, t := range tools {
		order[i] = i
		d, _ := r.expected(t)
		expect[i] = int64(d)
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(expect[b], expect[a]) })

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dirs := make([]string, len(tools))
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for _, i := range order {
		started := make(chan struct{})
		var once sync.Once
		signal := func() { once.Do(func() { close(started) }) }
		wg.Go(func() {
			defer signal()
			dir, err := r.ensureNotify(ctx, tools[i], signal)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
				return
			}
			dirs[i] = dir
		})
		// The next tool starts once this one holds a slot, waits for another
		// process, or is done.
		<-started
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return dirs, nil
}
