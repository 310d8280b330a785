package dashboard_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/telemetry"
)

// grafanaPanel is the part of a Grafana panel the test reads.
type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

type grafanaDashboard struct {
	SchemaVersion int            `json:"schemaVersion"`
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

var (
	metricRE  = regexp.MustCompile(`\bslipway_[a-z0-9_]+\b`)
	byRE      = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
)

// TestGrafanaDashboard_QueriesOnlyMetricsSlipwayExports parses
// examples/grafana/slipway.json and checks every PromQL expression against
// the metric and label names telemetry and dora export (so renaming a
// metric fails here), that every metric has a panel, and the dashboard's
// variables.
func TestGrafanaDashboard_QueriesOnlyMetricsSlipwayExports(t *testing.T) {
	b, err := os.ReadFile("../../examples/grafana/slipway.json")
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(b, &d))
	assert.GreaterOrEqual(t, d.SchemaVersion, 39)
	assert.NotEmpty(t, d.UID)

	histograms := []string{telemetry.OperationDuration, telemetry.ResourceStepDuration}
	plain := []string{telemetry.OperationsTotal, telemetry.DriftDetectedTotal, telemetry.DriftedResources,
		telemetry.PolicyViolationsTotal, telemetry.RollbacksTotal, telemetry.ResourcesGauge,
		telemetry.RolloutStepsTotal, telemetry.CanaryWeight, telemetry.AnalysisMeasurementsTotal, telemetry.AnalysisValue,
		dora.DeploymentsPerDay, dora.LeadTimeSeconds, dora.ChangeFailureRatio, dora.TimeToRestoreSeconds, dora.Deployments}
	known := map[string]string{} // series name -> the metric it belongs to
	for _, m := range plain {
		known[m] = m
	}
	for _, h := range histograms {
		for _, s := range []string{"_bucket", "_count", "_sum"} {
			known[h+s] = h
		}
	}
	labels := []string{telemetry.LabelProject, telemetry.LabelEnvironment, telemetry.LabelOperation, telemetry.LabelResult,
		telemetry.LabelType, telemetry.LabelPack, telemetry.LabelPolicy, telemetry.LabelEnforcement,
		telemetry.LabelStep, telemetry.LabelMetric, telemetry.LabelVerdict, "le"}

	used := map[string]bool{}
	ids := map[int]bool{}
	var exprs int
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d is unique", p.ID)
		ids[p.ID] = true
		assert.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "panel %q fits the grid", p.Title)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, "panel %q has a datasource", p.Title)
		assert.Equal(t, "${datasource}", p.Datasource.UID, "panel %q uses the datasource variable", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has queries", p.Title)
		for _, tg := range p.Targets {
			exprs++
			e := tg.Expr
			assert.Equal(t, strings.Count(e, "("), strings.Count(e, ")"), "balanced parentheses in %q", e)
			names := metricRE.FindAllString(e, -1)
			assert.NotEmpty(t, names, "panel %q: %q names a Slipway metric", p.Title, e)
			for _, n := range names {
				m, ok := known[n]
				if assert.True(t, ok, "panel %q queries %s, which Slipway does not export", p.Title, n) {
					used[m] = true
				}
				if slices.Contains(histograms, n) {
					t.Errorf("panel %q queries the histogram %s without _bucket, _count or _sum", p.Title, n)
				}
			}
			if strings.Contains(e, "histogram_quantile") {
				assert.Contains(t, e, "_bucket", "panel %q: histogram_quantile over buckets", p.Title)
				assert.Regexp(t, `by \([^)]*\ble\b`, e, "panel %q: histogram_quantile keeps le", p.Title)
			}
			for _, m := range byRE.FindAllStringSubmatch(e, -1) {
				for _, l := range strings.Split(m[1], ",") {
					assert.Contains(t, labels, strings.TrimSpace(l), "panel %q groups by an unknown label in %q", p.Title, e)
				}
			}
			for _, m := range matcherRE.FindAllStringSubmatch(e, -1) {
				assert.Contains(t, labels, m[1], "panel %q matches an unknown label in %q", p.Title, e)
			}
		}
	}
	assert.GreaterOrEqual(t, exprs, 15)
	for _, m := range append(plain, histograms...) {
		assert.True(t, used[m], "no panel shows %s", m)
	}
	for _, want := range []string{"histogram_quantile(0.5,", "histogram_quantile(0.95,"} {
		assert.Contains(t, string(b), want)
	}

	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		switch v.Name {
		case "datasource":
			assert.Equal(t, "prometheus", v.Query)
		case "environment":
			assert.Equal(t, "label_values("+telemetry.OperationsTotal+", "+telemetry.LabelEnvironment+")", v.Definition)
		}
	}
	assert.Equal(t, map[string]string{"datasource": "datasource", "environment": "query"}, vars)
}
