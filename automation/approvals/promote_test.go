package approvals_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/approvals"
	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/statestore"
	"github.com/slipwayhq/slipway/automation/toolchain"
)

var secret = []byte("slack-signing-secret-0123456789")

// post sends a Slack callback to the server and returns the status.
func post(t *testing.T, srv *httptest.Server, body []byte, hdr http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/slack/actions", bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestPromotion_WaitsForTheSlackApproval: a promotion stage gated by
// approvals.Gate waits; a bad signature and a replayed callback are
// refused with 401 and leave the request pending; a correctly signed
// approval lets the promotion deploy. A rejection stops the promotion at
// the approval gate, naming who rejected.
func TestPromotion_WaitsForTheSlackApproval(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	state := t.TempDir()
	backend := "file://" + state
	e, err := automation.New(ctx, automation.WithDir(t.TempDir()), automation.WithPulumiHome(t.TempDir()),
		automation.WithBackend(backend), automation.WithPassphrase(""),
		automation.WithResolver(toolchain.New(toolchain.WithLog(io.Discard))))
	require.NoError(t, err)
	st, err := statestore.Open(ctx, backend, nil)
	require.NoError(t, err)
	defer st.Close()
	// The server signs decisions with its key; the promotion's gate holds
	// only the public key.
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	serve := approvals.New(st, approvals.WithSigningKey(key))
	store := approvals.New(st, approvals.WithVerifyKey(pub))
	srv := httptest.NewServer(approvals.SlackHandler(serve, secret, approvals.SlackTeam("T1"), approvals.SlackApprovers("U123", "U777")))
	defer srv.Close()

	requested := make(chan chatops.Event, 1)
	notifier := chatops.NotifierFunc(func(_ context.Context, ev chatops.Event) error {
		requested <- ev
		return nil
	})
	prog := func(stack, greeting string) automation.Program {
		return automation.Program{Project: "approvaltest", Stack: stack, Run: func(ctx *pulumi.Context) error {
			ctx.Export("greeting", pulumi.String(greeting))
			return nil
		}}
	}
	stage := func(stack, greeting string) automation.Stage {
		p := prog(stack, greeting)
		return automation.Stage{Name: stack, Release: automation.Release{Version: greeting, Program: p},
			Approve: approvals.Gate(store, notifier, 20*time.Millisecond, approvals.RequestedBy("ci-bot"))}
	}
	lookup := func(v string) (automation.Program, error) { return prog("unused", v), nil }
	type promoted struct {
		res []automation.StageResult
		err error
	}
	promote := func(s automation.Stage) <-chan promoted {
		done := make(chan promoted, 1)
		go func() {
			res, err := e.Promote(ctx, []automation.Stage{s}, lookup)
			done <- promoted{res, err}
		}()
		return done
	}
	awaitRequest := func(done <-chan promoted) chatops.Event {
		t.Helper()
		select {
		case ev := <-requested:
			return ev
		case p := <-done:
			t.Fatalf("the promotion ended without asking for approval: %v", p.err)
		case <-ctx.Done():
			t.Fatal("no approval request")
		}
		return chatops.Event{}
	}

	// Approved from Slack.
	done := promote(stage("appr-dev", "hello"))
	ev := awaitRequest(done)
	assert.Equal(t, chatops.ApprovalRequested, ev.Kind)
	assert.Equal(t, "approvaltest", ev.Project)
	assert.Equal(t, "appr-dev", ev.Environment)
	require.NotNil(t, ev.Approval)
	assert.Equal(t, "appr-dev", ev.Approval.Stage)
	id := ev.Approval.ID
	body := approvals.SlackCallback(t, chatops.SlackApproveAction, id, "U123", "alice")

	stillPending := func(what string) {
		t.Helper()
		r, err := store.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, approvals.Pending, r.Status, what)
		select {
		case p := <-done:
			t.Fatalf("the promotion went on after %s: %v", what, p.err)
		default:
		}
	}
	assert.Equal(t, http.StatusUnauthorized, post(t, srv, body, chatops.SignSlack(body, []byte("wrong secret"), time.Now())))
	stillPending("a bad signature")
	replayed := chatops.SignSlack(body, secret, time.Now().Add(-10*time.Minute))
	assert.Equal(t, http.StatusUnauthorized, post(t, srv, body, replayed))
	stillPending("a replayed callback")

	good := chatops.SignSlack(body, secret, time.Now())
	require.Equal(t, http.StatusOK, post(t, srv, body, good))
	var p promoted
	select {
	case p = <-done:
	case <-ctx.Done():
		t.Fatal("the promotion did not proceed after the approval")
	}
	require.NoError(t, p.err)
	require.Len(t, p.res, 1)
	require.NotNil(t, p.res[0].Deployment)
	assert.Equal(t, "hello", p.res[0].Deployment.Result.Outputs["greeting"], "the stage deployed")
	r, err := store.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, approvals.Approved, r.Status)
	assert.Equal(t, "alice (U123)", r.By)
	// The same approval sent again changes nothing.
	assert.Equal(t, http.StatusConflict, post(t, srv, body, good))

	// Rejected from Slack: the promotion stops at the approval gate and
	// deploys nothing.
	done = promote(stage("appr-prod", "bonjour"))
	ev = awaitRequest(done)
	reject := approvals.SlackCallback(t, chatops.SlackRejectAction, ev.Approval.ID, "U777", "bob")
	require.Equal(t, http.StatusOK, post(t, srv, reject, chatops.SignSlack(reject, secret, time.Now())))
	select {
	case p = <-done:
	case <-ctx.Done():
		t.Fatal("the promotion did not stop after the rejection")
	}
	var pe *automation.PromotionError
	require.ErrorAs(t, p.err, &pe)
	assert.Equal(t, automation.GateApproval, pe.Gate)
	assert.Equal(t, "appr-prod", pe.Stage)
	assert.Contains(t, p.err.Error(), "rejected by bob (U777) via slack")
	var rej *approvals.RejectedError
	require.ErrorAs(t, p.err, &rej)
	require.Len(t, p.res, 1)
	assert.Nil(t, p.res[0].Deployment, "nothing deployed")
	if c, err := st.ReadCheckpoint(ctx, "approvaltest", "appr-prod"); err == nil {
		b, err := c.JSON()
		require.NoError(t, err)
		assert.NotContains(t, string(b), "bonjour", "the rejected stage's state holds no deployment")
	}
	c, err := st.ReadCheckpoint(ctx, "approvaltest", "appr-dev")
	require.NoError(t, err)
	b, err := c.JSON()
	require.NoError(t, err)
	assert.Contains(t, string(b), "hello", "the approved stage's state holds its deployment")
}
