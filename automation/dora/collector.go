package dora

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// Metric names of the collector's gauges, each labelled {project, environment}.
const (
	// DeploymentsPerDay is Report.DeploymentsPerDay.
	DeploymentsPerDay = "slipway_dora_deployments_per_day"
	// LeadTimeSeconds is the median lead time for changes (absent when no
	// deployment in the window had a commit time).
	LeadTimeSeconds = "slipway_dora_lead_time_seconds"
	// ChangeFailureRatio is Report.ChangeFailureRate, 0 to 1.
	ChangeFailureRatio = "slipway_dora_change_failure_ratio"
	// TimeToRestoreSeconds is the median time to restore (absent when no
	// failure in the window was restored).
	TimeToRestoreSeconds = "slipway_dora_time_to_restore_seconds"
	// Deployments is Report.Deployments, the deployments in the window.
	Deployments = "slipway_dora_deployments"
)

// ScrapeTimeout bounds the collector's source at each scrape.
const ScrapeTimeout = 10 * time.Second

// collector exports reports as gauges computed at scrape time.
type collector struct {
	src                                 func(context.Context) ([]Report, error)
	perDay, lead, cfr, restore, deploys *prometheus.Desc
}

// NewCollector returns a collector that calls src at each scrape (with
// ScrapeTimeout) and exports each report's metrics as gauges labelled
// {project, environment}. An error of src is reported to the registry as
// an invalid metric (besides the reports it did return), so the scrape
// says why the series are missing.
func NewCollector(src func(ctx context.Context) ([]Report, error)) prometheus.Collector {
	labels := []string{"project", "environment"}
	return &collector{src: src,
		perDay: prometheus.NewDesc(DeploymentsPerDay, "Deployments per day over the DORA window.", labels, nil),
		lead:   prometheus.NewDesc(LeadTimeSeconds, "Median lead time for changes (commit to successful deployment) over the DORA window.", labels, nil),
		cfr:    prometheus.NewDesc(ChangeFailureRatio, "Failed or rolled-back deployments over deployments in the DORA window.", labels, nil),
		restore: prometheus.NewDesc(TimeToRestoreSeconds,
			"Median time from a failed deployment to the next good release over the DORA window.", labels, nil),
		deploys: prometheus.NewDesc(Deployments, "Deployments in the DORA window.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.perDay, c.lead, c.cfr, c.restore, c.deploys} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	reps, err := c.src(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.deploys, fmt.Errorf("dora: computing the metrics: %w", err))
	}
	for _, r := range reps {
		ch <- prometheus.MustNewConstMetric(c.perDay, prometheus.GaugeValue, r.DeploymentsPerDay, r.Project, r.Environment)
		ch <- prometheus.MustNewConstMetric(c.cfr, prometheus.GaugeValue, r.ChangeFailureRate, r.Project, r.Environment)
		ch <- prometheus.MustNewConstMetric(c.deploys, prometheus.GaugeValue, float64(r.Deployments), r.Project, r.Environment)
		if r.LeadTime.N > 0 {
			ch <- prometheus.MustNewConstMetric(c.lead, prometheus.GaugeValue, r.LeadTime.Median.Seconds(), r.Project, r.Environment)
		}
		if r.TimeToRestore.N > 0 {
			ch <- prometheus.MustNewConstMetric(c.restore, prometheus.GaugeValue, r.TimeToRestore.Median.Seconds(), r.Project, r.Environment)
		}
	}
}

// FromStore computes the report of one stack's release history in st over
// [since, until).
func FromStore(ctx context.Context, st *statestore.Store, project, stack string, since, until time.Time) (Report, error) {
	recs, err := releases.List(ctx, st, project, stack)
	if err != nil {
		return Report{}, err
	}
	r := Compute(recs, since, until)
	r.Project, r.Environment = project, stack
	return r, nil
}

// Source returns a source for NewCollector: the reports of every stack
// with a release history in st, over the window that ends at the scrape.
func Source(st *statestore.Store, window time.Duration) func(context.Context) ([]Report, error) {
	return func(ctx context.Context) ([]Report, error) {
		stacks, err := st.ReleaseStacks(ctx)
		if err != nil {
			return nil, fmt.Errorf("dora: listing the stacks with a release history: %w", err)
		}
		now := time.Now()
		var out []Report
		var errs []error
		for _, ps := range stacks {
			r, err := FromStore(ctx, st, ps[0], ps[1], now.Add(-window), now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, r)
		}
		return out, errors.Join(errs...)
	}
}
