package approvals

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/outcome"
)

// RejectedError is a stage's approval request that someone rejected.
// Get it with errors.As (a *RejectedError).
type RejectedError struct{ Request Request }

// Error names who rejected the stage, and where.
func (e *RejectedError) Error() string {
	r := e.Request
	s := fmt.Sprintf("approvals: stage %s was rejected", r.Stage)
	if r.By != "" {
		s += " by " + r.By
	}
	if r.Via != "" {
		s += " via " + r.Via
	}
	return s + " (request " + r.ID + ")"
}

// TimeoutError is an approval nobody gave before the wait ended.
// Get it with errors.As (a *TimeoutError).
type TimeoutError struct {
	Stage, ID string
	// Err is the context's error.
	Err error
}

// Error names the stage and the request.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("approvals: the approval of stage %s timed out (request %s): %v", e.Stage, e.ID, e.Err)
}

// Unwrap returns the context's error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// GateOption configures Gate.
type GateOption func(*gateConfig)

type gateConfig struct{ requestedBy []string }

// RequestedBy names who started the promotion (a CI actor, a user name,
// a Slack user ID); they may not approve its requests unless the server
// allows self-approval.
func RequestedBy(ids ...string) GateOption {
	return func(c *gateConfig) {
		for _, id := range ids {
			if id = strings.TrimSpace(id); id != "" {
				c.requestedBy = append(c.requestedBy, id)
			}
		}
	}
}

// UnverifiedError is an approval the gate refused because its decision
// does not verify (unsigned, forged, signed with another key, or for a
// rewritten request). Err wraps ErrUnsigned, ErrBadSignature or
// ErrOtherRequest. Get it with errors.As.
type UnverifiedError struct {
	Request Request
	Err     error
}

// Error names the request and why the approval was refused.
func (e *UnverifiedError) Error() string {
	return fmt.Sprintf("approvals: stage %s: refusing the approval of request %s: %v; only decisions signed by slipway serve's --approval-key-file count",
		e.Request.Stage, e.Request.ID, e.Err)
}

// Unwrap returns the verification error.
func (e *UnverifiedError) Unwrap() error { return e.Err }

// Gate returns an approval function for automation.Stage.Approve: it
// records a pending request for the stage's previewed plan (project and
// stack from the preview), tells n (an ApprovalRequested event carrying
// the request ID; n may be nil), and waits, polling the store every poll,
// until someone decides. An Approved decision counts only when its
// signature verifies with the Store's public key (WithVerifyKey) and it is
// for the request recorded here: then nil is returned, else an
// *UnverifiedError. Rejected returns a *RejectedError naming who
// rejected; when ctx ends first the request is marked Expired (so a late
// approval cannot apply) and a *TimeoutError is returned. A Store without
// a public key fails at once with ErrNoVerifyKey, recording nothing. Bound
// the wait with ctx (the promotion's context).
func Gate(s *Store, n chatops.Notifier, poll time.Duration, opts ...GateOption) func(ctx context.Context, stage string, preview *outcome.Result) error {
	var c gateConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return func(ctx context.Context, stage string, preview *outcome.Result) error {
		if len(s.verify) != ed25519.PublicKeySize {
			return ErrNoVerifyKey
		}
		if preview == nil {
			preview = &outcome.Result{}
		}
		changes := preview.Changes()
		r, sum, err := s.request(ctx, Request{Project: preview.Project, Stack: preview.Stack, Stage: stage,
			Summary: fmt.Sprintf("promotion to %s waits for approval: %d change%s", stage, changes, plural(changes)),
			Changes: changes, RequestedBy: c.requestedBy})
		if err != nil {
			return err
		}
		if n != nil {
			env := preview.Stack
			if env == "" {
				env = stage
			}
			_ = n.Notify(ctx, chatops.Event{Kind: chatops.ApprovalRequested, Project: r.Project, Environment: env,
				Operation: "promote", Summary: r.Summary, Details: changeLines(preview), Changes: changes,
				Time: r.Requested, Approval: &chatops.Approval{ID: r.ID, Stage: stage}})
		}
		got, d, err := s.wait(ctx, r.ID, poll)
		if err != nil && ctx.Err() != nil {
			// Stop a late decision from applying; one that came in just now stands.
			xctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_, err = s.Expire(xctx, r.ID)
			if errors.Is(err, ErrDecided) {
				got, _, d, err = s.get(xctx, r.ID)
			}
			cancel()
			if err != nil || got.Status == Expired || got.Status == Pending {
				return &TimeoutError{Stage: stage, ID: r.ID, Err: ctx.Err()}
			}
		} else if err != nil {
			return err
		}
		if got.Status != Approved {
			return &RejectedError{Request: got}
		}
		if d == nil {
			return &UnverifiedError{Request: got, Err: fmt.Errorf("%w: the request record itself says approved, with no decision record", ErrUnsigned)}
		}
		if err := VerifyDecision(*d, s.verify, sum); err != nil {
			return &UnverifiedError{Request: got, Err: err}
		}
		return nil
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// changeLines lists the preview's changes, one line each ("create
// kubernetes:apps/v1:Deployment app").
func changeLines(res *outcome.Result) []string {
	var out []string
	for _, c := range res.Changed() {
		if c.Type == "pulumi:pulumi:Stack" {
			continue
		}
		name := c.URN
		if i := strings.LastIndex(name, "::"); i >= 0 {
			name = name[i+2:]
		}
		out = append(out, c.Op+" "+c.Type+" "+name)
	}
	if len(out) > chatops.MaxDetails {
		out = append(out[:chatops.MaxDetails-1], fmt.Sprintf("… and %d more", len(out)-(chatops.MaxDetails-1)))
	}
	return out
}
