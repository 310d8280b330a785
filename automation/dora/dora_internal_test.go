package dora

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/releases"
)

// at is 2026-03-<d> hh:mm UTC.
func at(d, hh, mm int) time.Time { return time.Date(2026, 3, d, hh, mm, 0, 0, time.UTC) }

func rec(when time.Time, status, version string, commit time.Time) releases.Record {
	return releases.Record{ID: when.Format(time.RFC3339), Project: "web", Stack: "prod", Version: version, Status: status, Recorded: when, CommitTime: commit}
}

// history is a scripted release history of web/prod:
//
//	#   recorded        status       version  commit          note
//	0   02-28 12:00     applied      v0       02-28 10:00     before the window
//	1   03-01 10:00     applied      v1       03-01 09:00     lead 1h
//	2   03-02 09:00     verified     v2       03-01 21:00     lead 12h
//	3   03-02 15:00     failed       v3       03-02 14:00     failure; lead not counted
//	4   03-02 15:05     restored     v2       -               Deploy's automatic rollback: restores #3 after 5m
//	5   03-03 11:00     verified     v4       03-03 10:30     the fix; lead 30m
//	6   03-05 08:00     rolled-back  v5       03-04 20:00     deployed (lead 12h), later rolled back: failure
//	7   03-05 10:00     restored     v4       -               the rollback: restores #6 after 2h
//	8   03-06 12:00     applied      v6       -               no commit time: no lead time
//	9   03-07 09:00     failed       v7       03-07 08:00     failure, never restored: open
//	10  03-07 09:30     failed       v4       -               a failed rollback: not a deployment
//	11  03-11 06:00     failed       v8       03-11 05:00     after the window
func history() []releases.Record {
	h := []releases.Record{
		rec(time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC), releases.Applied, "v0", time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC)),
		rec(at(1, 10, 0), releases.Applied, "v1", at(1, 9, 0)),
		rec(at(2, 9, 0), releases.Verified, "v2", at(1, 21, 0)),
		rec(at(2, 15, 0), releases.Failed, "v3", at(2, 14, 0)),
		rec(at(2, 15, 5), releases.Restored, "v2", time.Time{}),
		rec(at(3, 11, 0), releases.Verified, "v4", at(3, 10, 30)),
		rec(at(5, 8, 0), releases.RolledBack, "v5", at(4, 20, 0)),
		rec(at(5, 10, 0), releases.Restored, "v4", time.Time{}),
		rec(at(6, 12, 0), releases.Applied, "v6", time.Time{}),
		rec(at(7, 9, 0), releases.Failed, "v7", at(7, 8, 0)),
		rec(at(7, 9, 30), releases.Failed, "v4", time.Time{}),
		rec(at(11, 6, 0), releases.Failed, "v8", at(11, 5, 0)),
	}
	h[10].Cause = "rollback: the engine failed"
	return h
}

// TestCompute_ScriptedHistory checks every figure against hand-computed
// values over 2026-03-01 .. 2026-03-11 (10 days).
func TestCompute_ScriptedHistory(t *testing.T) {
	h := history()
	// The order of the input does not matter.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] })
	r := Compute(h, at(1, 0, 0), at(11, 0, 0))

	assert.Equal(t, "web", r.Project)
	assert.Equal(t, "prod", r.Environment)
	// Deployments in the window: #1 #2 #3 #5 #6 #8 #9 = 7 (#4 #7 restores,
	// #10 a failed rollback, #0 and #11 outside).
	assert.Equal(t, 7, r.Deployments)
	// 7 deployments / 10 days = 0.7.
	assert.InDelta(t, 0.7, r.DeploymentsPerDay, 1e-12)
	// Failures: #3 (failed), #6 (rolled back), #9 (failed) = 3; 3/7.
	assert.Equal(t, 3, r.Failures)
	assert.InDelta(t, 3.0/7.0, r.ChangeFailureRate, 1e-12)
	// Restored: #3 by #4 (5m), #6 by #7 (2h); #9 open.
	assert.Equal(t, 2, r.Restores)
	assert.Equal(t, 1, r.Open)
	// Time to restore: [5m, 2h]: median = mean = (5m+120m)/2 = 62m30s;
	// p90 = the ⌈0.9·2⌉ = 2nd smallest = 2h.
	assert.Equal(t, Stat{N: 2, Median: 62*time.Minute + 30*time.Second, Mean: 62*time.Minute + 30*time.Second, P90: 2 * time.Hour}, r.TimeToRestore)
	// Lead times: #1 1h, #2 12h, #5 30m, #6 12h (rolled back, but it did
	// deploy); #8 has no commit time, #3 and #9 failed. Sorted
	// [30m, 1h, 12h, 12h]: median (1h+12h)/2 = 6h30m; mean 25.5h/4 =
	// 6h22m30s; p90 the ⌈0.9·4⌉ = 4th = 12h.
	assert.Equal(t, Stat{N: 4, Median: 6*time.Hour + 30*time.Minute, Mean: 6*time.Hour + 22*time.Minute + 30*time.Second, P90: 12 * time.Hour}, r.LeadTime)

	want := []Day{
		{Date: at(1, 0, 0), Deployments: 1, LeadTimeMedian: time.Hour},                   // #1
		{Date: at(2, 0, 0), Deployments: 2, Failures: 1, LeadTimeMedian: 12 * time.Hour}, // #2, #3 (failed: no lead)
		{Date: at(3, 0, 0), Deployments: 1, LeadTimeMedian: 30 * time.Minute},            // #5
		{Date: at(4, 0, 0)},
		{Date: at(5, 0, 0), Deployments: 1, Failures: 1, LeadTimeMedian: 12 * time.Hour}, // #6
		{Date: at(6, 0, 0), Deployments: 1},                                              // #8, no commit time
		{Date: at(7, 0, 0), Deployments: 1, Failures: 1},                                 // #9
		{Date: at(8, 0, 0)}, {Date: at(9, 0, 0)}, {Date: at(10, 0, 0)},
	}
	assert.Equal(t, want, r.Days)
}

func TestCompute_EmptyHistory(t *testing.T) {
	r := Compute(nil, at(1, 0, 0), at(8, 0, 0))
	assert.Equal(t, 0, r.Deployments)
	assert.Zero(t, r.DeploymentsPerDay)
	assert.Zero(t, r.ChangeFailureRate, "no division by zero")
	assert.Equal(t, Stat{}, r.LeadTime)
	assert.Equal(t, Stat{}, r.TimeToRestore)
	assert.Len(t, r.Days, 7)
	// An empty window as well.
	r = Compute(history(), at(1, 0, 0), at(1, 0, 0))
	assert.Zero(t, r.Deployments)
	assert.Zero(t, r.DeploymentsPerDay)
	assert.Empty(t, r.Days)
}

// TestCompute_WindowFiltering: only 2026-03-02 (one day).
func TestCompute_WindowFiltering(t *testing.T) {
	r := Compute(history(), at(2, 0, 0), at(3, 0, 0))
	// #2 and #3.
	assert.Equal(t, 2, r.Deployments)
	assert.InDelta(t, 2.0, r.DeploymentsPerDay, 1e-12)
	assert.Equal(t, 1, r.Failures)
	assert.InDelta(t, 0.5, r.ChangeFailureRate, 1e-12)
	// #3 restored by #4 after 5m.
	assert.Equal(t, Stat{N: 1, Median: 5 * time.Minute, Mean: 5 * time.Minute, P90: 5 * time.Minute}, r.TimeToRestore)
	assert.Equal(t, 0, r.Open)
	// #2: 03-01 21:00 to 03-02 09:00.
	assert.Equal(t, Stat{N: 1, Median: 12 * time.Hour, Mean: 12 * time.Hour, P90: 12 * time.Hour}, r.LeadTime)
	assert.Equal(t, []Day{{Date: at(2, 0, 0), Deployments: 2, Failures: 1, LeadTimeMedian: 12 * time.Hour}}, r.Days)
	// A restore after the window still ends a failure in it: #9 (03-07)
	// is open whatever the window, #6 is restored by #7 after until.
	r = Compute(history(), at(5, 0, 0), at(5, 9, 0))
	assert.Equal(t, 1, r.Restores)
	assert.Equal(t, 2*time.Hour, r.TimeToRestore.Median)
}

func TestCompute_WithoutCommitTimes(t *testing.T) {
	h := history()
	for i := range h {
		h[i].CommitTime = time.Time{}
	}
	// And one whose commit is after its deployment (a clock mistake).
	h = append(h, rec(at(4, 12, 0), releases.Applied, "v9", at(4, 13, 0)))
	r := Compute(h, at(1, 0, 0), at(11, 0, 0))
	assert.Equal(t, 8, r.Deployments)
	assert.Equal(t, Stat{}, r.LeadTime, "no lead time without commit times")
	for _, d := range r.Days {
		assert.Zero(t, d.LeadTimeMedian, d.Date)
	}
	assert.Equal(t, 3, r.Failures, "failures do not need commit times")
}

// TestCompute_RestoresStayInTheirStack: a good release of another stack
// does not restore a failure.
func TestCompute_RestoresStayInTheirStack(t *testing.T) {
	other := rec(at(1, 11, 0), releases.Applied, "x", time.Time{})
	other.Stack = "staging"
	r := Compute([]releases.Record{rec(at(1, 10, 0), releases.Failed, "v1", time.Time{}), other}, at(1, 0, 0), at(2, 0, 0))
	assert.Equal(t, 1, r.Open)
	assert.Equal(t, 0, r.Restores)
}

func TestStat_Percentiles(t *testing.T) {
	var ds []time.Duration
	for i := 10; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Second)
	}
	// 1..10 s: median (5+6)/2 = 5.5s, mean 55/10 = 5.5s, p90 the 9th = 9s.
	assert.Equal(t, Stat{N: 10, Median: 5500 * time.Millisecond, Mean: 5500 * time.Millisecond, P90: 9 * time.Second}, stat(ds))
	require.True(t, slices.IsSortedFunc(ds, func(a, b time.Duration) int { return int(b - a) }), "stat does not sort its input")
	// 1..11 s: median the 6th = 6s, p90 the ⌈9.9⌉ = 10th = 10s.
	ds = append(ds, 11*time.Second)
	s := stat(ds)
	assert.Equal(t, 6*time.Second, s.Median)
	assert.Equal(t, 10*time.Second, s.P90)
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 5*time.Minute + 10*time.Second: "5m10s", 2 * time.Hour: "2h",
		62*time.Minute + 30*time.Second: "1h2m", 76 * time.Hour: "3d4h", 24*time.Hour + 30*time.Second: "1d",
	} {
		assert.Equal(t, want, Human(d), d.String())
	}
}
