package approvals

import (
	"context"
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

// Gate returns an approval function for automation.Stage.Approve: it
// records a pending request for the stage's previewed plan (project and
// stack from the preview), tells n (an ApprovalRequested event carrying
// the request ID; n may be nil), and waits, polling the store every poll,
// until someone decides. Approved returns nil; Rejected returns a
// *RejectedError naming who rejected; when ctx ends first the request is
// marked Expired (so a late approval cannot apply) and a *TimeoutError is
// returned. Bound the wait with ctx (the promotion's context).
func Gate(s *Store, n chatops.Notifier, poll time.Duration) func(ctx context.Context, stage string, preview *outcome.Result) error {
	return func(ctx context.Context, stage string, preview *outcome.Result) error {
		if preview == nil {
			preview = &outcome.Result{}
		}
		changes := preview.Changes()
		r, err := s.Request(ctx, Request{Project: preview.Project, Stack: preview.Stack, Stage: stage,
			Summary: fmt.Sprintf("promotion to %s waits for approval: %d change%s", stage, changes, plural(changes)),
			Changes: changes})
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
		got, err := s.Wait(ctx, r.ID, poll)
		if err != nil && ctx.Err() != nil {
			// Stop a late decision from applying; one that came in just now stands.
			xctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			got, err = s.Expire(xctx, r.ID)
			cancel()
			if !errors.Is(err, ErrDecided) || got.Status == Expired || got.Status == Pending {
				return &TimeoutError{Stage: stage, ID: r.ID, Err: ctx.Err()}
			}
		} else if err != nil {
			return err
		}
		if got.Status == Approved {
			return nil
		}
		return &RejectedError{Request: got}
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
