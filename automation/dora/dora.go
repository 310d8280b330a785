// Package dora computes the four DORA delivery metrics of an environment
// from its release history (package releases): deployment frequency, lead
// time for changes, change failure rate and time to restore. Reports render
// as text, Markdown and JSON, and NewCollector exports them as Prometheus
// gauges computed at scrape time.
//
// The definitions, over a window [since, until):
//
//   - A deployment is a release record of a deploy attempt recorded in the
//     window: status Applied, Verified, Failed or RolledBack. Restored
//     records are rollbacks, not deployments, and neither is the Failed
//     record of a rollback that failed (its Cause starts with "rollback:").
//   - Deployment frequency is the number of deployments divided by the
//     window's length in days.
//   - Lead time for changes is, for each successful deployment (Applied,
//     Verified, or RolledBack: it did deploy) whose up named a commit time
//     (optup.CommitTime), the time from the commit to the release's
//     Recorded time. Deployments without a commit time are not counted;
//     nor is a commit time after the deployment (a clock mistake).
//   - Change failure rate is (Failed + RolledBack deployments) /
//     deployments: failed deploys and rollbacks over deploys. Each failed
//     change counts once, even when Deploy's automatic rollback also wrote
//     a Restored record after it. No deployments: 0.
//   - Time to restore is, for each failure (a Failed or RolledBack
//     deployment in the window), the time from its Recorded time (for a
//     RolledBack release, the time it was deployed) to the next good record
//     (Applied, Verified or Restored) of the same stack, whenever that came.
//     Failures with no later good record are Open.
//
// Lead time and time to restore are summarised by Stat: the median (the
// mean of the two middle values for an even count), the mean and the 90th
// percentile (nearest rank: the ⌈0.9·n⌉-th smallest).
package dora

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/releases"
)

// Day is one calendar day (UTC) of a report, for charts.
type Day struct {
	// Date is the day's start, midnight UTC.
	Date time.Time
	// Deployments and Failures count the day's deployments and failed ones.
	Deployments, Failures int
	// LeadTimeMedian is the median lead time of the day's successful
	// deployments with a commit time (0 when there are none).
	LeadTimeMedian time.Duration
}

// Stat summarises durations.
type Stat struct {
	// N is the number of durations.
	N int
	// Median, Mean and P90 (nearest rank) are 0 when N is 0.
	Median, Mean, P90 time.Duration
}

// Report is the DORA metrics of one environment over [Since, Until).
type Report struct {
	// Project and Environment (the stack) are those of the records; the
	// caller sets them when the history is empty.
	Project, Environment string
	Since, Until         time.Time
	// Deployments counts deploy attempts; Failures those that failed or
	// were rolled back; Restores the failures restored since, Open those
	// not restored (Failures = Restores + Open).
	Deployments, Failures, Restores, Open int
	// DeploymentsPerDay is Deployments over the window's length in days.
	DeploymentsPerDay float64
	// LeadTime is commit to successful deployment.
	LeadTime Stat
	// ChangeFailureRate is Failures / Deployments (0 without deployments).
	ChangeFailureRate float64
	// TimeToRestore is failure to the next good release.
	TimeToRestore Stat
	// Days are the window's calendar days (UTC), oldest first.
	Days []Day
}

// rollbackCause prefixes the Cause of the Failed record a failed rollback
// writes (automation.Engine.Rollback).
const rollbackCause = "rollback:"

// deployment reports whether r records a deploy attempt.
func deployment(r releases.Record) bool {
	switch r.Status {
	case releases.Applied, releases.Verified, releases.RolledBack:
		return true
	case releases.Failed:
		return !strings.HasPrefix(r.Cause, rollbackCause)
	}
	return false
}

// failure reports whether a deployment failed or was rolled back.
func failure(r releases.Record) bool {
	return r.Status == releases.Failed || r.Status == releases.RolledBack
}

// good reports whether r restores service: the stack runs a good release.
func good(r releases.Record) bool {
	return r.Status == releases.Applied || r.Status == releases.Verified || r.Status == releases.Restored
}

// Compute computes the DORA metrics of a release history (one stack's, as
// releases.List returns it; records of several stacks are kept apart when
// looking for restores) over [since, until).
func Compute(recs []releases.Record, since, until time.Time) Report {
	since, until = since.UTC(), until.UTC()
	rs := slices.Clone(recs)
	slices.SortStableFunc(rs, func(a, b releases.Record) int { return a.Recorded.Compare(b.Recorded) })
	r := Report{Since: since, Until: until}
	if len(rs) > 0 {
		r.Project, r.Environment = rs[0].Project, rs[0].Stack
	}
	first := day(since)
	for d := first; d.Before(until); d = d.AddDate(0, 0, 1) {
		r.Days = append(r.Days, Day{Date: d})
	}
	var leads, restores []time.Duration
	dayLeads := make([][]time.Duration, len(r.Days))
	for i, rec := range rs {
		if !deployment(rec) || rec.Recorded.Before(since) || !rec.Recorded.Before(until) {
			continue
		}
		di := int(day(rec.Recorded).Sub(first) / (24 * time.Hour))
		r.Deployments++
		r.Days[di].Deployments++
		if failure(rec) {
			r.Failures++
			r.Days[di].Failures++
			if at, ok := restoredAt(rs, i); ok {
				r.Restores++
				restores = append(restores, at.Sub(rec.Recorded))
			} else {
				r.Open++
			}
		}
		if rec.Status != releases.Failed && !rec.CommitTime.IsZero() {
			if lt := rec.Recorded.Sub(rec.CommitTime); lt >= 0 {
				leads = append(leads, lt)
				dayLeads[di] = append(dayLeads[di], lt)
			}
		}
	}
	if days := until.Sub(since).Hours() / 24; days > 0 {
		r.DeploymentsPerDay = float64(r.Deployments) / days
	}
	if r.Deployments > 0 {
		r.ChangeFailureRate = float64(r.Failures) / float64(r.Deployments)
	}
	r.LeadTime, r.TimeToRestore = stat(leads), stat(restores)
	for i, ls := range dayLeads {
		r.Days[i].LeadTimeMedian = stat(ls).Median
	}
	return r
}

// restoredAt returns the time of the first good record of rs[i]'s stack
// after rs[i] (rs sorted by Recorded).
func restoredAt(rs []releases.Record, i int) (time.Time, bool) {
	f := rs[i]
	for _, r := range rs[i+1:] {
		if r.Project == f.Project && r.Stack == f.Stack && r.Recorded.After(f.Recorded) && good(r) {
			return r.Recorded, true
		}
	}
	return time.Time{}, false
}

// day returns the start (midnight UTC) of t's day.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// stat summarises ds.
func stat(ds []time.Duration) Stat {
	n := len(ds)
	if n == 0 {
		return Stat{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	p90 := s[int(math.Ceil(0.9*float64(n)))-1]
	return Stat{N: n, Median: med, Mean: sum / time.Duration(n), P90: p90}
}
