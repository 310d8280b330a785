// Package dashboard is Slipway's web dashboard: server-rendered pages over
// the records Slipway keeps in a backend (run history, release history,
// approval requests) with DORA figures and small SVG charts, plus the
// endpoints a long-running `slipway serve` exposes: /metrics, /healthz, the
// Slack interactive callback and the approvals API.
//
// The pages only read. Anything that changes state goes through the Slack
// handler (signed requests) or the API handler (bearer token); the dashboard
// refuses a state-changing API request without a matching token before it
// reaches the handler. Every request is rate-limited per client address and
// size-limited, and every response carries a strict Content-Security-Policy.
// Pages show run and release fields only: no stack outputs, no
// configuration, and a release's Version only as a short hash.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/slipwayhq/slipway/automation/approvals"
	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/runs"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// Defaults of Options.
const (
	// DefaultSince is the window of the DORA figures.
	DefaultSince = 30 * 24 * time.Hour
	// DefaultRate is the requests per second each client may make.
	DefaultRate rate.Limit = 10
	// DefaultBurst is how many requests a client may make at once.
	DefaultBurst = 20
	// DefaultMaxBody is the largest request body accepted (1 MiB).
	DefaultMaxBody int64 = 1 << 20
)

// Options configure the dashboard (New).
type Options struct {
	// Store holds the run history, the release history and the approval
	// requests (required).
	Store *statestore.Store
	// Projects limits the dashboard to these projects (default: all).
	Projects []string
	// Since is the window of the DORA figures (default DefaultSince).
	Since time.Duration
	// Gatherer is served on /metrics (nil: no /metrics).
	Gatherer prometheus.Gatherer
	// Slack handles Slack's interactive callbacks on POST /slack/actions
	// and verifies their signature itself (nil: no route).
	Slack http.Handler
	// API serves /api/ (nil: no route); it sees the paths without the
	// /api prefix (approvals.APIHandler's /approvals is /api/approvals).
	// It checks the bearer token itself;
	// the dashboard also refuses every state-changing request (any method
	// but GET, HEAD and OPTIONS) whose bearer token is none of Tokens.
	API http.Handler
	// Tokens are the API's named bearer tokens. None: no state-changing
	// API request passes.
	Tokens *approvals.Tokens
	// Rate is the requests per second each client address may make
	// (default DefaultRate; rate.Inf: no limit). Burst is how many it may
	// make at once (default DefaultBurst).
	Rate  rate.Limit
	Burst int
	// MaxBody is the largest request body accepted (default
	// DefaultMaxBody); a larger one is refused with 413.
	MaxBody int64
	// Hosts, when set, are the only Host header values (without port)
	// accepted: a server on loopback sets the loopback names so that a web
	// page cannot reach it through DNS rebinding. Others get 421.
	Hosts []string
	// Now is the clock (default time.Now). The rate limiter uses it too.
	Now func() time.Time
	// Logger logs failed reads and refused requests (default slog.Default()).
	Logger *slog.Logger
}

// OptionError names a field of Options that New cannot accept.
// Get it with errors.As (a *OptionError).
type OptionError struct {
	Field, Problem string
}

// Error names the field and the fix.
func (e *OptionError) Error() string {
	return fmt.Sprintf("dashboard: Options.%s %s", e.Field, e.Problem)
}

// server is the dashboard's state.
type server struct {
	o   Options
	log *slog.Logger
}

// New returns the dashboard's handler with every route and the security
// middleware (headers, host check, rate limit, body limit).
func New(o Options) (http.Handler, error) {
	if o.Store == nil {
		return nil, &OptionError{"Store", "is nil; open the backend's store (automation.Engine.Store or statestore.Open)"}
	}
	if o.Since < 0 {
		return nil, &OptionError{"Since", fmt.Sprintf("%s is negative; use a positive window such as 720h", o.Since)}
	}
	if o.Since == 0 {
		o.Since = DefaultSince
	}
	if o.Rate < 0 {
		return nil, &OptionError{"Rate", fmt.Sprintf("%v is negative; use requests per second, or rate.Inf for no limit", o.Rate)}
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Burst < 0 {
		return nil, &OptionError{"Burst", fmt.Sprintf("%d is negative; use at least 1", o.Burst)}
	}
	if o.Burst == 0 {
		o.Burst = DefaultBurst
	}
	if o.MaxBody < 0 {
		return nil, &OptionError{"MaxBody", fmt.Sprintf("%d is negative; use a size in bytes", o.MaxBody)}
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &server{o: o, log: o.Logger.With("component", "dashboard")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /env/{project}/{stack}", s.env)
	mux.HandleFunc("GET /approvals", s.approvals)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	}
	if o.Slack != nil {
		mux.Handle("POST /slack/actions", o.Slack)
	}
	if o.API != nil {
		mux.Handle("/api/", s.guardAPI(http.StripPrefix("/api", o.API)))
	}
	return s.secure(newLimiter(o.Rate, o.Burst, o.Now), mux), nil
}

// envData is what the pages know of one environment.
type envData struct {
	project, stack string
	runs           []runs.Record     // oldest first
	releases       []releases.Record // oldest first
	report         dora.Report
}

// environments lists the environments to show, sorted.
func (s *server) environments(ctx context.Context) ([]runs.Env, error) {
	envs, err := runs.Environments(ctx, s.o.Store)
	if err != nil {
		return nil, err
	}
	if len(s.o.Projects) > 0 {
		envs = slices.DeleteFunc(envs, func(e runs.Env) bool { return !slices.Contains(s.o.Projects, e.Project) })
	}
	return envs, nil
}

// load reads one environment's records and computes its DORA figures.
func (s *server) load(ctx context.Context, project, stack string) (envData, error) {
	d := envData{project: project, stack: stack}
	var err error
	if d.runs, err = runs.List(ctx, s.o.Store, project, stack); err != nil {
		return d, err
	}
	if d.releases, err = releases.List(ctx, s.o.Store, project, stack); err != nil {
		return d, err
	}
	now := s.o.Now()
	d.report = dora.Compute(d.releases, now.Add(-s.o.Since), now)
	d.report.Project, d.report.Environment = project, stack
	return d, nil
}

// Reports computes the DORA report of every environment of the store in
// the window [now-since, now], limited to projects when any are given: the
// source of dora.NewCollector in a long-running server.
func Reports(ctx context.Context, st *statestore.Store, projects []string, since time.Duration, now time.Time) ([]dora.Report, error) {
	s := &server{o: Options{Store: st, Projects: projects, Since: since, Now: func() time.Time { return now }}}
	envs, err := s.environments(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]dora.Report, 0, len(envs))
	for _, e := range envs {
		d, err := s.load(ctx, e.Project, e.Stack)
		if err != nil {
			return nil, err
		}
		out = append(out, d.report)
	}
	return out, nil
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	envs, err := s.environments(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := indexPage{Page: s.page("Environments", "envs")}
	for _, e := range envs {
		d, err := s.load(r.Context(), e.Project, e.Stack)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		row := s.row(d)
		p.Rows = append(p.Rows, row)
		p.Totals.add(row)
	}
	s.render(w, r, "index", p)
}

func (s *server) env(w http.ResponseWriter, r *http.Request) {
	project, stack := r.PathValue("project"), r.PathValue("stack")
	envs, err := s.environments(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !slices.Contains(envs, runs.Env{Project: project, Stack: stack}) {
		http.Error(w, "no such environment", http.StatusNotFound)
		return
	}
	d, err := s.load(r.Context(), project, stack)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "env", s.details(d))
}

func (s *server) approvals(w http.ResponseWriter, r *http.Request) {
	p, err := s.approvalsPage(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "approvals", p)
}

// fail answers 500 without details (they may name backend paths) and logs
// the error.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.ErrorContext(r.Context(), "dashboard: reading the backend", "path", r.URL.Path, "error", err)
	http.Error(w, "the dashboard could not read the backend; see the server's log", http.StatusInternalServerError)
}

// page is what every page shares.
type page struct {
	Title, Nav string
	Now        time.Time
	Since      string
	Style      any
}

func (s *server) page(title, nav string) page {
	return page{Title: title, Nav: nav, Now: s.o.Now().UTC(), Since: fmtDays(s.o.Since), Style: template.CSS(styleCSS)}
}

// fmtDays renders a window in days when it is a whole number of them.
func fmtDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return strings.TrimSuffix(d.String(), "0s")
}
