package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// SlackCallback is the form body Slack posts when a user of workspace T1
// clicks a button.
func SlackCallback(t testing.TB, action, id, userID, username string) []byte {
	t.Helper()
	return slackCallback(t, "T1", action, id, userID, username)
}

func slackCallback(t testing.TB, team, action, id, userID, username string) []byte {
	t.Helper()
	p, err := json.Marshal(map[string]any{
		"type": "block_actions",
		"team": map[string]string{"id": team, "domain": "example"},
		"user": map[string]string{"id": userID, "username": username, "name": username, "team_id": team},
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
	h := SlackHandler(s, signingSecret, WithClock(func() time.Time { return now }), SlackTeam("T1"), SlackApprovers("U123", "U666"))
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
	code, _ = postSlack(t, SlackHandler(s, nil, SlackTeam("T1"), SlackApprovers("U123")), b2, chatops.SignSlack(b2, nil, time.Now()))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, Pending, status(t, s, r2.ID))
}

// decision reports whether a decision record exists for the request.
func decided(t *testing.T, s *Store, id string) bool {
	t.Helper()
	d, err := s.decision(context.Background(), id)
	require.NoError(t, err)
	return d != nil
}

// TestSlackHandler_OnlyAllowedApprovers: a correctly signed callback from
// another workspace, from a user not on the list, or from the requester
// approving their own promotion is 403 and records nothing; a handler
// without a team or approvers refuses everyone. The requester may
// reject; AllowSelfApproval lets them approve.
func TestSlackHandler_OnlyAllowedApprovers(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	clock := WithClock(func() time.Time { return now })
	h := SlackHandler(s, signingSecret, clock, SlackTeam("T1"), SlackApprovers("U123", "U777"))
	r, err := s.Request(ctx, Request{Project: "shop", Stack: "prod", Stage: "prod", RequestedBy: []string{"ci-bot", "U777"}})
	require.NoError(t, err)
	send := func(h http.Handler, body []byte) (int, string) {
		return postSlack(t, h, body, chatops.SignSlack(body, signingSecret, now))
	}
	for name, c := range map[string]struct {
		h    http.Handler
		body []byte
		msg  string
	}{
		"another workspace":        {h, slackCallback(t, "T2", chatops.SlackApproveAction, r.ID, "U123", "alice"), "workspace"},
		"a user not on the list":   {h, SlackCallback(t, chatops.SlackApproveAction, r.ID, "U666", "mallory"), "not an approver"},
		"rejecting, not listed":    {h, SlackCallback(t, chatops.SlackRejectAction, r.ID, "U666", "mallory"), "not an approver"},
		"the requester approving":  {h, SlackCallback(t, chatops.SlackApproveAction, r.ID, "U777", "carol"), "someone else"},
		"no team configured":       {SlackHandler(s, signingSecret, clock, SlackApprovers("U123")), SlackCallback(t, chatops.SlackApproveAction, r.ID, "U123", "alice"), "no Slack approvers"},
		"no approvers configured":  {SlackHandler(s, signingSecret, clock, SlackTeam("T1")), SlackCallback(t, chatops.SlackApproveAction, r.ID, "U123", "alice"), "no Slack approvers"},
		"a group that cannot load": {SlackHandler(s, signingSecret, clock, SlackTeam("T1"), SlackApproverGroup(func(context.Context, string) (bool, error) { return false, errors.New("slack down") })), SlackCallback(t, chatops.SlackApproveAction, r.ID, "U555", "dave"), "could not be read"},
	} {
		code, msg := send(c.h, c.body)
		assert.Equal(t, http.StatusForbidden, code, name)
		assert.Contains(t, msg, c.msg, name)
		assert.Equal(t, Pending, status(t, s, r.ID), name)
		assert.False(t, decided(t, s, r.ID), "%s: nothing recorded", name)
	}

	// A member of an approver group may decide.
	group := SlackApproverGroup(func(_ context.Context, user string) (bool, error) { return user == "U555", nil })
	gh := SlackHandler(s, signingSecret, clock, SlackTeam("T1"), group)
	code, msg := send(gh, SlackCallback(t, chatops.SlackApproveAction, r.ID, "U556", "erin"))
	assert.Equal(t, http.StatusForbidden, code, msg)
	code, msg = send(gh, SlackCallback(t, chatops.SlackApproveAction, r.ID, "U555", "dave"))
	require.Equal(t, http.StatusOK, code, msg)
	assert.Equal(t, "dave (U555)", mustGet(t, s, r.ID).By)

	// The requester may reject their own promotion.
	r2, err := s.Request(ctx, Request{Stage: "prod", RequestedBy: []string{"U777"}})
	require.NoError(t, err)
	code, msg = send(h, SlackCallback(t, chatops.SlackRejectAction, r2.ID, "U777", "carol"))
	require.Equal(t, http.StatusOK, code, msg)
	assert.Equal(t, Rejected, status(t, s, r2.ID))

	// With AllowSelfApproval the requester may approve.
	r3, err := s.Request(ctx, Request{Stage: "prod", RequestedBy: []string{"U777"}})
	require.NoError(t, err)
	self := SlackHandler(s, signingSecret, clock, SlackTeam("T1"), SlackApprovers("U777"), AllowSelfApproval(true))
	code, msg = send(self, SlackCallback(t, chatops.SlackApproveAction, r3.ID, "U777", "carol"))
	require.Equal(t, http.StatusOK, code, msg)
	assert.Equal(t, Approved, status(t, s, r3.ID))
}

func mustGet(t *testing.T, s *Store, id string) Request {
	t.Helper()
	r, err := s.Get(context.Background(), id)
	require.NoError(t, err)
	return r
}

func TestAPIHandler(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	token := []byte("api-token-0123456789abcdef")
	tokens, err := NewTokens(Token{Name: "carol", Secret: token}, Token{Name: "ci-bot", Secret: []byte("ci-bot-token-0123456789")})
	require.NoError(t, err)
	srv := httptest.NewServer(APIHandler(s, tokens))
	defer srv.Close()
	r, err := s.Request(ctx, Request{Project: "shop", Stack: "prod", Stage: "prod", RequestedBy: []string{"ci-bot"}})
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
	approve := `{"decision":"approve"}`
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
	// No configured token refuses even an empty bearer.
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

	// The decision is recorded under the token's name, never the body's.
	code, body = call(http.MethodPost, "/approvals/"+r.ID, bearer, `{"decision":"approve","by":"mallory"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "token's name")
	// The token that requested the promotion cannot approve it.
	code, body = call(http.MethodPost, "/approvals/"+r.ID, "Bearer ci-bot-token-0123456789", approve)
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, "ci-bot requested this promotion")
	assert.False(t, decided(t, s, r.ID), "nothing recorded")

	code, body = call(http.MethodPost, "/approvals/"+r.ID, bearer, approve)
	require.Equal(t, http.StatusOK, code, body)
	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, Approved, got.Status)
	assert.Equal(t, "carol", got.By)
	assert.Equal(t, "api", got.Via)

	code, _ = call(http.MethodPost, "/approvals/"+r.ID, "Bearer ci-bot-token-0123456789", `{"decision":"reject"}`)
	assert.Equal(t, http.StatusConflict, code)
	code, body = call(http.MethodGet, "/approvals/"+r.ID, bearer, "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"by":"carol"`)
	code, body = call(http.MethodGet, "/approvals", bearer, "")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `[]`, body)
}

func TestNewTokens_RefusesBadTokens(t *testing.T) {
	long := []byte("0123456789abcdef")
	for name, c := range map[string]struct {
		ts   []Token
		want string
	}{
		"bad name":       {[]Token{{Name: "a b", Secret: long}}, `token name "a b" is invalid`},
		"empty name":     {[]Token{{Name: "", Secret: long}}, `token name "" is invalid`},
		"short secret":   {[]Token{{Name: "alice", Secret: []byte("short")}}, "shorter than 16 bytes"},
		"duplicate name": {[]Token{{Name: "alice", Secret: long}, {Name: "Alice", Secret: []byte("fedcba9876543210")}}, "given twice"},
		"shared secret":  {[]Token{{Name: "alice", Secret: long}, {Name: "bob", Secret: long}}, "alice and bob have the same token"},
	} {
		_, err := NewTokens(c.ts...)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), c.want, name)
		assert.NotContains(t, err.Error(), string(long), "%s: the secret is never in the error", name)
	}
}

// TestSlackUserGroup_ReadsMembersWithTheBotToken: a stand-in for Slack's
// Web API (Slack itself is not reachable here) answers
// usergroups.users.list; members pass, others do not, the members are
// cached, and an error from Slack refuses.
func TestSlackUserGroup_ReadsMembersWithTheBotToken(t *testing.T) {
	calls := 0
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		assert.Equal(t, "/usergroups.users.list", r.URL.Path)
		assert.Equal(t, "S42", r.URL.Query().Get("usergroup"))
		if r.Header.Get("Authorization") != "Bearer xoxb-test" {
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			return
		}
		_, _ = w.Write([]byte(`{"ok":true,"users":["U1","U2"]}`))
	}))
	defer api.Close()
	ctx := context.Background()
	g := SlackUserGroup(api.URL, "S42", []byte("xoxb-test"), nil)
	ok, err := g(ctx, "U2")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = g(ctx, "U3")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, 1, calls, "the members are kept for a while")

	_, err = SlackUserGroup(api.URL, "S42", []byte("xoxb-wrong"), nil)(ctx, "U1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid_auth")
	assert.NotContains(t, err.Error(), "xoxb", "the bot token is never in the error")
}
