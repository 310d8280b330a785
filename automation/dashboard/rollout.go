package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/runs"
)

// rolloutPanel is the newest run of an environment that rolled a release
// out in steps or checked a deploy's gates: its steps and every
// measurement (the run record's texts are masked when written).
type rolloutPanel struct {
	Run *runView
	// Version is the rolled-out version as a short hash, as releases show
	// theirs (it may encode the program's parameters).
	Version, Phase, Cause string
	Weight                int
	Steps                 []rolloutStep
	Measurements          []measurementRow
}

// rolloutStep is one step of the plan with its status (passed, failed,
// paused, running, pending).
type rolloutStep struct {
	Index        int
	Plan, Status string
}

// measurementRow is one measurement of a check (or the check itself when
// it took none).
type measurementRow struct {
	Step                            int
	Metric, Value, Verdict, Err, At string
}

// at renders a measurement's time to the second.
func at(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// lastRollout returns the newest run with a rollout or gate checks, or nil.
func lastRollout(recs []runs.Record) *runs.Record {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Rollout != nil || len(recs[i].Checks) > 0 {
			return &recs[i]
		}
	}
	return nil
}

// viewRollout builds the rollout panel of run r.
func viewRollout(r runs.Record) *rolloutPanel {
	rv := viewRun(r)
	p := &rolloutPanel{Run: &rv}
	checks := r.Checks
	if s := r.Rollout; s != nil {
		if s.Version != "" {
			sum := sha256.Sum256([]byte(s.Version))
			p.Version = hex.EncodeToString(sum[:])[:12]
		}
		p.Phase, p.Cause, p.Weight = strings.ToLower(string(s.Phase)), clip(s.Cause, 300), s.Weight
		for i, plan := range s.Plan {
			status := string(s.StepStatus(i))
			p.Steps = append(p.Steps, rolloutStep{Index: i, Plan: plan, Status: status})
		}
		checks = append(append([]rollout.Check(nil), s.Checks...), checks...)
	}
	for _, c := range checks {
		res, ok := c.Analysis()
		if !ok || len(res.Measurements) == 0 {
			p.Measurements = append(p.Measurements, measurementRow{Step: c.Step, Metric: c.Gate, Value: "—",
				Verdict: strings.ToLower(string(c.Verdict)), Err: clip(c.Error, 200), At: at(c.At)})
			continue
		}
		for _, m := range res.Measurements {
			row := measurementRow{Step: c.Step, Metric: c.Gate, Value: "—", Verdict: strings.ToLower(string(m.Phase)), Err: clip(m.Error, 200), At: at(m.Time)}
			if m.Value != nil {
				row.Value = fmt.Sprintf("%g", *m.Value)
			}
			p.Measurements = append(p.Measurements, row)
		}
	}
	if len(p.Measurements) > maxMeasurements {
		p.Measurements = p.Measurements[len(p.Measurements)-maxMeasurements:]
	}
	return p
}

// maxMeasurements is how many measurements the rollout panel lists (the
// newest).
const maxMeasurements = 200
