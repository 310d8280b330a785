package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/rollout"
)

// rolloutView is a rollout's record, sanitised: its steps and where it is.
type rolloutView struct {
	version, phase, cause string
	step, weight          int
	steps                 []stepView
}

type stepView struct {
	plan, status string // status: passed, failed, paused, running, pending
}

// checkView is one gate's check with every measurement, sanitised.
type checkView struct {
	step                    int
	gate, verdict, errText  string
	provider, condition     string
	message                 string
	measurements            []measurementView
	successful, failed, bad int // measurement counts (bad: inconclusive or error)
}

type measurementView struct {
	at             time.Time
	value          *float64
	verdict, error string
}

// buildRollout fills v's rollout and checks from a rollout record and a
// deploy's gate checks, masked by m.
func buildRollout(v *view, st *rollout.State, checks []rollout.Check, m *mask.Masker) {
	if st != nil {
		s := st.Masked(m)
		rv := &rolloutView{version: s.Version, phase: string(s.Phase), cause: s.Cause, step: s.Step, weight: s.Weight}
		for i, p := range s.Plan {
			status := string(s.StepStatus(i))
			rv.steps = append(rv.steps, stepView{plan: p, status: status})
		}
		v.rollout = rv
		checks = append(s.Checks, checks...)
	}
	for _, c := range checks {
		c = c.Masked(m)
		cv := checkView{step: c.Step, gate: c.Gate, verdict: string(c.Verdict), errText: c.Error}
		if res, ok := c.Analysis(); ok {
			cv.provider, cv.condition, cv.message = res.Provider, res.Condition, res.Message
			cv.successful, cv.failed, cv.bad = res.Successful, res.Failed, res.Inconclusive+res.Errors
			for _, ms := range res.Measurements {
				cv.measurements = append(cv.measurements, measurementView{at: ms.Time, value: ms.Value, verdict: string(ms.Phase), error: ms.Error})
			}
		}
		v.checks = append(v.checks, cv)
	}
}

// outcome is the rollout's part of the one-line outcome. Steps are
// numbered from 0, as the rollout's causes number them.
func (r *rolloutView) outcome() string {
	at := fmt.Sprintf("step %d", r.step)
	if r.step < len(r.steps) {
		at += " (" + r.steps[r.step].plan + ")"
	}
	switch rollout.Phase(r.phase) {
	case rollout.Promoted:
		return fmt.Sprintf("%s promoted after %s", r.version, plural(len(r.steps), "step", "steps"))
	case rollout.Aborted:
		return fmt.Sprintf("%s aborted at %s, stable restored: %s", r.version, at, firstLine(r.cause))
	case rollout.Paused:
		return fmt.Sprintf("%s paused at %s: %s", r.version, at, firstLine(r.cause))
	}
	return fmt.Sprintf("%s at %s, canary at %d %%", r.version, at, r.weight)
}

// value is a measurement's value as text.
func (m measurementView) text() string {
	if m.value == nil {
		return "—"
	}
	return fmt.Sprintf("%g", *m.value)
}

// verdictIcon marks a verdict in Markdown.
func verdictIcon(v string) string {
	switch v {
	case "Successful":
		return "✅"
	case "Failed", "Error":
		return "❌"
	case "Inconclusive":
		return "❔"
	}
	return ""
}

// rolloutMarkdown writes a rollout's steps and every measurement of its
// checks (or a deploy's gates).
func rolloutMarkdown(b *strings.Builder, v view) {
	if r := v.rollout; r != nil {
		fmt.Fprintf(b, "\n**Rollout** of %s: %s\n\n", code(r.version), md(r.phase))
		b.WriteString("| # | step | status |\n|---|---|---|\n")
		for i, s := range r.steps {
			if i == MaxRows {
				more(b, len(r.steps)-MaxRows, 3)
				break
			}
			icon := map[string]string{"passed": "✅", "failed": "❌", "paused": "⏸️", "running": "⏳", "pending": "·"}[s.status]
			fmt.Fprintf(b, "| %d | %s | %s %s |\n", i, md(s.plan), icon, md(s.status))
		}
		if r.cause != "" {
			fmt.Fprintf(b, "\n**Cause:** %s\n", md(r.cause))
		}
	}
	if len(v.checks) == 0 {
		return
	}
	b.WriteString("\n**Analysis**\n\n| step | metric | time | value | verdict | error |\n|---|---|---|---|---|---|\n")
	n := 0
	total := 0
	for _, c := range v.checks {
		total += max(1, len(c.measurements))
	}
	row := func(c checkView, at, value, verdict, errText string) bool {
		if n == MaxRows {
			return false
		}
		n++
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s %s | %s |\n", c.step, md(c.gate), at, code(value), verdictIcon(verdict), md(verdict), md(firstLine(errText)))
		return true
	}
	for _, c := range v.checks {
		if len(c.measurements) == 0 && !row(c, "", "—", c.verdict, c.errText) {
			break
		}
		for _, m := range c.measurements {
			if !row(c, m.at.UTC().Format(time.RFC3339), m.text(), m.verdict, m.error) {
				break
			}
		}
	}
	if total > MaxRows {
		more(b, total-MaxRows, 6)
	}
	b.WriteString("\n")
	for _, c := range v.checks {
		if c.message != "" || c.condition != "" {
			fmt.Fprintf(b, "- step %d %s (%s, %s): %s %s — %s\n", c.step, md(c.gate), md(c.provider), code(c.condition), verdictIcon(c.verdict), md(c.verdict), md(c.message))
		}
	}
}

// jsonRollout is a rollout in the JSON format.
type jsonRollout struct {
	Version string     `json:"version"`
	Phase   string     `json:"phase"`
	Step    int        `json:"step"`
	Weight  int        `json:"weight"`
	Cause   string     `json:"cause,omitempty"`
	Steps   []jsonStep `json:"steps"`
}

type jsonStep struct {
	Plan   string `json:"plan"`
	Status string `json:"status"`
}

// jsonCheck is a gate's check with every measurement.
type jsonCheck struct {
	Step         int               `json:"step"`
	Gate         string            `json:"gate"`
	Verdict      string            `json:"verdict"`
	Error        string            `json:"error,omitempty"`
	Provider     string            `json:"provider,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Message      string            `json:"message,omitempty"`
	Measurements []jsonMeasurement `json:"measurements,omitempty"`
}

type jsonMeasurement struct {
	Time    time.Time `json:"time"`
	Value   *float64  `json:"value,omitempty"`
	Verdict string    `json:"verdict"`
	Error   string    `json:"error,omitempty"`
}

// rolloutJSON fills e's rollout and checks from v.
func rolloutJSON(e *jsonEntry, v view) {
	if r := v.rollout; r != nil {
		jr := &jsonRollout{Version: r.version, Phase: r.phase, Step: r.step, Weight: r.weight, Cause: r.cause, Steps: []jsonStep{}}
		for _, s := range r.steps {
			jr.Steps = append(jr.Steps, jsonStep{Plan: s.plan, Status: s.status})
		}
		e.Rollout = jr
	}
	for _, c := range v.checks {
		jc := jsonCheck{Step: c.step, Gate: c.gate, Verdict: c.verdict, Error: c.errText, Provider: c.provider, Condition: c.condition, Message: c.message}
		for _, m := range c.measurements {
			jc.Measurements = append(jc.Measurements, jsonMeasurement{Time: m.at.UTC(), Value: m.value, Verdict: m.verdict, Error: m.error})
		}
		e.Checks = append(e.Checks, jc)
	}
}
