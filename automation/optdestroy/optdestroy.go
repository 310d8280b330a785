// Package optdestroy holds the options of automation.Stack.Destroy (and of
// the automation.Destroy operation run on several environments). An option
// another verb does not support is not in this package, so passing it is a
// compile error.
package optdestroy

import (
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
)

// Options are the settings of one destroy. Options are applied to it in
// order; a later option overrides an earlier one.
type Options struct {
	// Parallel bounds the resource operations the engine runs at once (0 = the engine's default).
	Parallel int
	// Message is the update message recorded in the stack history.
	Message string
	// RemoveStack removes the emptied stack from the backend after the destroy.
	RemoveStack bool
	// OnEvent is called for every engine event, in order, from one goroutine.
	OnEvent func(events.EngineEvent)
	// Attempts is the number of tries in all for transient failures (0 or 1 = no retry).
	Attempts int
	// Backoff is the wait before the first retry; it doubles after each.
	Backoff time.Duration
}

// Option is one setting of a destroy.
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

// RemoveStack makes the destroy also remove the emptied stack from the backend.
func RemoveStack() Option { return optionFunc(func(o *Options) { o.RemoveStack = true }) }

// OnEvent calls fn for every engine event, in order, from one goroutine.
func OnEvent(fn func(events.EngineEvent)) Option {
	return optionFunc(func(o *Options) { o.OnEvent = fn })
}

// Retry retries transient failures (see automation.IsTransient) up to
// attempts times in all, waiting backoff, 2×backoff, 4×backoff, ... in between.
func Retry(attempts int, backoff time.Duration) Option {
	return optionFunc(func(o *Options) { o.Attempts, o.Backoff = attempts, backoff })
}
