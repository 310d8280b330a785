// Package analysis measures a release's health the way Argo Rollouts'
// AnalysisTemplate, Flagger's metric checks and Kayenta do: a Metric asks
// a Provider for a value Count times, one Interval apart (the first at
// once), judges each value with a success Condition, and ends with a
// Phase: Successful, Failed, Inconclusive or Error.
//
// A run stops early when more measurements fail than Metric.FailureLimit
// tolerates (Failed), when more are inconclusive than
// Metric.InconclusiveLimit tolerates (Inconclusive: callers pause rather
// than promote), or when more provider errors follow one another than
// Metric.ConsecutiveErrorLimit tolerates (Error). Every measurement is
// kept in the Result, which is JSON-encodable for run records and reports
// and never holds credentials: URLs are masked with mask.URL.
//
// Providers are small: Prometheus (a PromQL instant query over the HTTP
// API), HTTP (a GET whose status code, or a number in its JSON body, is
// the value) and Func (a Go function, for library users). A query that
// returns no data — an empty vector, NaN — is inconclusive, never a
// success: providers say so with an error wrapping ErrNoData.
package analysis
