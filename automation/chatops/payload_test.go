package chatops

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixed is the time of every golden event.
var fixed = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// received is one request a test server got.
type received struct {
	header http.Header
	body   []byte
}

// capture starts a server that records each request and answers 200.
func capture(t *testing.T) (*httptest.Server, <-chan received) {
	t.Helper()
	ch := make(chan received, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- received{r.Header.Clone(), b}
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// golden compares got (JSON, indented here) with testdata/name.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, got, "", "  "), "the payload is JSON")
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to write %s", path)
	assert.Equal(t, string(want), buf.String(), "payload differs from %s (go test -update rewrites it)", path)
}

// events are the golden events, one per kind.
func events() map[string]Event {
	base := Event{Project: "shop", Environment: "prod", Operation: "up", Time: fixed, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	with := func(f func(*Event)) Event { e := base; f(&e); return e }
	return map[string]Event{
		"run-succeeded": with(func(e *Event) {
			e.Kind, e.Summary, e.Changes = RunSucceeded, "up of prod: 3 changes in 2.1s", 3
		}),
		"run-failed": with(func(e *Event) {
			e.Kind, e.Summary, e.Changes = RunFailed, "up of prod failed after 4.0s", 1
			e.Details = []string{"kubernetes:apps/v1:Deployment web: timed out waiting for rollout", "image <shop/web:1.2> not found & retried"}
		}),
		"policy-blocked": with(func(e *Event) {
			e.Kind, e.Operation, e.Summary = PolicyBlocked, "preview", "preview of prod blocked by 1 mandatory policy"
			e.Details = []string{"kubernetes/no-privileged: container web is privileged (urn:pulumi:prod::shop::kubernetes:apps/v1:Deployment::web)"}
		}),
		"drift-detected": with(func(e *Event) {
			e.Kind, e.Operation, e.Summary, e.Changes = DriftDetected, "drift", "2 resources drifted in prod", 2
			e.Details = []string{"kubernetes:apps/v1:Deployment web: spec.replicas", "kubernetes:core/v1:ConfigMap cfg: data.mode"}
		}),
		"rollback-done": with(func(e *Event) {
			e.Kind, e.Operation, e.Summary = RollbackDone, "rollback", "prod rolled back to release 20250314T092000.000000000Z-1a2b3c4d"
		}),
		"approval-requested": with(func(e *Event) {
			e.Kind, e.Operation, e.Summary, e.Changes = ApprovalRequested, "promote", "promotion to prod waits for approval: 2 changes", 2
			e.Details = []string{"update kubernetes:apps/v1:Deployment web", "create kubernetes:core/v1:Service web"}
			e.Approval = &Approval{ID: "20250314T092653.000000000Z-0badcafe", Stage: "prod"}
		}),
	}
}

// TestPayloads_MatchGolden: what Slack, Teams and a webhook receiver get
// for each kind, with the Dispatcher's links filled in.
func TestPayloads_MatchGolden(t *testing.T) {
	secret := []byte("webhook-signing-secret")
	for name, e := range events() {
		t.Run(name, func(t *testing.T) {
			slack, slackCh := capture(t)
			teams, teamsCh := capture(t)
			hook, hookCh := capture(t)
			d := NewDispatcher(DispatcherOptions{DashboardURL: "https://slipway.example.com/", CIURL: "https://ci.example.com/run/42"},
				Slack(slack.URL+"/services/T000/B000/XXXX"), Teams(teams.URL+"/webhookb2/secret"),
				Webhook(hook.URL+"/hooks/slipway", secret, WithClock(func() time.Time { return fixed })))
			require.NoError(t, d.Notify(context.Background(), e))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, d.Close(ctx))
			assert.Equal(t, Stats{Attempts: 3, Delivered: 3}, d.Stats())

			s := <-slackCh
			assert.Equal(t, "application/json", s.header.Get("Content-Type"))
			golden(t, "slack-"+name+".json", s.body)
			golden(t, "teams-"+name+".json", (<-teamsCh).body)
			h := <-hookCh
			golden(t, "webhook-"+name+".json", h.body)
			assert.Equal(t, string(e.Kind), h.header.Get(WebhookEventHeader))
			assert.Equal(t, "1741944413", h.header.Get(WebhookTimestampHeader))
			require.NoError(t, VerifyWebhook(h.header, h.body, secret, fixed, 0), "the delivery verifies")
			var back Event
			require.NoError(t, json.Unmarshal(h.body, &back))
			assert.Equal(t, "https://slipway.example.com/env/shop/prod", back.Links.Dashboard)
			assert.Equal(t, "https://ci.example.com/run/42", back.Links.CI)
		})
	}
}

// TestSlack_ApprovalButtons: only an approval request carries the
// interactive buttons, with the request ID as their value.
func TestSlack_ApprovalButtons(t *testing.T) {
	ev := events()
	b, err := marshal(slackMessage(ev["approval-requested"]))
	require.NoError(t, err)
	s := string(b)
	for _, want := range []string{`"action_id":"slipway_approve"`, `"action_id":"slipway_reject"`, `"value":"20250314T092653.000000000Z-0badcafe"`} {
		assert.Contains(t, s, want)
	}
	b, err = marshal(slackMessage(ev["run-failed"]))
	require.NoError(t, err)
	assert.NotContains(t, string(b), "slipway_approve")
	assert.Contains(t, string(b), "image &lt;shop/web:1.2&gt; not found &amp; retried", "mrkdwn control characters are escaped")
}

// TestDetails_AreBounded: more than MaxDetails lines are cut to MaxDetails.
func TestDetails_AreBounded(t *testing.T) {
	e := Event{}
	for i := range 25 {
		e.Details = append(e.Details, strings.Repeat("x", i))
	}
	d := details(e)
	assert.Len(t, d, MaxDetails)
	assert.Equal(t, "… and 16 more", d[MaxDetails-1])
}

func TestCIRunURL(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"none":   {nil, ""},
		"github": {map[string]string{"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "123"}, "https://github.com/acme/shop/actions/runs/123"},
		"github retry": {map[string]string{"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "123", "GITHUB_RUN_ATTEMPT": "2"},
			"https://github.com/acme/shop/actions/runs/123/attempts/2"},
		"gitlab job":      {map[string]string{"CI_JOB_URL": "https://gitlab.com/acme/shop/-/jobs/9", "CI_PIPELINE_URL": "https://gitlab.com/acme/shop/-/pipelines/8"}, "https://gitlab.com/acme/shop/-/jobs/9"},
		"gitlab pipeline": {map[string]string{"CI_PIPELINE_URL": "https://gitlab.com/acme/shop/-/pipelines/8"}, "https://gitlab.com/acme/shop/-/pipelines/8"},
		"jenkins":         {map[string]string{"BUILD_URL": "https://jenkins.example.com/job/shop/7/"}, "https://jenkins.example.com/job/shop/7/"},
		"buildkite":       {map[string]string{"BUILDKITE_BUILD_URL": "https://buildkite.com/acme/shop/builds/5", "BUILD_URL": "x"}, "https://buildkite.com/acme/shop/builds/5"},
		"circleci":        {map[string]string{"CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/4"}, "https://circleci.com/gh/acme/shop/4"},
		"azure": {map[string]string{"SYSTEM_TEAMFOUNDATIONSERVERURI": "https://dev.azure.com/acme/", "SYSTEM_TEAMPROJECT": "Shop Team", "BUILD_BUILDID": "77"},
			"https://dev.azure.com/acme/Shop%20Team/_build/results?buildId=77"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, CIRunURL(func(k string) string { return tc.env[k] }))
		})
	}
}
