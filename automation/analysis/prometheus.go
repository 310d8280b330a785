package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/slipwayhq/slipway/automation/mask"
)

// DefaultTimeout bounds one measurement of the Prometheus and HTTP
// providers when their Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Prometheus measures with a PromQL instant query over Prometheus' HTTP
// API. A scalar, or an instant vector of one element, gives the value; an
// empty vector or NaN (a rate over no requests, 0/0) is inconclusive; a
// vector of several elements is an error: aggregate it (sum, max) so that
// it names one series.
type Prometheus struct {
	// Address is Prometheus' base URL, such as "http://127.0.0.1:9090".
	// Credentials in it are used but never shown.
	Address string
	// Query is the PromQL expression, evaluated at the time of each
	// measurement, such as
	// `sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))`.
	Query string
	// Client sends the requests (for authentication or TLS); nil uses
	// client_golang's default transport.
	Client *http.Client
	// Timeout bounds one query; zero is DefaultTimeout.
	Timeout time.Duration
}

// Validate checks the address and the query.
func (p Prometheus) Validate() error {
	if err := checkHTTPURL("Prometheus.Address", p.Address, "http://127.0.0.1:9090"); err != nil {
		return err
	}
	if strings.TrimSpace(p.Query) == "" {
		return errors.New(`Prometheus.Query is empty; set a PromQL query that gives one number, for example sum(rate(http_requests_total{code=~"5.."}[1m]))`)
	}
	if p.Timeout < 0 {
		return fmt.Errorf("Prometheus.Timeout is %s; set a positive duration or 0 for %s", p.Timeout, DefaultTimeout)
	}
	return nil
}

// String names the query and the server, without credentials.
func (p Prometheus) String() string {
	return fmt.Sprintf("prometheus %q at %s", p.Query, mask.URL(p.Address))
}

// Measure runs the query once.
func (p Prometheus) Measure(ctx context.Context) (float64, error) {
	client, err := api.NewClient(api.Config{Address: p.Address, Client: p.Client})
	if err != nil {
		return 0, fmt.Errorf("prometheus at %s: %w", mask.URL(p.Address), maskURLError(err))
	}
	timeout := p.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, _, _, err := promv1.NewAPI(client).Query(ctx, p.Query, time.Time{})
	if err != nil {
		return 0, fmt.Errorf("prometheus query %q at %s: %w", p.Query, mask.URL(p.Address), maskURLError(err))
	}
	var f float64
	switch v := v.(type) {
	case *model.Scalar:
		f = float64(v.Value)
	case model.Vector:
		switch len(v) {
		case 0:
			return 0, fmt.Errorf("prometheus query %q returned no series: %w", p.Query, ErrNoData)
		case 1:
			f = float64(v[0].Value)
		default:
			names := make([]string, 0, 3)
			for _, s := range v[:min(len(v), 3)] {
				names = append(names, s.Metric.String())
			}
			more := ""
			if len(v) > 3 {
				more = ", …"
			}
			return 0, fmt.Errorf("prometheus query %q returned %d series (%s%s), not one; aggregate it, for example with sum(…) or max(…)",
				p.Query, len(v), strings.Join(names, ", "), more)
		}
	default:
		return 0, fmt.Errorf("prometheus query %q returned a %s, not a scalar or an instant vector; drop the range selector or wrap it in a function such as rate(…)", p.Query, v.Type())
	}
	if math.IsNaN(f) {
		return 0, fmt.Errorf("prometheus query %q returned NaN (such as 0/0: no traffic in the window): %w", p.Query, ErrNoData)
	}
	return f, nil
}

// checkHTTPURL checks that raw is an absolute http or https URL.
func checkHTTPURL(field, raw, example string) error {
	if raw == "" {
		return fmt.Errorf("%s is empty; set an http or https URL, for example %s", field, example)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute http or https URL; write, for example, %s", field, mask.URL(raw), example)
	}
	return nil
}
