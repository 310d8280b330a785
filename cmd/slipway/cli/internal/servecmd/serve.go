package servecmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/slipwayhq/slipway/automation/approvals"
	"github.com/slipwayhq/slipway/automation/dashboard"
	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/input"
)

// serveTimeouts bound how long a client may hold a connection of
// `serve`: a slow client cannot pin the server (slowloris).
const (
	serveReadHeaderTimeout = 5 * time.Second
	serveReadTimeout       = 30 * time.Second
	serveWriteTimeout      = 60 * time.Second
	serveIdleTimeout       = 2 * time.Minute
	serveMaxHeaderBytes    = 64 << 10
	serveShutdownTimeout   = 10 * time.Second
)

// serveFlags are the flags of `serve`.
type serveFlags struct {
	addr, since, slackFile string
	definitions            []string
	rps                    float64
	burst                  int
	approvals              input.ApprovalFlags
}

// newServeCmd is the serve verb: the dashboard and the approvals API.
func newServeCmd(g *app.Globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the dashboard, /metrics, the Slack approval callback and the approvals API (loopback by default)",
		Long: `Serve a web dashboard over the backend's records: every environment with
its status, last runs, drift, policy findings, release history and DORA
charts; pending approvals; /metrics (DORA gauges and the process's own);
/healthz. With a Slack signing secret it accepts Slack's interactive
callbacks (POST /slack/actions, signature and timestamp verified) from the
workspace --slack-team-id names and the users --slack-approvers (or
--slack-approver-group) allow; with named tokens (--api-token NAME=@PATH)
it serves the approvals API (/api/approvals), recording each decision
under the token's name. Without a token the API refuses every request.
Whoever requested a promotion cannot approve it unless
--allow-self-approval. Decisions are signed with --approval-key-file
(required to accept any); promotions verify them with its public key.

It listens on 127.0.0.1:8090 unless --addr says otherwise; a non-loopback
address must be given explicitly. Requests are rate-limited per client
(--rate, --burst) and bodies limited in size. Stop it with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(g, cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8090", "address to listen on, HOST:PORT (port 0: any free port); a non-loopback address exposes the dashboard to the network")
	fl.StringVar(&f.since, "since", "30d", "window of the DORA figures and charts: days (30d), weeks (4w) or a duration (72h)")
	fl.Float64Var(&f.rps, "rate", float64(dashboard.DefaultRate), "requests per second each client address may make")
	fl.IntVar(&f.burst, "burst", dashboard.DefaultBurst, "requests each client address may make at once")
	fl.StringVar(&f.slackFile, "slack-signing-secret-file", "", "file holding the Slack app's signing secret, to accept approvals from Slack (default $SLACK_SIGNING_SECRET)")
	f.approvals.Register(fl)
	fl.StringSliceVar(&f.definitions, "definition", nil, fmt.Sprintf("environment definitions whose projects to show: %s (default: every project in the backend)",
		strings.Join(g.Config.DefinitionNames(), ", ")))
	return cmd
}

// serve validates the flags, opens the backend's store and serves until
// the command's context ends (SIGINT, SIGTERM), then shuts down gracefully.
func serve(g *app.Globals, cmd *cobra.Command, f serveFlags) error {
	loopback, err := serveAddr(f.addr)
	if err != nil {
		return err
	}
	since, err := parseWindow(f.since)
	if err != nil {
		return err
	}
	if f.rps <= 0 {
		return app.BadInput("--rate %v must be positive (requests per second per client)", f.rps)
	}
	if f.burst < 1 {
		return app.BadInput("--burst %d must be at least 1", f.burst)
	}
	slack, err := input.ServeSecret("--slack-signing-secret-file", f.slackFile, "SLACK_SIGNING_SECRET")
	if err != nil {
		return err
	}
	decide, err := f.approvals.Build(slack)
	if err != nil {
		return err
	}
	for _, v := range append(decide.Secrets, slack) {
		if len(v) > 0 {
			g.AddSecrets(string(v)) // masked should one ever reach an output
		}
	}
	var projects []string
	for _, name := range f.definitions {
		b, err := g.Config.Definition(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		projects = append(projects, b.Info().Project)
	}
	log := g.FleetLogger("serve")
	if !loopback {
		log.Warn("serve: listening on a non-loopback address; anyone who can reach it can read the dashboard (state changes still need the token or a Slack signature)", "addr", f.addr)
	}
	if decide.Tokens.Len() == 0 {
		log.Info("serve: no API token (--api-token NAME=@PATH); the approvals API refuses every request")
	}

	ctx := cmd.Context()
	e, err := g.Engine(ctx)
	if err != nil {
		return err
	}
	st, err := e.Store(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	// The run's registry (telemetry.go) holds Slipway's series; serve adds
	// the DORA gauges and the process's own metrics.
	reg := g.MetricsRegistry()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		dora.NewCollector(func(ctx context.Context) ([]dora.Report, error) {
			return dashboard.Reports(ctx, st, projects, since, time.Now())
		}))
	as := approvals.New(st, approvals.WithSigningKey(decide.Key))
	o := dashboard.Options{Store: st, Projects: projects, Since: since, Gatherer: reg,
		API: approvals.APIHandler(as, decide.Tokens, append(decide.Api, approvals.WithLogger(log))...), Tokens: decide.Tokens,
		Rate: rate.Limit(f.rps), Burst: f.burst, Logger: log}
	if len(slack) > 0 {
		o.Slack = approvals.SlackHandler(as, slack, append(decide.Slack, approvals.WithLogger(log))...)
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return app.BadInput("--addr %s: cannot listen: %v", f.addr, err)
	}
	if loopback {
		host, _, _ := net.SplitHostPort(f.addr)
		o.Hosts = []string{"127.0.0.1", "::1", "localhost", host}
	}
	h, err := dashboard.New(o)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: serveReadHeaderTimeout,
		ReadTimeout:       serveReadTimeout,
		WriteTimeout:      serveWriteTimeout,
		IdleTimeout:       serveIdleTimeout,
		MaxHeaderBytes:    serveMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(g.Errw, "%s: serving on http://%s\n", g.Config.Name, ln.Addr())
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serveShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("serve: shutting down: %w", err)
	}
	log.Info("serve: stopped")
	return nil
}

// serveAddr checks --addr and reports whether it is a loopback address.
func serveAddr(addr string) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, app.BadInput("--addr %q is not HOST:PORT; use e.g. 127.0.0.1:8090 (port 0 picks a free port)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false, app.BadInput("--addr %q: port %q is not a number from 0 to 65535", addr, port)
	}
	switch {
	case host == "localhost":
		return true, nil
	case host == "":
		return false, nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false, app.BadInput("--addr %q: host %q is not an IP address or localhost; use 127.0.0.1 (or 0.0.0.0 for every interface)", addr, host)
	}
	return ip.IsLoopback(), nil
}
