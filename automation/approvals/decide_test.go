package approvals

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// Environment of the decider helper process (see TestMain).
const (
	helperEnv     = "SLIPWAY_APPROVALS_TEST_DECIDER"
	helperBackend = "SLIPWAY_APPROVALS_TEST_BACKEND"
	helperIDs     = "SLIPWAY_APPROVALS_TEST_IDS"
	helperSeed    = "SLIPWAY_APPROVALS_TEST_SEED"
)

// s3Env is the identity the helper processes and the test reach the
// loopback S3 server with.
var s3Env = map[string]string{"AWS_ACCESS_KEY_ID": "slipway", "AWS_SECRET_ACCESS_KEY": "slipway-test-secret"}

// TestMain runs the test binary as a decider process when helperEnv names
// one: the cross-process test starts two of them.
func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		os.Exit(decider(name))
	}
	os.Exit(m.Run())
}

// decider opens the backend, says "ready", waits for "go" on stdin, then
// tries to approve every request of helperIDs, printing "<id> won" or
// "<id> decided" (ErrDecided) per request; any other error fails it.
func decider(name string) int {
	ctx := context.Background()
	seed, err := hex.DecodeString(os.Getenv(helperSeed))
	if err != nil || len(seed) != ed25519.SeedSize {
		fmt.Fprintln(os.Stderr, "bad seed")
		return 2
	}
	st, err := statestore.Open(ctx, os.Getenv(helperBackend), s3Env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer st.Close()
	s := New(st, WithSigningKey(ed25519.NewKeyFromSeed(seed)))
	fmt.Println("ready")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "go" {
		fmt.Fprintln(os.Stderr, "no go:", err)
		return 2
	}
	for _, id := range strings.Split(os.Getenv(helperIDs), ",") {
		_, err := s.Decide(ctx, id, true, name, "api")
		switch {
		case err == nil:
			fmt.Println(id, "won")
		case errors.Is(err, ErrDecided):
			fmt.Println(id, "decided")
		default:
			fmt.Fprintln(os.Stderr, id, err)
			return 1
		}
	}
	return 0
}

// notifyID sends the request ID of each ApprovalRequested event to ids.
func notifyID(ids chan<- string) chatops.Notifier {
	return chatops.NotifierFunc(func(_ context.Context, e chatops.Event) error {
		if e.Approval != nil {
			ids <- e.Approval.ID
		}
		return nil
	})
}

// s3Backend starts an S3-compatible server (gofakes3, in memory) on
// loopback and returns a backend URL for one of its buckets.
func s3Backend(t *testing.T) string {
	t.Helper()
	be := s3mem.New()
	require.NoError(t, be.CreateBucket("state"))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: gofakes3.New(be, gofakes3.WithTimeSkewLimit(0)).Server(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	return "s3://state?endpoint=http://" + l.Addr().String() + "&use_path_style=true&disable_https=true&region=us-east-1"
}

// TestStore_TwoProcessesDecidingAtOnce_ExactlyOneWins: two OS processes
// approve the same requests at the same moment, on a file backend and on
// an S3 server; for every request exactly one wins and the other gets
// ErrDecided, and the stored decision is the winner's.
func TestStore_TwoProcessesDecidingAtOnce_ExactlyOneWins(t *testing.T) {
	for name, backend := range map[string]string{"file": "file://" + t.TempDir(), "s3": s3Backend(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st, err := statestore.Open(ctx, backend, s3Env)
			require.NoError(t, err)
			defer func() { require.NoError(t, st.Close()) }()
			s := New(st)
			const n = 40
			ids := make([]string, n)
			for i := range ids {
				r, err := s.Request(ctx, Request{Project: "shop", Stack: "prod", Stage: "prod"})
				require.NoError(t, err)
				ids[i] = r.ID
			}
			type proc struct {
				cmd   *exec.Cmd
				stdin io.WriteCloser
				out   *bufio.Scanner
			}
			var procs []proc
			for _, who := range []string{"serve-a", "serve-b"} {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), helperEnv+"="+who, helperBackend+"="+backend,
					helperIDs+"="+strings.Join(ids, ","), helperSeed+"="+hex.EncodeToString(testKey.Seed()))
				cmd.Stderr = os.Stderr
				stdin, err := cmd.StdinPipe()
				require.NoError(t, err)
				stdout, err := cmd.StdoutPipe()
				require.NoError(t, err)
				require.NoError(t, cmd.Start())
				p := proc{cmd, stdin, bufio.NewScanner(stdout)}
				require.True(t, p.out.Scan(), "the decider %s starts", who)
				require.Equal(t, "ready", p.out.Text())
				procs = append(procs, p)
			}
			for _, p := range procs { // both are ready: release them together
				_, err := io.WriteString(p.stdin, "go\n")
				require.NoError(t, err)
			}
			results := map[string][]string{} // id -> outcome per process
			winner := map[string]string{}
			for i, p := range procs {
				for p.out.Scan() {
					f := strings.Fields(p.out.Text())
					require.Len(t, f, 2, p.out.Text())
					results[f[0]] = append(results[f[0]], f[1])
					if f[1] == "won" {
						winner[f[0]] = []string{"serve-a", "serve-b"}[i]
					}
				}
				require.NoError(t, p.cmd.Wait(), "the decider exits cleanly")
			}
			require.Len(t, results, n)
			for _, id := range ids {
				got := results[id]
				require.Len(t, got, 2, id)
				assert.ElementsMatch(t, []string{"won", "decided"}, got, "request %s: exactly one process wins", id)
				r, err := s.Get(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, Approved, r.Status)
				assert.Equal(t, winner[id], r.By, "the stored decision is the winner's")
			}
		})
	}
}

// gateFixture records a request through Gate and returns it with the
// store, while the gate waits in the background.
func gateFixture(t *testing.T) (*Store, Request, <-chan error) {
	t.Helper()
	s := newStore(t)
	s.sign = nil // the gate's process does not hold the signing key
	ids := make(chan string, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	gate := Gate(s, notifyID(ids), 5*time.Millisecond, RequestedBy("ci-bot", "U999"))
	go func() { done <- gate(ctx, "prod", &outcome.Result{Project: "shop", Stack: "prod"}) }()
	var id string
	select {
	case id = <-ids:
	case err := <-done:
		t.Fatalf("the gate ended without a request: %v", err)
	}
	r, err := s.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, []string{"ci-bot", "U999"}, r.RequestedBy)
	return s, r, done
}

// forge writes a decision record straight into the backend, as anyone
// with write access to it could.
func forge(t *testing.T, s *Store, d Decision) {
	t.Helper()
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.NoError(t, s.st.Put(context.Background(), DecisionKind, d.ID, b))
}

// TestGate_RefusesDecisionsServeDidNotSign: write access to the backend
// is not enough to approve: an unsigned decision, one signed with another
// key, a signed decision whose fields were altered, a request record
// rewritten to "approved" and a decision for a rewritten request are all
// refused by the gate; a decision the server signed passes.
func TestGate_RefusesDecisionsServeDidNotSign(t *testing.T) {
	ctx := context.Background()
	other := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	for name, c := range map[string]struct {
		forge func(t *testing.T, s *Store, r Request)
		want  error
	}{
		"unsigned": {func(t *testing.T, s *Store, r Request) {
			b, _ := s.st.Get(ctx, Kind, r.ID)
			forge(t, s, Decision{ID: r.ID, Status: Approved, Decided: time.Now(), By: "mallory", Via: "api", Request: digest(b)})
		}, ErrUnsigned},
		"signed with another key": {func(t *testing.T, s *Store, r Request) {
			b, _ := s.st.Get(ctx, Kind, r.ID)
			d := Decision{ID: r.ID, Status: Approved, Decided: time.Now(), By: "mallory", Via: "api", Request: digest(b)}
			d.Signature = signature(other, d)
			forge(t, s, d)
		}, ErrBadSignature},
		"a signed rejection turned into an approval": {func(t *testing.T, s *Store, r Request) {
			b, _ := s.st.Get(ctx, Kind, r.ID)
			d := Decision{ID: r.ID, Status: Rejected, Decided: time.Now(), By: "alice", Via: "slack", Request: digest(b)}
			d.Signature = signature(testKey, d)
			d.Status = Approved
			forge(t, s, d)
		}, ErrBadSignature},
		"the request record rewritten to approved": {func(t *testing.T, s *Store, r Request) {
			r.Status, r.By, r.Via = Approved, "mallory", "api"
			b, err := json.Marshal(r)
			require.NoError(t, err)
			require.NoError(t, s.st.Put(ctx, Kind, r.ID, b))
		}, ErrUnsigned},
		"approval of a rewritten request": {func(t *testing.T, s *Store, r Request) {
			r.Summary = "nothing to see"
			b, err := json.Marshal(r)
			require.NoError(t, err)
			require.NoError(t, s.st.Put(ctx, Kind, r.ID, b))
			signer := New(s.st, WithSigningKey(testKey))
			_, err = signer.Decide(ctx, r.ID, true, "alice", "api")
			require.NoError(t, err)
		}, ErrOtherRequest},
	} {
		t.Run(name, func(t *testing.T) {
			s, r, done := gateFixture(t)
			c.forge(t, s, r)
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the gate did not see the decision")
			}
			var ue *UnverifiedError
			require.ErrorAs(t, err, &ue, "the promotion does not proceed")
			assert.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), r.ID)
			assert.Contains(t, err.Error(), "--approval-key-file")
		})
	}

	t.Run("signed by serve", func(t *testing.T) {
		s, r, done := gateFixture(t)
		serve := New(s.st, WithSigningKey(testKey))
		_, err := serve.Decide(ctx, r.ID, true, "alice", "api")
		require.NoError(t, err)
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the gate did not see the decision")
		}
		require.NoError(t, err, "a decision serve signed lets the promotion proceed")
	})
}

func signature(k ed25519.PrivateKey, d Decision) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(k, signed(d)))
}

// TestGate_RefusesWithoutAPublicKey: a gate that could not verify a
// decision refuses to wait, naming the flag, and records nothing.
func TestGate_RefusesWithoutAPublicKey(t *testing.T) {
	s := newStore(t)
	s.verify = nil
	err := Gate(s, nil, time.Millisecond)(context.Background(), "prod", &outcome.Result{Project: "shop", Stack: "prod"})
	require.ErrorIs(t, err, ErrNoVerifyKey)
	assert.Contains(t, err.Error(), "--approval-public-key-file")
	all, err := s.All(context.Background())
	require.NoError(t, err)
	assert.Empty(t, all, "no request was recorded")
}

// TestStore_DecideNeedsTheSigningKey: a Store without the server's key
// records no decision.
func TestStore_DecideNeedsTheSigningKey(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	r, err := s.Request(ctx, Request{Stage: "prod"})
	require.NoError(t, err)
	s.sign = nil
	_, err = s.Decide(ctx, r.ID, true, "alice", "api")
	require.ErrorIs(t, err, ErrNoSigningKey)
	assert.Contains(t, err.Error(), "--approval-key-file")
	assert.Equal(t, Pending, status(t, s, r.ID))
}
