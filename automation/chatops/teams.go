package chatops

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Teams returns a Notifier that posts to a Microsoft Teams incoming
// webhook (or a Power Automate workflow) a message with one Adaptive Card
// (version 1.4): title, summary, a FactSet, the details and links. Teams
// webhooks cannot carry approval buttons back to Slipway; an
// ApprovalRequested card names the approval ID to approve through the API
// of `slipway serve`.
func Teams(webhookURL string, opts ...Option) Notifier {
	return &teamsNotifier{newChannel("teams", webhookURL, opts)}
}

type teamsNotifier struct{ ch *channel }

// String names the channel without its secret path.
func (t *teamsNotifier) String() string { return t.ch.String() }

// Notify posts one message (a single attempt).
func (t *teamsNotifier) Notify(ctx context.Context, e Event) error {
	b, err := marshal(teamsMessage(e))
	if err != nil {
		return err
	}
	return t.ch.post(ctx, b, nil)
}

type (
	teamsFact struct {
		Title string `json:"title"`
		Value string `json:"value"`
	}
	teamsElement struct {
		Type     string      `json:"type"`
		Text     string      `json:"text,omitempty"`
		Size     string      `json:"size,omitempty"`
		Weight   string      `json:"weight,omitempty"`
		Color    string      `json:"color,omitempty"`
		FontType string      `json:"fontType,omitempty"`
		IsSubtle bool        `json:"isSubtle,omitempty"`
		Wrap     bool        `json:"wrap,omitempty"`
		Facts    []teamsFact `json:"facts,omitempty"`
	}
	teamsAction struct {
		Type  string `json:"type"`
		Title string `json:"title"`
		URL   string `json:"url"`
	}
	teamsCard struct {
		Schema  string         `json:"$schema"`
		Type    string         `json:"type"`
		Version string         `json:"version"`
		Body    []teamsElement `json:"body"`
		Actions []teamsAction  `json:"actions,omitempty"`
	}
	teamsAttachment struct {
		ContentType string    `json:"contentType"`
		ContentURL  *string   `json:"contentUrl"`
		Content     teamsCard `json:"content"`
	}
	teamsMsg struct {
		Type        string            `json:"type"`
		Attachments []teamsAttachment `json:"attachments"`
	}
)

// teamsColor is the title's colour per kind.
func teamsColor(k Kind) string {
	switch k {
	case RunSucceeded, RollbackDone:
		return "Good"
	case RunFailed, PolicyBlocked, RolloutAborted:
		return "Attention"
	case DriftDetected, ApprovalRequested:
		return "Warning"
	}
	return "Default"
}

func teamsMessage(e Event) teamsMsg {
	facts := []teamsFact{
		{"Project", e.Project}, {"Environment", e.Environment}, {"Operation", e.Operation},
		{"Changes", strconv.Itoa(e.Changes)}, {"Time", e.Time.UTC().Format(time.RFC3339)},
	}
	if e.TraceID != "" {
		facts = append(facts, teamsFact{"Trace", e.TraceID})
	}
	if e.Approval != nil {
		facts = append(facts, teamsFact{"Approval", e.Approval.ID})
	}
	body := []teamsElement{
		{Type: "TextBlock", Text: title(e), Size: "Large", Weight: "Bolder", Color: teamsColor(e.Kind), Wrap: true},
		{Type: "TextBlock", Text: e.Summary, Wrap: true},
		{Type: "FactSet", Facts: facts},
	}
	if d := details(e); len(d) > 0 {
		body = append(body, teamsElement{Type: "TextBlock", Text: strings.Join(d, "\n\n"), FontType: "Monospace", IsSubtle: true, Wrap: true})
	}
	if e.Kind == ApprovalRequested && e.Approval != nil {
		body = append(body, teamsElement{Type: "TextBlock", Wrap: true,
			Text: "Approve or reject with the Slack buttons, or POST {\"decision\":\"approve\"} to /api/approvals/" + e.Approval.ID + " on slipway serve (bearer token)."})
	}
	var actions []teamsAction
	if e.Links.Dashboard != "" {
		actions = append(actions, teamsAction{Type: "Action.OpenUrl", Title: "Dashboard", URL: e.Links.Dashboard})
	}
	if e.Links.CI != "" {
		actions = append(actions, teamsAction{Type: "Action.OpenUrl", Title: "CI run", URL: e.Links.CI})
	}
	return teamsMsg{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content: teamsCard{Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard",
			Version: "1.4", Body: body, Actions: actions},
	}}}
}
