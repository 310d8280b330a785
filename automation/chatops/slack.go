package chatops

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Action IDs of the approval buttons in Slack messages; the approvals
// package's SlackHandler acts on them. Their value is the approval ID.
const (
	SlackApproveAction = "slipway_approve"
	SlackRejectAction  = "slipway_reject"
)

// Slack returns a Notifier that posts to a Slack incoming webhook, as a
// Block Kit message (with a plain text fallback). An ApprovalRequested
// event carries Approve and Reject buttons (see SlackApproveAction).
func Slack(webhookURL string, opts ...Option) Notifier {
	return &slackNotifier{newChannel("slack", webhookURL, opts)}
}

type slackNotifier struct{ ch *channel }

// String names the channel without its secret path.
func (s *slackNotifier) String() string { return s.ch.String() }

// Notify posts one message (a single attempt).
func (s *slackNotifier) Notify(ctx context.Context, e Event) error {
	b, err := marshal(slackMessage(e))
	if err != nil {
		return err
	}
	return s.ch.post(ctx, b, nil)
}

// slack Block Kit objects.
type (
	slackText struct {
		Type  string `json:"type"`
		Text  string `json:"text"`
		Emoji bool   `json:"emoji,omitempty"`
	}
	slackElement struct {
		Type     string     `json:"type"`
		Text     *slackText `json:"text,omitempty"`
		ActionID string     `json:"action_id,omitempty"`
		URL      string     `json:"url,omitempty"`
		Value    string     `json:"value,omitempty"`
		Style    string     `json:"style,omitempty"`
	}
	slackBlock struct {
		Type     string      `json:"type"`
		BlockID  string      `json:"block_id,omitempty"`
		Text     *slackText  `json:"text,omitempty"`
		Fields   []slackText `json:"fields,omitempty"`
		Elements []any       `json:"elements,omitempty"`
	}
)

// slackMessage is the webhook payload for e: {"text": fallback, "blocks": [...]}.
func slackMessage(e Event) map[string]any {
	esc := slackEscape
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(title(e), 150), Emoji: true}},
		{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncate(esc(e.Summary), 3000)}, Fields: []slackText{
			{Type: "mrkdwn", Text: "*Project*\n" + esc(e.Project)},
			{Type: "mrkdwn", Text: "*Environment*\n" + esc(e.Environment)},
			{Type: "mrkdwn", Text: "*Operation*\n" + esc(e.Operation)},
			{Type: "mrkdwn", Text: "*Changes*\n" + strconv.Itoa(e.Changes)},
		}},
	}
	if d := details(e); len(d) > 0 {
		lines := make([]string, len(d))
		for i, l := range d {
			lines[i] = esc(truncate(l, 280))
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn",
			Text: truncate("```"+strings.Join(lines, "\n")+"```", 3000)}})
	}
	ctxLine := []string{e.Time.UTC().Format(time.RFC3339)}
	if e.TraceID != "" {
		ctxLine = append(ctxLine, "trace `"+esc(e.TraceID)+"`")
	}
	if e.Approval != nil {
		ctxLine = append(ctxLine, "approval `"+esc(e.Approval.ID)+"`")
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []any{slackText{Type: "mrkdwn", Text: strings.Join(ctxLine, " · ")}}})
	var buttons []any
	if e.Kind == ApprovalRequested && e.Approval != nil {
		buttons = append(buttons,
			slackElement{Type: "button", ActionID: SlackApproveAction, Style: "primary", Value: e.Approval.ID,
				Text: &slackText{Type: "plain_text", Text: "Approve"}},
			slackElement{Type: "button", ActionID: SlackRejectAction, Style: "danger", Value: e.Approval.ID,
				Text: &slackText{Type: "plain_text", Text: "Reject"}})
	}
	if e.Links.Dashboard != "" {
		buttons = append(buttons, slackElement{Type: "button", ActionID: "slipway_dashboard", URL: e.Links.Dashboard,
			Text: &slackText{Type: "plain_text", Text: "Dashboard"}})
	}
	if e.Links.CI != "" {
		buttons = append(buttons, slackElement{Type: "button", ActionID: "slipway_ci", URL: e.Links.CI,
			Text: &slackText{Type: "plain_text", Text: "CI run"}})
	}
	if len(buttons) > 0 {
		blocks = append(blocks, slackBlock{Type: "actions", BlockID: "slipway_actions", Elements: buttons})
	}
	return map[string]any{"text": fallback(e), "blocks": blocks}
}

// fallback is the plain text shown in notifications and by clients
// without Block Kit.
func fallback(e Event) string {
	s := title(e)
	if e.Summary != "" {
		s += ": " + e.Summary
	}
	return slackEscape(truncate(s, 3000))
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Errors of request verification (VerifySlack, VerifyWebhook).
var (
	// ErrNoSecret: no signing secret is configured, so nothing can be verified.
	ErrNoSecret = errors.New("chatops: no signing secret configured")
	// ErrMissingSignature: the signature or timestamp header is missing.
	ErrMissingSignature = errors.New("chatops: request signature or timestamp missing")
	// ErrBadSignature: the signature does not match the body.
	ErrBadSignature = errors.New("chatops: request signature does not match")
	// ErrExpired: the timestamp is outside the window (a replay, or a clock far off).
	ErrExpired = errors.New("chatops: request timestamp outside the allowed window")
)

// DefaultWindow is how far a signed request's timestamp may be from now.
const DefaultWindow = 5 * time.Minute

// Slack request signing headers.
const (
	SlackSignatureHeader = "X-Slack-Signature"
	SlackTimestampHeader = "X-Slack-Request-Timestamp"
)

// VerifySlack checks a request from Slack (an interactive callback): the
// X-Slack-Signature header must be "v0=" + hex HMAC-SHA256(signingSecret,
// "v0:" + X-Slack-Request-Timestamp + ":" + body), compared in constant
// time, and the timestamp within window of now in either direction
// (DefaultWindow when window <= 0), against replays. body is the raw
// request body, before any parsing. Errors wrap ErrNoSecret,
// ErrMissingSignature, ErrExpired or ErrBadSignature.
func VerifySlack(h http.Header, body, signingSecret []byte, now time.Time, window time.Duration) error {
	return verify(h.Get(SlackTimestampHeader), h.Get(SlackSignatureHeader), "v0=", func(ts string) []byte {
		return []byte("v0:" + ts + ":" + string(body))
	}, signingSecret, now, window)
}

// verify is the shared HMAC check of VerifySlack and VerifyWebhook.
func verify(ts, sig, prefix string, base func(ts string) []byte, secret []byte, now time.Time, window time.Duration) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	if ts == "" || sig == "" {
		return ErrMissingSignature
	}
	if window <= 0 {
		window = DefaultWindow
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: the timestamp is not unix seconds", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return fmt.Errorf("%w: timestamp is %s from now, more than %s", ErrExpired, d.Round(time.Second), window)
	}
	got, err := hex.DecodeString(strings.TrimPrefix(sig, prefix))
	if !strings.HasPrefix(sig, prefix) || err != nil {
		return fmt.Errorf("%w: not %s<hex>", ErrBadSignature, prefix)
	}
	m := hmac.New(sha256.New, secret)
	m.Write(base(ts))
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// SignSlack returns the headers Slack would send with body at t (for tests
// and for tools that replay callbacks).
func SignSlack(body, signingSecret []byte, t time.Time) http.Header {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, signingSecret)
	m.Write([]byte("v0:" + ts + ":" + string(body)))
	h := http.Header{}
	h.Set(SlackTimestampHeader, ts)
	h.Set(SlackSignatureHeader, "v0="+hex.EncodeToString(m.Sum(nil)))
	return h
}
