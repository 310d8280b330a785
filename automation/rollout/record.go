package rollout

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/mask"
)

// Analysis returns the check's detail as an analysis result (the detail
// of an AnalysisGate), whether it holds the value itself or its JSON as
// read back from a record; ok is false for any other detail.
func (c Check) Analysis() (res analysis.Result, ok bool) {
	switch d := c.Detail.(type) {
	case analysis.Result:
		return d, true
	case *analysis.Result:
		if d != nil {
			return *d, true
		}
		return res, false
	case nil:
		return res, false
	}
	b, err := json.Marshal(c.Detail)
	if err != nil {
		return res, false
	}
	var probe struct {
		Metric       *string          `json:"metric"`
		Measurements *json.RawMessage `json:"measurements"`
	}
	if json.Unmarshal(b, &probe) != nil || probe.Metric == nil || probe.Measurements == nil {
		return res, false
	}
	return res, json.Unmarshal(b, &res) == nil
}

// StepKind is the kind of the step described by plan (a State.Plan
// entry): "weight", "pause" or "analysis".
func StepKind(plan string) string {
	kind, _, _ := strings.Cut(plan, " ")
	return kind
}

// StepStatus says where a step of a rollout stands.
type StepStatus string

// Where a step stands: not reached, passed, failed (the rollout aborted at
// it), paused at it, or being run.
const (
	StepPending StepStatus = "pending"
	StepPassed  StepStatus = "passed"
	StepFailed  StepStatus = "failed"
	StepPaused  StepStatus = "paused"
	StepRunning StepStatus = "running"
)

// StepStatus says where step i of s stands.
func (s State) StepStatus(i int) StepStatus {
	switch {
	case i < s.Step:
		return StepPassed
	case i == s.Step && s.Phase == Aborted:
		return StepFailed
	case i == s.Step && s.Phase == Paused:
		return StepPaused
	case i == s.Step && s.Phase == Progressing:
		return StepRunning
	}
	return StepPending
}

// Masked returns a copy of s whose texts — its cause, each check's error
// and detail (an analysis's message and measurement errors) — are masked
// by m, for run records, reports, spans and notifications. A detail that
// is not an analysis result is kept as its masked JSON.
func (s State) Masked(m *mask.Masker) State {
	s.Plan = slices.Clone(s.Plan)
	for i := range s.Plan {
		s.Plan[i] = m.String(s.Plan[i])
	}
	s.Name, s.Version, s.Cause = m.String(s.Name), m.String(s.Version), m.String(s.Cause)
	s.Checks = slices.Clone(s.Checks)
	for i := range s.Checks {
		s.Checks[i] = s.Checks[i].Masked(m)
	}
	return s
}

// Masked returns a copy of c with its texts masked by m (see
// State.Masked).
func (c Check) Masked(m *mask.Masker) Check {
	c.Gate, c.Error = m.String(c.Gate), m.String(c.Error)
	if res, ok := c.Analysis(); ok {
		res.Metric, res.Provider, res.Condition, res.Message = m.String(res.Metric), m.String(res.Provider), m.String(res.Condition), m.String(res.Message)
		res.Measurements = slices.Clone(res.Measurements)
		for j := range res.Measurements {
			res.Measurements[j].Error = m.String(res.Measurements[j].Error)
		}
		c.Detail = res
		return c
	}
	if c.Detail != nil {
		b, err := json.Marshal(c.Detail)
		if err != nil {
			c.Detail = nil
			return c
		}
		if masked := m.String(string(b)); json.Valid([]byte(masked)) {
			c.Detail = json.RawMessage(masked)
		} else {
			c.Detail = mask.Text
		}
	}
	return c
}
