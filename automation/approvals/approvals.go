// Package approvals keeps approval requests of promotion stages in the
// backend (statestore records of kind "approvals"), where any process on
// the same backend sees them: the promotion that waits (Gate), and the
// server that records people's decisions from Slack (SlackHandler) or
// from its API (APIHandler).
package approvals

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
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
//
// The request record is written once, pending, and never rewritten: its
// decision is a separate record (DecisionKind) that Decide or Expire
// create only when none exists, so exactly one decision stands even when
// several processes decide at once. Status, Decided, By and Via of a
// Request read back (Get, All, Pending, Wait) come from that decision.
type Request struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	Stack   string `json:"stack"`
	Stage   string `json:"stage"`
	// Summary is one line about what the stage would change.
	Summary string `json:"summary"`
	Changes int    `json:"changes"`
	// RequestedBy names who started the promotion (a CI actor, a user
	// name, a Slack user ID, an API token's name): none of them may
	// approve it unless the server allows self-approval.
	RequestedBy []string  `json:"requestedBy,omitempty"`
	Status      Status    `json:"status"`
	Requested   time.Time `json:"requested"`
	Decided     time.Time `json:"decided,omitzero"`
	// By names who decided (a Slack user, the API token's name).
	By string `json:"by,omitempty"`
	// Via is where the decision came from: "slack", "api", "timeout".
	Via string `json:"via,omitempty"`
}

// DecisionKind is the statestore record kind of decisions (one record per
// request, named by its ID, created once).
const DecisionKind = "approval-decisions"

// Decision is the stored decision on one request. Serve signs it (see
// WithSigningKey); the waiting gate proceeds only on an Approved decision
// whose signature verifies with the public key (WithVerifyKey) and whose
// Request digest is that of the request the gate recorded.
type Decision struct {
	ID      string    `json:"id"`
	Status  Status    `json:"status"`
	Decided time.Time `json:"decided"`
	By      string    `json:"by,omitempty"`
	Via     string    `json:"via,omitempty"`
	// Request is the hex SHA-256 of the request record the decision is for.
	Request string `json:"request"`
	// Signature is the base64 Ed25519 signature of the decision's
	// canonical encoding; empty when unsigned (an expiry the gate wrote).
	Signature string `json:"signature,omitempty"`
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

// Store reads and writes approval requests and their decisions in a
// statestore.
//
// Decisions are created with the backend's conditional write
// (statestore.Store.Create): of several deciders of one request, in one
// process or many, exactly one wins and the others get ErrDecided.
type Store struct {
	st     *statestore.Store
	now    func() time.Time
	sign   ed25519.PrivateKey
	verify ed25519.PublicKey
}

// Option configures a Store.
type Option func(*Store)

// WithSigningKey sets the key Decide signs decisions with (the server's,
// `slipway serve --approval-key-file`). Without it Decide refuses.
func WithSigningKey(k ed25519.PrivateKey) Option { return func(s *Store) { s.sign = k } }

// WithVerifyKey sets the public key the gate verifies decisions with
// (`slipway promote --approval-public-key-file`). Without it Gate refuses
// to wait: it could not tell a real approval from a forged one.
func WithVerifyKey(k ed25519.PublicKey) Option { return func(s *Store) { s.verify = k } }

// New returns a Store on st (the backend's store: see
// automation.Engine.Store). The caller keeps closing st.
func New(st *statestore.Store, opts ...Option) *Store {
	s := &Store{st: st, now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

// Request records a new pending request (its ID, Status and Requested are
// set here) and returns it.
func (s *Store) Request(ctx context.Context, r Request) (Request, error) {
	r, _, err := s.request(ctx, r)
	return r, err
}

// request is Request, also returning the digest of the record written.
func (s *Store) request(ctx context.Context, r Request) (Request, string, error) {
	now := s.now()
	r.ID = statestore.NewReleaseName(now)
	r.Status, r.Requested, r.Decided, r.By, r.Via = Pending, now.UTC(), time.Time{}, "", ""
	b, err := json.Marshal(r)
	if err != nil {
		return Request{}, "", err
	}
	if err := s.st.Put(ctx, Kind, r.ID, b); err != nil {
		return Request{}, "", fmt.Errorf("approvals: writing request %s: %w", r.ID, err)
	}
	s.prune(ctx)
	return r, digest(b), nil
}

// digest is the hex SHA-256 of a request record.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Get returns a request with its decision; an unknown (or malformed) ID
// is ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Request, error) {
	r, _, _, err := s.get(ctx, id)
	return r, err
}

// get returns the request with its decision applied, the digest of the
// request record, and the decision (nil while there is none).
func (s *Store) get(ctx context.Context, id string) (Request, string, *Decision, error) {
	if !ValidID(id) {
		return Request{}, "", nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := s.st.Get(ctx, Kind, id)
	if errors.Is(err, fs.ErrNotExist) {
		return Request{}, "", nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Request{}, "", nil, fmt.Errorf("approvals: reading request %s: %w", id, err)
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return Request{}, "", nil, fmt.Errorf("approvals: request %s is not valid JSON: %w", id, err)
	}
	d, err := s.decision(ctx, id)
	if err != nil {
		return Request{}, "", nil, err
	}
	if d != nil {
		r.Status, r.Decided, r.By, r.Via = d.Status, d.Decided, d.By, d.Via
	}
	return r, digest(b), d, nil
}

// decision reads the decision record of a request (nil when none).
func (s *Store) decision(ctx context.Context, id string) (*Decision, error) {
	b, err := s.st.Get(ctx, DecisionKind, id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("approvals: reading the decision of %s: %w", id, err)
	}
	var d Decision
	if err := json.Unmarshal(b, &d); err != nil || d.ID != id {
		return nil, fmt.Errorf("approvals: the decision record of %s is malformed", id)
	}
	return &d, nil
}

// All returns every request with its decision, oldest first (unreadable
// ones are skipped).
func (s *Store) All(ctx context.Context) ([]Request, error) {
	entries, err := s.st.List(ctx, Kind, "")
	if err != nil {
		return nil, fmt.Errorf("approvals: listing requests: %w", err)
	}
	decided, err := s.st.List(ctx, DecisionKind, "")
	if err != nil {
		return nil, fmt.Errorf("approvals: listing decisions: %w", err)
	}
	ds := make(map[string]Decision, len(decided))
	for _, en := range decided {
		var d Decision
		if json.Unmarshal(en.Data, &d) == nil && d.ID == en.Name {
			ds[d.ID] = d
		}
	}
	out := make([]Request, 0, len(entries))
	for _, en := range entries {
		var r Request
		if json.Unmarshal(en.Data, &r) == nil && r.ID == en.Name {
			if d, ok := ds[r.ID]; ok {
				r.Status, r.Decided, r.By, r.Via = d.Status, d.Decided, d.By, d.Via
			}
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

// ErrNoSigningKey: Decide was called on a Store without a signing key.
var ErrNoSigningKey = errors.New("approvals: no signing key to sign the decision with; give the server its key (slipway serve --approval-key-file)")

// Decide approves or rejects a pending request, recording who (by) and
// where (via), signed with the Store's signing key (ErrNoSigningKey
// without one). An unknown ID is ErrNotFound; a request decided before,
// here or by another process at the same moment, is ErrDecided (returned
// with the request as it stands).
func (s *Store) Decide(ctx context.Context, id string, approve bool, by, via string) (Request, error) {
	if len(s.sign) != ed25519.PrivateKeySize {
		return Request{}, ErrNoSigningKey
	}
	st := Rejected
	if approve {
		st = Approved
	}
	return s.settle(ctx, id, st, by, via)
}

// Expire marks a pending request Expired (the promotion stopped waiting);
// like Decide, it fails with ErrDecided when someone decided first. It
// needs no signing key: an expiry never lets a promotion proceed.
func (s *Store) Expire(ctx context.Context, id string) (Request, error) {
	return s.settle(ctx, id, Expired, "slipway", "timeout")
}

func (s *Store) settle(ctx context.Context, id string, st Status, by, via string) (Request, error) {
	r, sum, d, err := s.get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if d != nil || r.Status != Pending {
		return r, fmt.Errorf("%w: %s", ErrDecided, describe(r))
	}
	dec := Decision{ID: id, Status: st, Decided: s.now().UTC(), By: by, Via: via, Request: sum}
	if len(s.sign) == ed25519.PrivateKeySize {
		dec.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.sign, signed(dec)))
	}
	b, err := json.Marshal(dec)
	if err != nil {
		return Request{}, err
	}
	err = s.st.Create(ctx, DecisionKind, id, b)
	if errors.Is(err, statestore.ErrExist) {
		// Another decider (perhaps another process) created it first.
		got, gerr := s.Get(ctx, id)
		if gerr != nil {
			return Request{}, gerr
		}
		return got, fmt.Errorf("%w: %s", ErrDecided, describe(got))
	}
	if err != nil {
		return Request{}, fmt.Errorf("approvals: recording the decision of %s: %w", id, err)
	}
	r.Status, r.Decided, r.By, r.Via = dec.Status, dec.Decided, dec.By, dec.Via
	return r, nil
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
	r, _, err := s.wait(ctx, id, poll)
	return r, err
}

// wait is Wait, also returning the decision record (nil for a request
// whose record itself says it was decided, as written before decisions
// had records of their own).
func (s *Store) wait(ctx context.Context, id string, poll time.Duration) (Request, *Decision, error) {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var last Request
	for {
		r, _, d, err := s.get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return Request{}, nil, err
		case err == nil:
			last = r
			if r.Status != Pending {
				return r, d, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, nil, ctx.Err()
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
			_ = s.st.Delete(ctx, DecisionKind, n)
			extra--
		}
	}
}
