// Package chatops tells people in their chat what the infrastructure runs
// did (Slack, Microsoft Teams, a generic signed webhook) and carries their
// approvals back. Notifications never block or fail a run: a Dispatcher
// queues them and delivers with retries in the background.
package chatops

import (
	"context"
	"time"
)

// Kind says what happened.
type Kind string

// Kinds of events.
const (
	RunSucceeded      Kind = "run.succeeded"
	RunFailed         Kind = "run.failed"
	PolicyBlocked     Kind = "policy.blocked"
	DriftDetected     Kind = "drift.detected"
	RollbackDone      Kind = "rollback.done"
	ApprovalRequested Kind = "approval.requested"
	// RolloutStep: a progressive rollout passed a step, paused or resumed.
	RolloutStep Kind = "rollout.step"
	// RolloutAborted: a rollout was aborted (a failed analysis, a failed
	// step, or by hand) and stable serves all the traffic again; the
	// Details start with the cause.
	RolloutAborted Kind = "rollout.aborted"
)

// Event is one notification. Its texts are already masked by the caller:
// they never carry secret values.
type Event struct {
	Kind        Kind   `json:"kind"`
	Project     string `json:"project"`
	Environment string `json:"environment"`
	Operation   string `json:"operation"`
	// Summary is one line, e.g. "up of dev: 3 changes in 2.1s".
	Summary string `json:"summary"`
	// Details are at most MaxDetails lines: drifted resources, findings,
	// the error.
	Details []string  `json:"details,omitempty"`
	Changes int       `json:"changes"`
	Time    time.Time `json:"time"`
	TraceID string    `json:"traceId,omitempty"`
	// Approval is set for ApprovalRequested.
	Approval *Approval `json:"approval,omitempty"`
	// Links are filled by the Dispatcher when empty.
	Links Links `json:"links"`
	// Delivery identifies the event's delivery to a webhook
	// (WebhookDeliveryHeader, covered by the signature), the same for
	// every retry; the Dispatcher (or the Webhook, for a direct Notify)
	// sets it when empty. It is not part of the body.
	Delivery string `json:"-"`
}

// MaxDetails is how many detail lines a message shows.
const MaxDetails = 10

// Approval identifies a pending approval request.
type Approval struct {
	ID    string `json:"id"`
	Stage string `json:"stage"`
}

// Links point from a message to where to look further.
type Links struct {
	// Dashboard is the environment's page on the Slipway dashboard.
	Dashboard string `json:"dashboard,omitempty"`
	// CI is the CI run that ran the operation.
	CI string `json:"ci,omitempty"`
}

// Notifier delivers events. A Dispatcher's Notify never blocks; a single
// channel's Notify (Slack, Teams, Webhook) makes one delivery attempt and
// returns its error.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// NotifierFunc adapts a function to a Notifier.
type NotifierFunc func(ctx context.Context, e Event) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, e Event) error { return f(ctx, e) }
