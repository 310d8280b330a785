// Package optdrift holds the options of automation.Stack.CheckDrift and
// Stack.WatchDrift. An option another verb does not support is not in this
// package, so passing it is a compile error.
package optdrift

import (
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"

	"github.com/slipwayhq/slipway/automation/optup"
)

// Options are the settings of one drift check. Options are applied to it
// in order; a later option overrides an earlier one.
type Options struct {
	// Remediate re-applies the desired state when drift is found.
	Remediate bool
	// OnEvent is called for every engine event of the check (and of the
	// remediation, unless Up sets its own), in order, from one goroutine.
	OnEvent func(events.EngineEvent)
	// Up are the options of the remediation's up.
	Up []optup.Option
}

// Option is one setting of a drift check.
type Option interface {
	// ApplyOption applies the setting to opts.
	ApplyOption(opts *Options)
}

// optionFunc adapts a function to Option.
type optionFunc func(*Options)

// ApplyOption calls f(opts).
func (f optionFunc) ApplyOption(opts *Options) { f(opts) }

// Remediate makes the check re-apply the desired state when it finds drift
// (an up that refreshes first, so the engine corrects the live objects).
func Remediate() Option { return optionFunc(func(o *Options) { o.Remediate = true }) }

// OnEvent calls fn for every engine event of the check and of its
// remediation, in order, from one goroutine.
func OnEvent(fn func(events.EngineEvent)) Option {
	return optionFunc(func(o *Options) { o.OnEvent = fn })
}

// Up passes options (policies, parallelism, retries, ...) to the
// remediation's up; it implies nothing without Remediate.
func Up(opts ...optup.Option) Option {
	return optionFunc(func(o *Options) { o.Up = append(o.Up, opts...) })
}
