package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/automation/chatops"
)

// MaxBody bounds a callback's or an API request's body.
const MaxBody = 64 << 10

// HandlerOption configures SlackHandler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	now       func() time.Time
	window    time.Duration
	log       *slog.Logger
	team      string
	approvers []string
	groups    []SlackGroup
	allowSelf bool
}

// SlackTeam sets the Slack workspace (its team_id, "T…") whose callbacks
// are accepted; a callback from another team is refused with 403. Without
// it SlackHandler refuses every callback.
func SlackTeam(id string) HandlerOption {
	return func(c *handlerConfig) { c.team = strings.TrimSpace(id) }
}

// SlackApprovers sets the Slack user IDs ("U…", "W…") that may decide;
// anyone else is refused with 403 and nothing is recorded. Without
// approvers (or a group, SlackApproverGroup) SlackHandler refuses every
// callback.
func SlackApprovers(ids ...string) HandlerOption {
	return func(c *handlerConfig) {
		for _, id := range ids {
			if id = strings.TrimSpace(id); id != "" {
				c.approvers = append(c.approvers, id)
			}
		}
	}
}

// SlackApproverGroup lets the members of a Slack user group decide too
// (see SlackGroup).
func SlackApproverGroup(g SlackGroup) HandlerOption {
	return func(c *handlerConfig) {
		if g != nil {
			c.groups = append(c.groups, g)
		}
	}
}

// AllowSelfApproval lets the requester of a promotion (Request.RequestedBy)
// approve it. By default they cannot (403): someone else must.
func AllowSelfApproval(allow bool) HandlerOption {
	return func(c *handlerConfig) { c.allowSelf = allow }
}

// SlackGroup reports whether a Slack user is a member of an approver
// group (see SlackUserGroup).
type SlackGroup func(ctx context.Context, userID string) (bool, error)

func newHandlerConfig(opts []HandlerOption) handlerConfig {
	c := handlerConfig{now: time.Now, window: chatops.DefaultWindow, log: slog.Default()}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// selfApproval reports whether one of ids is among the requester's.
func selfApproval(r Request, ids ...string) bool {
	for _, who := range r.RequestedBy {
		for _, id := range ids {
			if id != "" && strings.EqualFold(strings.TrimSpace(who), id) {
				return true
			}
		}
	}
	return false
}

// WithClock sets the clock the timestamp window is checked against (tests).
func WithClock(now func() time.Time) HandlerOption { return func(c *handlerConfig) { c.now = now } }

// WithWindow sets how old (or how far ahead) a signed request's timestamp
// may be (default chatops.DefaultWindow, 5 minutes).
func WithWindow(d time.Duration) HandlerOption { return func(c *handlerConfig) { c.window = d } }

// WithLogger sets where refused requests are logged (default slog.Default()).
func WithLogger(l *slog.Logger) HandlerOption { return func(c *handlerConfig) { c.log = l } }

// slackPayload is the part of a Slack interactive callback the handler reads.
type slackPayload struct {
	Type string `json:"type"`
	Team struct {
		ID string `json:"id"`
	} `json:"team"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Name     string `json:"name"`
	} `json:"user"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
}

// SlackHandler handles Slack's interactive callbacks (the Request URL of
// a Slack app's Interactivity): a POST with the form field payload=<JSON>
// of a block_actions callback whose first action is an Approve or Reject
// button of an ApprovalRequested message (chatops.SlackApproveAction,
// SlackRejectAction; value = request ID). The signature is verified on the
// raw body (at most MaxBody) before anything is parsed: a missing, wrong
// or expired signature is 401 and changes nothing. Only callbacks of the
// workspace SlackTeam names, from a user SlackApprovers (or a
// SlackApproverGroup) allows, are acted on; the requester of a promotion
// cannot approve it unless AllowSelfApproval; all others are 403 and
// recorded nowhere. The decision is recorded with Via "slack" and By the
// Slack user ("name (ID)"). Replies: 200 {"text": ...} when recorded, 400
// malformed, 403 not allowed, 404 unknown request, 409 decided before, 405
// other methods. It serves any path it is mounted at.
func SlackHandler(s *Store, signingSecret []byte, opts ...HandlerOption) http.Handler {
	c := newHandlerConfig(opts)
	secret := append([]byte(nil), signingSecret...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			reply(w, http.StatusMethodNotAllowed, "POST only")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			reply(w, http.StatusRequestEntityTooLarge, "body too large or unreadable")
			return
		}
		if err := chatops.VerifySlack(r.Header, body, secret, c.now(), c.window); err != nil {
			c.log.WarnContext(r.Context(), "approvals: Slack callback refused", "remote", r.RemoteAddr, "reason", err)
			reply(w, http.StatusUnauthorized, "signature refused")
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			reply(w, http.StatusBadRequest, "expected a form with payload")
			return
		}
		var p slackPayload
		if err := json.Unmarshal([]byte(form.Get("payload")), &p); err != nil || p.Type != "block_actions" || len(p.Actions) == 0 {
			reply(w, http.StatusBadRequest, "expected a block_actions payload")
			return
		}
		a := p.Actions[0]
		var approve bool
		switch a.ActionID {
		case chatops.SlackApproveAction:
			approve = true
		case chatops.SlackRejectAction:
		default:
			reply(w, http.StatusBadRequest, "not an approval action")
			return
		}
		by := slackUser(p)
		if by == "" || p.User.ID == "" {
			reply(w, http.StatusBadRequest, "the payload names no user")
			return
		}
		if ok, why := c.slackAllowed(r.Context(), p); !ok {
			c.log.WarnContext(r.Context(), "approvals: Slack decision refused", "user", p.User.ID, "team", p.Team.ID, "reason", why)
			reply(w, http.StatusForbidden, why)
			return
		}
		if approve && !c.allowSelf {
			cur, err := s.Get(r.Context(), a.Value)
			if code, msg, ok := decisionError(err); !ok {
				reply(w, code, msg)
				return
			}
			if selfApproval(cur, p.User.ID, p.User.Username, p.User.Name) {
				c.log.WarnContext(r.Context(), "approvals: self-approval refused", "user", p.User.ID, "request", cur.ID)
				reply(w, http.StatusForbidden, "you requested this promotion; someone else must approve it")
				return
			}
		}
		req, err := s.Decide(r.Context(), a.Value, approve, by, "slack")
		if code, msg, ok := decisionError(err); !ok {
			reply(w, code, msg)
			return
		}
		reply(w, http.StatusOK, "Stage "+req.Stage+" of "+req.Project+" "+string(req.Status)+" by "+by+".")
	})
}

// slackAllowed checks the callback's workspace and user against the
// allow-list; the reason is safe to show the user.
func (c handlerConfig) slackAllowed(ctx context.Context, p slackPayload) (bool, string) {
	if c.team == "" || (len(c.approvers) == 0 && len(c.groups) == 0) {
		return false, "this server has no Slack approvers configured"
	}
	if p.Team.ID != c.team {
		return false, "callbacks from this Slack workspace are not accepted"
	}
	if slices.Contains(c.approvers, p.User.ID) {
		return true, ""
	}
	for _, g := range c.groups {
		ok, err := g(ctx, p.User.ID)
		if err != nil {
			c.log.WarnContext(ctx, "approvals: reading the Slack approver group failed; refusing", "reason", err)
			return false, "the approver group could not be read; try again later"
		}
		if ok {
			return true, ""
		}
	}
	return false, "you are not an approver of this server"
}

// slackUser names the user who clicked: "name (ID)".
func slackUser(p slackPayload) string {
	name := p.User.Username
	if name == "" {
		name = p.User.Name
	}
	switch {
	case name != "" && p.User.ID != "":
		return name + " (" + p.User.ID + ")"
	case name != "":
		return name
	}
	return p.User.ID
}

// decisionError maps Decide's error to a status and a reply.
func decisionError(err error) (int, string, bool) {
	switch {
	case err == nil:
		return http.StatusOK, "", true
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "no such approval request", false
	case errors.Is(err, ErrDecided):
		return http.StatusConflict, strings.TrimPrefix(err.Error(), "approvals: "), false
	case errors.Is(err, ErrNoSigningKey):
		return http.StatusServiceUnavailable, "this server has no approval signing key; it cannot record decisions", false
	}
	return http.StatusInternalServerError, "could not record the decision", false
}

// reply writes {"text": msg}.
func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"text": msg})
}

// APIHandler serves the approvals API, every request authenticated with
// "Authorization: Bearer <token>" against the named tokens (compared in
// constant time; no tokens refuse everything):
//
//	GET  /approvals        the pending requests (JSON array)
//	GET  /approvals/{id}   one request
//	POST /approvals/{id}   {"decision":"approve"|"reject"}: 200 with the request,
//	                       404 unknown, 409 decided before, 400 malformed,
//	                       403 the caller requested the promotion
//
// The decision is recorded with Via "api" and By the token's name; a body
// that names "by" is refused (400). A missing or wrong token is 401 and
// changes nothing. The requester of a promotion cannot approve it unless
// AllowSelfApproval. Bodies are limited to MaxBody. Mount it at the
// server's root (or under a prefix with http.StripPrefix).
func APIHandler(s *Store, tokens *Tokens, opts ...HandlerOption) http.Handler {
	c := newHandlerConfig(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /approvals", func(w http.ResponseWriter, r *http.Request) {
		reqs, err := s.Pending(r.Context())
		if err != nil {
			reply(w, http.StatusInternalServerError, "could not read the approval requests")
			return
		}
		if reqs == nil {
			reqs = []Request{}
		}
		writeJSON(w, http.StatusOK, reqs)
	})
	mux.HandleFunc("GET /approvals/{id}", func(w http.ResponseWriter, r *http.Request) {
		req, err := s.Get(r.Context(), r.PathValue("id"))
		if code, msg, ok := decisionError(err); !ok {
			reply(w, code, msg)
			return
		}
		writeJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("POST /approvals/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Decision string  `json:"decision"`
			By       *string `json:"by"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			reply(w, http.StatusBadRequest, `expected {"decision":"approve"|"reject"}`)
			return
		}
		if in.By != nil {
			reply(w, http.StatusBadRequest, `"by" is not accepted: the decision is recorded under your API token's name; remove it`)
			return
		}
		if in.Decision != "approve" && in.Decision != "reject" {
			reply(w, http.StatusBadRequest, `decision must be "approve" or "reject"`)
			return
		}
		by := callerName(r.Context())
		approve := in.Decision == "approve"
		if approve && !c.allowSelf {
			cur, err := s.Get(r.Context(), r.PathValue("id"))
			if code, msg, ok := decisionError(err); !ok {
				reply(w, code, msg)
				return
			}
			if selfApproval(cur, by) {
				c.log.WarnContext(r.Context(), "approvals: self-approval refused", "token", by, "request", cur.ID)
				reply(w, http.StatusForbidden, "the token "+by+" requested this promotion; someone else must approve it")
				return
			}
		}
		req, err := s.Decide(r.Context(), r.PathValue("id"), approve, by, "api")
		if code, msg, ok := decisionError(err); !ok {
			reply(w, code, msg)
			return
		}
		writeJSON(w, http.StatusOK, req)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := tokens.Caller(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
			reply(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, name)))
	})
}

type callerKey struct{}

// callerName is the name of the token the request was authenticated with.
func callerName(ctx context.Context) string {
	name, _ := ctx.Value(callerKey{}).(string)
	return name
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// SlackAPI is the base URL of Slack's Web API.
const SlackAPI = "https://slack.com/api"

// slackGroupTTL is how long SlackUserGroup keeps a group's members.
const slackGroupTTL = time.Minute

// SlackUserGroup returns a SlackGroup of the members of the Slack user
// group groupID ("S…"), read with the Web API method
// usergroups.users.list at apiURL (SlackAPI in production) using a bot
// token with the usergroups:read scope, and kept for a minute. When the
// members cannot be read the error is returned and the callback refused.
func SlackUserGroup(apiURL, groupID string, botToken []byte, client *http.Client) SlackGroup {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	token := append([]byte(nil), botToken...)
	var (
		mu      sync.Mutex
		members []string
		read    time.Time
	)
	load := func(ctx context.Context) ([]string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			strings.TrimRight(apiURL, "/")+"/usergroups.users.list?usergroup="+url.QueryEscape(groupID), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+string(token))
		resp, err := client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("approvals: reading Slack user group %s: %w", groupID, err)
		}
		defer resp.Body.Close()
		var out struct {
			OK    bool     `json:"ok"`
			Error string   `json:"error"`
			Users []string `json:"users"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("approvals: reading Slack user group %s: HTTP %d", groupID, resp.StatusCode)
		}
		if !out.OK {
			return nil, fmt.Errorf("approvals: reading Slack user group %s: %s", groupID, out.Error)
		}
		return out.Users, nil
	}
	return func(ctx context.Context, userID string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if members == nil || time.Since(read) > slackGroupTTL {
			m, err := load(ctx)
			if err != nil {
				return false, err
			}
			members, read = m, time.Now()
		}
		return slices.Contains(members, userID), nil
	}
}
