package rolloutcmd

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// stepHelp is shown with every refusal of a --step.
const stepHelp = "a step is weight=1..100, pause=DURATION (e.g. pause=30s), pause (until `rollout promote`) or analysis=NAME[,NAME...] " +
	"(each an --analysis NAME), e.g. --step weight=10 --step analysis=errors --step pause --step weight=50"

// analysisHelp is shown with every refusal of an --analysis.
const analysisHelp = "define an analysis with NAME.FIELD=VALUE, e.g. --analysis errors.prometheus=http://127.0.0.1:9090 " +
	"--analysis 'errors.query=sum(rate(http_requests_total{code=~\"5..\"}[1m]))' --analysis 'errors.condition=result < 0.05'; " +
	"fields: prometheus, query, http, json-field, condition, count, interval, failure-limit, inconclusive-limit, error-limit, timeout, " +
	"bearer-token-env, bearer-token-file"

// analysisNameRE is what an analysis' name must match.
var analysisNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// analysisFields are the fields --analysis sets, in the order they are
// documented.
var analysisFields = []string{"prometheus", "query", "http", "json-field", "condition", "count", "interval",
	"failure-limit", "inconclusive-limit", "error-limit", "timeout", "bearer-token-env", "bearer-token-file"}

// secretFields are fields that would carry a secret on the command line:
// refused, with where the secret goes instead.
var secretFields = map[string]bool{"token": true, "bearer-token": true, "password": true, "authorization": true}

// parseAnalyses turns the --analysis NAME.FIELD=VALUE flags into metrics
// by name. Tokens come only from the environment or a file (getenv and
// readFile), and are returned so the caller masks them. Nothing is
// measured.
func parseAnalyses(values []string, getenv func(string) string, readFile func(string) ([]byte, error)) (map[string]analysis.Metric, []string, error) {
	fields := map[string]map[string]string{}
	var order []string
	for _, v := range values {
		key, val, ok := strings.Cut(v, "=")
		name, field, dotted := strings.Cut(key, ".")
		switch {
		case !ok || !dotted || name == "" || field == "":
			return nil, nil, app.BadInput("--analysis %q: use NAME.FIELD=VALUE; %s", v, analysisHelp)
		case !analysisNameRE.MatchString(name) || len(name) > 40:
			return nil, nil, app.BadInput("--analysis %q: the name %q must be a lower-case DNS label of at most 40 characters, e.g. errors", v, name)
		case secretFields[field]:
			return nil, nil, app.BadInput("--analysis %s.%s: a secret on the command line is visible in the process list; "+
				"give it with --analysis %s.bearer-token-env=VARIABLE or --analysis %s.bearer-token-file=PATH", name, field, name, name)
		case !slices.Contains(analysisFields, field):
			return nil, nil, app.BadInput("--analysis %s.%s: %q is not a field; use one of %s", name, field, field, strings.Join(analysisFields, ", "))
		case val == "":
			return nil, nil, app.BadInput("--analysis %s.%s has an empty value; give one, or leave the field out", name, field)
		}
		if fields[name] == nil {
			fields[name] = map[string]string{}
			order = append(order, name)
		}
		if _, dup := fields[name][field]; dup {
			return nil, nil, app.BadInput("--analysis %s.%s is given twice; give each field once", name, field)
		}
		fields[name][field] = val
	}
	out := map[string]analysis.Metric{}
	var tokens []string
	for _, name := range order {
		m, token, err := metricOf(name, fields[name], getenv, readFile)
		if err != nil {
			return nil, nil, err
		}
		if token != "" {
			tokens = append(tokens, token)
		}
		out[name] = m
	}
	return out, tokens, nil
}

// metricOf builds one analysis from its fields.
func metricOf(name string, f map[string]string, getenv func(string) string, readFile func(string) ([]byte, error)) (analysis.Metric, string, error) {
	flag := func(field string) string { return "--analysis " + name + "." + field }
	m := analysis.Metric{Name: name, Count: 1, ConsecutiveErrorLimit: 4}
	ints := map[string]*int{"count": &m.Count, "failure-limit": &m.FailureLimit, "inconclusive-limit": &m.InconclusiveLimit, "error-limit": &m.ConsecutiveErrorLimit}
	for _, field := range []string{"count", "failure-limit", "inconclusive-limit", "error-limit"} {
		if s, ok := f[field]; ok {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || (field == "count" && n < 1) {
				return m, "", app.BadInput("%s=%s: give a whole number (at least 1 for count, else 0 or more)", flag(field), s)
			}
			*ints[field] = n
		}
	}
	var timeout time.Duration
	for field, d := range map[string]*time.Duration{"interval": &m.Interval, "timeout": &timeout} {
		if s, ok := f[field]; ok {
			v, err := time.ParseDuration(s)
			if err != nil || v <= 0 {
				return m, "", app.BadInput("%s=%s: give a positive duration, e.g. 30s", flag(field), s)
			}
			*d = v
		}
	}
	switch {
	case m.Count > 1 && m.Interval == 0:
		return m, "", app.BadInput("%s is %d but %s is not set; give the time between measurements, e.g. %s=30s", flag("count"), m.Count, flag("interval"), flag("interval"))
	case m.FailureLimit >= m.Count:
		return m, "", app.BadInput("%s=%d with %s=%d: tolerate from 0 to %d failed measurements", flag("failure-limit"), m.FailureLimit, flag("count"), m.Count, m.Count-1)
	case m.InconclusiveLimit >= m.Count:
		return m, "", app.BadInput("%s=%d with %s=%d: tolerate from 0 to %d inconclusive measurements", flag("inconclusive-limit"), m.InconclusiveLimit, flag("count"), m.Count, m.Count-1)
	}
	cond, ok := f["condition"]
	if !ok {
		return m, "", app.BadInput("%s is not set; say what a healthy value is, e.g. %s='result < 0.05'", flag("condition"), flag("condition"))
	}
	c, err := analysis.ParseCondition(cond)
	if err != nil {
		return m, "", app.BadInput("%s: %v", flag("condition"), strings.TrimPrefix(err.Error(), "analysis: "))
	}
	m.SuccessCondition = c
	token, err := bearerToken(name, f, getenv, readFile)
	if err != nil {
		return m, "", err
	}
	var client *http.Client
	if token != "" {
		client = &http.Client{Transport: bearer{token: token, next: http.DefaultTransport}}
	}
	prom, isProm := f["prometheus"]
	target, isHTTP := f["http"]
	switch {
	case isProm == isHTTP:
		return m, "", app.BadInput("--analysis %s: set exactly one of %s=URL (with %s=PROMQL) or %s=URL; %s", name, flag("prometheus"), flag("query"), flag("http"), analysisHelp)
	case isProm:
		if _, ok := f["json-field"]; ok {
			return m, "", app.BadInput("%s is for %s checks; a Prometheus analysis reads its query's value", flag("json-field"), flag("http"))
		}
		if err := noPassword(flag("prometheus"), prom, name); err != nil {
			return m, "", err
		}
		q, ok := f["query"]
		if !ok {
			return m, "", app.BadInput("%s is not set; give a PromQL query that gives one number, e.g. %s='sum(rate(http_requests_total{code=~\"5..\"}[1m]))'", flag("query"), flag("query"))
		}
		m.Provider = analysis.Prometheus{Address: prom, Query: q, Client: client, Timeout: timeout}
	default:
		if _, ok := f["query"]; ok {
			return m, "", app.BadInput("%s is for %s analyses; an HTTP check reads the status code or %s", flag("query"), flag("prometheus"), flag("json-field"))
		}
		if err := noPassword(flag("http"), target, name); err != nil {
			return m, "", err
		}
		m.Provider = analysis.HTTP{URL: target, JSONField: f["json-field"], Client: client, Timeout: timeout}
	}
	if v, ok := m.Provider.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil { // in the flags' names
			return m, "", app.BadInput("%s", strings.NewReplacer("Prometheus.Address", flag("prometheus"), "Prometheus.Query", flag("query"),
				"Prometheus.Timeout", flag("timeout"), "HTTP.URL", flag("http"), "HTTP.Timeout", flag("timeout")).Replace(err.Error()))
		}
	}
	if err := m.Validate(); err != nil {
		return m, "", app.BadInput("--analysis %s: %s", name, strings.TrimPrefix(err.Error(), fmt.Sprintf("analysis: metric %q: ", name)))
	}
	return m, token, nil
}

// noPassword refuses a URL that holds a password: the command line is
// visible in the process list.
func noPassword(flag, raw, name string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return app.BadInput("%s=%s is not a URL; give e.g. http://127.0.0.1:9090", flag, raw)
	}
	if _, ok := u.User.Password(); ok {
		return app.BadInput("%s: the URL holds a password, which the process list shows; give a token with --analysis %s.bearer-token-env or --analysis %s.bearer-token-file", flag, name, name)
	}
	return nil
}

// bearerToken reads an analysis' token from the environment variable or
// the file its fields name.
func bearerToken(name string, f map[string]string, getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	env, fromEnv := f["bearer-token-env"]
	file, fromFile := f["bearer-token-file"]
	flag := "--analysis " + name + ".bearer-token-"
	switch {
	case fromEnv && fromFile:
		return "", app.BadInput("%senv and %sfile are both set; read the token from one place", flag, flag)
	case fromEnv:
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			return "", app.BadInput("%senv=%s: the environment variable %s is empty or not set; export the token in it", flag, env, env)
		}
		return v, nil
	case fromFile:
		b, err := readFile(file)
		if err != nil {
			return "", app.BadInput("%sfile=%s is not a readable file: %v", flag, file, errors.Unwrap(err))
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", app.BadInput("%sfile=%s is empty; write the token into it", flag, file)
		}
		return v, nil
	}
	return "", nil
}

// bearer adds a bearer token to each request.
type bearer struct {
	token string
	next  http.RoundTripper
}

// RoundTrip sends r with the token.
func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// parseSteps turns the --step flags into the rollout's steps, with the
// analyses --analysis defines; an analysis defined but used by no step is
// refused too (a typo would skip it).
func parseSteps(values []string, analyses map[string]analysis.Metric) ([]rollout.Step, error) {
	if len(values) == 0 {
		return nil, app.BadInput("--step is required; %s", stepHelp)
	}
	used := map[string]bool{}
	var steps []rollout.Step
	for _, v := range values {
		kind, arg, hasArg := strings.Cut(strings.TrimSpace(v), "=")
		var s rollout.Step
		switch {
		case kind == "weight" && hasArg:
			n, err := strconv.Atoi(arg)
			if err != nil || n < 1 || n > 100 {
				return nil, app.BadInput("--step %s: the weight must be a whole percentage from 1 to 100, e.g. weight=10", v)
			}
			s.Weight = n
		case kind == "pause" && hasArg:
			d, err := time.ParseDuration(arg)
			if err != nil || d <= 0 {
				return nil, app.BadInput("--step %s: give a positive duration, e.g. pause=30s, or pause alone to wait for `rollout promote`", v)
			}
			s.Pause = d
		case (kind == "pause" || kind == "promoted") && !hasArg:
			s.UntilPromoted = true
		case kind == "analysis" && hasArg:
			for _, name := range strings.Split(arg, ",") {
				m, ok := analyses[name]
				if !ok {
					return nil, app.BadInput("--step %s: no --analysis %s is defined; %s", v, name, analysisHelp)
				}
				used[name] = true
				s.Gates = append(s.Gates, rollout.AnalysisGate(m))
			}
		default:
			return nil, app.BadInput("--step %q is not a step; %s", v, stepHelp)
		}
		steps = append(steps, s)
	}
	for name := range analyses {
		if !used[name] {
			return nil, app.BadInput("--analysis %s is defined but no --step analysis=%s runs it; add the step or leave the analysis out", name, name)
		}
	}
	if err := rollout.Validate(steps); err != nil {
		return nil, app.BadInput("--step: %v", err)
	}
	return steps, nil
}
