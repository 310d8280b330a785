package drift

import (
	"context"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/stack"
	"github.com/slipwayhq/slipway/automation/optdrift"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
)

// CheckDrift compares live state with the stack's state in preview mode (the
// state is not written), reports every resource whose live properties differ
// from what the engine had recorded, and, with optdrift.Remediate, re-applies the
// program (an up that refreshes first, with the options of optdrift.Up)
// so the engine corrects the live objects.
func Check(ctx context.Context, s *stack.Stack, opts ...optdrift.Option) (d *outcome.Drift, err error) {
	ctx, o := s.Observe(ctx, "drift")
	defer func() { o.EndDrift(d, err) }()
	var c optdrift.Options
	for _, o := range opts {
		o.ApplyOption(&c)
	}
	start := time.Now()
	ref, err := s.RunRefresh(ctx, stack.OpConfig{PreviewOnly: true, OnEvent: c.OnEvent})
	d = &outcome.Drift{Stack: s.Name(), Checked: start.UTC(), Refresh: ref}
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
	if d.Found() && c.Remediate {
		// The stack's policies (the program's) hold for the remediation too.
		var uo []optup.Option
		if c.OnEvent != nil {
			uo = append(uo, optup.OnEvent(c.OnEvent))
		}
		uc := stack.UpConfig(append(uo, c.Up...))
		uc.RefreshFirst = true
		up, err := s.RunUp(ctx, uc)
		d.Remediated = up
		if err != nil {
			d.Duration = time.Since(start)
			return d, err
		}
	}
	d.Duration = time.Since(start)
	s.Logger().InfoContext(ctx, "drift", "drifted", len(d.Resources), "remediated", d.Remediated != nil, "duration", d.Duration)
	return d, nil
}

// WatchDrift runs CheckDrift every interval until ctx ends, handing each
// outcome to fn. A failing check is reported to fn and the loop goes on.
func Watch(ctx context.Context, s *stack.Stack, interval time.Duration, fn func(*outcome.Drift, error), opts ...optdrift.Option) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d, err := Check(ctx, s, opts...)
		fn(d, err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
