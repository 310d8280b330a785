package outcome

import (
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
	Duration time.Duration `json:"-"`
	// Refresh is the refresh preview the check compared with.
	Refresh *Result `json:"-"`
	// Summary counts the refresh preview's resources per operation.
	Summary map[string]int `json:"summary"`
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
