package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Phase is the outcome of one measurement or of a whole run.
type Phase string

const (
	// PhaseSuccessful: the value met the success condition; for a run,
	// every measurement was taken, at least one succeeded and no limit was
	// exceeded.
	PhaseSuccessful Phase = "Successful"
	// PhaseFailed: the value did not meet the success condition; for a
	// run, more measurements failed than Metric.FailureLimit tolerates.
	// Callers abort and go back to stable.
	PhaseFailed Phase = "Failed"
	// PhaseInconclusive: the provider found no value (ErrNoData, NaN); for
	// a run, more measurements were inconclusive than
	// Metric.InconclusiveLimit tolerates, none succeeded, or the run was
	// cancelled. Callers pause rather than promote.
	PhaseInconclusive Phase = "Inconclusive"
	// PhaseError: the provider failed; for a run, more errors followed one
	// another than Metric.ConsecutiveErrorLimit tolerates. Callers treat
	// it as Failed.
	PhaseError Phase = "Error"
)

// worse orders phases from best to worst, as Argo Rollouts does.
var worse = map[Phase]int{PhaseSuccessful: 0, PhaseInconclusive: 1, PhaseError: 2, PhaseFailed: 3}

// Metric is one health check: what to measure, how often, and how many
// bad measurements to tolerate. Its limits' zero values tolerate nothing.
type Metric struct {
	// Name names the metric in results and reports ("error-rate").
	Name string
	// Provider takes each measurement.
	Provider Provider
	// Interval is the time between two measurements; the first is taken
	// at once. It must be positive when Count is above 1.
	Interval time.Duration
	// Count is the number of measurements that give a value or find no
	// data (errors are not counted, as in Argo Rollouts); at least 1.
	Count int
	// SuccessCondition decides whether a value is a success; a value that
	// does not meet it is a failure.
	SuccessCondition Condition
	// FailureLimit is the number of failed measurements tolerated; one
	// more ends the run as Failed. It must be below Count.
	FailureLimit int
	// InconclusiveLimit is the number of inconclusive measurements
	// tolerated; one more ends the run as Inconclusive. It must be below
	// Count.
	InconclusiveLimit int
	// ConsecutiveErrorLimit is the number of provider errors in a row
	// tolerated; one more ends the run as Error. Zero ends it at the first
	// error (Argo Rollouts tolerates 4 by default).
	ConsecutiveErrorLimit int
}

// Validate reports the first problem with m, naming the field and the fix.
// Run validates before it measures.
func (m Metric) Validate() error {
	name := m.Name
	if name == "" {
		return errors.New(`analysis: Metric.Name is empty; name the metric, for example "error-rate"`)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("analysis: metric %q: "+format, append([]any{name}, args...)...)
	}
	if m.Provider == nil {
		return bad("Metric.Provider is nil; set one, for example analysis.Prometheus{Address: \"http://127.0.0.1:9090\", Query: \"...\"}")
	}
	if v, ok := m.Provider.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return bad("Metric.Provider: %v", err)
		}
	}
	if m.SuccessCondition.IsZero() {
		return bad("Metric.SuccessCondition is unset; set it with analysis.ParseCondition(%s) or analysis.ConditionFunc", conditionExample)
	}
	if m.Count < 1 {
		return bad("Metric.Count is %d; take at least 1 measurement, for example Count: 5", m.Count)
	}
	if m.Interval < 0 {
		return bad("Metric.Interval is %s; it must be positive, for example 30s", m.Interval)
	}
	if m.Count > 1 && m.Interval == 0 {
		return bad("Metric.Interval is 0 with Count %d; set the time between measurements, for example Interval: 30 * time.Second", m.Count)
	}
	if m.FailureLimit < 0 || m.FailureLimit >= m.Count {
		return bad("Metric.FailureLimit is %d with Count %d; tolerate from 0 to %d failed measurements", m.FailureLimit, m.Count, m.Count-1)
	}
	if m.InconclusiveLimit < 0 || m.InconclusiveLimit >= m.Count {
		return bad("Metric.InconclusiveLimit is %d with Count %d; tolerate from 0 to %d inconclusive measurements", m.InconclusiveLimit, m.Count, m.Count-1)
	}
	if m.ConsecutiveErrorLimit < 0 {
		return bad("Metric.ConsecutiveErrorLimit is %d; tolerate 0 or more errors in a row, for example 4", m.ConsecutiveErrorLimit)
	}
	return nil
}

// Measurement is one measurement of a Metric.
type Measurement struct {
	// Time is when the measurement was taken.
	Time time.Time `json:"time"`
	// Value is the measured value; absent when the provider gave none
	// (Inconclusive or Error).
	Value *float64 `json:"value,omitempty"`
	// Phase is the measurement's outcome.
	Phase Phase `json:"phase"`
	// Error says why there is no value: the provider's error (Error) or
	// why the answer held no data (Inconclusive).
	Error string `json:"error,omitempty"`
}

// Result is the outcome of running one Metric, with every measurement.
type Result struct {
	// Metric is Metric.Name.
	Metric string `json:"metric"`
	// Provider names the provider, without credentials.
	Provider string `json:"provider"`
	// Condition is the success condition's text.
	Condition string `json:"condition"`
	// Phase is the run's outcome.
	Phase Phase `json:"phase"`
	// Message says why the run ended as it did.
	Message string `json:"message"`
	// StartedAt is when the run began.
	StartedAt time.Time `json:"startedAt"`
	// FinishedAt is when the run ended.
	FinishedAt time.Time `json:"finishedAt"`
	// Successful counts the measurements that met the condition.
	Successful int `json:"successful"`
	// Failed counts the measurements that did not meet it.
	Failed int `json:"failed"`
	// Inconclusive counts the measurements that found no value.
	Inconclusive int `json:"inconclusive"`
	// Errors counts the measurements the provider failed to take.
	Errors int `json:"errors"`
	// Measurements holds every measurement, in the order taken.
	Measurements []Measurement `json:"measurements"`
}

// Clock is the time source Run waits on; tests inject one with WithClock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

type options struct {
	clock Clock
}

// Option configures Run and RunAll.
type Option func(*options)

// WithClock makes the run read the time and wait between measurements
// with c instead of the system clock, so tests need no sleeps.
func WithClock(c Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

func newOptions(opts []Option) options {
	o := options{clock: realClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Run validates m, then measures it: Count measurements one Interval apart,
// the first at once, stopping early when a limit is exceeded.
//
// The error is non-nil when m is invalid (nothing was measured) or when
// ctx ended before the run did: then the Result holds the measurements
// taken so far, with the phase Inconclusive.
func Run(ctx context.Context, m Metric, opts ...Option) (Result, error) {
	if err := m.Validate(); err != nil {
		return Result{}, err
	}
	return run(ctx, m, newOptions(opts))
}

func run(ctx context.Context, m Metric, o options) (Result, error) {
	r := Result{
		Metric:       m.Name,
		Provider:     describe(m.Provider),
		Condition:    m.SuccessCondition.String(),
		StartedAt:    o.clock.Now(),
		Measurements: []Measurement{},
	}
	end := func(p Phase, format string, args ...any) (Result, error) {
		r.Phase, r.Message, r.FinishedAt = p, fmt.Sprintf(format, args...), o.clock.Now()
		return r, nil
	}
	consecutive := 0
	for taken := 0; ; {
		if err := ctx.Err(); err != nil {
			return cancelled(r, o, taken, m.Count, err)
		}
		ms := measure(ctx, m, o.clock)
		if ms.Phase == PhaseError && ctx.Err() != nil {
			// The provider failed because the run was cancelled: that is
			// no measurement of the metric.
			return cancelled(r, o, taken, m.Count, ctx.Err())
		}
		r.Measurements = append(r.Measurements, ms)
		switch ms.Phase {
		case PhaseSuccessful:
			r.Successful++
		case PhaseFailed:
			r.Failed++
		case PhaseInconclusive:
			r.Inconclusive++
		case PhaseError:
			r.Errors++
		}
		if ms.Phase == PhaseError {
			consecutive++
		} else {
			consecutive = 0
			taken++
		}
		switch {
		case r.Failed > m.FailureLimit:
			return end(PhaseFailed, "%d of %d measurements failed (FailureLimit %d); last: %s does not satisfy %s",
				r.Failed, taken, m.FailureLimit, formatValue(ms.Value), r.Condition)
		case r.Inconclusive > m.InconclusiveLimit:
			return end(PhaseInconclusive, "%d of %d measurements were inconclusive (InconclusiveLimit %d); last: %s",
				r.Inconclusive, taken, m.InconclusiveLimit, ms.Error)
		case consecutive > m.ConsecutiveErrorLimit:
			return end(PhaseError, "provider errors in a row: %d (ConsecutiveErrorLimit %d); last: %s",
				consecutive, m.ConsecutiveErrorLimit, ms.Error)
		case taken >= m.Count && r.Successful == 0:
			return end(PhaseInconclusive, "none of %d measurements succeeded (%d failed, %d inconclusive): nothing shows the release healthy",
				taken, r.Failed, r.Inconclusive)
		case taken >= m.Count:
			return end(PhaseSuccessful, "%d of %d measurements satisfied %s (%d failed, %d inconclusive, %d errors)",
				r.Successful, taken, r.Condition, r.Failed, r.Inconclusive, r.Errors)
		}
		select {
		case <-ctx.Done():
			return cancelled(r, o, taken, m.Count, ctx.Err())
		case <-o.clock.After(m.Interval):
		}
	}
}

func cancelled(r Result, o options, taken, count int, err error) (Result, error) {
	r.Phase = PhaseInconclusive
	r.Message = fmt.Sprintf("cancelled after %d of %d measurements: %v", taken, count, err)
	r.FinishedAt = o.clock.Now()
	return r, fmt.Errorf("analysis: metric %q: %w", r.Metric, err)
}

// measure takes and judges one measurement.
func measure(ctx context.Context, m Metric, c Clock) Measurement {
	ms := Measurement{Time: c.Now()}
	v, err := m.Provider.Measure(ctx)
	switch {
	case err != nil && IsNoData(err):
		ms.Phase, ms.Error = PhaseInconclusive, maskURLError(err).Error()
	case err != nil:
		ms.Phase, ms.Error = PhaseError, maskURLError(err).Error()
	case math.IsNaN(v) || math.IsInf(v, 0):
		ms.Phase, ms.Error = PhaseInconclusive, fmt.Sprintf("the value is %v, not a number to judge", v)
	default:
		ms.Value = &v
		ms.Phase = PhaseFailed
		if m.SuccessCondition.Met(v) {
			ms.Phase = PhaseSuccessful
		}
	}
	return ms
}

func formatValue(v *float64) string {
	if v == nil {
		return "no value"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// Analysis is the outcome of several metrics run together by RunAll.
type Analysis struct {
	// Phase is the worst of the metrics' phases (Successful, then
	// Inconclusive, Error, Failed).
	Phase Phase `json:"phase"`
	// Metrics holds each metric's result, in the order given.
	Metrics []Result `json:"metrics"`
}

// RunAll validates every metric, then runs them concurrently, as Argo
// Rollouts does. As soon as one ends other than Successful, the others are
// stopped: their results keep what they measured, with the phase
// Inconclusive. The error is non-nil when a metric is invalid (nothing was
// measured) or when ctx ended first.
func RunAll(ctx context.Context, metrics []Metric, opts ...Option) (Analysis, error) {
	if len(metrics) == 0 {
		return Analysis{}, errors.New("analysis: no metrics to run; give RunAll at least one Metric")
	}
	seen := map[string]bool{}
	for _, m := range metrics {
		if err := m.Validate(); err != nil {
			return Analysis{}, err
		}
		if seen[m.Name] {
			return Analysis{}, fmt.Errorf("analysis: two metrics are named %q; give each Metric.Name once", m.Name)
		}
		seen[m.Name] = true
	}
	o := newOptions(opts)
	inner, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	a := Analysis{Metrics: make([]Result, len(metrics))}
	errs := make([]error, len(metrics))
	done := make(chan int)
	for i, m := range metrics {
		go func() {
			a.Metrics[i], errs[i] = run(inner, m, o)
			done <- i
		}()
	}
	for range metrics {
		i := <-done
		if errs[i] == nil && a.Metrics[i].Phase != PhaseSuccessful {
			stop(fmt.Errorf("metric %q ended %s", metrics[i].Name, a.Metrics[i].Phase))
		}
	}
	a.Phase = PhaseSuccessful
	for _, r := range a.Metrics {
		if worse[r.Phase] > worse[a.Phase] {
			a.Phase = r.Phase
		}
	}
	if err := ctx.Err(); err != nil {
		return a, fmt.Errorf("analysis: %w", err)
	}
	for i, err := range errs {
		if err != nil && ctx.Err() == nil {
			// Stopped by a sibling: that is not the caller's error.
			a.Metrics[i].Message = fmt.Sprintf("stopped after %d measurements: %v", len(a.Metrics[i].Measurements), context.Cause(inner))
		}
	}
	return a, nil
}
