package dashboard_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/automation/runs"
)

// TestDashboard_RolloutShowsStepsAndEveryMeasurement: an environment
// whose last rollout aborted shows its steps with their status, the
// cause, and each measurement (time to the second, value, verdict,
// masked error); its version only as a hash; a deploy's gate checks show
// the same way.
func TestDashboard_RolloutShowsStepsAndEveryMeasurement(t *testing.T) {
	f := newFixture(t, nil)
	t0 := now.Add(-time.Hour)
	low, high := 0.012, 0.41
	version := `{"image":"web:2.0.0","token":"` + fakeSecret + `"}`
	run(t, f.st, "canary", "rollout", runs.Failed, 50*time.Minute, func(r *runs.Record) {
		r.Error = "rollout aborted: step 3: analysis error-rate failed"
		r.Rollout = &rollout.State{Name: "shop/canary", Version: version, Phase: rollout.Aborted, Step: 3,
			Plan:  []string{"weight 10", "analysis error-rate", "weight 50", "analysis error-rate", "weight 100"},
			Cause: "step 3: analysis error-rate failed",
			Checks: []rollout.Check{
				{Step: 1, Gate: "error-rate", Verdict: rollout.Successful, At: t0.Add(time.Minute), Detail: analysis.Result{Metric: "error-rate",
					Measurements: []analysis.Measurement{{Time: t0, Value: &low, Phase: analysis.PhaseSuccessful}, {Time: t0.Add(30 * time.Second), Value: &low, Phase: analysis.PhaseSuccessful}}}},
				{Step: 3, Gate: "error-rate", Verdict: rollout.Failed, At: t0.Add(3 * time.Minute), Detail: analysis.Result{Metric: "error-rate",
					Measurements: []analysis.Measurement{
						{Time: t0.Add(2 * time.Minute), Phase: analysis.PhaseError, Error: "401: token [secret]"},
						{Time: t0.Add(2*time.Minute + 15*time.Second), Value: &high, Phase: analysis.PhaseFailed}}}},
			}}
	})
	page := f.get(t, "/env/shop/canary")
	assert.NotContains(t, page, fakeSecret)
	assert.NotContains(t, page, "web:2.0.0", "the version only as a hash")
	panel := section(t, page, "rollout")
	sum := sha256.Sum256([]byte(version))
	assert.Contains(t, panel, hex.EncodeToString(sum[:])[:12])
	body := strings.Join(tableRows(panel), "\n")
	for _, want := range []string{
		"0 weight 10 passed", "1 analysis error-rate passed", "3 analysis error-rate failed", "4 weight 100 pending",
		"1 error-rate 2031-03-14 11:00:30 UTC 0.012 successful",
		"3 error-rate 2031-03-14 11:02:00 UTC — error 401: token [secret]",
		"3 error-rate 2031-03-14 11:02:15 UTC 0.41 failed",
	} {
		assert.Contains(t, body, want)
	}
	assert.Contains(t, text(panel), "step 3: analysis error-rate failed", "the cause")

	// A deploy's gates.
	run(t, f.st, "gated", "deploy", runs.Failed, 10*time.Minute, func(r *runs.Record) {
		r.Checks = []rollout.Check{{Gate: "smoke", Verdict: rollout.Failed, At: t0, Detail: analysis.Result{Metric: "smoke",
			Measurements: []analysis.Measurement{{Time: t0, Value: &high, Phase: analysis.PhaseFailed}}}}}
	})
	gated := section(t, f.get(t, "/env/shop/gated"), "rollout")
	assert.Contains(t, text(gated), "Release gates")
	assert.Contains(t, strings.Join(tableRows(gated), "\n"), "0 smoke 2031-03-14 11:00:00 UTC 0.41 failed")

	// No rollout: no panel.
	assert.NotContains(t, f.get(t, "/env/shop/dev"), `id="rollout"`)
}

// tableRows returns the text of each table row of a page.
func tableRows(page string) []string {
	var out []string
	for _, tr := range strings.Split(page, "<tr>")[1:] {
		tr, _, _ = strings.Cut(tr, "</tr>")
		out = append(out, text(tr))
	}
	return out
}
