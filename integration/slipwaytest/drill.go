package slipwaytest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Drill is a controlled failure: inject a fault, let the repair run, and
// require the environment to be healthy again within a bound. Run (or
// RunDrill in a test) does inject → recover → poll Healthy, and reports how
// long the recovery took.
//
// The clock starts when Inject returns: Recover and the polls of Healthy
// share the bound Within, and the recovery time is from then to the first
// poll that finds the environment healthy.
type Drill struct {
	// Name names the drill in results and errors.
	Name string
	// Inject makes the fault (package fault: DeletePods, EditObject,
	// KillAt, SetMetric). It returns an error when the fault could not be made —
	// nothing to delete, a child that ended before its signal —, so a drill
	// never passes without its fault.
	Inject func(ctx context.Context) error
	// Recover runs the repair (fault.RepairDrift, or a rerun that resumes);
	// nil when the environment repairs itself (a Deployment's controller
	// replacing deleted pods, a rollout aborting on its own analysis). Its
	// context ends at the bound.
	Recover func(ctx context.Context) error
	// Healthy reports whether the environment is back where it should be
	// (fault.DeploymentReady, fault.PodsReady). An error counts as not healthy yet
	// (an object may be missing mid-repair); the last one is in the
	// DrillError.
	Healthy func(ctx context.Context) (bool, error)
	// Within bounds the recovery: from Inject's return until Healthy
	// reports true, Recover included.
	Within time.Duration
	// Interval is the time between polls of Healthy (default 100ms).
	Interval time.Duration
}

// DrillResult is what a drill measured.
type DrillResult struct {
	// Name is the drill's name.
	Name string
	// Recovery is the time from Inject's return to the first healthy poll.
	Recovery time.Duration
	// Recover is how long Recover took (0 without one).
	Recover time.Duration
	// Polls is the number of times Healthy was called.
	Polls int
}

// Stages of a drill, as DrillError.Stage names them.
const (
	StageInject  = "inject"
	StageRecover = "recover"
	StageHealthy = "healthy"
)

// DrillError says a drill failed: its fault could not be injected, its
// Recover failed, or the environment was not healthy within the bound.
// Get it with errors.As (a *DrillError).
type DrillError struct {
	// Drill is the drill's name.
	Drill string
	// Stage is where it failed: StageInject, StageRecover or StageHealthy.
	Stage string
	// Within is the drill's bound.
	Within time.Duration
	// Elapsed is the time from Inject's return to the failure (0 when
	// Inject failed).
	Elapsed time.Duration
	// Polls is the number of times Healthy was called.
	Polls int
	// Err is Inject's or Recover's error, or Healthy's last error (nil
	// when it last answered false without one).
	Err error
}

// Error implements error.
func (e *DrillError) Error() string {
	switch e.Stage {
	case StageInject:
		return fmt.Sprintf("slipwaytest: drill %s: injecting the fault: %v", e.Drill, e.Err)
	case StageRecover:
		return fmt.Sprintf("slipwaytest: drill %s: recovery failed after %s (bound %s): %v", e.Drill, e.Elapsed.Round(time.Millisecond), e.Within, e.Err)
	}
	msg := fmt.Sprintf("slipwaytest: drill %s: not healthy within %s (%d poll(s))", e.Drill, e.Within, e.Polls)
	if e.Err != nil {
		msg += "; last error: " + e.Err.Error()
	}
	return msg
}

// Unwrap returns Err.
func (e *DrillError) Unwrap() error { return e.Err }

// Run runs the drill: Inject, then Recover and the polls of Healthy under
// the bound Within (and ctx). It returns the result, or a *DrillError
// saying which stage failed; a drill given without Inject, Healthy or a
// positive Within is refused before anything is injected.
func (d Drill) Run(ctx context.Context) (DrillResult, error) {
	res := DrillResult{Name: d.Name}
	switch {
	case d.Name == "":
		return res, errors.New("slipwaytest: Drill.Name is empty; name the fault, e.g. \"pods deleted\"")
	case d.Inject == nil:
		return res, fmt.Errorf("slipwaytest: drill %s: Drill.Inject is nil; give the function that makes the fault (e.g. fault.DeletePods)", d.Name)
	case d.Healthy == nil:
		return res, fmt.Errorf("slipwaytest: drill %s: Drill.Healthy is nil; give the check that the environment is back (e.g. fault.DeploymentReady)", d.Name)
	case d.Within <= 0:
		return res, fmt.Errorf("slipwaytest: drill %s: Drill.Within is %s; state the bound on the recovery, e.g. 30 * time.Second", d.Name, d.Within)
	}
	interval := d.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	if err := d.Inject(ctx); err != nil {
		return res, &DrillError{Drill: d.Name, Stage: StageInject, Within: d.Within, Err: err}
	}
	start := time.Now()
	bctx, cancel := context.WithDeadline(ctx, start.Add(d.Within))
	defer cancel()
	fail := func(stage string, err error) (DrillResult, error) {
		return res, &DrillError{Drill: d.Name, Stage: stage, Within: d.Within, Elapsed: time.Since(start), Polls: res.Polls, Err: err}
	}
	if d.Recover != nil {
		err := d.Recover(bctx)
		res.Recover = time.Since(start)
		if err != nil {
			if bctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("%w (the bound of %s ended it)", err, d.Within)
			}
			return fail(StageRecover, err)
		}
	}
	var last error
	for {
		res.Polls++
		ok, err := d.Healthy(bctx)
		if ok && err == nil {
			res.Recovery = time.Since(start)
			if res.Recovery > d.Within { // a slow last poll
				return fail(StageHealthy, fmt.Errorf("healthy only after %s", res.Recovery.Round(time.Millisecond)))
			}
			return res, nil
		}
		if err != nil && bctx.Err() == nil {
			last = err
		}
		timer := time.NewTimer(interval)
		select {
		case <-bctx.Done():
			timer.Stop()
			if ctx.Err() != nil {
				last = ctx.Err()
			}
			return fail(StageHealthy, last)
		case <-timer.C:
		}
	}
}

// RunDrill runs d in a test: it fails the test (t.Fatal) when the drill
// fails, and returns the result, whose Recovery a test can assert further
// (against a tighter bound, or another drill's).
func RunDrill(t testing.TB, d Drill) DrillResult {
	t.Helper()
	res, err := d.Run(context.Background())
	if err != nil {
		t.Fatalf("%v", err)
	}
	return res
}
