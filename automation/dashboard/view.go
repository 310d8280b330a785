package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/runs"
	"github.com/slipwayhq/slipway/policypacks"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed templates/style.css
var styleCSS string

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"dur": fmtDur,
	"pct": func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
}).ParseFS(templateFS, "templates/*.html"))

// render writes a page; a template error is a 500 (the page is rendered
// into a buffer first, so nothing half-written goes out).
func (s *server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.ErrorContext(r.Context(), "dashboard: rendering", "page", name, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// Status of an environment as its badge shows it.
const (
	statusHealthy = "healthy"
	statusFailed  = "failed"
	statusBlocked = "blocked"
	statusDrifted = "drifted"
	statusUnknown = "unknown"
)

// runView is one run as the pages show it.
type runView struct {
	ID, Operation, Result, Trace, Error, Revision string
	Started                                       time.Time
	Duration                                      string
	Changes                                       int
	Summary                                       string
}

// releaseView is one release as the pages show it: the Version only as a
// short hash (it encodes the program's parameters).
type releaseView struct {
	ID, Status, Version, Revision, Cause string
	Recorded, CommitTime                 time.Time
}

// doraView are an environment's DORA figures, rendered.
type doraView struct {
	Deployments, Failures, Restores             int
	PerDay, LeadTime, LeadTimeP90, CFR, Restore string
}

// row is one environment in the index table.
type row struct {
	Project, Stack, URL string
	Status              string
	Last                *runView
	Drift               int
	DriftKnown          bool
	Findings, Blocking  int
	Release             *releaseView
	DORA                doraView
}

// totals sum the index rows.
type totals struct {
	Environments, Healthy, Failing, Drifted, Deployments int
}

func (t *totals) add(r row) {
	t.Environments++
	t.Deployments += r.DORA.Deployments
	switch r.Status {
	case statusHealthy:
		t.Healthy++
	case statusFailed, statusBlocked:
		t.Failing++
	case statusDrifted:
		t.Drifted++
	}
}

type indexPage struct {
	Page   page
	Rows   []row
	Totals totals
}

// finding is a policy finding as the pages show it.
type finding struct {
	Pack, Policy, Enforcement, Severity, Resource, Type, Message string
	Blocking                                                     bool
}

// drifted is a drifted resource: its properties are paths, never values.
type drifted struct {
	Resource, Type string
	Properties     []string
}

type envPage struct {
	Page         page
	Row          row
	Runs         []runView
	Drift        []drifted
	DriftChecked time.Time
	Findings     []finding
	FindingsRun  *runView
	Releases     []releaseView
	DORA         doraView
	Charts       []chart
	Rollout      *rolloutPanel
}

// policyOps are the operations whose runs evaluate policies.
var policyOps = []string{"preview", "up", "deploy", "promote", "rollout", "rollback", "ephemeral-create"}

// lastDrift returns the newest drift check, or nil.
func lastDrift(recs []runs.Record) *runs.Record {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Operation == "drift" {
			return &recs[i]
		}
	}
	return nil
}

// lastPolicy returns the newest run that evaluated policies and reported
// findings, unless a later run of a policy operation succeeded without
// any (then the findings are resolved).
func lastPolicy(recs []runs.Record) *runs.Record {
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if !slices.Contains(policyOps, r.Operation) {
			continue
		}
		if len(r.Findings) > 0 {
			return &recs[i]
		}
		if r.Result == runs.Succeeded && r.Operation != "preview" {
			return nil
		}
	}
	return nil
}

// row summarises an environment.
func (s *server) row(d envData) row {
	rw := row{Project: d.project, Stack: d.stack, Status: statusUnknown,
		URL: "/env/" + url.PathEscape(d.project) + "/" + url.PathEscape(d.stack), DORA: doraFigures(d.report)}
	if n := len(d.runs); n > 0 {
		v := viewRun(d.runs[n-1])
		rw.Last = &v
	}
	if dr := lastDrift(d.runs); dr != nil {
		rw.DriftKnown, rw.Drift = true, len(dr.Drift)
	}
	if pr := lastPolicy(d.runs); pr != nil {
		rw.Findings = len(pr.Findings)
		for _, f := range pr.Findings {
			if f.Blocking() {
				rw.Blocking++
			}
		}
	}
	if n := len(d.releases); n > 0 {
		v := viewRelease(d.releases[n-1])
		rw.Release = &v
	}
	switch {
	case rw.Last == nil && rw.Release == nil:
	case rw.Last != nil && rw.Last.Result == runs.Failed:
		rw.Status = statusFailed
	case rw.Last != nil && rw.Last.Result == runs.Blocked:
		rw.Status = statusBlocked
	case rw.Drift > 0:
		rw.Status = statusDrifted
	case rw.Release != nil && rw.Release.Status == releases.Failed && (rw.Last == nil || rw.Last.Started.Before(rw.Release.Recorded)):
		rw.Status = statusFailed
	default:
		rw.Status = statusHealthy
	}
	return rw
}

// details builds an environment's page.
func (s *server) details(d envData) envPage {
	p := envPage{Page: s.page(d.project+"/"+d.stack, "envs"), Row: s.row(d), DORA: doraFigures(d.report)}
	for i := len(d.runs) - 1; i >= 0 && len(p.Runs) < maxRuns; i-- {
		p.Runs = append(p.Runs, viewRun(d.runs[i]))
	}
	if dr := lastDrift(d.runs); dr != nil {
		p.DriftChecked = dr.Started
		for _, x := range dr.Drift {
			p.Drift = append(p.Drift, drifted{Resource: urnName(x.URN), Type: x.Type, Properties: x.Properties})
		}
	}
	if pr := lastPolicy(d.runs); pr != nil {
		v := viewRun(*pr)
		p.FindingsRun = &v
		for _, f := range pr.Findings {
			p.Findings = append(p.Findings, viewFinding(f))
		}
	}
	if rr := lastRollout(d.runs); rr != nil {
		p.Rollout = viewRollout(*rr)
	}
	for i := len(d.releases) - 1; i >= 0; i-- {
		p.Releases = append(p.Releases, viewRelease(d.releases[i]))
	}
	p.Charts = charts(d.report)
	return p
}

// maxRuns is how many runs an environment's page lists.
const maxRuns = 50

func viewRun(r runs.Record) runView {
	v := runView{ID: r.ID, Operation: r.Operation, Result: r.Result, Trace: r.TraceID, Started: r.Started,
		Duration: fmtDur(r.Duration), Changes: r.Changes, Error: clip(r.Error, 300), Revision: clip(r.Revision, 12)}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Summary)) {
		if k != "same" && r.Summary[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", r.Summary[k], k))
		}
	}
	v.Summary = strings.Join(parts, ", ")
	return v
}

func viewRelease(r releases.Record) releaseView {
	v := releaseView{ID: r.ID, Status: r.Status, Revision: clip(r.Revision, 12), Recorded: r.Recorded,
		CommitTime: commitTime(r), Cause: clip(r.Cause, 200)}
	if r.Version != "" {
		sum := sha256.Sum256([]byte(r.Version))
		v.Version = hex.EncodeToString(sum[:])[:12]
	}
	return v
}

func viewFinding(f policypacks.Finding) finding {
	return finding{Pack: f.Pack, Policy: f.Policy, Enforcement: string(f.Enforcement), Severity: string(f.Severity),
		Resource: urnName(f.URN), Type: f.Type, Message: clip(f.Message, 300), Blocking: f.Blocking()}
}

func doraFigures(r dora.Report) doraView {
	v := doraView{Deployments: r.Deployments, Failures: r.Failures, Restores: r.Restores,
		PerDay: fmt.Sprintf("%.2f", r.DeploymentsPerDay), CFR: "—", LeadTime: "—", LeadTimeP90: "—", Restore: "—"}
	if r.Deployments > 0 {
		v.CFR = fmt.Sprintf("%.0f%%", r.ChangeFailureRate*100)
	}
	if r.LeadTime.N > 0 {
		v.LeadTime, v.LeadTimeP90 = fmtDur(r.LeadTime.Median), fmtDur(r.LeadTime.P90)
	}
	if r.TimeToRestore.N > 0 {
		v.Restore = fmtDur(r.TimeToRestore.Median)
	}
	return v
}

// urnName shortens a URN to its resource name (the part after the last
// "::"), which is what people recognise.
func urnName(urn string) string {
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		return urn[i+2:]
	}
	return urn
}

// clip cuts s to n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// fmtDur renders a duration for people: 0.4s, 12.3s, 3m 12s, 2h 5m, 3d 4h.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
