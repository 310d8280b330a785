// Package rollout moves an environment from a stable version to a new one
// in steps, as Argo Rollouts and Flagger do: a canary is a list of steps —
// send a share of the traffic to the new version, pause (for a duration or
// until promoted), run an analysis — ending in the promotion; a failed
// analysis aborts and puts everything back on stable, which is never
// touched before the promotion. Blue/green is the same machinery with
// other steps (BlueGreen): a preview with none of the traffic, analysis
// against it, the switch as one Weight 100 step, a pause keeping the old
// version, and the promotion scaling it down.
//
// What the steps act on is a Target (for a Slipway workload:
// workload.CanaryTarget, each step an engine update of the program). The
// rollout's progress is a record in a Store — the backend's records
// beside the stack (*statestore.Store) — written after every step, so a
// process killed mid-rollout resumes at the step it was in when Run is
// called again, and another process sees where it is (Get). One rollout at
// a time per record name: a second Run for another version is refused
// until the first is promoted or aborted.
package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/slipwayhq/slipway/automation/mask"
)

// Kind is the record kind under which rollouts are stored.
const Kind = "rollouts"

// Store keeps rollout records; *statestore.Store implements it (records
// beside the stacks of a backend).
type Store interface {
	// Get returns the record name of kind; the error wraps fs.ErrNotExist
	// when there is none.
	Get(ctx context.Context, kind, name string) ([]byte, error)
	// Put writes the record, replacing it.
	Put(ctx context.Context, kind, name string, data []byte) error
	// Create writes the record only when there is none; of several
	// writers exactly one succeeds.
	Create(ctx context.Context, kind, name string, data []byte) error
}

// Target is what a rollout moves: a stable version serving today and a
// canary of the new version (or, blue/green, a preview of it: see
// BlueGreen).
type Target interface {
	// SetWeight runs the canary beside stable with weight percent (0-100)
	// of the traffic; stable is left as it is. Weight 0 is a Preview step:
	// the new version runs beside stable with none of the traffic.
	SetWeight(ctx context.Context, weight int) error
	// Promote moves stable to the new version and removes the canary.
	Promote(ctx context.Context) error
	// Abort removes the canary; stable takes all the traffic again.
	Abort(ctx context.Context) error
}

// Verdict is the outcome of a gate.
type Verdict string

// Verdicts of a gate.
const (
	// Successful lets the rollout go on.
	Successful Verdict = "Successful"
	// Failed aborts the rollout.
	Failed Verdict = "Failed"
	// Inconclusive pauses the rollout: it goes on only when promoted.
	Inconclusive Verdict = "Inconclusive"
)

// Gate is a check a step runs, such as a metric analysis (see
// AnalysisGate) or a smoke test.
type Gate interface {
	// Name names the gate in records and messages.
	Name() string
	// Check runs the gate. Its detail (measurements, any JSON value) is
	// kept in the rollout's record. An error counts as Failed.
	Check(ctx context.Context) (Verdict, any, error)
}

// Step is one step of a plan: exactly one of Preview, Weight, Pause,
// UntilPromoted or Gates.
type Step struct {
	// Preview runs the new version beside stable with none of the traffic
	// (Target.SetWeight with weight 0), e.g. blue/green's preview.
	Preview bool
	// Weight sends this share of the traffic (percent, 1-100) to the canary.
	Weight int
	// Pause waits this long (counted from the step's start, across
	// restarts).
	Pause time.Duration
	// UntilPromoted pauses until Promote is called.
	UntilPromoted bool
	// Gates are run one after another: the first Failed aborts, an
	// Inconclusive one pauses the rollout until it is promoted.
	Gates []Gate
}

// String describes the step, e.g. "preview", "weight 10", "pause 1m0s",
// "analysis error-rate".
func (s Step) String() string {
	switch {
	case s.Preview:
		return "preview"
	case s.Weight > 0:
		return fmt.Sprintf("weight %d", s.Weight)
	case s.Pause > 0:
		return "pause " + s.Pause.String()
	case s.UntilPromoted:
		return "pause until promoted"
	}
	names := ""
	for i, g := range s.Gates {
		if i > 0 {
			names += ","
		}
		names += g.Name()
	}
	return "analysis " + names
}

// Validate reports the first invalid step, naming it and the fix.
func Validate(steps []Step) error {
	if len(steps) == 0 {
		return errors.New("rollout: no steps; give at least one, e.g. weight 10, analysis, weight 50")
	}
	for i, s := range steps {
		set := 0
		for _, b := range []bool{s.Preview, s.Weight != 0, s.Pause != 0, s.UntilPromoted, len(s.Gates) > 0} {
			if b {
				set++
			}
		}
		switch {
		case set != 1:
			return fmt.Errorf("rollout: steps[%d]: set exactly one of Preview, Weight, Pause, UntilPromoted or Gates (%d are set)", i, set)
		case s.Weight < 0 || s.Weight > 100:
			return fmt.Errorf("rollout: steps[%d].Weight: %d is out of range; use 1-100", i, s.Weight)
		case s.Pause < 0:
			return fmt.Errorf("rollout: steps[%d].Pause: %s is negative", i, s.Pause)
		}
		for j, g := range s.Gates {
			if g == nil || g.Name() == "" {
				return fmt.Errorf("rollout: steps[%d].Gates[%d]: a gate needs a name", i, j)
			}
		}
	}
	return nil
}

// Phase is where a rollout is.
type Phase string

// Phases of a rollout.
const (
	// Progressing: steps are being run.
	Progressing Phase = "Progressing"
	// Paused: waiting for Promote (a pause until promoted, or an
	// inconclusive analysis).
	Paused Phase = "Paused"
	// Promoted: the new version is stable. Final.
	Promoted Phase = "Promoted"
	// Aborted: the canary was removed, stable serves. Final.
	Aborted Phase = "Aborted"
)

// Final reports whether a rollout in phase p is over.
func (p Phase) Final() bool { return p == Promoted || p == Aborted }

// Check is one gate's result, kept in the record.
type Check struct {
	// Step is the index of the step that ran it.
	Step int `json:"step"`
	// Gate is the gate's name.
	Gate string `json:"gate"`
	// Verdict is its outcome.
	Verdict Verdict `json:"verdict"`
	// Detail is what the gate measured.
	Detail any `json:"detail,omitempty"`
	// Error is the gate's error, when it failed with one.
	Error string `json:"error,omitempty"`
	// At is when it ended.
	At time.Time `json:"at"`
}

// State is a rollout's record.
type State struct {
	// Name is the record's name (e.g. <project>/<stack>).
	Name string `json:"name"`
	// Version names what is rolled out (an image, a release); a record of
	// another version in progress refuses a new rollout.
	Version string `json:"version"`
	// Plan describes the steps (Step.String), to refuse resuming with
	// other steps.
	Plan []string `json:"plan"`
	// Phase is where it is.
	Phase Phase `json:"phase"`
	// Step is the index of the step running or next to run; len(Plan)
	// when every step ran.
	Step int `json:"step"`
	// StepStarted is when the current step started (pauses count from it).
	StepStarted time.Time `json:"stepStarted"`
	// Weight is the canary's share of the traffic now.
	Weight int `json:"weight"`
	// PromoteRequested is set by Promote: the pause or inconclusive
	// analysis it is in is passed.
	PromoteRequested bool `json:"promoteRequested,omitempty"`
	// Cause says why it aborted or paused.
	Cause string `json:"cause,omitempty"`
	// Checks are every gate's results, in order.
	Checks []Check `json:"checks,omitempty"`
	// Started and Updated are when it started and last changed.
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
}

// Event is a rollout's progress, for notifications, spans and logs.
type Event struct {
	// State is the record after the change.
	State State
	// Step is the step the event is about (-1 for none).
	Step int
	// What happened: "step", "paused", "promoted", "aborted", "resumed".
	What string
}

// Options tune Run.
type Options struct {
	// OnEvent is called after each change of the record.
	OnEvent func(Event)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// After waits (default time.After); tests make pauses instant.
	After func(time.Duration) <-chan time.Time
	// Secrets, when set, masks the record's texts before they are saved —
	// each check's error and detail (State.Masked) and the causes — so
	// the record, its events and what Run returns never hold a secret.
	Secrets *mask.Masker
}

// ErrInProgress says another version's rollout is not over.
var ErrInProgress = errors.New("rollout: another rollout is in progress")

// Get returns the record of the rollout name; ok is false when there is
// none.
func Get(ctx context.Context, store Store, name string) (State, bool, error) {
	b, err := store.Get(ctx, Kind, name)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("rollout: reading %s: %w", name, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, false, fmt.Errorf("rollout: record %s is not a rollout: %w", name, err)
	}
	return s, true, nil
}

// runner is one call of Run.
type runner struct {
	store Store
	o     Options
	s     State
}

func (r *runner) save(ctx context.Context, step int, what string) error {
	r.s.Updated = r.o.Now().UTC()
	b, err := json.Marshal(r.s)
	if err != nil {
		return err
	}
	if err := r.store.Put(ctx, Kind, r.s.Name, b); err != nil {
		return fmt.Errorf("rollout: saving %s: %w", r.s.Name, err)
	}
	if r.o.OnEvent != nil {
		r.o.OnEvent(Event{State: r.s, Step: step, What: what})
	}
	return nil
}

// plan describes steps as they are recorded.
func plan(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.String()
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Run rolls version out on target by steps, recording its progress under
// name in store, and returns the record. A record of the same version
// not yet over is resumed at its step (after a killed process); one that
// is over is returned as it is. It returns when the rollout is promoted,
// aborted or paused (State.Phase says which), or with an error when the
// target or the store fails (the record then says where it stopped; Run
// again resumes). A failed gate, a failed weight step or a failed
// promotion aborts: the error is nil and State.Cause says why.
func Run(ctx context.Context, store Store, name, version string, target Target, steps []Step, o Options) (State, error) {
	if err := Validate(steps); err != nil {
		return State{}, err
	}
	if version == "" {
		return State{}, errors.New("rollout: version is empty; name what is rolled out, e.g. the new image")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	r := &runner{store: store, o: o}
	cur, ok, err := Get(ctx, store, name)
	if err != nil {
		return State{}, err
	}
	p := plan(steps)
	switch {
	case ok && cur.Version == version && cur.Phase.Final():
		return cur, nil
	case ok && cur.Version != version && !cur.Phase.Final():
		return cur, fmt.Errorf("%w: %s of %s is %s at step %d; promote or abort it first", ErrInProgress, name, cur.Version, cur.Phase, cur.Step)
	case ok && cur.Version == version:
		if !equal(cur.Plan, p) {
			return cur, fmt.Errorf("rollout: %s of %s runs the steps %v, not %v; abort it to start again with other steps", name, version, cur.Plan, p)
		}
		r.s = cur
		r.s.Phase = Progressing
		if err := r.save(ctx, r.s.Step, "resumed"); err != nil {
			return r.s, err
		}
	default:
		now := o.Now().UTC()
		r.s = State{Name: name, Version: version, Plan: p, Phase: Progressing, Started: now, StepStarted: now, Updated: now}
		b, err := json.Marshal(r.s)
		if err != nil {
			return State{}, err
		}
		create := store.Create
		if ok { // the previous rollout is over: this one replaces its record
			create = store.Put
		}
		if err := create(ctx, Kind, name, b); err != nil {
			return State{}, fmt.Errorf("rollout: starting %s: %w", name, err)
		}
	}
	for r.s.Step < len(steps) {
		i := r.s.Step
		step := steps[i]
		switch {
		case step.Preview || step.Weight > 0:
			if err := target.SetWeight(ctx, step.Weight); err != nil {
				return r.abort(ctx, target, i, fmt.Sprintf("step %d (%s): %v", i, step, err))
			}
			r.s.Weight = step.Weight
		case step.Pause > 0:
			left := step.Pause - o.Now().Sub(r.s.StepStarted)
			if left > 0 {
				select {
				case <-ctx.Done():
					return r.s, ctx.Err()
				case <-o.After(left):
				}
				// Another process may have aborted (or promoted past) the
				// rollout while this one waited: its record wins.
				if cur, ok, err := Get(ctx, store, name); err != nil {
					return r.s, err
				} else if ok && (!cur.Started.Equal(r.s.Started) || cur.Phase.Final()) {
					return cur, nil
				}
			}
		case step.UntilPromoted:
			if !r.s.PromoteRequested {
				return r.pause(ctx, i, fmt.Sprintf("step %d pauses until promoted", i))
			}
		default:
			for _, g := range step.Gates {
				v, detail, err := g.Check(ctx)
				if ctx.Err() != nil {
					return r.s, ctx.Err()
				}
				c := Check{Step: i, Gate: g.Name(), Verdict: v, Detail: detail, At: o.Now().UTC()}
				if err != nil {
					c.Verdict, c.Error = Failed, err.Error()
				}
				if o.Secrets != nil {
					c = c.Masked(o.Secrets)
				}
				r.s.Checks = append(r.s.Checks, c)
				switch {
				case c.Verdict == Failed:
					cause := fmt.Sprintf("step %d: analysis %s failed", i, g.Name())
					if c.Error != "" {
						cause += ": " + c.Error
					}
					return r.abort(ctx, target, i, cause)
				case c.Verdict == Inconclusive && !r.s.PromoteRequested:
					return r.pause(ctx, i, fmt.Sprintf("step %d: analysis %s is inconclusive; promote to go on or abort", i, g.Name()))
				case c.Verdict != Successful && c.Verdict != Inconclusive:
					return r.abort(ctx, target, i, fmt.Sprintf("step %d: analysis %s gave %q, not a verdict", i, g.Name(), c.Verdict))
				}
			}
		}
		r.s.Step, r.s.StepStarted, r.s.PromoteRequested, r.s.Cause = i+1, o.Now().UTC(), false, ""
		if err := r.save(ctx, i, "step"); err != nil {
			return r.s, err
		}
	}
	if err := target.Promote(ctx); err != nil {
		// A promotion that fails (its smoke check, its update) goes back to
		// stable like a failed analysis: fail closed.
		return r.abort(ctx, target, len(steps), fmt.Sprintf("promotion: %v", err))
	}
	r.s.Phase, r.s.Weight = Promoted, 0
	return r.s, r.save(ctx, -1, "promoted")
}

// pause records the rollout as Paused with a cause.
func (r *runner) pause(ctx context.Context, step int, cause string) (State, error) {
	r.s.Phase, r.s.Cause = Paused, r.mask(cause)
	return r.s, r.save(ctx, step, "paused")
}

// abort puts stable back and records the rollout as Aborted.
func (r *runner) abort(ctx context.Context, target Target, step int, cause string) (State, error) {
	cause = r.mask(cause)
	if err := target.Abort(ctx); err != nil {
		r.s.Cause = cause
		_ = r.save(ctx, step, "abort failed")
		return r.s, fmt.Errorf("rollout: %s; removing the canary failed too: %w (run abort again)", cause, err)
	}
	r.s.Phase, r.s.Cause, r.s.Weight = Aborted, cause, 0
	return r.s, r.save(ctx, step, "aborted")
}

// mask masks s with Options.Secrets, when set.
func (r *runner) mask(s string) string {
	if r.o.Secrets == nil {
		return s
	}
	return r.o.Secrets.String(s)
}

// Promote asks the rollout name to pass the pause (or inconclusive
// analysis) it is in; the next Run goes on from there. It refuses a
// rollout that is over or not paused.
func Promote(ctx context.Context, store Store, name string) (State, error) {
	s, ok, err := Get(ctx, store, name)
	if err != nil {
		return s, err
	}
	if !ok {
		return s, fmt.Errorf("rollout: no rollout %s; start one first", name)
	}
	if s.Phase != Paused {
		return s, fmt.Errorf("rollout: %s of %s is %s, not Paused; only a paused rollout can be promoted", name, s.Version, s.Phase)
	}
	s.PromoteRequested, s.Phase, s.Updated = true, Progressing, time.Now().UTC()
	b, err := json.Marshal(s)
	if err != nil {
		return s, err
	}
	return s, store.Put(ctx, Kind, name, b)
}

// Abort removes the canary of the rollout name from target and records it
// as Aborted with cause; a rollout that is over is left as it is.
func Abort(ctx context.Context, store Store, name string, target Target, cause string) (State, error) {
	s, ok, err := Get(ctx, store, name)
	if err != nil {
		return s, err
	}
	if !ok {
		return s, fmt.Errorf("rollout: no rollout %s", name)
	}
	if s.Phase.Final() {
		return s, nil
	}
	r := &runner{store: store, o: Options{Now: time.Now}, s: s}
	return r.abort(ctx, target, s.Step, cause)
}

// Funcs is a Target made of functions.
type Funcs struct {
	SetWeightFunc func(ctx context.Context, weight int) error
	PromoteFunc   func(ctx context.Context) error
	AbortFunc     func(ctx context.Context) error
}

// SetWeight calls SetWeightFunc.
func (f Funcs) SetWeight(ctx context.Context, weight int) error { return f.SetWeightFunc(ctx, weight) }

// Promote calls PromoteFunc.
func (f Funcs) Promote(ctx context.Context) error { return f.PromoteFunc(ctx) }

// Abort calls AbortFunc.
func (f Funcs) Abort(ctx context.Context) error { return f.AbortFunc(ctx) }

// GateFunc is a Gate made of a name and a function.
type GateFunc struct {
	// GateName is the gate's name.
	GateName string
	// CheckFunc runs it.
	CheckFunc func(ctx context.Context) (Verdict, any, error)
}

// Name returns GateName.
func (g GateFunc) Name() string { return g.GateName }

// Check calls CheckFunc.
func (g GateFunc) Check(ctx context.Context) (Verdict, any, error) { return g.CheckFunc(ctx) }
