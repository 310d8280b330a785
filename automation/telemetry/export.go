package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"
	"github.com/slipwayhq/slipway/automation/mask"
)

// PushJob is the job label of Slipway's Pushgateway pushes.
const PushJob = "slipway"

// WriteFile writes what g gathers to path, atomically: a temporary file in
// path's directory renamed over path. A path ending in ".prom" gets the
// Prometheus text format, the one node-exporter's textfile collector reads
// (it reads *.prom files only, and would take OpenMetrics counters for
// untyped series); any other path gets the OpenMetrics text format.
func WriteFile(g prometheus.Gatherer, path string) error {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("telemetry: gathering metrics: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("telemetry: metrics file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	format := expfmt.NewFormat(expfmt.TypeOpenMetrics)
	if strings.HasSuffix(path, ".prom") {
		format = expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	enc := expfmt.NewEncoder(tmp, format)
	for _, mf := range mfs {
		if err = enc.Encode(mf); err != nil {
			break
		}
	}
	if c, ok := enc.(expfmt.Closer); ok && err == nil {
		err = c.Close()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("telemetry: writing metrics file %s: %w", path, err)
	}
	return nil
}

// Push replaces the metrics of job "slipway" and the grouping labels on
// the Pushgateway at rawURL with what g gathers (Prometheus text format). A grouping label may not
// be one the series carry (project, environment, ...): use e.g.
// {"instance": "dev"}.
func Push(ctx context.Context, rawURL string, g prometheus.Gatherer, grouping map[string]string) error {
	if err := CheckPushURL(rawURL); err != nil {
		return err
	}
	// The text format: what a Pushgateway (or anything in between) reads.
	p := push.New(rawURL, PushJob).Gatherer(g).Format(expfmt.NewFormat(expfmt.TypeTextPlain))
	for k, v := range grouping {
		p = p.Grouping(k, v)
	}
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("telemetry: pushing metrics to %s: %w", mask.URL(rawURL), err)
	}
	return nil
}

// CheckPushURL checks a Pushgateway URL: http or https with a host.
func CheckPushURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("telemetry: Pushgateway URL %q must be an http(s) URL with a host, e.g. http://pushgateway:9091", mask.URL(rawURL))
	}
	return nil
}
