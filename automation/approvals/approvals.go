// Package approvals keeps approval requests of promotion stages in the
// backend (statestore records of kind "approvals"), where any process on
// the same backend sees them: the promotion that waits (Gate), and the
// server that records people's decisions from Slack (SlackHandler) or
// from its API (APIHandler).
package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/automation/statestore"
)

// Kind is the statestore record kind of approval requests.
const Kind = "approvals"

// Status of a request.
type Status string

// Statuses. Only a Pending request can be decided.
const (
	Pending  Status = "pending"
	Approved Status = "approved"
	Rejected Status = "rejected"
	// Expired: the promotion stopped waiting (its wait timed out) before
	// anyone decided.
	Expired Status = "expired"
)

// Request asks for the approval of one promotion stage's previewed plan.
type Request struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	Stack   string `json:"stack"`
	Stage   string `json:"stage"`
	// Summary is one line about what the stage would change.
	Summary   string    `json:"summary"`
	Changes   int       `json:"changes"`
	Status    Status    `json:"status"`
	Requested time.Time `json:"requested"`
	Decided   time.Time `json:"decided,omitzero"`
	// By names who decided (a Slack user, the API caller's name).
	By string `json:"by,omitempty"`
	// Via is where the decision came from: "slack", "api", "timeout".
	Via string `json:"via,omitempty"`
}

// Errors of Store.
var (
	// ErrNotFound: no request has the ID.
	ErrNotFound = errors.New("approvals: no such approval request")
	// ErrDecided: the request was decided already (or expired).
	ErrDecided = errors.New("approvals: the request was already decided")
)

// MaxKept bounds how many requests the store keeps; Request removes the
// oldest decided ones beyond it.
const MaxKept = 500

var idRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{9}Z-[0-9a-f]{8}$`)

// ValidID reports whether id has the form of a request ID (so a caller
// can refuse garbage before touching the store).
func ValidID(id string) bool { return idRE.MatchString(id) }

// Store reads and writes approval requests in a statestore.
//
// Decisions: within one Store (one process, e.g. `slipway serve`) they
// are serialised, so exactly one decider of a pending request wins. The
// backends have no compare-and-swap, so across processes Decide writes
// and then re-reads the record: a decider that finds another decision
// there reports ErrDecided. Two processes deciding within the same
// read-write window can both succeed; the last write then stands (and is
// what Wait sees).
type Store struct {
	st  *statestore.Store
	now func() time.Time
	mu  sync.Mutex
}

// New returns a Store on st (the backend's store: see
// automation.Engine.Store). The caller keeps closing st.
func New(st *statestore.Store) *Store { return &Store{st: st, now: time.Now} }

// Request records a new pending request (its ID, Status and Requested are
// set here) and returns it.
func (s *Store) Request(ctx context.Context, r Request) (Request, error) {
	now := s.now()
	r.ID = statestore.NewReleaseName(now)
	r.Status, r.Requested, r.Decided, r.By, r.Via = Pending, now.UTC(), time.Time{}, "", ""
	if err := s.put(ctx, r); err != nil {
		return Request{}, err
	}
	s.prune(ctx)
	return r, nil
}

func (s *Store) put(ctx context.Context, r Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.st.Put(ctx, Kind, r.ID, b); err != nil {
		return fmt.Errorf("approvals: writing request %s: %w", r.ID, err)
	}
	return nil
}

// Get returns a request; an unknown (or malformed) ID is ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Request, error) {
	if !ValidID(id) {
		return Request{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := s.st.Get(ctx, Kind, id)
	if errors.Is(err, fs.ErrNotExist) {
		return Request{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Request{}, fmt.Errorf("approvals: reading request %s: %w", id, err)
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return Request{}, fmt.Errorf("approvals: request %s is not valid JSON: %w", id, err)
	}
	return r, nil
}

// All returns every request, oldest first (unreadable ones are skipped).
func (s *Store) All(ctx context.Context) ([]Request, error) {
	entries, err := s.st.List(ctx, Kind, "")
	if err != nil {
		return nil, fmt.Errorf("approvals: listing requests: %w", err)
	}
	out := make([]Request, 0, len(entries))
	for _, en := range entries {
		var r Request
		if json.Unmarshal(en.Data, &r) == nil && r.ID == en.Name {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Pending returns the requests waiting for a decision, oldest first.
func (s *Store) Pending(ctx context.Context) ([]Request, error) {
	all, err := s.All(ctx)
	if err != nil {
		return nil, err
	}
	var out []Request
	for _, r := range all {
		if r.Status == Pending {
			out = append(out, r)
		}
	}
	return out, nil
}

// Decide approves or rejects a pending request, recording who (by) and
// where (via). An unknown ID is ErrNotFound; a request decided before is
// ErrDecided (returned with the request as it stands).
func (s *Store) Decide(ctx context.Context, id string, approve bool, by, via string) (Request, error) {
	st := Rejected
	if approve {
		st = Approved
	}
	return s.settle(ctx, id, st, by, via)
}

// Expire marks a pending request Expired (the promotion stopped waiting);
// like Decide, it fails with ErrDecided when someone decided first.
func (s *Store) Expire(ctx context.Context, id string) (Request, error) {
	return s.settle(ctx, id, Expired, "slipway", "timeout")
}

func (s *Store) settle(ctx context.Context, id string, st Status, by, via string) (Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.Status != Pending {
		return r, fmt.Errorf("%w: %s", ErrDecided, describe(r))
	}
	r.Status, r.Decided, r.By, r.Via = st, s.now().UTC(), by, via
	if err := s.put(ctx, r); err != nil {
		return Request{}, err
	}
	// Another process may have written its decision meanwhile: the record
	// as it stands is the decision.
	got, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if got.Status != r.Status || !got.Decided.Equal(r.Decided) || got.By != r.By || got.Via != r.Via {
		return got, fmt.Errorf("%w: %s", ErrDecided, describe(got))
	}
	return got, nil
}

// describe says how a request was decided.
func describe(r Request) string {
	if r.Status == Pending {
		return "request " + r.ID + " is pending"
	}
	s := fmt.Sprintf("request %s was %s", r.ID, r.Status)
	if r.By != "" {
		s += " by " + r.By
	}
	if r.Via != "" {
		s += " via " + r.Via
	}
	return s
}

// Wait polls the request every poll (default 2 s) until it is decided and
// returns it, or returns ctx's error when ctx ends first (with the request
// as last read). Read errors are retried until ctx ends.
func (s *Store) Wait(ctx context.Context, id string, poll time.Duration) (Request, error) {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var last Request
	for {
		r, err := s.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return Request{}, err
		case err == nil:
			last = r
			if r.Status != Pending {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-t.C:
		}
	}
}

// prune removes the oldest decided requests beyond MaxKept (best effort).
func (s *Store) prune(ctx context.Context) {
	names, err := s.st.Names(ctx, Kind, "")
	if err != nil || len(names) <= MaxKept {
		return
	}
	extra := len(names) - MaxKept
	for _, n := range names { // sorted: oldest first
		if extra == 0 {
			return
		}
		r, err := s.Get(ctx, n)
		if err != nil || r.Status == Pending {
			continue
		}
		if s.st.Delete(ctx, Kind, n) == nil {
			extra--
		}
	}
}
