// Package child is the registry of the child processes a test binary can
// run instead of its tests (fault.Child, fault.StartChild): slipwaytest.Main
// runs the one named in Env and exits.
package child

import (
	"context"
	"fmt"
	"os"
	"sync"
)

// Env names the child a process runs.
const Env = "SLIPWAYTEST_CHILD"

var registry = struct {
	mu sync.Mutex
	m  map[string]func(ctx context.Context) error
}{m: map[string]func(ctx context.Context) error{}}

// Register registers fn as the child name.
func Register(name string, fn func(ctx context.Context) error) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	registry.m[name] = fn
}

// RunIfChild runs the child named in Env, if any, and exits: 0 when it
// returns nil, 1 when it fails, 2 when no child of that name is registered.
func RunIfChild() {
	name := os.Getenv(Env)
	if name == "" {
		return
	}
	registry.mu.Lock()
	fn := registry.m[name]
	registry.mu.Unlock()
	if fn == nil {
		fmt.Fprintf(os.Stderr, "slipwaytest: no child %q is registered (fault.Child in TestMain, before slipwaytest.Main)\n", name)
		os.Exit(2)
	}
	if err := fn(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "slipwaytest: child %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}
