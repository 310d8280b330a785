// Package optpreview holds the options of automation.Stack.Preview (and of
// the automation.Preview operation run on several environments). An option
// another verb does not support is not in this package, so passing it is a
// compile error.
package optpreview

import (
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
)

// Options are the settings of one preview. Options are applied to it in
// order; a later option overrides an earlier one.
type Options struct {
	// Parallel bounds the resource operations the engine runs at once (0 = the engine's default).
	Parallel int
	// Message is the update message recorded in the stack history.
	Message string
	// Policies are policy pack directories (see automation.Engine.PolicyDir)
	// enforced besides the program's own.
	Policies []string
	// ExpectNoChanges fails the preview with an *automation.ChangesFoundError when it finds changes.
	ExpectNoChanges bool
	// OnEvent is called for every engine event, in order, from one goroutine.
	OnEvent func(events.EngineEvent)
	// Attempts is the number of tries in all for transient failures (0 or 1 = no retry).
	Attempts int
	// Backoff is the wait before the first retry; it doubles after each.
	Backoff time.Duration
	// Plan is the file the engine's update plan is saved to, for an up with optup.Plan.
	Plan string
}

// Option is one setting of a preview.
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

// Policies enforces the policy pack directories (see
// automation.Engine.PolicyDir) besides the program's own. A blocking
// violation fails the preview with an *automation.PolicyBlockedError.
func Policies(dirs ...string) Option {
	return optionFunc(func(o *Options) { o.Policies = append(o.Policies, dirs...) })
}

// ExpectNoChanges makes the preview fail with an *automation.ChangesFoundError
// when it finds any change. Any other failure keeps its own error.
func ExpectNoChanges() Option { return optionFunc(func(o *Options) { o.ExpectNoChanges = true }) }

// OnEvent calls fn for every engine event, in order, from one goroutine.
func OnEvent(fn func(events.EngineEvent)) Option {
	return optionFunc(func(o *Options) { o.OnEvent = fn })
}

// Retry retries transient failures (see automation.IsTransient) up to
// attempts times in all, waiting backoff, 2×backoff, 4×backoff, ... in between.
func Retry(attempts int, backoff time.Duration) Option {
	return optionFunc(func(o *Options) { o.Attempts, o.Backoff = attempts, backoff })
}

// Plan saves the engine's update plan to path, so a later up with
// optup.Plan(path) applies exactly what was reviewed.
func Plan(path string) Option { return optionFunc(func(o *Options) { o.Plan = path }) }
