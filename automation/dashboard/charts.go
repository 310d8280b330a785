package dashboard

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/releases"
)

// commitTime is the commit time of a release (zero when unknown).
func commitTime(r releases.Record) time.Time { return r.CommitTime }

// chart is a small SVG chart, laid out here and drawn by the template:
// bars and/or a line over days, with axes and labels.
type chart struct {
	Title, Unit string
	W, H        int
	// The plot area.
	Left, Top, Right, Bottom float64
	Bars                     []bar
	Line                     string // polyline points
	Dots                     []dot
	YTicks, XTicks           []tick
	Empty                    bool
	Legend                   []legend
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type dot struct {
	X, Y  float64
	Title string
}

type tick struct {
	Pos   float64
	Label string
}

type legend struct{ Class, Label string }

// Chart geometry (SVG user units; the SVG scales to its box).
const (
	chartW, chartH    = 420, 170
	padLeft, padRight = 40, 10
	padTop, padBottom = 12, 26
	countAxisMin      = 1
	dayLayout         = "Jan 2"
	dateLayout        = "2006-01-02"
)

// charts lays out an environment's DORA charts: deployments per day
// (successful and failed), the median lead time per day, and failures.
func charts(r dora.Report) []chart {
	ds := r.Days
	deploys := newChart("Deployments per day", "deployments")
	failures := newChart("Failed deployments and rollbacks per day", "failures")
	lead := newChart("Lead time for changes (daily median)", "")
	var maxN, maxF int
	var maxLead time.Duration
	for _, d := range ds {
		maxN = max(maxN, d.Deployments)
		maxF = max(maxF, d.Failures)
		maxLead = max(maxLead, d.LeadTimeMedian)
	}
	// The lead time axis is in minutes, hours or days, whichever reads best.
	unit, per := "hours", time.Hour
	switch {
	case maxLead < time.Hour:
		unit, per = "minutes", time.Minute
	case maxLead > 72*time.Hour:
		unit, per = "days", 24*time.Hour
	}
	lead.Unit = unit
	leadIn := func(d time.Duration) float64 { return float64(d) / float64(per) }
	yN := niceMax(float64(max(maxN, countAxisMin)))
	yF := niceMax(float64(max(maxF, countAxisMin)))
	yL := niceMax(math.Max(leadIn(maxLead), 1))
	deploys.yAxis(yN, "%.0f", true)
	failures.yAxis(yF, "%.0f", true)
	lead.yAxis(yL, "%.1f", false)
	slot := (deploys.Right - deploys.Left) / float64(max(len(ds), 1))
	var pts []string
	for i, d := range ds {
		x := deploys.Left + float64(i)*slot
		date := d.Date.UTC().Format(dateLayout)
		if d.Deployments > 0 {
			good := d.Deployments - min(d.Failures, d.Deployments)
			h := deploys.scale(float64(d.Deployments), yN)
			deploys.Bars = append(deploys.Bars, bar{X: x + slot*0.15, Y: deploys.Bottom - h, W: slot * 0.7, H: h, Class: "ok",
				Title: fmt.Sprintf("%s: %d deployments, %d failed", date, d.Deployments, d.Failures)})
			if bad := d.Deployments - good; bad > 0 {
				hb := deploys.scale(float64(bad), yN)
				deploys.Bars = append(deploys.Bars, bar{X: x + slot*0.15, Y: deploys.Bottom - hb, W: slot * 0.7, H: hb, Class: "bad",
					Title: fmt.Sprintf("%s: %d failed", date, bad)})
			}
		}
		if d.Failures > 0 {
			h := failures.scale(float64(d.Failures), yF)
			failures.Bars = append(failures.Bars, bar{X: x + slot*0.15, Y: failures.Bottom - h, W: slot * 0.7, H: h, Class: "bad",
				Title: fmt.Sprintf("%s: %d failures", date, d.Failures)})
		}
		if d.LeadTimeMedian > 0 {
			cx, cy := x+slot/2, lead.Bottom-lead.scale(leadIn(d.LeadTimeMedian), yL)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", cx, cy))
			lead.Dots = append(lead.Dots, dot{X: cx, Y: cy, Title: fmt.Sprintf("%s: median lead time %s", date, fmtDur(d.LeadTimeMedian))})
		}
	}
	lead.Line = strings.Join(pts, " ")
	deploys.Empty, failures.Empty, lead.Empty = maxN == 0, maxF == 0, len(pts) == 0
	deploys.Legend = []legend{{"ok", "succeeded"}, {"bad", "failed"}}
	for _, c := range []*chart{&deploys, &failures, &lead} {
		c.xAxis(ds, slot)
	}
	return []chart{deploys, lead, failures}
}

func newChart(title, unit string) chart {
	return chart{Title: title, Unit: unit, W: chartW, H: chartH,
		Left: padLeft, Top: padTop, Right: chartW - padRight, Bottom: chartH - padBottom}
}

// MidX is the plot area's horizontal centre.
func (c chart) MidX() float64 { return (c.Left + c.Right) / 2 }

// MidY is the plot area's vertical centre.
func (c chart) MidY() float64 { return (c.Top + c.Bottom) / 2 }

// scale converts a value to a height in the plot area.
func (c *chart) scale(v, top float64) float64 {
	return v / top * (c.Bottom - c.Top)
}

// yAxis adds ticks at 0, top/2 and top (no half tick on a count axis
// whose half is not a whole number).
func (c *chart) yAxis(top float64, format string, counts bool) {
	for _, f := range []float64{0, 0.5, 1} {
		if counts && f == 0.5 && math.Mod(top, 2) != 0 {
			continue
		}
		c.YTicks = append(c.YTicks, tick{Pos: c.Bottom - f*(c.Bottom-c.Top), Label: fmt.Sprintf(format, f*top)})
	}
}

// xAxis labels about five days, the first and the last among them.
func (c *chart) xAxis(ds []dora.Day, slot float64) {
	if len(ds) == 0 {
		return
	}
	step := max(1, (len(ds)+4)/5)
	for i := 0; i < len(ds); i += step {
		c.XTicks = append(c.XTicks, tick{Pos: c.Left + float64(i)*slot + slot/2, Label: ds[i].Date.UTC().Format(dayLayout)})
	}
}

// niceMax rounds an axis maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
