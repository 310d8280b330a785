package approvals

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// testKey is the server's signing key in these tests.
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// newStore returns a Store on a file backend in a temporary directory,
// signing with testKey and verifying with its public key.
func newStore(t *testing.T) *Store {
	t.Helper()
	st, err := statestore.Open(context.Background(), "file://"+t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return New(st, WithSigningKey(testKey), WithVerifyKey(testKey.Public().(ed25519.PublicKey)))
}

func TestStore_RequestDecide(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	r, err := s.Request(ctx, Request{Project: "shop", Stack: "prod", Stage: "prod", Summary: "2 changes", Changes: 2, Status: Approved, By: "forged"})
	require.NoError(t, err)
	assert.True(t, ValidID(r.ID), r.ID)
	assert.Equal(t, Pending, r.Status, "a new request is pending whatever the caller says")
	assert.Empty(t, r.By)

	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, r, got)
	pending, err := s.Pending(ctx)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.Equal(t, r.ID, pending[0].ID)

	d, err := s.Decide(ctx, r.ID, true, "alice", "api")
	require.NoError(t, err)
	assert.Equal(t, Approved, d.Status)
	assert.Equal(t, "alice", d.By)
	assert.Equal(t, "api", d.Via)
	assert.False(t, d.Decided.IsZero())

	again, err := s.Decide(ctx, r.ID, false, "mallory", "api")
	assert.ErrorIs(t, err, ErrDecided)
	assert.Contains(t, err.Error(), "approved by alice")
	assert.Equal(t, Approved, again.Status)
	_, err = s.Expire(ctx, r.ID)
	assert.ErrorIs(t, err, ErrDecided)
	got, err = s.Get(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, "alice", got.By, "the first decision stands")

	pending, err = s.Pending(ctx)
	require.NoError(t, err)
	assert.Empty(t, pending)

	for _, id := range []string{"20250101T000000.000000000Z-deadbeef", "../../stacks/prod", ""} {
		_, err = s.Decide(ctx, id, true, "x", "api")
		assert.ErrorIs(t, err, ErrNotFound, "%q", id)
	}
}

// TestStore_ConcurrentDecidersOneWins: within one Store, of many deciders
// of one request exactly one succeeds, and the stored decision is its.
func TestStore_ConcurrentDecidersOneWins(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	r, err := s.Request(ctx, Request{Project: "shop", Stack: "prod", Stage: "prod"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	results := make([]error, 8)
	winners := make([]Request, 8)
	for i := range results {
		wg.Go(func() { winners[i], results[i] = s.Decide(ctx, r.ID, i%2 == 0, string(rune('a'+i)), "api") })
	}
	wg.Wait()
	won := -1
	for i, err := range results {
		if err == nil {
			require.Equal(t, -1, won, "two deciders won")
			won = i
		} else {
			assert.ErrorIs(t, err, ErrDecided)
		}
	}
	require.NotEqual(t, -1, won)
	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, winners[won], got)
}

func TestStore_Wait(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	r, err := s.Request(ctx, Request{Stage: "prod"})
	require.NoError(t, err)

	wctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	got, err := s.Wait(wctx, r.ID, 5*time.Millisecond)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, Pending, got.Status)

	done := make(chan Request)
	go func() {
		got, err := s.Wait(ctx, r.ID, 5*time.Millisecond)
		assert.NoError(t, err)
		done <- got
	}()
	_, err = s.Decide(ctx, r.ID, false, "bob", "slack")
	require.NoError(t, err)
	select {
	case got := <-done:
		assert.Equal(t, Rejected, got.Status)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not see the decision")
	}

	_, err = s.Wait(ctx, "20250101T000000.000000000Z-deadbeef", time.Millisecond)
	assert.ErrorIs(t, err, ErrNotFound)
}

// TestGate_TimesOutAndExpires: nobody decides; the gate says it timed out,
// names the request, and a late approval cannot apply.
func TestGate_TimesOutAndExpires(t *testing.T) {
	s := newStore(t)
	var got chatops.Event
	n := chatops.NotifierFunc(func(_ context.Context, e chatops.Event) error { got = e; return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := Gate(s, n, 5*time.Millisecond)(ctx, "prod", &outcome.Result{Project: "shop", Stack: "prod",
		Summary: map[string]int{"create": 2, "same": 5}})
	var te *TimeoutError
	require.ErrorAs(t, err, &te)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotNil(t, got.Approval)
	assert.Equal(t, te.ID, got.Approval.ID)
	assert.Contains(t, err.Error(), "timed out")
	assert.Contains(t, err.Error(), te.ID)
	assert.Equal(t, chatops.ApprovalRequested, got.Kind)
	assert.Equal(t, 2, got.Changes)
	assert.Equal(t, "shop", got.Project)

	r, err := s.Get(context.Background(), te.ID)
	require.NoError(t, err)
	assert.Equal(t, Expired, r.Status)
	_, err = s.Decide(context.Background(), te.ID, true, "late", "api")
	assert.ErrorIs(t, err, ErrDecided)
}

func TestRejectedError_NamesTheDecider(t *testing.T) {
	err := error(&RejectedError{Request: Request{ID: "x", Stage: "prod", By: "bob (U1)", Via: "slack"}})
	assert.Equal(t, "approvals: stage prod was rejected by bob (U1) via slack (request x)", err.Error())
	assert.False(t, errors.Is(err, context.DeadlineExceeded))
}
