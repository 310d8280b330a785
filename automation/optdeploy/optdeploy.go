// Package optdeploy holds the options of automation.Engine.Deploy. An option
// another verb does not support is not in this package, so passing it is a
// compile error.
package optdeploy

import (
	"github.com/slipwayhq/slipway/automation/optup"
)

// Options are the settings of one deployment. Options are applied to it in
// order; a later option overrides an earlier one.
type Options struct {
	// NoRollback turns the automatic rollback to the last known good release off.
	NoRollback bool
	// Up are the options of the release's up and of a rollback's up.
	Up []optup.Option
}

// Option is one setting of a deployment.
type Option interface {
	// ApplyOption applies the setting to opts.
	ApplyOption(opts *Options)
}

// optionFunc adapts a function to Option.
type optionFunc func(*Options)

// ApplyOption calls f(opts).
func (f optionFunc) ApplyOption(opts *Options) { f(opts) }

// NoRollback turns the automatic rollback off: a failed release stays applied.
func NoRollback() Option { return optionFunc(func(o *Options) { o.NoRollback = true }) }

// Up passes options (policies, events, parallelism, retries, ...) to the
// release's up and to the up of a rollback. A plan (optup.Plan) applies to
// the release only: the rollback applies the restored release.
func Up(opts ...optup.Option) Option {
	return optionFunc(func(o *Options) { o.Up = append(o.Up, opts...) })
}
