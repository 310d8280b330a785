package analysis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/slipwayhq/slipway/automation/mask"
)

// Provider takes one measurement. It is the whole contract a metric source
// implements; Run calls Measure once per measurement, never concurrently
// for the same Metric.
//
// A provider that got an answer holding no value (no series, NaN, an empty
// body) returns an error wrapping ErrNoData: the measurement is
// Inconclusive. Any other error makes the measurement an Error. A provider
// may also implement Validate() error, which Metric.Validate calls, and
// fmt.Stringer, whose text (free of credentials) names it in results.
type Provider interface {
	Measure(ctx context.Context) (float64, error)
}

// ErrNoData is wrapped by a provider's error when its source answered but
// held no value, such as a PromQL query that matched no series. Such a
// measurement is Inconclusive, never a success.
var ErrNoData = errors.New("no data")

// IsNoData reports whether err says a measurement found no data.
func IsNoData(err error) bool { return errors.Is(err, ErrNoData) }

// Func is a Provider made from a Go function, for library users who
// measure in their own code.
type Func func(ctx context.Context) (float64, error)

// Measure calls f.
func (f Func) Measure(ctx context.Context) (float64, error) { return f(ctx) }

// String names the provider in results.
func (f Func) String() string { return "func" }

// Validate refuses a nil function.
func (f Func) Validate() error {
	if f == nil {
		return errors.New("the Func provider is nil; give it a function that returns the measured value")
	}
	return nil
}

// describe names p for results, without credentials.
func describe(p Provider) string {
	if s, ok := p.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", p)
}

// maskedError is an error whose text has had its URLs masked; it still
// unwraps to the original, so errors.Is keeps working.
type maskedError struct {
	text string
	err  error
}

func (e *maskedError) Error() string { return e.text }
func (e *maskedError) Unwrap() error { return e.err }

// maskURLError rewrites the text of err when it carries a *url.Error,
// whose text repeats the request's URL with its query (tokens), so that
// no credential reaches a Result.
func maskURLError(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		return err
	}
	return &maskedError{text: strings.ReplaceAll(err.Error(), ue.URL, mask.URL(ue.URL)), err: err}
}
