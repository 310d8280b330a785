package dora

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// MarshalJSON encodes the report with camelCase keys; durations are in
// seconds (see Stat and Day).
func (r Report) MarshalJSON() ([]byte, error) {
	days := r.Days
	if days == nil {
		days = []Day{}
	}
	return json.Marshal(reportJSON{Project: r.Project, Environment: r.Environment, Since: r.Since, Until: r.Until,
		Deployments: r.Deployments, Failures: r.Failures, Restores: r.Restores, Open: r.Open,
		DeploymentsPerDay: r.DeploymentsPerDay, LeadTime: r.LeadTime, ChangeFailureRate: r.ChangeFailureRate,
		TimeToRestore: r.TimeToRestore, Days: days})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (r *Report) UnmarshalJSON(b []byte) error {
	var j reportJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Report{Project: j.Project, Environment: j.Environment, Since: j.Since, Until: j.Until,
		Deployments: j.Deployments, Failures: j.Failures, Restores: j.Restores, Open: j.Open,
		DeploymentsPerDay: j.DeploymentsPerDay, LeadTime: j.LeadTime, ChangeFailureRate: j.ChangeFailureRate,
		TimeToRestore: j.TimeToRestore, Days: j.Days}
	return nil
}

// reportJSON is Report on the wire.
type reportJSON struct {
	Project           string    `json:"project"`
	Environment       string    `json:"environment"`
	Since             time.Time `json:"since"`
	Until             time.Time `json:"until"`
	Deployments       int       `json:"deployments"`
	Failures          int       `json:"failures"`
	Restores          int       `json:"restores"`
	Open              int       `json:"open"`
	DeploymentsPerDay float64   `json:"deploymentsPerDay"`
	LeadTime          Stat      `json:"leadTime"`
	ChangeFailureRate float64   `json:"changeFailureRate"`
	TimeToRestore     Stat      `json:"timeToRestore"`
	Days              []Day     `json:"days"`
}

// statJSON is Stat on the wire.
type statJSON struct {
	N             int     `json:"n"`
	MedianSeconds float64 `json:"medianSeconds"`
	MeanSeconds   float64 `json:"meanSeconds"`
	P90Seconds    float64 `json:"p90Seconds"`
}

// MarshalJSON encodes the durations in seconds.
func (s Stat) MarshalJSON() ([]byte, error) {
	return json.Marshal(statJSON{N: s.N, MedianSeconds: s.Median.Seconds(), MeanSeconds: s.Mean.Seconds(), P90Seconds: s.P90.Seconds()})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (s *Stat) UnmarshalJSON(b []byte) error {
	var j statJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Stat{N: j.N, Median: seconds(j.MedianSeconds), Mean: seconds(j.MeanSeconds), P90: seconds(j.P90Seconds)}
	return nil
}

// dayJSON is Day on the wire.
type dayJSON struct {
	Date                  time.Time `json:"date"`
	Deployments           int       `json:"deployments"`
	Failures              int       `json:"failures"`
	LeadTimeMedianSeconds float64   `json:"leadTimeMedianSeconds"`
}

// MarshalJSON encodes the lead time in seconds.
func (d Day) MarshalJSON() ([]byte, error) {
	return json.Marshal(dayJSON{Date: d.Date, Deployments: d.Deployments, Failures: d.Failures, LeadTimeMedianSeconds: d.LeadTimeMedian.Seconds()})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (d *Day) UnmarshalJSON(b []byte) error {
	var j dayJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*d = Day{Date: j.Date, Deployments: j.Deployments, Failures: j.Failures, LeadTimeMedian: seconds(j.LeadTimeMedianSeconds)}
	return nil
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// Name is "project/environment".
func (r Report) Name() string {
	if r.Project == "" {
		return r.Environment
	}
	return r.Project + "/" + r.Environment
}

// window describes [Since, Until).
func (r Report) window() string {
	return fmt.Sprintf("%s to %s (%s)", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), Human(r.Until.Sub(r.Since)))
}

// WriteText writes the report for a terminal.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "DORA metrics of %s, %s\n", r.Name(), r.window())
	fmt.Fprintf(&b, "  deployment frequency   %.2f per day (%d deployments)\n", r.DeploymentsPerDay, r.Deployments)
	fmt.Fprintf(&b, "  lead time for changes  %s\n", statText(r.LeadTime, "deployments with a commit time"))
	fmt.Fprintf(&b, "  change failure rate    %s (%d of %d deployments failed or were rolled back)\n", percent(r.ChangeFailureRate), r.Failures, r.Deployments)
	fmt.Fprintf(&b, "  time to restore        %s, %d open\n", statText(r.TimeToRestore, "restored"), r.Open)
	if active := r.active(); len(active) > 0 {
		fmt.Fprintf(&b, "  %-10s  %11s  %8s  %s\n", "day", "deployments", "failures", "lead time (median)")
		for _, d := range active {
			fmt.Fprintf(&b, "  %-10s  %11d  %8d  %s\n", d.Date.Format(time.DateOnly), d.Deployments, d.Failures, optional(d.LeadTimeMedian))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes the report as GitHub-flavoured Markdown (a job
// summary or a pull-request comment).
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### DORA metrics: %s\n\n%s\n\n", r.Name(), r.window())
	b.WriteString("| Metric | Value |\n|---|---|\n")
	fmt.Fprintf(&b, "| Deployment frequency | %.2f per day (%d deployments) |\n", r.DeploymentsPerDay, r.Deployments)
	fmt.Fprintf(&b, "| Lead time for changes | %s |\n", statText(r.LeadTime, "deployments with a commit time"))
	fmt.Fprintf(&b, "| Change failure rate | %s (%d of %d) |\n", percent(r.ChangeFailureRate), r.Failures, r.Deployments)
	fmt.Fprintf(&b, "| Time to restore | %s, %d open |\n", statText(r.TimeToRestore, "restored"), r.Open)
	if active := r.active(); len(active) > 0 {
		b.WriteString("\n| Day | Deployments | Failures | Lead time (median) |\n|---|---:|---:|---:|\n")
		for _, d := range active {
			fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", d.Date.Format(time.DateOnly), d.Deployments, d.Failures, optional(d.LeadTimeMedian))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// active returns the days with a deployment.
func (r Report) active() []Day {
	var out []Day
	for _, d := range r.Days {
		if d.Deployments > 0 {
			out = append(out, d)
		}
	}
	return out
}

func statText(s Stat, of string) string {
	if s.N == 0 {
		return "n/a (0 " + of + ")"
	}
	return fmt.Sprintf("median %s, mean %s, p90 %s (%d %s)", Human(s.Median), Human(s.Mean), Human(s.P90), s.N, of)
}

func optional(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return Human(d)
}

func percent(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// Human renders d in its two largest units, rounded to the second:
// 3d4h, 2h30m, 5m10s, 45s.
func Human(d time.Duration) string {
	d = d.Round(time.Second)
	if d <= 0 {
		return "0s"
	}
	units := []struct {
		n    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	var parts []string
	for _, u := range units {
		if len(parts) == 2 {
			break
		}
		if q := d / u.n; q > 0 || len(parts) == 1 {
			if q > 0 {
				parts = append(parts, fmt.Sprintf("%d%s", q, u.name))
			} else {
				parts = append(parts, "")
			}
			d -= q * u.n
		}
	}
	return strings.Join(parts, "")
}
