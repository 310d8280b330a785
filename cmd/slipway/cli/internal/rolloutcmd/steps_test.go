package rolloutcmd

import (
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/analysis"
	"github.com/slipwayhq/slipway/automation/rollout"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// noEnv and noFile are a process without the variables and files a test
// does not give.
func noEnv(string) string { return "" }

func noFile(string) ([]byte, error) {
	return nil, &fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}
}

var promErrors = []string{"errors.prometheus=http://127.0.0.1:9090", `errors.query=sum(rate(http_requests_total{code=~"5.."}[1m]))`,
	"errors.condition=result < 0.05", "errors.count=3", "errors.interval=10s", "errors.failure-limit=1"}

func TestParseSteps_TheStepsInOrderWithTheirAnalyses(t *testing.T) {
	analyses, tokens, err := parseAnalyses(append(promErrors, "health.http=http://canary.example/healthz", "health.condition=result == 200"), noEnv, noFile)
	require.NoError(t, err)
	assert.Empty(t, tokens)
	m := analyses["errors"]
	assert.Equal(t, 3, m.Count)
	assert.Equal(t, 10*time.Second, m.Interval)
	assert.Equal(t, 1, m.FailureLimit)
	assert.Equal(t, "result < 0.05", m.SuccessCondition.String())
	assert.Equal(t, analysis.Prometheus{Address: "http://127.0.0.1:9090", Query: `sum(rate(http_requests_total{code=~"5.."}[1m]))`}, m.Provider)
	assert.Equal(t, analysis.HTTP{URL: "http://canary.example/healthz"}, analyses["health"].Provider)

	steps, err := parseSteps([]string{"weight=10", "analysis=errors,health", "pause=30s", "pause", "promoted", "weight=100"}, analyses)
	require.NoError(t, err)
	var plan []string
	for _, s := range steps {
		plan = append(plan, s.String())
	}
	assert.Equal(t, []string{"weight 10", "analysis errors,health", "pause 30s", "pause until promoted", "pause until promoted", "weight 100"}, plan)
}

// TestParseSteps_BadInputNamesTheFlagAndTheFix: every refusal is bad
// input (exit 1, invalid_input) that names the flag it comes from.
func TestParseSteps_BadInputNamesTheFlagAndTheFix(t *testing.T) {
	cases := map[string]struct {
		steps, analyses []string
		want            string
	}{
		"no step":                {nil, nil, "--step is required; a step is weight=1..100"},
		"unknown step":           {[]string{"setWeight=10"}, nil, `--step "setWeight=10" is not a step; a step is weight=1..100`},
		"weight not a number":    {[]string{"weight=ten"}, nil, "--step weight=ten: the weight must be a whole percentage from 1 to 100"},
		"weight too large":       {[]string{"weight=101"}, nil, "--step weight=101: the weight must be a whole percentage from 1 to 100"},
		"weight zero":            {[]string{"weight=0"}, nil, "--step weight=0: the weight"},
		"bad pause":              {[]string{"pause=soon"}, nil, "--step pause=soon: give a positive duration, e.g. pause=30s"},
		"negative pause":         {[]string{"pause=-1s"}, nil, "--step pause=-1s: give a positive duration"},
		"undefined analysis":     {[]string{"analysis=errors"}, nil, "--step analysis=errors: no --analysis errors is defined"},
		"unused analysis":        {[]string{"weight=10"}, promErrors, "--analysis errors is defined but no --step analysis=errors runs it"},
		"analysis not dotted":    {[]string{"weight=10"}, []string{"errors=http://x"}, `--analysis "errors=http://x": use NAME.FIELD=VALUE`},
		"analysis bad name":      {[]string{"weight=10"}, []string{"Errors.count=1"}, `the name "Errors" must be a lower-case DNS label`},
		"analysis bad field":     {[]string{"weight=10"}, []string{"errors.address=http://x"}, `--analysis errors.address: "address" is not a field; use one of prometheus, query`},
		"analysis empty value":   {[]string{"weight=10"}, []string{"errors.query="}, "--analysis errors.query has an empty value"},
		"analysis twice":         {[]string{"weight=10"}, []string{"errors.count=1", "errors.count=2"}, "--analysis errors.count is given twice"},
		"token on argv":          {[]string{"weight=10"}, []string{"errors.token=abc"}, "--analysis errors.token: a secret on the command line is visible in the process list; give it with --analysis errors.bearer-token-env"},
		"password in URL":        {[]string{"analysis=errors"}, []string{"errors.prometheus=http://u:pw@127.0.0.1:9090", "errors.query=up", "errors.condition=result>0"}, "--analysis errors.prometheus: the URL holds a password"},
		"no condition":           {[]string{"analysis=errors"}, []string{"errors.prometheus=http://127.0.0.1:9090", "errors.query=up"}, "--analysis errors.condition is not set"},
		"bad condition":          {[]string{"analysis=errors"}, []string{"errors.http=http://x", "errors.condition=value < 1"}, `--analysis errors.condition: condition "value < 1" must start with "result"`},
		"no provider":            {[]string{"analysis=errors"}, []string{"errors.condition=result < 1"}, "--analysis errors: set exactly one of --analysis errors.prometheus=URL"},
		"two providers":          {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=http://x", "errors.prometheus=http://y", "errors.query=up"}, "set exactly one of"},
		"prometheus no query":    {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.prometheus=http://y"}, "--analysis errors.query is not set"},
		"query on http":          {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=http://y", "errors.query=up"}, "--analysis errors.query is for --analysis errors.prometheus analyses"},
		"json-field on prom":     {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.prometheus=http://y", "errors.query=up", "errors.json-field=a"}, "--analysis errors.json-field is for --analysis errors.http checks"},
		"not a URL":              {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=ftp://y"}, `--analysis errors.http "ftp://y" is not an absolute http or https URL`},
		"count without interval": {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=http://y", "errors.count=3"}, "--analysis errors.count is 3 but --analysis errors.interval is not set"},
		"count zero":             {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=http://y", "errors.count=0"}, "--analysis errors.count=0: give a whole number"},
		"bad interval":           {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=http://y", "errors.interval=often"}, "--analysis errors.interval=often: give a positive duration"},
		"failure limit":          {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=http://y", "errors.failure-limit=1"}, "--analysis errors.failure-limit=1 with --analysis errors.count=1: tolerate from 0 to 0"},
		"token env unset":        {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=http://y", "errors.bearer-token-env=PROM_TOKEN"}, "--analysis errors.bearer-token-env=PROM_TOKEN: the environment variable PROM_TOKEN is empty or not set"},
		"token file missing":     {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=http://y", "errors.bearer-token-file=/nope"}, "--analysis errors.bearer-token-file=/nope is not a readable file"},
		"token twice":            {[]string{"analysis=errors"}, []string{"errors.condition=result < 1", "errors.http=http://y", "errors.bearer-token-file=/a", "errors.bearer-token-env=B"}, "read the token from one place"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			analyses, _, err := parseAnalyses(c.analyses, noEnv, noFile)
			if err == nil {
				_, err = parseSteps(c.steps, analyses)
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, errors.As(err, new(*app.InputError)), "bad input, found before anything is touched: %v", err)
		})
	}
}

// TestParseAnalyses_TheTokenComesFromTheEnvironmentOrAFileAndIsSent: the
// token reaches the server as a bearer token and is returned for masking;
// it is never on the command line.
func TestParseAnalyses_TheTokenComesFromTheEnvironmentOrAFileAndIsSent(t *testing.T) {
	const token = "tok-3f9a-secret"
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	for name, field := range map[string]string{"env": "bearer-token-env=PROM_TOKEN", "file": "bearer-token-file=/run/token"} {
		t.Run(name, func(t *testing.T) {
			got = nil
			env := func(k string) string { return map[string]string{"PROM_TOKEN": " " + token + "\n"}[k] }
			file := func(p string) ([]byte, error) {
				if p == "/run/token" {
					return []byte(token + "\n"), nil
				}
				return noFile(p)
			}
			analyses, tokens, err := parseAnalyses([]string{"up.http=" + srv.URL, "up.condition=result == 200", "up." + field}, env, file)
			require.NoError(t, err)
			assert.Equal(t, []string{token}, tokens, "the token is returned to be masked")
			res, err := analysis.Run(t.Context(), analyses["up"])
			require.NoError(t, err)
			assert.Equal(t, analysis.PhaseSuccessful, res.Phase, res.Message)
			assert.Equal(t, []string{"Bearer " + token}, got)
			assert.NotContains(t, analyses["up"].Provider.(analysis.HTTP).String(), token)
		})
	}
}

func TestPrintState_ShowsEveryStepAndMeasurement(t *testing.T) {
	v := 0.5
	start := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	res := analysis.Result{Metric: "errors", Provider: "GET http://x", Condition: "result < 0.05", Phase: analysis.PhaseFailed,
		Message: "1 of 1 measurements failed", Measurements: []analysis.Measurement{{Time: start, Value: &v, Phase: analysis.PhaseFailed}}}
	st := rollout.State{Name: "slipway/dev", Version: `{"Name":"dev","Kind":"dev","Params":{"Namespace":"slipway-dev-with-a-long-name","App":{"Image":"nginx:1.28"}}}`, Plan: []string{"weight 10", "analysis errors", "weight 50"}, Phase: rollout.Aborted,
		Step: 1, Cause: "step 1: analysis errors failed", Started: start, Updated: start,
		Checks: []rollout.Check{{Step: 1, Gate: "errors", Verdict: rollout.Failed, Detail: res, At: start}}}
	var b strings.Builder
	g := &app.Globals{}
	printState(&b, g, st, start)
	out := b.String()
	for _, want := range []string{"rollout slipway/dev: Aborted", "cause    step 1: analysis errors failed", "step 0  weight 10", "done",
		"step 1  analysis errors", "aborted", "analysis errors: Failed (GET http://x, result < 0.05): 1 of 1 measurements failed",
		"18:00:00  0.5          Failed", "version  image nginx:1.28 (sha256:", "step 2  weight 50", "pending"} {
		assert.Contains(t, out, want)
	}
}

// TestFollow_PrintsALinePerChangeUntilAFinalPhase: without a terminal,
// --watch prints one plain line per change of the record (none for a read
// that changed nothing) and the whole record once the phase is final.
func TestFollow_PrintsALinePerChangeUntilAFinalPhase(t *testing.T) {
	base := rollout.State{Name: "slipway/dev", Version: "v2", Plan: []string{"weight 10", "pause until promoted", "weight 50"}}
	at := func(phase rollout.Phase, step, weight int) rollout.State {
		s := base
		s.Phase, s.Step, s.Weight = phase, step, weight
		return s
	}
	reads := []rollout.State{at(rollout.Paused, 1, 10), at(rollout.Progressing, 2, 10), at(rollout.Progressing, 2, 10), at(rollout.Promoted, 3, 0)}
	var out strings.Builder
	g := &app.Globals{Out: &out}
	st, err := follow(t.Context(), g, at(rollout.Progressing, 0, 0), func() (rollout.State, error) {
		s := reads[0]
		reads = reads[1:]
		return s, nil
	}, time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, rollout.Promoted, st.Phase)
	assert.Empty(t, reads, "it read until the final phase")
	lines := strings.Split(out.String(), "\n")
	require.GreaterOrEqual(t, len(lines), 5)
	assert.Equal(t, []string{
		"slipway/dev: Progressing at step 0 of 0-2 (weight 10: in progress), canary weight 0 %",
		"slipway/dev: Paused at step 1 of 0-2 (pause until promoted: paused), canary weight 10 %",
		"slipway/dev: Progressing at step 2 of 0-2 (weight 50: in progress), canary weight 10 %",
		"slipway/dev: Promoted",
		"rollout slipway/dev: Promoted",
	}, lines[:5])
}
