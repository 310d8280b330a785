package dora_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/optdeploy"
	"github.com/slipwayhq/slipway/automation/optup"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

func at(d, hh, mm int) time.Time { return time.Date(2026, 3, d, hh, mm, 0, 0, time.UTC) }

// sample is a report as Compute would make it: 2026-03-01 .. 03-04.
func sample() dora.Report {
	return dora.Report{Project: "web", Environment: "prod", Since: at(1, 0, 0), Until: at(4, 0, 0),
		Deployments: 4, Failures: 1, Restores: 1, DeploymentsPerDay: 4.0 / 3.0,
		LeadTime:          dora.Stat{N: 3, Median: 2 * time.Hour, Mean: 3 * time.Hour, P90: 5*time.Hour + 30*time.Minute},
		ChangeFailureRate: 0.25,
		TimeToRestore:     dora.Stat{N: 1, Median: 25 * time.Minute, Mean: 25 * time.Minute, P90: 25 * time.Minute},
		Days: []dora.Day{
			{Date: at(1, 0, 0), Deployments: 3, Failures: 1, LeadTimeMedian: 90 * time.Minute},
			{Date: at(2, 0, 0)},
			{Date: at(3, 0, 0), Deployments: 1},
		}}
}

func TestReport_WriteText(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, sample().WriteText(&b))
	want := `DORA metrics of web/prod, 2026-03-01T00:00:00Z to 2026-03-04T00:00:00Z (3d)
  deployment frequency   1.33 per day (4 deployments)
  lead time for changes  median 2h, mean 3h, p90 5h30m (3 deployments with a commit time)
  change failure rate    25.0% (1 of 4 deployments failed or were rolled back)
  time to restore        median 25m, mean 25m, p90 25m (1 restored), 0 open
  day         deployments  failures  lead time (median)
  2026-03-01            3         1  1h30m
  2026-03-03            1         0  -
`
	assert.Equal(t, want, b.String())

	b.Reset()
	require.NoError(t, dora.Report{Environment: "dev", Since: at(1, 0, 0), Until: at(2, 0, 0)}.WriteText(&b))
	assert.Equal(t, `DORA metrics of dev, 2026-03-01T00:00:00Z to 2026-03-02T00:00:00Z (1d)
  deployment frequency   0.00 per day (0 deployments)
  lead time for changes  n/a (0 deployments with a commit time)
  change failure rate    0.0% (0 of 0 deployments failed or were rolled back)
  time to restore        n/a (0 restored), 0 open
`, b.String())
}

func TestReport_WriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, sample().WriteMarkdown(&b))
	want := `### DORA metrics: web/prod

2026-03-01T00:00:00Z to 2026-03-04T00:00:00Z (3d)

| Metric | Value |
|---|---|
| Deployment frequency | 1.33 per day (4 deployments) |
| Lead time for changes | median 2h, mean 3h, p90 5h30m (3 deployments with a commit time) |
| Change failure rate | 25.0% (1 of 4) |
| Time to restore | median 25m, mean 25m, p90 25m (1 restored), 0 open |

| Day | Deployments | Failures | Lead time (median) |
|---|---:|---:|---:|
| 2026-03-01 | 3 | 1 | 1h30m |
| 2026-03-03 | 1 | 0 | - |
`
	assert.Equal(t, want, b.String())
}

func TestReport_JSONRoundTripInSeconds(t *testing.T) {
	r := sample()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.Equal(t, map[string]any{"n": 3.0, "medianSeconds": 7200.0, "meanSeconds": 10800.0, "p90Seconds": 19800.0}, raw["leadTime"])
	assert.Equal(t, 1500.0, raw["timeToRestore"].(map[string]any)["medianSeconds"])
	assert.Equal(t, 5400.0, raw["days"].([]any)[0].(map[string]any)["leadTimeMedianSeconds"])
	assert.Equal(t, "2026-03-01T00:00:00Z", raw["since"])
	assert.Equal(t, 0.25, raw["changeFailureRate"])
	var back dora.Report
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, r, back)

	// An empty report has days as [], not null.
	b, err = json.Marshal(dora.Report{})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"days":[]`)
}

// TestCollector_ExportsGaugesPerEnvironment gathers the collector: a
// report with every figure, and one with no lead time or restore (those
// series are absent, not 0).
func TestCollector_ExportsGaugesPerEnvironment(t *testing.T) {
	var deadline time.Duration
	c := dora.NewCollector(func(ctx context.Context) ([]dora.Report, error) {
		d, ok := ctx.Deadline()
		require.True(t, ok, "the source runs with a timeout")
		deadline = time.Until(d)
		return []dora.Report{sample(), {Project: "web", Environment: "dev", Deployments: 2, DeploymentsPerDay: 0.5}}, nil
	})
	want := `
# HELP slipway_dora_change_failure_ratio Failed or rolled-back deployments over deployments in the DORA window.
# TYPE slipway_dora_change_failure_ratio gauge
slipway_dora_change_failure_ratio{environment="dev",project="web"} 0
slipway_dora_change_failure_ratio{environment="prod",project="web"} 0.25
# HELP slipway_dora_deployments Deployments in the DORA window.
# TYPE slipway_dora_deployments gauge
slipway_dora_deployments{environment="dev",project="web"} 2
slipway_dora_deployments{environment="prod",project="web"} 4
# HELP slipway_dora_deployments_per_day Deployments per day over the DORA window.
# TYPE slipway_dora_deployments_per_day gauge
slipway_dora_deployments_per_day{environment="dev",project="web"} 0.5
slipway_dora_deployments_per_day{environment="prod",project="web"} 1.3333333333333333
# HELP slipway_dora_lead_time_seconds Median lead time for changes (commit to successful deployment) over the DORA window.
# TYPE slipway_dora_lead_time_seconds gauge
slipway_dora_lead_time_seconds{environment="prod",project="web"} 7200
# HELP slipway_dora_time_to_restore_seconds Median time from a failed deployment to the next good release over the DORA window.
# TYPE slipway_dora_time_to_restore_seconds gauge
slipway_dora_time_to_restore_seconds{environment="prod",project="web"} 1500
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
	assert.Greater(t, deadline, time.Duration(0))
	assert.LessOrEqual(t, deadline, dora.ScrapeTimeout)

	// The OpenMetrics exposition of one series, exactly.
	om, err := testutil.CollectAndFormat(c, expfmt.TypeOpenMetrics, dora.TimeToRestoreSeconds)
	require.NoError(t, err)
	assert.Equal(t, `# HELP slipway_dora_time_to_restore_seconds Median time from a failed deployment to the next good release over the DORA window.
# TYPE slipway_dora_time_to_restore_seconds gauge
slipway_dora_time_to_restore_seconds{environment="prod",project="web"} 1500.0
# EOF
`, string(om))
}

func TestCollector_SourceErrorFailsTheScrapeWithTheReason(t *testing.T) {
	c := dora.NewCollector(func(context.Context) ([]dora.Report, error) { return nil, errors.New("backend unreachable") })
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	_, err := reg.Gather()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "backend unreachable")
}

// TestEngine_ReleasesCarryCommitTimesIntoDORA runs the real engine on a
// file backend: two ups with a revision and commit time, then a Deploy
// whose smoke check fails (recorded failed, with its revision and commit
// time, and rolled back automatically). The records round-trip the commit
// times, and Compute over Engine.Releases — and the store Source the
// collector uses — count them.
func TestEngine_ReleasesCarryCommitTimesIntoDORA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	backend := "file://" + t.TempDir()
	e, err := automation.New(ctx, automation.WithDir(t.TempDir()), automation.WithPulumiHome(t.TempDir()),
		automation.WithBackend(backend), automation.WithPassphrase(""),
		automation.WithResolver(toolchain.New(toolchain.WithLog(io.Discard))))
	require.NoError(t, err)
	prog := func(v string) automation.Program {
		return automation.Program{Project: "doratest", Stack: "dora-prod", Version: v, Run: func(ctx *pulumi.Context) error {
			ctx.Export("version", pulumi.String(v))
			return nil
		}}
	}
	// Commit times with a time zone and sub-second part: stored in UTC.
	commit1 := time.Date(2026, 3, 1, 9, 0, 0, 500, time.FixedZone("CET", 3600))
	commit2 := commit1.Add(time.Hour)
	commit3 := commit2.Add(time.Hour)
	start := time.Now()
	for i, c := range []struct {
		v, rev string
		at     time.Time
	}{{"v1", "1111111", commit1}, {"v2", "2222222", commit2}} {
		st, err := e.UpsertStack(ctx, prog(c.v))
		require.NoError(t, err)
		_, err = st.Up(ctx, optup.Revision(c.rev), optup.CommitTime(c.at))
		require.NoError(t, err, "up %d", i)
	}
	_, err = e.Deploy(ctx, automation.Release{Version: "v3", Program: prog("v3"),
		Smoke: func(context.Context, *outcome.Result) error { return errors.New("503 from /healthz") }},
		func(v string) (automation.Program, error) { return prog(v), nil },
		optdeploy.Up(optup.Revision("3333333"), optup.CommitTime(commit3)))
	var rerr *automation.ReleaseError
	require.ErrorAs(t, err, &rerr)
	require.Equal(t, "v2", rerr.Restored)

	recs, err := e.Releases(ctx, "doratest", "dora-prod")
	require.NoError(t, err)
	require.Len(t, recs, 4)
	type got struct{ status, rev string }
	var statuses []got
	for _, r := range recs {
		statuses = append(statuses, got{r.Status, r.Revision})
	}
	assert.Equal(t, []got{{releases.Applied, "1111111"}, {releases.Applied, "2222222"}, {releases.Failed, "3333333"}, {releases.Restored, ""}}, statuses)
	assert.True(t, recs[0].CommitTime.Equal(commit1), "%s", recs[0].CommitTime)
	assert.Equal(t, time.UTC, recs[0].CommitTime.Location())
	assert.True(t, recs[1].CommitTime.Equal(commit2))
	assert.True(t, recs[2].CommitTime.Equal(commit3), "the failed release keeps its commit time")
	assert.True(t, recs[3].CommitTime.IsZero(), "a rollback applies no new commit")

	until := time.Now().Add(time.Second)
	r := dora.Compute(recs, start.Add(-time.Minute), until)
	assert.Equal(t, 3, r.Deployments, "two ups and the failed deploy; the restore is not a deployment")
	assert.Equal(t, 1, r.Failures)
	assert.Equal(t, 1, r.Restores)
	assert.Equal(t, 0, r.Open)
	assert.InDelta(t, 1.0/3.0, r.ChangeFailureRate, 1e-12)
	require.Equal(t, 2, r.LeadTime.N, "the failed deploy's lead time is not counted")
	lead1, lead2 := recs[0].Recorded.Sub(commit1), recs[1].Recorded.Sub(commit2)
	assert.Equal(t, (lead1+lead2)/2, r.LeadTime.Median)
	assert.Equal(t, max(lead1, lead2), r.LeadTime.P90)
	assert.Equal(t, recs[3].Recorded.Sub(recs[2].Recorded), r.TimeToRestore.Median)

	st, err := statestore.Open(ctx, backend, nil)
	require.NoError(t, err)
	defer st.Close()
	reps, err := dora.Source(st, time.Hour)(ctx)
	require.NoError(t, err)
	require.Len(t, reps, 1)
	assert.Equal(t, "doratest", reps[0].Project)
	assert.Equal(t, "dora-prod", reps[0].Environment)
	assert.Equal(t, 3, reps[0].Deployments)
}
