package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/chatops"
)

var signingSecret = []byte("slack-signing-secret-0123456789")

// SlackCallback is the form body Slack posts when a user clicks a button.
func SlackCallback(t testing.TB, action, id, userID, username string) []byte {
	t.Helper()
	p, err := json.Marshal(map[string]any{
		"type": "block_actions",
		"user": map[string]string{"id": userID, "username": username, "name": username, "team_id": "T1"},
		"actions": []map[string]string{{"type": "button", "action_id": action, "block_id": "slipway_actions", "value": id,
			"action_ts": "1741944413.000100"}},
		"response_url": "https://hooks.slack.com/actions/T1/1/xyz",
	})
	require.NoError(t, err)
	return []byte(url.Values{"payload": {string(p)}}.Encode())
}

// postSlack posts body with the headers h to the handler.
func postSlack(t testing.TB, h http.Handler, body []byte, hdr http.Header) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/slack/actions", bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func status(t *testing.T, s *Store, id string) Status {
	t.Helper()
	r, err := s.Get(context.Background(), id)
	require.NoError(t, err)
	return r.Status
}

func TestSlackHandler(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	h := SlackHandler(s, signingSecret, WithClock(func() time.Time { return now }))
	r, err := s.Request(ctx, Request{Project: "shop", Stack: "prod", Stage: "prod"})
	require.NoError(t, err)
	body := SlackCallback(t, chatops.SlackApproveAction, r.ID, "U123", "alice")

	// Refused without changing anything.
	for name, hdr := range map[string]http.Header{
		"no signature":    {},
		"wrong secret":    chatops.SignSlack(body, []byte("not the secret"), now),
		"replayed":        chatops.SignSlack(body, signingSecret, now.Add(-6*time.Minute)),
		"from the future": chatops.SignSlack(body, signingSecret, now.Add(6*time.Minute)),
	} {
		code, _ := postSlack(t, h, body, hdr)
		assert.Equal(t, http.StatusUnauthorized, code, name)
		assert.Equal(t, Pending, status(t, s, r.ID), name)
	}
	// A tampered body: signed for another request ID.
	other := SlackCallback(t, chatops.SlackApproveAction, "20250101T000000.000000000Z-deadbeef", "U123", "alice")
	code, _ := postSlack(t, h, body, chatops.SignSlack(other, signingSecret, now))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, Pending, status(t, s, r.ID))

	code, msg := postSlack(t, h, body, chatops.SignSlack(body, signingSecret, now.Add(-time.Minute)))
	require.Equal(t, http.StatusOK, code, msg)
	assert.Contains(t, msg, "approved by alice (U123)")
	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, Approved, got.Status)
	assert.Equal(t, "alice (U123)", got.By)
	assert.Equal(t, "slack", got.Via)

	// The same callback again (a replay inside the window), or a reject: decided.
	reject := SlackCallback(t, chatops.SlackRejectAction, r.ID, "U666", "mallory")
	code, _ = postSlack(t, h, reject, chatops.SignSlack(reject, signingSecret, now))
	assert.Equal(t, http.StatusConflict, code)
	assert.Equal(t, Approved, status(t, s, r.ID))

	unknown := SlackCallback(t, chatops.SlackApproveAction, "20250101T000000.000000000Z-deadbeef", "U123", "alice")
	code, _ = postSlack(t, h, unknown, chatops.SignSlack(unknown, signingSecret, now))
	assert.Equal(t, http.StatusNotFound, code)

	junk := []byte("payload=%7B%22type%22%3A%22view_submission%22%7D")
	code, _ = postSlack(t, h, junk, chatops.SignSlack(junk, signingSecret, now))
	assert.Equal(t, http.StatusBadRequest, code)

	big := bytes.Repeat([]byte("a"), MaxBody+1)
	code, _ = postSlack(t, h, big, chatops.SignSlack(big, signingSecret, now))
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/slack/actions", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)

	// Without a signing secret nothing is accepted.
	r2, err := s.Request(ctx, Request{Stage: "prod"})
	require.NoError(t, err)
	b2 := SlackCallback(t, chatops.SlackApproveAction, r2.ID, "U123", "alice")
	code, _ = postSlack(t, SlackHandler(s, nil), b2, chatops.SignSlack(b2, nil, time.Now()))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, Pending, status(t, s, r2.ID))
}

func TestAPIHandler(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	token := []byte("api-token-0123456789abcdef")
	srv := httptest.NewServer(APIHandler(s, token))
	defer srv.Close()
	r, err := s.Request(ctx, Request{Project: "shop", Stack: "prod", Stage: "prod"})
	require.NoError(t, err)

	call := func(method, path, auth, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	approve := `{"decision":"approve","by":"carol"}`
	for name, auth := range map[string]string{
		"missing":      "",
		"wrong":        "Bearer not-the-token",
		"prefix":       "Bearer " + string(token[:10]),
		"not bearer":   "Basic " + string(token),
		"token plus 1": "Bearer " + string(token) + "x",
	} {
		code, _ := call(http.MethodPost, "/approvals/"+r.ID, auth, approve)
		assert.Equal(t, http.StatusUnauthorized, code, name)
		code, _ = call(http.MethodGet, "/approvals", auth, "")
		assert.Equal(t, http.StatusUnauthorized, code, name)
		assert.Equal(t, Pending, status(t, s, r.ID), name)
	}
	// An empty configured token refuses even an empty bearer.
	empty := httptest.NewServer(APIHandler(s, nil))
	defer empty.Close()
	req, _ := http.NewRequest(http.MethodPost, empty.URL+"/approvals/"+r.ID, strings.NewReader(approve))
	req.Header.Set("Authorization", "Bearer ")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, Pending, status(t, s, r.ID))

	bearer := "Bearer " + string(token)
	code, body := call(http.MethodGet, "/approvals", bearer, "")
	require.Equal(t, http.StatusOK, code)
	var list []Request
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list, 1)
	assert.Equal(t, r.ID, list[0].ID)

	code, _ = call(http.MethodPost, "/approvals/"+r.ID, bearer, `{"decision":"maybe"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = call(http.MethodPost, "/approvals/"+r.ID, bearer, `{"decision":"approve","extra":1}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = call(http.MethodPost, "/approvals/20250101T000000.000000000Z-deadbeef", bearer, approve)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, Pending, status(t, s, r.ID))

	code, body = call(http.MethodPost, "/approvals/"+r.ID, bearer, approve)
	require.Equal(t, http.StatusOK, code, body)
	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, Approved, got.Status)
	assert.Equal(t, "carol", got.By)
	assert.Equal(t, "api", got.Via)

	code, _ = call(http.MethodPost, "/approvals/"+r.ID, bearer, `{"decision":"reject","by":"dave"}`)
	assert.Equal(t, http.StatusConflict, code)
	code, body = call(http.MethodGet, "/approvals/"+r.ID, bearer, "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"by":"carol"`)
	code, body = call(http.MethodGet, "/approvals", bearer, "")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `[]`, body)
}
