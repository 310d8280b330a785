package dashboard_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/slipwayhq/slipway/automation/approvals"
	"github.com/slipwayhq/slipway/automation/dashboard"
	"github.com/slipwayhq/slipway/automation/dora"
	"github.com/slipwayhq/slipway/automation/releases"
	"github.com/slipwayhq/slipway/automation/runs"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/policypacks"
)

// now is the dashboard's clock in these tests.
var now = time.Date(2031, 3, 14, 12, 0, 0, 0, time.UTC)

// fakeSecret is a value that must never reach a page.
const fakeSecret = "hunter2-Sup3rSecret-Value-9f8e7d"

func newStore(t *testing.T) *statestore.Store {
	t.Helper()
	d, err := statestore.FileDriver(t.TempDir())
	require.NoError(t, err)
	st := statestore.New(d)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// run writes a run that started ago before now.
func run(t *testing.T, st *statestore.Store, stack, op, result string, ago time.Duration, edit func(*runs.Record)) runs.Record {
	t.Helper()
	r := runs.Record{Project: "shop", Stack: stack, Operation: op, Result: result, Started: now.Add(-ago),
		Duration: 42 * time.Second, Summary: map[string]int{"create": 2, "same": 3}, Changes: 2}
	if edit != nil {
		edit(&r)
	}
	require.NoError(t, runs.Write(context.Background(), st, r))
	return r
}

// release writes a release recorded ago before now, committed lead before that.
func release(t *testing.T, st *statestore.Store, stack, status string, ago, lead time.Duration) {
	t.Helper()
	at := now.Add(-ago)
	r := releases.Record{ID: statestore.NewReleaseName(at), Project: "shop", Stack: stack, Status: status, Recorded: at,
		Version: `{"image":"web:1.2.3","token":"` + fakeSecret + `"}`, Revision: "0123456789abcdef0123", CommitTime: at.Add(-lead)}
	_, err := releases.Write(context.Background(), st, r, nil)
	require.NoError(t, err)
}

const configMapURN = "urn:pulumi:dev::shop::kubernetes:core/v1:ConfigMap::web-config"

// seed writes a scripted history: dev deployed and then drifted, prod
// blocked by a policy, qa failed (its error masked), and an empty stage
// with releases only.
func seed(t *testing.T, st *statestore.Store) {
	t.Helper()
	day := 24 * time.Hour
	release(t, st, "dev", releases.Verified, 5*day, 2*time.Hour)
	release(t, st, "dev", releases.Failed, 3*day, time.Hour)
	release(t, st, "dev", releases.Verified, 2*day, 3*time.Hour)
	run(t, st, "dev", "up", runs.Succeeded, 2*day, nil)
	run(t, st, "dev", "drift", runs.Changes, time.Hour, func(r *runs.Record) {
		r.Changes, r.Summary = 1, nil
		r.Drift = []runs.Drifted{{URN: configMapURN, Type: "kubernetes:core/v1:ConfigMap", Properties: []string{"data.GREETING", "metadata.labels.team"}}}
	})
	run(t, st, "prod", "up", runs.Succeeded, 4*day, nil)
	run(t, st, "prod", "up", runs.Blocked, 30*time.Minute, func(r *runs.Record) {
		r.Changes = 0
		r.Findings = []policypacks.Finding{{Pack: "slipway-kubernetes", Policy: "image-pinned", URN: "urn:pulumi:prod::shop::kubernetes:apps/v1:Deployment::web",
			Type: "kubernetes:apps/v1:Deployment", Severity: "high", Enforcement: policypacks.Mandatory, Message: "image web:latest is not pinned to a tag or digest"}}
	})
	run(t, st, "qa", "up", runs.Failed, 10*time.Minute, func(r *runs.Record) {
		r.Error = "up of qa: provider rejected the token [secret]: 401 Unauthorized"
	})
	release(t, st, "staging", releases.Applied, 6*day, time.Hour)
}

type fixture struct {
	st *statestore.Store
	h  http.Handler
}

func newFixture(t *testing.T, edit func(*dashboard.Options)) fixture {
	t.Helper()
	st := newStore(t)
	seed(t, st)
	o := dashboard.Options{Store: st, Now: func() time.Time { return now }, Rate: rate.Inf}
	if edit != nil {
		edit(&o)
	}
	h, err := dashboard.New(o)
	require.NoError(t, err)
	return fixture{st: st, h: h}
}

// do serves one request from client 192.0.2.1.
func (f fixture) do(t *testing.T, method, target string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	req.RemoteAddr = "192.0.2.1:4242"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

func (f fixture) get(t *testing.T, target string) string {
	t.Helper()
	w := f.do(t, http.MethodGet, target, nil, nil)
	require.Equal(t, http.StatusOK, w.Code, "GET %s: %s", target, w.Body)
	assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	return w.Body.String()
}

var rowRE = regexp.MustCompile(`(?s)<tr data-env="([^"]+)">(.*?)</tr>`)

// rows returns the index table's rows by "project/stack".
func rows(t *testing.T, page string) (map[string]string, []string) {
	t.Helper()
	out := map[string]string{}
	var order []string
	for _, m := range rowRE.FindAllStringSubmatch(page, -1) {
		out[m[1]] = m[2]
		order = append(order, m[1])
	}
	return out, order
}

var tagRE = regexp.MustCompile(`<[^>]+>`)

// text strips tags and collapses spaces.
func text(s string) string {
	return strings.Join(strings.Fields(tagRE.ReplaceAllString(s, " ")), " ")
}

func TestDashboard_IndexListsEnvironmentsWithTheirLastResults(t *testing.T) {
	f := newFixture(t, nil)
	page := f.get(t, "/")
	got, order := rows(t, page)
	assert.Equal(t, []string{"shop/dev", "shop/prod", "shop/qa", "shop/staging"}, order)
	want := map[string][]string{
		"shop/dev":     {"dev", "drifted", "drift", "changes", "2031-03-14 11:00 UTC", "42.0s", "verified"},
		"shop/prod":    {"prod", "blocked", "up blocked", "1 (1 blocking)"},
		"shop/qa":      {"qa", "failed", "up failed", "2031-03-14 11:50 UTC"},
		"shop/staging": {"staging", "healthy", "no runs recorded", "applied"},
	}
	for env, parts := range want {
		row := text(got[env])
		for _, p := range parts {
			assert.Contains(t, row, p, "row of %s", env)
		}
	}
	// dev's drift count is the number of drifted resources of its last check.
	assert.Regexp(t, `class="count hot">1<`, got["shop/dev"])
	assert.Contains(t, got["shop/dev"], `href="/env/shop/dev"`)
	// DORA mini figures: dev has 3 deployments in 30 days, one failed.
	assert.Contains(t, text(got["shop/dev"]), "CFR 33%")
	assert.Contains(t, text(page), "Environments 4 Healthy 1 Failing or blocked 2 Drifted 1")

	// A project filter hides the others.
	other := newFixture(t, func(o *dashboard.Options) { o.Projects = []string{"billing"} })
	got, _ = rows(t, other.get(t, "/"))
	assert.Empty(t, got)
	assert.Equal(t, http.StatusNotFound, other.do(t, http.MethodGet, "/env/shop/dev", nil, nil).Code)
}

func TestDashboard_DetailsShowDriftPathsFindingsRunsAndReleases(t *testing.T) {
	f := newFixture(t, nil)
	dev := f.get(t, "/env/shop/dev")
	drift := section(t, dev, "drift")
	assert.Contains(t, drift, "web-config")
	assert.Contains(t, drift, "kubernetes:core/v1:ConfigMap")
	assert.Contains(t, drift, "data.GREETING")
	assert.Contains(t, drift, "metadata.labels.team")
	// Runs, latest first.
	rs := text(section(t, dev, "runs"))
	assert.Less(t, strings.Index(rs, "drift changes"), strings.Index(rs, "up succeeded"), "latest first: %s", rs)
	assert.Contains(t, rs, "2 create")
	// Releases, latest first, with commit time and revision.
	rel := text(section(t, dev, "releases"))
	assert.Equal(t, 3, strings.Count(rel, "0123456789ab"), rel)
	assert.Less(t, strings.Index(rel, "verified"), strings.Index(rel, "failed"))
	assert.Contains(t, rel, "2031-03-12 09:00 UTC", "the commit time of the newest release")
	// DORA charts: one bar per day with deployments (3), one red part for the failure.
	charts := section(t, dev, "") // whole page
	assert.Equal(t, 3, strings.Count(charts, `<rect class="ok"`), "deployment bars")
	assert.Contains(t, charts, "<polyline points=")
	assert.Contains(t, charts, "Lead time for changes")

	prod := f.get(t, "/env/shop/prod")
	fs := text(section(t, prod, "findings"))
	for _, want := range []string{"slipway-kubernetes", "image-pinned", "mandatory", "high", "web", "image web:latest is not pinned"} {
		assert.Contains(t, fs, want)
	}
	assert.Contains(t, text(section(t, prod, "drift")), "No drift check recorded")

	assert.Equal(t, http.StatusNotFound, f.do(t, http.MethodGet, "/env/shop/nosuch", nil, nil).Code)
}

// section returns the <section id=id> of a page (the page when id is "").
func section(t *testing.T, page, id string) string {
	t.Helper()
	if id == "" {
		return page
	}
	i := strings.Index(page, `<section class="panel" id="`+id+`">`)
	require.GreaterOrEqual(t, i, 0, "section %s", id)
	j := strings.Index(page[i:], "</section>")
	return page[i : i+j]
}

func TestDashboard_NeverShowsSecretValues(t *testing.T) {
	f := newFixture(t, nil)
	for _, p := range []string{"/", "/env/shop/dev", "/env/shop/qa", "/env/shop/prod", "/env/shop/staging", "/approvals"} {
		page := f.get(t, p)
		assert.NotContains(t, page, fakeSecret, p)
		assert.NotContains(t, page, "web:1.2.3", "%s: a release's Version is shown only as a hash", p)
	}
	qa := f.get(t, "/env/shop/qa")
	assert.Contains(t, qa, "provider rejected the token [secret]", "the masked error is shown")
	sum := sha256.Sum256([]byte(`{"image":"web:1.2.3","token":"` + fakeSecret + `"}`))
	assert.Contains(t, f.get(t, "/env/shop/dev"), hex.EncodeToString(sum[:])[:12])
}

func TestDashboard_SecurityHeadersOnEveryResponse(t *testing.T) {
	f := newFixture(t, nil)
	page := f.get(t, "/")
	for _, w := range []*httptest.ResponseRecorder{f.do(t, http.MethodGet, "/", nil, nil), f.do(t, http.MethodPost, "/", nil, nil),
		f.do(t, http.MethodGet, "/nosuch", nil, nil)} {
		h := w.Header()
		csp := h.Get("Content-Security-Policy")
		assert.Contains(t, csp, "default-src 'none'")
		assert.Contains(t, csp, "img-src 'self' data:")
		assert.Contains(t, csp, "frame-ancestors 'none'")
		assert.NotContains(t, csp, "script-src")
		assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
		assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
		assert.Equal(t, "DENY", h.Get("X-Frame-Options"))
	}
	// The inline stylesheet is allowed by its hash, and it is the only one.
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatch(page, -1)
	require.Len(t, m, 1)
	sum := sha256.Sum256([]byte(m[0][1]))
	assert.Contains(t, dashboard.ContentSecurityPolicy, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	assert.NotContains(t, page, "<script")
	assert.NotContains(t, page, ` style="`, "inline style attributes would need 'unsafe-inline'")
}

func TestDashboard_PagesAreGETOnly(t *testing.T) {
	f := newFixture(t, func(o *dashboard.Options) { o.Gatherer = prometheus.NewRegistry() })
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/"}, {http.MethodPut, "/env/shop/dev"}, {http.MethodDelete, "/approvals"},
		{http.MethodPost, "/healthz"}, {http.MethodPost, "/metrics"}, {http.MethodPatch, "/env/shop/prod"},
	} {
		w := f.do(t, c.method, c.path, strings.NewReader("x=1"), nil)
		assert.Equal(t, http.StatusMethodNotAllowed, w.Code, "%s %s", c.method, c.path)
		assert.Contains(t, w.Header().Get("Allow"), http.MethodGet, "%s %s", c.method, c.path)
	}
	assert.Equal(t, http.StatusOK, f.do(t, http.MethodGet, "/healthz", nil, nil).Code)
	assert.Equal(t, http.StatusOK, f.do(t, http.MethodHead, "/", nil, nil).Code)
}

func TestDashboard_BodyOverTheLimitIs413(t *testing.T) {
	var reached int
	slack := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		reached = len(b)
		w.WriteHeader(http.StatusOK)
	})
	f := newFixture(t, func(o *dashboard.Options) { o.MaxBody, o.Slack = 1024, slack })
	big := strings.Repeat("a", 1025)
	w := f.do(t, http.MethodPost, "/slack/actions", strings.NewReader(big), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code, "declared length over the limit")
	// A body of unknown length (chunked) over the limit.
	req := httptest.NewRequest(http.MethodPost, "/slack/actions", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, "streamed body over the limit")
	assert.Zero(t, reached, "the handler never saw an oversized body")
	// At the limit it passes.
	w = f.do(t, http.MethodPost, "/slack/actions", strings.NewReader(big[:1024]), nil)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, 1024, reached)
}

func TestDashboard_RateLimitIs429AfterTheBurst(t *testing.T) {
	clock := now
	f := newFixture(t, func(o *dashboard.Options) {
		o.Rate, o.Burst, o.Now = 1, 5, func() time.Time { return clock }
	})
	for i := range 5 {
		assert.Equal(t, http.StatusOK, f.do(t, http.MethodGet, "/healthz", nil, nil).Code, "request %d", i)
	}
	w := f.do(t, http.MethodGet, "/healthz", nil, nil)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.NotEmpty(t, w.Header().Get("Content-Security-Policy"), "refusals carry the security headers too")
	// Another client has its own bucket.
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.RemoteAddr = "198.51.100.7:1234"
	other := httptest.NewRecorder()
	f.h.ServeHTTP(other, req)
	assert.Equal(t, http.StatusOK, other.Code)
	// X-Forwarded-For does not get a client a new bucket.
	w = f.do(t, http.MethodGet, "/healthz", nil, map[string]string{"X-Forwarded-For": "203.0.113.9"})
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	// A second later one token is back.
	clock = clock.Add(time.Second)
	assert.Equal(t, http.StatusOK, f.do(t, http.MethodGet, "/healthz", nil, nil).Code)
	assert.Equal(t, http.StatusTooManyRequests, f.do(t, http.MethodGet, "/healthz", nil, nil).Code)
}

func TestDashboard_HostCheckRefusesOtherHosts(t *testing.T) {
	f := newFixture(t, func(o *dashboard.Options) { o.Hosts = []string{"127.0.0.1", "localhost"} })
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8090/healthz", nil)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	assert.Equal(t, http.StatusOK, w.Code)
	req = httptest.NewRequest(http.MethodGet, "http://attacker.example:8090/", nil)
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	assert.Equal(t, http.StatusMisdirectedRequest, w.Code, "DNS rebinding: a page of another host is refused")
}

// signingKey is the server's approval signing key in these tests.
var signingKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))

// pending records a pending approval request.
func pending(t *testing.T, st *statestore.Store) approvals.Request {
	t.Helper()
	r, err := approvals.New(st).Request(context.Background(), approvals.Request{Project: "shop", Stack: "prod", Stage: "prod",
		Summary: "prod: 2 to update", Changes: 2})
	require.NoError(t, err)
	return r
}

func status(t *testing.T, st *statestore.Store, id string) approvals.Status {
	t.Helper()
	r, err := approvals.New(st).Get(context.Background(), id)
	require.NoError(t, err)
	return r.Status
}

func TestDashboard_APIRefusesMissingAndWrongTokens(t *testing.T) {
	token := []byte("s3rve-token-0123456789")
	var f fixture
	f = newFixture(t, func(o *dashboard.Options) {
		tokens, err := approvals.NewTokens(approvals.Token{Name: "carol", Secret: token})
		require.NoError(t, err)
		o.API, o.Tokens = approvals.APIHandler(approvals.New(o.Store, approvals.WithSigningKey(signingKey)), tokens), tokens
	})
	req := pending(t, f.st)
	decide := `{"decision":"approve"}`
	for name, hdr := range map[string]map[string]string{
		"missing":      nil,
		"wrong":        {"Authorization": "Bearer not-the-token"},
		"wrong scheme": {"Authorization": "Basic " + base64.StdEncoding.EncodeToString(token)},
		"prefix":       {"Authorization": "Bearer " + string(token[:10])},
	} {
		w := f.do(t, http.MethodPost, "/api/approvals/"+req.ID, strings.NewReader(decide), hdr)
		assert.Equal(t, http.StatusUnauthorized, w.Code, name)
		assert.Equal(t, approvals.Pending, status(t, f.st, req.ID), "%s: the request stays pending", name)
	}
	assert.Equal(t, http.StatusUnauthorized, f.do(t, http.MethodGet, "/api/approvals", nil, nil).Code, "reading needs the token too")
	list := f.do(t, http.MethodGet, "/api/approvals", nil, map[string]string{"Authorization": "Bearer " + string(token)})
	require.Equal(t, http.StatusOK, list.Code, list.Body.String())
	var got []approvals.Request
	require.NoError(t, json.Unmarshal(list.Body.Bytes(), &got))
	require.Len(t, got, 1)
	assert.Equal(t, req.ID, got[0].ID)
	// The pending request is on the approvals page.
	assert.Contains(t, text(f.get(t, "/approvals")), "prod: 2 to update")

	w := f.do(t, http.MethodPost, "/api/approvals/"+req.ID, strings.NewReader(decide), map[string]string{"Authorization": "Bearer " + string(token)})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, approvals.Approved, status(t, f.st, req.ID))
	assert.Contains(t, text(f.get(t, "/approvals")), "No approval is pending")
}

func TestDashboard_StateChangingAPIRequestsNeedTheTokenWhateverTheHandler(t *testing.T) {
	// An API handler that would accept anything: the dashboard's own
	// check stops state changes before it.
	var reached []string
	open := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = append(reached, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusOK)
	})
	for _, token := range [][]byte{nil, []byte("tok-tok-tok-tok-tok")} {
		reached = nil
		f := newFixture(t, func(o *dashboard.Options) {
			o.API = open
			if token != nil {
				tokens, err := approvals.NewTokens(approvals.Token{Name: "ci", Secret: token})
				require.NoError(t, err)
				o.Tokens = tokens
			}
		})
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			w := f.do(t, m, "/api/approvals/x", strings.NewReader("{}"), map[string]string{"Authorization": "Bearer wrong"})
			assert.Equal(t, http.StatusUnauthorized, w.Code, "%s with token %q", m, token)
			assert.Equal(t, `Bearer realm="slipway"`, w.Header().Get("WWW-Authenticate"))
		}
		assert.Equal(t, http.StatusOK, f.do(t, http.MethodGet, "/api/approvals", nil, nil).Code)
		if token != nil {
			w := f.do(t, http.MethodPost, "/api/approvals/x", strings.NewReader("{}"), map[string]string{"Authorization": "Bearer " + string(token)})
			assert.Equal(t, http.StatusOK, w.Code)
			assert.Equal(t, []string{"GET /approvals", "POST /approvals/x"}, reached, "the API sees paths without /api")
		} else {
			assert.Equal(t, []string{"GET /approvals"}, reached, "without a token no state change passes")
		}
	}
}

// slackSign signs a body the way Slack does.
func slackSign(secret, ts, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:%s", ts, body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

func TestDashboard_SlackCallbackRefusesMissingWrongAndExpiredSignatures(t *testing.T) {
	secret := "slack-signing-secret-abc123"
	var f fixture
	f = newFixture(t, func(o *dashboard.Options) {
		o.Slack = approvals.SlackHandler(approvals.New(o.Store, approvals.WithSigningKey(signingKey)), []byte(secret),
			approvals.WithClock(func() time.Time { return now }), approvals.SlackTeam("T1"), approvals.SlackApprovers("U1"))
	})
	req := pending(t, f.st)
	payload, err := json.Marshal(map[string]any{"type": "block_actions", "team": map[string]string{"id": "T1"}, "user": map[string]string{"id": "U1", "username": "ana"},
		"actions": []map[string]string{{"action_id": "slipway_approve", "value": req.ID}}})
	require.NoError(t, err)
	body := url.Values{"payload": {string(payload)}}.Encode()
	fresh := strconv.FormatInt(now.Unix(), 10)
	old := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	form := "application/x-www-form-urlencoded"
	for name, hdr := range map[string]map[string]string{
		"missing":   {"Content-Type": form},
		"no stamp":  {"Content-Type": form, "X-Slack-Signature": slackSign(secret, fresh, body)},
		"wrong":     {"Content-Type": form, "X-Slack-Request-Timestamp": fresh, "X-Slack-Signature": slackSign("another-secret", fresh, body)},
		"tampered":  {"Content-Type": form, "X-Slack-Request-Timestamp": fresh, "X-Slack-Signature": slackSign(secret, fresh, body+"x")},
		"expired":   {"Content-Type": form, "X-Slack-Request-Timestamp": old, "X-Slack-Signature": slackSign(secret, old, body)},
		"restamped": {"Content-Type": form, "X-Slack-Request-Timestamp": fresh, "X-Slack-Signature": slackSign(secret, old, body)},
	} {
		w := f.do(t, http.MethodPost, "/slack/actions", strings.NewReader(body), hdr)
		assert.Equal(t, http.StatusUnauthorized, w.Code, name)
		assert.Equal(t, approvals.Pending, status(t, f.st, req.ID), "%s: the approval stays pending", name)
	}
	assert.Equal(t, http.StatusMethodNotAllowed, f.do(t, http.MethodGet, "/slack/actions", nil, nil).Code)
	w := f.do(t, http.MethodPost, "/slack/actions", strings.NewReader(body),
		map[string]string{"Content-Type": form, "X-Slack-Request-Timestamp": fresh, "X-Slack-Signature": slackSign(secret, fresh, body)})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, approvals.Approved, status(t, f.st, req.ID))
}

func TestDashboard_MetricsServeTheGatherer(t *testing.T) {
	st := newStore(t)
	seed(t, st)
	reg := prometheus.NewRegistry()
	reg.MustRegister(dora.NewCollector(func(ctx context.Context) ([]dora.Report, error) {
		return dashboard.Reports(ctx, st, nil, 30*24*time.Hour, now)
	}))
	h, err := dashboard.New(dashboard.Options{Store: st, Gatherer: reg, Now: func() time.Time { return now }})
	require.NoError(t, err)
	f := fixture{st: st, h: h}
	w := f.do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Regexp(t, `(?m)^slipway_dora_\w+\{[^}]*environment="dev"[^}]*\} `, w.Body.String())
	// Without a Gatherer there is no /metrics.
	assert.Equal(t, http.StatusNotFound, newFixture(t, nil).do(t, http.MethodGet, "/metrics", nil, nil).Code)
}

func TestDashboard_ReportsMatchDORA(t *testing.T) {
	st := newStore(t)
	seed(t, st)
	reps, err := dashboard.Reports(context.Background(), st, []string{"shop"}, 30*24*time.Hour, now)
	require.NoError(t, err)
	require.Len(t, reps, 4)
	dev := reps[0]
	assert.Equal(t, "dev", dev.Environment)
	assert.Equal(t, "shop", dev.Project)
	assert.Equal(t, 3, dev.Deployments)
	assert.Equal(t, 1, dev.Failures)
	assert.InDelta(t, 1.0/3, dev.ChangeFailureRate, 0.001)
}

func TestDashboard_NewRefusesBadOptions(t *testing.T) {
	st := newStore(t)
	for name, o := range map[string]dashboard.Options{
		"Store":   {},
		"Since":   {Store: st, Since: -time.Hour},
		"Rate":    {Store: st, Rate: -1},
		"Burst":   {Store: st, Burst: -1},
		"MaxBody": {Store: st, MaxBody: -1},
	} {
		_, err := dashboard.New(o)
		var oe *dashboard.OptionError
		require.ErrorAs(t, err, &oe, name)
		assert.Equal(t, name, oe.Field)
	}
}
