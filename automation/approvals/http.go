package approvals

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/chatops"
)

// MaxBody bounds a callback's or an API request's body.
const MaxBody = 64 << 10

// HandlerOption configures SlackHandler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	now    func() time.Time
	window time.Duration
	log    *slog.Logger
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
// or expired signature is 401 and changes nothing. The decision is
// recorded with Via "slack" and By the Slack user ("name (ID)"). Replies:
// 200 {"text": ...} when recorded, 400 malformed, 404 unknown request, 409
// decided before, 405 other methods. It serves any path it is mounted at.
func SlackHandler(s *Store, signingSecret []byte, opts ...HandlerOption) http.Handler {
	c := handlerConfig{now: time.Now, window: chatops.DefaultWindow, log: slog.Default()}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
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
		if by == "" {
			reply(w, http.StatusBadRequest, "the payload names no user")
			return
		}
		req, err := s.Decide(r.Context(), a.Value, approve, by, "slack")
		if code, msg, ok := decisionError(err); !ok {
			reply(w, code, msg)
			return
		}
		reply(w, http.StatusOK, "Stage "+req.Stage+" of "+req.Project+" "+string(req.Status)+" by "+by+".")
	})
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
// "Authorization: Bearer <token>" (compared in constant time; an empty
// token refuses everything):
//
//	GET  /approvals        the pending requests (JSON array)
//	GET  /approvals/{id}   one request
//	POST /approvals/{id}   {"decision":"approve"|"reject","by":"name"}: 200 with the request,
//	                       404 unknown, 409 decided before, 400 malformed
//
// A missing or wrong token is 401 and changes nothing. Bodies are limited
// to MaxBody. Mount it at the server's root (or under a prefix with
// http.StripPrefix).
func APIHandler(s *Store, token []byte) http.Handler {
	want := sha256.Sum256(token)
	empty := len(token) == 0
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
			Decision string `json:"decision"`
			By       string `json:"by"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			reply(w, http.StatusBadRequest, `expected {"decision":"approve"|"reject","by":"name"}`)
			return
		}
		if in.Decision != "approve" && in.Decision != "reject" {
			reply(w, http.StatusBadRequest, `decision must be "approve" or "reject"`)
			return
		}
		by := strings.TrimSpace(in.By)
		if by == "" {
			by = "api"
		}
		if len(by) > 200 {
			reply(w, http.StatusBadRequest, "by is longer than 200 bytes")
			return
		}
		req, err := s.Decide(r.Context(), r.PathValue("id"), in.Decision == "approve", by, "api")
		if code, msg, ok := decisionError(err); !ok {
			reply(w, code, msg)
			return
		}
		writeJSON(w, http.StatusOK, req)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		got, ok := strings.CutPrefix(auth, "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if empty || !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
			reply(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
