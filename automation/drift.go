package automation

import (
	"context"
	"encoding/json"
	"time"
)

// Drift is what a drift check found.
type Drift struct {
	Stack string `json:"stack"`
	// Resources are the resources whose live state differs from the recorded
	// state, with each changed property (expected = state, actual = live).
	Resources []ResourceChange `json:"resources"`
	// Remediated is set when the check re-applied the desired state.
	Remediated *Result   `json:"remediated,omitempty"`
	Checked    time.Time `json:"checked"`
	// Duration is the check's wall time; JSON carries it as durationSeconds.
	Duration time.Duration  `json:"-"`
	Refresh  *Result        `json:"-"`
	Summary  map[string]int `json:"summary"`
}

// MarshalJSON encodes the drift report with its duration in seconds.
func (d Drift) MarshalJSON() ([]byte, error) {
	type plain Drift
	p := plain(d)
	if p.Resources == nil {
		p.Resources = []ResourceChange{}
	}
	if p.Summary == nil {
		p.Summary = map[string]int{}
	}
	return json.Marshal(struct {
		plain
		Seconds float64 `json:"durationSeconds"`
	}{p, d.Duration.Seconds()})
}

// Found reports whether any resource drifted.
func (d *Drift) Found() bool { return len(d.Resources) > 0 }

// DriftOption configures CheckDrift.
type DriftOption func(*driftConfig)

type driftConfig struct {
	remediate bool
	onEvent   Option
}

// Remediate makes CheckDrift re-apply the desired state when it finds drift
// (an Up that refreshes first, so the engine corrects the live objects).
func Remediate() DriftOption { return func(c *driftConfig) { c.remediate = true } }

// CheckDrift compares live state with the stack's state in preview mode (the
// state is not written), reports every resource whose live properties differ
// from what the engine had recorded, and, with Remediate, re-applies the
// program after a refresh so the engine corrects the live objects.
func (s *Stack) CheckDrift(ctx context.Context, opts ...DriftOption) (*Drift, error) {
	var c driftConfig
	for _, o := range opts {
		o(&c)
	}
	start := time.Now()
	ref, err := s.Refresh(ctx, PreviewOnly())
	d := &Drift{Stack: s.name, Checked: start.UTC(), Refresh: ref}
	if ref != nil {
		d.Summary = ref.Summary
		for _, r := range ref.Resources {
			if r.Op == "update" || len(r.Properties) > 0 {
				d.Resources = append(d.Resources, r)
			}
		}
	}
	if err != nil {
		d.Duration = time.Since(start)
		return d, err
	}
	if d.Found() && c.remediate {
		// The stack's policies (the program's) hold for the remediation too.
		up, err := s.Up(ctx, RefreshFirst())
		d.Remediated = up
		if err != nil {
			d.Duration = time.Since(start)
			return d, err
		}
	}
	d.Duration = time.Since(start)
	s.log.Info("drift", "drifted", len(d.Resources), "remediated", d.Remediated != nil, "duration", d.Duration)
	return d, nil
}

// WatchDrift runs CheckDrift every interval until ctx ends, handing each
// outcome to fn. A failing check is reported to fn and the loop goes on.
func (s *Stack) WatchDrift(ctx context.Context, interval time.Duration, fn func(*Drift, error), opts ...DriftOption) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d, err := s.CheckDrift(ctx, opts...)
		fn(d, err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
