// Package optrefresh holds the options of automation.Stack.Refresh (and of
// the automation.Refresh operation run on several environments). An option
// another verb does not support is not in this package, so passing it is a
// compile error.
package optrefresh

import (
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
)

// Options are the settings of one refresh. Options are applied to it in
// order; a later option overrides an earlier one.
type Options struct {
	// Parallel bounds the resource operations the engine runs at once (0 = the engine's default).
	Parallel int
	// Message is the update message recorded in the stack history.
	Message string
	// ExpectNoChanges compares first (writing nothing) and fails with an
	// *automation.ChangesFoundError when live state differs from the stack's.
	ExpectNoChanges bool
	// PreviewOnly compares live state without writing it to the stack.
	PreviewOnly bool
	// OnEvent is called for every engine event, in order, from one goroutine.
	OnEvent func(events.EngineEvent)
	// Attempts is the number of tries in all for transient failures (0 or 1 = no retry).
	Attempts int
	// Backoff is the wait before the first retry; it doubles after each.
	Backoff time.Duration
}

// Option is one setting of a refresh.
type Option interface {
	// ApplyOption applies the setting to opts.
	ApplyOption(opts *Options)
}

// optionFunc adapts a function to Option.
type optionFunc func(*Options)

// ApplyOption calls f(opts).
func (f optionFunc) ApplyOption(opts *Options) { f(opts) }

// Parallel bounds the number of resource operations the engine runs at once.
func Parallel(n int) Option { return optionFunc(func(o *Options) { o.Parallel = n }) }

// Message sets the update message recorded in the stack history.
func Message(m string) Option { return optionFunc(func(o *Options) { o.Message = m }) }

// ExpectNoChanges makes the refresh compare first, writing nothing, and
// fail with an *automation.ChangesFoundError when live state differs.
func ExpectNoChanges() Option { return optionFunc(func(o *Options) { o.ExpectNoChanges = true }) }

// PreviewOnly makes the refresh compare live state without writing it to the stack.
func PreviewOnly() Option { return optionFunc(func(o *Options) { o.PreviewOnly = true }) }

// OnEvent calls fn for every engine event, in order, from one goroutine.
func OnEvent(fn func(events.EngineEvent)) Option {
	return optionFunc(func(o *Options) { o.OnEvent = fn })
}

// Retry retries transient failures (see automation.IsTransient) up to
// attempts times in all, waiting backoff, 2×backoff, 4×backoff, ... in between.
func Retry(attempts int, backoff time.Duration) Option {
	return optionFunc(func(o *Options) { o.Attempts, o.Backoff = attempts, backoff })
}
