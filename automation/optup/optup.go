// Package optup holds the options of automation.Stack.Up and of every
// operation that runs an up: automation.Up on several environments,
// Engine.Promote, Engine.Rollback, Engine.CreateEphemeral, and the ups of
// optdeploy.Up and optdrift.Up. An option another verb does not support is
// not in this package, so passing it is a compile error.
package optup

import (
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
)

// Options are the settings of one up. Options are applied to it in order;
// a later option overrides an earlier one.
type Options struct {
	// Parallel bounds the resource operations the engine runs at once (0 = the engine's default).
	Parallel int
	// Message is the update message recorded in the stack history.
	Message string
	// Policies are policy pack directories (see automation.Engine.PolicyDir)
	// enforced besides the program's own.
	Policies []string
	// ExpectNoChanges fails the up, before it applies anything, with an
	// *automation.ChangesFoundError when its preview finds changes.
	ExpectNoChanges bool
	// OnEvent is called for every engine event, in order, from one goroutine.
	OnEvent func(events.EngineEvent)
	// Attempts is the number of tries in all for transient failures (0 or 1 = no retry).
	Attempts int
	// Backoff is the wait before the first retry; it doubles after each.
	Backoff time.Duration
	// Refresh refreshes the state before the update is computed.
	Refresh bool
	// Plan is a plan saved by a preview (optpreview.Plan) that the up must apply exactly.
	Plan string
	// Revision is the source revision the up applies (e.g. a Git commit),
	// recorded with its release.
	Revision string
	// CommitTime is the time of the commit the up applies, recorded with
	// its release for the lead time of changes (package dora).
	CommitTime time.Time
}

// Option is one setting of an up.
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
// automation.Engine.PolicyDir) besides the program's own. The up previews
// with them first and applies nothing when a violation blocks
// (*automation.PolicyBlockedError).
func Policies(dirs ...string) Option {
	return optionFunc(func(o *Options) { o.Policies = append(o.Policies, dirs...) })
}

// ExpectNoChanges makes the up preview first and fail with an
// *automation.ChangesFoundError, applying nothing, when the preview has changes.
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

// Refresh makes the up refresh the state before it computes the update, so
// it corrects drift in the live objects.
func Refresh() Option { return optionFunc(func(o *Options) { o.Refresh = true }) }

// Plan makes the up apply exactly the plan a preview saved at path
// (optpreview.Plan); it applies nothing and fails with an
// *automation.PlanChangedError when the program or the world moved since.
func Plan(path string) Option { return optionFunc(func(o *Options) { o.Plan = path }) }

// Revision records the source revision the up applies (e.g. the Git commit
// its parameters came from) with the release, so the release history says
// which commit each release applied.
func Revision(rev string) Option { return optionFunc(func(o *Options) { o.Revision = rev }) }

// CommitTime records the time of the commit the up applies with the
// release, for the lead time of changes: the time from commit to deploy
// (see package dora). The zero time records none.
func CommitTime(t time.Time) Option { return optionFunc(func(o *Options) { o.CommitTime = t }) }
